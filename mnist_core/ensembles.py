"""Ensembles: several runs' models whose probabilities are averaged, saved as one more model, a run of its own.

The ensemble is a plain Keras model (each member's model, then Average) in a run folder like an imported one
(state imported, format "ensemble", the members listed in imported.json), so every page that takes a model
takes it: Draw, Evaluate, Inside, the leaderboard. Its members' files are copied into it, so deleting a member
later changes nothing.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from mnist_core import imported
from mnist_core.access import Actor
from mnist_core.control import NAME_LIMIT, now_iso
from mnist_core.models import Predictor, load_predictor
from mnist_core.runs import Run, RunError, get_run, list_runs, resolve_root
from mnist_core.settings import IMAGE_SIZE
from mnist_core.tfimport import import_keras

MIN_MEMBERS, MAX_MEMBERS = 2, 8
ENSEMBLE = "ensemble"  # imported.json's format of an ensemble
_MAKING = threading.Lock()  # one ensemble made at a time in this process (every tab of the dashboard)


def make_ensemble(
    run_ids: list[str], name: str | None = None, root: Path | str | None = None, actor: Actor | None = None
) -> Run:
    """Return a new run whose model averages the best models of `run_ids` (2-8 runs with a model)."""
    unique = list(dict.fromkeys(run_ids))
    if not MIN_MEMBERS <= len(unique) <= MAX_MEMBERS:
        raise RunError(f"an ensemble takes {MIN_MEMBERS} to {MAX_MEMBERS} runs, got {len(unique)}")
    members = [get_run(run_id, root) for run_id in unique]
    without = [run.run_id for run in members if not run.has_model]
    if without:
        raise RunError(f"run {without[0]} has no saved model to put in an ensemble")
    nested = [run.name for run in members if run.members]
    if nested:
        raise RunError(f"{nested[0]} is an ensemble already: pick its members instead")
    with _MAKING:  # a double click makes one ensemble: the second finds the first
        same = [run for run in list_runs(root) if sorted(run.members) == sorted(unique)]
        if same:
            raise RunError(f"an ensemble of these runs exists already: {same[0].name} (delete it to make it anew)")
        return _made(members, name, root, actor)


def _made(members: list[Run], name: str | None, root: Path | str | None, actor: Actor | None) -> Run:
    """Return the new ensemble run of `members`, its model and record written."""
    keras = import_keras()
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1))
    outputs = [
        keras.Sequential([load_predictor(run.model_path("best")).model], name=f"member_{index}")(inputs)
        for index, run in enumerate(members)
    ]
    model = keras.Model(inputs, keras.layers.Average(name="average")(outputs), name="ensemble")
    record = {
        "source": f"ensemble of {len(members)} runs",
        "format": ENSEMBLE,
        "architecture": None,
        "parameters": int(model.count_params()),
        "members": [run.run_id for run in members],
        "member_names": [run.name for run in members],
        # Its score on my drawings is not fair when a member was trained on them: the leaderboard says so.
        "drawings_train": max(run.drawings_trained_on for run in members),
        "imported": now_iso(),
    }
    label = name or " + ".join(run.short_name for run in members)
    with imported.staging_folder(resolve_root(root)) as staging:
        return imported.place(staging, model, record, label[:NAME_LIMIT], actor, kind=ENSEMBLE)


def _member_copy(ensemble_model, index: int):
    """Return the copy of member `index` inside an ensemble's model (make_ensemble names it member_<index>)."""
    return ensemble_model.get_layer(f"member_{index}")


def agreement(ensemble: Run, images: np.ndarray) -> list[dict]:
    """Return, for each member of an ensemble run, how often its prediction is the ensemble's on `images`
    (N, 28, 28) in [0, 1] (its own accuracy is left to Evaluate): member run id, name when made, agreement 0-1.
    Each member is the copy averaged inside the ensemble, so a member continued, damaged or deleted since
    changes nothing; ModelFileError when the ensemble's own file does not load."""
    predictor = load_predictor(ensemble.model_path("best"))
    together = predictor.probabilities(images).argmax(axis=1)
    names = (ensemble.imported or {}).get("member_names") or ensemble.members
    rows = []
    for index, (run_id, name) in enumerate(zip(ensemble.members, names, strict=False)):
        alone = Predictor(_member_copy(predictor.model, index)).probabilities(images).argmax(axis=1)
        rows.append({"run": run_id, "name": name, "agreement": float((alone == together).mean())})
    return rows

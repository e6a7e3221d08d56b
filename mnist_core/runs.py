"""Reading runs: one immutable snapshot per run, each file read once and type-checked.

Reading never starts, stops or rewrites anything (state changes live in `control`). A run whose files
cannot be read is `damaged`, with a message naming the file; every other run still reads.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from mnist_core import runfiles, storage
from mnist_core.architectures import ARCHITECTURES
from mnist_core.config import ConfigError, TrainConfig
from mnist_core.labels import short_name
from mnist_core.settings import runs_root

QUEUED, RUNNING, FINISHED, STOPPED, FAILED = "queued", "running", "finished", "stopped", "failed"
PRUNED = "pruned"  # a sweep's trial stopped early: its validation accuracy trailed the other trials'
IMPORTED = "imported"  # a model trained elsewhere: a model file and imported.json, no config and no curves
STATES = (QUEUED, RUNNING, FINISHED, STOPPED, FAILED, PRUNED, IMPORTED)
ACTIVE_STATES = (QUEUED, RUNNING)
DONE_STATES = (FINISHED, STOPPED, FAILED, PRUNED)
DAMAGED = "damaged"  # never stored: what a run whose files cannot be read shows as

# The type every known field of status.json and progress.json must have (None allowed where listed).
_NUMBER = (int, float)
STATUS_FIELDS = {
    "state": str,
    "error": (str, type(None)),
    "pid": (int, type(None)),
    "supervisor_pid": (int, type(None)),
    "created": str,
    "started": (str, type(None)),
    "ended": (str, type(None)),
    "epochs_done": int,
    "best_val_accuracy": (*_NUMBER, type(None)),
    "continued_at_epoch": (int, type(None)),
    "owner": (str, type(None)),
    "sweep": (str, type(None)),  # a sweep's trial: the sweep's name and the trial's number
    "trial": (int, type(None)),
}
PROGRESS_FIELDS = {"epoch": int, "batch": int, "steps_per_epoch": int, "loss": _NUMBER, "accuracy": _NUMBER}
LABELS_FIELDS = {"name": str, "note": str, "tags": list}
IMPORTED_FIELDS = {"source": str, "format": str, "architecture": (str, type(None)), "parameters": int}
HANDWRITING_FIELDS = {
    "snapshot": str,
    "at_epoch": int,
    "repeat": int,
    "train": int,
    "held_out": int,
    "before": (*_NUMBER, type(None)),
    "after": list,
}
EVALUATION_FIELDS = {"accuracy": _NUMBER, "loss": _NUMBER, "count": int, "confusion_matrix": list, "per_class": list}
# A snapshot is reused while its files are unchanged; one whose files changed within this many seconds is
# read again every time (file times are coarse: two writes in one tick would otherwise look like one).
SETTLE_SECONDS = 1.0
# Time left is not estimated from fewer batches: the first ones include TensorFlow's start-up (an estimate
# from batch 1 read "3h 49m" for a run of a minute).
ESTIMATE_AFTER_BATCHES = 20


def upper_median(values) -> float | None:
    """Return the median of `values` (the upper middle one of an even count), None for no values."""
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else None


def median_epoch_seconds(rows) -> float | None:
    """Return the median 'seconds' of per-epoch rows (the upper middle one of an even count), None for no rows."""
    return upper_median(row["seconds"] for row in rows)


class RunError(RuntimeError):
    """A run cannot do what was asked (unknown id, damaged, not continuable, no model yet)."""


@dataclass(frozen=True)
class Run:
    """A snapshot of one run folder, read once: its config, status, progress, epochs and evaluation."""

    path: Path
    config: TrainConfig | None
    status: dict
    progress: dict
    epochs: tuple[dict, ...]
    evaluation: dict | None
    model_files: frozenset[str]
    stop_requested: bool = False
    problem: str | None = None  # why the run is damaged, naming the file; None when every file reads
    labels: dict = field(default_factory=dict)  # labels.json: name, note, tags ({} when none was given)
    imported: dict | None = None  # imported.json: where a model trained elsewhere came from (None: trained here)
    handwriting: dict | None = None  # handwriting.json: how it was taught your drawings (None: never)

    @property
    def run_id(self) -> str:
        """Return the run's id (its folder name)."""
        return self.path.name

    @property
    def state(self) -> str:
        """Return the run's state: one of STATES, or DAMAGED."""
        return DAMAGED if self.problem else self.status["state"]

    @property
    def name(self) -> str:
        """Return the run's display name: the one given to it, else its id."""
        return self.labels.get("name") or self.run_id

    @property
    def short_name(self) -> str:
        """Return the run's name for legends and chips: the one given to it, else 'cnn 09:30 1a2b'."""
        return self.labels.get("name") or short_name(self.run_id, self.architecture)

    @property
    def architecture(self) -> str | None:
        """Return the run's registry architecture; None for an imported model of its own design (or damaged)."""
        if self.config is not None:
            return self.config.architecture
        return (self.imported or {}).get("architecture")

    @property
    def members(self) -> list[str]:
        """Return the run ids an ensemble run averages; empty for any other run."""
        return list((self.imported or {}).get("members") or [])

    @property
    def drawings_trained_on(self) -> int:
        """Return how many of my drawings the model was trained on: a taught run's, or an ensemble's most taught
        member's when it was made; 0 when none."""
        if self.config is not None:
            return self.config.drawings_train
        return int((self.imported or {}).get("drawings_train") or 0)

    @property
    def architecture_label(self) -> str:
        """Return the architecture for a table: its registry key, 'ensemble of N' or 'imported'."""
        if self.architecture:
            return self.architecture
        return f"ensemble of {len(self.members)}" if self.members else "imported"

    @property
    def architecture_title(self) -> str:
        """Return the architecture in words: its registry title, 'Ensemble of N models' or 'Imported model'."""
        if self.architecture in ARCHITECTURES:
            return ARCHITECTURES[self.architecture].title
        return f"Ensemble of {len(self.members)} models" if self.members else "Imported model"

    @property
    def parameters(self) -> int | None:
        """Return the model's parameter count: the architecture's, or the imported model's as it was counted."""
        if self.imported is not None:
            return self.imported["parameters"]
        return ARCHITECTURES[self.architecture].params if self.architecture in ARCHITECTURES else None

    @property
    def tags(self) -> tuple[str, ...]:
        """Return the run's tags (none when not tagged)."""
        return tuple(self.labels.get("tags", ()))

    @property
    def damaged(self) -> bool:
        """Return True when one of the run's files cannot be read."""
        return self.problem is not None

    def file(self, name: str) -> Path:
        """Return the path of one of the run's files (a runfiles constant)."""
        return self.path / name

    def model_path(self, which: str = "best") -> Path:
        """Return the path of the 'best' or 'final' model (falling back to the other one)."""
        first, second = (
            (runfiles.BEST_MODEL, runfiles.FINAL_MODEL)
            if which == "best"
            else (runfiles.FINAL_MODEL, runfiles.BEST_MODEL)
        )
        return self.file(first if first in self.model_files or second not in self.model_files else second)

    @property
    def has_model(self) -> bool:
        """Return True once a model file has been saved (and the run is not damaged)."""
        return bool(self.model_files) and not self.damaged

    @property
    def best_val_accuracy(self) -> float | None:
        """Return the best validation accuracy of the epochs best.keras is chosen from (every epoch, or those since
        it was taught your handwriting), None before the first one ends or for a run trained without validation."""
        since = (self.handwriting or {}).get("at_epoch", 0)
        scores = [row["val_accuracy"] for row in self.epochs[since:] if not math.isnan(row["val_accuracy"])]
        return max(scores, default=None)

    @property
    def seconds_per_epoch(self) -> float | None:
        """Return the median seconds of the run's epochs (validation included), None before the first."""
        return median_epoch_seconds(self.epochs)

    def summary(self) -> dict:
        """Return one table row: id, architecture, state, epochs, best val accuracy, test accuracy, s/epoch."""
        return {
            "run_id": self.run_id,
            "name": self.name,
            "tags": self.tags,
            "architecture": self.architecture,
            "state": self.state,
            "epochs_done": len(self.epochs),
            "epochs_target": self.config.epochs if self.config else None,
            "best_val_accuracy": self.best_val_accuracy,
            "test_accuracy": (self.evaluation or {}).get("accuracy"),
            "seconds_per_epoch": self.seconds_per_epoch,
            "created": self.status.get("created"),
            "error": self.problem or self.status.get("error"),
        }


def _check_fields(name: str, values: dict, fields: dict) -> None:
    """Raise DamagedFile naming `name` when a known field of `values` has the wrong type."""
    for key, kind in fields.items():
        if key in values and (not isinstance(values[key], kind) or isinstance(values[key], bool)):
            raise storage.DamagedFile(f"{name}: {key} is {values[key]!r}, of the wrong type")


def _read_config(path: Path, optional: bool = False) -> TrainConfig | None:
    """Return the run's config (None when `optional` and there is none: an imported model); DamagedFile when
    config.json is missing, unreadable or invalid."""
    values = storage.read_json_object(path / runfiles.CONFIG)
    if values is None:
        if optional:
            return None
        raise storage.DamagedFile(f"{runfiles.CONFIG}: missing")
    try:
        return TrainConfig.from_dict(values)
    except (ConfigError, TypeError) as error:
        raise storage.DamagedFile(f"{runfiles.CONFIG}: {error}") from error


def _read_status(path: Path) -> dict:
    """Return status.json, checked; DamagedFile when missing, unreadable or of the wrong shape."""
    status = storage.read_json_object(path / runfiles.STATUS)
    if status is None:
        raise storage.DamagedFile(f"{runfiles.STATUS}: missing")
    _check_fields(runfiles.STATUS, status, STATUS_FIELDS)
    if status.get("state") not in STATES:
        raise storage.DamagedFile(f"{runfiles.STATUS}: state {status.get('state')!r} is not one of {', '.join(STATES)}")
    return status


def _read_progress(path: Path) -> dict:
    """Return progress.json ({} before the first batch), checked."""
    progress = storage.read_json_object(path / runfiles.PROGRESS) or {}
    _check_fields(runfiles.PROGRESS, progress, PROGRESS_FIELDS)
    return progress


def _read_epochs(path: Path) -> tuple[dict, ...]:
    """Return epochs.csv's rows (numbers), checked to be epochs 1..N."""
    rows = storage.read_number_csv(path / runfiles.EPOCHS, runfiles.EPOCH_COLUMNS) or []
    numbers = [row["epoch"] for row in rows]
    if numbers != list(range(1, len(rows) + 1)):
        raise storage.DamagedFile(f"{runfiles.EPOCHS}: epochs {numbers[:8]} are not 1, 2, 3, ...")
    return tuple(rows)


def _read_evaluation(path: Path) -> dict | None:
    """Return evaluation.json, checked, or None when the run has not been evaluated."""
    evaluation = storage.read_json_object(path / runfiles.EVALUATION)
    if evaluation is not None:
        _check_fields(runfiles.EVALUATION, evaluation, EVALUATION_FIELDS)
    return evaluation


def _read_labels(path: Path) -> dict:
    """Return labels.json ({} when the run has none), checked: a name, a note, and tags that are strings."""
    labels = storage.read_json_object(path / runfiles.LABELS) or {}
    _check_fields(runfiles.LABELS, labels, LABELS_FIELDS)
    if not all(isinstance(tag, str) for tag in labels.get("tags", [])):
        raise storage.DamagedFile(f"{runfiles.LABELS}: tags {labels['tags']!r} are not all text")
    return labels


def _read_imported(path: Path, required: bool) -> dict | None:
    """Return imported.json, checked, or None for a run trained here; DamagedFile when an imported run lacks it."""
    imported = storage.read_json_object(path / runfiles.IMPORTED)
    if imported is None and required:
        raise storage.DamagedFile(f"{runfiles.IMPORTED}: missing")
    if imported is not None:
        _check_fields(runfiles.IMPORTED, imported, IMPORTED_FIELDS)
        missing = [key for key in IMPORTED_FIELDS if key not in imported]
        if missing:
            raise storage.DamagedFile(f"{runfiles.IMPORTED}: lacks {', '.join(missing)}")
    return imported


def _read_handwriting(path: Path) -> dict | None:
    """Return handwriting.json, checked, or None for a run never taught your drawings."""
    record = storage.read_json_object(path / runfiles.HANDWRITING)
    if record is not None:
        _check_fields(runfiles.HANDWRITING, record, HANDWRITING_FIELDS)
        missing = [key for key in HANDWRITING_FIELDS if key not in record]
        if missing:
            raise storage.DamagedFile(f"{runfiles.HANDWRITING}: lacks {', '.join(missing)}")
        after = record.get("after", [])
        if not all(isinstance(row, dict) and {"epoch", "accuracy"} <= set(row) for row in after):
            raise storage.DamagedFile(f"{runfiles.HANDWRITING}: after is not a list of epochs and accuracies")
    return record


def read_run(path: Path | str) -> Run:
    """Return a fresh snapshot of the run folder `path` (damaged, with the reason, when a file is bad)."""
    path = Path(path)
    problem = None
    parts: dict = {
        "status": {"state": FAILED},
        "config": None,
        "progress": {},
        "epochs": (),
        "evaluation": None,
        "labels": {},
        "imported": None,
        "handwriting": None,
    }
    readers = {  # status first: an imported run has no config
        "status": _read_status,
        "config": lambda folder: _read_config(folder, optional=parts["status"]["state"] == IMPORTED),
        "progress": _read_progress,
        "epochs": _read_epochs,
        "evaluation": _read_evaluation,
        "labels": _read_labels,
        "imported": lambda folder: _read_imported(folder, required=parts["status"]["state"] == IMPORTED),
        "handwriting": _read_handwriting,
    }
    for part, reader in readers.items():
        try:
            parts[part] = reader(path)
        except storage.DamagedFile as error:
            problem = problem or str(error)
    config, record = parts["config"], parts["handwriting"]
    if record is not None and (config is None or record["snapshot"] != config.drawings_snapshot):
        parts["handwriting"] = None  # about an earlier teaching: the training process starts a new record
    models = frozenset(name for name in (runfiles.BEST_MODEL, runfiles.FINAL_MODEL) if (path / name).is_file())
    return Run(
        path=path,
        model_files=models,
        stop_requested=(path / runfiles.STOP).exists(),
        problem=problem,
        **parts,
    )


_SNAPSHOTS: dict[Path, tuple[tuple, Run]] = {}
_SNAPSHOTS_LOCK = threading.Lock()
_SIGNATURE_FILES = (  # config and status first: list_runs tells a run folder by them
    runfiles.CONFIG,
    runfiles.STATUS,
    runfiles.PROGRESS,
    runfiles.EPOCHS,
    runfiles.EVALUATION,
    runfiles.LABELS,
    runfiles.IMPORTED,
    runfiles.HANDWRITING,
    runfiles.BEST_MODEL,
    runfiles.FINAL_MODEL,
    runfiles.STOP,
)


def _signature(folder: str) -> tuple[tuple, bool]:
    """Return (what identifies the current version of a run's files, whether they have settled)."""
    parts, newest = [], 0
    for name in _SIGNATURE_FILES:
        try:
            stat = os.stat(os.path.join(folder, name))
        except OSError:
            parts.append(None)
            continue
        parts.append((stat.st_mtime_ns, stat.st_size, stat.st_ino))
        newest = max(newest, stat.st_mtime_ns)
    return tuple(parts), time.time_ns() - newest >= SETTLE_SECONDS * 1e9


def cached_run(path: Path, signature: tuple[tuple, bool] | None = None) -> Run:
    """Return the run's snapshot, reused while none of its files changed (one cache for every page and tab)."""
    parts, settled = signature or _signature(str(path))
    if settled:
        with _SNAPSHOTS_LOCK:
            cached = _SNAPSHOTS.get(path)
        if cached and cached[0] == parts:
            return cached[1]
    run = read_run(path)
    if settled:
        with _SNAPSHOTS_LOCK:
            _SNAPSHOTS[path] = (parts, run)
    return run


def resolve_root(root: Path | str | None) -> Path:
    """Return the runs folder to use: `root`, else the configured one."""
    return Path(root).resolve() if root is not None else runs_root()


def is_run_folder(path: Path) -> bool:
    """Return True for a folder that holds (or held) a run: not being created, with a config or a status."""
    return (
        not path.name.startswith(".")
        and path.is_dir()
        and ((path / runfiles.CONFIG).exists() or (path / runfiles.STATUS).exists())
    )


def _newest_first(run: Run) -> tuple:
    """Return the sort key that puts the newest run first (created time, then id, for runs of one second)."""
    return (run.status.get("created") or "", run.run_id)


def owned_count(root: Path, owner: str, states) -> int:
    """Return how many readable runs in the folder `root` belong to the session `owner` and are in one of `states`."""
    return sum(
        1
        for run in (cached_run(path) for path in root.iterdir() if is_run_folder(path))
        if run.state in states and run.status.get("owner") == owner  # a damaged run's state is DAMAGED
    )


def list_runs(root: Path | str | None = None) -> list[Run]:
    """Return a snapshot of every run, newest first (damaged runs included, with their reason)."""
    root = resolve_root(root)
    try:
        entries = [entry for entry in os.scandir(root) if not entry.name.startswith(".") and entry.is_dir()]
    except OSError:
        return []
    snapshots = []
    for entry in entries:
        signature = _signature(entry.path)
        if signature[0][0] is not None or signature[0][1] is not None:  # it has a config or a status: a run
            snapshots.append(cached_run(Path(entry.path), signature))
    return sorted(snapshots, key=_newest_first, reverse=True)


def run_path(run_id: str, root: Path | str | None = None) -> Path:
    """Return the folder of run `run_id`; RunError unless it is a run id naming a run inside the runs folder."""
    root = resolve_root(root)
    if not isinstance(run_id, str) or not runfiles.RUN_ID_PATTERN.match(run_id):
        shown = run_id if len(str(run_id)) <= 60 else f"{str(run_id)[:60]}…"
        raise RunError(f"{shown!r} is not a run id (they look like 20261201-093000-cnn-1a2b)")
    path = (root / run_id).resolve()
    if path.parent != root or not is_run_folder(path):
        raise RunError(f"no run {run_id} in {root}")
    return path


def get_run(run_id: str, root: Path | str | None = None) -> Run:
    """Return a fresh snapshot of run `run_id`; RunError if there is no such run."""
    return read_run(run_path(run_id, root))


def filter_runs(all_runs: list[Run], tags=(), architectures=(), states=()) -> list[Run]:
    """Return the runs with every one of `tags`, of one of `architectures`, in one of `states` (empty: any)."""
    return [
        run
        for run in all_runs
        if set(tags) <= set(run.tags)
        and (not architectures or run.architecture in architectures)
        and (not states or run.state in states)
    ]


def count_by_state(all_runs: list[Run]) -> dict[str, int]:
    """Return how many runs are in each state, every state of training listed ("pruned", "imported" and
    "damaged" only when there is one)."""
    counts = dict.fromkeys((state for state in STATES if state not in (PRUNED, IMPORTED)), 0)
    for run in all_runs:
        counts[run.state] = counts.get(run.state, 0) + 1
    return counts


def seconds_per_image_here(all_runs: list[Run], architecture: str) -> tuple[float | None, int]:
    """Return (the median epoch seconds per training image of this folder's runs of `architecture`, how many runs
    it comes from); (None, 0) before the first epoch of one. Validation is counted with the images it goes with."""
    paces = [
        run.seconds_per_epoch / (run.config.train_size + run.config.validation_size)
        for run in all_runs
        if not run.damaged and run.config is not None and run.config.architecture == architecture and run.epochs
    ]
    return upper_median(paces), len(paces)


def batches_done(run: Run) -> tuple[int, int, int]:
    """Return (batches done, batches in all epochs, batches per epoch) from the run's progress."""
    config, progress = run.config, run.progress
    steps = progress.get("steps_per_epoch") or config.steps_per_epoch
    done = (progress.get("epoch", 1) - 1) * steps + progress.get("batch", 0) if progress else len(run.epochs) * steps
    return done, config.epochs * steps, steps


def progress_fraction(run: Run) -> float:
    """Return the share of the run's batches done, 0-1: while it trains, counting the epoch under way; once it
    has ended, its finished epochs only (a partial epoch is trained again on continue)."""
    if run.state == FINISHED:
        return 1.0
    if run.config is None:
        return 0.0
    if run.state != RUNNING:
        return min(1.0, len(run.epochs) / run.config.epochs)
    done, total, _ = batches_done(run)
    return max(0.0, min(1.0, done / total))


def time_left(run: Run) -> float | None:
    """Return the estimated seconds until the run's last epoch ends, None while unknown: from the mean of the
    last three epochs, or in the first epoch from its pace after the first batch, once ESTIMATE_AFTER_BATCHES ran."""
    progress = run.progress
    if not progress or run.state != RUNNING:
        return None
    done_steps, total_steps, steps = batches_done(run)
    seconds = [row["seconds"] for row in run.epochs[-3:]]
    pace = progress.get("seconds_per_batch")
    if seconds:
        per_step = sum(seconds) / len(seconds) / steps
    elif progress.get("batch", 0) >= ESTIMATE_AFTER_BATCHES and isinstance(pace, (int, float)) and pace > 0:
        per_step = pace
    else:
        return None
    return max(0.0, (total_steps - done_steps) * per_step)

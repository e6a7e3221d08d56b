"""The comparison table and curve series of runs and published references."""

from __future__ import annotations

from mnist_core import reference
from mnist_core.architectures import get_architecture
from mnist_core.charts import Series
from mnist_core.labels import EPOCHS_DONE, MISSING, SECONDS_PER_EPOCH, percent, seconds
from mnist_core.runs import IMPORTED, Run, median_epoch_seconds


def run_series(selected: list[Run]) -> list[Series]:
    """Return one curve series per run that has at least one finished epoch."""
    return [Series(run.short_name, list(run.epochs)) for run in selected if run.epochs]


BEST_SHOWN = 3


def best_run_ids(candidates: list[Run], count: int = BEST_SHOWN) -> list[str]:
    """Return the ids of the `count` runs with the best validation accuracy (a run without validation: its test
    accuracy, once evaluated), best first."""

    def score(run: Run) -> float:
        if run.best_val_accuracy is not None:
            return run.best_val_accuracy
        return (run.evaluation or {}).get("accuracy") or 0.0

    ranked = sorted(candidates, key=score, reverse=True)
    return [run.run_id for run in ranked[:count]]


def opening_run_ids(candidates: list[Run], asked: str | None = None) -> list[str]:
    """Return the runs Compare opens on: `asked` (a link's ?run=) first when it is one of them, then the best."""
    best = best_run_ids(candidates)
    if asked in {run.run_id for run in candidates}:
        return [asked, *[run_id for run_id in best if run_id != asked]]
    return best


def epochs_of(selected: list[Run]) -> int | None:
    """Return the most epochs any of `selected` has finished, None when there are no runs."""
    return max((len(run.epochs) for run in selected), default=None) or None


def published_series(architectures: list[str], epochs: int | None = None) -> list[Series]:
    """Return the walkthrough's published curves of `architectures`, dashed, cut after `epochs` if given."""
    return [Series(f"published {key}", reference.published_curve(key)[:epochs], dashed=True) for key in architectures]


def comparison_rows(selected: list[Run], published: list[str]) -> list[dict]:
    """Return table rows: name, architecture, parameters, epochs, best val / test accuracy, seconds per epoch."""
    rows = []
    for run in selected:
        summary = run.summary()
        rows.append(
            {
                "name": run.name,
                "architecture": run.architecture_label,
                "parameters": run.parameters,
                EPOCHS_DONE: MISSING if run.state == IMPORTED else summary["epochs_done"],
                "best val accuracy": percent(summary["best_val_accuracy"]),
                "test accuracy": percent(summary["test_accuracy"]),
                SECONDS_PER_EPOCH: seconds(summary["seconds_per_epoch"]),
            }
        )
    for key in published:
        curve, arch = reference.published_curve(key), get_architecture(key)
        rows.append(
            {
                "name": f"published {key} (GPU)",
                "architecture": key,
                "parameters": arch.params,
                EPOCHS_DONE: len(curve),
                "best val accuracy": percent(max(row["val_accuracy"] for row in curve)),
                "test accuracy": percent(arch.published_test_accuracy),
                SECONDS_PER_EPOCH: seconds(median_epoch_seconds(curve)),
            }
        )
    return rows

"""The comparison table and curve series of runs and published references."""

from __future__ import annotations

from mnist_core import reference
from mnist_core.architectures import get_architecture
from mnist_core.charts import Series
from mnist_core.runs import Run


def run_series(selected: list[Run]) -> list[Series]:
    """Return one curve series per run that has at least one finished epoch."""
    return [Series(run.run_id, list(run.epochs)) for run in selected if run.epochs]


def published_series(architectures: list[str]) -> list[Series]:
    """Return the walkthrough's published curves of `architectures`, dashed."""
    return [Series(f"published {key}", reference.published_curve(key), dashed=True) for key in architectures]


def comparison_rows(selected: list[Run], published: list[str]) -> list[dict]:
    """Return table rows: name, architecture, parameters, epochs, best val / test accuracy, seconds per epoch."""
    rows = []
    for run in selected:
        summary = run.summary()
        rows.append(
            {
                "name": run.run_id,
                "architecture": summary["architecture"],
                "parameters": get_architecture(summary["architecture"]).params,
                "epochs": summary["epochs_done"],
                "best val accuracy": summary["best_val_accuracy"],
                "test accuracy": summary["test_accuracy"],
                "seconds / epoch": summary["seconds_per_epoch"],
            }
        )
    for key in published:
        curve, arch = reference.published_curve(key), get_architecture(key)
        seconds = sorted(row["seconds"] for row in curve)
        rows.append(
            {
                "name": f"published {key} (GPU)",
                "architecture": key,
                "parameters": arch.params,
                "epochs": len(curve),
                "best val accuracy": max(row["val_accuracy"] for row in curve),
                "test accuracy": arch.published_test_accuracy,
                "seconds / epoch": seconds[len(seconds) // 2] if seconds else None,
            }
        )
    return rows

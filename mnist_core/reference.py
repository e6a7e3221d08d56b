"""The walkthrough's published per-epoch curves, shipped with the package."""

from __future__ import annotations

from functools import lru_cache

from mnist_core import storage
from mnist_core.settings import PUBLISHED_CURVES_CSV


@lru_cache(maxsize=1)
def _all_rows() -> tuple[dict, ...]:
    """Return every row of the published curves CSV."""
    columns = ["architecture", "epoch", "epoch_seconds", "loss", "accuracy", "val_loss", "val_accuracy"]
    return tuple(storage.read_number_csv(PUBLISHED_CURVES_CSV, columns, text_columns=("architecture",)))


def published_architectures() -> list[str]:
    """Return the architecture keys that have a published curve, in file order."""
    return list(dict.fromkeys(row["architecture"] for row in _all_rows()))


def published_curve(architecture: str) -> list[dict]:
    """Return the published per-epoch rows (epoch, epoch_seconds, loss, accuracy, val_loss, val_accuracy)."""
    rows = [dict(row) for row in _all_rows() if row["architecture"] == architecture]
    elapsed = 0.0
    for row in rows:
        elapsed += row["epoch_seconds"]
        row["seconds"], row["elapsed"] = row["epoch_seconds"], elapsed
    return rows

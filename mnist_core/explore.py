"""Dataset views for the Dataset page: filtered, paged indices, class counts, mean digits, histograms."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnist_core.data import Mnist, split
from mnist_core.settings import NUM_CLASSES

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class DatasetView:
    """Every split as uint8 images (N, 28, 28) and labels (N,), with positions in the source files."""

    images: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    source_index: dict[str, np.ndarray]
    source: str


def dataset_view(mnist: Mnist) -> DatasetView:
    """Return the train / validation / test splits of `mnist` (the walkthrough's 54,000 / 6,000 split)."""
    parts = split(mnist)
    return DatasetView(
        images={"train": parts.x_train, "validation": parts.x_val, "test": mnist.x_test},
        labels={"train": parts.y_train, "validation": parts.y_val, "test": mnist.y_test},
        source_index={"train": parts.train_index, "validation": parts.val_index, "test": np.arange(len(mnist.x_test))},
        source=mnist.source,
    )


def filtered_positions(view: DatasetView, split: str, label: int | None) -> np.ndarray:
    """Return the positions within `split` whose label is `label` (all positions when None)."""
    labels = view.labels[split]
    return np.arange(len(labels)) if label is None else np.flatnonzero(labels == label)


def page_of(positions: np.ndarray, page: int, per_page: int) -> np.ndarray:
    """Return the positions on 1-based `page` of `per_page` items (empty past the end)."""
    start = (page - 1) * per_page
    return positions[start : start + per_page]


def page_count(total: int, per_page: int) -> int:
    """Return how many pages `total` items fill (at least 1)."""
    return max(1, -(-total // per_page))


def class_counts(view: DatasetView) -> dict[str, list[int]]:
    """Return, per split, the number of images of each digit 0-9."""
    return {split: np.bincount(view.labels[split], minlength=NUM_CLASSES).tolist() for split in SPLITS}


def mean_images(view: DatasetView, split: str) -> np.ndarray:
    """Return the mean image of each digit in `split`: (10, 28, 28) float32 in [0, 255]."""
    images, labels = view.images[split], view.labels[split]
    return np.stack([images[labels == digit].mean(axis=0, dtype=np.float64) for digit in range(NUM_CLASSES)]).astype(
        np.float32
    )


def pixel_histogram(view: DatasetView, split: str, bins: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Return (counts (bins,), edges (bins + 1,)) of the pixel intensities 0-255 in `split`."""
    counts = np.bincount(view.images[split].ravel(), minlength=256)
    edges = np.linspace(0, 256, bins + 1)
    return counts.reshape(bins, -1).sum(axis=1), edges

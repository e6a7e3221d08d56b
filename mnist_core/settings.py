"""Every constant and default of the studio, and the environment settings that change them (a leaf module:
it imports nothing of the package)."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
RESOURCES_DIR = PACKAGE_DIR / "resources"
PUBLISHED_CURVES_CSV = RESOURCES_DIR / "published_curves.csv"

DATA_DIR_ENV = "MNIST_DATA_DIR"
RUNS_DIR_ENV = "MNIST_RUNS_DIR"
DRAWINGS_DIR_ENV = "MNIST_DRAWINGS_DIR"  # the person's own labelled drawings (default ./drawings, beside ./runs)
DEFAULT_DRAWINGS_DIR = "drawings"
MAX_CONCURRENT_ENV = "MNIST_MAX_CONCURRENT_RUNS"
DEFAULT_RUNS_DIR = "runs"
DEFAULT_MAX_CONCURRENT_RUNS = 1  # two cores: a second run would only halve both
MAX_QUEUED_ENV = "MNIST_MAX_QUEUED_PER_SESSION"
DEFAULT_MAX_QUEUED_PER_SESSION = 3  # in a shared classroom, one browser cannot fill the queue
MAX_IMPORTS_ENV = "MNIST_MAX_IMPORTS_PER_SESSION"
DEFAULT_MAX_IMPORTS_PER_SESSION = 10  # imported models one browser session may keep (50 MB each at most)

SWEEP_STORAGE_ENV = "MNIST_SWEEP_STORAGE"  # an Optuna storage URL shared by many machines (postgresql://...)
SWEEP_ARTIFACTS_ENV = "MNIST_SWEEP_ARTIFACTS"  # a folder every machine mounts: trials' models for the dashboard

IMAGE_SIZE = 28
NUM_CLASSES = 10
TRAIN_IMAGES = 60_000
TEST_IMAGES = 10_000
VALIDATION_FRACTION = 0.1  # the walkthrough's split: 54,000 train / 6,000 validation
SPLIT_RANDOM_STATE = 42
VALIDATION_SPLIT_SIZE = round(TRAIN_IMAGES * VALIDATION_FRACTION)
TRAIN_SPLIT_SIZE = TRAIN_IMAGES - VALIDATION_SPLIT_SIZE

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
LR_SCHEDULES = ("constant", "one_cycle")
AUGMENTATIONS = ("none", "shift", "varied", "drawn")  # augment.py says what each one does

# The live curve gets a point at least this often, whichever comes first.
METRICS_EVERY_BATCHES = 25
METRICS_EVERY_SECONDS = 1.0
MAX_IMPORT_BYTES = 50 * 2**20  # an imported model file; the largest here (cnn with Adam's state) is 17 MB
EVALUATION_BATCH_SIZE = 256  # the fastest of 64-1024 for every architecture here


def runs_root() -> Path:
    """Return the folder that holds every run (MNIST_RUNS_DIR, else ./runs)."""
    return Path(os.environ.get(RUNS_DIR_ENV) or DEFAULT_RUNS_DIR).resolve()


def drawings_root() -> Path:
    """Return the folder of the person's saved drawings (MNIST_DRAWINGS_DIR, else ./drawings)."""
    return Path(os.environ.get(DRAWINGS_DIR_ENV) or DEFAULT_DRAWINGS_DIR).resolve()


def _positive_int_env(name: str, default: int) -> int:
    """Return the whole number >= 1 in environment variable `name`, or `default` when unset or not a number."""
    raw = os.environ.get(name, "")
    try:
        return max(1, int(raw)) if raw.strip() else default
    except ValueError:
        return default


def max_concurrent_runs() -> int:
    """Return how many runs may train at once (MNIST_MAX_CONCURRENT_RUNS, default 1)."""
    return _positive_int_env(MAX_CONCURRENT_ENV, DEFAULT_MAX_CONCURRENT_RUNS)


def max_imports_per_owner() -> int:
    """Return how many imported models one browser session may keep (MNIST_MAX_IMPORTS_PER_SESSION)."""
    return _positive_int_env(MAX_IMPORTS_ENV, DEFAULT_MAX_IMPORTS_PER_SESSION)


def max_queued_per_owner() -> int:
    """Return how many runs one browser session may have queued or running (MNIST_MAX_QUEUED_PER_SESSION)."""
    return _positive_int_env(MAX_QUEUED_ENV, DEFAULT_MAX_QUEUED_PER_SESSION)


def sweep_storage_url() -> str | None:
    """Return the sweeps' storage URL from MNIST_SWEEP_STORAGE, None when unset (SQLite in the runs folder)."""
    return os.environ.get(SWEEP_STORAGE_ENV, "").strip() or None


def sweep_artifacts_dir() -> Path | None:
    """Return the shared folder of sweep trials' models from MNIST_SWEEP_ARTIFACTS, None when unset."""
    raw = os.environ.get(SWEEP_ARTIFACTS_ENV, "").strip()
    return Path(raw).resolve() if raw else None

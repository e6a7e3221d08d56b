"""Every constant and default of the studio, and the training config dataclass."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
RESOURCES_DIR = PACKAGE_DIR / "resources"
PUBLISHED_CURVES_CSV = RESOURCES_DIR / "published_curves.csv"

DATA_DIR_ENV = "MNIST_DATA_DIR"
RUNS_DIR_ENV = "MNIST_RUNS_DIR"
MAX_CONCURRENT_ENV = "MNIST_MAX_CONCURRENT_RUNS"
DEFAULT_RUNS_DIR = "runs"
DEFAULT_MAX_CONCURRENT_RUNS = 1  # two cores: a second run would only halve both
MAX_QUEUED_ENV = "MNIST_MAX_QUEUED_PER_SESSION"
DEFAULT_MAX_QUEUED_PER_SESSION = 3  # in a shared classroom, one browser cannot fill the queue

IMAGE_SIZE = 28
NUM_CLASSES = 10
TRAIN_IMAGES = 60_000
TEST_IMAGES = 10_000
VALIDATION_FRACTION = 0.1  # the walkthrough's split: 54,000 train / 6,000 validation
SPLIT_RANDOM_STATE = 42
TRAIN_SPLIT_SIZE = 54_000
VALIDATION_SPLIT_SIZE = 6_000

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
LR_SCHEDULES = ("constant", "one_cycle")
AUGMENTATIONS = ("none", "shift")

# The live curve gets a point at least this often, whichever comes first.
METRICS_EVERY_BATCHES = 25
METRICS_EVERY_SECONDS = 1.0
EVALUATION_BATCH_SIZE = 256  # the fastest of 64-1024 for every architecture here


class ConfigError(ValueError):
    """An impossible training setting; the message names the field."""


@dataclass(frozen=True)
class TrainConfig:
    """One training run's settings; defaults are the walkthrough's CNN recipe."""

    architecture: str = "cnn"
    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "sgd"
    learning_rate: float = 1e-3
    seed: int = 0
    lr_schedule: str = "constant"
    augmentation: str = "none"
    label_smoothing: float = 0.0
    # Train on the first N images of the 54,000 (validation shrinks to N // 9): quick demos, tests.
    train_subset: int | None = None

    @classmethod
    def for_architecture(cls, architecture: str, **overrides) -> TrainConfig:
        """Return the published defaults of `architecture`, with `overrides` applied, validated."""
        from mnist_core.architectures import get_architecture

        arch = get_architecture(architecture)
        values = dict(arch.defaults, architecture=architecture)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """Return a validated config from a plain dict (unknown keys are an error)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"{unknown[0]}: not a training setting (known: {', '.join(sorted(names))})")
        return cls(**values).validated()

    def to_dict(self) -> dict:
        """Return the config as a JSON-ready dict."""
        return dataclasses.asdict(self)

    @property
    def train_size(self) -> int:
        """Return how many training images one epoch sees."""
        return self.train_subset or TRAIN_SPLIT_SIZE

    @property
    def validation_size(self) -> int:
        """Return how many validation images each epoch is scored on."""
        if self.train_subset is None:
            return VALIDATION_SPLIT_SIZE
        return max(1, min(VALIDATION_SPLIT_SIZE, self.train_subset // 9))

    @property
    def steps_per_epoch(self) -> int:
        """Return the number of batches in one epoch."""
        return -(-self.train_size // self.batch_size)

    def validated(self) -> TrainConfig:
        """Return self, or raise ConfigError naming the first impossible field."""
        from mnist_core.architectures import ARCHITECTURES

        if self.architecture not in ARCHITECTURES:
            raise ConfigError(
                f"architecture: unknown architecture {self.architecture!r} (choose one of {', '.join(ARCHITECTURES)})"
            )
        _check_int("epochs", self.epochs, low=1, high=10_000)
        if self.train_subset is not None:
            _check_int("train_subset", self.train_subset, low=10, high=TRAIN_SPLIT_SIZE)
        _check_int("batch_size", self.batch_size, low=1, high=self.train_size)
        _check_int("seed", self.seed, low=0, high=2**31 - 1)
        if not _is_number(self.learning_rate) or not 0 < self.learning_rate <= 10:
            raise ConfigError(f"learning_rate: must be a number > 0 and <= 10, got {self.learning_rate!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer: must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"lr_schedule: must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if self.augmentation not in AUGMENTATIONS:
            raise ConfigError(f"augmentation: must be one of {', '.join(AUGMENTATIONS)}, got {self.augmentation!r}")
        if not _is_number(self.label_smoothing) or not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"label_smoothing: must be in [0, 1), got {self.label_smoothing!r}")
        return self


def _is_number(value) -> bool:
    """Return True for a real int or float (bools excluded)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_int(field: str, value, *, low: int, high: int) -> None:
    """Raise ConfigError unless `value` is an int in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{field}: must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{field}: must be between {low:,} and {high:,}, got {value:,}")


def runs_root() -> Path:
    """Return the folder that holds every run (MNIST_RUNS_DIR, else ./runs)."""
    return Path(os.environ.get(RUNS_DIR_ENV) or DEFAULT_RUNS_DIR).resolve()


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


def max_queued_per_owner() -> int:
    """Return how many runs one browser session may have queued or running (MNIST_MAX_QUEUED_PER_SESSION)."""
    return _positive_int_env(MAX_QUEUED_ENV, DEFAULT_MAX_QUEUED_PER_SESSION)

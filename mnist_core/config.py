"""The training config dataclass: one run's settings, validated against the architectures and the studio's limits."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from mnist_core.architectures import ARCHITECTURES, get_architecture
from mnist_core.settings import (
    AUGMENTATIONS,
    LR_SCHEDULES,
    OPTIMIZERS,
    TRAIN_IMAGES,
    TRAIN_SPLIT_SIZE,
    VALIDATION_SPLIT_SIZE,
)

MAX_DRAWINGS_REPEAT = 100  # more copies than this and a few drawings drown the 54,000 digits
MAX_DRAWINGS_TRAIN = 100_000
SNAPSHOT_DIGEST = re.compile(r"^[0-9a-f]{16}$")


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
    # False: no holdout, train on all 60,000 (the 54,000, then the 6,000); best.keras is then the last epoch's
    # model and the curves show training only. 10 % more images for the Best recipes, at the cost of watching
    # nothing held out (BENCHMARKS.md section 3 has what it gained).
    validation: bool = True
    # Taught your handwriting (teaching.py): each of `drawings_train` saved drawings, snapshotted in the run folder
    # as handwriting-<drawings_snapshot>.npz, joins every epoch `drawings_repeat` times; 0, 0 and "" without.
    drawings_repeat: int = 0
    drawings_train: int = 0
    drawings_snapshot: str = ""

    @classmethod
    def for_architecture(cls, architecture: str, **overrides) -> TrainConfig:
        """Return the published defaults of `architecture`, with `overrides` applied, validated."""
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
        """Return how many training images one epoch sees: MNIST's (or the subset's) and the drawings' copies."""
        return self.mnist_train_size + self.drawings_repeat * self.drawings_train

    @property
    def mnist_train_size(self) -> int:
        """Return how many MNIST training images one epoch sees (the subset, else all 54,000, or 60,000 without
        validation)."""
        return self.train_subset or self.mnist_available

    @property
    def mnist_available(self) -> int:
        """Return how many MNIST training images there are to train on: 54,000, or all 60,000 without validation."""
        return TRAIN_SPLIT_SIZE if self.validation else TRAIN_IMAGES

    @property
    def validation_size(self) -> int:
        """Return how many validation images each epoch is scored on (0 without validation)."""
        if not self.validation:
            return 0
        if self.train_subset is None:
            return VALIDATION_SPLIT_SIZE
        return max(1, min(VALIDATION_SPLIT_SIZE, self.train_subset // 9))

    @property
    def steps_per_epoch(self) -> int:
        """Return the number of batches in one epoch."""
        return -(-self.train_size // self.batch_size)

    def validated(self) -> TrainConfig:
        """Return self, or raise ConfigError naming the first impossible field."""
        if self.architecture not in ARCHITECTURES:
            raise ConfigError(
                f"architecture: unknown architecture {self.architecture!r} (choose one of {', '.join(ARCHITECTURES)})"
            )
        _check_int("epochs", self.epochs, low=1, high=10_000)
        if not isinstance(self.validation, bool):
            raise ConfigError(f"validation: must be true or false, got {self.validation!r}")
        if self.train_subset is not None:
            _check_int("train_subset", self.train_subset, low=10, high=self.mnist_available)
        _check_int("drawings_repeat", self.drawings_repeat, low=0, high=MAX_DRAWINGS_REPEAT)
        _check_int("drawings_train", self.drawings_train, low=0, high=MAX_DRAWINGS_TRAIN)
        if len({self.drawings_repeat == 0, self.drawings_train == 0, self.drawings_snapshot == ""}) > 1:
            raise ConfigError("drawings_repeat: set with drawings_train and drawings_snapshot (or none of them)")
        if self.drawings_snapshot and not SNAPSHOT_DIGEST.fullmatch(str(self.drawings_snapshot)):
            raise ConfigError(f"drawings_snapshot: 16 hex digits, got {self.drawings_snapshot!r}")
        if self.drawings_repeat * self.drawings_train > self.mnist_available:
            raise ConfigError(
                f"drawings_repeat: {self.drawings_repeat} copies of {self.drawings_train:,} drawings is more images "
                f"than MNIST's {self.mnist_available:,}: repeat them fewer times"
            )
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

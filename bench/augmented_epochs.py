"""Seconds per training epoch with augmentation: the engine's stream (training.AugmentedDigits, each epoch made
whole on a helper thread while the one before trains) against batch-by-batch augmentation in a Keras PyDataset
(a forked helper process: the engine's way until 2026-12-03), and plain arrays with no augmentation (the ceiling).

The same network and recipe on each side (robust_cnn, Adam one-cycle to 3e-3, batch 128, a fresh model per fit),
the same `varied` augmentation; sides alternate stream, batch-by-batch, arrays, --rounds times; each fit runs
--epochs epochs and the first (tracing) is left out. Medians of the epochs that count, min-max beside them.
"""

from __future__ import annotations

import math
import time

import benchlib
import keras
import numpy as np
from benchlib import fmt, median

from mnist_core import augment
from mnist_core.architectures import build_model
from mnist_core.config import TrainConfig
from mnist_core.data import load_mnist, to_model_input
from mnist_core.training import AugmentedDigits, compile_model

SIDES = ("stream", "batch_by_batch", "arrays")
TARGET_OVERHEAD = 1.15  # an augmented epoch from the stream within 15 % of one from plain arrays


class BatchByBatch(keras.utils.PyDataset):
    """Shuffled batches (b, 28, 28, 1), each augmented when Keras asks for it, in one forked helper process."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, kind: str):
        super().__init__(workers=1, use_multiprocessing=True)
        self.x, self.y, self.batch_size, self.kind, self.epoch = x[..., 0], y, batch_size, kind, -1
        self.on_epoch_end()

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = np.random.default_rng([0, self.epoch]).permutation(len(self.x))

    def __getitem__(self, index: int):
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        rng = np.random.default_rng([0, self.epoch, index])
        return augment.augment(self.kind, self.x[rows], rng)[..., None], self.y[rows]


class EpochClock(keras.callbacks.Callback):
    """Collects each epoch's seconds, on_epoch_begin to on_epoch_end."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)


def epoch_seconds(side: str, x: np.ndarray, y: np.ndarray, args) -> list[float]:
    """Return the seconds of each epoch but the first of one fit of a fresh model fed the `side`'s way."""
    config = TrainConfig(
        architecture=args.arch,
        epochs=args.epochs,
        batch_size=128,
        optimizer="adam",
        learning_rate=3e-3,
        lr_schedule="one_cycle",
    )
    model = build_model(args.arch)
    steps = math.ceil(len(x) / config.batch_size)
    compile_model(model, config, total_steps=steps * args.epochs)
    if side == "stream":
        digits = AugmentedDigits(x, y, config.batch_size, 0, args.augmentation)
        data = {"x": digits.dataset(0, args.epochs), "steps_per_epoch": steps}
    elif side == "batch_by_batch":
        data = {"x": BatchByBatch(x, y, config.batch_size, args.augmentation)}
    else:
        data = {"x": x, "y": y, "batch_size": config.batch_size, "shuffle": True}
    clock = EpochClock()
    model.fit(**data, epochs=args.epochs, callbacks=[clock], verbose=0)
    return benchlib.measured(clock.seconds)


def main() -> None:
    """Time each side's epochs, print the table and checks, write bench/results/augmented_epochs.json."""
    parser = benchlib.parser(__doc__.split("\n\n")[0], images=2000, epochs=2, rounds=1)
    parser.add_argument("--arch", default="robust_cnn", help="architecture (default robust_cnn)")
    parser.add_argument("--augmentation", default="varied", help="augmentation kind (default varied)")
    parser.add_argument("--images", type=int, default=20000, help="training images (default 20,000)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per fit, the first left out (default 3)")
    parser.add_argument("--rounds", type=int, default=2, help="times each side is fitted (default 2)")
    args = benchlib.parse(parser)
    mnist = load_mnist()
    x, y = to_model_input(mnist.x_train[: args.images]), mnist.y_train[: args.images]
    times: dict[str, list[float]] = {side: [] for side in SIDES}
    for round_number in range(args.rounds):
        for side in SIDES:
            times[side] += epoch_seconds(side, x, y, args)
            print(f"  round {round_number + 1}, {side}: {[round(s, 1) for s in times[side]]}", flush=True)
    rows = [
        {"side": side, "median_s": median(times[side]), "min_s": min(times[side]), "max_s": max(times[side])}
        for side in SIDES
    ]
    benchlib.table(
        f"\nOne epoch of {args.images:,} digits, {args.arch}, '{args.augmentation}' (seconds)",
        rows,
        [("side", "side"), ("median", "median_s", 1), ("min", "min_s", 1), ("max", "max_s", 1)],
    )
    stream, batch_by_batch, arrays = (median(times[side]) for side in SIDES)
    speedup, overhead = batch_by_batch / stream, stream / arrays
    print(f"batch-by-batch / stream: {fmt(speedup)}x; stream / plain arrays (no augmentation): {fmt(overhead)}x")
    checks = [
        benchlib.check("augmented epoch, stream / plain arrays", overhead, TARGET_OVERHEAD, higher_is_better=False)
    ]
    benchlib.write_results(
        "augmented_epochs",
        {"settings": vars(args), "times": times, "rows": rows, "checks": checks},
        args.out,
        lambda results: {"speedup_over_batch_by_batch": speedup, "stream_over_arrays": overhead},
    )


if __name__ == "__main__":
    main()

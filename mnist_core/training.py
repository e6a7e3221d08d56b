"""The training loop of one run: data, compiled model, and the callback that records everything."""

from __future__ import annotations

import math
import time

import numpy as np

from mnist_core import storage
from mnist_core.architectures import build_model
from mnist_core.config import (
    EVALUATION_BATCH_SIZE,
    METRICS_EVERY_BATCHES,
    METRICS_EVERY_SECONDS,
    NUM_CLASSES,
    TrainConfig,
)
from mnist_core.data import load_mnist, split, to_model_input
from mnist_core.runs import EPOCH_COLUMNS, FINISHED, RUNNING, STOPPED, Run, update_status

ONE_CYCLE_WARMUP = 0.1  # share of all steps spent warming the learning rate up
ONE_CYCLE_START = 0.1  # warm-up starts at this fraction of the peak learning rate
SHIFT_PIXELS = 2


class StopRequested(Exception):
    """Raised inside fit when the run's stop file appears, so the stop costs at most one batch."""


def make_optimizer(config: TrainConfig, total_steps: int):
    """Return the Keras optimizer of `config`, with its learning-rate schedule over `total_steps`."""
    import keras

    learning_rate = config.learning_rate
    if config.lr_schedule == "one_cycle":
        warmup = max(1, int(total_steps * ONE_CYCLE_WARMUP))
        learning_rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=config.learning_rate * ONE_CYCLE_START,
            decay_steps=max(1, total_steps - warmup),
            warmup_target=config.learning_rate,
            warmup_steps=warmup,
            alpha=0.0,
        )
    optimizers = {
        "sgd": keras.optimizers.SGD,
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "rmsprop": keras.optimizers.RMSprop,
    }
    return optimizers[config.optimizer](learning_rate=learning_rate)


def compile_model(model, config: TrainConfig, total_steps: int) -> None:
    """Compile `model` with the config's optimizer and cross-entropy (sparse labels unless smoothing)."""
    import keras

    if config.label_smoothing:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
    else:
        # Same numbers as categorical cross-entropy on one-hot labels, without building one-hot arrays.
        loss = keras.losses.SparseCategoricalCrossentropy()
    model.compile(optimizer=make_optimizer(config, total_steps), loss=loss, metrics=["accuracy"])


def prepare_data(config: TrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (x_train (N,28,28,1) float32, y_train, x_val, y_val) for `config`, subset applied."""
    parts = split(load_mnist())
    x_train, y_train = parts.x_train[: config.train_size], parts.y_train[: config.train_size]
    x_val, y_val = parts.x_val[: config.validation_size], parts.y_val[: config.validation_size]
    if config.label_smoothing:
        y_train, y_val = np.eye(NUM_CLASSES, dtype=np.float32)[y_train], np.eye(NUM_CLASSES, dtype=np.float32)[y_val]
    return to_model_input(x_train), y_train, to_model_input(x_val), y_val


def shifted_batches(x, y, batch_size: int, seed: int):
    """Return a keras PyDataset of shuffled batches, each digit moved by up to 2 pixels, new every epoch."""
    import keras

    class ShiftedDigits(keras.utils.PyDataset):
        """Batches (b, 28, 28, 1) of randomly translated digits with their labels."""

        def __init__(self):
            super().__init__()
            pad = SHIFT_PIXELS
            self.padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
            self.rng = np.random.default_rng(seed)
            self.size = x.shape[1]
            self.on_epoch_end()

        def __len__(self):
            return math.ceil(len(x) / batch_size)

        def on_epoch_end(self):
            self.order = self.rng.permutation(len(x))
            self.offsets = self.rng.integers(0, 2 * SHIFT_PIXELS + 1, size=(len(x), 2))

        def __getitem__(self, index):
            rows = self.order[index * batch_size : (index + 1) * batch_size]
            grid = np.arange(self.size)
            ys = (self.offsets[rows, 0][:, None] + grid)[:, :, None]
            xs = (self.offsets[rows, 1][:, None] + grid)[:, None, :]
            return self.padded[rows[:, None, None], ys, xs], y[rows]

    return ShiftedDigits()


class RunRecorder:
    """Keras callback factory: writes the run's curves, progress, best model and TensorBoard logs."""

    @staticmethod
    def create(run: Run, config: TrainConfig, previous_elapsed: float):
        """Return a keras Callback recording into `run` (elapsed time continues from `previous_elapsed`)."""
        import threading

        import keras
        import tensorflow as tf

        class Recorder(keras.callbacks.Callback):
            # Keras runs an async-safe callback's batch-end hook on a helper thread, so the training
            # loop never waits for a batch's loss to be read back; the seed recipe gets the same treatment.
            async_safe = True

            def __init__(self):
                super().__init__()
                self.rows = run.epochs()
                self.best = max((r.get("val_accuracy", -1.0) for r in self.rows), default=-1.0)
                self.stop_file = run.file("stop")
                self.steps = config.steps_per_epoch
                self.started = time.perf_counter() - previous_elapsed
                self.lock = threading.Lock()
                self.last_written = (0, 0)
                board = run.file("tensorboard")
                self.writers = {
                    name: tf.summary.create_file_writer(str(board / name)) for name in ("train", "validation")
                }

            def elapsed(self) -> float:
                return time.perf_counter() - self.started

            def on_epoch_begin(self, epoch, logs=None):
                self.epoch = epoch + 1
                self.epoch_started = time.perf_counter()
                self.last_write = self.epoch_started

            def on_train_batch_begin(self, batch, logs=None):
                # On the training thread, before every batch: a stop costs at most the batch under way.
                if self.stop_file.exists():
                    raise StopRequested()

            def on_train_batch_end(self, batch, logs=None):
                now, done = time.perf_counter(), batch + 1
                due = done % METRICS_EVERY_BATCHES == 0 or now - self.last_write >= METRICS_EVERY_SECONDS
                if not due and done != self.steps:
                    return
                with self.lock:  # helper threads may finish out of order: keep the file in batch order
                    if (self.epoch, done) <= self.last_written:
                        return
                    self.last_written, self.last_write = (self.epoch, done), now
                    row = {
                        "epoch": self.epoch,
                        "batch": done,
                        "epoch_progress": round(self.epoch - 1 + done / self.steps, 5),
                        "loss": float(logs["loss"]),
                        "accuracy": float(logs["accuracy"]),
                        "elapsed": round(self.elapsed(), 3),
                    }
                    storage.append_jsonl(run.file("batches.jsonl"), [row])
                    progress = dict(
                        row,
                        steps_per_epoch=self.steps,
                        epochs=config.epochs,
                        epoch_elapsed=round(now - self.epoch_started, 3),
                    )
                    # Rewritten every second: the rename keeps it whole; an fsync each time would slow training.
                    storage.write_json_atomic(run.file("progress.json"), progress, durable=False)

            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                row = {
                    "epoch": epoch + 1,
                    "loss": float(logs.get("loss", math.nan)),
                    "accuracy": float(logs.get("accuracy", math.nan)),
                    "val_loss": float(logs.get("val_loss", math.nan)),
                    "val_accuracy": float(logs.get("val_accuracy", math.nan)),
                    "seconds": round(time.perf_counter() - self.epoch_started, 3),
                    "elapsed": round(self.elapsed(), 3),
                    "learning_rate": float(np.asarray(self.model.optimizer.learning_rate)),
                }
                self.rows.append(row)
                if row["val_accuracy"] > self.best:
                    self.best = row["val_accuracy"]
                    storage.save_model_atomic(self.model, run.file("best.keras"))
                storage.write_csv_atomic(run.file("epochs.csv"), self.rows, EPOCH_COLUMNS)
                self.write_tensorboard(epoch, row)
                update_status(run, epochs_done=epoch + 1, best_val_accuracy=self.best)

            def write_tensorboard(self, epoch: int, row: dict) -> None:
                """Write the epoch's scalars under the tags Keras' TensorBoard callback uses."""
                scalars = {
                    "train": {
                        "epoch_loss": row["loss"],
                        "epoch_accuracy": row["accuracy"],
                        "epoch_learning_rate": row["learning_rate"],
                    },
                    "validation": {"epoch_loss": row["val_loss"], "epoch_accuracy": row["val_accuracy"]},
                }
                for name, values in scalars.items():
                    with self.writers[name].as_default():
                        for tag, value in values.items():
                            tf.summary.scalar(tag, value, step=epoch)
                    self.writers[name].flush()

        return Recorder()


def train_run(run: Run) -> str:
    """Train `run` to its configured epochs (continuing from final.keras if it has epochs); return its state."""
    import keras

    config = run.config
    keras.utils.set_random_seed(config.seed)
    x_train, y_train, x_val, y_val = prepare_data(config)
    history = run.epochs()
    done = len(history)
    previous_elapsed = history[-1]["elapsed"] if done else 0.0
    if done and run.file("final.keras").exists():
        model = keras.models.load_model(run.file("final.keras"), safe_mode=True)
    elif done and run.file("best.keras").exists():
        model = keras.models.load_model(run.file("best.keras"), safe_mode=True)
    else:
        done, previous_elapsed = 0, 0.0
        model = build_model(config.architecture)
        compile_model(model, config, total_steps=config.epochs * config.steps_per_epoch)
    if done and config.lr_schedule == "one_cycle":
        # The saved one-cycle schedule has decayed to 0: continuing would not learn. Start a new cycle.
        compile_model(model, config, total_steps=(config.epochs - done) * config.steps_per_epoch)
    update_status(run, state=RUNNING, epochs_done=done, error=None)
    # The recorder writes TensorBoard logs itself: Keras' TensorBoard callback costs a summary op per batch.
    callbacks = [RunRecorder.create(run, config, previous_elapsed)]
    if config.augmentation == "shift":
        train_data = {"x": shifted_batches(x_train, y_train, config.batch_size, config.seed)}
    else:
        train_data = {"x": x_train, "y": y_train, "batch_size": config.batch_size, "shuffle": True}
    state = FINISHED
    try:
        model.fit(
            **train_data,
            epochs=config.epochs,
            initial_epoch=done,
            validation_data=(x_val, y_val),
            validation_batch_size=EVALUATION_BATCH_SIZE,
            callbacks=callbacks,
            verbose=0,
        )
    except StopRequested:
        state = STOPPED
    storage.save_model_atomic(model, run.file("final.keras"))
    if not run.file("best.keras").exists():
        storage.save_model_atomic(model, run.file("best.keras"))
    return state

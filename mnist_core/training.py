"""The training story of one run, top down: resume point, data, model, the recorder callback, fit.

Only the worker process imports this module (it imports Keras at the top, which takes seconds).

Crash safety: at the end of every epoch the model and its optimizer state are saved as
checkpoints/epoch-NNNN.keras (atomically) *before* epochs.csv records the epoch, and the previous
checkpoint is removed only after. Whatever moment the process dies at, the newest checkpoint whose epoch
epochs.csv holds is an exact resume point: training starts again from it, rows and running-curve points
past it are dropped, so epochs are 1..N once each and the curve never goes back.
"""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from mnist_core import augment, control, runfiles, storage
from mnist_core.architectures import build_model
from mnist_core.config import TrainConfig
from mnist_core.data import load_mnist, split, to_model_input
from mnist_core.runs import FINISHED, PRUNED, STOPPED, RunError, read_run
from mnist_core.settings import EVALUATION_BATCH_SIZE, METRICS_EVERY_BATCHES, METRICS_EVERY_SECONDS, NUM_CLASSES
from mnist_core.teaching import Teaching, new_record, read_record, read_snapshot, write_record

ONE_CYCLE_WARMUP = 0.1  # share of the cycle's steps spent warming the learning rate up
ONE_CYCLE_START = 0.1  # warm-up starts at this fraction of the peak learning rate
# Batch normalization's moving statistics keep momentum**steps of their start (mean 0, variance 1) after `steps`
# batches. A momentum of at most 1 - 4 / steps-per-epoch leaves at most e**-4 (2 %) of it by the first validation;
# Keras' 0.99 stays wherever an epoch has 400 batches or more (the Best and Robust presets on the full training set).
BATCH_NORM_EPOCH_WINDOWS = 4.0


class StopRequested(Exception):
    """Raised inside fit when the run's stop file appears, so the stop costs at most one batch."""


@keras.saving.register_keras_serializable(package="mnist_core")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Warm up from 10 % of `peak` over the first 10 % of a cycle's steps, then cosine down to zero.

    A cycle starts at optimizer step `start_step`, so a continued run gets a fresh cycle while the
    optimizer keeps counting its steps (and its moments) from where it was."""

    def __init__(self, peak: float, total_steps: int, start_step: int = 0):
        self.peak, self.total_steps, self.start_step = float(peak), int(total_steps), int(start_step)
        warmup = max(1, int(self.total_steps * ONE_CYCLE_WARMUP))
        self.cosine = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=self.peak * ONE_CYCLE_START,
            decay_steps=max(1, self.total_steps - warmup),
            warmup_target=self.peak,
            warmup_steps=warmup,
            alpha=0.0,
        )

    def __call__(self, step):
        return self.cosine(step - self.start_step)

    def get_config(self) -> dict:
        return {"peak": self.peak, "total_steps": self.total_steps, "start_step": self.start_step}


def learning_rate(config: TrainConfig, total_steps: int, start_step: int = 0):
    """Return the config's learning rate: a float, or a OneCycle over `total_steps` from `start_step`."""
    if config.lr_schedule == "one_cycle":
        return OneCycle(config.learning_rate, total_steps, start_step)
    return config.learning_rate


def compile_model(model, config: TrainConfig, total_steps: int) -> None:
    """Compile `model` with the config's optimizer and cross-entropy (sparse labels unless smoothing)."""
    optimizers = {
        "sgd": keras.optimizers.SGD,
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "rmsprop": keras.optimizers.RMSprop,
    }
    if config.label_smoothing:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
    else:
        # Same numbers as categorical cross-entropy on one-hot labels, without building one-hot arrays.
        loss = keras.losses.SparseCategoricalCrossentropy()
    optimizer = optimizers[config.optimizer](learning_rate=learning_rate(config, total_steps))
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])


def settle_batch_norm(model, steps_per_epoch: int) -> None:
    """Lower each BatchNormalization layer's momentum to at most 1 - 4 / `steps_per_epoch` (none below 0), so a
    run of few batches validates with statistics of its own digits rather than of the layer's start."""
    momentum = max(0.0, 1.0 - BATCH_NORM_EPOCH_WINDOWS / steps_per_epoch)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            # Read when fit first traces the layer, and saved in the model file with the rest of its config.
            layer.momentum = min(layer.momentum, momentum)


def fuse_batch_norm(model) -> None:
    """Make each BatchNormalization layer of `model` train with TensorFlow's fused kernel (predicting is unchanged).

    Keras computes a batch's statistics and their gradients in a dozen small ops; the fused kernel is one op each
    way, and an epoch takes 1.42x less time for the Quick network, 1.99x for the Best one (BENCHMARKS.md section
    13). Only the instance's call is replaced: the layer stays Keras' own class, so checkpoints and model files are
    unchanged."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.call = FusedBatchNormCall(layer, layer.call)


class FusedBatchNormCall:
    """A BatchNormalization layer's call: in training, one fused op that also gives the batch's mean and variance
    for Keras' moving averages; otherwise (or where the fused op does not apply) the layer's own call."""

    def __init__(self, layer, keras_call):
        self.layer, self.keras_call = layer, keras_call

    def __call__(self, inputs, training=None, mask=None):
        layer = self.layer
        fusable = (
            training
            and layer.trainable
            and mask is None
            and len(inputs.shape) == 4
            and layer.axis in (-1, 3)
            and layer.center
            and layer.scale
            and not layer.renorm
            and inputs.dtype == tf.float32
        )
        if not fusable:
            return self.keras_call(inputs, training=training, mask=mask)
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, layer.gamma, layer.beta, epsilon=layer.epsilon, is_training=True
        )
        # The kernel returns the unbiased variance; Keras averages the biased one (what it normalized by).
        count = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], tf.float32)
        variance = variance * (count - 1.0) / count
        momentum = layer.momentum
        layer.moving_mean.assign(layer.moving_mean * momentum + mean * (1.0 - momentum))
        layer.moving_variance.assign(layer.moving_variance * momentum + variance * (1.0 - momentum))
        return outputs


def prepare_data(
    config: TrainConfig, teaching: Teaching | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (x_train (N,28,28,1) float32, y_train, x_val, y_val) for `config`, subset applied, and the
    `teaching` drawings config.drawings_repeat times each after the MNIST digits (fit shuffles them in); without
    validation, the 6,000 follow the 54,000 in training and x_val, y_val hold no images."""
    parts = split(load_mnist())
    x_train, y_train = parts.x_train, parts.y_train
    if not config.validation:
        x_train, y_train = np.concatenate([x_train, parts.x_val]), np.concatenate([y_train, parts.y_val])
    x_train, y_train = x_train[: config.mnist_train_size], y_train[: config.mnist_train_size]
    if config.drawings_repeat:
        repeat = config.drawings_repeat
        x_train = np.concatenate([x_train, np.repeat(teaching.train_images, repeat, axis=0)])
        y_train = np.concatenate([y_train, np.repeat(teaching.train_labels.astype(y_train.dtype), repeat)])
    x_val, y_val = parts.x_val[: config.validation_size], parts.y_val[: config.validation_size]
    if config.label_smoothing:
        y_train, y_val = np.eye(NUM_CLASSES, dtype=np.float32)[y_train], np.eye(NUM_CLASSES, dtype=np.float32)[y_val]
    return to_model_input(x_train), y_train, to_model_input(x_val), y_val


class AugmentedDigits:
    """The training digits shuffled and augmented afresh each epoch (augment.py: 'shift', 'varied' or 'drawn')."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, kind: str):
        self.x, self.y, self.batch_size, self.kind, self.seed = x[..., 0], y, batch_size, kind, seed

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def epoch(self, number: int) -> tuple[np.ndarray, np.ndarray]:
        """Return epoch `number`'s images (N, 28, 28, 1) float32 in that epoch's order, and their labels."""
        # The order and each batch's changes depend on (seed, epoch, batch) alone: a resumed run sees the
        # orders and changes an uninterrupted one would.
        order = np.random.default_rng([self.seed, number]).permutation(len(self.x))
        images = np.empty((len(order), *self.x.shape[1:], 1), self.x.dtype)
        for index, start in enumerate(range(0, len(order), self.batch_size)):
            rows = order[start : start + self.batch_size]
            rng = np.random.default_rng([self.seed, number, index])
            images[start : start + self.batch_size, ..., 0] = augment.augment(self.kind, self.x[rows], rng)
        return images, self.y[order]

    def batches(self, first_epoch: int, end_epoch: int):
        """Yield (images (b, 28, 28, 1), labels) batch after batch for epochs first_epoch .. end_epoch - 1."""
        # Each epoch is made whole on a helper thread while the one before trains: no process is forked from
        # TensorFlow's threaded one (Keras' PyDataset forked one each epoch), and it is at par with that
        # batch-by-batch way or a little faster (1.04x; bench/augmented_epochs.py).
        helper = ThreadPoolExecutor(1, thread_name_prefix="augment")
        try:
            coming = helper.submit(self.epoch, first_epoch)
            for number in range(first_epoch, end_epoch):
                images, labels = coming.result()
                if number + 1 < end_epoch:
                    coming = helper.submit(self.epoch, number + 1)
                for start in range(0, len(labels), self.batch_size):
                    yield images[start : start + self.batch_size], labels[start : start + self.batch_size]
        finally:
            helper.shutdown(wait=False, cancel_futures=True)

    def dataset(self, first_epoch: int, end_epoch: int) -> tf.data.Dataset:
        """Return the batches of epochs first_epoch .. end_epoch - 1 as one tf.data stream, a few batches ahead."""
        signature = (
            tf.TensorSpec((None, *self.x.shape[1:], 1), tf.as_dtype(self.x.dtype)),
            tf.TensorSpec((None, *self.y.shape[1:]), tf.as_dtype(self.y.dtype)),
        )
        stream = tf.data.Dataset.from_generator(
            lambda: self.batches(first_epoch, end_epoch), output_signature=signature
        )
        return stream.prefetch(4)


class RunRecorder(keras.callbacks.Callback):
    """Writes the run's running curve, progress, per-epoch rows, checkpoints, best model and TensorBoard logs."""

    # Keras runs an async-safe callback's batch-end hook on a helper thread, so the training loop never
    # waits for a batch's loss to be read back; the seed recipe gets the same treatment.
    async_safe = True

    def __init__(self, path: Path, config: TrainConfig, rows: list[dict], previous_elapsed: float, best_since: int = 0):
        super().__init__()
        self.path, self.config, self.rows = path, config, rows
        # best.keras is the best epoch since `best_since`: once taught your handwriting, a run's model is the
        # taught one even where its MNIST validation accuracy is a hair below an earlier epoch's.
        self.best = max((row["val_accuracy"] for row in rows[best_since:]), default=-1.0)
        self.validation = config.validation  # without it, best.keras is each epoch's model: the last one is kept
        self.stop_file = path / runfiles.STOP
        self.steps = config.steps_per_epoch
        self.started = time.perf_counter() - previous_elapsed
        self.lock = threading.Lock()
        self.last_written = (0, 0)
        board = path / runfiles.TENSORBOARD
        logs = ("train", "validation") if config.validation else ("train",)
        self.writers = {name: tf.summary.create_file_writer(str(board / name)) for name in logs}

    def elapsed(self) -> float:
        """Return the run's training seconds so far (continued across resumes)."""
        return time.perf_counter() - self.started

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1
        self.epoch_started = time.perf_counter()
        self.last_write = self.epoch_started
        self.first_batch_end = None  # the first batch builds TensorFlow's graph: the pace is timed after it

    def on_train_batch_begin(self, batch, logs=None):
        # On the training thread, before every batch: a stop costs at most the batch under way.
        if self.stop_file.exists():
            raise StopRequested()

    def on_train_batch_end(self, batch, logs=None):
        now, done = time.perf_counter(), batch + 1
        if done == 1:
            self.first_batch_end = now
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
            storage.append_jsonl(self.path / runfiles.BATCHES, [row])
            progress = dict(
                row,
                steps_per_epoch=self.steps,
                epochs=self.config.epochs,
                epoch_elapsed=round(now - self.epoch_started, 3),
                seconds_per_batch=(
                    round((now - self.first_batch_end) / (done - 1), 6) if self.first_batch_end and done > 1 else None
                ),
            )
            # Rewritten every second: the rename keeps it whole; an fsync each time would slow training.
            storage.write_json_atomic(self.path / runfiles.PROGRESS, progress, durable=False)

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
        # The checkpoint first, then the row that makes it the resume point, then the old checkpoint goes.
        checkpoints = self.path / runfiles.CHECKPOINTS
        checkpoints.mkdir(exist_ok=True)
        storage.save_model_atomic(self.model, checkpoints / runfiles.checkpoint_name(row["epoch"]))
        if not self.validation or row["val_accuracy"] > self.best:
            self.best = row["val_accuracy"]
            save_for_use(self.model, self.path / runfiles.BEST_MODEL)
        self.rows.append(row)
        storage.write_csv_atomic(self.path / runfiles.EPOCHS, self.rows, runfiles.EPOCH_COLUMNS)
        remove_checkpoints(self.path, lambda number: number != row["epoch"])
        self.write_tensorboard(epoch, row)
        best = self.best if self.validation else None
        control.update_status(self.path, epochs_done=row["epoch"], best_val_accuracy=best)

    def write_tensorboard(self, epoch: int, row: dict) -> None:
        """Write the epoch's scalars under the tags Keras' TensorBoard callback uses."""
        scalars = {
            "train": {
                "epoch_loss": row["loss"],
                "epoch_accuracy": row["accuracy"],
                "epoch_learning_rate": row["learning_rate"],
            },
        }
        if self.validation:
            scalars["validation"] = {"epoch_loss": row["val_loss"], "epoch_accuracy": row["val_accuracy"]}
        for name, values in scalars.items():
            with self.writers[name].as_default():
                for tag, value in values.items():
                    tf.summary.scalar(tag, value, step=epoch)
            self.writers[name].flush()


def save_for_use(model, path: Path) -> None:
    """Save the model alone (no optimizer, no studio classes), so any Keras loads it for prediction."""
    description = keras.saving.serialize_keras_object(model)
    description.pop("compile_config", None)  # uncompiled: the file holds no optimizer
    plain = keras.saving.deserialize_keras_object(description)
    plain.set_weights(model.get_weights())
    storage.save_model_atomic(plain, path)


def checkpoints_of(path: Path) -> dict[int, Path]:
    """Return the run's epoch checkpoints by epoch number."""
    folder = path / runfiles.CHECKPOINTS
    found = {}
    for entry in folder.iterdir() if folder.is_dir() else ():
        match = runfiles.CHECKPOINT_PATTERN.match(entry.name)
        if match:
            found[int(match.group(1))] = entry
    return found


def remove_checkpoints(path: Path, unwanted) -> None:
    """Delete the checkpoints whose epoch number `unwanted(number)` is true for."""
    for number, checkpoint in checkpoints_of(path).items():
        if unwanted(number):
            checkpoint.unlink(missing_ok=True)


def remove_temp_files(path: Path) -> None:
    """Delete temp files that killed writers left in the run folder and its checkpoints."""
    for folder in (path, path / runfiles.CHECKPOINTS):
        for entry in folder.iterdir() if folder.is_dir() else ():
            if runfiles.is_temp_file(entry.name) and entry.is_file():
                entry.unlink(missing_ok=True)


def resume_point(path: Path, recorded_epochs: int) -> tuple[int, Path | None]:
    """Return (epoch to resume after, its checkpoint): the newest checkpoint that epochs.csv records."""
    usable = {number: file for number, file in checkpoints_of(path).items() if number <= recorded_epochs}
    if not usable:
        return 0, None
    epoch = max(usable)
    return epoch, usable[epoch]


def cycle_end(optimizer) -> int | None:
    """Return the optimizer step at which its one-cycle schedule ends, None when it has none."""
    schedule = optimizer.get_config().get("learning_rate")
    if isinstance(schedule, dict) and str(schedule.get("class_name", "")).endswith("OneCycle"):
        return schedule["config"]["start_step"] + schedule["config"]["total_steps"]
    return None


def restore(path: Path, config: TrainConfig, rows: list[dict]):
    """Return (model compiled with its optimizer state, epochs already trained) to train `path` on from."""
    steps = config.steps_per_epoch
    start, checkpoint = resume_point(path, len(rows))
    legacy = not (path / runfiles.CHECKPOINTS).exists() and rows and (path / runfiles.FINAL_MODEL).exists()
    if checkpoint is not None:
        model = keras.saving.load_model(checkpoint, safe_mode=True)
    elif legacy:
        # A run from before epoch checkpoints: its final model is the only state there is.
        start, model = len(rows), keras.saving.load_model(path / runfiles.FINAL_MODEL, safe_mode=True)
    else:
        model = build_model(config.architecture)
        settle_batch_norm(model, steps)
        compile_model(model, config, config.epochs * steps)
        return model, 0
    if config.lr_schedule != "one_cycle":
        return model, start
    done_steps, remaining = int(model.optimizer.iterations), (config.epochs - start) * steps
    if (cycle_end(model.optimizer) or 0) < done_steps + remaining:
        # Continued past the end of its cycle, where the rate has decayed to zero: a new cycle over the added
        # epochs, from the step the optimizer has reached (not start * steps: teaching makes epochs longer). The
        # optimizer keeps its step count and moments. (A resumed run keeps its cycle.)
        model.optimizer.learning_rate = OneCycle(config.learning_rate, remaining, done_steps)
    return model, start


def accuracy_on(model, images: np.ndarray, labels: np.ndarray) -> float:
    """Return the share of uint8 `images` (n, 28, 28) that `model` gives the right digit (n >= 1)."""
    scores = model.predict(to_model_input(images), batch_size=EVALUATION_BATCH_SIZE, verbose=0)
    return float(np.mean(np.argmax(scores, axis=1) == labels))


class HeldOutScore(keras.callbacks.Callback):
    """After each epoch of a taught run, records the held-out drawings' accuracy in handwriting.json."""

    def __init__(self, path: Path, teaching: Teaching, record: dict):
        super().__init__()
        self.path, self.teaching, self.record = path, teaching, record

    def on_epoch_end(self, epoch, logs=None):
        accuracy = accuracy_on(self.model, self.teaching.held_out_images, self.teaching.held_out_labels)
        self.record["after"].append({"epoch": epoch + 1, "accuracy": accuracy})
        write_record(self.path, self.record)


def taught(path: Path, config: TrainConfig, record: dict | None, model, start: int) -> tuple[Teaching | None, dict]:
    """Return (the drawings a taught run trains on, its handwriting record as of epoch `start`): a fresh record
    when the one there is about another snapshot, the held-out accuracy before teaching measured with `model` when
    not yet done; (None, {}) for a run without drawings."""
    if not config.drawings_repeat:
        return None, {}
    digest = config.drawings_snapshot
    teaching = read_snapshot(path, digest)
    if teaching.counts[0] != config.drawings_train:
        raise RunError(
            f"{runfiles.handwriting_data(digest)}: holds {teaching.counts[0]} drawings, config.json says "
            f"{config.drawings_train}; teach the run again"
        )
    if record is None or record.get("snapshot") != digest:
        record = new_record(digest, start, config.drawings_repeat, teaching)
    record = dict(record, after=[row for row in record["after"] if row["epoch"] <= start])
    if record["before"] is None and start == record["at_epoch"]:
        record["before"] = accuracy_on(model, teaching.held_out_images, teaching.held_out_labels)
    write_record(path, record)
    return teaching, record


class EpochHook(keras.callbacks.Callback):
    """After each epoch is recorded, calls on_epoch(epoch, val_accuracy); training stops when it returns True
    (a sweep prunes the trial)."""

    def __init__(self, on_epoch):
        super().__init__()
        self.on_epoch, self.pruned = on_epoch, False

    def on_epoch_end(self, epoch, logs=None):
        # Only sweeps prune, and their trials always hold out validation images: a missing score is a bug.
        if self.on_epoch(epoch + 1, float((logs or {})["val_accuracy"])):
            self.pruned = True
            self.model.stop_training = True


def drop_past(path: Path, epoch: int, rows: list[dict]) -> list[dict]:
    """Drop every record past the end of `epoch`: rows, running-curve points, later checkpoints, progress."""
    kept = rows[:epoch]
    if len(kept) != len(rows):
        storage.write_csv_atomic(path / runfiles.EPOCHS, kept, runfiles.EPOCH_COLUMNS)
    batches = storage.read_jsonl(path / runfiles.BATCHES)
    honest = [row for row in batches if row.get("epoch_progress", 0) <= epoch + 1e-9]
    if len(honest) != len(batches):
        storage.write_jsonl_atomic(path / runfiles.BATCHES, honest)
    remove_checkpoints(path, lambda number: number > epoch)
    (path / runfiles.PROGRESS).unlink(missing_ok=True)
    return kept


def train_run(path: Path, on_epoch=None) -> str:
    """Train the run in `path` to its configured epochs, resuming from its last checkpoint; return its state.
    `on_epoch(epoch, val_accuracy)`, if given, is called after each epoch and prunes the run by returning True."""
    run = read_run(path)
    if run.damaged:
        raise RunError(f"run {run.run_id} is damaged: {run.problem}")
    config = run.config
    remove_temp_files(path)
    keras.utils.set_random_seed(config.seed)
    model, start = restore(path, config, list(run.epochs))
    fuse_batch_norm(model)
    teaching, record = taught(path, config, read_record(path), model, start)
    x_train, y_train, x_val, y_val = prepare_data(config, teaching)
    rows = drop_past(path, start, list(run.epochs))
    control.update_status(path, epochs_done=start, error=None)
    previous_elapsed = rows[-1]["elapsed"] if rows else 0.0
    # The held-out score is written before its epoch is recorded: killed in between, the epoch is trained again
    # and the score of an epoch that never counted is dropped on resume (taught). The recorder writes TensorBoard
    # logs itself (Keras' TensorBoard callback costs a summary op per batch); an epoch is on disk before the hook.
    callbacks = [HeldOutScore(path, teaching, record)] if teaching else []
    callbacks += [RunRecorder(path, config, rows, previous_elapsed, best_since=record.get("at_epoch", 0))]
    hook = EpochHook(on_epoch) if on_epoch else None
    callbacks += [hook] if hook else []
    if config.augmentation != "none":
        digits = AugmentedDigits(x_train, y_train, config.batch_size, config.seed, config.augmentation)
        train_data = {"x": digits.dataset(start, config.epochs), "steps_per_epoch": len(digits)}
    else:
        train_data = {"x": x_train, "y": y_train, "batch_size": config.batch_size, "shuffle": True}
    state = FINISHED
    try:
        model.fit(
            **train_data,
            epochs=config.epochs,
            initial_epoch=start,
            validation_data=(x_val, y_val) if len(x_val) else None,
            validation_batch_size=EVALUATION_BATCH_SIZE,
            callbacks=callbacks,
            verbose=0,
        )
    except StopRequested:
        state = STOPPED
    if hook and hook.pruned:
        state = PRUNED
    save_for_use(model, path / runfiles.FINAL_MODEL)
    if not (path / runfiles.BEST_MODEL).exists():
        save_for_use(model, path / runfiles.BEST_MODEL)
    return state

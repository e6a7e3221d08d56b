"""The files of a run folder, named once: every reader and writer of a run uses these constants.

A run folder (plain files other tools can read):
    config.json       the TrainConfig
    status.json       state (queued/running/finished/stopped/failed, or imported), error, pids, times, epochs done
    progress.json     the trainer's latest position (epoch, batch, running loss/accuracy), ~1 s fresh
    epochs.csv        one row per epoch: loss, accuracy, val_loss, val_accuracy, seconds, elapsed, lr
    batches.jsonl     the running per-batch curve, a JSON object per line
    checkpoints/      epoch-NNNN.keras: the model and optimizer after the last finished epoch (resume point)
    best.keras        the model with the best validation accuracy so far
    final.keras       the model when training ended (finished or stopped)
    evaluation.json   the test-set evaluation, once computed
    labels.json       what people call it: a display name, a note and tags (optional)
    imported.json     for a model brought in from elsewhere (no config, no curves): its file, format, shapes
    handwriting-<digest>.npz  for a run taught your handwriting: the drawings it trains on and those held out
                      (teaching.py); config.json names the one in use by its digest (the first 16 hex of its SHA-256)
    handwriting.json  ... and its record: repeat factor, counts, held-out accuracy before and after each epoch
    tensorboard/      TensorBoard event files (`tensorboard --logdir runs`)
    log.txt           the training process's output (tracebacks end up here)
    stop              present while a stop has been asked for
    worker.lock       flock-held by the run's supervisor and worker for as long as either lives
"""

from __future__ import annotations

import re

CONFIG = "config.json"
STATUS = "status.json"
PROGRESS = "progress.json"
EPOCHS = "epochs.csv"
BATCHES = "batches.jsonl"
CHECKPOINTS = "checkpoints"
BEST_MODEL = "best.keras"
FINAL_MODEL = "final.keras"
EVALUATION = "evaluation.json"
LABELS = "labels.json"
IMPORTED = "imported.json"
HANDWRITING = "handwriting.json"
HANDWRITING_DATA_PATTERN = re.compile(r"^handwriting-([0-9a-f]{16})\.npz$")
TENSORBOARD = "tensorboard"
LOG = "log.txt"
STOP = "stop"
WORKER_LOCK = "worker.lock"

# In the runs folder itself: the lock every state change holds, the prefix of folders being created, and the
# trash a deleted run is moved into (its folder renamed RUN_ID.NANOSECONDS, so it can be restored as it was).
ROOT_LOCK = ".lock"
CREATING_PREFIX = ".creating-"
TRASH = ".trash"
TRASH_KEPT = 20  # the newest deletions kept for undo; each deletion empties the trash past these
SWEEPS_DB = "sweeps.db"  # the sweeps' Optuna storage (SQLite) when no other is configured
SWEEP_LOGS = ".sweeps"  # NAME.log: the output of a sweep's background workers

EPOCH_COLUMNS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds", "elapsed", "learning_rate"]
CHECKPOINT_PATTERN = re.compile(r"^epoch-(\d{4,})\.keras$")
# What create_run names a folder: YYYYmmdd-HHMMSS-<architecture>-<4 hex digits>.
RUN_ID_PATTERN = re.compile(r"^\d{8}-\d{6}-[a-z0-9_]{1,40}-[0-9a-f]{4}$")


def trash_entry(run_id: str, deleted_ns: int) -> str:
    """Return the trash folder name of run `run_id` deleted at `deleted_ns` (nanoseconds): RUN_ID.NANOSECONDS."""
    return f"{run_id}.{deleted_ns}"


def trashed_run_id(entry: str) -> str:
    """Return the run id of a trash entry (RUN_ID.NANOSECONDS)."""
    return entry.rsplit(".", 1)[0]


def deleted_at(entry: str) -> int:
    """Return when a trash entry was deleted, in nanoseconds (0 for a stray name)."""
    stamp = entry.rsplit(".", 1)[-1]
    return int(stamp) if stamp.isdigit() else 0


def handwriting_data(digest: str) -> str:
    """Return the file name of the drawings snapshot whose SHA-256 starts with the 16 hex digits `digest`."""
    return f"handwriting-{digest}.npz"


def checkpoint_name(epoch: int) -> str:
    """Return the file name of the checkpoint taken at the end of `epoch` (1-based)."""
    return f"epoch-{epoch:04d}.keras"


def is_temp_file(name: str) -> bool:
    """Return True for a temp file an atomic write leaves behind when its process is killed."""
    return name.startswith(".") and ".tmp" in name

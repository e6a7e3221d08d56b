"""Teach a run your handwriting: continue it with your saved drawings mixed into its training data.

The drawings are split once and for all by file name: one in four (by a hash of the name) is held out and never
trained on, so its accuracy before and after is an honest measure, and a drawing held out today stays held out
when more are saved tomorrow. Continuing a run this way puts a snapshot of both parts in the run folder, so a
resumed or continued run trains on exactly those drawings whatever happens to the drawings folder meanwhile.

Crash safety: the snapshot is written under its own digest (handwriting-<digest>.npz) before config.json names
it, and config.json is the commit point: killed before it, the run is as it was (its old snapshot still there);
after it, the run trains on the new one. handwriting.json, the record of the held-out accuracy before teaching and
after each epoch since, is the training process's: it starts a fresh record when the one there is about another
snapshot.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_core import runfiles, storage
from mnist_core.drawings import DrawingSet
from mnist_core.labels import counted
from mnist_core.runs import RunError

HELD_OUT_ONE_IN = 4  # a drawing whose name hashes to 0 mod 4 is held out: a fixed quarter
DEFAULT_SHARE = 0.02  # the repeat factor suggested: the drawings' copies make about 2 % of an epoch
_SNAPSHOT_KEYS = ("train_images", "train_labels", "held_out_images", "held_out_labels")


@dataclass(frozen=True)
class Teaching:
    """Your drawings split for teaching: images (n, 28, 28) uint8 and labels (n,) to train on, and held out."""

    train_images: np.ndarray
    train_labels: np.ndarray
    held_out_images: np.ndarray
    held_out_labels: np.ndarray

    @property
    def counts(self) -> tuple[int, int]:
        """Return (drawings to train on, drawings held out)."""
        return len(self.train_labels), len(self.held_out_labels)


def is_held_out(name: str) -> bool:
    """Return True when the drawing saved as `name` is one of the held-out quarter (always the same answer)."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % HELD_OUT_ONE_IN == 0


def split(mine: DrawingSet) -> Teaching:
    """Return your saved drawings split into those to train on and the held-out quarter."""
    held = np.array([is_held_out(name) for name in mine.names], dtype=bool)
    return Teaching(mine.images[~held], mine.labels[~held], mine.images[held], mine.labels[held])


def check(teaching: Teaching) -> None:
    """Raise RunError, in one line, unless there are drawings both to train on and to hold out."""
    train, held_out = teaching.counts
    if not train or not held_out:
        raise RunError(
            f"{counted(train + held_out, 'saved drawing')}: {train} to train on and {held_out} held out; teaching "
            "needs at least one of each (one drawing in four is held out): save a few more on Draw"
        )


def suggested_repeat(train: int, mnist_images: int) -> int:
    """Return a repeat factor that makes `train` drawings about 2 % of an epoch of `mnist_images` digits (1-100)."""
    return int(np.clip(round(DEFAULT_SHARE * mnist_images / max(train, 1)), 1, 100))


def share_line(train: int, repeat: int, mnist_images: int) -> str:
    """Return what a repeat factor means in one line: copies per epoch and their share of it."""
    copies = train * repeat
    return (
        f"each of your {counted(train, 'training drawing')} is seen {counted(repeat, 'time')} an epoch: {copies:,} "
        f"of the {mnist_images + copies:,} images an epoch ({100 * copies / (mnist_images + copies):.1f} %)"
    )


def write_snapshot(path: Path, teaching: Teaching) -> str:
    """Write the drawings snapshot into the run folder (atomically, once per content); return its digest."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{key: getattr(teaching, key) for key in _SNAPSHOT_KEYS})
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()[:16]
    if not (path / runfiles.handwriting_data(digest)).is_file():
        storage.write_bytes_atomic(path / runfiles.handwriting_data(digest), data)
    return digest


def remove_other_snapshots(path: Path, digest: str) -> None:
    """Delete the run's drawings snapshots other than `digest` (left by an earlier teaching or a killed one)."""
    for entry in path.iterdir():
        match = runfiles.HANDWRITING_DATA_PATTERN.match(entry.name)
        if match and match.group(1) != digest:
            entry.unlink(missing_ok=True)


def read_snapshot(path: Path, digest: str) -> Teaching:
    """Return the drawings snapshot `digest` of the run at `path`; RunError naming the file when it is missing,
    damaged or not what its digest says."""
    name = runfiles.handwriting_data(digest)
    try:
        data = (path / name).read_bytes()
    except FileNotFoundError:
        raise RunError(f"{name}: missing; the run cannot train on your drawings: teach it again") from None
    if hashlib.sha256(data).hexdigest()[:16] != digest:
        raise RunError(f"{name}: damaged (its content changed); teach the run again")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            teaching = Teaching(*(np.asarray(arrays[key]) for key in _SNAPSHOT_KEYS))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as error:
        raise RunError(f"{name}: damaged ({type(error).__name__}); teach the run again") from None
    pairs = ((teaching.train_images, teaching.train_labels), (teaching.held_out_images, teaching.held_out_labels))
    if not all(images.shape[1:] == (28, 28) and len(labels) == len(images) for images, labels in pairs):
        raise RunError(f"{name}: damaged (wrong shapes); teach the run again")
    return teaching


def new_record(digest: str, at_epoch: int, repeat: int, teaching: Teaching) -> dict:
    """Return a fresh handwriting.json record of teaching snapshot `digest` from epoch `at_epoch`."""
    train, held_out = teaching.counts
    return {
        "snapshot": digest,
        "at_epoch": at_epoch,
        "repeat": repeat,
        "train": train,
        "held_out": held_out,
        "before": None,
        "after": [],
    }


def read_record(path: Path) -> dict | None:
    """Return the run's handwriting.json as it is (None when there is none), for the training process."""
    return storage.read_json_object(path / runfiles.HANDWRITING)


def write_record(path: Path, record: dict) -> None:
    """Replace the run's handwriting.json with `record`, atomically."""
    storage.write_json_atomic(path / runfiles.HANDWRITING, record)


def after_line(record: dict, training: bool) -> str:
    """Return the held-out accuracy before and after teaching in one line (what is known so far; `training`:
    whether the run is queued or training now)."""
    before = record.get("before")
    start = f"{100 * before:.1f} %" if before is not None else "not measured yet"
    after = record.get("after") or []
    if after:
        end = f"{100 * after[-1]['accuracy']:.1f} % after epoch {after[-1]['epoch']}"
    else:
        end = "after: training…" if training else "no taught epoch finished yet"
    return f"{counted(record['held_out'], 'held-out drawing')}: {start} before → {end}"

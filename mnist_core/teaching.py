"""Teach a run your handwriting: continue it with your saved drawings mixed into its training data.

The drawings are split once and for all by file name: one in four (by a hash of the name) is held out and never
trained on, so its accuracy before and after is an honest measure, and a drawing held out today stays held out
when more are saved tomorrow. Continuing a run this way puts a snapshot of both parts in the run folder
(handwriting.npz), so a resumed or continued run trains on exactly those drawings, whatever happens to the
drawings folder meanwhile; handwriting.json records the repeat factor, the counts, and the held-out accuracy
before the continue and after each epoch since (the training process writes those).
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
            f"{train + held_out} saved drawing(s): {train} to train on and {held_out} held out; teaching needs at "
            "least one of each (one drawing in four is held out): save a few more on Draw"
        )


def suggested_repeat(train: int, mnist_images: int) -> int:
    """Return a repeat factor that makes `train` drawings about 2 % of an epoch of `mnist_images` digits (1-100)."""
    return int(np.clip(round(DEFAULT_SHARE * mnist_images / max(train, 1)), 1, 100))


def share_line(train: int, repeat: int, mnist_images: int) -> str:
    """Return what a repeat factor means in one line: copies per epoch and their share of it."""
    copies = train * repeat
    return (
        f"each of your {train} training drawing(s) is seen {repeat} time(s) an epoch: {copies:,} of the "
        f"{mnist_images + copies:,} images an epoch ({100 * copies / (mnist_images + copies):.1f} %)"
    )


def write_snapshot(path: Path, teaching: Teaching, repeat: int, at_epoch: int) -> None:
    """Write the run's handwriting.npz and a fresh handwriting.json (nothing measured yet), each atomically."""
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        train_images=teaching.train_images,
        train_labels=teaching.train_labels,
        held_out_images=teaching.held_out_images,
        held_out_labels=teaching.held_out_labels,
    )
    storage.write_bytes_atomic(path / runfiles.HANDWRITING_DATA, buffer.getvalue())
    train, held_out = teaching.counts
    record = {"at_epoch": at_epoch, "repeat": repeat, "train": train, "held_out": held_out, "before": None}
    write_record(path, record | {"after": []})


def read_snapshot(path: Path) -> Teaching:
    """Return the drawings the run at `path` was taught with; RunError naming the file when it is missing or bad."""
    try:
        with np.load(path / runfiles.HANDWRITING_DATA, allow_pickle=False) as arrays:
            teaching = Teaching(*(np.asarray(arrays[key]) for key in _SNAPSHOT_KEYS))
    except FileNotFoundError:
        raise RunError(f"{runfiles.HANDWRITING_DATA}: missing; the run cannot train on your drawings") from None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as error:
        raise RunError(f"{runfiles.HANDWRITING_DATA}: damaged ({type(error).__name__}); teach the run again") from None
    pairs = ((teaching.train_images, teaching.train_labels), (teaching.held_out_images, teaching.held_out_labels))
    if not all(images.shape[1:] == (28, 28) and len(labels) == len(images) for images, labels in pairs):
        raise RunError(f"{runfiles.HANDWRITING_DATA}: damaged (wrong shapes); teach the run again")
    return teaching


def write_record(path: Path, record: dict) -> None:
    """Replace the run's handwriting.json with `record`, atomically."""
    storage.write_json_atomic(path / runfiles.HANDWRITING, record)


def after_line(record: dict) -> str:
    """Return the held-out accuracy before and after teaching in one line (what is known so far)."""
    before = record.get("before")
    start = f"{100 * before:.1f} %" if before is not None else "not measured yet"
    after = record.get("after") or []
    end = f"{100 * after[-1]['accuracy']:.1f} % after epoch {after[-1]['epoch']}" if after else "after: training…"
    return f"{record['held_out']} held-out drawing(s): {start} before → {end}"

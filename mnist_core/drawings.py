"""Your own handwriting: drawings saved with their true digit, a small labelled set beside the runs.

A drawings folder (plain files other tools read; MNIST_DRAWINGS_DIR, else ./drawings):
    labels.csv          file,label,saved: one row per drawing, the labels' one source
    <stamp>-<id>.png    the 28x28 input the models saw (8-bit grey, white ink on black, as MNIST)
    raw/<same name>     the canvas as it was drawn (RGBA)
    .trash/             deleted drawings, for undo: both images and their row (row.json)
    .lock               flock: one change at a time, across tabs and processes

File names are made here, never taken from a person. A row or an image that cannot be read is left out of
the set with a message naming it; the other drawings still load.
"""

from __future__ import annotations

import csv
import fcntl
import io
import os
import re
import secrets
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

from mnist_core import storage
from mnist_core.settings import IMAGE_SIZE, NUM_CLASSES, drawings_root

LABELS = "labels.csv"
RAW = "raw"
TRASH = ".trash"
LOCK = ".lock"
ROW = "row.json"
COLUMNS = ["file", "label", "saved"]
NAME_PATTERN = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{8}\.png$")
BLANK_INK = 0.05  # a drawing whose brightest pixel is below this is blank (0-1 scale)


class DrawingError(ValueError):
    """A drawing cannot be saved, deleted or restored as asked; the message is one line for the person."""


@dataclass(frozen=True)
class DrawingSet:
    """The saved drawings: their file names, labels (N,), images (N, 28, 28) uint8 and saving times, with a
    message for each row or image left out."""

    names: tuple[str, ...]
    labels: np.ndarray
    images: np.ndarray
    saved: tuple[str, ...]
    problems: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.names)


def resolve(root: Path | str | None) -> Path:
    """Return the drawings folder to use: `root`, else the configured one."""
    return Path(root).resolve() if root is not None else drawings_root()


@contextmanager
def _locked(root: Path):
    """Hold the drawings folder's lock: one change at a time, across tabs and processes."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _png(image: np.ndarray) -> bytes:
    """Return an image (grey (H, W) or RGBA (H, W, 4), uint8) as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _read_bytes(path: Path) -> bytes | None:
    """Return a file's bytes, None when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError:
        return None


def _rows(root: Path) -> tuple[list[dict], list[str]]:
    """Return labels.csv's well-formed rows and a message for each row left out (under the lock or not)."""
    text = storage.read_text(root / LABELS)
    if text is None:
        return [], []
    rows, problems = [], []
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or [name for name in COLUMNS if name not in reader.fieldnames]:
        return [], [f"{LABELS}: the header is not {','.join(COLUMNS)}; no drawing could be read"]
    for line, row in enumerate(reader, start=2):
        name, label = row.get("file") or "", row.get("label") or ""
        if not NAME_PATTERN.fullmatch(name):
            problems.append(f"{LABELS}: line {line}: {name[:40]!r} is not a drawing's file name; left out")
        elif not (label.isdigit() and int(label) < NUM_CLASSES):
            problems.append(f"{LABELS}: line {line}: label {label[:10]!r} is not a digit 0-9; {name} left out")
        else:
            rows.append({"file": name, "label": int(label), "saved": row.get("saved") or ""})
    return rows, problems


def _write_rows(root: Path, rows: list[dict]) -> None:
    """Write labels.csv from `rows`, atomically (caller holds the lock)."""
    storage.write_csv_atomic(root / LABELS, rows, COLUMNS)


def load_drawings(root: Path | str | None = None) -> DrawingSet:
    """Return every saved drawing whose row and image read; the others are named in `problems`."""
    root = resolve(root)
    rows, problems = _rows(root)
    names, labels, images, saved = [], [], [], []
    for row in rows:
        try:
            with Image.open(root / row["file"]) as picture:
                image = np.asarray(picture.convert("L"))
        except (OSError, ValueError) as error:
            problems.append(f"{row['file']}: cannot be read ({type(error).__name__}); left out")
            continue
        if image.shape != (IMAGE_SIZE, IMAGE_SIZE):
            problems.append(f"{row['file']}: {image.shape[1]}x{image.shape[0]}, not 28x28; left out")
            continue
        names.append(row["file"])
        labels.append(row["label"])
        images.append(image)
        saved.append(row["saved"])
    return DrawingSet(
        names=tuple(names),
        labels=np.asarray(labels, np.int64),
        images=np.stack(images) if images else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8),
        saved=tuple(saved),
        problems=tuple(problems),
    )


def version(root: Path | str | None = None) -> tuple:
    """Return what changes whenever a drawing is saved, deleted or restored (labels.csv's time and size)."""
    try:
        stat = (resolve(root) / LABELS).stat()
    except OSError:
        return (None,)
    return (stat.st_mtime_ns, stat.st_size)


def save_drawing(image: np.ndarray, label, raw: np.ndarray | None = None, root: Path | str | None = None) -> str:
    """Save a drawing (the (28, 28) input in [0, 1], and the raw RGBA canvas when given) as digit `label`;
    return its file name. DrawingError for a label that is not 0-9, a blank drawing, or the drawing saved last
    saved again (a second click, or a second label for the same strokes)."""
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= int(label) < NUM_CLASSES:
        raise DrawingError(f"label {label!r}: choose the digit 0-9 you drew")
    image = np.asarray(image, np.float32)
    if image.shape != (IMAGE_SIZE, IMAGE_SIZE):
        raise DrawingError(f"a drawing is 28x28, not {'x'.join(map(str, image.shape))}")
    if not np.isfinite(image).all() or image.max() < BLANK_INK:
        raise DrawingError("the canvas is blank: draw a digit, then save it")
    root = resolve(root)
    name = f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}.png"
    png = _png(np.clip(np.rint(image * 255), 0, 255).astype(np.uint8))
    try:
        with _locked(root):
            rows, _ = _rows(root)
            if rows and _read_bytes(root / rows[-1]["file"]) == png:
                raise DrawingError(
                    f"this drawing is already saved, as a {rows[-1]['label']}: draw the next one "
                    "(a wrong label is mended by deleting the drawing on the Dataset page)"
                )
            storage.write_bytes_atomic(root / name, png)
            if raw is not None:
                (root / RAW).mkdir(exist_ok=True)
                storage.write_bytes_atomic(root / RAW / name, _png(np.asarray(raw, np.uint8)))
            saved = datetime.now(UTC).isoformat(timespec="seconds")
            _write_rows(root, [*rows, {"file": name, "label": int(label), "saved": saved}])
    except OSError as error:
        for leftover in (root / name, root / RAW / name):
            leftover.unlink(missing_ok=True)
        raise DrawingError(f"cannot save the drawing: {error.strerror or error}") from error
    return name


def delete_drawing(name: str, root: Path | str | None = None) -> str:
    """Move drawing `name` (both images and its row) to the trash; return the trash entry, for restore."""
    root = resolve(root)
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise DrawingError(f"{str(name)[:40]!r} is not a drawing's file name")
    with _locked(root):
        rows, _ = _rows(root)
        row = next((row for row in rows if row["file"] == name), None)
        if row is None:
            raise DrawingError(f"no drawing {name} (deleted meanwhile?)")
        entry = f"{name}.{time.time_ns()}"
        folder = root / TRASH / entry
        try:
            folder.mkdir(parents=True)
            storage.write_json_atomic(folder / ROW, row)
            for source in (root / name, root / RAW / name):
                if source.exists():
                    os.replace(source, folder / (f"raw-{name}" if source.parent.name == RAW else name))
            _write_rows(root, [kept for kept in rows if kept["file"] != name])
        except OSError as error:
            raise DrawingError(f"cannot delete the drawing: {error.strerror or error}") from error
    return entry


def restore_drawing(entry: str, root: Path | str | None = None) -> str:
    """Put a deleted drawing back from the trash as it was (its row included); return its file name."""
    root = resolve(root)
    folder = root / TRASH / str(entry)
    if folder.parent != root / TRASH or not (folder / ROW).is_file():
        raise DrawingError(f"{str(entry)[:60]!r}: no deleted drawing of that name")
    with _locked(root):
        row = storage.read_json_object(folder / ROW)
        name = row["file"]
        rows, _ = _rows(root)
        if any(kept["file"] == name for kept in rows):
            raise DrawingError(f"drawing {name} is there already")
        try:
            os.replace(folder / name, root / name)
            if (folder / f"raw-{name}").exists():
                (root / RAW).mkdir(exist_ok=True)
                os.replace(folder / f"raw-{name}", root / RAW / name)
            _write_rows(root, [*rows, row])
            shutil.rmtree(folder, ignore_errors=True)
        except OSError as error:
            raise DrawingError(f"cannot restore the drawing: {error.strerror or error}") from error
    return name


def counts(drawings: DrawingSet) -> list[int]:
    """Return how many drawings there are of each digit 0-9."""
    return np.bincount(drawings.labels, minlength=NUM_CLASSES).tolist() if len(drawings) else [0] * NUM_CLASSES

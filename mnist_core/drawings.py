"""Your own handwriting: drawings saved with their true digit, a small labelled set beside the runs.

A drawings folder (plain files other tools read; MNIST_DRAWINGS_DIR, else ./drawings):
    labels.csv          file,label,saved: one row per drawing, the labels' one source
    <stamp>-<id>.png    the 28x28 input the models saw (8-bit grey, white ink on black, as MNIST)
    raw/<same name>     the canvas as it was drawn (RGBA)
    .trash/             deleted drawings, for undo: both images and their row (row.json)
    .lock               flock: one change at a time, across tabs and processes

File names are made here, never taken from a person. A row or an image that cannot be read is left out of
the set with a message naming it; the other drawings still load, and every save, delete or undo writes the
unreadable lines of labels.csv back as they were, so mending one brings its drawing back. Killed at any point,
a drawing is listed with its images or can be undone whole: a delete drops the row before it moves the images,
an undo moves them back before it adds the row and finds them in either place.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import os
import re
import secrets
import shutil
import struct
import time
import zlib
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
# What Pillow raises for a damaged or hostile image file (a broken chunk is a SyntaxError, a huge one a bomb).
IMAGE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error, Image.DecompressionBombError)
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


@dataclass
class _LabelsFile:
    """labels.csv as read: its well-formed rows in order, the lines that could not be read (written back as
    they were, for a person to mend) and a message for each line left out."""

    rows: list[dict]
    unreadable: list[bytes]
    problems: list[str]


def _parsed_line(number: int, line: bytes) -> tuple[list[str] | None, str]:
    """Return one line's CSV fields, or None and why it cannot be read."""
    try:
        return next(csv.reader([line.decode("utf-8")]), []), ""
    except UnicodeDecodeError as error:
        return None, f"{LABELS}: line {number}: not text (byte 0x{line[error.start]:02x}); left out"
    except csv.Error as error:
        return None, f"{LABELS}: line {number}: not a CSV row ({str(error)[:60]}); left out"


def _read_labels(root: Path) -> _LabelsFile:
    """Return labels.csv read line by line (a damaged line costs that drawing only); DamagedFile when the file
    cannot be read at all."""
    try:
        data = (root / LABELS).read_bytes()
    except FileNotFoundError:
        return _LabelsFile([], [], [])
    except OSError as error:
        raise storage.DamagedFile(f"{LABELS}: cannot be read ({error.strerror or error})") from error
    labels = _LabelsFile([], [], [])
    positions = {column: index for index, column in enumerate(COLUMNS)}  # the order this module writes
    listed = set()
    lines = data.removeprefix(b"\xef\xbb\xbf").split(b"\n")  # a spreadsheet's re-save may add a BOM
    for number, line in enumerate((line.removesuffix(b"\r") for line in lines), start=1):
        if not line.strip():
            continue
        fields, problem = _parsed_line(number, line)
        if number == 1:
            if fields is not None and all(column in fields for column in COLUMNS):
                positions = {column: fields.index(column) for column in COLUMNS}
                continue
            # A lost header costs no row: the lines are read in the order this module writes them.
            columns = ",".join(COLUMNS)
            labels.problems.append(f"{LABELS}: the header is not {columns}, so every line is read as {columns}")
        if fields is not None:
            name, label, saved = (fields[i] if i < len(fields) else "" for i in positions.values())
            if not NAME_PATTERN.fullmatch(name):
                if number == 1:
                    continue  # the damaged header itself: the next write puts a good one in its place
                problem = f"{LABELS}: line {number}: {name[:40]!r} is not a drawing's file name; left out"
            elif not (label.isdigit() and int(label) < NUM_CLASSES):
                problem = f"{LABELS}: line {number}: label {label[:10]!r} is not a digit 0-9; {name} left out"
            elif name in listed:  # the same drawing twice: counted once, and the repeat dropped on the next write
                labels.problems.append(f"{LABELS}: line {number}: {name} is listed twice; the first line counts")
                continue
            else:
                listed.add(name)
                labels.rows.append({"file": name, "label": int(label), "saved": saved})
                continue
        labels.unreadable.append(line)
        labels.problems.append(problem)
    return labels


def _write_labels(root: Path, labels: _LabelsFile, rows: list[dict]) -> None:
    """Write labels.csv as `rows`, then the lines that could not be read as they were, atomically (caller holds
    the lock): a save, delete or undo never drops a drawing it could not read."""
    kept = b"".join(line + b"\n" for line in labels.unreadable)
    storage.write_bytes_atomic(root / LABELS, storage.csv_bytes(rows, COLUMNS) + kept)


def _labels_to_change(root: Path, doing: str) -> _LabelsFile:
    """Return labels.csv read for a change (caller holds the lock); DrawingError when it cannot be read."""
    try:
        return _read_labels(root)
    except storage.DamagedFile as error:
        raise DrawingError(f"cannot {doing} the drawing: {error}") from error


def load_drawings(root: Path | str | None = None) -> DrawingSet:
    """Return every saved drawing whose row and image read; the others are named in `problems`."""
    root = resolve(root)
    try:
        labels = _read_labels(root)
    except storage.DamagedFile as error:
        labels = _LabelsFile([], [], [f"{error}; no drawing could be read"])
    problems = list(labels.problems)
    if not (root / LABELS).exists():
        unlabelled = sum(1 for path in root.glob("*.png") if NAME_PATTERN.fullmatch(path.name))
        if unlabelled:
            problems.append(
                f"{LABELS} is missing from {root}: its {unlabelled} drawings have no labels until it is back"
            )
    names, label_values, images, saved = [], [], [], []
    for row in labels.rows:
        try:
            with Image.open(root / row["file"]) as picture:
                image = np.asarray(picture.convert("L"))
        except IMAGE_ERRORS:
            problems.append(f"{row['file']}: not a readable PNG image; left out")
            continue
        if image.shape != (IMAGE_SIZE, IMAGE_SIZE):
            problems.append(f"{row['file']}: {image.shape[1]}x{image.shape[0]}, not 28x28; left out")
            continue
        names.append(row["file"])
        label_values.append(row["label"])
        images.append(image)
        saved.append(row["saved"])
    return DrawingSet(
        names=tuple(names),
        labels=np.asarray(label_values, np.int64),
        images=np.stack(images) if images else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8),
        saved=tuple(saved),
        problems=tuple(problems),
    )


def version(root: Path | str | None = None) -> str:
    """Return what changes whenever a drawing is saved, deleted or restored, or a file of the folder is changed by
    hand (a damaged or mended image too): a digest of labels.csv's and every image's inode, time and size."""
    stats = []
    try:
        with os.scandir(resolve(root)) as entries:
            for entry in entries:
                if entry.name == LABELS or entry.name.endswith(".png"):
                    try:
                        stat = entry.stat()
                    except OSError:
                        continue  # deleted meanwhile
                    stats.append((entry.name, stat.st_ino, stat.st_mtime_ns, stat.st_size))
    except OSError:
        return "none"
    return hashlib.blake2b(repr(sorted(stats)).encode(), digest_size=16).hexdigest()


def drawing_id(name: str) -> int:
    """Return a drawing's number for a click on it: its name's random part, the same whatever else changes."""
    return int(name.rsplit("-", 1)[-1].removesuffix(".png"), 16)


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
            labels = _labels_to_change(root, "save")
            rows = labels.rows
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
            _write_labels(root, labels, [*rows, {"file": name, "label": int(label), "saved": saved}])
    except OSError as error:
        for leftover in (root / name, root / RAW / name):
            leftover.unlink(missing_ok=True)
        raise DrawingError(f"cannot save the drawing: {error.strerror or error}") from error
    return name


def _image_files(root: Path, folder: Path, name: str) -> list[tuple[Path, Path]]:
    """Return (in the drawings folder, in its trash entry `folder`) for the drawing's image and raw canvas."""
    return [(root / name, folder / name), (root / RAW / name, folder / f"raw-{name}")]


def delete_drawing(name: str, root: Path | str | None = None) -> str:
    """Move drawing `name` (both images and its row) to the trash; return the trash entry, for restore."""
    root = resolve(root)
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise DrawingError(f"{str(name)[:40]!r} is not a drawing's file name")
    with _locked(root):
        labels = _labels_to_change(root, "delete")
        row = next((row for row in labels.rows if row["file"] == name), None)
        if row is None:
            raise DrawingError(f"no drawing {name} (deleted meanwhile?)")
        entry = f"{name}.{time.time_ns()}"
        folder = root / TRASH / entry
        try:
            folder.mkdir(parents=True)
            storage.write_json_atomic(folder / ROW, row)
            # The row goes first: killed after it, the drawing is deleted and its images, not yet moved, are
            # where restore looks for them too.
            _write_labels(root, labels, [kept for kept in labels.rows if kept["file"] != name])
            for source, target in _image_files(root, folder, name):
                if source.exists():
                    os.replace(source, target)
        except OSError as error:
            raise DrawingError(f"cannot delete the drawing: {error.strerror or error}") from error
    return entry


def restore_drawing(entry: str, root: Path | str | None = None) -> str:
    """Put a deleted drawing back from the trash as it was (its row included); return its file name. An undo cut
    short after the row was written is finished (its trash entry removed); one already done is refused."""
    root = resolve(root)
    folder = root / TRASH / str(entry)
    if folder.parent != root / TRASH:
        raise DrawingError(f"{str(entry)[:60]!r}: no deleted drawing of that name")
    with _locked(root):
        try:
            row = storage.read_json_object(folder / ROW)
        except storage.DamagedFile as error:
            raise DrawingError(f"cannot restore the drawing: {error}") from error
        name = row.get("file") if row else None
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise DrawingError(f"{str(entry)[:60]!r}: no deleted drawing of that name (restored already?)")
        labels = _labels_to_change(root, "restore")
        try:
            if not any(kept["file"] == name for kept in labels.rows):
                for target, source in _image_files(root, folder, name):
                    if source.exists():
                        target.parent.mkdir(exist_ok=True)
                        os.replace(source, target)
                if not (root / name).exists():
                    raise DrawingError(f"cannot restore {name}: its image is gone from the trash")
                # The images go back first and the row last: killed before it, the next undo finds them in place.
                _write_labels(root, labels, [*labels.rows, row])
            shutil.rmtree(folder, ignore_errors=True)
        except OSError as error:
            raise DrawingError(f"cannot restore the drawing: {error.strerror or error}") from error
    return name


def counts(drawings: DrawingSet) -> list[int]:
    """Return how many drawings there are of each digit 0-9."""
    return np.bincount(drawings.labels, minlength=NUM_CLASSES).tolist() if len(drawings) else [0] * NUM_CLASSES

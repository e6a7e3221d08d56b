"""MNIST from IDX files, a Keras-style mnist.npz, or Keras' own download; the walkthrough's split."""

from __future__ import annotations

import gzip
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_core.settings import (
    DATA_DIR_ENV,
    IMAGE_SIZE,
    SPLIT_RANDOM_STATE,
    TEST_IMAGES,
    TRAIN_IMAGES,
    VALIDATION_FRACTION,
)

IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


class DataError(RuntimeError):
    """MNIST could not be loaded; the message says what was tried and how to fix it."""


@dataclass(frozen=True)
class Mnist:
    """The raw dataset: uint8 images (N, 28, 28), uint8 labels (N,), and where it came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str


@dataclass(frozen=True)
class Split:
    """The 54,000 / 6,000 split; `*_index` are positions in the original 60,000 training images."""

    x_train: np.ndarray
    y_train: np.ndarray
    train_index: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    val_index: np.ndarray


def _read_bytes(path: Path) -> bytes:
    """Return the file's bytes, gunzipped when it ends in .gz; DataError if unreadable."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path}: cannot be read ({error}); the file is damaged or not gzip") from error


def read_idx(path: Path | str, kind: str) -> np.ndarray:
    """Return an IDX file's array: images (N, 28, 28) uint8 or labels (N,) uint8, checked."""
    path = Path(path)
    data = _read_bytes(path)
    want_magic, header = (IDX_IMAGES_MAGIC, 16) if kind == "images" else (IDX_LABELS_MAGIC, 8)
    if len(data) < header:
        raise DataError(f"{path}: only {len(data)} bytes, too short for an IDX {kind} header")
    magic = int.from_bytes(data[:4], "big")
    if magic != want_magic:
        raise DataError(f"{path}: magic number {magic}, expected {want_magic} for an IDX {kind} file")
    count = int.from_bytes(data[4:8], "big")
    if kind == "images":
        rows, cols = int.from_bytes(data[8:12], "big"), int.from_bytes(data[12:16], "big")
        if (rows, cols) != (IMAGE_SIZE, IMAGE_SIZE):
            raise DataError(f"{path}: images are {rows}x{cols}, expected 28x28")
        expected = count * rows * cols
    else:
        expected = count
    body = len(data) - header
    if body != expected:
        raise DataError(
            f"{path}: header promises {count:,} {kind} ({expected:,} bytes) but the file holds {body:,} bytes"
            " (truncated or padded)"
        )
    array = np.frombuffer(data, dtype=np.uint8, offset=header)
    if kind == "images":
        return array.reshape(count, IMAGE_SIZE, IMAGE_SIZE)
    if count and array.max() > 9:
        raise DataError(f"{path}: holds label {int(array.max())}; MNIST labels are 0-9")
    return array


def _find_idx(folder: Path, stem: str) -> Path | None:
    """Return the IDX file for `stem` in `folder` (.gz or plain; '-' or '.' before idx), or None."""
    for name in (stem, stem.replace("-idx", ".idx")):
        for suffix in (".gz", ""):
            candidate = folder / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def load_idx_folder(folder: Path | str) -> Mnist:
    """Return MNIST read from the four IDX files in `folder`, each checked."""
    folder = Path(folder)
    paths = {key: _find_idx(folder, stem) for key, stem in IDX_FILES.items()}
    missing = [IDX_FILES[key] + ".gz" for key, path in paths.items() if path is None]
    if missing:
        raise DataError(f"{folder}: missing {', '.join(missing)}")
    arrays = {key: read_idx(path, "images" if key.endswith("images") else "labels") for key, path in paths.items()}
    mnist = Mnist(
        x_train=arrays["train_images"],
        y_train=arrays["train_labels"],
        x_test=arrays["test_images"],
        y_test=arrays["test_labels"],
        source=f"IDX files in {folder}",
    )
    _check_counts(mnist, paths)
    return mnist


def load_npz(path: Path | str) -> Mnist:
    """Return MNIST read from a Keras-style mnist.npz (x_train, y_train, x_test, y_test), checked."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: np.asarray(npz[key]) for key in ("x_train", "y_train", "x_test", "y_test")}
    except KeyError as error:
        raise DataError(f"{path}: not a Keras mnist.npz (missing array {error})") from error
    except (OSError, ValueError, zlib.error, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: cannot be read as .npz ({error})") from error
    for key in ("x_train", "x_test"):
        if arrays[key].ndim != 3 or arrays[key].shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise DataError(f"{path}: {key} has shape {arrays[key].shape}, expected (N, 28, 28)")
    for key in ("y_train", "y_test"):
        if arrays[key].size and (arrays[key].min() < 0 or arrays[key].max() > 9):
            raise DataError(f"{path}: {key} holds labels outside 0-9")
    mnist = Mnist(**{k: v.astype(np.uint8) for k, v in arrays.items()}, source=f"mnist.npz at {path}")
    _check_counts(mnist, {"train_images": path, "train_labels": path, "test_images": path, "test_labels": path})
    return mnist


def _check_counts(mnist: Mnist, paths: dict) -> None:
    """Raise DataError when images and labels disagree in count or the split sizes are not MNIST's."""
    for split, want in (("train", TRAIN_IMAGES), ("test", TEST_IMAGES)):
        images, labels = getattr(mnist, f"x_{split}"), getattr(mnist, f"y_{split}")
        if len(images) != len(labels):
            raise DataError(
                f"{paths[f'{split}_images']} has {len(images):,} images but "
                f"{paths[f'{split}_labels']} has {len(labels):,} labels"
            )
        if len(images) != want:
            raise DataError(f"{paths[f'{split}_images']}: {len(images):,} {split} images, MNIST has {want:,}")


def load_from_path(path: Path | str) -> Mnist:
    """Return MNIST from a folder (IDX files or mnist.npz inside) or from an .npz file."""
    path = Path(path).expanduser()
    if path.is_file():
        return load_npz(path)
    if not path.is_dir():
        raise DataError(f"{path}: no such folder")
    if _find_idx(path, IDX_FILES["train_images"]) is None and (path / "mnist.npz").is_file():
        return load_npz(path / "mnist.npz")
    return load_idx_folder(path)


def _load_keras() -> Mnist:
    """Return MNIST from Keras' cache, downloading it once if needed."""
    from mnist_core.tfimport import import_keras  # deferred: TensorFlow takes seconds to import

    keras = import_keras()

    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    return Mnist(x_train, y_train, x_test, y_test, source="Keras download cache (~/.keras/datasets/mnist.npz)")


def load_mnist() -> Mnist:
    """Return MNIST from the first source that works: $MNIST_DATA_DIR, then Keras' download."""
    tried = []
    folder = os.environ.get(DATA_DIR_ENV, "").strip()
    if folder:
        try:
            return load_from_path(folder)
        except DataError as error:
            # A named folder that is broken must say so, not silently fall back to another copy.
            raise DataError(f"{DATA_DIR_ENV}={folder} does not hold usable MNIST: {error}") from error
    tried.append(f"{DATA_DIR_ENV} is not set")
    keras_cache = Path.home() / ".keras" / "datasets" / "mnist.npz"
    try:
        return _load_keras()
    except DataError:
        raise
    except Exception as error:  # noqa: BLE001 - any failure must be reported, not crash the caller
        tried.append(f"Keras download/cache ({keras_cache}) failed: {type(error).__name__}: {error}")
    raise DataError(
        "No MNIST source works. Tried: "
        + "; ".join(tried)
        + ". Fix: set MNIST_DATA_DIR to a folder holding the four IDX .gz files "
        "(train-images-idx3-ubyte.gz, ...) or a Keras mnist.npz, or connect to the internet once so "
        "Keras can download and cache it."
    )


def split_indices(n_train: int = TRAIN_IMAGES) -> tuple[np.ndarray, np.ndarray]:
    """Return (train_index (54000,), val_index (6000,)) exactly as the walkthrough's train_test_split."""
    from sklearn.model_selection import train_test_split

    train_index, val_index = train_test_split(
        np.arange(n_train), test_size=VALIDATION_FRACTION, random_state=SPLIT_RANDOM_STATE
    )
    return train_index, val_index


def split(mnist: Mnist) -> Split:
    """Return the walkthrough's 54,000 / 6,000 split of the training images (uint8)."""
    train_index, val_index = split_indices(len(mnist.x_train))
    return Split(
        x_train=mnist.x_train[train_index],
        y_train=mnist.y_train[train_index],
        train_index=train_index,
        x_val=mnist.x_train[val_index],
        y_val=mnist.y_train[val_index],
        val_index=val_index,
    )


def to_model_input(images: np.ndarray) -> np.ndarray:
    """Return uint8 images (N, 28, 28) as float32 (N, 28, 28, 1) in [0, 1]."""
    return (np.asarray(images, dtype=np.float32) / np.float32(255.0))[..., None]

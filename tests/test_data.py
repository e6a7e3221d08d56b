"""MNIST loading (IDX folder, Keras-style .npz), clear DataErrors for damaged files, the split, model input."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from mnist_core import data
from mnist_core.data import DataError, load_from_path, load_mnist, read_idx, split, to_model_input

IMAGES = {"train": "train-images-idx3-ubyte", "test": "t10k-images-idx3-ubyte"}
LABELS = {"train": "train-labels-idx1-ubyte", "test": "t10k-labels-idx1-ubyte"}


def idx_images_bytes(images: np.ndarray, magic: int = 2051, rows: int | None = None, cols: int | None = None) -> bytes:
    """Return an IDX3 file's bytes for uint8 images (N, H, W), header fields overridable."""
    n, height, width = images.shape
    header = struct.pack(">IIII", magic, n, rows if rows is not None else height, cols if cols is not None else width)
    return header + images.astype(np.uint8).tobytes()


def idx_labels_bytes(labels: np.ndarray, magic: int = 2049, count: int | None = None) -> bytes:
    """Return an IDX1 file's bytes for uint8 labels (N,)."""
    return struct.pack(">II", magic, len(labels) if count is None else count) + labels.astype(np.uint8).tobytes()


def write_gz(path: Path, payload: bytes) -> Path:
    """Write `payload` gzipped to `path`."""
    path.write_bytes(gzip.compress(payload, compresslevel=1))
    return path


def small_idx_folder(folder: Path, n_train: int = 6, n_test: int = 4) -> Path:
    """Write four small valid IDX .gz files into `folder` (counts are not MNIST's: fine for file errors)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split_name, n in (("train", n_train), ("test", n_test)):
        write_gz(folder / f"{IMAGES[split_name]}.gz", idx_images_bytes(rng.integers(0, 256, (n, 28, 28))))
        write_gz(folder / f"{LABELS[split_name]}.gz", idx_labels_bytes(rng.integers(0, 10, n)))
    return folder


def independent_idx(path: Path, header: int) -> np.ndarray:
    """Return an IDX .gz file's body as uint8, parsed without mnist_core."""
    with gzip.open(path, "rb") as handle:
        raw = handle.read()
    return np.frombuffer(raw, dtype=np.uint8, offset=header)


# ----- the real data ------------------------------------------------------------------------------------------


def test_load_from_data_dir_env(mnist):
    folder = Path(os.environ["MNIST_DATA_DIR"])
    assert str(folder) in mnist.source
    assert mnist.x_train.shape == (60_000, 28, 28)
    assert mnist.x_test.shape == (10_000, 28, 28)
    assert mnist.y_train.shape == (60_000,)
    assert mnist.y_test.shape == (10_000,)
    for array in (mnist.x_train, mnist.y_train, mnist.x_test, mnist.y_test):
        assert array.dtype == np.uint8
    for labels in (mnist.y_train, mnist.y_test):
        assert labels.min() == 0 and labels.max() == 9
        assert len(np.unique(labels)) == 10


def test_loaded_arrays_match_an_independent_parse(mnist):
    folder = Path(os.environ["MNIST_DATA_DIR"])
    y_train = independent_idx(folder / "train-labels-idx1-ubyte.gz", 8)
    y_test = independent_idx(folder / "t10k-labels-idx1-ubyte.gz", 8)
    x_test = independent_idx(folder / "t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
    assert np.array_equal(mnist.y_train, y_train)
    assert np.array_equal(mnist.y_test, y_test)
    assert np.array_equal(mnist.x_test, x_test)
    # Every digit is a dark background with bright strokes: corners empty, some pixels saturated.
    assert mnist.x_train[:, 0, 0].max() == 0
    assert mnist.x_train.max() == 255


def test_split_matches_sklearn_directly(mnist):
    x_tr, x_val, y_tr, y_val = train_test_split(mnist.x_train, mnist.y_train, test_size=0.1, random_state=42)
    parts = split(mnist)
    assert parts.x_train.shape == (54_000, 28, 28) and parts.x_val.shape == (6_000, 28, 28)
    assert len(parts.y_train) == 54_000 and len(parts.y_val) == 6_000
    assert np.array_equal(parts.x_train, x_tr)
    assert np.array_equal(parts.y_train, y_tr)
    assert np.array_equal(parts.x_val, x_val)
    assert np.array_equal(parts.y_val, y_val)
    # The indices are a partition of the 60,000 and point at the same images.
    assert len(np.union1d(parts.train_index, parts.val_index)) == 60_000
    assert len(np.intersect1d(parts.train_index, parts.val_index)) == 0
    assert np.array_equal(mnist.x_train[parts.val_index], x_val)


def test_to_model_input(mnist):
    images = mnist.x_test[:50]
    model_input = to_model_input(images)
    assert model_input.shape == (50, 28, 28, 1)
    assert model_input.dtype == np.float32
    assert model_input.min() >= 0.0 and model_input.max() <= 1.0
    assert model_input.max() == 1.0  # 255 maps to exactly 1
    np.testing.assert_allclose(model_input[..., 0], images.astype(np.float64) / 255.0, rtol=0, atol=1e-7)


# ----- other layouts ------------------------------------------------------------------------------------------


def write_npz(path: Path, **changes) -> dict:
    """Write a Keras-style mnist.npz with MNIST's row counts (mostly zeros); return its arrays."""
    arrays = {
        "x_train": np.zeros((60_000, 28, 28), np.uint8),
        "y_train": np.zeros(60_000, np.uint8),
        "x_test": np.zeros((10_000, 28, 28), np.uint8),
        "y_test": np.zeros(10_000, np.uint8),
    }
    arrays["x_train"][123, 5:9, 10:12] = 200
    arrays["y_train"][123] = 7
    arrays["y_train"][:10] = np.arange(10)
    arrays["x_test"][9_999, 27, 27] = 255
    arrays["y_test"][9_999] = 4
    arrays.update(changes)
    np.savez(path, **arrays)
    return arrays


def test_load_keras_npz_in_data_dir(tmp_path, monkeypatch):
    arrays = write_npz(tmp_path / "mnist.npz")
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path))
    loaded = load_mnist()
    assert "mnist.npz" in loaded.source
    for key, array in arrays.items():
        assert getattr(loaded, key).shape == array.shape
        assert getattr(loaded, key).dtype == np.uint8
        assert np.array_equal(getattr(loaded, key), array), key


def test_load_npz_file_path_directly(tmp_path):
    arrays = write_npz(tmp_path / "mnist.npz")
    loaded = load_from_path(tmp_path / "mnist.npz")
    assert loaded.x_train[123, 6, 10] == 200
    assert loaded.y_test[9_999] == 4
    assert np.array_equal(loaded.y_train, arrays["y_train"])


def test_plain_uncompressed_idx_with_dot_names(tmp_path):
    # `train-images.idx3-ubyte` style names, not gzipped (as some mirrors ship them).
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (3, 28, 28)).astype(np.uint8)
    (tmp_path / "t10k-images.idx3-ubyte").write_bytes(idx_images_bytes(x))
    assert np.array_equal(read_idx(tmp_path / "t10k-images.idx3-ubyte", "images"), x)
    assert data._find_idx(tmp_path, "t10k-images-idx3-ubyte") == tmp_path / "t10k-images.idx3-ubyte"


# ----- damaged files: each DataError names the file -----------------------------------------------------------


def _expect_error(folder: Path, culprit: Path, *fragments: str) -> str:
    with pytest.raises(DataError) as caught:
        load_from_path(folder)
    message = str(caught.value)
    assert str(culprit) in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_small_valid_folder_reads_then_fails_on_mnist_counts(tmp_path):
    folder = small_idx_folder(tmp_path / "mnist")
    # All four files parse; only the row counts are not MNIST's, and the message says so.
    _expect_error(folder, folder / f"{IMAGES['train']}.gz", "60,000")


def test_truncated_idx_body(tmp_path):
    folder = small_idx_folder(tmp_path / "mnist")
    culprit = folder / f"{IMAGES['test']}.gz"
    full = idx_images_bytes(np.ones((4, 28, 28), np.uint8))
    write_gz(culprit, full[: len(full) - 100])
    _expect_error(folder, culprit, "truncated")


def test_truncated_gzip_stream(tmp_path):
    folder = small_idx_folder(tmp_path / "mnist")
    culprit = folder / f"{IMAGES['train']}.gz"
    compressed = culprit.read_bytes()
    culprit.write_bytes(compressed[: len(compressed) // 2])
    _expect_error(folder, culprit)


def test_wrong_magic_number(tmp_path):
    folder = small_idx_folder(tmp_path / "mnist")
    culprit = folder / f"{LABELS['train']}.gz"
    write_gz(culprit, idx_labels_bytes(np.arange(6) % 10, magic=2051))
    _expect_error(folder, culprit, "magic number 2051", "2049")


def test_wrong_image_magic_number(tmp_path):
    folder = small_idx_folder(tmp_path / "mnist")
    culprit = folder / f"{IMAGES['test']}.gz"
    write_gz(culprit, idx_images_bytes(np.zeros((4, 28, 28), np.uint8), magic=1234))
    _expect_error(folder, culprit, "magic number 1234")


def test_corrupt_gzip_bytes(tmp_path):
    folder = small_idx_folder(tmp_path / "mnist")
    culprit = folder / f"{LABELS['test']}.gz"
    culprit.write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4)  # gzip magic, then garbage
    _expect_error(folder, culprit)


def test_not_gzip_at_all(tmp_path):
    folder = small_idx_folder(tmp_path / "mnist")
    culprit = folder / f"{IMAGES['train']}.gz"
    culprit.write_bytes(b"<html>404 not found</html>")
    _expect_error(folder, culprit)


def test_label_count_differs_from_image_count(tmp_path):
    folder = small_idx_folder(tmp_path / "mnist", n_train=6)
    labels = folder / f"{LABELS['train']}.gz"
    write_gz(labels, idx_labels_bytes(np.arange(5) % 10))
    message = _expect_error(folder, labels, "6 images", "5 labels")
    assert str(folder / f"{IMAGES['train']}.gz") in message


def test_label_value_12(tmp_path):
    folder = small_idx_folder(tmp_path / "mnist")
    culprit = folder / f"{LABELS['test']}.gz"
    write_gz(culprit, idx_labels_bytes(np.array([1, 2, 12, 3])))
    _expect_error(folder, culprit, "12")


def test_27x28_images(tmp_path):
    folder = small_idx_folder(tmp_path / "mnist")
    culprit = folder / f"{IMAGES['train']}.gz"
    write_gz(culprit, idx_images_bytes(np.zeros((6, 27, 28), np.uint8)))
    _expect_error(folder, culprit, "27x28")


def test_missing_file_in_folder(tmp_path):
    folder = small_idx_folder(tmp_path / "mnist")
    (folder / f"{LABELS['test']}.gz").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte"):
        load_from_path(folder)


def test_missing_folder(tmp_path):
    missing = tmp_path / "no-such-folder"
    with pytest.raises(DataError) as caught:
        load_from_path(missing)
    assert str(missing) in str(caught.value)


def test_npz_with_too_few_rows(tmp_path):
    path = tmp_path / "mnist.npz"
    np.savez(
        path,
        x_train=np.zeros((100, 28, 28), np.uint8),
        y_train=np.zeros(100, np.uint8),
        x_test=np.zeros((10, 28, 28), np.uint8),
        y_test=np.zeros(10, np.uint8),
    )
    with pytest.raises(DataError, match="60,000"):
        load_from_path(path)


def test_npz_missing_array_and_bad_labels(tmp_path):
    path = tmp_path / "a.npz"
    np.savez(path, x_train=np.zeros((60_000, 28, 28), np.uint8))
    with pytest.raises(DataError, match="y_train"):
        load_from_path(path)
    path = tmp_path / "b.npz"
    write_npz(path, y_test=np.full(10_000, 11, np.int64))
    with pytest.raises(DataError, match="y_test"):
        load_from_path(path)


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
def test_corrupt_npz_is_a_data_error(tmp_path, monkeypatch, damage):
    path = tmp_path / "mnist.npz"
    write_npz(path)
    raw = bytearray(path.read_bytes())
    if damage == "truncated":
        raw = raw[: len(raw) // 2]
    else:
        raw[2_000:3_000] = b"x" * 1_000  # inside x_train's data: a CRC error on read
    path.write_bytes(bytes(raw))
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError) as caught:
        load_mnist()
    assert str(path) in str(caught.value)


def test_broken_data_dir_env_does_not_fall_back(tmp_path, monkeypatch):
    folder = small_idx_folder(tmp_path / "mnist")
    culprit = folder / f"{LABELS['train']}.gz"
    write_gz(culprit, idx_labels_bytes(np.arange(6) % 10, magic=7))
    calls = []
    monkeypatch.setattr(data, "_load_keras", lambda: calls.append("keras") or pytest.fail("fell back to Keras"))
    monkeypatch.setenv("MNIST_DATA_DIR", str(folder))
    with pytest.raises(DataError) as caught:
        load_mnist()
    message = str(caught.value)
    assert "MNIST_DATA_DIR" in message
    assert str(culprit) in message
    assert calls == []


def test_data_dir_env_pointing_nowhere(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_load_keras", lambda: pytest.fail("fell back to Keras"))
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path / "gone"))
    with pytest.raises(DataError, match="gone"):
        load_mnist()


def test_no_source_at_all_explains_the_fix(monkeypatch):
    monkeypatch.delenv("MNIST_DATA_DIR")

    def offline():
        raise OSError("network unreachable")

    monkeypatch.setattr(data, "_load_keras", offline)
    with pytest.raises(DataError) as caught:
        load_mnist()
    message = str(caught.value)
    assert "MNIST_DATA_DIR" in message and "network unreachable" in message

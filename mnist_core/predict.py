"""A drawn digit made MNIST-like (crop, fit 20x20, centre by mass in 28x28) and fast prediction."""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field

import numpy as np

from mnist_core.config import IMAGE_SIZE
from mnist_core.tfimport import import_keras

INK_THRESHOLD = 0.1  # grey level (0-1) above which a canvas pixel counts as ink
MIN_INK_PIXELS = 4  # fewer inked pixels than this is a blank canvas (or a stray click)
FIT_SIZE = 20  # MNIST scaled each digit to fit a 20x20 box...
CENTRE = (IMAGE_SIZE - 1) / 2  # ...then moved its centre of mass to the middle of the 28x28 field


@dataclass
class Preprocessed:
    """A drawn digit ready for a model: `image` (28, 28) float32 in [0, 1], or blank with a message."""

    blank: bool
    image: np.ndarray | None
    steps: dict[str, np.ndarray] = field(default_factory=dict)
    message: str = ""


def to_grayscale(canvas: np.ndarray) -> np.ndarray:
    """Return ink intensity (H, W) float32 in [0, 1] from an RGBA, RGB or grey canvas array."""
    array = np.asarray(canvas, dtype=np.float32)
    if array.ndim == 2:
        grey = array
    elif array.ndim == 3 and array.shape[2] in (3, 4):
        grey = array[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        if array.shape[2] == 4:
            # A transparent background is no ink, whatever colour it nominally has.
            grey = grey * (array[..., 3] / 255.0)
    else:
        raise ValueError(f"canvas must be (H, W), (H, W, 3) or (H, W, 4), got shape {array.shape}")
    return np.clip(grey / 255.0, 0.0, 1.0).astype(np.float32)


def center_of_mass(image: np.ndarray) -> tuple[float, float]:
    """Return the (row, column) centre of mass of a non-negative image."""
    total = float(image.sum())
    rows, cols = np.indices(image.shape)
    return float((rows * image).sum() / total), float((cols * image).sum() / total)


def _fit_box(cropped: np.ndarray) -> np.ndarray:
    """Return `cropped` resized (area-averaged) so its longer side is 20 pixels, aspect ratio kept."""
    from PIL import Image

    height, width = cropped.shape
    scale = FIT_SIZE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    picture = Image.fromarray(np.round(cropped * 255).astype(np.uint8))
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    return np.asarray(picture.resize(size, resample), dtype=np.float32) / 255.0


def preprocess_canvas(canvas: np.ndarray) -> Preprocessed:
    """Return the canvas as a 28x28 MNIST-like image, with each intermediate step kept for display."""
    grey = to_grayscale(canvas)
    ink = grey > INK_THRESHOLD
    if int(ink.sum()) < MIN_INK_PIXELS:
        return Preprocessed(
            blank=True, image=None, steps={"grayscale": grey}, message="The canvas is blank: draw a digit."
        )
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    cropped = grey[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    fitted = _fit_box(cropped)
    # Paste in a large field, then cut the 28x28 window whose centre is the centre of mass.
    field_size = 3 * IMAGE_SIZE
    big = np.zeros((field_size, field_size), dtype=np.float32)
    top, left = (field_size - fitted.shape[0]) // 2, (field_size - fitted.shape[1]) // 2
    big[top : top + fitted.shape[0], left : left + fitted.shape[1]] = fitted
    com_row, com_col = center_of_mass(big)
    start_row, start_col = round(com_row - CENTRE), round(com_col - CENTRE)
    image = big[start_row : start_row + IMAGE_SIZE, start_col : start_col + IMAGE_SIZE].copy()
    boxed = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    box_top, box_left = (IMAGE_SIZE - fitted.shape[0]) // 2, (IMAGE_SIZE - fitted.shape[1]) // 2
    boxed[box_top : box_top + fitted.shape[0], box_left : box_left + fitted.shape[1]] = fitted
    return Preprocessed(
        blank=False,
        image=image,
        steps={"grayscale": grey, "cropped": cropped, "fitted_20x20": boxed, "centred_28x28": image},
    )


class Predictor:
    """A model's forward pass compiled once for (batch, 28, 28, 1) input: milliseconds per digit."""

    def __init__(self, model):
        import_keras()
        import tensorflow as tf

        self.model = model
        self._call = tf.function(
            lambda x: model(x, training=False),
            input_signature=[tf.TensorSpec((None, IMAGE_SIZE, IMAGE_SIZE, 1), tf.float32)],
            reduce_retracing=True,
        )
        self.probabilities(np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32))  # trace now, not on first draw

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Return class probabilities: (10,) for one (28, 28) image, (N, 10) for (N, 28, 28) or (N, 28, 28, 1)."""
        array = np.asarray(images, dtype=np.float32)
        single = array.ndim == 2
        batch = array.reshape(-1, IMAGE_SIZE, IMAGE_SIZE, 1)
        probs = self._call(batch).numpy()
        return probs[0] if single else probs


_PREDICTORS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_PREDICTORS_LOCK = threading.Lock()


def predictor_for(model) -> Predictor:
    """Return the (cached) Predictor of `model`."""
    with _PREDICTORS_LOCK:
        predictor = _PREDICTORS.get(model)
        if predictor is None:
            predictor = _PREDICTORS[model] = Predictor(model)
        return predictor


def squared(image: np.ndarray) -> np.ndarray:
    """Return `image` (H, W) centred on a black square (S, S), S = max(H, W), for display at one size."""
    height, width = image.shape
    side = max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    return np.pad(image, ((top, side - height - top), (left, side - width - left)))


def random_index(count: int) -> int:
    """Return a random position in [0, count)."""
    return int(np.random.default_rng().integers(count))


def predict_canvas(model, canvas: np.ndarray) -> tuple[Preprocessed, np.ndarray | None]:
    """Return (preprocessing steps, probabilities (10,) or None when the canvas is blank)."""
    prepared = preprocess_canvas(canvas)
    if prepared.blank:
        return prepared, None
    return prepared, predictor_for(model).probabilities(prepared.image)

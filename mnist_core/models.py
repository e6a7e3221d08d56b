"""From a model file to predictions, the one path and the one cache: a saved model loaded with safe_mode=True and
its forward pass compiled once, kept per file version."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from mnist_core.runs import Run, RunError
from mnist_core.settings import IMAGE_SIZE
from mnist_core.tfimport import import_keras

_CACHE: OrderedDict[tuple, Predictor] = OrderedDict()
_CACHE_SIZE = 12  # the Draw page asks every run's model; a dozen stay loaded
_LOCK = threading.Lock()


class ModelFileError(RuntimeError):
    """A model file is missing or cannot be loaded; the message names the file."""


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


def load_predictor(path: Path | str) -> Predictor:
    """Return the Predictor of the Keras model in `path` (loaded with safe_mode=True), cached until the file
    changes; ModelFileError naming the file when it is missing or not a model."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as error:
        raise ModelFileError(f"{path}: no model file ({error.strerror})") from error
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    keras = import_keras()
    try:
        predictor = Predictor(keras.models.load_model(path, safe_mode=True, compile=False))
    except Exception as error:
        raise ModelFileError(f"{path}: cannot be loaded as a Keras model ({type(error).__name__}: {error})") from error
    with _LOCK:
        _CACHE[key] = predictor
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return predictor


def run_predictor(run: Run, which: str = "best") -> Predictor:
    """Return the Predictor of the run's 'best' (by validation accuracy) or 'final' model; RunError if none."""
    if not run.has_model:
        raise RunError(f"run {run.run_id} has no saved model yet (state: {run.state})")
    return load_predictor(run.model_path(which))

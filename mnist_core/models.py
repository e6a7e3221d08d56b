"""Loading a run's saved model (safe_mode=True), cached by file and modification time."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from mnist_core.runs import Run, RunError
from mnist_core.tfimport import import_keras

_CACHE: OrderedDict[tuple, object] = OrderedDict()
_CACHE_SIZE = 12
_LOCK = threading.Lock()


class ModelFileError(RuntimeError):
    """A model file is missing or cannot be loaded; the message names the file."""


def load_model_file(path: Path | str):
    """Return the Keras model in `path`, loaded with safe_mode=True and cached until the file changes."""
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
        model = keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as error:
        raise ModelFileError(f"{path}: cannot be loaded as a Keras model ({type(error).__name__}: {error})") from error
    with _LOCK:
        _CACHE[key] = model
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return model


def load_run_model(run: Run, which: str = "best"):
    """Return the run's 'best' (by validation accuracy) or 'final' model; RunError if none is saved."""
    if not run.has_model:
        raise RunError(f"run {run.run_id} has no saved model yet (state: {run.state})")
    return load_model_file(run.model_path(which))

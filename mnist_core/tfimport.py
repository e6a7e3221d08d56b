"""Importing Keras / TensorFlow without the C++ start-up chatter that would litter the server log."""

from __future__ import annotations

import logging
import os
import sys
import threading

_LOCK = threading.Lock()


def import_keras():
    """Return the keras module, imported once with TensorFlow's native start-up lines silenced."""
    if "keras" in sys.modules and "tensorflow" in sys.modules:
        return sys.modules["keras"]
    with _LOCK:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        # absl prints oneDNN / CUDA notices on fd 2 before any log level applies: mute fd 2 meanwhile.
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            with open(os.devnull, "w") as devnull:
                os.dup2(devnull.fileno(), 2)
                import keras
                import tensorflow

                tensorflow.config.list_physical_devices("GPU")  # CUDA's start-up ("failed call to cuInit") too
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        # Every loaded model compiles its own forward pass once (models.Predictor, inside.Inspector), and a sweep
        # worker builds a model per trial: TensorFlow's "N out of the last M calls ... triggered tf.function
        # retracing" notice takes that for a loop and fills the server log. Errors still show.
        tensorflow.get_logger().setLevel(logging.ERROR)
    return keras

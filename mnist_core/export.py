"""A run leaving the studio: its plain files as a zip, its model as TFLite checked against Keras."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from mnist_core import runfiles, storage
from mnist_core.models import run_predictor
from mnist_core.runs import Run, RunError

# What a zip of a run holds: what other tools read (no checkpoints, locks, logs or TensorBoard events).
ZIPPED_FILES = (
    runfiles.CONFIG,
    runfiles.STATUS,
    runfiles.EPOCHS,
    runfiles.BATCHES,
    runfiles.EVALUATION,
    runfiles.LABELS,
    runfiles.IMPORTED,
    runfiles.HANDWRITING,
    runfiles.BEST_MODEL,
    runfiles.FINAL_MODEL,
)
TFLITE_CHECK_DIGITS = 100  # test digits both models must agree on
TFLITE_TOLERANCE = 1e-4  # largest difference of a class probability allowed between Keras and TFLite


def run_zip(run: Run) -> bytes:
    """Return a zip of the run's plain files (config, status, curves, evaluation, labels, where an imported model
    came from, the drawings a taught run trains on, models) under RUN_ID/."""
    if run.damaged:
        raise RunError(f"run {run.run_id} is damaged ({run.problem}); nothing to export")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        snapshot = (
            [runfiles.handwriting_data(run.config.drawings_snapshot)]
            if run.config and run.config.drawings_snapshot
            else []
        )
        for name in (*ZIPPED_FILES, *snapshot):
            if run.file(name).is_file():
                archive.write(run.file(name), f"{run.run_id}/{name}")
    return buffer.getvalue()


def tflite_model(run: Run, images: np.ndarray, which: str = "best") -> tuple[bytes, float]:
    """Return the run's model as a TFLite flatbuffer and the largest probability difference from Keras on
    `images` (N, 28, 28) float32 in [0, 1]; RunError when it is over TFLITE_TOLERANCE."""
    import tensorflow as tf

    predictor = run_predictor(run, which)
    flatbuffer = tf.lite.TFLiteConverter.from_keras_model(predictor.model).convert()
    interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], (len(images), 28, 28, 1))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], images.reshape(-1, 28, 28, 1))
    interpreter.invoke()
    lite = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    difference = float(np.abs(lite - predictor.probabilities(images)).max())
    if difference > TFLITE_TOLERANCE:
        raise RunError(f"the TFLite model differs from Keras by {difference:.2g} (more than {TFLITE_TOLERANCE:g})")
    return flatbuffer, difference


def export_run(run: Run, out_dir: Path, tflite_images: np.ndarray | None = None) -> list[Path]:
    """Write RUN_ID.zip (and RUN_ID.tflite when `tflite_images` are given to check it on) into `out_dir`,
    atomically; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / f"{run.run_id}.zip"]
    storage.write_bytes_atomic(written[0], run_zip(run))
    if tflite_images is not None:
        flatbuffer, _ = tflite_model(run, tflite_images)
        written.append(out_dir / f"{run.run_id}.tflite")
        storage.write_bytes_atomic(written[1], flatbuffer)
    return written

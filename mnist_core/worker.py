"""The training process of one run: `python -m mnist_core.worker RUN_DIR`, started by its supervisor."""

from __future__ import annotations

import os
import sys
import traceback
from contextlib import suppress
from pathlib import Path

from mnist_core import control, runfiles
from mnist_core.runs import FAILED, RUNNING, RunError
from mnist_core.tfimport import import_keras

REPORT_FD_ENV = "MNIST_REPORT_FD"  # the supervisor's pipe for a last word the disk would not take


def describe(error: BaseException) -> str:
    """Return a one-line account of why training failed."""
    if isinstance(error, OSError) and error.strerror:
        where = f" writing {Path(error.filename).name}" if error.filename else ""
        return f"the disk refused{where}: {error.strerror}"
    if isinstance(error, RunError):  # the studio's own messages (a full disk, a damaged file) are one line already
        return str(error)
    return f"{type(error).__name__}: {error}"


def tell_supervisor(message: str) -> None:
    """Send `message` to the supervisor, which records it once the disk takes it."""
    fd = os.environ.get(REPORT_FD_ENV)
    if fd:
        with suppress(OSError), os.fdopen(int(fd), "w") as pipe:
            pipe.write(message)


def device_line() -> str:
    """Import TensorFlow without its start-up chatter (CUDA probes on a CPU machine); return where it trains."""
    import_keras()
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return f"training on {len(gpus)} GPU(s)" if gpus else "no GPU found, training on the CPU"


def train_here(path: Path, on_epoch=None, announce: bool = False) -> str:
    """Train the run at `path` (running, its worker.lock held by this process) in this process and record how it
    ended; return the state it ended in. `on_epoch` as in training.train_run; `announce` prints where it trains
    (TensorFlow's import, inside: a broken install is recorded too)."""
    try:
        if announce:
            print(f"{control.now_iso()} training {path.name}: {device_line()}", flush=True)
        from mnist_core.training import train_run

        state = train_run(path, on_epoch)
        control.transition(path, state, (RUNNING,), error=None, ended=control.now_iso())
        return state
    except Exception as error:  # noqa: BLE001 - any failure must be recorded, never lost
        message = describe(error)
        with suppress(OSError):
            traceback.print_exc()
        try:
            control.transition(path, FAILED, (RUNNING,), error=message, ended=control.now_iso())
        except (RunError, OSError):
            tell_supervisor(message)
        return FAILED
    finally:
        with suppress(OSError):
            (path / runfiles.STOP).unlink(missing_ok=True)


def main(run_dir: str) -> int:
    """Train the run in `run_dir` and record how it ended; return the exit code."""
    return 1 if train_here(Path(run_dir).resolve(), announce=True) == FAILED else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

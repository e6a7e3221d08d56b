"""The supervisor of one run: `python -m mnist_core.supervisor RUN_DIR`, started by control.schedule.

It holds the run's worker.lock (handed over by schedule) and starts the worker, which inherits the lock,
then waits for it. When the worker dies without recording how it ended (kill -9, out of memory, disk
full), the supervisor records it, with the worker's own last word when there was one, retrying while the
disk refuses. Then it starts the next queued run. A few megabytes of Python, no TensorFlow.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

from mnist_core import control
from mnist_core.runs import RUNNING, RunError, read_run
from mnist_core.worker import REPORT_FD_ENV

RETRY_SECONDS = 2.0  # between attempts to record an ending while the disk refuses
RETRY_FOR_SECONDS = 24 * 3600.0


def ending_message(code: int, report: str) -> str:
    """Return the error to record for a worker that exited with `code` without recording its state."""
    if report:
        return report
    if code < 0:
        name = signal.Signals(-code).name
        if -code == signal.SIGKILL:
            return (
                f"the training process was killed ({name}), by hand or for lack of memory; everything up to the "
                "last finished epoch is kept: continue the run to train on"
            )
        return f"the training process was stopped by {name}; continue the run to train on"
    return f"the training process exited with code {code} without a word; its log.txt may say why"


def record_ending(path: Path, message: str) -> None:
    """Mark the run failed with `message` if it is still running, retrying while the disk refuses."""
    deadline = time.monotonic() + RETRY_FOR_SECONDS
    while True:
        try:
            if read_run(path).state == RUNNING:
                control.transition(path, control.FAILED, (RUNNING,), ended=control.now_iso(), error=message)
            return
        except control.StorageError:
            if time.monotonic() > deadline:
                return
            time.sleep(RETRY_SECONDS)
        except RunError:
            return  # damaged or deleted meanwhile: nothing to record into


def schedule_next(root: Path) -> None:
    """Start the next queued run, retrying while the disk refuses."""
    deadline = time.monotonic() + RETRY_FOR_SECONDS
    while True:
        try:
            control.schedule(root)
            return
        except control.StorageError:
            if time.monotonic() > deadline:
                return
            time.sleep(RETRY_SECONDS)


def main(run_dir: str) -> int:
    """Run the worker of `run_dir` to its end, record an ending it could not, start the next run."""
    if os.fork() > 0:
        os._exit(0)  # the launcher waits for this first process only; the supervisor lives on, never a zombie
    path = Path(run_dir).resolve()
    lock_fd = int(os.environ.pop(control.LOCK_FD_ENV))
    report_read, report_write = os.pipe()
    env = dict(os.environ, **{REPORT_FD_ENV: str(report_write)})
    worker = subprocess.Popen(
        [sys.executable, "-m", "mnist_core.worker", str(path)],
        stdin=subprocess.DEVNULL,
        env=env,
        pass_fds=(lock_fd, report_write),  # the worker holds the lock too: alive while either of us is
    )
    os.close(report_write)
    with suppress(RunError):  # the pids are for people and tests; liveness is the lock
        control.update_status(path, pid=worker.pid, supervisor_pid=os.getpid())
    code = worker.wait()
    with os.fdopen(report_read, "rb") as report:
        last_word = report.read().decode(errors="replace").strip()
    record_ending(path, ending_message(code, last_word))
    os.close(lock_fd)  # the run is free: it may be continued and started again
    schedule_next(path.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

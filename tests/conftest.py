"""Shared fixtures: the MNIST location, a private runs folder per test, and one trained run per session."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# The one default of the data folder for every test (tests/e2e too): the offline copy beside the checkout.
if not os.environ.get("MNIST_DATA_DIR", "").strip():
    os.environ["MNIST_DATA_DIR"] = str(REPO_ROOT.parent / "shared" / "data" / "mnist")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from mnist_core import control, runs  # noqa: E402  (after the environment above is set)
from mnist_core.config import TrainConfig  # noqa: E402

PYTHON = sys.executable
RUN_TIMEOUT = 180.0  # seconds a tiny run may take before a test gives up on it

# The session's shared run: the MLP with Adam and a one-cycle schedule, 1 epoch of 2,000 images.
TEMPLATE_CONFIG = dict(
    architecture="mlp",
    epochs=1,
    batch_size=64,
    optimizer="adam",
    learning_rate=3e-3,
    lr_schedule="one_cycle",
    train_subset=2000,
)


@pytest.fixture(autouse=True)
def runs_dir(tmp_path, monkeypatch) -> Path:
    """Point MNIST_RUNS_DIR at this test's own folder, so no test sees another's runs."""
    root = tmp_path / "runs"
    monkeypatch.setenv("MNIST_RUNS_DIR", str(root))
    monkeypatch.setenv("MNIST_DRAWINGS_DIR", str(tmp_path / "drawings"))
    monkeypatch.delenv("MNIST_MAX_CONCURRENT_RUNS", raising=False)
    for name in ("MNIST_STUDIO_PASSWORD_HASH", "MNIST_STUDIO_ADMIN_PASSWORD_HASH"):  # local mode unless a test sets one
        monkeypatch.delenv(name, raising=False)
    return root


def log_of(run: runs.Run) -> str:
    """Return the tail of the run's worker log, for failure messages."""
    try:
        return run.file("log.txt").read_text()[-3000:]
    except OSError:
        return "(no log.txt)"


def wait_state(run: runs.Run, states=runs.DONE_STATES, timeout: float = RUN_TIMEOUT) -> str:
    """Return the run's state once it is in `states` (fails the test with the worker log otherwise)."""
    try:
        return control.wait_for(run, states, timeout=timeout)
    except TimeoutError as error:
        pytest.fail(f"{error}\n{log_of(run)}")


def wait_until(predicate, timeout: float = RUN_TIMEOUT, poll: float = 0.05, what: str = "condition"):
    """Return predicate()'s first truthy value, polling; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def fresh(run: runs.Run) -> runs.Run:
    """Return a new snapshot of `run` (snapshots never change)."""
    return runs.read_run(run.path)


def assert_best_is_final(run: runs.Run) -> None:
    """Assert the run's best.keras holds exactly the weights of its final.keras (its last epoch's model)."""
    import keras
    import numpy as np

    from mnist_core import runfiles

    best = keras.saving.load_model(run.file(runfiles.BEST_MODEL), safe_mode=True)
    final = keras.saving.load_model(run.file(runfiles.FINAL_MODEL), safe_mode=True)
    for best_weights, final_weights in zip(best.get_weights(), final.get_weights(), strict=True):
        np.testing.assert_array_equal(best_weights, final_weights)


def kill_processes(run: runs.Run) -> None:
    """SIGKILL the run's worker and supervisor if they are alive (only pids whose command line names the run)."""
    for pid in control.run_processes(run.path):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def reaper():
    """Collect runs a test starts; any worker still alive at teardown is killed (a failed test leaks none)."""
    started: list[runs.Run] = []
    yield started
    for run in started:
        kill_processes(run)


def at_once(action, count: int, refusal: type[Exception] = Exception) -> tuple[list, list[str]]:
    """Return (what each call returned, the message of each `refusal` raised) of `action(i)` for i < `count`,
    all called at the same moment from `count` threads (tabs, or a double click); any other error fails the test."""
    barrier, returned, refused, failed = threading.Barrier(count), [], [], []

    def click(index: int) -> None:
        barrier.wait()
        try:
            returned.append(action(index))
        except refusal as error:
            refused.append(str(error))
        except Exception as error:  # noqa: BLE001  (re-raised below, in the test's own thread)
            failed.append(error)

    threads = [threading.Thread(target=click, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failed:
        raise failed[0]
    return returned, refused


def copy_run(run: runs.Run, root: Path) -> runs.Run:
    """Return a copy of a finished run's folder under `root` (tests that change a run work on a copy)."""
    root.mkdir(parents=True, exist_ok=True)
    target = root / run.run_id
    shutil.copytree(run.path, target)
    return runs.read_run(target)


@pytest.fixture(scope="session")
def mnist():
    """Return MNIST loaded once from MNIST_DATA_DIR."""
    from mnist_core.data import load_mnist

    return load_mnist()


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> runs.Run:
    """Return a finished 1-epoch run made by a real worker process (read-only: copy it to change it)."""
    root = tmp_path_factory.mktemp("template-runs")
    run = control.start_run(TrainConfig.from_dict(TEMPLATE_CONFIG), root)
    try:
        state = control.wait_for(run, timeout=RUN_TIMEOUT)
    except TimeoutError:
        kill_processes(run)
        raise
    run = fresh(run)
    assert state == runs.FINISHED, f"template run ended {state}: {run.status}\n{log_of(run)}"
    return run


def run_cli(
    *args: str, runs_root: Path, timeout: float = RUN_TIMEOUT, answer: str | None = None
) -> subprocess.CompletedProcess:
    """Run `python -m mnist_core ARGS` with MNIST_RUNS_DIR=runs_root (and `answer` on its stdin, else none);
    return the finished process."""
    env = dict(os.environ, MNIST_RUNS_DIR=str(runs_root))
    return subprocess.run(
        [PYTHON, "-m", "mnist_core", *args],
        cwd=REPO_ROOT,
        env=env,
        input=answer,
        stdin=None if answer is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def trained_cnn(tmp_path_factory) -> runs.Run:
    """Return a finished fast_cnn run (1 epoch of the 54,000 images: about 98 %; batch-normalized models need a
    few hundred batches before they mean much), made by a real worker process."""
    root = tmp_path_factory.mktemp("cnn-runs")
    run = control.start_run(TrainConfig.for_architecture("fast_cnn", epochs=1), root)
    try:
        state = control.wait_for(run, timeout=RUN_TIMEOUT)
    except TimeoutError:
        kill_processes(run)
        raise
    assert state == runs.FINISHED, f"cnn run ended {state}\n{log_of(run)}"
    return fresh(run)


def _as_postgres(*command: str, **kwargs) -> subprocess.CompletedProcess:
    """Run a PostgreSQL tool as the `postgres` user (initdb and pg_ctl refuse root); fail the test with its output."""
    result = subprocess.run(["runuser", "-u", "postgres", "--", *command], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="session")
def postgres_url():
    """Return the URL of a real PostgreSQL server (Debian's package, installed by `make test`), started for the
    session in a fresh folder on a free port of 127.0.0.1 and stopped at the end."""
    import socket
    import tempfile

    binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    assert binaries, "PostgreSQL is not installed: `make test` installs Debian's postgresql package"
    bin_dir = binaries[-1].parent
    folder = Path(tempfile.mkdtemp(prefix="mnist-postgres-"))  # not under pytest's root-only tmp folders
    shutil.chown(folder, "postgres", "postgres")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = folder / "data"
    _as_postgres(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    _as_postgres(
        str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-o", options, "-w", "start"
    )
    try:
        _as_postgres(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "sweeps")
        yield f"postgresql://postgres@127.0.0.1:{port}/sweeps"
    finally:
        _as_postgres(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)

"""Runs on disk: one folder per run, a queue, worker processes, stop, continue, and crash detection.

Layout of a run folder (plain files other tools can read):
    config.json       the TrainConfig
    status.json       state (queued/running/finished/stopped/failed), error, pid, times, epochs done
    progress.json     the trainer's latest position (epoch, batch, running loss/accuracy), ~1 s fresh
    epochs.csv        one row per epoch: loss, accuracy, val_loss, val_accuracy, seconds, elapsed, lr
    batches.jsonl     the running per-batch curve, a JSON object per line
    best.keras        the model with the best validation accuracy so far
    final.keras       the model when training ended (finished or stopped)
    evaluation.json   the test-set evaluation, once computed
    tensorboard/      TensorBoard event files (`tensorboard --logdir runs`)
    log.txt           the worker's output (tracebacks end up here)
"""

from __future__ import annotations

import fcntl
import os
import secrets
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mnist_core import storage
from mnist_core.config import ConfigError, TrainConfig, max_concurrent_runs, runs_root

QUEUED, RUNNING, FINISHED, STOPPED, FAILED = "queued", "running", "finished", "stopped", "failed"
STATES = (QUEUED, RUNNING, FINISHED, STOPPED, FAILED)
ACTIVE_STATES = (QUEUED, RUNNING)
DONE_STATES = (FINISHED, STOPPED, FAILED)

EPOCH_COLUMNS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds", "elapsed", "learning_rate"]

# Popen handles of workers this process started, so finished ones are reaped, not left as zombies.
_CHILDREN: list[subprocess.Popen] = []


class RunError(RuntimeError):
    """A run cannot do what was asked (unknown id, not continuable, no model yet)."""


@dataclass(frozen=True)
class Run:
    """A run folder and readers for everything in it."""

    path: Path

    @property
    def run_id(self) -> str:
        """Return the run's id (its folder name)."""
        return self.path.name

    def file(self, name: str) -> Path:
        """Return the path of one of the run's files."""
        return self.path / name

    @property
    def config(self) -> TrainConfig:
        """Return the run's training config."""
        return TrainConfig.from_dict(storage.read_json(self.file("config.json"), {}))

    @property
    def status(self) -> dict:
        """Return status.json as a dict (state, error, pid, created, started, ended, epochs_done...)."""
        return storage.read_json(self.file("status.json"), {"state": FAILED, "error": "status.json is missing"})

    @property
    def state(self) -> str:
        """Return the run's state, one of STATES."""
        return self.status.get("state", FAILED)

    def epochs(self) -> list[dict]:
        """Return the per-epoch rows (epoch, loss, accuracy, val_loss, val_accuracy, seconds, elapsed)."""
        return storage.read_csv_numbers(self.file("epochs.csv"))

    def batches(self) -> list[dict]:
        """Return the running per-batch curve rows (epoch_progress, loss, accuracy, elapsed)."""
        return storage.read_jsonl(self.file("batches.jsonl"))

    def progress(self) -> dict:
        """Return the trainer's latest position, {} before the first batch."""
        return storage.read_json(self.file("progress.json"), {}) or {}

    def evaluation(self) -> dict | None:
        """Return the stored test-set evaluation, or None if not computed yet."""
        return storage.read_json(self.file("evaluation.json"))

    def model_path(self, which: str = "best") -> Path:
        """Return the path of the 'best' or 'final' model (falling back to the other one)."""
        first, second = ("best.keras", "final.keras") if which == "best" else ("final.keras", "best.keras")
        return self.file(first) if self.file(first).exists() else self.file(second)

    def has_model(self) -> bool:
        """Return True once a model file has been saved."""
        return self.file("best.keras").exists() or self.file("final.keras").exists()

    def summary(self) -> dict:
        """Return one table row: id, architecture, state, epochs, best val accuracy, test accuracy, s/epoch."""
        status, config, epochs = self.status, self.config, self.epochs()
        evaluation = self.evaluation() or {}
        seconds = [row["seconds"] for row in epochs if isinstance(row.get("seconds"), float)]
        best = max((row.get("val_accuracy", 0.0) for row in epochs), default=None)
        return {
            "run_id": self.run_id,
            "architecture": config.architecture,
            "state": status.get("state"),
            "epochs_done": len(epochs),
            "epochs_target": config.epochs,
            "best_val_accuracy": best,
            "test_accuracy": evaluation.get("accuracy"),
            "seconds_per_epoch": sorted(seconds)[len(seconds) // 2] if seconds else None,
            "created": status.get("created"),
            "error": status.get("error"),
        }


def now_iso() -> str:
    """Return the current UTC time as an ISO 8601 string."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@contextmanager
def _locked(root: Path):
    """Hold the runs folder's lock (one scheduler / status writer at a time, across processes)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def update_status(run: Run, **changes) -> dict:
    """Merge `changes` into the run's status.json under the lock; return the new status."""
    with _locked(run.path.parent):
        status = storage.read_json(run.file("status.json"), {}) or {}
        status.update(changes)
        storage.write_json_atomic(run.file("status.json"), status)
        return status


def _root(root: Path | str | None) -> Path:
    """Return the runs folder to use: `root`, else the configured one."""
    return Path(root).resolve() if root is not None else runs_root()


def get_run(run_id: str, root: Path | str | None = None) -> Run:
    """Return the run `run_id` (its status refreshed); RunError if there is none."""
    path = _root(root) / run_id
    if not run_id or "/" in run_id or not (path / "config.json").exists():
        raise RunError(f"no run {run_id!r} in {_root(root)}")
    run = Run(path)
    _detect_dead(run)
    return run


def list_runs(root: Path | str | None = None, *, schedule_queue: bool = True) -> list[Run]:
    """Return every run, newest first, after marking dead workers failed and starting queued runs."""
    root = _root(root)
    if schedule_queue:
        schedule(root)
    if not root.is_dir():
        return []
    runs = [Run(path) for path in root.iterdir() if (path / "config.json").exists()]
    runs = [run for run in runs if _readable(run)]
    for run in runs:
        _detect_dead(run)
    return sorted(runs, key=lambda run: run.run_id, reverse=True)


def _readable(run: Run) -> bool:
    """Return True when the run's config.json holds a valid config (a damaged run is left out of lists)."""
    try:
        run.config  # noqa: B018 - reading it is the check
    except (ConfigError, TypeError, ValueError):
        return False
    return True


def create_run(config: TrainConfig, root: Path | str | None = None) -> Run:
    """Return a new queued run folder for `config` (validated); nothing is started yet."""
    config = config.validated()
    root = _root(root)
    root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = root / f"{stamp}-{config.architecture}-{secrets.token_hex(2)}"
    path.mkdir()
    storage.write_json_atomic(path / "config.json", config.to_dict())
    storage.write_json_atomic(
        path / "status.json",
        {"state": QUEUED, "error": None, "pid": None, "created": now_iso(), "epochs_done": 0},
    )
    return Run(path)


def start_run(config: TrainConfig, root: Path | str | None = None) -> Run:
    """Return a new run for `config`, queued and started in its own process when a slot is free."""
    run = create_run(config, root)
    schedule(run.path.parent)
    return run


def request_stop(run_id: str, root: Path | str | None = None) -> Run:
    """Ask run `run_id` to stop (honoured within one batch); a queued run is stopped at once."""
    run = get_run(run_id, root)
    with _locked(run.path.parent):
        status = storage.read_json(run.file("status.json"), {}) or {}
        if status.get("state") == QUEUED:
            status.update(state=STOPPED, ended=now_iso(), error=None)
            storage.write_json_atomic(run.file("status.json"), status)
        elif status.get("state") == RUNNING:
            run.file("stop").write_text(now_iso())
    return run


def continue_run(run_id: str, extra_epochs: int, root: Path | str | None = None) -> Run:
    """Queue run `run_id` for `extra_epochs` more epochs from its final model; its curves go on."""
    run = get_run(run_id, root)
    if isinstance(extra_epochs, bool) or not isinstance(extra_epochs, int) or extra_epochs < 1:
        raise RunError(f"extra_epochs: must be a whole number >= 1, got {extra_epochs!r}")
    if run.state in ACTIVE_STATES:
        raise RunError(f"run {run_id} is {run.state}; wait for it to end or stop it first")
    if not run.has_model():
        raise RunError(f"run {run_id} has no saved model to continue from")
    done = len(run.epochs())
    config = TrainConfig.from_dict({**run.config.to_dict(), "epochs": done + extra_epochs})
    with _locked(run.path.parent):
        storage.write_json_atomic(run.file("config.json"), config.to_dict())
        run.file("stop").unlink(missing_ok=True)
        status = storage.read_json(run.file("status.json"), {}) or {}
        status.update(state=QUEUED, error=None, pid=None, ended=None, continued_at_epoch=done)
        storage.write_json_atomic(run.file("status.json"), status)
    schedule(run.path.parent)
    return run


def delete_run(run_id: str, root: Path | str | None = None) -> None:
    """Delete a run that is not queued or running; RunError otherwise."""
    import shutil

    run = get_run(run_id, root)
    if run.state in ACTIVE_STATES:
        raise RunError(f"run {run_id} is {run.state}; stop it before deleting it")
    shutil.rmtree(run.path)


def _pid_alive(pid: int | None, run_id: str) -> bool:
    """Return True when `pid` is a live (not zombie) process working on `run_id`."""
    if not pid:
        return False
    proc = Path(f"/proc/{pid}")
    if proc.is_dir():
        try:
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, IndexError):
            return False
        # A reused pid runs something else: only our worker names this run on its command line.
        return state not in ("Z", "X") and run_id in cmdline
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap_children() -> None:
    """Collect exit codes of workers this process started, so none lingers as a zombie."""
    for child in list(_CHILDREN):
        if child.poll() is not None:
            _CHILDREN.remove(child)


def _detect_dead(run: Run) -> None:
    """Mark a 'running' run whose worker process is gone as failed (killed, out of memory...)."""
    _reap_children()
    status = run.status
    if status.get("state") != RUNNING or _pid_alive(status.get("pid"), run.run_id):
        return
    with _locked(run.path.parent):
        status = storage.read_json(run.file("status.json"), {}) or {}
        if status.get("state") != RUNNING or _pid_alive(status.get("pid"), run.run_id):
            return
        done = len(run.epochs())
        status.update(
            state=FAILED,
            ended=now_iso(),
            error=(
                f"the training process (pid {status.get('pid')}) ended without a word after {done} "
                "epoch(s): it was killed or ran out of memory. The best model so far is kept; "
                "continue the run to train on."
            ),
        )
        storage.write_json_atomic(run.file("status.json"), status)
    run.file("stop").unlink(missing_ok=True)


def _launch(run: Run) -> int:
    """Start the worker process for `run`, detached from the caller; return its pid."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    env.pop("MPLBACKEND", None)
    package_parent = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    with open(run.file("log.txt"), "a") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "mnist_core.worker", str(run.path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=package_parent,
            env=env,
            start_new_session=True,  # survives the page, the server and Ctrl-C in the terminal
        )
    _CHILDREN.append(child)
    return child.pid


def schedule(root: Path | str | None = None) -> list[str]:
    """Start queued runs, oldest first, while fewer than the limit are running; return started ids."""
    root = _root(root)
    if not root.is_dir():
        return []
    _reap_children()
    started = []
    with _locked(root):
        runs = sorted(
            (Run(path) for path in root.iterdir() if (path / "status.json").exists()),
            key=lambda run: (run.status.get("created") or "", run.run_id),
        )
        running = [r for r in runs if r.status.get("state") == RUNNING and _pid_alive(r.status.get("pid"), r.run_id)]
        free = max_concurrent_runs() - len(running)
        for run in runs:
            if free <= 0:
                break
            status = run.status
            if status.get("state") != QUEUED:
                continue
            pid = _launch(run)
            status.update(state=RUNNING, pid=pid, started=now_iso(), error=None)
            storage.write_json_atomic(run.file("status.json"), status)
            started.append(run.run_id)
            free -= 1
    return started


def wait_for(run: Run, states=DONE_STATES, timeout: float = 600.0, poll: float = 0.2) -> str:
    """Return the run's state once it is in `states`; TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _detect_dead(run)
        state = run.state
        if state in states:
            return state
        if state == QUEUED:
            schedule(run.path.parent)
        time.sleep(poll)
    raise TimeoutError(f"run {run.run_id} still {run.state} after {timeout:.0f} s")


def batches_done(run: Run, progress: dict) -> tuple[int, int, int]:
    """Return (batches done, batches in all epochs, batches per epoch) from the trainer's `progress`."""
    config = run.config
    steps = progress.get("steps_per_epoch") or config.steps_per_epoch
    done = (progress.get("epoch", 1) - 1) * steps + progress.get("batch", 0) if progress else 0
    return done, config.epochs * steps, steps


def progress_fraction(run: Run) -> float:
    """Return the share of the run's batches done, 0-1 (1 once finished)."""
    progress = run.progress()
    if run.state == FINISHED:
        return 1.0
    if not progress:
        return min(1.0, len(run.epochs()) / run.config.epochs)
    done, total, _ = batches_done(run, progress)
    return max(0.0, min(1.0, done / total))


def time_left(run: Run) -> float | None:
    """Return the estimated seconds until the run's last epoch ends, or None when unknown."""
    progress = run.progress()
    if not progress or run.state != RUNNING:
        return None
    done_steps, total_steps, steps = batches_done(run, progress)
    seconds = [row["seconds"] for row in run.epochs()[-3:] if isinstance(row.get("seconds"), float)]
    if seconds:
        per_step = sum(seconds) / len(seconds) / steps
    elif progress.get("epoch_elapsed") and progress.get("batch"):
        per_step = progress["epoch_elapsed"] / progress["batch"]
    else:
        return None
    return max(0.0, (total_steps - done_steps) * per_step)

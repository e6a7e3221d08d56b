"""Changing runs: create, start, stop, continue, delete, and the queue that starts workers.

Every state change goes through `transition`, which checks the change is allowed and writes status.json
under the runs folder's lock, so two clicks, two tabs or two processes can never both win.

Liveness is a lock, not a pid: `schedule` takes the run's worker.lock before it starts the supervisor
process and hands the lock over to it; the supervisor's worker inherits it. The lock is free only when
both are gone, however they died, so a reused pid or a zombie can never pass for a live worker. The
supervisor waits for its worker, records how it ended when the worker could not (killed, out of memory,
disk full), then starts the next queued run: nobody has to be reading for the queue to move.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

from mnist_core import runfiles, storage
from mnist_core.access import Actor
from mnist_core.config import ConfigError, TrainConfig
from mnist_core.runs import (
    ACTIVE_STATES,
    DONE_STATES,
    FAILED,
    IMPORTED,
    QUEUED,
    RUNNING,
    STOPPED,
    Run,
    RunError,
    is_run_folder,
    owned_count,
    read_run,
    resolve_root,
    run_path,
)
from mnist_core.settings import max_concurrent_runs, max_queued_per_owner
from mnist_core.teaching import Teaching, remove_other_snapshots, write_snapshot
from mnist_core.teaching import check as check_teaching

LOCK_FD_ENV = "MNIST_WORKER_LOCK_FD"  # the fd number of the inherited worker.lock, for the supervisor


class StorageError(RunError):
    """The disk refused a write (full, read-only, no permission); the message says which and why."""


def now_iso() -> str:
    """Return the current UTC time as an ISO 8601 string (milliseconds)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def storage_error(error: OSError, what: str) -> StorageError:
    """Return a one-line StorageError for an OSError met while doing `what`."""
    reason = error.strerror or str(error)
    return StorageError(f"cannot {what}: {reason}" + (f" ({error.filename})" if error.filename else ""))


@contextmanager
def locked(root: Path):
    """Hold the runs folder's lock: one state change at a time, across processes."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / runfiles.ROOT_LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_status(path: Path, status: dict) -> None:
    """Write status.json (caller holds the lock); StorageError when the disk refuses."""
    try:
        storage.write_json_atomic(path / runfiles.STATUS, status)
    except OSError as error:
        raise storage_error(error, f"record the state of run {path.name}") from error


def _current(path: Path, actor: Actor | None = None, verb: str = "change") -> Run:
    """Return a fresh snapshot of the run at `path`; RunError when it is gone (another tab deleted it meanwhile),
    damaged, or `actor` may not `verb` it."""
    _check_still_there(path)
    run = read_run(path)
    if run.damaged:
        raise RunError(f"run {run.run_id} is damaged ({run.problem}); it can only be deleted")
    _check_actor(run, actor, verb)
    return run


def _check_still_there(path: Path) -> None:
    """Raise RunError when the run folder at `path` is gone (checked under the lock: found before it, it may have
    been deleted since)."""
    if not is_run_folder(path):
        raise RunError(f"no run {path.name} in {path.parent} (it was just deleted)")


def _check_actor(run: Run, actor: Actor | None, verb: str) -> None:
    """Raise RunError unless `actor` (None: the command line, trusted) may `verb` the run."""
    if actor is not None and not actor.may_control(run.status.get("owner")):
        raise RunError(f"only the browser session that started run {run.run_id} (or an admin) may {verb} it")


def _transition_locked(path: Path, to: str, allowed: tuple[str, ...], **changes) -> dict:
    """Move the run at `path` to state `to` if it is in one of `allowed` (caller holds the lock)."""
    run = _current(path)
    if run.state not in allowed:
        raise RunError(f"run {run.run_id} is {run.state}; it cannot become {to}")
    status = {**run.status, "state": to, **changes}
    _write_status(path, status)
    return status


def transition(path: Path, to: str, allowed: tuple[str, ...], **changes) -> dict:
    """Move the run at `path` to state `to` if it is in one of `allowed`; return the new status."""
    with locked(path.parent):
        return _transition_locked(path, to, allowed, **changes)


def update_status(path: Path, **changes) -> dict:
    """Merge fields other than the state into the run's status.json under the lock; return it."""
    with locked(path.parent):
        status = {**_current(path).status, **changes}
        _write_status(path, status)
        return status


def _check_quota(root: Path, actor: Actor | None) -> None:
    """Raise RunError when `actor` (not an admin) already has as many runs queued or running as one may."""
    if actor is None or actor.admin:
        return
    waiting = owned_count(root, actor.id, ACTIVE_STATES)
    if waiting >= max_queued_per_owner():
        raise RunError(
            f"you already have {waiting} runs queued or running, the most one session may have; "
            "wait for one to end or stop one"
        )


def create_run(config: TrainConfig, root: Path | str | None = None, actor: Actor | None = None) -> Run:
    """Return a new queued run folder for `config` (validated), owned by `actor`; nothing is started yet."""
    return _create(config, resolve_root(root), actor)[0]


def create_trial_run(config: TrainConfig, sweep: str, trial: int, root: Path | str | None = None) -> tuple[Run, int]:
    """Return (a new run for trial `trial` of sweep `sweep`, already running for this process to train, the fd
    of its worker.lock: close it once the run has ended). The queue never starts it."""
    run, lock_fd = _create(config, resolve_root(root), None, {"sweep": sweep, "trial": trial})
    return run, lock_fd


def _create(config: TrainConfig, root: Path, actor: Actor | None, sweep: dict | None = None) -> tuple[Run, int | None]:
    """Return (a new run folder for `config`: queued, or for a sweep's trial running with its worker.lock held,
    that lock's fd or None).

    The folder is filled under a hidden name and renamed into place, so a reader never meets a half-made
    run and a failed write (disk full) leaves nothing behind."""
    config = config.validated()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    final = root / f"{stamp}-{config.architecture}-{secrets.token_hex(2)}"
    staging = root / f"{runfiles.CREATING_PREFIX}{final.name}"
    lock_fd = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        with locked(root):
            _check_quota(root, actor)
            staging.mkdir()
            storage.write_json_atomic(staging / runfiles.CONFIG, config.to_dict())
            status = {"state": QUEUED, "error": None, "pid": None, "created": now_iso(), "epochs_done": 0}
            status["owner"] = actor.id if actor else None
            if sweep is not None:
                lock_fd = _try_worker_lock(staging)  # a new file, so free; the lock goes with it through the rename
                status.update(sweep, state=RUNNING, pid=os.getpid(), started=status["created"])
            storage.write_json_atomic(staging / runfiles.STATUS, status)
            staging.rename(final)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        if lock_fd is not None:
            os.close(lock_fd)
        raise storage_error(error, "create the run") from error
    return read_run(final), lock_fd


def start_run(config: TrainConfig, root: Path | str | None = None, actor: Actor | None = None) -> Run:
    """Return a new run for `config` owned by `actor`, queued and started in its own process when a slot is free."""
    run = create_run(config, root, actor)
    schedule(run.path.parent)
    return read_run(run.path)


def request_stop(run_id: str, root: Path | str | None = None, actor: Actor | None = None) -> Run:
    """Ask run `run_id` to stop (honoured within one batch); a queued run is stopped at once."""
    path = run_path(run_id, root)
    with locked(path.parent):
        run = _current(path, actor, "stop")
        if run.state == QUEUED:
            _transition_locked(path, STOPPED, (QUEUED,), ended=now_iso(), error=None)
        elif run.state == RUNNING:
            try:
                (path / runfiles.STOP).write_text(now_iso())
            except OSError as error:
                raise storage_error(error, f"ask run {run_id} to stop") from error
    return read_run(path)


def continue_run(
    run_id: str,
    extra_epochs: int | None = None,
    root: Path | str | None = None,
    actor: Actor | None = None,
    teaching: Teaching | None = None,
    repeat: int = 0,
) -> Run:
    """Queue run `run_id` to train on from its last finished epoch to its planned epochs plus `extra_epochs`
    (None: the plan as it is). The plan never shrinks: a run stopped in epoch 1 of 2 and given one more epoch
    trains to epoch 3. Its curves go on; a partial epoch is trained again from its start. With `teaching`, its
    training drawings join every epoch `repeat` times from now on (teaching.py)."""
    for field, value, low in (("extra_epochs", extra_epochs, 0), ("repeat", repeat, 1 if teaching else 0)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise RunError(f"{field}: must be a whole number >= {low}, got {value!r}")
    path = run_path(run_id, root)
    with locked(path.parent):
        run = _current(path, actor, "continue")
        if run.state == IMPORTED:
            raise RunError(f"run {run_id} was imported: it was trained elsewhere and has no training to continue")
        if run.state in ACTIVE_STATES:
            raise RunError(f"run {run_id} is {run.state}; wait for it to end or stop it first")
        done = len(run.epochs)
        target = max(run.config.epochs, done) + (extra_epochs or 0)
        if target <= done:
            raise RunError(f"run {run_id} has trained all {done} planned epochs; ask for more epochs")
        if done and not run.has_model:
            raise RunError(f"run {run_id} has no saved model to continue from")
        changes = {"epochs": target}
        if teaching is not None:
            check_teaching(teaching)
            changes |= {"drawings_repeat": repeat, "drawings_train": teaching.counts[0], "drawings_snapshot": "0" * 16}
        try:
            TrainConfig.from_dict({**run.config.to_dict(), **changes})  # refused before anything is written
        except ConfigError as error:
            raise RunError(str(error)) from error
        try:
            if teaching is not None:  # the snapshot first; config.json, naming it, is the commit point
                changes["drawings_snapshot"] = write_snapshot(path, teaching)
            config = TrainConfig.from_dict({**run.config.to_dict(), **changes})
            storage.write_json_atomic(path / runfiles.CONFIG, config.to_dict())
            if teaching is not None:
                remove_other_snapshots(path, config.drawings_snapshot)
            (path / runfiles.STOP).unlink(missing_ok=True)
        except OSError as error:
            raise storage_error(error, f"continue run {run_id}") from error
        # Continued by hand, a sweep's trial is a run of its own: its sweep no longer stops it.
        _transition_locked(
            path, QUEUED, DONE_STATES, error=None, pid=None, ended=None, continued_at_epoch=done, sweep=None, trial=None
        )
    schedule(path.parent)
    return read_run(path)


NAME_LIMIT, NOTE_LIMIT, TAGS_LIMIT = 60, 2000, 12
TAG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,29}$")


def clean_tags(tags) -> list[str]:
    """Return tags as stored: lower case, stripped, in order, no repeats; RunError naming a tag that is not
    1-30 letters, digits, '-' or '_', or when there are more than TAGS_LIMIT."""
    cleaned = list(dict.fromkeys(str(tag).strip().lower() for tag in tags if str(tag).strip()))
    for tag in cleaned:
        if not TAG_PATTERN.fullmatch(tag):
            raise RunError(f"tag {tag!r}: use 1-30 letters, digits, '-' or '_'")
    if len(cleaned) > TAGS_LIMIT:
        raise RunError(f"tags: at most {TAGS_LIMIT}, got {len(cleaned)}")
    return cleaned


def label_run(
    run_id: str,
    name: str | None = None,
    note: str | None = None,
    tags: list[str] | None = None,
    root: Path | str | None = None,
    actor: Actor | None = None,
) -> Run:
    """Give run `run_id` a display name, a note and tags (None: keep what it has; "" or []: clear it), in any
    state; stored in its labels.json, so they survive continue. RunError on a damaged run or a bad value."""
    path = run_path(run_id, root)
    with locked(path.parent):
        run = _current(path, actor, "label")
        labels = dict(run.labels)
        if name is not None:
            name = " ".join(name.split())  # one line
            if len(name) > NAME_LIMIT:
                raise RunError(f"name: at most {NAME_LIMIT} characters, got {len(name)}")
            labels["name"] = name
        if note is not None:
            if len(note) > NOTE_LIMIT:
                raise RunError(f"note: at most {NOTE_LIMIT} characters, got {len(note)}")
            labels["note"] = note.strip()
        if tags is not None:
            labels["tags"] = clean_tags(tags)
        labels = {key: value for key, value in labels.items() if value}
        try:
            storage.write_json_atomic(path / runfiles.LABELS, labels)
        except OSError as error:
            raise storage_error(error, f"label run {run_id}") from error
    return read_run(path)


def delete_run(run_id: str, root: Path | str | None = None, actor: Actor | None = None) -> str:
    """Move a run that is not queued or running (a damaged run too) to the trash; return its trash entry, for
    restore_run. RunError otherwise. The trash keeps the newest TRASH_KEPT deletions."""
    path = run_path(run_id, root)
    trash = path.parent / runfiles.TRASH
    with locked(path.parent):
        _check_still_there(path)
        run = read_run(path)
        _check_actor(run, actor, "delete")
        if not run.damaged and run.state in ACTIVE_STATES:
            raise RunError(f"run {run_id} is {run.state}; stop it before deleting it")
        if worker_alive(path):
            raise RunError(f"run {run_id} still has a training process; stop it before deleting it")
        entry = runfiles.trash_entry(run_id, time.time_ns())
        try:
            trash.mkdir(exist_ok=True)
            path.rename(trash / entry)  # one rename: the run is either listed or in the trash, never half
        except OSError as error:
            raise storage_error(error, f"delete run {run_id}") from error
        for old in trashed_runs(path.parent)[runfiles.TRASH_KEPT :]:
            shutil.rmtree(trash / old, ignore_errors=True)
    return entry


def trashed_runs(root: Path | str | None = None) -> list[str]:
    """Return the trash's entries (RUN_ID.NANOSECONDS), the newest deletion first."""
    trash = resolve_root(root) / runfiles.TRASH
    entries = [p.name for p in trash.iterdir() if p.is_dir()] if trash.is_dir() else []
    return sorted(entries, key=runfiles.deleted_at, reverse=True)


def restore_run(entry: str, root: Path | str | None = None, actor: Actor | None = None) -> Run:
    """Put a deleted run back from the trash as it was (`entry` from delete_run, or a run id: its newest
    deletion); RunError when it is not there or a run of that id exists again."""
    root_path = resolve_root(root)
    with locked(root_path):  # the trash as it is now: another deletion or restore may have just changed it
        entries = trashed_runs(root_path)
        if entry not in entries:
            entry = next((name for name in entries if runfiles.trashed_run_id(name) == entry), entry)
        run_id = runfiles.trashed_run_id(entry)
        source = root_path / runfiles.TRASH / entry
        if entry not in entries or not runfiles.RUN_ID_PATTERN.fullmatch(run_id):
            raise RunError(f"{entry!r}: no deleted run of that name in the trash")
        _check_actor(read_run(source), actor, "restore")
        target = root_path / run_id
        if target.exists():
            raise RunError(f"run {run_id} exists again; delete it first to restore the deleted one")
        try:
            source.rename(target)
        except OSError as error:
            raise storage_error(error, f"restore run {run_id}") from error
    return read_run(target)


def _try_worker_lock(path: Path) -> int | None:
    """Return an fd holding the run's worker.lock, or None when a supervisor or worker holds it."""
    fd = os.open(path / runfiles.WORKER_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def worker_alive(path: Path) -> bool:
    """Return True while the run's supervisor or worker process lives (it holds worker.lock)."""
    if not (path / runfiles.WORKER_LOCK).exists():
        return False
    fd = _try_worker_lock(path)
    if fd is None:
        return True
    os.close(fd)
    return False


def run_processes(path: Path) -> list[int]:
    """Return the pids of the run's live worker and supervisor (their command lines name the run folder)."""
    try:
        status = read_run(path).status
    except OSError:
        return []
    live = []
    for pid in (status.get("pid"), status.get("supervisor_pid")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace") if pid else ""
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] if cmdline else "X"
        except (OSError, IndexError):
            continue
        if str(path) in cmdline.split("\0") and state not in ("Z", "X"):
            live.append(pid)
    return live


def _launch(path: Path, lock_fd: int) -> None:
    """Start the run's supervisor process, detached, handing it the held worker lock."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1", **{LOCK_FD_ENV: str(lock_fd)})
    env.pop("MPLBACKEND", None)
    package_parent = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    with open(path / runfiles.LOG, "a") as log:
        # The supervisor forks at once and its first process exits: waiting for it leaves no zombie here.
        subprocess.run(
            [sys.executable, "-m", "mnist_core.supervisor", str(path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=package_parent,
            env=env,
            pass_fds=(lock_fd,),
            start_new_session=True,  # survives the page, the server and Ctrl-C in the terminal
            check=True,
        )


def _lost_worker_message(run: Run) -> str:
    """Return the error recorded for a running run whose processes are all gone without a word."""
    return (
        f"the training process ended without a word after {len(run.epochs)} epoch(s): it was killed, ran out of "
        "memory, or the machine restarted. Everything up to the last finished epoch is kept; continue the run "
        "to train on."
    )


def schedule(root: Path | str | None = None) -> list[str]:
    """Mark running runs with no live process failed, then start queued runs, oldest first, while fewer
    than the limit are running; return the ids started."""
    root = resolve_root(root)
    if not root.is_dir():
        return []
    started = []
    with locked(root):
        folders = sorted(path for path in root.iterdir() if is_run_folder(path))
        snapshots = [read_run(path) for path in folders]
        live = 0
        for run in snapshots:
            if run.damaged or run.state != RUNNING:
                continue
            if worker_alive(run.path):
                live += 1
            else:
                _transition_locked(run.path, FAILED, (RUNNING,), ended=now_iso(), error=_lost_worker_message(run))
        queued = sorted(
            (run for run in snapshots if not run.damaged and run.state == QUEUED),
            key=lambda run: (run.status.get("created") or "", run.run_id),
        )
        for run in queued:
            if live >= max_concurrent_runs():
                break
            lock_fd = _try_worker_lock(run.path)
            if lock_fd is None:
                continue  # its previous worker is still exiting; its supervisor schedules again after it
            try:
                _transition_locked(run.path, RUNNING, (QUEUED,), pid=None, started=now_iso(), error=None)
                _launch(run.path, lock_fd)
            except (OSError, subprocess.CalledProcessError) as error:
                with suppress(RunError):
                    _transition_locked(run.path, FAILED, (RUNNING,), ended=now_iso(), error=f"cannot start: {error}")
                raise StorageError(f"cannot start run {run.run_id}: {error}") from error
            finally:
                os.close(lock_fd)
            started.append(run.run_id)
            live += 1
    return started


def wait_for(run: Run, states=DONE_STATES, timeout: float = 600.0, poll: float = 0.2) -> str:
    """Return the run's state once it is in `states` (reading only); TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        state = read_run(run.path).state
        if state in states:
            return state
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run.run_id} still {state} after {timeout:.0f} s")
        time.sleep(poll)

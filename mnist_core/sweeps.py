"""Hyperparameter sweeps on Optuna: a study per sweep, each trial an ordinary run trained by a sweep worker.

The study lives in an Optuna storage: by default an SQLite file in the runs folder (nothing to install), or any
URL in MNIST_SWEEP_STORAGE / --storage, such as PostgreSQL, which workers on many machines share. The sweep's
settings are stored in the study, so a worker anywhere needs only the sweep's name and the storage.

A worker takes one trial at a time: it asks Optuna for the trial's parameters, creates the run (marked with the
sweep and the trial number) and trains it in its own process, reporting each epoch's validation accuracy to the
study (the curve every machine sees, and what the median pruner judges). While a trial trains, Optuna's
heartbeat marks it alive; a trial whose worker stops beating for GRACE_SECONDS (killed, machine gone) is failed
by the next worker that looks, within WATCH_SECONDS, and queued again with the same parameters.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path

from mnist_core import control, runfiles
from mnist_core.architectures import ARCHITECTURES
from mnist_core.config import ConfigError, TrainConfig
from mnist_core.runs import FAILED, PRUNED, STOPPED, RunError, read_run, resolve_root
from mnist_core.settings import (
    AUGMENTATIONS,
    LR_SCHEDULES,
    OPTIMIZERS,
    TRAIN_SPLIT_SIZE,
    sweep_artifacts_dir,
    sweep_storage_url,
)

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,23}$")  # also a run tag: sweep-NAME
SAMPLERS = ("tpe", "random", "grid")
GRID_LEARNING_RATES = 3  # the grid sampler tries this many rates, evenly spaced on a log scale
HEARTBEAT_SECONDS = 5  # how often a training worker tells the storage its trial is alive
GRACE_SECONDS = 20  # a trial with no heartbeat for this long is failed and queued again
MAX_RETRIES = 3  # times one trial's parameters are queued again after their worker died
WATCH_SECONDS = 2.0  # how often a worker looks for a stop, and for other workers' stale trials
FAILURES_IN_A_ROW = 3  # a worker whose trials keep failing (no data, a broken install) stops
CONFIG_ATTR, STOP_ATTR = "config", "stop_requested"  # the study's user attributes
MODEL_ATTR = "model_artifact"  # a trial's: the artifact id of its best model in the shared store
TRIAL_STATES = {
    "COMPLETE": "complete",
    "PRUNED": "pruned",
    "FAIL": "failed",
    "RUNNING": "running",
    "WAITING": "waiting",
}


class SweepError(RunError):
    """A sweep cannot be made, found or run as asked; the message is one line for the person."""


class TrialFailed(Exception):
    """A trial's run failed; Optuna records the trial as failed and the worker goes on."""


@dataclass(frozen=True)
class SweepConfig:
    """A sweep: the architecture, the search space (ranges and choices) and how to search it."""

    architecture: str
    trials: int = 8
    epochs: int = 1
    learning_rate: tuple[float, float] = (1e-4, 1e-1)  # low, high: searched on a log scale
    batch_sizes: tuple[int, ...] = (32, 64, 128)
    optimizers: tuple[str, ...] = ("sgd", "adam")
    lr_schedules: tuple[str, ...] = ("constant",)
    augmentations: tuple[str, ...] = ("none",)
    sampler: str = "tpe"
    pruning: bool = True  # the median pruner on each epoch's validation accuracy
    train_subset: int | None = None
    seed: int = 0

    def validated(self) -> SweepConfig:
        """Return self; SweepError naming the first setting that is wrong."""
        if self.architecture not in ARCHITECTURES:
            raise SweepError(f"architecture: {self.architecture!r} is not one of {', '.join(ARCHITECTURES)}")
        for name in ("trials", "epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SweepError(f"{name}: must be a whole number >= 1, got {value!r}")
        low, high = self.learning_rate
        if not low > 0:
            raise SweepError(f"learning rate: the range must be above 0, got {low:g} to {high:g}")
        if low > high:
            raise SweepError(f"learning rate: the range is inverted ({low:g} > {high:g})")
        if low == high:
            raise SweepError(f"learning rate: the range {low:g} to {high:g} is empty")
        for name, allowed in (
            ("optimizers", OPTIMIZERS),
            ("lr_schedules", LR_SCHEDULES),
            ("augmentations", AUGMENTATIONS),
        ):
            choices = getattr(self, name)
            if not choices:
                raise SweepError(f"{name}: choose at least one")
            unknown = [choice for choice in choices if choice not in allowed]
            if unknown:
                raise SweepError(f"{name}: {unknown[0]!r} is not one of {', '.join(allowed)}")
        images = self.train_subset or TRAIN_SPLIT_SIZE
        if not self.batch_sizes or any(not 1 <= size <= images for size in self.batch_sizes):
            raise SweepError(f"batch sizes: choose at least one, each from 1 to {images:,} (the training images)")
        if self.sampler not in SAMPLERS:
            raise SweepError(f"sampler: {self.sampler!r} is not one of {', '.join(SAMPLERS)}")
        try:
            self.train_config({"learning_rate": low})  # the rest (subset, epochs) as TrainConfig checks it
        except ConfigError as error:
            raise SweepError(str(error)) from error
        return self

    def to_dict(self) -> dict:
        """Return the settings as JSON-ready values (tuples as lists)."""
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> SweepConfig:
        """Return the sweep of stored or given settings; SweepError for an unknown one."""
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SweepError(f"unknown parameter {unknown[0]!r} (known: {', '.join(sorted(known))})")
        tupled = {key: tuple(value) if isinstance(value, list) else value for key, value in values.items()}
        try:
            return cls(**tupled)
        except TypeError as error:
            raise SweepError(str(error)) from error

    def search_space(self) -> dict[str, list]:
        """Return every searched parameter with its grid values (one-value choices are fixed, not searched)."""
        low, high = self.learning_rate
        steps = GRID_LEARNING_RATES - 1
        inner = [float(low * (high / low) ** (i / steps)) for i in range(1, steps)]
        space = {"learning_rate": [float(low), *inner, float(high)]}  # the ends exactly: inside the range
        for name, choices in self.choices().items():
            if len(choices) > 1:
                space[name] = list(choices)
        return space

    def planned_trials(self) -> int:
        """Return how many trials the sweep will train: its number of trials, at most the grid's size for grid."""
        if self.sampler != "grid":
            return self.trials
        size = 1
        for values in self.search_space().values():
            size *= len(values)
        return min(self.trials, size)

    def choices(self) -> dict[str, tuple]:
        """Return the categorical parameters by their TrainConfig names, with their choices."""
        return {
            "batch_size": self.batch_sizes,
            "optimizer": self.optimizers,
            "lr_schedule": self.lr_schedules,
            "augmentation": self.augmentations,
        }

    def train_config(self, params: dict) -> TrainConfig:
        """Return the TrainConfig of a trial with `params` (the rest fixed by the sweep), validated."""
        fixed = {name: choices[0] for name, choices in self.choices().items() if name not in params}
        return TrainConfig.for_architecture(
            self.architecture,
            epochs=self.epochs,
            train_subset=self.train_subset,
            seed=self.seed,
            validation=True,  # a trial is judged on the 6,000 held out, whatever its architecture's own default
            **fixed,
            **params,
        ).validated()


def _optuna():
    """Return the optuna module, quiet: warnings (heartbeats are 'experimental') and info logs off."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # a failed trial is reported in our own line
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def storage_url(url: str | None = None, root: Path | str | None = None) -> str:
    """Return the storage to use: `url`, else MNIST_SWEEP_STORAGE, else sweeps.db in the runs folder (an SQLite
    path made absolute: a background worker runs in another folder)."""
    chosen = url or sweep_storage_url() or f"sqlite:///{resolve_root(root) / runfiles.SWEEPS_DB}"
    if chosen.startswith("sqlite:///") and chosen != "sqlite:///:memory:":
        return f"sqlite:///{Path(chosen.removeprefix('sqlite:///')).resolve()}"
    return chosen


def shown_url(url: str) -> str:
    """Return a storage URL fit to show: its password (in the user part or the query) replaced by ***."""
    import sqlalchemy

    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL SQLAlchemy reads: show its scheme only
        return url.split("://", 1)[0] + "://…"


_STORAGES: dict[str, object] = {}  # one storage (engine, connection pool) per URL and process
_STORAGES_LOCK = threading.Lock()


def open_storage(url: str):
    """Return the Optuna storage at `url`, with heartbeats and retries of dead workers' trials, opened once per
    process; SweepError in one line when it cannot be reached. postgresql:// URLs use the psycopg (3) driver."""
    with _STORAGES_LOCK:
        if url not in _STORAGES:
            _STORAGES[url] = _open_storage(url)
        return _STORAGES[url]


def _open_storage(url: str):
    """Return a new Optuna RDB storage for `url` (see open_storage)."""
    optuna = _optuna()
    import sqlalchemy.exc

    driver_url = re.sub(r"^postgres(ql)?://", "postgresql+psycopg://", url)
    if driver_url.startswith("sqlite:///"):
        Path(driver_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = {"connect_args": {"timeout": 30}}  # several processes write one file: wait, do not fail
    else:
        engine = {"connect_args": {"connect_timeout": 5}, "pool_pre_ping": True}
    try:
        return optuna.storages.RDBStorage(
            driver_url,
            engine_kwargs=engine,
            heartbeat_interval=HEARTBEAT_SECONDS,
            grace_period=GRACE_SECONDS,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES),
        )
    except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError, OSError, RuntimeError) as error:
        raise SweepError(f"cannot reach the sweep storage {shown_url(url)}: {_reason(error)}") from error


def _reason(error: Exception) -> str:
    """Return the first line of an error (a database driver's own, when SQLAlchemy wraps one), 200 characters."""
    lines = str(getattr(error, "orig", None) or error).strip().splitlines()
    return (lines[0] if lines else type(error).__name__)[:200]


def _sampler(config: SweepConfig):
    """Return the sweep's sampler (unseeded: workers on several machines must not propose the same trial)."""
    optuna = _optuna()
    if config.sampler == "grid":
        return optuna.samplers.GridSampler(config.search_space())
    if config.sampler == "random":
        return optuna.samplers.RandomSampler()
    return optuna.samplers.TPESampler(n_startup_trials=min(4, config.trials))


def _pruner(config: SweepConfig):
    """Return the median pruner (after two finished trials), or none when pruning is off."""
    optuna = _optuna()
    return optuna.pruners.MedianPruner(n_startup_trials=2) if config.pruning else optuna.pruners.NopPruner()


def create(name: str, config: SweepConfig, url: str | None = None, root: Path | str | None = None):
    """Return the new study of sweep `name` with `config` stored in it; SweepError when the name is taken or
    not a name, the config is wrong or the storage cannot be reached. Nothing is trained yet."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise SweepError(f"sweep name {name!r}: use 1-24 lower-case letters, digits, '-' or '_'")
    config = config.validated()
    optuna = _optuna()
    storage = open_storage(storage_url(url, root))
    try:
        study = optuna.create_study(
            study_name=name, storage=storage, direction="maximize", sampler=_sampler(config), pruner=_pruner(config)
        )
    except optuna.exceptions.DuplicatedStudyError:
        raise SweepError(f"a sweep named {name!r} exists already: resume it, or choose another name") from None
    study.set_user_attr(CONFIG_ATTR, config.to_dict())
    study.set_user_attr(STOP_ATTR, False)
    return study


def sweep_names(url: str | None = None, root: Path | str | None = None) -> list[str]:
    """Return the names of the sweeps in the storage, newest first ([] before the first sweep: no SQLite file is
    made by looking)."""
    url = storage_url(url, root)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return []
    optuna = _optuna()
    summaries = optuna.study.get_all_study_summaries(open_storage(url), include_best_trial=False)
    ordered = sorted(summaries, key=lambda summary: summary.datetime_start or datetime.max, reverse=True)
    return [summary.study_name for summary in ordered]


def start(name: str, config: SweepConfig, url: str | None = None, root: Path | str | None = None) -> int:
    """Create sweep `name` and start a background worker for it; return the worker's pid."""
    create(name, config, url, root)
    return start_worker(name, url, root)


def load(name: str, url: str | None = None, root: Path | str | None = None):
    """Return (the study of sweep `name`, its config); SweepError when there is no such sweep."""
    optuna = _optuna()
    where = storage_url(url, root)
    if where.startswith("sqlite:///") and not Path(where.removeprefix("sqlite:///")).exists():
        raise SweepError(f"no sweep named {name!r} in {shown_url(where)} (no sweep yet)")  # and none made by asking
    storage = open_storage(where)
    try:
        plain = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise SweepError(f"no sweep named {name!r} in {shown_url(where)}") from None
    config = stored_config(plain)
    return optuna.load_study(study_name=name, storage=storage, sampler=_sampler(config), pruner=_pruner(config)), config


def load_summary(name: str, url: str | None = None, root: Path | str | None = None):
    """Return (the study of sweep `name`, its config, its summary); SweepError in one line for anything the
    storage says meanwhile (a dropped connection, a locked file)."""
    import sqlalchemy.exc

    try:
        study, config = load(name, url, root)
        return study, config, summary(study, config)
    except (sqlalchemy.exc.SQLAlchemyError, RuntimeError) as error:
        raise SweepError(f"the sweep storage did not answer: {_reason(error)}") from error


def stored_config(study) -> SweepConfig:
    """Return the sweep's config as stored in its study now."""
    values = study.user_attrs.get(CONFIG_ATTR)
    if not isinstance(values, dict):
        raise SweepError(f"sweep {study.study_name!r} has no settings stored yet (being created, or made elsewhere)")
    return SweepConfig.from_dict(values)


def stop_requested(study) -> bool:
    """Return True once someone asked the sweep to stop (read fresh from the storage)."""
    return bool(study._storage.get_study_user_attrs(study._study_id).get(STOP_ATTR))


def request_stop(name: str, url: str | None = None, root: Path | str | None = None) -> int:
    """Ask sweep `name` to stop: every worker stops its trial within a batch or two and takes no more; return
    how many of its trials were running."""
    study, _ = load(name, url, root)
    study.set_user_attr(STOP_ATTR, True)
    _stop_local_trials(name, resolve_root(root))
    return len(study.get_trials(deepcopy=False, states=(_optuna().trial.TrialState.RUNNING,)))


def resume(name: str, more_trials: int, url: str | None = None, root: Path | str | None = None) -> SweepConfig:
    """Clear a stop of sweep `name` and ask for `more_trials` trials beyond those done (complete or pruned);
    return its new config (workers are started by the caller)."""
    if isinstance(more_trials, bool) or not isinstance(more_trials, int) or more_trials < 1:
        raise SweepError(f"more trials: must be a whole number >= 1, got {more_trials!r}")
    study, config = load(name, url, root)
    _optuna().storages.fail_stale_trials(study)  # a dead worker's trial is queued again rather than left running
    done = len(_counted(study))
    config = SweepConfig.from_dict({**config.to_dict(), "trials": done + more_trials})
    study.set_user_attr(CONFIG_ATTR, config.to_dict())
    study.set_user_attr(STOP_ATTR, False)
    return config


def _counted(study) -> list:
    """Return the trials that count towards the sweep's number of trials: complete and pruned ones."""
    states = _optuna().trial.TrialState
    return study.get_trials(deepcopy=False, states=(states.COMPLETE, states.PRUNED))


def _stop_local_trials(name: str, root: Path) -> None:
    """Ask this machine's running runs of sweep `name` to stop (their STOP file)."""
    from mnist_core.runs import RUNNING, list_runs

    for run in list_runs(root):
        if run.state == RUNNING and run.status.get("sweep") == name:
            try:
                (run.path / runfiles.STOP).write_text(control.now_iso())
            except OSError:
                continue


class Watcher(threading.Thread):
    """A worker's look-out: every WATCH_SECONDS, stops the trial under way when the sweep is stopped, and fails
    (and so queues again) other workers' trials whose heartbeat went stale."""

    def __init__(self, study):
        super().__init__(daemon=True, name="sweep-watcher")
        self.study, self.current, self.done = study, None, threading.Event()
        self.lock = threading.Lock()  # held while it writes a STOP file: release() then knows none comes later
        # Held while stale trials are failed and queued again (two writes): the worker's loop reads the trials under
        # it too, so it never sees a dead trial failed but its retry not queued yet and starts a new trial instead.
        self.failing = threading.Lock()

    def release(self) -> None:
        """Stop watching the trial under way, and take back a STOP its end made pointless."""
        with self.lock:
            current, self.current = self.current, None
        if current is not None:
            (current / runfiles.STOP).unlink(missing_ok=True)

    def run(self):
        while not self.done.wait(WATCH_SECONDS):
            try:
                if self.current is not None and stop_requested(self.study):
                    with self.lock:
                        if self.current is not None:
                            (self.current / runfiles.STOP).write_text(control.now_iso())
                with self.failing:
                    _optuna().storages.fail_stale_trials(self.study)
            except Exception:  # noqa: BLE001 - a storage hiccup: look again next time
                continue


class TrialRunner:
    """Optuna's objective: trains one trial as a run of this machine's runs folder; returns its best val accuracy."""

    def __init__(self, name: str, root: Path, watcher: Watcher, report: Callable[[str], None]):
        self.name, self.root, self.watcher, self.report = name, root, watcher, report
        self.last = None  # the number of the trial taken last

    def __call__(self, trial) -> float:
        optuna = _optuna()
        self.last = trial.number
        config = stored_config(trial.study)
        params = suggest(trial, config)
        run, lock_fd = control.create_trial_run(config.train_config(params), self.name, trial.number, self.root)
        try:
            trial.set_user_attr("run_id", run.run_id)
            trial.set_user_attr("host", socket.gethostname())
            label = f"{self.name} #{trial.number}"
            control.label_run(run.run_id, name=label, tags=[f"sweep-{self.name}"], root=self.root)
            self.report(f"trial {trial.number}: {describe_params(params)} (run {run.run_id})")
            from mnist_core.worker import train_here

            self.watcher.current = run.path
            state = train_here(run.path, lambda epoch, value: self.on_epoch(trial, config, epoch, value))
        finally:
            self.watcher.release()
            _end_if_running(run.path)  # Ctrl-C or a storage error before or during training: not left running
            os.close(lock_fd)
            _clear_keras()
            control.schedule(self.root)  # a run queued here meanwhile may start once this trial is over
        run = read_run(run.path)
        try:
            share_model(trial, run)
        except OSError as error:  # the shared folder is gone or full: the trial still counts
            self.report(f"trial {trial.number}: its model could not be shared ({error.strerror or error})")
        if state == PRUNED:
            raise optuna.TrialPruned(f"pruned after epoch {len(run.epochs)}")
        if state == STOPPED:
            trial.study.stop()
            raise TrialFailed("stopped with the sweep")
        if state == FAILED or run.best_val_accuracy is None:
            raise TrialFailed(run.status.get("error") or "no epoch finished")
        return run.best_val_accuracy

    def on_epoch(self, trial, config: SweepConfig, epoch: int, val_accuracy: float) -> bool:
        """Report an epoch's validation accuracy to the study; return True to prune the trial (not after its
        last epoch: a finished trial is complete)."""
        trial.report(val_accuracy, epoch)
        prune = config.pruning and epoch < config.epochs and trial.should_prune()
        self.report(f"trial {trial.number}: epoch {epoch}/{config.epochs} val {100 * val_accuracy:.2f} %")
        return prune


def _end_if_running(path: Path) -> None:
    """Mark a trial's run stopped when it is still running: its training ended without recording it."""
    from mnist_core.runs import RUNNING

    try:
        if read_run(path).state == RUNNING:
            control.transition(path, STOPPED, (RUNNING,), ended=control.now_iso(), error="its sweep worker stopped")
    except (RunError, OSError):
        pass  # recorded already, or the disk refuses: the queue marks it failed once the lock is free


def share_model(trial, run) -> None:
    """Put the trial's best model into the shared artifact store (MNIST_SWEEP_ARTIFACTS), when there is one, and
    note its artifact id in the trial: the dashboard of another machine can then bring the model in."""
    folder = sweep_artifacts_dir()
    if folder is None or not run.has_model:
        return
    optuna = _optuna()
    folder.mkdir(parents=True, exist_ok=True)
    store = optuna.artifacts.FileSystemArtifactStore(folder)
    artifact_id = optuna.artifacts.upload_artifact(
        artifact_store=store, file_path=str(run.model_path("best")), study_or_trial=trial
    )
    trial.set_user_attr(MODEL_ATTR, artifact_id)


def model_source(name: str, number: int) -> str:
    """Return the file name a trial's model is imported under: what identifies the imported run as that trial's."""
    return f"{name}-trial-{number}.keras"


def fetch_model(name: str, number: int, url: str | None = None, root: Path | str | None = None):
    """Return an imported run of trial `number`'s best model, fetched from the shared artifact store (for a trial
    trained on another machine); SweepError when the trial shared none or the store is not configured here."""
    from mnist_core import imported

    study, _ = load(name, url, root)
    trials = study.get_trials(deepcopy=False)
    if not 0 <= number < len(trials) or MODEL_ATTR not in trials[number].user_attrs:
        raise SweepError(f"trial {number} of sweep {name!r} shared no model (MNIST_SWEEP_ARTIFACTS was not set)")
    folder = sweep_artifacts_dir()
    if folder is None:
        raise SweepError("set MNIST_SWEEP_ARTIFACTS to the shared folder the workers put their models in")
    optuna = _optuna()
    root = resolve_root(root)
    root.mkdir(parents=True, exist_ok=True)
    folder_here = Path(tempfile.mkdtemp(dir=root, prefix=f"{runfiles.CREATING_PREFIX}fetch-"))
    download = folder_here / model_source(name, number)  # the name the imported run shows as its source
    try:
        store = optuna.artifacts.FileSystemArtifactStore(folder)
        try:
            optuna.artifacts.download_artifact(
                artifact_store=store, file_path=str(download), artifact_id=trials[number].user_attrs[MODEL_ATTR]
            )
        except (OSError, optuna.artifacts.exceptions.ArtifactNotFound) as error:
            raise SweepError(f"trial {number}'s model is not in {folder}: {error}") from error
        return imported.import_file(download, name=f"{name} #{number}", root=root)
    finally:
        shutil.rmtree(folder_here, ignore_errors=True)


def suggest(trial, config: SweepConfig) -> dict:
    """Return a trial's parameters, asked of Optuna: the learning rate (log scale) and every choice that has
    more than one option."""
    low, high = config.learning_rate
    params = {"learning_rate": trial.suggest_float("learning_rate", low, high, log=True)}
    for name, choices in config.choices().items():
        if len(choices) > 1:
            params[name] = trial.suggest_categorical(name, list(choices))
    return params


def describe_params(params: dict) -> str:
    """Return a trial's parameters in a few words: 'learning_rate 0.0031, batch_size 64, optimizer adam'."""
    return ", ".join(
        f"{key} {value:.3g}" if isinstance(value, float) else f"{key} {value}" for key, value in params.items()
    )


def _clear_keras() -> None:
    """Reset Keras' global state after a trial: one process builds every trial's model. Without a full garbage
    collection (0.3 s a trial here, a tenth of a quick trial); Python's own collector frees the rest."""
    import keras

    keras.backend.clear_session(free_memory=False)


def work(
    name: str, url: str | None = None, root: Path | str | None = None, report: Callable[[str], None] = print
) -> int:
    """Take trials of sweep `name` one at a time until it has its number of trials or is stopped; return how
    many this worker trained. Waits while the last trials run elsewhere: one of them may die and be retried."""
    from mnist_core.tfimport import import_keras

    optuna = _optuna()
    study, _ = load(name, url, root)
    import_keras()  # TensorFlow's start-up lines muted, before the first trial imports it
    root = resolve_root(root)
    watcher = Watcher(study)
    watcher.start()
    runner, trained, failed_in_a_row = TrialRunner(name, root, watcher, report), 0, 0
    states = optuna.trial.TrialState
    try:
        while not stop_requested(study):
            with watcher.failing:
                optuna.storages.fail_stale_trials(study)
                trials = study.get_trials(deepcopy=False)
            planned = stored_config(study).planned_trials()
            counted = sum(trial.state in (states.COMPLETE, states.PRUNED) for trial in trials)
            running = sum(trial.state == states.RUNNING for trial in trials)
            waiting = sum(trial.state == states.WAITING for trial in trials)
            if counted >= planned:
                break
            if counted + running >= planned and not waiting:
                time.sleep(WATCH_SECONDS)  # the last trials run elsewhere
                continue
            runner.last = None
            study.optimize(runner, n_trials=1, catch=(TrialFailed,))
            if runner.last is None:
                continue
            trained += 1
            last = study.get_trials(deepcopy=False)[runner.last]
            report(trial_line(last))
            failed_in_a_row = failed_in_a_row + 1 if last.state == states.FAIL else 0
            if failed_in_a_row >= FAILURES_IN_A_ROW and not stop_requested(study):
                report(
                    f"sweep {name}: {failed_in_a_row} trials failed in a row here; this worker stops (see their runs)"
                )
                break
    finally:
        watcher.done.set()
        control.schedule(root)  # runs queued here while the trials trained start now
    return trained


def start_worker(name: str, url: str | None = None, root: Path | str | None = None) -> int:
    """Start a background worker process for sweep `name` (it outlives the page and the terminal); return its
    pid. Its output goes to .sweeps/NAME.log in the runs folder; the storage URL goes by environment, never on
    a command line others can read."""
    import subprocess
    import sys

    root = resolve_root(root)
    logs = root / runfiles.SWEEP_LOGS
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1", MNIST_SWEEP_STORAGE=storage_url(url, root))
    package_parent = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    with open(logs / f"{name}.log", "a") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "mnist_core", "--runs-dir", str(root), "sweep", "worker", name],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=package_parent,
            env=env,
            start_new_session=True,
        )
    threading.Thread(target=process.wait, daemon=True).start()  # reaped when it ends: no zombie left here
    return process.pid


@dataclass(frozen=True)
class SweepSummary:
    """Where a sweep stands: trials done (complete or pruned) of how many, running, stopped, the best trial."""

    done: int
    trials: int
    running: int
    waiting: int
    stopped: bool
    best: object | None  # the best complete FrozenTrial

    @property
    def active(self) -> bool:
        """Return True while trials run or wait, or more are due and no stop was asked for."""
        return bool(self.running or self.waiting) or (not self.stopped and self.done < self.trials)

    @property
    def version(self) -> tuple:
        """Return what changes whenever a figure of the sweep would."""
        return (self.done, self.running, self.waiting, self.best.number if self.best else None)


def summary(study, config: SweepConfig) -> SweepSummary:
    """Return where sweep `study` stands (read once from the storage)."""
    trials = study.get_trials(deepcopy=False)
    count = {state: sum(trial.state.name == state for trial in trials) for state in ("RUNNING", "WAITING")}
    return SweepSummary(
        done=len(_counted(study)),
        trials=config.planned_trials(),
        running=count["RUNNING"],
        waiting=count["WAITING"],
        stopped=stop_requested(study),
        best=best_trial(study),
    )


def best_trial(study):
    """Return the sweep's best complete trial, None before the first."""
    complete = [trial for trial in _counted(study) if trial.value is not None and trial.state.name == "COMPLETE"]
    return max(complete, key=lambda trial: trial.value, default=None)


def trial_rows(study) -> list[dict]:
    """Return one row per trial (retries included, failed ones too): number, state, parameters, value, epochs,
    seconds, run id, host and the trial it retries."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        seconds = (
            (trial.datetime_complete - trial.datetime_start).total_seconds()
            if trial.datetime_complete and trial.datetime_start
            else None
        )
        rows.append(
            {
                "number": trial.number,
                "state": TRIAL_STATES.get(trial.state.name, trial.state.name.lower()),
                "params": dict(trial.params),
                "value": trial.value,
                "epochs": len(trial.intermediate_values),
                "curve": dict(sorted(trial.intermediate_values.items())),
                "seconds": seconds,
                "run_id": trial.user_attrs.get("run_id"),
                "host": trial.user_attrs.get("host"),
                "retries": trial.system_attrs.get("failed_trial"),
            }
        )
    return rows


def trial_line(trial) -> str:
    """Return one line about a trial: its number, state, best val accuracy, parameters and run."""
    state = TRIAL_STATES.get(trial.state.name, trial.state.name.lower())
    value = f" best val {100 * trial.value:.2f} %" if trial.value is not None else ""
    retried = trial.system_attrs.get("failed_trial")
    again = f" (again: trial {retried}'s worker died)" if retried is not None else ""
    return f"trial {trial.number}: {state}{value} · {describe_params(dict(trial.params))}{again}"

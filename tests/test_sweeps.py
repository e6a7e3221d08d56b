"""Sweeps on Optuna, for real: SQLite by default, a real PostgreSQL server shared by two worker processes, a
worker killed mid-trial, stop and resume, and every refusal in one line."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO_ROOT, run_cli, wait_until
from streamlit.testing.v1 import AppTest

from mnist_core import runfiles, runs, sweep_charts, sweeps
from mnist_core.data import to_model_input
from mnist_core.models import run_predictor

QUICK = ["--arch", "mlp", "--epochs", "1", "--subset", "2000"]


def best_in_epochs_csv(run: runs.Run) -> float:
    """Return the best val_accuracy in a run's epochs.csv, read with the csv module (not the studio's reader)."""
    with open(run.file(runfiles.EPOCHS), newline="") as handle:
        return max(float(row["val_accuracy"]) for row in csv.DictReader(handle))


def sweep_runs(root, name: str) -> list[runs.Run]:
    """Return the runs of sweep `name` in the runs folder `root`, by trial number."""
    found = [run for run in runs.list_runs(root) if run.status.get("sweep") == name]
    return sorted(found, key=lambda run: run.status["trial"])


def test_the_documented_sweep_runs_its_trials_as_runs_and_finds_the_best(runs_dir):
    result = run_cli("sweep", "start", "first", *QUICK, "--trials", "4", runs_root=runs_dir, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    study, config = sweeps.load("first", root=runs_dir)
    assert (runs_dir / runfiles.SWEEPS_DB).is_file()  # SQLite in the runs folder: nothing to set up
    counted = [trial for trial in study.trials if trial.state.name in ("COMPLETE", "PRUNED")]
    assert len(counted) == 4 == len(study.trials) and config.trials == 4
    folders = sweep_runs(runs_dir, "first")
    assert [run.status["trial"] for run in folders] == [0, 1, 2, 3]
    by_number = {trial.number: trial for trial in study.trials}
    for run in folders:
        trial = by_number[run.status["trial"]]
        assert trial.user_attrs["run_id"] == run.run_id and "sweep-first" in run.tags
        assert run.state == {"COMPLETE": runs.FINISHED, "PRUNED": runs.PRUNED}[trial.state.name]
        assert run.config.learning_rate == pytest.approx(trial.params["learning_rate"])
        assert run.config.train_subset == 2000 and run.config.epochs == 1
    best = sweeps.best_trial(study)
    best_run = next(run for run in folders if run.run_id == best.user_attrs["run_id"])
    assert best.value == pytest.approx(best_in_epochs_csv(best_run), abs=1e-7)
    assert best.value == pytest.approx(max(best_in_epochs_csv(run) for run in folders if run.state == runs.FINISHED))

    status = run_cli("sweep", "status", "first", runs_root=runs_dir)
    lines = status.stdout.strip().splitlines()
    assert lines[0] == "sweep first: 4 of 4 trials done" and len(lines) == 5
    assert all(f"trial {n}: " in lines[n + 1] for n in range(4))


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        (["--lr", "0.1", "0.001"], "the range is inverted (0.1 > 0.001)"),
        (["--lr", "0", "0.1"], "the range must be above 0"),
        (["--lr", "0.01", "0.01"], "is empty"),
        (["--batch-sizes", "64", "5000"], "batch sizes: choose at least one, each from 1 to 2,000"),
        (["--trials", "0"], "trials: must be a whole number >= 1"),
    ],
)
def test_a_bad_search_space_is_refused_in_one_line_and_starts_nothing(runs_dir, flags, reason):
    result = run_cli("sweep", "start", "bad", *QUICK, *flags, runs_root=runs_dir, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert reason in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert runs.list_runs(runs_dir) == [] and not (runs_dir / runfiles.SWEEPS_DB).exists()


def test_names_parameters_and_storage_are_checked_before_anything_starts(runs_dir):
    with pytest.raises(sweeps.SweepError, match="unknown parameter 'momentum'"):
        sweeps.SweepConfig.from_dict({"architecture": "mlp", "momentum": 0.9})
    with pytest.raises(sweeps.SweepError, match="sweep name 'Has Spaces'"):
        sweeps.create("Has Spaces", sweeps.SweepConfig("mlp"), root=runs_dir)
    sweeps.create("taken", sweeps.SweepConfig("mlp", trials=1), root=runs_dir)
    with pytest.raises(sweeps.SweepError, match="a sweep named 'taken' exists already"):
        sweeps.create("taken", sweeps.SweepConfig("mlp", trials=1), root=runs_dir)
    started = time.monotonic()
    result = run_cli(
        "sweep", "start", "far", *QUICK, "--storage", "postgresql://someone:secret@127.0.0.1:9/none", runs_root=runs_dir
    )
    assert result.returncode == 2 and "cannot reach the sweep storage postgresql://someone:***@127.0.0.1:9/none" in (
        result.stderr
    )
    assert "secret" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert time.monotonic() - started < 60
    no_such = run_cli("sweep", "status", "nowhere", runs_root=runs_dir)
    assert no_such.returncode == 2 and "no sweep named 'nowhere'" in no_such.stderr
    assert runs.list_runs(runs_dir) == []


def test_stop_ends_the_running_trial_within_a_batch_and_resume_adds_trials(runs_dir):
    start = run_cli(
        "sweep", "start", "halt", "--arch", "mlp", "--epochs", "8", "--subset", "2000", "--trials", "3",
        "--detach", runs_root=runs_dir,
    )  # fmt: skip
    assert start.returncode == 0, start.stderr
    running = wait_until(
        lambda: [run for run in sweep_runs(runs_dir, "halt") if run.state == runs.RUNNING and run.epochs],
        timeout=180,
        what="the first trial's first epoch",
    )
    stop = run_cli("sweep", "stop", "halt", runs_root=runs_dir)
    assert stop.returncode == 0 and "stop requested (1 trial(s) running" in stop.stdout
    stopped = wait_until(
        lambda: runs.read_run(running[0].path).state == runs.STOPPED, timeout=30, what="the trial to stop"
    )
    assert stopped and len(runs.read_run(running[0].path).epochs) < 8
    time.sleep(sweeps.WATCH_SECONDS * 2)  # the worker would have taken another trial by now
    assert len(sweep_runs(runs_dir, "halt")) == 1
    study, _ = sweeps.load("halt", root=runs_dir)
    assert [trial.state.name for trial in study.trials] == ["FAIL"]  # stopped: it does not count as a trial

    resume = run_cli("sweep", "resume", "halt", "--more", "1", runs_root=runs_dir, timeout=600)
    assert resume.returncode == 0, resume.stderr
    assert "sweep halt: now 1 trials" in resume.stdout  # none was done: one more is one
    study, _ = sweeps.load("halt", root=runs_dir)
    assert [trial.state.name for trial in study.trials] == ["FAIL", "COMPLETE"]
    assert [run.state for run in sweep_runs(runs_dir, "halt")] == [runs.STOPPED, runs.FINISHED]


def worker(name: str, url: str, root, shared) -> subprocess.Popen:
    """Start `python -m mnist_core sweep worker NAME` with its own runs folder (a machine of its own), putting its
    trials' models in the `shared` folder."""
    env = dict(os.environ, MNIST_RUNS_DIR=str(root), MNIST_SWEEP_STORAGE=url, MNIST_SWEEP_ARTIFACTS=str(shared))
    return subprocess.Popen(
        [sys.executable, "-m", "mnist_core", "sweep", "worker", name],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_two_machines_share_a_postgresql_sweep_and_a_killed_workers_trial_is_retried(
    postgres_url, tmp_path, monkeypatch, mnist
):
    first, second, shared = tmp_path / "machine-1", tmp_path / "machine-2", tmp_path / "shared-models"
    config = sweeps.SweepConfig("mlp", trials=4, epochs=3, train_subset=2000, pruning=False)
    sweeps.create("shared", config, url=postgres_url)
    killed = worker("shared", postgres_url, first, shared)
    survivor = worker("shared", postgres_url, second, shared)
    try:
        victim = wait_until(
            lambda: [run for run in sweep_runs(first, "shared") if run.state == runs.RUNNING and run.epochs],
            timeout=240,
            what="a trial on machine 1 to finish an epoch",
        )[0]
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
        killed_at = time.monotonic()
        study, _ = sweeps.load("shared", url=postgres_url)
        wait_until(
            lambda: any(t.state.name == "FAIL" and t.user_attrs.get("run_id") == victim.run_id for t in study.trials),
            timeout=120,
            poll=0.5,
            what="the killed worker's trial to be noticed",
        )
        noticed = time.monotonic() - killed_at
        output, _ = survivor.communicate(timeout=600)
        assert survivor.returncode == 0, output
    finally:
        for process in (killed, survivor):
            if process.poll() is None:
                process.kill()
    study, _ = sweeps.load("shared", url=postgres_url)
    trials = study.trials
    counted = [trial for trial in trials if trial.state.name == "COMPLETE"]
    assert len(counted) == 4
    lost = next(trial for trial in trials if trial.user_attrs.get("run_id") == victim.run_id)
    assert lost.state.name == "FAIL"  # noticed by its missing heartbeat
    retry = next(trial for trial in trials if trial.system_attrs.get("failed_trial") == lost.number)
    assert retry.state.name == "COMPLETE" and retry.params == lost.params
    assert retry.user_attrs["run_id"] in {run.run_id for run in sweep_runs(second, "shared")}
    # Noticed by the survivor's watcher once the grace period since the last heartbeat (sent up to one interval
    # before the kill) has passed, within one look (plus this busy machine's slack).
    earliest = sweeps.GRACE_SECONDS - sweeps.HEARTBEAT_SECONDS - 1
    assert earliest <= noticed <= sweeps.GRACE_SECONDS + sweeps.WATCH_SECONDS + 10, noticed
    # Each trial number trained to completion once, by one machine; the killed one's run is its only other run.
    both = [run for root in (first, second) for run in sweep_runs(root, "shared")]
    completed_runs = [run for run in both if run.state == runs.FINISHED]
    assert sorted(run.status["trial"] for run in completed_runs) == sorted(trial.number for trial in counted)
    assert len({run.status["trial"] for run in completed_runs}) == len(completed_runs)
    assert "again: trial" in output  # the survivor said it took a dead worker's trial

    # The dashboard's machine (a third runs folder) sees every trial through the study, and brings the best
    # trial's model in from the shared folder: it predicts as the run that trained it.
    dashboard = tmp_path / "dashboard"
    monkeypatch.setenv("MNIST_RUNS_DIR", str(dashboard))
    monkeypatch.setenv("MNIST_SWEEP_STORAGE", postgres_url)
    monkeypatch.setenv("MNIST_SWEEP_ARTIFACTS", str(shared))

    app = AppTest.from_file(str(REPO_ROOT / "pages/6_Sweep.py"), default_timeout=120).run()
    assert not app.exception, [e.value for e in app.exception]
    assert len(app.dataframe[0].value) == len(trials)
    curves = sweep_charts.curves_figure(sweeps.trial_rows(study), None)  # what the page draws, from the storage
    drawn_runs = {trial.user_attrs["run_id"] for trial in trials if trial.intermediate_values}
    assert len(curves.data) == len(drawn_runs) and {run.run_id for run in both} >= drawn_runs
    best = sweeps.best_trial(study)
    app.button(key=f"sweep_fetch_{best.number}").click().run()
    assert not app.exception, [e.value for e in app.exception]
    (brought,) = runs.list_runs(dashboard)
    assert (brought.state, brought.name) == (runs.IMPORTED, f"shared #{best.number}")
    origin = next(run for run in both if run.run_id == best.user_attrs["run_id"])
    digits = to_model_input(mnist.x_test[:20])
    assert (run_predictor(brought).probabilities(digits) == run_predictor(origin).probabilities(digits)).all()


def test_stopping_a_shared_sweep_stops_the_trial_of_every_machine(postgres_url, tmp_path):
    first, second = tmp_path / "machine-1", tmp_path / "machine-2"
    sweeps.create("halt-all", sweeps.SweepConfig("mlp", trials=6, epochs=40, train_subset=2000), url=postgres_url)
    workers = [worker("halt-all", postgres_url, root, tmp_path / "shared") for root in (first, second)]
    try:
        for root in (first, second):
            wait_until(
                lambda root=root: [run for run in sweep_runs(root, "halt-all") if run.state == runs.RUNNING],
                timeout=240,
                what=f"a trial running on {root.name}",
            )
        asked = time.monotonic()
        sweeps.request_stop("halt-all", url=postgres_url, root=tmp_path / "dashboard")  # from a third machine
        outputs = [process.communicate(timeout=120)[0] for process in workers]
        took = time.monotonic() - asked
    finally:
        for process in workers:
            if process.poll() is None:
                process.kill()
    assert [process.returncode for process in workers] == [0, 0], outputs
    assert took < sweeps.WATCH_SECONDS + 20, took  # a look, a batch and the model saved
    for root in (first, second):
        (run,) = sweep_runs(root, "halt-all")
        assert run.state == runs.STOPPED and len(run.epochs) < 40
    study, _ = sweeps.load("halt-all", url=postgres_url)
    assert [trial.state.name for trial in study.trials] == ["FAIL", "FAIL"]  # and no trial started after the stop


def test_the_sweep_page_starts_a_sweep_and_shows_its_trials(runs_dir):
    def page() -> AppTest:
        app = AppTest.from_file(str(REPO_ROOT / "pages/6_Sweep.py"), default_timeout=120).run()
        assert not app.exception, [e.value for e in app.exception]
        return app

    app = page()
    assert any("No sweeps yet" in info.value for info in app.info)
    app.number_input(key="sweep_new_trials").set_value(3)
    app.number_input(key="sweep_new_epochs").set_value(1)
    app.number_input(key="sweep_new_subset").set_value(600)
    app.multiselect(key="sweep_new_optimizers").set_value([]).run()
    app.button(key="sweep_start").click().run()
    assert any("optimizers: choose at least one" in error.value for error in app.error)
    assert sweeps.sweep_names() == []  # refused: nothing was made
    app.multiselect(key="sweep_new_optimizers").set_value(["adam", "sgd"])
    app.text_input(key="sweep_new_name").set_value("from-page").run()
    app.button(key="sweep_start").click().run()
    assert not app.exception and sweeps.sweep_names() == ["from-page"]
    wait_until(lambda: sweeps.summary(*sweeps.load("from-page")).done == 3, timeout=300, what="3 trials")
    app = page()
    table = app.dataframe[0].value
    study, _ = sweeps.load("from-page")
    assert sorted(table["state"]) == sorted(sweeps.TRIAL_STATES[t.state.name] for t in study.trials)
    best = sweeps.best_trial(study)
    assert list(table["trial"]).count(f"{best.number} ★") == 1
    assert any(metric.label == f"Best: trial {best.number}" for metric in app.metric)
    assert any("3 of 3 trials done · finished" in md.value for md in app.markdown)
    assert (runs_dir / runfiles.SWEEP_LOGS / "from-page.log").is_file()


def test_stop_and_resume_from_the_sweep_page(runs_dir):
    sweeps.start("paged", sweeps.SweepConfig("mlp", trials=2, epochs=40, train_subset=2000, pruning=False))
    wait_until(
        lambda: [run for run in sweep_runs(runs_dir, "paged") if run.state == runs.RUNNING and run.epochs],
        timeout=180,
        what="the first trial's first epoch",
    )
    app = AppTest.from_file(str(REPO_ROOT / "pages/6_Sweep.py"), default_timeout=120).run()
    assert any("0 of 2 trials done · 1 running" in md.value for md in app.markdown)
    app.button(key="sweep_stop").click().run()
    assert not app.exception, [e.value for e in app.exception]
    (trial_run,) = sweep_runs(runs_dir, "paged")
    wait_until(lambda: runs.read_run(trial_run.path).state == runs.STOPPED, timeout=30, what="the trial to stop")
    wait_until(lambda: not sweeps.summary(*sweeps.load("paged")).running, timeout=30, what="the trial to end")
    app = AppTest.from_file(str(REPO_ROOT / "pages/6_Sweep.py"), default_timeout=120).run()
    assert any("0 of 2 trials done · stopped" in md.value for md in app.markdown)
    app.number_input(key="sweep_more").set_value(1).run()
    app.button(key="sweep_resume").click().run()
    assert not app.exception, [e.value for e in app.exception]
    _, config = sweeps.load("paged")
    assert config.trials == 1 and not sweeps.stop_requested(sweeps.load("paged")[0])
    wait_until(lambda: sweeps.summary(*sweeps.load("paged")).done == 1, timeout=300, what="the resumed trial")


def test_importance_waits_for_enough_trials_and_then_ranks_what_optuna_ranks():
    import optuna

    study = optuna.create_study(direction="maximize")
    distributions = {
        "learning_rate": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True),
        "batch_size": optuna.distributions.CategoricalDistribution([32, 64, 128]),
    }
    for number, (rate, batch) in enumerate([(1e-3, 32), (1e-2, 64), (3e-2, 128), (3e-4, 64), (5e-3, 32)]):
        params = {"learning_rate": rate, "batch_size": batch}
        value = 0.9 - abs(rate - 5e-3) * 5 + batch / 10_000  # the rate matters far more than the batch size
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=value))
        figure = sweep_charts.importance_figure(study)
        assert (figure is None) == (number + 1 < sweep_charts.IMPORTANCE_AFTER)
    importances = optuna.importance.get_param_importances(study)
    bars = {name: value for trace in figure.data for name, value in zip(trace.y, trace.x, strict=True)}
    assert set(bars) == set(importances)
    assert max(bars, key=bars.get) == max(importances, key=importances.get) == "learning_rate"


def test_a_run_queued_while_a_trial_trains_starts_after_it(runs_dir):
    import threading

    from mnist_core import control
    from mnist_core.config import TrainConfig

    sweeps.create("busy", sweeps.SweepConfig("mlp", trials=1, epochs=6, train_subset=2000, pruning=False))
    worker_thread = threading.Thread(target=sweeps.work, args=("busy",), kwargs={"report": lambda line: None})
    worker_thread.start()
    wait_until(lambda: [r for r in sweep_runs(runs_dir, "busy") if r.state == runs.RUNNING], what="the trial")
    waiting = control.start_run(TrainConfig.for_architecture("mlp", epochs=1, train_subset=600))
    assert waiting.state == runs.QUEUED  # one trains at a time: the trial holds the slot
    worker_thread.join(timeout=300)
    assert runs.read_run(waiting.path).state != runs.QUEUED  # started once the trial ended, by the sweep worker
    assert control.wait_for(waiting, timeout=180) == runs.FINISHED


def test_a_worker_whose_trials_keep_failing_stops(runs_dir, tmp_path):
    sweeps.create("broken", sweeps.SweepConfig("mlp", trials=8, epochs=1, train_subset=600))
    env = dict(os.environ, MNIST_RUNS_DIR=str(runs_dir), MNIST_DATA_DIR=str(tmp_path / "no-data-here"))
    done = subprocess.run(
        [sys.executable, "-m", "mnist_core", "sweep", "worker", "broken"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"{sweeps.FAILURES_IN_A_ROW} trials failed in a row here; this worker stops" in done.stdout
    study, _ = sweeps.load("broken")
    assert [trial.state.name for trial in study.trials] == ["FAIL"] * sweeps.FAILURES_IN_A_ROW
    assert all(run.state == runs.FAILED for run in sweep_runs(runs_dir, "broken"))


def test_importance_of_tied_trials_draws_without_a_warning():
    import warnings

    import optuna

    from mnist_core import sweep_charts

    study = optuna.create_study(direction="maximize")
    space = {"a": optuna.distributions.FloatDistribution(0, 1), "b": optuna.distributions.IntDistribution(1, 4)}
    for _ in range(sweep_charts.IMPORTANCE_AFTER + 1):
        study.tell(study.ask(space), 0.5)  # every trial ties: Optuna's importance warned (into the server log)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figure = sweep_charts.importance_figure(study)
    assert figure is not None and len(figure.data[0].y) == 2  # both parameters shown


def test_a_sweep_of_the_best_preset_holds_out_validation_to_judge_its_trials():
    """best_cnn trains on everything by default; its sweep trials hold the 6,000 out all the same (the objective
    is their validation accuracy), keeping the preset's other settings."""
    sweep = sweeps.SweepConfig("best_cnn", trials=2, epochs=1, train_subset=900)
    trial = sweep.train_config({"learning_rate": 1e-3})
    assert trial.validation is True and trial.validation_size == 100  # 900 / 9
    assert (trial.label_smoothing, trial.learning_rate, trial.epochs) == (0.1, 1e-3, 1)

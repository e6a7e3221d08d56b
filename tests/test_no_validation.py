"""Training without a validation holdout: all 60,000 images, the last epoch's model kept, training curves only,
and every reader (CLI, tables, charts, Train page) saying so instead of showing 'nan'."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import assert_best_is_final, fresh, log_of, run_cli, wait_state
from streamlit.testing.v1 import AppTest
from test_pages import ROOT, TIMEOUT, metric
from test_predict import fake_run

from mnist_core import charts, compare, control, evaluate, labels, runfiles, runs, ui
from mnist_core.config import ConfigError, TrainConfig
from mnist_core.data import split
from mnist_core.training import prepare_data


def test_sizes_without_validation():
    config = TrainConfig(architecture="mlp", validation=False)
    assert (config.train_size, config.validation_size) == (60_000, 0)
    assert config.steps_per_epoch == math.ceil(60_000 / 64)
    assert TrainConfig(architecture="mlp", validation=False, train_subset=60_000).train_size == 60_000
    with pytest.raises(ConfigError, match="train_subset"):
        TrainConfig(architecture="mlp", validation=False, train_subset=60_001).validated()
    with pytest.raises(ConfigError, match="train_subset"):  # with a holdout, 54,000 are all there is
        TrainConfig(architecture="mlp", train_subset=54_001).validated()
    with pytest.raises(ConfigError, match="validation"):
        TrainConfig(architecture="mlp", validation="no").validated()
    # Configs written before the field existed read as held-out runs.
    assert TrainConfig.from_dict({"architecture": "cnn"}).validation is True


def test_the_data_is_all_60000_images_and_no_validation(mnist):
    x_train, y_train, x_val, y_val = prepare_data(TrainConfig(architecture="mlp", validation=False))
    assert x_train.shape == (60_000, 28, 28, 1) and len(x_val) == len(y_val) == 0
    np.testing.assert_array_equal(np.bincount(y_train, minlength=10), np.bincount(mnist.y_train, minlength=10))
    parts = split(mnist)
    # The 54,000 in the walkthrough's order, then the 6,000 that are otherwise held out.
    np.testing.assert_array_equal(y_train, np.concatenate([parts.y_train, parts.y_val]))
    np.testing.assert_allclose(x_train[54_000:, ..., 0], parts.x_val / np.float32(255.0))
    subset, labels_of_subset, _, _ = prepare_data(TrainConfig(architecture="mlp", validation=False, train_subset=900))
    np.testing.assert_array_equal(labels_of_subset, parts.y_train[:900])
    assert subset.shape == (900, 28, 28, 1)


def test_cli_holds_out_validation_and_sets_label_smoothing_against_the_best_presets_defaults(runs_dir, reaper):
    """best_cnn trains on everything with smoothing 0.1 unless told otherwise: --validation and --label-smoothing
    override both, as the Train page's toggle and field do."""
    result = run_cli(
        "train", "--arch", "best_cnn", "--epochs", "1", "--subset", "540", "--validation", "--label-smoothing",
        "0.05", runs_root=runs_dir,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    (run,) = runs.list_runs(runs_dir)
    reaper.append(run)
    assert run.state == runs.FINISHED, log_of(run)
    assert (run.config.validation, run.config.label_smoothing, run.config.train_size) == (True, 0.05, 540)
    assert 0 <= run.epochs[-1]["val_accuracy"] <= 1  # validated: 540 / 9 = 60 held-out digits
    both = run_cli("train", "--arch", "mlp", "--validation", "--no-validation", runs_root=runs_dir)
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


def test_cli_trains_without_validation_and_continues(runs_dir, reaper):
    result = run_cli(
        "train", "--arch", "mlp", "--epochs", "2", "--subset", "900", "--no-validation", runs_root=runs_dir
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (run,) = runs.list_runs(runs_dir)
    reaper.append(run)
    assert run.state == runs.FINISHED, log_of(run)
    assert run.config.validation is False and run.config.train_size == 900
    assert [row["epoch"] for row in run.epochs] == [1, 2]
    assert all(math.isnan(row["val_accuracy"]) and math.isnan(row["val_loss"]) for row in run.epochs)
    assert all(0 < row["accuracy"] <= 1 and row["loss"] > 0 for row in run.epochs)
    assert run.best_val_accuracy is None and run.summary()["best_val_accuracy"] is None
    assert run.status["best_val_accuracy"] is None
    assert "nan" not in result.stdout and "val_acc –" in result.stdout
    assert_best_is_final(run)
    assert {path.name for path in run.file(runfiles.TENSORBOARD).iterdir()} == {"train"}

    # best.keras was written at each epoch's end, before training ended and final.keras was saved (had it been
    # left to the end-of-training fallback, it would be the newer file).
    assert run.file(runfiles.BEST_MODEL).stat().st_mtime_ns < run.file(runfiles.FINAL_MODEL).stat().st_mtime_ns

    table = run_cli("runs", runs_root=runs_dir)
    line = next(line for line in table.stdout.splitlines() if line.startswith(run.run_id))
    assert line.split()[:5] == [run.run_id, "mlp", "finished", "2/2", labels.MISSING], line

    # Continued, it stays without validation and best.keras follows the new last epoch.
    control.continue_run(run.run_id, 1, runs_dir)
    assert wait_state(run) == runs.FINISHED, log_of(run)
    run = fresh(run)
    assert len(run.epochs) == 3 and math.isnan(run.epochs[-1]["val_accuracy"])
    assert_best_is_final(run)
    assert "no validation" in ui.config_caption(run.config)


def test_a_curve_without_validation_is_its_training_curve_in_the_legend():
    rows = [
        {"epoch": e, "accuracy": a, "loss": 1 - a, "val_accuracy": math.nan, "val_loss": math.nan}
        for e, a in ((1, 0.9), (2, 0.95))
    ]
    held = [{"epoch": 1, "accuracy": 0.8, "loss": 0.5, "val_accuracy": 0.82, "val_loss": 0.4}]
    figure = charts.curves_figure([charts.Series("all 60k", rows), charts.Series("held out", held)])
    assert [(trace.name, trace.showlegend) for trace in figure.data] == [
        ("all 60k (training only)", True),
        ("held out", True),
        ("held out (training)", False),
    ]
    assert list(figure.data[0].y) == [0.9, 0.95]
    assert labels.percent(math.nan) == labels.MISSING and labels.percent(float("inf")) == labels.MISSING


def test_train_page_starts_a_run_without_validation(runs_dir, monkeypatch, reaper):
    monkeypatch.setenv("MNIST_RUNS_DIR", str(runs_dir))
    app = AppTest.from_file(str(ROOT / "pages/2_Train.py"), default_timeout=TIMEOUT).run()
    app.selectbox(key="train_architecture").set_value("mlp").run()
    app.number_input(key="train_epochs_mlp").set_value(1).run()
    assert app.number_input(key="train_subset_mlp").max == 54_000
    app.toggle(key="train_validation_mlp").set_value(False).run()
    subset = app.number_input(key="train_subset_mlp_all")
    assert subset.max == 60_000 and subset.value == 60_000
    subset.set_value(700).run()
    app.button(key="train_start").click().run()
    assert not app.exception, [e.value for e in app.exception]
    (run,) = runs.list_runs(runs_dir)
    reaper.append(run)
    assert run.config.validation is False and run.config.train_size == 700
    assert control.wait_for(run, timeout=120) == runs.FINISHED, log_of(fresh(run))
    app.run()
    shown = metric(app, "Training accuracy")
    assert shown == labels.percent(fresh(run).epochs[-1]["accuracy"]) and "nan" not in shown


def test_side_by_side_leaves_the_validation_panels_to_runs_that_have_them():
    rows = [{"epoch": 1, "accuracy": 0.9, "loss": 0.3, "val_accuracy": math.nan, "val_loss": math.nan}]
    held = [{"epoch": 1, "accuracy": 0.8, "loss": 0.5, "val_accuracy": 0.82, "val_loss": 0.4}]
    figure = charts.side_by_side_figure([charts.Series("all 60k", rows), charts.Series("held out", held)])
    assert [trace.name for trace in figure.data] == ["all 60k (no validation)"] * 2 + ["held out"] * 4
    only = charts.curves_figure([charts.Series("all 60k", rows)])
    assert only.layout.title.subtitle.text == "training (no validation)"


def test_runs_without_validation_rank_by_their_test_accuracy_once_evaluated():
    unevaluated, held = fake_run("3-robust", math.nan), fake_run("2-strong", 0.995)
    run, why = evaluate.best_model([unevaluated, held])
    assert run is held and "1 run(s) trained without validation count once evaluated" in why
    run, why = evaluate.best_model([unevaluated])
    assert run is unevaluated and "no run has a validation or test score yet" in why
    assert "finished an epoch" in evaluate.best_model([fake_run("1-new", None)])[1]
    evaluated = fake_run("3-robust", math.nan, test=0.9973)
    assert evaluate.best_model([evaluated, held])[0] is evaluated
    # Compare opens on it by its test accuracy, and leaves the unevaluated one last.
    weaker = fake_run("1-cnn", 0.99)
    assert compare.best_run_ids([weaker, unevaluated, evaluated, held]) == ["3-robust", "2-strong", "1-cnn"]

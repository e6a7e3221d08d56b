"""The command line, run as a real subprocess: train, runs, evaluate, stop, continue, bad input."""

from __future__ import annotations

import json
import re

import numpy as np
from conftest import copy_run, fresh, log_of, run_cli, wait_state, wait_until

from mnist_core import control, runs
from mnist_core.architectures import ARCHITECTURES
from mnist_core.config import TrainConfig


def test_train_then_runs_lists_it_finished(runs_dir):
    result = run_cli("train", "--arch", "mlp", "--epochs", "1", "--subset", "600", runs_root=runs_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    listed = runs.list_runs(runs_dir)
    assert len(listed) == 1
    run = listed[0]
    assert run.state == runs.FINISHED, log_of(run)
    assert f"run {run.run_id}: finished" in result.stdout
    config = run.config
    assert (config.architecture, config.epochs, config.train_subset) == ("mlp", 1, 600)
    assert (config.optimizer, config.learning_rate, config.batch_size) == ("sgd", 1e-3, 64)  # published defaults
    assert len(run.epochs) == 1

    table = run_cli("runs", runs_root=runs_dir)
    assert table.returncode == 0, table.stderr
    line = next(line for line in table.stdout.splitlines() if line.startswith(run.run_id))
    assert re.search(r"\bmlp\b", line) and re.search(r"\bfinished\b", line)
    assert "1/1" in line


def test_runs_without_any(runs_dir):
    result = run_cli("runs", runs_root=runs_dir)
    assert result.returncode == 0
    assert "no runs yet" in result.stdout


def test_train_with_zero_epochs_exits_2_naming_epochs(runs_dir):
    result = run_cli("train", "--arch", "mlp", "--epochs", "0", runs_root=runs_dir)
    assert result.returncode == 2
    assert "epochs" in result.stderr
    assert "Traceback" not in result.stderr
    assert not runs_dir.exists() or not any(runs_dir.iterdir())  # nothing was started


def test_bad_arguments_exit_2(runs_dir):
    assert run_cli("train", "--arch", "lenet", runs_root=runs_dir).returncode == 2
    result = run_cli("train", "--arch", "mlp", "--batch-size", "700", "--subset", "600", runs_root=runs_dir)
    assert result.returncode == 2 and "batch_size" in result.stderr
    result = run_cli("evaluate", "no-such-run", runs_root=runs_dir)
    assert result.returncode == 2 and "no-such-run" in result.stderr
    result = run_cli("stop", "20260101-000000-mlp-abcd", runs_root=runs_dir)
    assert result.returncode == 2 and "no run 20260101-000000-mlp-abcd" in result.stderr


def test_evaluate_prints_and_stores(trained_run, runs_dir):
    run = copy_run(trained_run, runs_dir)
    result = run_cli("evaluate", run.run_id, runs_root=runs_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    stored = json.loads(run.file("evaluation.json").read_text())
    assert stored["count"] == 10_000
    assert f"test accuracy {100 * stored['accuracy']:.2f} %" in result.stdout
    assert f"{len(stored['misclassified'])} misclassified of 10,000" in result.stdout
    digit_rows = [line.split() for line in result.stdout.splitlines() if re.match(r"^\s+\d\s", line)]
    assert [int(row[0]) for row in digit_rows] == list(range(10))
    recalls = [float(row[2]) for row in digit_rows]
    matrix = np.array(stored["confusion_matrix"])
    np.testing.assert_allclose(recalls, np.diag(matrix) / matrix.sum(axis=1), atol=6e-5)


def test_stop_a_detached_run(runs_dir, reaper):
    result = run_cli(
        "train", "--arch", "mlp", "--epochs", "20", "--subset", "2000", "--detach", runs_root=runs_dir, timeout=60
    )
    assert result.returncode == 0, result.stderr
    run = runs.list_runs(runs_dir)[0]
    reaper.append(run)
    assert run.run_id in result.stdout
    wait_until(lambda: run.file("progress.json").exists(), what=f"progress.json\n{log_of(run)}")
    stop = run_cli("stop", run.run_id, runs_root=runs_dir, timeout=60)
    assert stop.returncode == 0, stop.stderr
    assert "stop requested" in stop.stdout
    assert wait_state(run) == runs.STOPPED, log_of(run)
    assert len(fresh(run).epochs) < 20
    assert run.file("final.keras").exists()


def test_stop_a_queued_run(runs_dir):
    run = control.create_run(TrainConfig.for_architecture("mlp", epochs=1, train_subset=600), runs_dir)
    result = run_cli("stop", run.run_id, runs_root=runs_dir)
    assert result.returncode == 0, result.stderr
    assert "state now stopped" in result.stdout
    assert fresh(run).state == runs.STOPPED


def test_continue_refuses_nothing_more_to_train(trained_run, runs_dir):
    run = copy_run(trained_run, runs_dir)
    for epochs, message in (("0", "trained all 1 planned epochs"), ("-1", "extra_epochs")):
        result = run_cli("continue", run.run_id, "--epochs", epochs, runs_root=runs_dir)
        assert result.returncode == 2
        assert message in result.stderr and "Traceback" not in result.stderr
    run = fresh(run)
    assert run.state == runs.FINISHED and run.config.epochs == 1


def test_architectures_lists_the_registry(runs_dir):
    result = run_cli("architectures", runs_root=runs_dir)
    assert result.returncode == 0
    keys = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    assert keys == list(ARCHITECTURES)


def test_delete_asks_first_and_restore_brings_the_run_back(trained_run, runs_dir):
    run = copy_run(trained_run, runs_dir)
    for answer in ("n\n", None):  # "no", and no one at the keyboard: kept
        kept = run_cli("delete", run.run_id, runs_root=runs_dir, answer=answer)
        assert kept.returncode == 1 and "not deleted" in kept.stdout and run.path.exists()
    asked = run_cli("delete", run.run_id, runs_root=runs_dir, answer="y\n")
    assert asked.returncode == 0 and "Delete run" in asked.stdout and not run.path.exists()
    assert f"restore {run.run_id}" in asked.stdout
    restored = run_cli("restore", run.run_id, runs_root=runs_dir)
    assert restored.returncode == 0 and run.path.exists(), restored.stderr
    assert fresh(run).epochs == trained_run.epochs
    assert run_cli("delete", run.run_id, "--yes", runs_root=runs_dir).returncode == 0 and not run.path.exists()
    missing = run_cli("restore", "20200101-000000-mlp-0000", runs_root=runs_dir)
    assert missing.returncode == 2 and "no deleted run" in missing.stderr and "Traceback" not in missing.stderr


def test_export_writes_the_plain_files_and_a_tflite_model_that_agrees(trained_run, runs_dir, tmp_path, mnist):
    import zipfile

    import tensorflow as tf

    from mnist_core.data import to_model_input
    from mnist_core.models import run_predictor

    run = copy_run(trained_run, runs_dir)
    done = run_cli("export", run.run_id, "--out", str(tmp_path / "out"), "--tflite", runs_root=runs_dir)
    assert done.returncode == 0, done.stderr
    archive = zipfile.ZipFile(tmp_path / "out" / f"{run.run_id}.zip")
    names = set(archive.namelist())
    assert {f"{run.run_id}/{name}" for name in ("config.json", "epochs.csv", "best.keras")} <= names
    assert not any("checkpoints" in name or "worker.lock" in name or "tensorboard" in name for name in names)
    assert archive.read(f"{run.run_id}/epochs.csv") == run.file("epochs.csv").read_bytes()
    # The downloaded .keras loads on its own and predicts what the run's model predicts.
    (tmp_path / "best.keras").write_bytes(archive.read(f"{run.run_id}/best.keras"))
    import keras

    images = to_model_input(mnist.x_test[:100])
    alone = keras.models.load_model(tmp_path / "best.keras", safe_mode=True, compile=False)
    np.testing.assert_allclose(alone.predict(images, verbose=0), run_predictor(run).probabilities(images), atol=1e-6)
    # The TFLite model gives the same probabilities on other test digits than the 100 it was checked on.
    interpreter = tf.lite.Interpreter(model_path=str(tmp_path / "out" / f"{run.run_id}.tflite"))
    others = to_model_input(mnist.x_test[5000:5050])
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], others.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], others)
    interpreter.invoke()
    lite = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    assert np.abs(lite - alone.predict(others, verbose=0)).max() <= 1e-4

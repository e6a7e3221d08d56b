"""Faults as features: kill -9 mid-epoch and mid-checkpoint, kill with nobody reading, two continues at once,
damaged files, a full disk, and run ids that try to leave the runs folder. Real workers, real files."""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import (
    assert_best_is_final,
    at_once,
    copy_run,
    fresh,
    kill_processes,
    log_of,
    run_cli,
    wait_state,
    wait_until,
)
from streamlit.testing.v1 import AppTest

from mnist_core import control, runfiles, runs, storage
from mnist_core.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("dashboard.py", "pages/2_Train.py", "pages/3_Compare.py", "pages/4_Evaluate.py", "pages/5_Draw.py")
# 6,000 images in batches of 64: 94 batches an epoch, about a second each for the MLP.
RESUMABLE = dict(
    architecture="mlp",
    epochs=4,
    batch_size=64,
    optimizer="adam",
    learning_rate=3e-3,
    lr_schedule="one_cycle",
    train_subset=6000,
)


def one_cycle_rate(step: int, peak: float, total: int) -> float:
    """Return the one-cycle learning rate at optimizer step `step` of a `total`-step cycle, worked by hand."""
    warmup = max(1, int(total * 0.1))
    if step < warmup:
        return peak * 0.1 + (peak - peak * 0.1) * step / warmup
    decay = max(1, total - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * min(step - warmup, decay) / decay))


def temp_files(path: Path) -> list[str]:
    """Return every temp file an atomic write left anywhere under the run folder."""
    return [str(entry) for entry in path.rglob("*") if runfiles.is_temp_file(entry.name)]


def assert_trained_once_each(run: runs.Run, epochs: int) -> None:
    """Check epochs 1..N once each, a running curve that never goes back, the optimizer's step count and the
    learning rates of an uninterrupted one-cycle run."""
    import keras

    import mnist_core.training  # noqa: F401 - registers OneCycle, which the checkpoint's optimizer uses

    config = run.config
    rows = list(run.epochs)
    assert [row["epoch"] for row in rows] == list(range(1, epochs + 1)), rows
    losses = [row["val_loss" if config.validation else "loss"] for row in rows]
    assert len(set(losses)) == len(losses), f"an epoch was recorded twice: {losses}"
    elapsed = [row["elapsed"] for row in rows]
    assert elapsed == sorted(elapsed)
    positions = [row["epoch_progress"] for row in storage.read_jsonl(run.file(runfiles.BATCHES))]
    assert all(a < b for a, b in itertools.pairwise(positions)), "the running curve goes back"
    assert positions[-1] == pytest.approx(epochs)
    steps = config.steps_per_epoch
    checkpoint = run.file(runfiles.CHECKPOINTS) / runfiles.checkpoint_name(epochs)
    assert sorted(p.name for p in run.file(runfiles.CHECKPOINTS).iterdir()) == [checkpoint.name]
    model = keras.saving.load_model(checkpoint, safe_mode=True)
    assert int(model.optimizer.iterations) == epochs * steps
    for row in rows:  # the resumed run kept its cycle: the rate at each epoch's end is the planned one
        expected = one_cycle_rate(row["epoch"] * steps, config.learning_rate, config.epochs * steps)
        assert row["learning_rate"] == pytest.approx(expected, rel=1e-4, abs=1e-9)
    assert temp_files(run.path) == []


def start_resumable(runs_dir: Path, reaper: list, **changes) -> runs.Run:
    """Return a started 4-epoch MLP run (RESUMABLE with `changes`), registered for clean-up."""
    run = control.start_run(TrainConfig.from_dict({**RESUMABLE, **changes}), runs_dir)
    reaper.append(run)
    return run


def kill_worker(run: runs.Run) -> None:
    """SIGKILL the run's training process (its supervisor lives on and notices)."""
    pid = wait_until(lambda: fresh(run).status.get("pid"), what="the worker's pid")
    os.kill(pid, signal.SIGKILL)


# ----- kill -9 and resume ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes", [{}, {"validation": False}, {"augmentation": "shift"}], ids=["held-out", "no-validation", "augmented"]
)
def test_kill_mid_epoch_then_continue_trains_each_epoch_once(runs_dir, reaper, changes):
    run = start_resumable(runs_dir, reaper, **changes)
    wait_until(lambda: fresh(run).progress.get("epoch", 0) >= 2 and fresh(run).progress["batch"] >= 40, poll=0.01)
    kill_worker(run)
    assert wait_state(run, (runs.FAILED,), timeout=10) == runs.FAILED
    killed = fresh(run)
    assert "SIGKILL" in killed.status["error"]
    done = len(killed.epochs)
    assert done >= 1
    assert max(row["epoch_progress"] for row in storage.read_jsonl(run.file(runfiles.BATCHES))) > done

    resumed = control.continue_run(run.run_id, None, runs_dir)  # to the planned 4 epochs
    assert resumed.config.epochs == 4 and resumed.status["continued_at_epoch"] == done
    assert wait_state(run) == runs.FINISHED, log_of(run)
    assert_trained_once_each(fresh(run), 4)
    if not run.config.validation:  # best.keras is the resumed run's last epoch, as in a run never killed
        assert_best_is_final(fresh(run))


def test_kill_mid_checkpoint_then_continue_trains_each_epoch_once(runs_dir, reaper):
    run = start_resumable(runs_dir, reaper)
    folder = run.file(runfiles.CHECKPOINTS)
    pid = wait_until(lambda: fresh(run).status.get("pid"), what="the worker's pid")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # catch the worker while a checkpoint is half written
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            names = []
        if any(runfiles.is_temp_file(name) for name in names):
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.0005)
    else:
        pytest.fail(f"never saw a checkpoint being written\n{log_of(run)}")
    assert wait_state(run, (runs.FAILED,), timeout=10) == runs.FAILED
    assert temp_files(run.path), "the kill left no half-written checkpoint: it did not land mid-save"

    control.continue_run(run.run_id, None, runs_dir)
    assert wait_state(run) == runs.FINISHED, log_of(run)
    assert_trained_once_each(fresh(run), 4)


def test_a_checkpoint_ahead_of_epochs_csv_is_not_a_resume_point(trained_run, runs_dir, reaper):
    """Killed after saving epoch 2's checkpoint but before epochs.csv recorded epoch 2: resume after epoch 1."""
    run = copy_run(trained_run, runs_dir)
    reaper.append(run)
    folder = run.file(runfiles.CHECKPOINTS)
    shutil.copy(folder / runfiles.checkpoint_name(1), folder / runfiles.checkpoint_name(2))
    storage.append_jsonl(run.file(runfiles.BATCHES), [{"epoch": 2, "batch": 5, "epoch_progress": 1.2, "loss": 9.0}])
    control.continue_run(run.run_id, 1, runs_dir)
    assert wait_state(run) == runs.FINISHED, log_of(run)
    run = fresh(run)
    assert [row["epoch"] for row in run.epochs] == [1, 2]
    assert run.epochs[0] == trained_run.epochs[0]
    assert all(row["loss"] != 9.0 for row in storage.read_jsonl(run.file(runfiles.BATCHES)))


def test_killed_run_starts_the_next_queued_one_with_nobody_reading(runs_dir, reaper):
    first = start_resumable(runs_dir, reaper)
    second = control.start_run(TrainConfig.for_architecture("mlp", epochs=1, train_subset=600), runs_dir)
    reaper.append(second)
    assert fresh(second).state == runs.QUEUED
    wait_until(lambda: fresh(first).progress, what="the first run's first batches")
    kill_worker(first)
    killed_at = time.monotonic()
    wait_until(lambda: runs.read_run(second.path).state != runs.QUEUED, timeout=5, poll=0.05, what="the next run")
    assert time.monotonic() - killed_at < 5
    assert fresh(first).state == runs.FAILED
    assert wait_state(second) == runs.FINISHED, log_of(second)


def test_a_run_left_running_by_a_dead_machine_is_failed_by_the_next_schedule(trained_run, runs_dir):
    """Both processes gone (a reboot): no lock is held, so the next schedule marks the run failed."""
    run = copy_run(trained_run, runs_dir)
    control.transition(run.path, runs.RUNNING, (runs.FINISHED,), pid=999_999, supervisor_pid=999_998)
    assert fresh(run).state == runs.RUNNING  # reading changes nothing
    assert runs.list_runs(runs_dir)[0].state == runs.RUNNING
    control.schedule(runs_dir)
    assert "machine restarted" in fresh(run).status["error"]
    assert fresh(run).state == runs.FAILED


# ----- races ------------------------------------------------------------------------------------------------------


def test_two_continues_at_once_start_one_worker(trained_run, runs_dir, reaper):
    for attempt in range(4):
        run = copy_run(trained_run, runs_dir / f"try-{attempt}")
        reaper.append(run)
        accepted, refused = at_once(
            lambda _, run=run: control.continue_run(run.run_id, 1, run.path.parent), 2, runs.RunError
        )
        assert len(accepted) == 1 and len(refused) == 1, (accepted, refused)
        assert "queued" in refused[0] or "running" in refused[0]
        assert wait_state(run) == runs.FINISHED, log_of(run)
        positions = [(row["epoch"], row["batch"]) for row in storage.read_jsonl(run.file(runfiles.BATCHES))]
        assert len(positions) == len(set(positions)), "two workers wrote the same batches"
        assert [row["epoch"] for row in fresh(run).epochs] == [1, 2]


# ----- damaged files ----------------------------------------------------------------------------------------------

DAMAGE = {
    "status-null": (runfiles.STATUS, b"null", "status.json"),
    "status-list": (runfiles.STATUS, b"[]", "status.json"),
    "status-bad-state": (runfiles.STATUS, b'{"state": "sleeping"}', "status.json"),
    "epochs-binary": (runfiles.EPOCHS, bytes(range(256)) * 4, "epochs.csv"),
    "epochs-not-numbers": (runfiles.EPOCHS, b"epoch,loss\n1,abc\n", "epochs.csv"),
    "config-truncated": (runfiles.CONFIG, b'{"architecture": "mlp", "epo', "config.json"),
    "config-invalid": (runfiles.CONFIG, b'{"architecture": "mlp", "epochs": -3}', "config.json"),
    "config-missing": (runfiles.CONFIG, None, "config.json"),
    "progress-list": (runfiles.PROGRESS, b"[1, 2]", "progress.json"),
    "evaluation-binary": (runfiles.EVALUATION, b"\x89PNG\r\n\x1a\n", "evaluation.json"),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_a_damaged_file_marks_only_its_run_damaged(case, trained_run, runs_dir, monkeypatch):
    healthy = copy_run(trained_run, runs_dir)
    damaged_path = runs_dir / "20200101-000000-mlp-dead"
    shutil.copytree(trained_run.path, damaged_path)
    name, content, named = DAMAGE[case]
    if content is None:
        (damaged_path / name).unlink()
    else:
        (damaged_path / name).write_bytes(content)
    config_before = (damaged_path / runfiles.CONFIG).read_bytes() if (damaged_path / runfiles.CONFIG).exists() else None

    listed = {run.run_id: run for run in runs.list_runs(runs_dir)}
    assert set(listed) == {healthy.run_id, damaged_path.name}
    assert listed[healthy.run_id].state == runs.FINISHED and not listed[healthy.run_id].damaged
    damaged = listed[damaged_path.name]
    assert damaged.state == runs.DAMAGED and damaged.problem.startswith(named), damaged.problem
    assert not damaged.has_model

    # No operation turns it into something else, and its config is never rewritten.
    with pytest.raises(runs.RunError, match="damaged"):
        control.continue_run(damaged.run_id, 1, runs_dir)
    with pytest.raises(runs.RunError, match="damaged"):
        control.request_stop(damaged.run_id, runs_dir)
    control.schedule(runs_dir)
    if config_before is not None:
        assert (damaged_path / runfiles.CONFIG).read_bytes() == config_before

    table = run_cli("runs", runs_root=runs_dir)
    assert table.returncode == 0 and "Traceback" not in table.stderr, table.stderr
    line = next(line for line in table.stdout.splitlines() if line.startswith(damaged.run_id))
    assert "damaged" in line and named in line
    assert any(line.startswith(healthy.run_id) and "finished" in line for line in table.stdout.splitlines())

    monkeypatch.setenv("MNIST_RUNS_DIR", str(runs_dir))
    for page in PAGES:
        app = AppTest.from_file(str(ROOT / page), default_timeout=120)
        app.query_params["run"] = damaged.run_id
        app.run()
        assert not app.exception, (page, [e.value for e in app.exception])
    train = AppTest.from_file(str(ROOT / "pages/2_Train.py"), default_timeout=120)
    train.query_params["run"] = damaged.run_id
    train.run()
    assert any(named in str(error.value) for error in train.error), [e.value for e in train.error]


def test_create_leaves_no_half_made_folder_to_readers(runs_dir):
    run = control.create_run(TrainConfig.for_architecture("mlp", epochs=1, train_subset=600), runs_dir)
    assert [entry.name for entry in runs_dir.iterdir() if entry.name.startswith(runfiles.CREATING_PREFIX)] == []
    (runs_dir / f"{runfiles.CREATING_PREFIX}20200101-000000-mlp-beef").mkdir()  # a create killed half-way
    assert [r.run_id for r in runs.list_runs(runs_dir)] == [run.run_id]


# ----- a full disk ------------------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """Return a fresh 48 MiB tmpfs (root can mount one); unmounted at the end."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Fill `disk` to the last byte with one file; return it (delete it to free the disk)."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as handle:
        for chunk in (1 << 20, 4096, 1):
            with contextlib.suppress(OSError):
                while handle.write(b"\0" * chunk):
                    pass
    return filler


def test_full_disk_start_says_so_and_leaves_nothing(small_disk, monkeypatch):
    root = small_disk / "runs"
    healthy = control.create_run(TrainConfig.for_architecture("mlp", epochs=1, train_subset=600), root)
    fill(small_disk)
    with pytest.raises(control.StorageError, match="No space left on device") as caught:
        control.start_run(TrainConfig.for_architecture("mlp", epochs=1, train_subset=600), root)
    assert "\n" not in str(caught.value)
    assert sorted(entry.name for entry in root.iterdir() if not entry.name.startswith(".lock")) == [healthy.run_id]

    cli = run_cli("train", "--arch", "mlp", "--epochs", "1", "--subset", "600", runs_root=root, timeout=60)
    assert cli.returncode == 2 and "No space left on device" in cli.stderr and "Traceback" not in cli.stderr
    listing = run_cli("runs", runs_root=root, timeout=60)
    assert listing.returncode == 0 and healthy.run_id in listing.stdout

    monkeypatch.setenv("MNIST_RUNS_DIR", str(root))
    for page in PAGES:
        app = AppTest.from_file(str(ROOT / page), default_timeout=120).run()
        assert not app.exception, (page, [e.value for e in app.exception])
    train = AppTest.from_file(str(ROOT / "pages/2_Train.py"), default_timeout=120).run()
    train.selectbox(key="train_architecture").set_value("mlp").run()
    train.button(key="train_start").click().run()
    assert not train.exception
    assert any("No space left on device" in str(error.value) for error in train.error)
    assert len(runs.list_runs(root)) == 1


def test_full_disk_mid_training_is_recorded_once_space_returns(small_disk, reaper, monkeypatch):
    root = small_disk / "runs"
    monkeypatch.setenv("MNIST_RUNS_DIR", str(root))
    run = control.start_run(TrainConfig.for_architecture("mlp", epochs=30, train_subset=6000), root)
    reaper.append(run)
    wait_until(lambda: fresh(run).progress, what=f"the first batches\n{log_of(run)}")
    filler = fill(small_disk)
    # The worker fails at its next write and cannot record it; the supervisor keeps it until it can.
    wait_until(lambda: not [pid for pid in control.run_processes(run.path) if pid == fresh(run).status["pid"]])
    assert fresh(run).state == runs.RUNNING
    assert control.worker_alive(run.path), "the supervisor let go before recording the failure"
    home = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=120).run()
    assert not home.exception
    filler.unlink()
    freed = time.monotonic()
    wait_until(lambda: fresh(run).state == runs.FAILED, timeout=10, what="the failure to be recorded")
    assert time.monotonic() - freed < 10
    assert "No space left on device" in fresh(run).status["error"], fresh(run).status


# ----- the CLI ----------------------------------------------------------------------------------------------------


def test_cli_refuses_ids_outside_the_runs_folder_in_one_line(trained_run, runs_dir):
    run = copy_run(trained_run, runs_dir)
    shutil.copy(run.file(runfiles.CONFIG), runs_dir.parent / runfiles.CONFIG)  # the parent looks like a run
    for bad in ("..", "../" + runs_dir.name, "x" * 300, "/etc", run.run_id + "/../.."):
        for command in ("evaluate", "stop", "continue"):
            result = run_cli(command, bad, runs_root=runs_dir, timeout=60)
            assert result.returncode == 2, (command, bad, result.stdout, result.stderr)
            assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (runs_dir.parent / runfiles.EVALUATION).exists()


def test_cli_evaluate_of_a_corrupt_model_is_one_line(trained_run, runs_dir):
    run = copy_run(trained_run, runs_dir)
    run.file(runfiles.BEST_MODEL).write_bytes(b"not a zip" * 50)
    result = run_cli("evaluate", run.run_id, runs_root=runs_dir, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "best.keras" in result.stderr


def test_worker_start_removes_stale_temp_files(trained_run, runs_dir, reaper):
    run = copy_run(trained_run, runs_dir)
    reaper.append(run)
    stale = [run.file(".status.json.abc123.tmp"), run.file(runfiles.CHECKPOINTS) / ".epoch-0002.4242.tmp.keras"]
    for path in stale:
        path.write_bytes(b"half")
    control.continue_run(run.run_id, 1, runs_dir)
    assert wait_state(run) == runs.FINISHED, log_of(run)
    assert not any(path.exists() for path in stale)
    kill_processes(run)
    assert json.loads(run.file(runfiles.STATUS).read_text())["state"] == runs.FINISHED


@pytest.mark.parametrize("upload_fits", [False, True], ids=["full", "room-for-the-upload-only"])
def test_full_disk_import_says_so_and_leaves_nothing(small_disk, tmp_path, upload_fits):
    """A full disk refuses an import in one line, whether the upload itself or the model saved from it does not
    fit; nothing half-made stays in the runs folder and the runs already there are untouched."""
    from mnist_core import imported
    from mnist_core.tfimport import import_keras

    keras = import_keras()
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10, "softmax")])
    model.save(tmp_path / "model.keras")
    root = small_disk / "runs"
    healthy = control.create_run(TrainConfig.for_architecture("mlp", epochs=1, train_subset=600), root)
    filler = fill(small_disk)
    if upload_fits:  # room for the staged upload (whole 4 KB pages), not for the model saved from it as well
        room = (tmp_path / "model.keras").stat().st_size + 8192
        with open(filler, "r+b") as handle:
            handle.truncate(filler.stat().st_size - room)
    with pytest.raises(control.StorageError, match="No space left on device") as caught:
        imported.import_file(tmp_path / "model.keras", root=root)
    assert "\n" not in str(caught.value)
    assert str(tmp_path) not in str(caught.value)  # the disk that is full is the runs folder's, not the file's
    assert sorted(entry.name for entry in root.iterdir() if entry.name != runfiles.ROOT_LOCK) == [healthy.run_id]
    filler.unlink()
    assert imported.import_file(tmp_path / "model.keras", root=root).state == runs.IMPORTED  # once there is room


def test_full_disk_saving_a_drawing_says_so_and_keeps_the_others(small_disk):
    """A full disk refuses a drawing in one line; the drawings saved before read back as they were, nothing half
    written stays, and saving works again once there is room."""
    import numpy as np

    from mnist_core import drawings
    from mnist_core.synthetic import drawn_digits

    root = small_disk / "drawings"
    images, labels = drawn_digits(4, seed=2)
    raw = np.zeros((280, 280, 4), np.uint8)
    pairs = zip(images[:3], labels[:3], strict=True)
    saved = [drawings.save_drawing(image, int(label), raw, root) for image, label in pairs]
    before = drawings.load_drawings(root)
    files_before = sorted(path.name for path in root.rglob("*") if path.is_file())
    filler = fill(small_disk)
    with pytest.raises(drawings.DrawingError, match="No space left on device") as caught:
        drawings.save_drawing(images[3], int(labels[3]), raw, root)
    assert "\n" not in str(caught.value)
    after = drawings.load_drawings(root)
    assert after.names == tuple(saved) and after.problems == ()
    np.testing.assert_array_equal(after.images, before.images)
    assert sorted(path.name for path in root.rglob("*") if path.is_file()) == files_before
    filler.unlink()
    drawings.save_drawing(images[3], int(labels[3]), raw, root)
    assert len(drawings.load_drawings(root)) == 4


def test_full_disk_teaching_a_run_says_so_and_changes_nothing(trained_run, small_disk, monkeypatch):
    """Teaching a run writes its drawings' snapshot first: on a full disk it is refused in one line and the run
    stays as it was, ready to be taught once there is room."""
    from mnist_core import drawings, teaching
    from mnist_core.synthetic import drawn_digits

    images, labels = drawn_digits(24)
    for image, label in zip(images, labels, strict=True):
        drawings.save_drawing(image, int(label))
    split = teaching.split(drawings.load_drawings())
    run = copy_run(trained_run, small_disk / "runs")
    config_before = run.file(runfiles.CONFIG).read_bytes()
    filler = fill(small_disk)
    with pytest.raises(control.StorageError, match="No space left on device") as caught:
        control.continue_run(run.run_id, 1, small_disk / "runs", teaching=split, repeat=3)
    assert "\n" not in str(caught.value)
    assert run.file(runfiles.CONFIG).read_bytes() == config_before and fresh(run).state == runs.FINISHED
    assert not list(run.path.glob("handwriting-*.npz"))
    assert not [path for path in run.path.iterdir() if runfiles.is_temp_file(path.name)]
    filler.unlink()
    queued = control.continue_run(run.run_id, 1, small_disk / "runs", teaching=split, repeat=3)
    assert wait_state(queued) == runs.FINISHED, log_of(queued)

"""Teaching a run your handwriting: the fixed held-out quarter, drawings mixed into real training, the held-out
accuracy before and after checked against the saved models, kill -9 mid-teaching, and every refusal."""

from __future__ import annotations

import hashlib
import math
import os
import signal

import keras
import numpy as np
import pytest
from conftest import assert_best_is_final, copy_run, fresh, log_of, wait_state, wait_until
from streamlit.testing.v1 import AppTest

from mnist_core import control, drawings, runfiles, runs, teaching
from mnist_core.config import TrainConfig
from mnist_core.synthetic import drawn_digits

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def save_drawn(count: int, seed: int = 0) -> list[str]:
    """Save `count` procedural drawn digits into my drawings; return their file names."""
    images, labels = drawn_digits(count, seed)
    return [drawings.save_drawing(image, int(label)) for image, label in zip(images, labels, strict=True)]


def held_out_by_hand(name: str) -> bool:
    """The held-out rule worked out again here: the name's SHA-256, first 8 hex digits, is a multiple of 4."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % 4 == 0


def snapshots(run: runs.Run) -> list[str]:
    """Return the names of the drawings snapshots in the run's folder."""
    return sorted(path.name for path in run.path.glob("handwriting-*.npz"))


def accuracy_of(model_path, images: np.ndarray, labels: np.ndarray) -> float:
    """Return the accuracy of the saved model on uint8 images (n, 28, 28), computed with plain numpy."""
    model = keras.saving.load_model(model_path, safe_mode=True)
    scores = np.asarray(model(images[..., None].astype(np.float32) / 255.0, training=False))
    return float(np.mean(scores.argmax(axis=1) == labels))


def test_the_held_out_quarter_is_fixed_by_name_and_never_trained_on():
    first = save_drawn(24)
    split_then = teaching.split(drawings.load_drawings())
    save_drawn(16, seed=1)
    mine = drawings.load_drawings()
    split_now = teaching.split(mine)
    held = [name for name in mine.names if held_out_by_hand(name)]
    assert split_now.counts == (len(mine) - len(held), len(held))
    # The drawings held out before are still held out, in the same order, now that more were saved.
    kept = [name for name in first if held_out_by_hand(name)]
    np.testing.assert_array_equal(split_now.held_out_images[: len(kept)], split_then.held_out_images)
    by_name = dict(zip(mine.names, mine.images, strict=True))
    np.testing.assert_array_equal(split_now.held_out_images, np.stack([by_name[name] for name in held]))
    # On many names the share is about a quarter.
    share = np.mean([teaching.is_held_out(f"20261201-000000-{index:08x}.png") for index in range(4000)])
    assert 0.22 < share < 0.28


def test_teaching_mixes_drawings_in_and_measures_before_and_after(trained_run, trained_cnn, runs_dir, reaper):
    run = copy_run(trained_run, runs_dir)
    save_drawn(40)
    split = teaching.split(drawings.load_drawings())
    train, held_out = split.counts
    assert train and held_out
    before_by_hand = accuracy_of(run.file(runfiles.FINAL_MODEL), split.held_out_images, split.held_out_labels)

    queued = control.continue_run(run.run_id, 1, runs_dir, teaching=split, repeat=5)
    reaper.append(queued)
    assert queued.config.drawings_repeat == 5 and queued.config.drawings_train == train
    assert wait_state(queued) == runs.FINISHED, log_of(queued)
    done = fresh(run)

    # Every epoch since is one of 2,000 MNIST digits plus 5 copies of each training drawing.
    assert done.config.train_size == 2000 + 5 * train
    assert done.progress["steps_per_epoch"] == math.ceil((2000 + 5 * train) / 64)
    record = done.handwriting
    assert record["at_epoch"] == 1 and (record["train"], record["held_out"]) == (train, held_out)
    assert record["before"] == pytest.approx(before_by_hand, abs=1e-9)
    assert [row["epoch"] for row in record["after"]] == [2]
    after_by_hand = accuracy_of(done.file(runfiles.FINAL_MODEL), split.held_out_images, split.held_out_labels)
    assert record["after"][0]["accuracy"] == pytest.approx(after_by_hand, abs=1e-9)
    # A fresh one-cycle over the taught epoch, from the step the optimizer had reached (epochs grew longer): it
    # starts at 10 % of the peak, never below zero, and ends at zero.
    import mnist_core.training  # noqa: F401 - registers OneCycle, which the checkpoint's optimizer uses

    checkpoint = done.file(runfiles.CHECKPOINTS) / runfiles.checkpoint_name(2)
    optimizer = keras.saving.load_model(checkpoint, safe_mode=True).optimizer
    old_steps, new_steps = math.ceil(2000 / 64), done.config.steps_per_epoch
    assert int(optimizer.iterations) == old_steps + new_steps
    schedule = optimizer._learning_rate
    peak = done.config.learning_rate
    assert float(schedule(old_steps)) == pytest.approx(0.1 * peak, rel=1e-4)
    assert min(float(schedule(step)) for step in range(old_steps, old_steps + new_steps)) >= 0
    assert done.epochs[1]["learning_rate"] == pytest.approx(0.0, abs=1e-9)
    # best.keras is the taught model (the only epoch since teaching), whatever the untaught epoch scored.
    assert_best_is_final(done)

    # The training data holds each training drawing exactly 5 times, and no held-out drawing.
    from mnist_core.training import prepare_data

    snapshot = teaching.read_snapshot(done.path, done.config.drawings_snapshot)
    assert snapshots(done) == [runfiles.handwriting_data(done.config.drawings_snapshot)]
    x_train, y_train, _, _ = prepare_data(done.config, snapshot)
    assert len(x_train) == done.config.train_size
    pixels = x_train[..., 0]
    for image, label in zip(split.train_images[:5], split.train_labels[:5], strict=True):
        same = np.all(np.abs(pixels - image / 255.0) < 1e-6, axis=(1, 2))
        assert same.sum() == 5 and set(y_train[same]) == {label}
    for image in split.held_out_images:
        assert not np.any(np.all(np.abs(pixels - image / 255.0) < 1e-6, axis=(1, 2)))

    # The leaderboard says this run was taught the drawings it is scored on (the column exists only then).
    from mnist_core import evaluate

    board = evaluate.leaderboard([done], {done.run_id: after_by_hand})
    assert board[0]["trained on my drawings"] == f"{train} of them"
    # So does it of an ensemble with the taught run in it: it has seen those drawings through its member.
    from mnist_core import ensembles

    untaught = copy_run(trained_cnn, runs_dir)
    ensemble = ensembles.make_ensemble([done.run_id, untaught.run_id], root=runs_dir)
    assert ensemble.drawings_trained_on == train and untaught.drawings_trained_on == 0
    board = evaluate.leaderboard([ensemble], {ensemble.run_id: after_by_hand})
    assert board[0]["trained on my drawings"] == f"{train} of them"


def test_kill_mid_teaching_then_continue_keeps_the_drawings_and_the_before(trained_run, runs_dir, reaper):
    run = copy_run(trained_run, runs_dir)
    save_drawn(40)
    split = teaching.split(drawings.load_drawings())
    queued = control.continue_run(run.run_id, 3, runs_dir, teaching=split, repeat=10)
    reaper.append(queued)
    wait_until(lambda: fresh(run).progress.get("epoch", 0) >= 3, poll=0.01, what="the third epoch")
    os.kill(fresh(run).status["pid"], signal.SIGKILL)
    assert wait_state(run, (runs.FAILED,), timeout=30) == runs.FAILED
    killed = fresh(run)
    before = killed.handwriting["before"]
    # Drawings saved or deleted meanwhile change nothing for this run: it trains on its snapshot.
    save_drawn(8, seed=5)

    control.continue_run(run.run_id, None, runs_dir)
    assert wait_state(run) == runs.FINISHED, log_of(run)
    done = fresh(run)
    assert done.handwriting["before"] == before
    assert [row["epoch"] for row in done.handwriting["after"]] == [2, 3, 4]
    assert done.config.drawings_train == split.counts[0]
    np.testing.assert_array_equal(
        teaching.read_snapshot(done.path, done.config.drawings_snapshot).train_images, split.train_images
    )


def test_a_damaged_snapshot_fails_the_run_with_one_line(trained_run, runs_dir, reaper):
    run = copy_run(trained_run, runs_dir)
    save_drawn(20)
    queued = control.continue_run(run.run_id, 1, runs_dir, teaching=teaching.split(drawings.load_drawings()), repeat=2)
    reaper.append(queued)
    assert wait_state(queued) == runs.FINISHED, log_of(queued)
    name = runfiles.handwriting_data(fresh(run).config.drawings_snapshot)
    data = run.file(name)
    data.write_bytes(data.read_bytes()[:100])
    control.continue_run(run.run_id, 1, runs_dir)
    assert wait_state(run) == runs.FAILED
    error = fresh(run).status["error"]
    assert error.startswith(name) and "damaged" in error and "\n" not in error


def test_teaching_needs_drawings_to_train_on_and_to_hold_out(trained_run, runs_dir):
    run = copy_run(trained_run, runs_dir)
    config_before = run.file(runfiles.CONFIG).read_bytes()
    save_drawn(12)
    # No drawings, then only held-out ones, then only training ones: each is refused the same way.
    for keep in (None, True, False):
        if keep is not None:
            deleted = [
                drawings.delete_drawing(name)
                for name in drawings.load_drawings().names
                if held_out_by_hand(name) != keep
            ]
        mine = drawings.load_drawings() if keep is not None else drawings.load_drawings(runs_dir / "no-drawings")
        with pytest.raises(runs.RunError, match="needs at least one of each") as refused:
            control.continue_run(run.run_id, 1, runs_dir, teaching=teaching.split(mine), repeat=3)
        assert "\n" not in str(refused.value)
        for entry in deleted if keep is not None else ():
            drawings.restore_drawing(entry)
    assert run.file(runfiles.CONFIG).read_bytes() == config_before
    assert snapshots(run) == [] and fresh(run).state == runs.FINISHED


def test_teaching_a_queued_or_imported_run_is_refused_and_writes_nothing(runs_dir, tmp_path):
    save_drawn(20)
    split = teaching.split(drawings.load_drawings())
    queued = control.create_run(TrainConfig.for_architecture("mlp", epochs=1, train_subset=200), runs_dir)
    with pytest.raises(runs.RunError, match="queued"):
        control.continue_run(queued.run_id, 1, runs_dir, teaching=split, repeat=3)
    assert snapshots(queued) == []
    with pytest.raises(runs.RunError, match="repeat"):
        control.continue_run(queued.run_id, 1, runs_dir, teaching=split, repeat=0)


def test_a_repeat_factor_is_a_setting_with_limits():
    base = dict(architecture="mlp", train_subset=1000, batch_size=64)
    taught = {"drawings_repeat": 4, "drawings_train": 30, "drawings_snapshot": "0123456789abcdef"}
    assert TrainConfig.from_dict(base | taught).train_size == 1000 + 4 * 30
    for bad, field in (
        (taught | {"drawings_repeat": 101}, "drawings_repeat: must be between"),
        (taught | {"drawings_train": 0}, "drawings_repeat: set with"),
        (taught | {"drawings_snapshot": "../../etc"}, "drawings_snapshot"),
        (taught | {"drawings_repeat": 100, "drawings_train": 541}, "more images than MNIST"),
    ):
        with pytest.raises(ValueError, match=field):
            TrainConfig.from_dict(base | bad)


def test_teaching_again_keeps_the_old_snapshot_until_the_new_one_is_committed(
    trained_run, runs_dir, reaper, monkeypatch
):
    """Taught twice: a disk refusing config.json (the commit point) leaves the first teaching whole (its snapshot,
    its record, its config); once it takes it, the second snapshot replaces the first and gets a record of its own
    from the epoch it was taught at."""
    run = copy_run(trained_run, runs_dir)
    save_drawn(20)
    first = control.continue_run(run.run_id, 1, runs_dir, teaching=teaching.split(drawings.load_drawings()), repeat=2)
    reaper.append(first)
    assert wait_state(first) == runs.FINISHED, log_of(first)
    taught_once = fresh(run)
    save_drawn(20, seed=3)
    second = teaching.split(drawings.load_drawings())
    real_write = control.storage.write_json_atomic

    def refusing(path, value, durable=True):
        if path.name == runfiles.CONFIG:
            raise OSError(28, "No space left on device", str(path))
        return real_write(path, value, durable)

    monkeypatch.setattr(control.storage, "write_json_atomic", refusing)
    with pytest.raises(control.StorageError, match="No space left on device"):
        control.continue_run(run.run_id, 1, runs_dir, teaching=second, repeat=2)
    monkeypatch.undo()
    unchanged = fresh(run)
    assert unchanged.config == taught_once.config and unchanged.handwriting == taught_once.handwriting
    teaching.read_snapshot(run.path, taught_once.config.drawings_snapshot)  # still there, whole
    assert unchanged.state == runs.FINISHED

    again = control.continue_run(run.run_id, 1, runs_dir, teaching=second, repeat=2)
    assert wait_state(again) == runs.FINISHED, log_of(again)
    done = fresh(run)
    assert done.config.drawings_snapshot != taught_once.config.drawings_snapshot
    assert snapshots(done) == [runfiles.handwriting_data(done.config.drawings_snapshot)]
    assert done.handwriting["at_epoch"] == 2 and [row["epoch"] for row in done.handwriting["after"]] == [3]
    assert done.handwriting["train"] == second.counts[0]


def test_train_page_teaches_a_finished_run_and_shows_before_and_after(trained_run, runs_dir, reaper):
    run = copy_run(trained_run, runs_dir)
    save_drawn(40)
    train, held_out = teaching.split(drawings.load_drawings()).counts
    app = AppTest.from_file(os.path.join(ROOT, "pages/2_Train.py"), default_timeout=120).run()
    assert not app.exception
    assert any(f"{train} to train on, {held_out} held out" in caption.value for caption in app.caption)
    app.number_input(key="train_teach_repeat").set_value(7)
    app.number_input(key="train_teach_epochs").set_value(1)
    app.run()
    assert any(f"seen 7 times an epoch: {7 * train:,} of the {2000 + 7 * train:,}" in c.value for c in app.caption)
    app.button(key="train_teach").click().run()
    assert not app.exception and not app.error
    reaper.append(run)
    assert wait_state(run) == runs.FINISHED, log_of(run)
    app = AppTest.from_file(os.path.join(ROOT, "pages/2_Train.py"), default_timeout=120).run()
    record = fresh(run).handwriting
    shown = " ".join(str(markdown.value) for markdown in app.markdown)
    assert f"{held_out} held-out drawing{'' if held_out == 1 else 's'}: {100 * record['before']:.1f} % before" in shown
    assert f"{100 * record['after'][-1]['accuracy']:.1f} % after epoch 2" in shown

"""Who may act on a run: the session that started it, or an admin; and how many runs one session may queue."""

from __future__ import annotations

import pytest
from conftest import fresh

from mnist_core import control, runs
from mnist_core.access import Actor
from mnist_core.config import TrainConfig

TINY = TrainConfig.for_architecture("mlp", epochs=1, train_subset=600)
ALICE, BOB, ADMIN = Actor("alice"), Actor("bob"), Actor("teacher", admin=True)


def test_only_the_owner_or_an_admin_may_stop_or_continue_a_run(runs_dir):
    run = control.create_run(TINY, runs_dir, ALICE)
    assert fresh(run).status["owner"] == "alice"
    with pytest.raises(runs.RunError, match="only the browser session that started"):
        control.request_stop(run.run_id, runs_dir, actor=BOB)
    assert fresh(run).state == runs.QUEUED  # the refusal changed nothing
    assert control.request_stop(run.run_id, runs_dir, actor=ALICE).state == runs.STOPPED
    for verb, action in (
        ("continue", lambda: control.continue_run(run.run_id, 1, runs_dir, actor=BOB)),
        ("delete", lambda: control.delete_run(run.run_id, runs_dir, actor=BOB)),
    ):
        with pytest.raises(runs.RunError, match=f"may {verb} it"):
            action()
    control.delete_run(run.run_id, runs_dir, actor=ADMIN)
    assert not run.path.exists()


def test_runs_without_an_owner_are_anyones(runs_dir):
    run = control.create_run(TINY, runs_dir)  # started from the command line
    assert fresh(run).status["owner"] is None
    assert control.request_stop(run.run_id, runs_dir, actor=BOB).state == runs.STOPPED


def test_one_session_may_queue_only_so_many_runs(runs_dir, monkeypatch):
    monkeypatch.setenv("MNIST_MAX_QUEUED_PER_SESSION", "2")
    first = control.create_run(TINY, runs_dir, ALICE)
    control.create_run(TINY, runs_dir, ALICE)
    with pytest.raises(runs.RunError, match="already have 2 runs queued or running"):
        control.create_run(TINY, runs_dir, ALICE)
    assert len(runs.list_runs(runs_dir)) == 2  # nothing was made by the refused call
    control.create_run(TINY, runs_dir, BOB)  # others are not held back
    control.create_run(TINY, runs_dir, ADMIN)  # nor is an admin
    control.request_stop(first.run_id, runs_dir, actor=ALICE)
    control.create_run(TINY, runs_dir, ALICE)  # a stopped run frees a place
    assert len(runs.list_runs(runs_dir)) == 5

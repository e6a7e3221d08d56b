"""Ensembles: the averaged model predicts the mean of its members' probabilities, is a run on every page, and
keeps working when a member is deleted."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import at_once, copy_run
from streamlit.testing.v1 import AppTest

from mnist_core import control, ensembles, evaluate, inside, runs, ui
from mnist_core.data import to_model_input
from mnist_core.models import run_predictor

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def members(runs_dir, trained_run, trained_cnn) -> list[runs.Run]:
    """Return copies of the session's MLP and CNN runs in this test's runs folder."""
    return [copy_run(trained_run, runs_dir), copy_run(trained_cnn, runs_dir)]


def test_an_ensemble_predicts_the_mean_of_its_members_and_survives_their_deletion(members, mnist):
    ensemble = ensembles.make_ensemble([run.run_id for run in members], name="both")
    assert (ensemble.state, ensemble.name, ensemble.architecture_title) == (
        runs.IMPORTED,
        "both",
        "Ensemble of 2 models",
    )
    assert ensemble.imported["members"] == [run.run_id for run in members]
    digits = to_model_input(mnist.x_test[:200])[..., 0]
    alone = [run_predictor(run).probabilities(digits) for run in members]
    together = run_predictor(ensemble).probabilities(digits)
    np.testing.assert_allclose(together, np.mean(alone, axis=0), atol=1e-6)
    rows = ensembles.agreement(ensemble, digits)
    expected = [float((probs.argmax(axis=1) == together.argmax(axis=1)).mean()) for probs in alone]
    assert [row["agreement"] for row in rows] == pytest.approx(expected)
    result = evaluate.evaluate_run(runs.get_run(ensemble.run_id))
    everything = to_model_input(mnist.x_test)[..., 0]
    mean = np.mean([run_predictor(run).probabilities(everything) for run in members], axis=0)
    assert result["accuracy"] == pytest.approx(float((mean.argmax(axis=1) == mnist.y_test).mean()), abs=2e-4)
    board = evaluate.leaderboard(runs.list_runs())
    assert [(row["name"], row["architecture"], row["epochs done"]) for row in board] == [("both", "ensemble of 2", "–")]
    # Every view inside works for the averaging graph too (no convolution at its top level: no Grad-CAM).
    views = inside.inspector(run_predictor(ensemble).model)
    outputs = views.layer_outputs(digits[0])
    np.testing.assert_allclose(outputs[-1].values, together[0], atol=1e-6)
    attributions = views.integrated_gradients(digits[0], int(together[0].argmax()))
    black = run_predictor(ensemble).probabilities(np.zeros((28, 28), np.float32))[int(together[0].argmax())]
    change = float(together[0].max() - black)
    assert abs(attributions.sum() - change) <= 0.01 * abs(change)
    for run in members:
        control.delete_run(run.run_id)
    again = run_predictor(runs.get_run(ensemble.run_id)).probabilities(digits)
    np.testing.assert_allclose(again, together, atol=1e-6)  # the members' weights live in the ensemble's file


def test_ensembles_of_one_run_or_of_a_run_without_a_model_are_refused(members, runs_dir):
    with pytest.raises(runs.RunError, match="an ensemble takes 2 to 8 runs, got 1"):
        ensembles.make_ensemble([members[0].run_id, members[0].run_id])
    untrained = control.create_run(members[0].config)
    with pytest.raises(runs.RunError, match=f"run {untrained.run_id} has no saved model"):
        ensembles.make_ensemble([members[0].run_id, untrained.run_id])
    control.request_stop(untrained.run_id)
    assert [run.run_id for run in runs.list_runs() if run.imported] == []


def test_the_compare_page_makes_an_ensemble_and_evaluate_shows_its_agreement(members):
    app = AppTest.from_file(str(ROOT / "pages/3_Compare.py"), default_timeout=180).run()
    app.multiselect(key="compare_runs").set_value([run.run_id for run in members]).run()
    app.text_input(key="compare_ensemble_name").set_value("pair").run()
    app.button(key="compare_ensemble_make").click().run()
    assert not app.exception, [e.value for e in app.exception]
    (ensemble,) = [run for run in runs.list_runs() if run.imported]
    assert ensemble.name == "pair" and any("Ensemble pair made" in success.value for success in app.success)
    evaluate.evaluate_run(ensemble)
    page = AppTest.from_file(str(ROOT / "pages/4_Evaluate.py"), default_timeout=180)
    page.query_params["run"] = ensemble.run_id
    page.run()
    assert not page.exception, [e.value for e in page.exception]
    agreement = next(frame.value for frame in page.dataframe if "agrees on" in frame.value.columns)
    assert list(agreement["member"]) == [run.name for run in members]
    # The members carry no name of their own (it is their id): the id is not repeated in a second column.
    assert [run.name for run in members] == [run.run_id for run in members] and "run" not in agreement.columns
    assert any("(ensemble of 2 models)" in caption.value for caption in page.caption)
    # Once a member has a name, its id is shown beside it; the unnamed one's id is not said twice.
    control.label_run(members[0].run_id, name="first")
    page.run()
    agreement = next(frame.value for frame in page.dataframe if "agrees on" in frame.value.columns)
    assert list(agreement["member"]) == ["first", members[1].run_id]
    assert list(agreement["run"]) == [members[0].run_id, ""]


def test_agreement_is_with_the_members_copies_inside_the_ensemble(members, mnist):
    """A member continued, damaged or deleted since: its agreement is still that of the model averaged in."""
    ensemble = ensembles.make_ensemble([run.run_id for run in members])
    digits = to_model_input(mnist.x_test[:300])[..., 0]
    as_made = ensembles.agreement(ensemble, digits)
    shutil.copyfile(members[1].model_path("best"), members[0].model_path("best"))  # the MLP's file now a CNN
    damaged = members[1].model_path("best")
    damaged.write_bytes(damaged.read_bytes()[:300])
    assert ensembles.agreement(ensemble, digits) == as_made
    control.delete_run(members[1].run_id)
    assert ensembles.agreement(ensemble, digits) == as_made
    together = run_predictor(ensemble).probabilities(digits).argmax(axis=1)
    copy = run_predictor(members[0]).probabilities(digits).argmax(axis=1)  # the CNN's model, not the MLP's
    assert as_made[0]["agreement"] != pytest.approx(float((copy == together).mean()))


def test_the_agreement_on_my_drawings_follows_the_drawings_not_their_count(members, mnist):
    """Another tab deletes two drawings and saves two others: the same count, and the agreement shown is that on
    the drawings there now."""
    from mnist_core import drawings

    noise = np.random.default_rng(4).random((4, 28, 28)).astype(np.float32)  # where the MLP and CNN differ
    names = [drawings.save_drawing(image, index) for index, image in enumerate(noise)]
    ensemble = ensembles.make_ensemble([run.run_id for run in members])
    page = AppTest.from_file(str(ROOT / "pages/4_Evaluate.py"), default_timeout=180)
    page.query_params["run"] = ensemble.run_id
    page.session_state["evaluate_on"] = "mine"
    page.run()
    assert not page.exception, [e.value for e in page.exception]
    before = next(frame.value for frame in page.dataframe if "agrees on" in frame.value.columns)
    for name in names[:2]:
        drawings.delete_drawing(name)
    for image, label in zip(to_model_input(mnist.x_test[:2])[..., 0], mnist.y_test[:2], strict=True):
        drawings.save_drawing(image, int(label))  # digits both members get right
    page.run()
    shown = next(frame.value for frame in page.dataframe if "agrees on" in frame.value.columns)
    mine = drawings.load_drawings()
    expected = [
        evaluate.percent(row["agreement"]) for row in ensembles.agreement(ensemble, to_model_input(mine.images)[..., 0])
    ]
    assert list(before["agrees on"]) != expected  # the check can fail
    assert list(shown["agrees on"]) == expected


def test_an_ensemble_is_made_once_and_never_of_an_ensemble(members):
    """Two clicks at once on Make the ensemble make one, and the other is told which; an ensemble cannot be a
    member (its members can)."""
    ids = [run.run_id for run in members]
    made_ids, refused = at_once(lambda _: ensembles.make_ensemble(ids, name="pair").run_id, 2, runs.RunError)
    made = [run for run in runs.list_runs() if run.members]
    assert len(made) == 1 and made_ids == [made[0].run_id]
    assert refused == ["an ensemble of these runs exists already: pair (delete it to make it anew)"]
    with pytest.raises(runs.RunError, match="pair is an ensemble already: pick its members instead"):
        ensembles.make_ensemble([made[0].run_id, members[0].run_id])


def test_inside_an_ensemble_points_to_its_members_for_filters_and_grad_cam(members):
    ensemble = ensembles.make_ensemble([run.run_id for run in members])
    page = AppTest.from_file(str(ROOT / "pages/7_Inside.py"), default_timeout=180)
    page.query_params["run"] = ensemble.run_id
    page.run()
    assert not page.exception, [e.value for e in page.exception]
    shown = [info.value for info in page.info]
    assert ui.ENSEMBLE_INSIDE.format(what="filters") in shown
    assert ui.ENSEMBLE_INSIDE.format(what="Grad-CAM") + " Integrated gradients work for any model." in shown
    assert not any("no convolution" in text or "has none" in text for text in shown)

"""AppTest tests of every page: with no runs, with a finished run (a real short training), and widgets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from mnist_core import control, runs, ui
from mnist_core.architectures import build_model
from mnist_core.config import TrainConfig
from mnist_core.data import load_mnist, split, to_model_input
from mnist_core.models import run_predictor
from mnist_core.predict import preprocess_canvas

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 120


@pytest.fixture(scope="module")
def finished_root(tmp_path_factory) -> Path:
    """Return a runs folder holding one finished run: fast_cnn, 1 epoch on 1,800 images."""
    root = tmp_path_factory.mktemp("runs-finished")
    run = control.start_run(TrainConfig.for_architecture("fast_cnn", epochs=1, train_subset=1800), root)
    assert control.wait_for(run, timeout=180) == runs.FINISHED, runs.read_run(run.path).status
    return root


@pytest.fixture
def empty_root(tmp_path, monkeypatch) -> Path:
    """Point the pages at an empty runs folder."""
    monkeypatch.setenv("MNIST_RUNS_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def with_run(finished_root, monkeypatch) -> runs.Run:
    """Point the pages at the folder with the finished run; return that run."""
    monkeypatch.setenv("MNIST_RUNS_DIR", str(finished_root))
    return runs.list_runs(finished_root)[0]


def page(path: str) -> AppTest:
    """Return the page at `path` after its first run, checked to have raised nothing."""
    app = AppTest.from_file(str(ROOT / path), default_timeout=TIMEOUT).run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def texts(elements) -> list[str]:
    """Return the text values of a list of AppTest elements."""
    return [str(element.value) for element in elements]


def highlighted_cell(app: AppTest) -> tuple[int, int] | None:
    """Return the (true, predicted) cell boxed on the Evaluate page's confusion matrix, None when none is."""
    import json

    shapes = json.loads(app.get("plotly_chart")[0].proto.spec)["layout"].get("shapes", [])
    if not shapes:
        return None
    return round(shapes[0]["y0"] + 0.5), round(shapes[0]["x0"] + 0.5)


def metric(app: AppTest, label: str) -> str:
    """Return the value of the metric labelled `label`."""
    return next(m.value for m in app.metric if m.label == label)


# Home


def test_home_without_runs_shows_data_and_what_to_do(empty_root):
    app = page("dashboard.py")
    assert metric(app, "Training images") == "54,000"
    assert metric(app, "Validation images") == "6,000"
    assert metric(app, "Test images") == "10,000"
    assert any("No runs yet" in text for text in texts(app.info))


def test_home_counts_runs_by_state(with_run):
    app = page("dashboard.py")
    assert metric(app, ":material/check_circle: finished") == "1"
    assert metric(app, ":material/directions_run: running") == "0"
    assert not any("No runs yet" in text for text in texts(app.info))


def test_home_explains_a_missing_data_folder(empty_root, monkeypatch, tmp_path):
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path / "nowhere"))
    ui.dataset.clear()
    try:
        app = page("dashboard.py")
        errors = texts(app.error)
        assert errors and "MNIST could not be loaded" in errors[0] and "nowhere" in errors[0]
        assert any("MNIST_DATA_DIR" in text for text in texts(app.info))
    finally:
        ui.dataset.clear()


# Dataset


def test_dataset_filters_by_split_and_label(empty_root):
    parts = split(load_mnist())
    app = page("pages/1_Dataset.py")
    assert f"{len(parts.y_train):,} train images" in app.caption[0].value
    app.selectbox(key="dataset_label").set_value(3).run()
    assert f"{int((parts.y_train == 3).sum()):,} train images of digit 3" in app.caption[0].value
    app.segmented_control(key="dataset_split").set_value("validation").run()
    assert not app.exception
    assert f"{int((parts.y_val == 3).sum()):,} validation images of digit 3" in app.caption[0].value


def test_dataset_pages_and_chooses_a_digit(empty_root):
    mnist = load_mnist()
    app = page("pages/1_Dataset.py")
    app.segmented_control(key="dataset_split").set_value("test").run()
    page_input = next(n for n in app.number_input if n.key.startswith("dataset_page_"))
    page_input.set_value(2).run()
    choice = next(s for s in app.selectbox if s.key.startswith("dataset_choice_"))
    # Page 2 of 24 per page starts at test image #24.
    assert choice.value == 24
    assert metric(app, "Label") == str(int(mnist.y_test[24]))


# Train


def test_train_without_runs_invites_a_first_run(empty_root):
    app = page("pages/2_Train.py")
    assert any("No runs yet" in text for text in texts(app.info))
    assert app.number_input(key="train_epochs_mlp").value == 100  # the walkthrough's published default


def test_train_preset_fills_its_defaults(empty_root):
    app = page("pages/2_Train.py")
    app.radio(key="train_start_from").set_value("Quick 99 %").run()
    assert app.number_input(key="train_epochs_fast_cnn").value == 2
    assert app.selectbox(key="train_optimizer_fast_cnn").value == "adam"


def test_train_robust_preset_previews_its_augmentation(empty_root):
    app = page("pages/2_Train.py")
    app.radio(key="train_start_from").set_value("Robust to drawings").run()
    assert app.selectbox(key="train_augmentation_robust_cnn").value == "drawn"
    assert len(app.get("image")) == 1 and "ways training might see it" in " ".join(texts(app.caption))
    app.button(key="train_preview_robust_cnn_again").click().run()  # new examples, no error
    assert not app.exception and len(app.get("image")) == 1
    app.selectbox(key="train_augmentation_robust_cnn").set_value("none").run()
    assert app.get("image") == []  # nothing to preview


def test_train_best_preset_trains_on_all_digits_with_label_smoothing(empty_root):
    """The Best preset's form starts as its recipe is written: 20 epochs, 'varied' digits, label smoothing 0.1,
    nothing held out; a short run of it keeps those settings and shows them."""
    app = page("pages/2_Train.py")
    app.radio(key="train_start_from").set_value("Best 99.7 %").run()
    assert app.number_input(key="train_epochs_best_cnn").value == 20
    assert app.selectbox(key="train_augmentation_best_cnn").value == "varied"
    assert app.number_input(key="train_label_smoothing_best_cnn").value == 0.1
    assert app.toggle(key="train_validation_best_cnn").value is False
    app.number_input(key="train_epochs_best_cnn").set_value(1).run()
    app.number_input(key="train_subset_best_cnn_all").set_value(600).run()
    app.button(key="train_start").click().run()
    (run,) = runs.list_runs(empty_root)
    assert (run.config.label_smoothing, run.config.validation, run.config.train_size) == (0.1, False, 600)
    assert control.wait_for(run, timeout=120) == runs.FINISHED
    app.run()
    assert any("label smoothing 0.1 · 600 training images · no validation" in text for text in texts(app.caption))


def test_train_rejects_an_impossible_learning_rate(empty_root):
    app = page("pages/2_Train.py")
    app.number_input(key="train_lr_mlp").set_value(0.0).run()
    app.button(key="train_start").click().run()
    assert any("learning_rate" in text for text in texts(app.error))
    assert runs.list_runs(empty_root) == []


def test_train_starts_a_run_from_the_form(empty_root):
    app = page("pages/2_Train.py")
    app.selectbox(key="train_architecture").set_value("mlp").run()
    app.number_input(key="train_epochs_mlp").set_value(1).run()
    app.number_input(key="train_subset_mlp").set_value(1000).run()
    app.button(key="train_start").click().run()
    started = runs.list_runs(empty_root)
    assert len(started) == 1 and started[0].config.train_size == 1000
    assert control.wait_for(started[0], timeout=120) == runs.FINISHED


def test_train_shows_a_finished_run(with_run):
    app = page("pages/2_Train.py")
    best = max(row["val_accuracy"] for row in with_run.epochs)
    assert metric(app, "Best val accuracy") == f"{100 * best:.2f} %"
    assert metric(app, "Epochs done") == "1 / 1"
    assert app.button(key="train_continue") is not None
    assert len(app.get("plotly_chart")) >= 2


# Compare


def test_compare_without_runs_shows_published_curves(empty_root):
    app = page("pages/3_Compare.py")
    assert any("published curves" in text for text in texts(app.info))
    assert len(app.get("plotly_chart")) == 2


def test_compare_layout_and_table(with_run):
    app = page("pages/3_Compare.py")
    assert app.multiselect(key="compare_runs").value == [with_run.run_id]
    assert len(app.get("plotly_chart")) == 2
    app.segmented_control(key="compare_layout").set_value("Side by side").run()
    assert len(app.get("plotly_chart")) == 1
    app.multiselect(key="compare_published").set_value(["mlp", "cnn"]).run()
    table = app.dataframe[0].value
    assert list(table["name"]) == [with_run.run_id, "published mlp (GPU)", "published cnn (GPU)"]
    built = build_model("fast_cnn").count_params()
    assert list(table["parameters"]) == [built, 235_146, 1_419_210]  # mlp and cnn: the published table
    assert list(table["test accuracy"]) == ["–", "86.46 %", "97.39 %"]  # not evaluated: a dash, not 'None'
    # The published curves are cut at the run's last epoch unless asked for in full.
    accuracy = json.loads(app.get("plotly_chart")[0].proto.spec)
    published = [trace for trace in accuracy["data"] if str(trace.get("name", "")).startswith("published mlp")]
    assert published and all(len(trace["x"]) == len(with_run.epochs) for trace in published)
    app.toggle(key="compare_clip").set_value(False).run()
    accuracy = json.loads(app.get("plotly_chart")[0].proto.spec)
    published = [trace for trace in accuracy["data"] if str(trace.get("name", "")).startswith("published mlp")]
    assert all(len(trace["x"]) == 100 for trace in published)


# Evaluate


def test_evaluate_without_runs_says_what_to_do(empty_root):
    app = page("pages/4_Evaluate.py")
    assert any("No trained models yet" in text for text in texts(app.info))


def test_evaluate_scores_the_run_and_filters_mistakes(with_run):
    mnist = load_mnist()
    probs = run_predictor(with_run).model.predict(to_model_input(mnist.x_test), verbose=0)
    predicted = probs.argmax(axis=1)
    accuracy = float((predicted == mnist.y_test).mean())
    app = page("pages/4_Evaluate.py")
    app.button(key="evaluate_start").click().run()
    assert not app.exception
    assert metric(app, "Test accuracy") == f"{100 * accuracy:.2f} %"
    wrong = predicted != mnist.y_test
    assert metric(app, "Misclassified") == f"{int(wrong.sum()):,}"
    app.selectbox(key="evaluate_true").set_value(7).run()
    count = int((wrong & (mnist.y_test == 7)).sum())
    assert any(text.startswith(f"{count:,} mistakes") for text in texts(app.caption))

    # The boxed cell of the matrix is always the one the dropdowns show.
    app.selectbox(key="evaluate_predicted").set_value(5).run()
    assert highlighted_cell(app) == (7, 5)
    app.selectbox(key="evaluate_true").set_value(3).run()
    assert highlighted_cell(app) == (3, 5)
    app.selectbox(key="evaluate_predicted").set_value(3).run()
    right = int(((predicted == mnist.y_test) & (mnist.y_test == 3)).sum())
    assert any(text.startswith(f"{right:,} 3s classified correctly") for text in texts(app.caption))
    app.selectbox(key="evaluate_true").set_value("any").run()
    assert highlighted_cell(app) is None


# Draw


def test_draw_without_runs_says_what_to_do(empty_root):
    app = page("pages/5_Draw.py")
    assert any("No trained models yet" in text for text in texts(app.info))


def test_draw_blank_canvas_then_a_test_digit(with_run):
    app = page("pages/5_Draw.py")
    assert any("canvas is blank" in text for text in texts(app.info))
    assert not [m for m in app.metric if m.label == "Prediction"]
    app.button(key="draw_sample_button").click().run()
    assert not app.exception
    index = app.session_state["draw_sample"]
    image = preprocess_canvas(load_mnist().x_test[index]).image
    expected = run_predictor(with_run).model.predict(image[None, ..., None], verbose=0)[0]
    assert metric(app, "Prediction") == str(int(np.argmax(expected)))
    app.button(key="draw_clear").click().run()
    assert any("canvas is blank" in text for text in texts(app.info))


def test_draw_reports_a_corrupt_model_file(finished_root, tmp_path, monkeypatch):
    import shutil

    source = runs.list_runs(finished_root)[0]
    broken = tmp_path / source.run_id
    shutil.copytree(source.path, broken)
    for name in ("best.keras", "final.keras"):
        (broken / name).write_bytes(b"not a zip file at all")
    monkeypatch.setenv("MNIST_RUNS_DIR", str(tmp_path))
    app = page("pages/5_Draw.py")
    app.button(key="draw_sample_button").click().run()
    assert not app.exception
    assert any("cannot be loaded" in text and "best.keras" in text for text in texts(app.error))


def test_pages_show_a_run_with_a_damaged_config_as_damaged(finished_root, tmp_path, monkeypatch):
    import shutil

    source = runs.list_runs(finished_root)[0]
    shutil.copytree(source.path, tmp_path / source.run_id)
    damaged = tmp_path / "20990101-000000-cnn-dead"
    damaged.mkdir()
    (damaged / "config.json").write_text('{"epochs": -3}')
    monkeypatch.setenv("MNIST_RUNS_DIR", str(tmp_path))
    for path in ("dashboard.py", "pages/2_Train.py", "pages/3_Compare.py"):
        app = page(path)
        assert not app.exception
    listed = {run.run_id: run.state for run in runs.list_runs(tmp_path)}
    assert listed == {source.run_id: runs.FINISHED, damaged.name: runs.DAMAGED}


def test_page_runs_leave_keras_alone(with_run, monkeypatch):
    """Streamlit would reset Keras after every page run (200 ms of CPU each): the studio's pages must not."""
    import keras

    calls = []
    monkeypatch.setattr(keras.backend, "clear_session", lambda *args, **kwargs: calls.append(args))
    page("pages/2_Train.py")
    page("dashboard.py")
    assert calls == []

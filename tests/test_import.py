"""Bringing in a model trained elsewhere: what is taken (and predicts as the original did), what is refused
with a one-line reason and nothing left behind, and what an imported run can and cannot do."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

from mnist_core import compare, control, evaluate, export, imported, models, runfiles, runs
from mnist_core.architectures import ARCHITECTURES, build_model
from mnist_core.data import to_model_input
from mnist_core.tfimport import import_keras

keras = import_keras()
layers = keras.layers
ROOT = Path(__file__).resolve().parents[1]


def small_model(input_shape=(28, 28, 1), classes=10, softmax=True):
    """Return a tiny untrained Sequential model: Flatten, Dense(classes) (softmax unless told not)."""
    return keras.Sequential(
        [
            keras.Input(input_shape),
            layers.Flatten(),
            layers.Dense(classes, activation="softmax" if softmax else None),
        ]
    )


def saved(model, path):
    """Save `model` to `path` and return the path."""
    model.save(path)
    return path


def left_in(root) -> list[str]:
    """Return what a runs folder holds besides its lock file."""
    return sorted(entry.name for entry in root.iterdir() if entry.name != runfiles.ROOT_LOCK) if root.exists() else []


@pytest.fixture(scope="module")
def digits(mnist):
    """Return 50 test digits as model input (50, 28, 28, 1)."""
    return to_model_input(mnist.x_test[:50])


def test_a_keras_model_becomes_an_imported_run_that_predicts_as_the_original(runs_dir, tmp_path, digits):
    model = small_model()
    path = saved(model, tmp_path / "from-the-notebook.keras")
    run = imported.import_file(path)
    assert run.state == runs.IMPORTED and not run.damaged and run.has_model
    assert run.config is None and run.epochs == () and run.name == "from-the-notebook"
    assert run.architecture is None and run.architecture_title == "Imported model"
    assert run.parameters == 28 * 28 * 10 + 10  # Dense(10) on 784 pixels: weights and biases
    assert run.imported["source"] == "from-the-notebook.keras" and run.imported["format"] == "keras model"
    assert run.imported["bytes"] == path.stat().st_size
    expected = keras.ops.convert_to_numpy(model(digits, training=False))
    np.testing.assert_allclose(models.run_predictor(run).probabilities(digits), expected, atol=1e-6)
    assert [listed.run_id for listed in runs.list_runs()] == [run.run_id]
    assert not any(name.startswith(runfiles.CREATING_PREFIX) for name in left_in(runs_dir))


def test_the_walkthrough_mlp_input_28x28_is_taken_behind_a_reshape(runs_dir, tmp_path, digits):
    model = small_model(input_shape=(28, 28))  # the walkthrough's MLP takes (28, 28) images
    run = imported.import_file(saved(model, tmp_path / "mlp.keras"), name="walkthrough MLP")
    assert run.imported["input_shape"] == [28, 28] and run.name == "walkthrough MLP"
    expected = keras.ops.convert_to_numpy(model(digits[..., 0], training=False))
    np.testing.assert_allclose(models.run_predictor(run).probabilities(digits), expected, atol=1e-6)


def test_a_weights_file_is_matched_to_its_architecture(runs_dir, tmp_path, digits):
    model = build_model("fast_cnn")
    model.save_weights(tmp_path / "quick.weights.h5")
    run = imported.import_file(tmp_path / "quick.weights.h5")
    assert (run.architecture, run.imported["format"], run.name) == ("fast_cnn", "weights", "quick")
    assert run.parameters == model.count_params()
    expected = keras.ops.convert_to_numpy(model(digits, training=False))
    np.testing.assert_allclose(models.run_predictor(run).probabilities(digits), expected, atol=1e-6)
    # Named, the architecture must fit: the weights of one are refused for another.
    with pytest.raises(imported.ImportRefused, match="do not fit the cnn architecture"):
        imported.import_file(tmp_path / "quick.weights.h5", architecture="cnn")


def test_a_tf_keras_2_weights_file_is_taken_too(runs_dir, tmp_path, digits):
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    model = build_model("mlp")
    with h5py.File(tmp_path / "notebook.h5", "w") as handle:  # what model.save_weights("x.h5") wrote in TF 2
        legacy_h5_format.save_weights_to_hdf5_group(handle, model)
    run = imported.import_file(tmp_path / "notebook.h5")
    assert run.architecture == "mlp"
    expected = keras.ops.convert_to_numpy(model(digits, training=False))
    np.testing.assert_allclose(models.run_predictor(run).probabilities(digits), expected, atol=1e-6)


def test_a_lambda_model_is_refused_and_its_code_never_runs(runs_dir, tmp_path):
    marker = tmp_path / "marker"
    code = f"lambda x: (open({str(marker)!r}, 'w').write('ran'), x)[1]"
    model = keras.Sequential([keras.Input((28, 28, 1)), layers.Lambda(eval(code)), layers.Flatten(), layers.Dense(10)])
    path = saved(model, tmp_path / "lambda.keras")
    marker.unlink(missing_ok=True)  # building the model above ran it once
    # The file is a real threat: loaded without safe mode, it writes the marker.
    keras.models.load_model(path, safe_mode=False)
    assert marker.exists()
    marker.unlink()

    with pytest.raises(imported.ImportRefused, match="Lambda layer") as caught:
        imported.import_file(path)
    assert "\n" not in str(caught.value)
    with pytest.raises(imported.ImportRefused, match="Lambda layer"):
        imported.import_bytes(path.read_bytes(), "lambda.keras")
    assert not marker.exists()
    assert left_in(runs_dir) == []


def test_custom_objects_are_refused(runs_dir, tmp_path):
    @keras.saving.register_keras_serializable(package="elsewhere")
    class Doubled(layers.Layer):
        def call(self, x):
            return 2 * x

    model = keras.Sequential([keras.Input((28, 28, 1)), Doubled(), layers.Flatten(), layers.Dense(10, "softmax")])
    path = saved(model, tmp_path / "custom.keras")
    with pytest.raises(imported.ImportRefused, match=r"custom objects \(elsewhere>Doubled\)"):
        imported.import_file(path)
    assert left_in(runs_dir) == []


def test_every_architecture_saved_by_keras_passes_the_inspection(tmp_path):
    """The refusal of foreign objects must not catch Keras's own (optimizer and loss included)."""
    for key in ARCHITECTURES:
        model = build_model(key)
        model.compile(optimizer="adamw", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        path = saved(model, tmp_path / f"{key}.keras")
        config = imported._keras_config(path)
        assert imported.foreign_objects(config) == (False, set()), key
        assert imported.oversized_layer(config) is None, key


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("legacy_h5_model", "legacy .h5 full model"),
        ("input_32x32", "takes input 32x32x1, not 28x28"),
        ("output_5", "gives output 5, not the 10 digit classes"),
        ("logits", "not probabilities"),
        ("truncated", "damaged or truncated"),
        ("not_a_model", "neither a .keras model nor a .weights.h5"),
        ("zip_not_keras", "a zip but not a Keras model"),
        ("empty", "the file is empty"),
        ("weights_of_nothing", "do not fit any of the architectures"),
    ],
)
def test_each_kind_of_bad_file_is_refused_in_one_line_leaving_nothing(runs_dir, tmp_path, kind, reason):
    path = tmp_path / "model.keras"
    if kind == "legacy_h5_model":
        path = tmp_path / "model.h5"
        small_model().save(path)
    elif kind == "input_32x32":
        saved(small_model(input_shape=(32, 32, 1)), path)
    elif kind == "output_5":
        saved(small_model(classes=5), path)
    elif kind == "logits":
        saved(small_model(softmax=False), path)
    elif kind == "truncated":
        data = saved(small_model(), path).read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "not_a_model":
        path.write_bytes(b"#!/bin/sh\necho this is not a model\n")
    elif kind == "zip_not_keras":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("notes.txt", "hello")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "weights_of_nothing":
        path = tmp_path / "model.weights.h5"
        small_model().save_weights(path)
    with pytest.raises(imported.ImportRefused, match=reason) as caught:
        imported.import_file(path)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 240
    assert left_in(runs_dir) == []
    assert runs.list_runs() == []


def test_a_file_over_the_size_limit_is_refused_unread(runs_dir, tmp_path):
    path = tmp_path / "huge.keras"
    with open(path, "wb") as handle:  # sparse: no disk used
        handle.write(imported.ZIP_MAGIC)
        handle.truncate(imported.MAX_IMPORT_BYTES + 1)
    with pytest.raises(imported.ImportRefused, match="over the 50 MB limit"):
        imported.import_file(path)
    with pytest.raises(imported.ImportRefused, match="over the 50 MB limit"):
        imported.import_bytes(b"\0" * (imported.MAX_IMPORT_BYTES + 1), "huge.keras")
    assert left_in(runs_dir) == []


def test_an_uploaded_name_never_chooses_a_path(runs_dir, tmp_path):
    data = saved(small_model(), tmp_path / "m.keras").read_bytes()
    run = imported.import_bytes(data, "../../outside/evil\n.keras")
    assert run.path.parent == runs_dir and runfiles.RUN_ID_PATTERN.match(run.run_id)
    assert (run.imported["source"], run.name) == ("evil .keras", "evil")
    assert not (runs_dir.parent / "outside").exists() and not (tmp_path.parent / "outside").exists()
    assert sorted(p.name for p in run.path.iterdir()) == sorted(
        [runfiles.BEST_MODEL, runfiles.IMPORTED, runfiles.LABELS, runfiles.STATUS]
    )


def test_an_imported_run_is_evaluated_ranked_compared_labelled_exported_and_deleted(runs_dir, tmp_path, mnist):
    model = small_model()
    run = imported.import_file(saved(model, tmp_path / "outside.keras"))
    result = evaluate.evaluate_run(run)
    expected = np.asarray(model.predict(to_model_input(mnist.x_test), verbose=0)).argmax(axis=1)
    assert result["accuracy"] == pytest.approx(float((expected == mnist.y_test).mean()))
    run = runs.get_run(run.run_id)
    assert evaluate.stored_evaluation(run) is not None
    board = evaluate.leaderboard(runs.list_runs())
    assert [(row["rank"], row["name"], row["architecture"]) for row in board] == [(1, "outside", "imported")]
    row = compare.comparison_rows([run], [])[0]
    assert (row["architecture"], row["parameters"]) == ("imported", 7850)

    with pytest.raises(runs.RunError, match="was imported"):
        control.continue_run(run.run_id, 1)
    labelled = control.label_run(run.run_id, name="their best", tags=["external"])
    assert (labelled.name, labelled.tags, labelled.state) == ("their best", ("external",), runs.IMPORTED)
    written = export.export_run(labelled, tmp_path / "out")
    with zipfile.ZipFile(written[0]) as archive:
        assert f"{run.run_id}/{runfiles.IMPORTED}" in archive.namelist()
        assert f"{run.run_id}/{runfiles.BEST_MODEL}" in archive.namelist()
    entry = control.delete_run(run.run_id)
    assert runs.list_runs() == []
    assert control.restore_run(entry).state == runs.IMPORTED


def test_cli_import_takes_a_model_and_refuses_another_in_one_line(runs_dir, tmp_path):
    good = saved(small_model(), tmp_path / "good.keras")
    result = run_cli("import", str(good), "--name", "from colab", runs_root=runs_dir, timeout=120)
    assert result.returncode == 0, result.stderr
    (run,) = runs.list_runs(runs_dir)
    assert (run.state, run.name) == (runs.IMPORTED, "from colab")
    assert f"run {run.run_id}: imported good.keras" in result.stdout
    listing = run_cli("runs", runs_root=runs_dir, timeout=120)
    assert run.run_id in listing.stdout and "imported" in listing.stdout and "from colab" in listing.stdout

    bad = saved(small_model(classes=5), tmp_path / "bad.keras")
    result = run_cli("import", str(bad), runs_root=runs_dir, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    reason = "error: cannot import bad.keras: gives output 5, not the 10 digit classes"
    assert result.stderr.strip().splitlines() == [reason]
    assert len(runs.list_runs(runs_dir)) == 1


def test_an_import_killed_half_way_leaves_no_run_and_is_swept_later(runs_dir, tmp_path):
    """A staging folder left by a killed import is hidden (no run); the next import removes it once it is old."""
    stale, recent = (runs_dir / f"{runfiles.CREATING_PREFIX}import-{name}" for name in ("dead0001", "busy0002"))
    for staging in (stale, recent):
        staging.mkdir(parents=True)
        (staging / imported.STAGED_KERAS).write_bytes(os.urandom(1000))
    old = imported.STALE_STAGING_SECONDS + 60
    os.utime(stale, (os.path.getmtime(stale) - old, os.path.getmtime(stale) - old))
    assert runs.list_runs() == []
    run = imported.import_file(saved(small_model(), tmp_path / "m.keras"))
    assert [listed.run_id for listed in runs.list_runs()] == [run.run_id]
    assert not stale.exists() and recent.exists()  # one that may still be under way is left alone


def test_every_page_takes_an_imported_run_beside_one_trained_here(runs_dir, tmp_path, trained_run, monkeypatch):
    from conftest import copy_run
    from streamlit.testing.v1 import AppTest

    root = runs_dir
    copy_run(trained_run, root)
    outside = imported.import_file(saved(small_model(), tmp_path / "outside.keras"), name="from outside")
    evaluate.evaluate_run(outside)

    def page(path: str, run_id: str | None = None) -> AppTest:
        app = AppTest.from_file(str(ROOT / path), default_timeout=120)
        if run_id:
            app.query_params["run"] = run_id
        app.run()
        assert not app.exception, (path, [e.value for e in app.exception])
        return app

    home = page("dashboard.py")
    assert any(metric.label.endswith("imported") and metric.value == "1" for metric in home.metric)
    train = page("pages/2_Train.py", outside.run_id)
    assert any("imported · Imported model · from outside" in md.value for md in train.markdown)
    assert any("From outside.keras (keras model) · 7,850 parameters" in c.value for c in train.caption)
    compare_page = page("pages/3_Compare.py")
    compare_page.multiselect(key="compare_runs").set_value([outside.run_id]).run()
    assert not compare_page.exception
    table = compare_page.dataframe[0].value
    assert list(table["name"]) == ["from outside"] and list(table["architecture"]) == ["imported"]
    evaluate_page = page("pages/4_Evaluate.py", outside.run_id)
    board = evaluate_page.dataframe[0].value
    assert list(board["name"]) == ["from outside"] and list(board["rank"]) == [1]
    assert any("(imported model), evaluated" in c.value for c in evaluate_page.caption)
    draw = page("pages/5_Draw.py")
    draw.button(key="draw_sample_button").click().run()
    assert not draw.exception
    assert any("Imported model" in md.value for md in draw.markdown)


def test_an_unbuilt_model_a_function_gadget_and_a_memory_bomb_are_refused_in_one_line(runs_dir, tmp_path):
    unbuilt = keras.Sequential([layers.Flatten(), layers.Dense(10, activation="softmax")])  # no input yet
    unbuilt.save(tmp_path / "unbuilt.keras")
    with pytest.raises(imported.ImportRefused) as caught:
        imported.import_file(tmp_path / "unbuilt.keras")
    assert "\n" not in str(caught.value) and str(caught.value).startswith("cannot import unbuilt.keras: ")
    # A function named by the config (here one that would build a layer from a SavedModel) is never looked up.
    path = saved(small_model(), tmp_path / "plain.keras")
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    gadget = {"module": "keras.layers", "class_name": "function", "config": "TFSMLayer", "registered_name": "function"}
    config["config"]["layers"][-1]["config"]["activation"] = gadget
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "gadget.keras", "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    with pytest.raises(imported.ImportRefused, match=r"custom objects \(function TFSMLayer\)"):
        imported.import_file(tmp_path / "gadget.keras")
    # A few bytes of JSON asking for a 5,000,000-unit layer (20 GB to build) are refused before Keras builds it.
    config = json.loads(files["config.json"])
    config["config"]["layers"][-1]["config"]["units"] = 5_000_000
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "huge.keras", "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    with pytest.raises(imported.ImportRefused, match="declares units 5000000, more than the 8,192"):
        imported.import_file(tmp_path / "huge.keras")
    assert left_in(runs_dir) == []


def test_one_session_keeps_a_bounded_number_of_imported_models(runs_dir, tmp_path, monkeypatch):
    from mnist_core.access import Actor

    monkeypatch.setenv("MNIST_MAX_IMPORTS_PER_SESSION", "2")
    data = saved(small_model(), tmp_path / "m.keras").read_bytes()
    student, other = Actor("student-1"), Actor("student-2")
    first = imported.import_bytes(data, "a.keras", actor=student)
    imported.import_bytes(data, "b.keras", actor=student)
    with pytest.raises(imported.ImportRefused, match="this session keeps 2 imported models, the most one may"):
        imported.import_bytes(data, "c.keras", actor=student)
    assert len(runs.list_runs()) == 2 and not any(p.name.startswith(".creating") for p in runs_dir.iterdir())
    imported.import_bytes(data, "d.keras", actor=other)  # another session has its own share
    imported.import_bytes(data, "e.keras", actor=Actor("teacher", admin=True))  # the admin has none
    control.delete_run(first.run_id)
    imported.import_bytes(data, "c.keras", actor=student)  # room again once one is deleted
    assert len(runs.list_runs()) == 4

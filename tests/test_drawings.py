"""Your own drawings on disk: saved, read back as they were, deleted and restored, and every bad input."""

from __future__ import annotations

import csv
import threading

import numpy as np
import pytest
from PIL import Image

from mnist_core import drawings


def digit(seed: int) -> np.ndarray:
    """Return a made-up (28, 28) drawing in [0, 1]: a bright bar somewhere in the middle."""
    image = np.zeros((28, 28), np.float32)
    column = 8 + seed % 12
    image[4:24, column : column + 3] = 0.5 + (seed % 5) / 10
    return image


def test_a_saved_drawing_reads_back_as_it_was_saved(tmp_path):
    raw = np.zeros((280, 280, 4), np.uint8)
    raw[40:240, 130:150] = 255
    name = drawings.save_drawing(digit(3), 7, raw, tmp_path)
    loaded = drawings.load_drawings(tmp_path)
    assert loaded.names == (name,) and loaded.labels.tolist() == [7] and loaded.problems == ()
    expected = np.clip(np.rint(digit(3) * 255), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(loaded.images[0], expected)
    # Plain files other tools read: the PNG and the CSV, read here without the studio's code.
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / name)), expected)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / drawings.RAW / name)), raw)
    with open(tmp_path / drawings.LABELS, newline="") as handle:
        assert [(row["file"], row["label"]) for row in csv.DictReader(handle)] == [(name, "7")]
    assert drawings.counts(loaded) == [0] * 7 + [1] + [0] * 2


@pytest.mark.parametrize(
    ("label", "image", "reason"),
    [
        (10, digit(1), "label 10: choose the digit 0-9"),
        (-1, digit(1), "label -1"),
        ("7", digit(1), "label '7'"),
        (True, digit(1), "label True"),
        (3, np.zeros((28, 28)), "the canvas is blank"),
        (3, np.full((28, 28), np.nan), "the canvas is blank"),
        (3, np.ones((20, 20)), "a drawing is 28x28, not 20x20"),
    ],
)
def test_bad_drawings_are_refused_in_one_line_and_nothing_is_written(tmp_path, label, image, reason):
    with pytest.raises(drawings.DrawingError, match=reason) as caught:
        drawings.save_drawing(image, label, root=tmp_path)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / drawings.LABELS).exists() and not list(tmp_path.glob("*.png"))


def test_the_drawing_saved_last_is_not_saved_again_under_any_label(tmp_path):
    first = drawings.save_drawing(digit(1), 1, root=tmp_path)
    for label in (7, 1):  # a second label for the same strokes, then the same click twice
        with pytest.raises(drawings.DrawingError, match="already saved, as a 1") as caught:
            drawings.save_drawing(digit(1), label, root=tmp_path)
        assert "\n" not in str(caught.value)
    loaded = drawings.load_drawings(tmp_path)
    assert loaded.names == (first,) and loaded.labels.tolist() == [1]
    assert sorted(path.name for path in tmp_path.glob("*.png")) == [first]
    second = drawings.save_drawing(digit(2), 7, root=tmp_path)  # the next drawing saves as usual
    assert drawings.load_drawings(tmp_path).names == (first, second)


def test_a_damaged_row_or_image_leaves_that_drawing_out_and_keeps_the_rest(tmp_path):
    names = [drawings.save_drawing(digit(i), i, root=tmp_path) for i in range(4)]
    text = (tmp_path / drawings.LABELS).read_text().splitlines()
    text[2] = text[2].replace(",1,", ",eleven,")  # the second drawing's label
    (tmp_path / drawings.LABELS).write_text("\n".join(text) + "\n")
    (tmp_path / names[2]).write_bytes(b"\x89PNG truncated")  # the third drawing's image
    loaded = drawings.load_drawings(tmp_path)
    assert loaded.names == (names[0], names[3]) and loaded.labels.tolist() == [0, 3]
    assert len(loaded.problems) == 2
    assert "label 'eleven' is not a digit 0-9" in loaded.problems[0] and names[2] in loaded.problems[1]
    (tmp_path / drawings.LABELS).write_text("nonsense\n")
    broken = drawings.load_drawings(tmp_path)
    assert len(broken) == 0 and "the header is not file,label,saved" in broken.problems[0]


def test_delete_and_undo_bring_the_drawing_back_whole(tmp_path):
    kept = drawings.save_drawing(digit(1), 1, np.full((280, 280, 4), 9, np.uint8), tmp_path)
    gone = drawings.save_drawing(digit(2), 2, np.full((280, 280, 4), 7, np.uint8), tmp_path)
    before = {path.name: path.read_bytes() for path in tmp_path.rglob("*.png")}
    entry = drawings.delete_drawing(gone, tmp_path)
    assert drawings.load_drawings(tmp_path).names == (kept,)
    assert not (tmp_path / gone).exists() and not (tmp_path / drawings.RAW / gone).exists()
    with pytest.raises(drawings.DrawingError, match="no drawing"):
        drawings.delete_drawing(gone, tmp_path)
    assert drawings.restore_drawing(entry, tmp_path) == gone
    restored = drawings.load_drawings(tmp_path)
    labels = dict(zip(restored.names, restored.labels.tolist(), strict=True))
    assert labels == {kept: 1, gone: 2}
    assert {path.name: path.read_bytes() for path in tmp_path.rglob("*.png") if ".trash" not in path.parts} == before
    with pytest.raises(drawings.DrawingError, match="no deleted drawing"):
        drawings.restore_drawing("../../etc", tmp_path)


def test_two_tabs_saving_at_once_lose_nothing(tmp_path):
    barrier, names = threading.Barrier(8), []

    def save(seed: int) -> None:
        barrier.wait()
        names.append(drawings.save_drawing(digit(seed), seed % 10, root=tmp_path))

    threads = [threading.Thread(target=save, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    loaded = drawings.load_drawings(tmp_path)
    assert sorted(loaded.names) == sorted(names) and len(set(names)) == 8
    assert sorted(loaded.labels.tolist()) == list(range(8)) and loaded.problems == ()


def test_the_evaluate_page_scores_a_model_on_my_drawings_and_ranks_it(runs_dir, trained_run, mnist):
    from pathlib import Path

    from conftest import copy_run
    from streamlit.testing.v1 import AppTest

    from mnist_core.data import to_model_input
    from mnist_core.tfimport import import_keras

    run = copy_run(trained_run, runs_dir)
    images, labels = mnist.x_test[100:130], mnist.y_test[100:130]
    for image, label in zip(images, labels, strict=True):  # test digits, saved as if drawn
        drawings.save_drawing(to_model_input(image[None])[0, :, :, 0], int(label))
    keras = import_keras()
    model = keras.models.load_model(run.model_path("best"), safe_mode=True, compile=False)
    predicted = model.predict(to_model_input(images), verbose=0).argmax(axis=1)  # Keras's own path
    expected = float((predicted == labels).mean())

    app = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "pages/4_Evaluate.py"), default_timeout=120)
    app.run()
    app.segmented_control(key="evaluate_on").set_value("mine").run()
    assert not app.exception, [e.value for e in app.exception]
    shown = next(metric for metric in app.metric if metric.label == "Accuracy on my drawings")
    assert shown.value == f"{100 * expected:.2f} %"
    assert any(f"Scored on your {len(images)} drawings" in caption.value for caption in app.caption)
    board = app.dataframe[0].value
    assert list(board["my drawings accuracy"]) == [f"{100 * expected:.2f} %"]
    # Not scored on the test set: its test scores read "–"; no run was taught drawings, so no column says so.
    assert (list(board["test accuracy"]), list(board["test loss"])) == (["–"], ["–"])
    assert "trained on my drawings" not in board.columns

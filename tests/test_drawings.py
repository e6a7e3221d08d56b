"""Your own drawings on disk: saved, read back as they were, deleted and restored, and every bad input."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from conftest import at_once
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


def test_lines_of_labels_csv_that_cannot_be_read_survive_every_later_save_delete_and_undo(tmp_path):
    """A damaged line is left out with a message, and kept byte for byte when the file is written again, so a
    person who mends it gets the drawing back; a BOM (a spreadsheet's re-save) or a lost header loses no row."""
    names = [drawings.save_drawing(digit(i), i, root=tmp_path) for i in range(5)]
    path = tmp_path / drawings.LABELS
    lines = path.read_bytes().split(b"\n")
    header, rows = lines[0], lines[1:6]
    damaged = {
        1: rows[1].replace(b",1,", b",eleven,"),  # not a digit
        2: rows[2][:-3] + b"\xff\xfe\n"[:2],  # not UTF-8 (its time's last byte replaced)
        3: rows[3] + b"," + b"x" * 200_000,  # a field longer than Python's csv reads
    }
    broken = [damaged.get(index, row) for index, row in enumerate(rows)]
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join([header, *broken]) + b"\n")
    loaded = drawings.load_drawings(tmp_path)
    assert loaded.names == (names[0], names[4]) and loaded.labels.tolist() == [0, 4]
    assert [problem.split(":")[1].strip() for problem in loaded.problems] == ["line 3", "line 4", "line 5"]
    assert all(len(problem) < 200 and "\n" not in problem for problem in loaded.problems)

    added = drawings.save_drawing(digit(5), 5, root=tmp_path)
    entry = drawings.delete_drawing(names[0], tmp_path)
    drawings.restore_drawing(entry, tmp_path)
    kept = path.read_bytes().split(b"\n")
    assert all(line in kept for line in damaged.values())  # each damaged line, byte for byte
    assert set(drawings.load_drawings(tmp_path).names) == {names[0], names[4], added}

    mended = path.read_bytes().replace(b",eleven,", b",1,").replace(damaged[2], rows[2])
    path.write_bytes(mended.replace(damaged[3], rows[3]))
    again = drawings.load_drawings(tmp_path)
    assert set(again.names) == {*names, added} and again.problems == ()
    assert dict(zip(again.names, again.labels.tolist(), strict=True)) == {
        **{name: index for index, name in enumerate(names)},
        added: 5,
    }

    # A header lost (overwritten): the rows still read, and a save keeps them all.
    path.write_bytes(b"junk\n" + b"\n".join(path.read_bytes().split(b"\n")[1:]))
    headless = drawings.load_drawings(tmp_path)
    assert set(headless.names) == {*names, added}
    assert headless.problems == (
        "labels.csv: the header is not file,label,saved, so every line is read as file,label,saved",
    )
    last = drawings.save_drawing(digit(6), 6, root=tmp_path)
    assert set(drawings.load_drawings(tmp_path).names) == {*names, added, last}


def test_an_image_that_pillow_cannot_decode_is_left_out_and_the_rest_kept(tmp_path):
    names = [drawings.save_drawing(digit(i), i, root=tmp_path) for i in range(3)]
    png = bytearray((tmp_path / names[1]).read_bytes())
    png[33:37] = (5).to_bytes(4, "big")  # the image data chunk says it is 5 bytes long: Pillow raises SyntaxError
    (tmp_path / names[1]).write_bytes(bytes(png))
    loaded = drawings.load_drawings(tmp_path)
    assert loaded.names == (names[0], names[2])
    assert len(loaded.problems) == 1 and names[1] in loaded.problems[0]


def test_files_changed_by_hand_are_noticed_and_named(tmp_path):
    """An image damaged in place, then mended; a drawing listed twice; labels.csv removed: each shows at once
    (the version the pages cache by changes), with a one-line message."""
    names = [drawings.save_drawing(digit(i), i, root=tmp_path) for i in range(3)]
    first = drawings.version(tmp_path)
    good = (tmp_path / names[0]).read_bytes()
    with open(tmp_path / names[0], "r+b") as handle:  # in place: labels.csv does not change
        handle.write(b"garbage")
    damaged = drawings.version(tmp_path)
    assert damaged != first
    assert drawings.load_drawings(tmp_path).problems == (f"{names[0]}: not a readable PNG image; left out",)
    (tmp_path / names[0]).write_bytes(good)
    assert drawings.version(tmp_path) not in (first, damaged)
    assert drawings.load_drawings(tmp_path).names == tuple(names)

    path = tmp_path / drawings.LABELS
    path.write_text(path.read_text() + f"{names[1]},9,2026-12-07T00:00:00+00:00\n")
    twice = drawings.load_drawings(tmp_path)
    assert twice.names == tuple(names) and twice.labels.tolist() == [0, 1, 2]
    assert twice.problems == (f"labels.csv: line 5: {names[1]} is listed twice; the first line counts",)
    added = drawings.save_drawing(digit(3), 3, root=tmp_path)  # the repeat is dropped: it is the same drawing
    assert drawings.load_drawings(tmp_path).problems == () and path.read_text().count(names[1]) == 1

    path.unlink()
    gone = drawings.load_drawings(tmp_path)
    assert len(gone) == 0 and gone.problems == (
        f"labels.csv is missing from {tmp_path}: its 4 drawings have no labels until it is back",
    )
    assert added in {p.name for p in tmp_path.glob("*.png")}


KILLED_AT = """
import os, signal, sys
from mnist_core import drawings
calls = 0
real_replace = os.replace
def replace(*args):
    global calls
    calls += 1
    if calls == int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)  # killed with this rename undone and everything after it
    return real_replace(*args)
os.replace = replace
print(getattr(drawings, sys.argv[1])(sys.argv[2], sys.argv[4]))
"""


def killed_at(step: int, action: str, argument: str, root) -> bool:
    """Run drawings.`action`(argument) in a process killed -9 at its `step`-th rename; return whether it was."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", KILLED_AT, action, argument, str(step), str(root)], capture_output=True, text=True
    )
    assert done.returncode in (0, -9), done.stderr
    return done.returncode == -9


@pytest.mark.parametrize("action", ["delete_drawing", "restore_drawing"])
def test_kill_9_at_any_step_of_delete_or_undo_loses_nothing(tmp_path, action):
    """Killed at every rename in turn, a delete or an undo leaves the drawing either there whole or in the trash
    whole: the set reads without a problem, and the person's next click (delete again, or undo) finishes it."""
    for step in range(1, 20):
        root = tmp_path / f"step-{step}"
        names = [drawings.save_drawing(digit(i), i, np.full((280, 280, 4), i, np.uint8), root) for i in range(3)]
        images = {path.name: path.read_bytes() for path in root.rglob("*.png")}
        argument = names[1] if action == "delete_drawing" else drawings.delete_drawing(names[1], root)
        if not killed_at(step, action, argument, root):
            break
        loaded = drawings.load_drawings(root)
        assert loaded.problems == (), (step, loaded.problems)
        if names[1] in loaded.names:  # still there: delete it again, as the person would
            assert loaded.names == tuple(names), step
            argument = drawings.delete_drawing(names[1], root)
        else:  # in the trash: the undo brings it back
            assert loaded.names == (names[0], names[2]), step
            argument = next(path.name for path in (root / drawings.TRASH).iterdir())
        drawings.restore_drawing(argument, root)
        restored = drawings.load_drawings(root)
        assert sorted(restored.names) == sorted(names) and restored.problems == (), step
        kept = {path.name: path.read_bytes() for path in root.rglob("*.png") if drawings.TRASH not in path.parts}
        assert kept == images, step
    else:
        raise AssertionError("the action was killed at every step: it never finished")
    assert step > 2  # it was killed at least twice before it ran through


def test_two_undos_of_one_deletion_at_once_restore_it_once_and_the_other_says_so(tmp_path):
    names = [drawings.save_drawing(digit(i), i, root=tmp_path) for i in range(2)]
    for _ in range(5):
        entry = drawings.delete_drawing(names[1], tmp_path)
        restored, refused = at_once(
            lambda _, entry=entry: drawings.restore_drawing(entry, tmp_path), 2, drawings.DrawingError
        )
        assert restored == [names[1]]
        assert refused == [f"{entry!r}: no deleted drawing of that name (restored already?)"]
        assert drawings.load_drawings(tmp_path).names == tuple(names)


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
    names, refused = at_once(
        lambda seed: drawings.save_drawing(digit(seed), seed % 10, root=tmp_path), 8, drawings.DrawingError
    )
    assert refused == []
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


def page(name: str):
    """Return an AppTest of one page of the studio."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(Path(__file__).resolve().parents[1] / "pages" / name), default_timeout=120)


def test_delete_on_the_dataset_page_deletes_the_drawing_picked_though_another_tab_deleted_one_before_it():
    names = [drawings.save_drawing(digit(i), i) for i in range(5)]
    app = page("1_Dataset.py")
    app.session_state["dataset_split"] = "my drawings"
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    app.session_state["dataset_mine_chosen"] = drawings.drawing_id(names[2])  # as a click on the third one
    app.run()
    assert app.metric[0].value == "2"  # the picked drawing's label, shown beside it large
    drawings.delete_drawing(names[0])  # another tab, meanwhile
    next(button for button in app.button if button.label == "Delete this drawing").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert drawings.load_drawings().names == (names[1], names[3], names[4])


def test_the_evaluate_page_says_in_one_line_what_it_cannot_read_and_shows_the_rest(runs_dir, trained_run):
    """labels.csv with a byte that is not text, and a run whose model file is damaged: each is named in one line;
    the other drawings and the test-set view still show."""
    from conftest import copy_run

    names = [drawings.save_drawing(digit(i), i) for i in range(4)]
    path = drawings.resolve(None) / drawings.LABELS
    path.write_bytes(path.read_bytes().replace(names[1].encode(), b"\xff" + names[1][1:].encode()))
    run = copy_run(trained_run, runs_dir)
    model = run.model_path("best")
    model.write_bytes(model.read_bytes()[:300])
    for scored_on in ("test", "mine"):
        app = page("4_Evaluate.py")
        app.session_state["evaluate_on"] = scored_on
        app.run()
        assert not app.exception, (scored_on, [e.value for e in app.exception])
        if scored_on == "mine":
            assert len(app.error) == 1 and "\n" not in app.error[0].value
            assert app.error[0].value.startswith(f"The model file cannot be loaded: {model}")
    dataset = page("1_Dataset.py")
    dataset.session_state["dataset_split"] = "my drawings"
    dataset.run()
    assert not dataset.exception, [e.value for e in dataset.exception]
    assert [w.value for w in dataset.warning] == ["labels.csv: line 3: not text (byte 0xff); left out"]
    assert any("3 drawings of yours" in caption.value for caption in dataset.caption)


def test_undo_on_the_dataset_page_says_why_when_another_tab_undid_it_first():
    names = [drawings.save_drawing(digit(i), i) for i in range(3)]
    app = page("1_Dataset.py")
    app.session_state["dataset_split"] = "my drawings"
    app.session_state["dataset_mine_chosen"] = drawings.drawing_id(names[1])
    app.run()
    next(button for button in app.button if button.label == "Delete this drawing").click().run()
    assert [info.value for info in app.info] == ["The 1 you deleted is in the trash."]
    entry = next(path.name for path in (drawings.resolve(None) / drawings.TRASH).iterdir())
    drawings.restore_drawing(entry)  # another tab's Undo, first
    next(button for button in app.button if button.label == "Undo").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert [error.value for error in app.error] == [f"{entry!r}: no deleted drawing of that name (restored already?)"]
    assert sorted(drawings.load_drawings().names) == sorted(names)


def test_a_saved_drawing_opened_inside_a_model_keeps_its_true_digit(runs_dir, trained_run):
    from conftest import copy_run

    from mnist_core import ui

    run = copy_run(trained_run, runs_dir)
    app = page("7_Inside.py")
    app.query_params["run"] = run.run_id
    app.session_state[ui.DRAWING_KEY], app.session_state[ui.DRAWING_LABEL_KEY] = digit(4), 7
    app.session_state["inside_source"] = "drawing"
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert any(text.value.endswith("(labelled 7)") for text in app.markdown)

"""Drawn digits: MNIST-like preprocessing of a canvas (20x20 box, centre of mass), the warning for drawings unlike
any digit (its limits checked on MNIST's 10,000 test digits), the model the Draw page opens on, fast prediction."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mnist_core import evaluate, predict
from mnist_core.models import Predictor
from mnist_core.predict import preprocess_canvas, to_grayscale
from mnist_core.runs import Run

SIZE = 280


def black_canvas() -> np.ndarray:
    """Return an opaque black RGBA canvas like the drawing widget's."""
    canvas = np.zeros((SIZE, SIZE, 4), dtype=np.uint8)
    canvas[..., 3] = 255
    return canvas


def vertical_stroke() -> np.ndarray:
    """Return a canvas with a thick white '1' far right of centre and high up."""
    canvas = black_canvas()
    canvas[30:200, 200:230] = 255
    return canvas


def ring() -> np.ndarray:
    """Return a canvas with a thick white '0' (an elliptical ring) in the lower left."""
    canvas = black_canvas()
    rows, cols = np.indices((SIZE, SIZE))
    centre_row, centre_col = 175.0, 90.0
    distance = np.sqrt(((rows - centre_row) / 80.0) ** 2 + ((cols - centre_col) / 55.0) ** 2)
    canvas[(distance <= 1.0) & (distance >= 0.7)] = 255
    return canvas


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    rows, cols = np.indices(image.shape)
    total = image.sum()
    return float((rows * image).sum() / total), float((cols * image).sum() / total)


def bounding_box(image: np.ndarray) -> tuple[int, int]:
    """Return (height, width) of the pixels that hold any ink."""
    rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


@pytest.mark.parametrize("make", [vertical_stroke, ring], ids=["stroke", "ring"])
def test_drawn_digit_becomes_mnist_like(make):
    prepared = preprocess_canvas(make())
    assert not prepared.blank
    image = prepared.image
    assert image.shape == (28, 28)
    assert image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() <= 1.0
    assert image.max() > 0.9  # the stroke stays bright
    row, col = centre_of_mass(image)
    assert abs(row - 13.5) <= 1.0 and abs(col - 13.5) <= 1.0, (row, col)
    height, width = bounding_box(image > 0)
    assert max(height, width) == pytest.approx(20, abs=1)
    assert height <= 21 and width <= 21
    # The digit is not cut off: no ink on the 28x28 border (MNIST keeps a 4-pixel margin, give or take).
    assert image[0].max() == 0 and image[-1].max() == 0 and image[:, 0].max() == 0 and image[:, -1].max() == 0


def test_aspect_ratio_is_kept():
    height, width = bounding_box(preprocess_canvas(vertical_stroke()).image > 0)
    # 170 x 30 pixels drawn: 20 tall and about 20 * 30 / 170 = 3.5 wide.
    assert height == pytest.approx(20, abs=1)
    assert 2 <= width <= 5


def test_ring_keeps_its_hole():
    image = preprocess_canvas(ring()).image
    rows, cols = np.flatnonzero((image > 0).any(axis=1)), np.flatnonzero((image > 0).any(axis=0))
    middle_row, middle_col = (rows[0] + rows[-1]) // 2, (cols[0] + cols[-1]) // 2
    assert image[middle_row, middle_col] < 0.1
    assert image.max() > 0.9


def test_steps_are_kept_for_display():
    prepared = preprocess_canvas(ring())
    assert set(prepared.steps) >= {"grayscale", "cropped", "fitted_20x20", "centred_28x28"}
    assert prepared.steps["grayscale"].shape == (SIZE, SIZE)
    assert prepared.steps["fitted_20x20"].shape == (28, 28)
    assert np.array_equal(prepared.steps["centred_28x28"], prepared.image)


def test_blank_canvases():
    black = black_canvas()
    transparent = np.zeros((SIZE, SIZE, 4), dtype=np.uint8)
    transparent[..., :3] = 255  # white, but fully transparent: no ink
    for canvas in (black, transparent):
        prepared = preprocess_canvas(canvas)
        assert prepared.blank is True
        assert prepared.image is None
    stray = black_canvas()
    stray[100, 100] = 255  # a single stray click is not a digit
    assert preprocess_canvas(stray).blank


def test_grayscale_of_rgb_and_grey_canvases():
    rgb = vertical_stroke()[..., :3]
    grey = rgb[..., 0]
    assert np.array_equal(to_grayscale(rgb), to_grayscale(vertical_stroke()))
    np.testing.assert_allclose(to_grayscale(grey), grey / 255.0, atol=1e-6)
    with pytest.raises(ValueError, match="canvas"):
        to_grayscale(np.zeros((4, 4, 2)))


@pytest.fixture(scope="module")
def model():
    import keras

    from mnist_core.architectures import build_model

    keras.utils.set_random_seed(0)
    return build_model("fast_cnn")  # has BatchNorm: inference must use its moving statistics


def test_predictor_matches_model_predict(model):
    rng = np.random.default_rng(0)
    images = rng.random((5, 28, 28), dtype=np.float32)
    predictor = Predictor(model)
    expected = model.predict(images[..., None], verbose=0)
    batch = predictor.probabilities(images)
    assert batch.shape == (5, 10)
    np.testing.assert_allclose(batch, expected, atol=1e-5)
    single = predictor.probabilities(images[2])
    assert single.shape == (10,)
    np.testing.assert_allclose(single, expected[2], atol=1e-5)


def test_a_drawn_ring_through_the_predictor(model):
    prepared = preprocess_canvas(ring())
    assert not prepared.blank
    probs = Predictor(model).probabilities(prepared.image)
    assert probs.shape == (10,)
    assert probs.min() >= 0
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(probs, model.predict(prepared.image[None, ..., None], verbose=0)[0], atol=1e-5)


# ---------------------------------------------------------------- drawings unlike a digit

PEN = 18  # the Draw page's stroke width, on its 280x280 canvas


def pen_canvas(*strokes: list[tuple[float, float]]) -> np.ndarray:
    """Return a black RGBA canvas with white strokes through the given points, drawn with the page's round pen."""
    picture = Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 255))
    pen = ImageDraw.Draw(picture)
    for points in strokes:
        pen.line(points, fill=(255, 255, 255, 255), width=PEN, joint="curve")
        for x, y in points:
            pen.ellipse((x - PEN / 2, y - PEN / 2, x + PEN / 2, y + PEN / 2), fill=(255, 255, 255, 255))
    return np.asarray(picture)


LOOP = [(140 + 60 * math.sin(2 * math.pi * i / 40), 140 - 90 * math.cos(2 * math.pi * i / 40)) for i in range(41)]
DRAWN_DIGITS = {
    "one": [[(140, 40), (140, 240)]],
    "seven": [[(70, 55), (210, 55), (140, 240)]],
    "zero": [LOOP],
    "four": [[(100, 40), (80, 150), (200, 150)], [(170, 90), (170, 240)]],  # two strokes that do not touch
}
NOT_DIGITS = {
    "dot": ([[(140, 140), (142, 141)]], "of the image is ink"),
    "short dash": ([[(115, 140), (165, 140)]], "of the image is ink"),
    "tiny seven": ([[(125, 125), (155, 125), (140, 160)]], "draw it larger"),
    "long dash": ([[(40, 140), (240, 140)]], "as wide as tall"),
    "scattered bars": ([[(x, 90), (x, 190)] for x in range(30, 260, 50)], "separate pieces"),
}


@pytest.mark.parametrize("name", DRAWN_DIGITS)
def test_drawn_digits_get_no_warning(name):
    prepared = preprocess_canvas(pen_canvas(*DRAWN_DIGITS[name]))
    assert prepared.warning is None, (prepared.measures, prepared.warning)


@pytest.mark.parametrize("make", [vertical_stroke, ring], ids=["stroke", "ring"])
def test_the_test_canvases_get_no_warning(make):
    assert preprocess_canvas(make()).warning is None


@pytest.mark.parametrize("name", NOT_DIGITS)
def test_a_dot_a_dash_and_other_nonsense_get_a_warning_that_says_what_was_measured(name):
    strokes, said = NOT_DIGITS[name]
    prepared = preprocess_canvas(pen_canvas(*strokes))
    assert not prepared.blank
    assert prepared.warning and prepared.warning.startswith(predict.NOT_A_DIGIT), prepared.measures
    assert said in prepared.warning, prepared.warning


def test_a_blot_gets_a_warning():
    canvas = black_canvas()
    canvas[80:200, 90:200] = 255  # a scribbled-over patch
    prepared = preprocess_canvas(canvas)
    assert "looks like a blot" in prepared.warning, prepared.measures


def test_the_warning_names_the_ink_share_measured():
    prepared = preprocess_canvas(pen_canvas([(140, 140), (142, 141)]))
    share = prepared.measures.ink_share
    assert 0.002 < share < 0.006  # a pen dot: about 250 of 78,400 pixels
    assert f"only {100 * share:.1f} % of the image is ink" in prepared.warning
    assert "an MNIST digit covers 10-25 % of its image" in prepared.warning


@pytest.fixture(scope="module")
def mnist_test_measures() -> list[predict.Measures]:
    """Return the Measures of each of MNIST's 10,000 test digits, put through the page's preprocessing."""
    from mnist_core.data import load_mnist

    return [preprocess_canvas(image).measures for image in load_mnist().x_test]


def test_nearly_every_mnist_test_digit_passes_without_a_warning(mnist_test_measures):
    assert len(mnist_test_measures) == 10_000
    warned = [m for m in mnist_test_measures if m.problems()]
    assert len(warned) <= 50, f"{len(warned)} of 10,000 test digits get a warning: {warned[:5]}"  # 99.5 % pass
    ink = np.array([m.ink_share for m in mnist_test_measures])
    # The limits sit well outside what MNIST's digits measure, and the warning's "usually" is MNIST's own.
    assert ink.min() > 1.5 * predict.MIN_INK_SHARE
    low, high = np.percentile(ink, [5, 95])
    assert abs(low - predict.USUAL_INK_SHARE[0]) < 0.02 and abs(high - predict.USUAL_INK_SHARE[1]) < 0.02
    assert min(m.extent for m in mnist_test_measures) > 2 * predict.MIN_EXTENT
    assert min(m.height_to_width for m in mnist_test_measures) > predict.MIN_HEIGHT_TO_WIDTH
    assert max(m.fitted_ink_share for m in mnist_test_measures) < predict.MAX_FITTED_INK_SHARE
    assert np.mean([m.pieces <= predict.MAX_PIECES for m in mnist_test_measures]) >= 0.999


def test_drawing_or_sample():
    sample = np.zeros((28, 28), dtype=np.uint8)
    sample[4:24, 12:16] = 255
    drawn = predict.drawing_or_sample(ring(), sample)
    assert drawn.source == "canvas" and not drawn.blank
    for canvas in (None, black_canvas()):
        shown = predict.drawing_or_sample(canvas, sample)
        assert shown.source == "sample" and not shown.blank and shown.image.shape == (28, 28)
        assert predict.drawing_or_sample(canvas).blank


# ---------------------------------------------------------------- the model the Draw page opens on


def fake_run(name: str, val: float | None, test: float | None = None, evaluated_epochs: int | None = None) -> Run:
    """Return a finished run snapshot with one epoch at validation accuracy `val` (none when None) and, when
    `test` is given, an evaluation of `evaluated_epochs` epochs (default: its current model)."""
    epochs = ({"epoch": 1, "val_accuracy": val},) if val is not None else ()
    evaluation = None
    if test is not None:
        evaluation = {"accuracy": test, "epochs_done": len(epochs) if evaluated_epochs is None else evaluated_epochs}
    return Run(
        path=Path("/runs") / name,
        config=None,
        status={"state": "finished"},
        progress={},
        epochs=epochs,
        evaluation=evaluation,
        model_files=frozenset({"best.keras"}),
    )


def test_best_model_is_the_best_by_validation_not_the_newest():
    newest, good, older = fake_run("3-mlp", 0.169), fake_run("2-cnn", 0.991), fake_run("1-mlp", 0.9)
    run, why = evaluate.best_model([newest, good, older])
    assert run is good
    assert why.startswith("2-cnn, the best validation accuracy (99.10 %)")
    assert "no run has been evaluated" in why


def test_best_model_prefers_the_test_accuracy_where_evaluated():
    evaluated = fake_run("2-cnn", 0.985, test=0.992)
    better_val_but_worse_test = fake_run("3-cnn", 0.99, test=0.95)
    unevaluated = fake_run("1-mlp", 0.97)
    run, why = evaluate.best_model([better_val_but_worse_test, evaluated, unevaluated])
    assert run is evaluated
    assert why.startswith("2-cnn, the best test accuracy (99.20 %)")
    assert "validation accuracy" in why  # says how the unevaluated run was counted
    run, why = evaluate.best_model([evaluated, better_val_but_worse_test])
    assert run is evaluated and why == "2-cnn, the best test accuracy (99.20 %)"


def test_best_model_ignores_an_evaluation_of_an_older_model():
    stale = fake_run("2-cnn", 0.90, test=0.999, evaluated_epochs=5)  # evaluated before it was continued
    other = fake_run("1-cnn", 0.95)
    assert evaluate.best_model([stale, other])[0] is other


def test_best_model_ties_and_edge_cases():
    first, second = fake_run("2-a", 0.9), fake_run("1-b", 0.9)
    assert evaluate.best_model([first, second])[0] is first  # a tie: the newest (listed first)
    no_epochs = fake_run("3-c", None)
    assert evaluate.best_model([no_epochs, second])[0] is second
    run, why = evaluate.best_model([no_epochs])
    assert run is no_epochs and "newest" in why
    assert evaluate.best_model([]) is None


def test_many_loaded_models_leave_no_retracing_notice_in_the_log():
    """Each loaded model compiles its forward pass once; TensorFlow's 'triggered tf.function retracing' notice
    took nine of them for a loop and wrote warnings into the server log (found by the browser tests)."""
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "from mnist_core.tfimport import import_keras\n"
        "keras = import_keras()\n"
        "import numpy as np\n"
        "from mnist_core.models import Predictor\n"
        "for _ in range(9):\n"
        "    layers = [keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10, 'softmax')]\n"
        "    Predictor(keras.Sequential(layers)).probabilities(np.zeros((3, 28, 28), np.float32))\n"
        "print('loaded')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and "loaded" in done.stdout, done.stderr[-2000:]
    assert "retracing" not in done.stderr, done.stderr[-2000:]

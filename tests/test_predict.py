"""Drawn digits: MNIST-like preprocessing of a canvas (20x20 box, centre of mass) and fast prediction."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_core.predict import Predictor, predict_canvas, predictor_for, preprocess_canvas, to_grayscale

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
        assert prepared.message
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
    assert predictor_for(model) is predictor_for(model)


def test_predict_canvas(model):
    prepared, probs = predict_canvas(model, ring())
    assert not prepared.blank
    assert probs.shape == (10,)
    assert probs.min() >= 0
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(probs, model.predict(prepared.image[None, ..., None], verbose=0)[0], atol=1e-5)
    prepared, probs = predict_canvas(model, black_canvas())
    assert prepared.blank and probs is None

"""Inside a model: each view checked against a computation of the test's own (a layer-by-layer eager pass,
completeness of integrated gradients, brute-force distances, an SVD), and the page for every architecture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from mnist_core import imported, inside, models
from mnist_core.architectures import ARCHITECTURES, build_model
from mnist_core.data import to_model_input
from mnist_core.tfimport import import_keras

ROOT = Path(__file__).resolve().parents[1]
keras = import_keras()


@pytest.fixture(scope="module")
def digits(mnist):
    """Return the first 300 test digits as (300, 28, 28) floats in [0, 1], and their labels."""
    return to_model_input(mnist.x_test[:300])[..., 0], mnist.y_test[:300]


def eager_pass(model, image: np.ndarray) -> list[np.ndarray]:
    """Return each layer's output for one image, calling the layers one by one, eagerly (no tf.function)."""
    x = image.reshape(1, 28, 28, 1).astype(np.float32)
    outputs = []
    for layer in inside.model_layers(model):
        x = layer(x, training=False)
        outputs.append(keras.ops.convert_to_numpy(x)[0])
    return outputs


@pytest.mark.parametrize("key", list(ARCHITECTURES))
def test_every_layer_output_equals_a_layer_by_layer_pass_and_the_model(key, digits):
    model = build_model(key)
    views = inside.Inspector(model)
    image = digits[0][7]
    outputs = views.layer_outputs(image)
    expected = eager_pass(model, image)
    assert [output.name for output in outputs] == [layer.name for layer in inside.model_layers(model)]
    for output, values in zip(outputs, expected, strict=True):
        assert output.shape == values.shape
        np.testing.assert_allclose(output.values, values, rtol=1e-4, atol=1e-5)
    whole = keras.ops.convert_to_numpy(model(image.reshape(1, 28, 28, 1), training=False))[0]
    np.testing.assert_allclose(outputs[-1].values, whole, rtol=1e-4, atol=1e-6)
    kernels = views.first_filters()
    if any(type(layer).__name__ == "Conv2D" for layer in model.layers):
        first = next(layer for layer in model.layers if type(layer).__name__ == "Conv2D")
        weights = first.get_weights()[0]
        assert kernels.shape == (weights.shape[-1], 3, 3)
        np.testing.assert_array_equal(kernels[5], weights[:, :, 0, 5])
    else:
        assert kernels is None and views.grad_cam(image, 0) is None


def completeness_error(views: inside.Inspector, model, image: np.ndarray, target: int) -> tuple[float, float]:
    """Return (sum of the integrated gradients - (f(image) - f(black)), f(image) - f(black)) for class target."""
    attributions = views.integrated_gradients(image, target)
    batch = np.stack([image, np.zeros_like(image)]).reshape(2, 28, 28, 1)
    probabilities = keras.ops.convert_to_numpy(model(batch, training=False))[:, target]
    change = float(probabilities[0] - probabilities[1])
    return float(attributions.sum()) - change, change


@pytest.mark.parametrize("key", list(ARCHITECTURES))
def test_integrated_gradients_add_up_to_the_change_untrained(key, digits):
    model = build_model(key)
    views = inside.Inspector(model)
    for index in (0, 1):
        image = digits[0][index]
        target = int(np.argmax(keras.ops.convert_to_numpy(model(image.reshape(1, 28, 28, 1), training=False))))
        error, change = completeness_error(views, model, image, target)
        assert abs(error) <= 0.01 * abs(change) + 1e-6, (key, error, change)


def test_integrated_gradients_add_up_to_the_change_trained(trained_cnn, trained_run, digits):
    for run in (trained_cnn, trained_run):
        model = models.run_predictor(run).model
        views = inside.inspector(model)
        changes = []
        for index in range(4):
            image, label = digits[0][index], int(digits[1][index])
            error, change = completeness_error(views, model, image, label)
            assert abs(error) <= 0.01 * abs(change), (run.run_id, index, error, change)
            changes.append(abs(change))
        assert max(changes) > 0.05  # the input moves the probability measurably away from black's


def test_a_digit_in_the_left_half_draws_the_saliency_to_the_left_half(trained_cnn, digits):
    model = models.run_predictor(trained_cnn).model
    views = inside.inspector(model)
    images, labels = digits
    checked = 0
    for index in np.flatnonzero(labels == 1)[:5]:  # ones: narrow, so they fit in the left half
        shifted = np.zeros_like(images[index])
        shifted[:, :14] = np.roll(images[index], -7, axis=1)[:, :14]
        assert shifted[:, 14:].sum() == 0 and shifted.sum() > 0
        target = int(np.argmax(models.run_predictor(trained_cnn).probabilities(shifted)))
        cam = views.grad_cam(shifted, target)
        attributions = np.abs(views.integrated_gradients(shifted, target))
        for saliency in (cam, attributions):
            assert saliency[:, :14].sum() > 0.5 * saliency.sum(), (index, saliency[:, :14].sum(), saliency.sum())
        checked += 1
    assert checked == 5


def test_nearest_digits_and_the_pca_map_match_the_tests_own_computation(trained_cnn, digits):
    model = models.run_predictor(trained_cnn).model
    views = inside.inspector(model)
    images = digits[0]
    embedding = views.embedding(images, "pca")
    assert embedding is views.embedding(images, "pca")  # computed once
    features = embedding.features
    np.testing.assert_allclose(features[:3], views.features(images[:3]), rtol=1e-5, atol=1e-6)
    query = views.features(images[42][None])[0]
    squared = [float(((row - query) ** 2).sum()) for row in features]
    by_hand = sorted(range(len(squared)), key=lambda i: (squared[i], i))[: inside.NEAREST]
    assert list(inside.nearest(features, query)) == by_hand and by_hand[0] == 42
    centred = features - features.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    projected = centred @ components[:2].T
    for axis in range(2):  # a principal axis is only defined up to its sign
        sign = np.sign(projected[:, axis] @ embedding.coords[:, axis])
        np.testing.assert_allclose(embedding.coords[:, axis], sign * projected[:, axis], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(embedding.place(features[42]), embedding.coords[42], rtol=1e-4, atol=1e-4)


def test_the_inside_page_shows_every_view_for_all_six_architectures(runs_dir, tmp_path):
    made = {}
    for key in ARCHITECTURES:
        build_model(key).save_weights(tmp_path / f"{key}.weights.h5")
        made[key] = imported.import_file(tmp_path / f"{key}.weights.h5", name=key, architecture=key)
    app = AppTest.from_file(str(ROOT / "pages/7_Inside.py"), default_timeout=180).run()
    for key, run in made.items():
        next(box for box in app.selectbox if box.label == "Model").set_value(run.run_id).run()
        assert not app.exception, (key, [e.value for e in app.exception])
        model = build_model(key)
        layers = inside.model_layers(model)
        headings = [md.value for md in app.markdown if md.value.startswith("**") and " · " in md.value]
        maps = [heading for heading in headings if heading.count(" x ") == 2]  # height x width x channels
        charts = app.get("plotly_chart")
        expected_maps = sum(len(layer.output.shape) == 4 for layer in layers)
        # Every layer shown: maps as a tiled image, vectors as bars (charts: probabilities twice, embedding).
        assert len(maps) == expected_maps and len(charts) == len(layers) - expected_maps + 2, key
        has_conv = any(type(layer).__name__ == "Conv2D" for layer in layers)
        assert any("Grad-CAM needs a convolution" in info.value for info in app.info) != has_conv, key
        assert any("The test digits most like yours" in md.value for md in app.markdown), key

"""The architecture registry: parameter counts vs the published table, outputs, metadata, published curves."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from mnist_core import reference
from mnist_core.architectures import (
    ARCHITECTURES,
    PRESETS,
    PUBLISHED_KEYS,
    build_model,
    get_architecture,
    layer_table,
)
from mnist_core.config import TrainConfig
from mnist_core.settings import PUBLISHED_CURVES_CSV

# The walkthrough's table (resources/published_reference.md).
PUBLISHED_PARAMS = {"mlp": 235_146, "cnn": 1_419_210, "deeper_cnn": 159_882, "deeper_cnn_bn": 616_682}
PUBLISHED_TEST_ACCURACY = {"mlp": 0.8646, "cnn": 0.9739, "deeper_cnn": 0.9781}


def _conv(k, c_in, c_out, bias=True):
    return k * k * c_in * c_out + (c_out if bias else 0)


def _dense(n_in, n_out, bias=True):
    return n_in * n_out + (n_out if bias else 0)


def _bn(c):
    return 4 * c  # gamma, beta, moving mean, moving variance


# The extra architectures, counted by hand from their layer lists.
HAND_COUNTED_PARAMS = {
    "fast_cnn": _conv(3, 1, 16, False)
    + _bn(16)
    + _conv(3, 16, 32, False)
    + _bn(32)
    + _conv(3, 32, 64, False)
    + _bn(64)
    + _dense(3 * 3 * 64, 10),
    # RandomTranslation and Dropout have no weights.
    "strong_cnn": _conv(3, 1, 32, False)
    + _bn(32)
    + _conv(3, 32, 64, False)
    + _bn(64)
    + _conv(3, 64, 64, False)
    + _bn(64)
    + _conv(3, 64, 128, False)
    + _bn(128)
    + _dense(3 * 3 * 128, 10),
}
# The same network, augmented outside it.
HAND_COUNTED_PARAMS["best_cnn"] = HAND_COUNTED_PARAMS["robust_cnn"] = HAND_COUNTED_PARAMS["strong_cnn"]


@pytest.fixture(scope="module")
def models():
    """Return every registry model, built once with a fixed seed."""
    import keras

    keras.utils.set_random_seed(0)
    return {key: build_model(key) for key in ARCHITECTURES}


def test_hand_counts_agree_with_the_published_table_method():
    # Sanity of the counting helpers on a published model: mlp = 784*256+256 + 256*128+128 + 128*10+10.
    assert _dense(784, 256) + _dense(256, 128) + _dense(128, 10) == PUBLISHED_PARAMS["mlp"]
    conv = _conv(3, 1, 32)
    assert conv + _dense(13 * 13 * 32, 256) + _dense(256, 128) + _dense(128, 10) == PUBLISHED_PARAMS["cnn"]


@pytest.mark.parametrize("key", sorted(PUBLISHED_PARAMS))
def test_published_parameter_counts(models, key):
    assert models[key].count_params() == PUBLISHED_PARAMS[key]
    assert get_architecture(key).published_params == PUBLISHED_PARAMS[key]


@pytest.mark.parametrize("key", sorted(HAND_COUNTED_PARAMS))
def test_extra_architectures_parameter_counts(models, key):
    assert models[key].count_params() == HAND_COUNTED_PARAMS[key]


def test_fast_cnn_strides_its_first_convolution(models):
    # 28x28 -> 14x14 by the first convolution's stride, then two max-pools: 7x7, 3x3 (floor), 64 maps flattened.
    convolutions = [layer for layer in models["fast_cnn"].layers if layer.__class__.__name__ == "Conv2D"]
    assert [layer.output.shape[1:] for layer in convolutions] == [(14, 14, 16), (14, 14, 32), (7, 7, 64)]
    assert models["fast_cnn"].layers[-2].output.shape[1:] == (3 * 3 * 64,)


@pytest.mark.parametrize("key", sorted(ARCHITECTURES))
def test_model_maps_images_to_probabilities(models, key):
    model = models[key]
    rng = np.random.default_rng(3)
    x = rng.random((2, 28, 28, 1), dtype=np.float32)
    probs = np.asarray(model(x, training=False))
    assert probs.shape == (2, 10)
    assert np.all(probs >= 0) and np.all(probs <= 1)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert model.input_shape == (None, 28, 28, 1)


@pytest.mark.parametrize("key", sorted(ARCHITECTURES))
def test_layer_table_adds_up(models, key):
    model = models[key]
    rows = layer_table(model)
    assert len(rows) == len(model.layers)
    assert sum(row["parameters"] for row in rows) == model.count_params()
    assert rows[-1]["output shape"] == "(None, 10)"
    assert all(row["type"] for row in rows)


@pytest.mark.parametrize("key", sorted(ARCHITECTURES))
def test_registry_entry_is_complete(key):
    arch = ARCHITECTURES[key]
    assert arch.key == key
    assert arch.title.strip() and arch.description.strip() and arch.layers.strip()
    assert len(arch.description) > 80  # a real explanation, not a placeholder
    assert callable(arch.build)
    TrainConfig.for_architecture(key)  # its defaults are a valid recipe
    if arch.published:
        assert arch.published_params == PUBLISHED_PARAMS[key]
        if key in PUBLISHED_TEST_ACCURACY:
            assert arch.published_test_accuracy == pytest.approx(PUBLISHED_TEST_ACCURACY[key])
        else:
            assert arch.published_test_accuracy is None  # the BN net published only a validation figure
    else:
        assert arch.published_params is None and arch.published_test_accuracy is None


def test_published_keys_are_those_with_published_curves():
    assert set(PUBLISHED_KEYS) == set(PUBLISHED_PARAMS)
    assert set(reference.published_architectures()) == set(PUBLISHED_PARAMS)
    assert set(PRESETS.values()) <= set(ARCHITECTURES)


@pytest.mark.parametrize("key", sorted(PUBLISHED_PARAMS))
def test_default_epochs_are_the_published_run_length(key):
    assert TrainConfig.for_architecture(key).epochs == len(reference.published_curve(key))


def test_unknown_architecture_lists_the_known_ones():
    with pytest.raises(KeyError) as caught:
        get_architecture("lenet")
    assert "lenet" in str(caught.value) and "deeper_cnn_bn" in str(caught.value)


# ----- reference curves -----------------------------------------------------------------------------------------


def _csv_rows(architecture: str) -> list[dict]:
    with open(PUBLISHED_CURVES_CSV, newline="") as handle:
        return [row for row in csv.DictReader(handle) if row["architecture"] == architecture]


@pytest.mark.parametrize(("key", "epochs"), [("cnn", 100), ("deeper_cnn_bn", 11), ("mlp", 100), ("deeper_cnn", 100)])
def test_published_curve_lengths(key, epochs):
    curve = reference.published_curve(key)
    assert len(curve) == epochs
    assert [row["epoch"] for row in curve] == list(range(1, epochs + 1))


def test_published_curve_values_and_elapsed():
    curve = reference.published_curve("deeper_cnn_bn")
    raw = _csv_rows("deeper_cnn_bn")
    np.testing.assert_allclose([row["val_accuracy"] for row in curve], [float(r["val_accuracy"]) for r in raw])
    np.testing.assert_allclose(
        [row["elapsed"] for row in curve], np.cumsum([float(r["epoch_seconds"]) for r in raw]), rtol=1e-9
    )
    assert curve[-1]["val_accuracy"] == pytest.approx(0.9912, abs=5e-5)  # "99.12 % at epoch 11"
    assert reference.published_curve("no_such_net") == []

"""TrainConfig: the published defaults per architecture and a ConfigError naming the field for bad values."""

from __future__ import annotations

import math

import pytest

from mnist_core.architectures import ARCHITECTURES
from mnist_core.config import ConfigError, TrainConfig
from mnist_core.settings import max_concurrent_runs, runs_root

# The walkthrough's recipes (published_reference.md): SGD 1e-3 for the first three, Adam 1e-3 for the BN net.
PUBLISHED_RECIPES = {
    "mlp": ("sgd", 1e-3, 64),
    "cnn": ("sgd", 1e-3, 64),
    "deeper_cnn": ("sgd", 1e-3, 64),
    "deeper_cnn_bn": ("adam", 1e-3, 64),
}


@pytest.mark.parametrize("arch", sorted(PUBLISHED_RECIPES))
def test_defaults_are_the_published_recipe(arch):
    optimizer, learning_rate, batch_size = PUBLISHED_RECIPES[arch]
    config = TrainConfig.for_architecture(arch)
    assert config.architecture == arch
    assert config.optimizer == optimizer
    assert config.learning_rate == pytest.approx(learning_rate)
    assert config.batch_size == batch_size
    assert config.lr_schedule == "constant"
    assert config.augmentation == "none"
    assert config.train_subset is None


def test_plain_config_is_the_walkthrough_cnn():
    config = TrainConfig()
    assert (config.architecture, config.optimizer, config.learning_rate, config.batch_size) == ("cnn", "sgd", 1e-3, 64)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_every_architecture_default_is_valid(arch):
    config = TrainConfig.for_architecture(arch)
    assert config.validated() is config
    assert config.epochs >= 1


def test_overrides_apply_and_none_is_ignored():
    config = TrainConfig.for_architecture("deeper_cnn_bn", epochs=2, batch_size=None, learning_rate=5e-4)
    assert config.epochs == 2
    assert config.batch_size == 64  # None keeps the default
    assert config.learning_rate == 5e-4
    assert config.optimizer == "adam"


def test_dict_round_trip():
    config = TrainConfig.for_architecture("mlp", epochs=3, train_subset=600, seed=7)
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_subset_sizes_and_steps():
    config = TrainConfig(architecture="mlp", train_subset=600, batch_size=64)
    assert config.train_size == 600
    assert config.validation_size == 600 // 9
    assert config.steps_per_epoch == math.ceil(600 / 64)
    full = TrainConfig(architecture="mlp", batch_size=64)
    assert (full.train_size, full.validation_size) == (54_000, 6_000)
    assert full.steps_per_epoch == math.ceil(54_000 / 64)


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("epochs", {"epochs": 0}),
        ("epochs", {"epochs": -3}),
        ("epochs", {"epochs": 2.5}),
        ("epochs", {"epochs": True}),
        ("batch_size", {"batch_size": 0}),
        ("batch_size", {"batch_size": 54_001}),
        ("batch_size", {"batch_size": 601, "train_subset": 600}),
        ("learning_rate", {"learning_rate": 0}),
        ("learning_rate", {"learning_rate": 0.0}),
        ("learning_rate", {"learning_rate": -1e-3}),
        ("learning_rate", {"learning_rate": float("nan")}),
        ("learning_rate", {"learning_rate": "fast"}),
        ("architecture", {"architecture": "resnet152"}),
        ("optimizer", {"optimizer": "adagrad"}),
        ("train_subset", {"train_subset": 0}),
        ("train_subset", {"train_subset": 54_001}),
        ("label_smoothing", {"label_smoothing": 1.0}),
        ("lr_schedule", {"lr_schedule": "step"}),
        ("augmentation", {"augmentation": "rotate"}),
    ],
)
def test_config_error_names_the_field(field, values):
    base = {"architecture": "mlp"}
    with pytest.raises(ConfigError) as caught:
        TrainConfig.from_dict({**base, **values})
    assert str(caught.value).startswith(f"{field}:"), str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_batch_size_equal_to_training_size_is_allowed():
    assert TrainConfig.from_dict({"architecture": "mlp", "batch_size": 600, "train_subset": 600}).batch_size == 600


@pytest.mark.parametrize("factory", ["for_architecture", "constructor"])
def test_epochs_zero_is_rejected_on_every_path(factory):
    with pytest.raises(ConfigError, match=r"^epochs:"):
        if factory == "for_architecture":
            TrainConfig.for_architecture("mlp", epochs=0)
        else:
            TrainConfig(architecture="mlp", epochs=0).validated()


def test_unknown_key_is_named():
    with pytest.raises(ConfigError) as caught:
        TrainConfig.from_dict({"architecture": "mlp", "epochz": 3})
    assert "epochz" in str(caught.value)


def test_unknown_architecture_via_for_architecture():
    with pytest.raises(KeyError, match="resnet152"):
        TrainConfig.for_architecture("resnet152")


@pytest.mark.parametrize(("raw", "expected"), [("", 1), ("3", 3), ("0", 1), ("-2", 1), ("two", 1)])
def test_max_concurrent_runs_from_env(monkeypatch, raw, expected):
    monkeypatch.setenv("MNIST_MAX_CONCURRENT_RUNS", raw)
    assert max_concurrent_runs() == expected


def test_runs_root_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("MNIST_RUNS_DIR", str(tmp_path / "elsewhere"))
    assert runs_root() == (tmp_path / "elsewhere").resolve()

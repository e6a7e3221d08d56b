"""The registry of model architectures: the walkthrough's four, layer for layer, and the studio's own (its presets).

Metadata is plain Python so pages can list architectures without importing TensorFlow; the
`build` functions import Keras only when a model is actually made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mnist_core.settings import IMAGE_SIZE, NUM_CLASSES

INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)


@dataclass(frozen=True)
class Architecture:
    """One registry entry: what it is, how to build it, and its published recipe and numbers."""

    key: str
    title: str
    description: str
    layers: str
    build: Callable[[], object]
    defaults: dict = field(default_factory=dict)
    published_params: int | None = None
    published_test_accuracy: float | None = None
    published: bool = True
    params: int = 0  # what `build` gives; for the walkthrough's models, its published count

    def __post_init__(self):
        if not self.params and self.published_params:
            object.__setattr__(self, "params", self.published_params)


def _layers():
    """Return keras.layers, importing Keras on first use."""
    from mnist_core.tfimport import import_keras

    keras = import_keras()
    return keras, keras.layers


def build_mlp():
    """Return the walkthrough's MLP: 784 -> 256 sigmoid -> 128 sigmoid -> 10 softmax."""
    keras, L = _layers()
    return keras.Sequential(
        [
            L.Input(INPUT_SHAPE),
            L.Flatten(),
            L.Dense(256, activation="sigmoid"),
            L.Dense(128, activation="sigmoid"),
            L.Dense(NUM_CLASSES, activation="softmax"),
        ],
        name="mlp",
    )


def build_cnn():
    """Return the walkthrough's CNN: one 3x3 conv (32), max-pool, dense 256 / 128 / 10."""
    keras, L = _layers()
    return keras.Sequential(
        [
            L.Input(INPUT_SHAPE),
            L.Conv2D(32, 3, activation="relu"),
            L.MaxPooling2D(),
            L.Flatten(),
            L.Dense(256, activation="relu"),
            L.Dense(128, activation="relu"),
            L.Dense(NUM_CLASSES, activation="softmax"),
        ],
        name="cnn",
    )


def build_deeper_cnn():
    """Return the walkthrough's deeper CNN: three conv (32/64/128) + pool blocks, dense 256 / 128 / 10."""
    keras, L = _layers()
    blocks = []
    for filters in (32, 64, 128):
        blocks += [L.Conv2D(filters, 3, activation="relu"), L.MaxPooling2D()]
    return keras.Sequential(
        [
            L.Input(INPUT_SHAPE),
            *blocks,
            L.Flatten(),
            L.Dense(256, activation="relu"),
            L.Dense(128, activation="relu"),
            L.Dense(NUM_CLASSES, activation="softmax"),
        ],
        name="deeper_cnn",
    )


def build_deeper_cnn_bn():
    """Return the walkthrough's BatchNorm CNN: three double-conv blocks with BatchNorm, linear dense head."""
    keras, L = _layers()
    body = []
    for filters in (32, 64):
        body += [
            L.Conv2D(filters, 3, padding="same"),
            L.Conv2D(filters, 3, padding="same"),
            L.ReLU(),
            L.MaxPooling2D(),
            L.BatchNormalization(),
        ]
    # The published third block has no ReLU: kept as published.
    body += [
        L.Conv2D(128, 3, padding="same"),
        L.Conv2D(128, 3, padding="same"),
        L.MaxPooling2D(),
        L.BatchNormalization(),
    ]
    return keras.Sequential(
        [
            L.Input(INPUT_SHAPE),
            *body,
            L.Flatten(),
            L.Dense(256),
            L.Dense(128),
            L.Dense(NUM_CLASSES),
            L.Softmax(),
        ],
        name="deeper_cnn_bn",
    )


def _conv_bn_relu(L, filters: int, strides: int = 1) -> list:
    """Return a bias-free 3x3 'same' convolution (`strides` 2 halves the image), batch normalization and ReLU."""
    return [L.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False), L.BatchNormalization(), L.ReLU()]


def build_fast_cnn():
    """Return a small BatchNorm CNN (16 / 32 / 64 filters, 29k parameters) that passes 99 % in seconds."""
    keras, L = _layers()
    # The first convolution strides by 2 instead of a max-pool after it: the same 14x14 maps and accuracy, and
    # training about 1.3x faster (BENCHMARKS.md section 2), as no 28x28 map is computed, normalized or pooled.
    body = [*_conv_bn_relu(L, 16, strides=2)]
    for filters in (32, 64):
        body += [*_conv_bn_relu(L, filters), L.MaxPooling2D()]
    return keras.Sequential(
        [L.Input(INPUT_SHAPE), *body, L.Flatten(), L.Dense(NUM_CLASSES, activation="softmax")],
        name="fast_cnn",
    )


def _strong_body(L) -> list:
    """Return the Best preset's layers after its input: four BatchNorm convolutions (32, 64, 64, 128), three
    max-pools, dropout and the softmax."""
    return [
        *_conv_bn_relu(L, 32),
        L.MaxPooling2D(),
        *_conv_bn_relu(L, 64),
        *_conv_bn_relu(L, 64),
        L.MaxPooling2D(),
        *_conv_bn_relu(L, 128),
        L.MaxPooling2D(),
        L.Flatten(),
        L.Dropout(0.25),
        L.Dense(NUM_CLASSES, activation="softmax"),
    ]


def build_strong_cnn():
    """Return a BatchNorm CNN that shifts its training digits by up to 2 pixels, for >= 99.5 %."""
    keras, L = _layers()
    shift = 2 / IMAGE_SIZE
    # Augmentation as a layer: active in training only, and saved with the model.
    return keras.Sequential(
        [L.Input(INPUT_SHAPE), L.RandomTranslation(shift, shift, fill_mode="constant"), *_strong_body(L)],
        name="strong_cnn",
    )


def _augmented_outside(name: str):
    """Return strong_cnn's network without its translation layer, named `name`: augment.py moves, turns, scales,
    shears, re-strokes and bends its training digits instead."""
    keras, L = _layers()
    return keras.Sequential([L.Input(INPUT_SHAPE), *_strong_body(L)], name=name)


def build_best_cnn():
    """Return the Best preset's network (trained on 'varied' digits)."""
    return _augmented_outside("best_cnn")


def build_robust_cnn():
    """Return the Best preset's network under the Robust preset's name (trained on 'drawn' digits)."""
    return _augmented_outside("robust_cnn")


_WALKTHROUGH_SGD = {"epochs": 100, "batch_size": 64, "optimizer": "sgd", "learning_rate": 1e-3}
# The recipe of strong_cnn and the Robust preset (on 'drawn' digits); the Best preset trains longer, on more.
_AUGMENTED_RECIPE = {
    "epochs": 15,
    "batch_size": 128,
    "optimizer": "adam",
    "learning_rate": 3e-3,
    "lr_schedule": "one_cycle",
}

ARCHITECTURES: dict[str, Architecture] = {
    arch.key: arch
    for arch in (
        Architecture(
            key="mlp",
            title="Multilayer perceptron",
            description=(
                "The walkthrough's starting point: the 28x28 image is flattened into 784 numbers and fed "
                "through two fully connected sigmoid layers (256 and 128 units) to a 10-way softmax. It "
                "ignores that neighbouring pixels belong together, and with plain SGD at 1e-3 the sigmoid "
                "units learn slowly: accuracy stays near chance for the first epochs and climbs to about "
                "86 % after 100 epochs."
            ),
            layers="Flatten, Dense 256 sigmoid, Dense 128 sigmoid, Dense 10 softmax",
            build=build_mlp,
            defaults=dict(_WALKTHROUGH_SGD),
            published_params=235_146,
            published_test_accuracy=0.8646,
        ),
        Architecture(
            key="cnn",
            title="Convolutional network",
            description=(
                "One 3x3 convolution with 32 filters looks at small patches, so the network learns strokes "
                "and edges wherever they appear; a 2x2 max-pool halves the map before two dense ReLU layers "
                "(256, 128) and the softmax. Most of its 1.4 M parameters sit in the first dense layer. "
                "With SGD at 1e-3 it reaches about 97.4 % after 100 epochs."
            ),
            layers="Conv2D 32 3x3 relu (valid), MaxPool 2, Flatten, Dense 256 relu, Dense 128 relu, Dense 10 softmax",
            build=build_cnn,
            defaults=dict(_WALKTHROUGH_SGD),
            published_params=1_419_210,
            published_test_accuracy=0.9739,
        ),
        Architecture(
            key="deeper_cnn",
            title="Deeper convolutional network",
            description=(
                "Three convolution + max-pool blocks (32, 64 and 128 filters) build features of growing size "
                "from strokes to whole loops, shrinking the map to 1x1 before the dense head. It has nine "
                "times fewer parameters than the one-layer CNN yet reaches about 97.8 % after 100 epochs of "
                "SGD at 1e-3; its first epochs are slow to start."
            ),
            layers=(
                "[Conv2D 32/64/128 3x3 relu (valid), MaxPool 2] x3, Flatten, Dense 256 relu, Dense 128 relu, "
                "Dense 10 softmax"
            ),
            build=build_deeper_cnn,
            defaults=dict(_WALKTHROUGH_SGD),
            published_params=159_882,
            published_test_accuracy=0.9781,
        ),
        Architecture(
            key="deeper_cnn_bn",
            title="Deeper CNN with batch normalization",
            description=(
                "Pairs of 'same' 3x3 convolutions (32, 64, 128 filters) with max-pooling and batch "
                "normalization after each block, a linear dense head and a final softmax, trained with Adam "
                "at 1e-3. Batch normalization keeps each layer's inputs well scaled, so it learns in one "
                "epoch what the others need dozens for: 99.1 % validation accuracy at epoch 11, where the "
                "published run was cut short."
            ),
            layers=(
                "[Conv2D f 3x3 same, Conv2D f 3x3 same, ReLU, MaxPool 2, BatchNorm] for f = 32, 64, "
                "[Conv2D 128 same, Conv2D 128 same, MaxPool 2, BatchNorm], Flatten, Dense 256, Dense 128, "
                "Dense 10 (linear), Softmax"
            ),
            build=build_deeper_cnn_bn,
            defaults={"epochs": 11, "batch_size": 64, "optimizer": "adam", "learning_rate": 1e-3},
            published_params=616_682,
            published_test_accuracy=None,
        ),
        Architecture(
            key="fast_cnn",
            title="Quick 99 % (fast CNN)",
            description=(
                "Not from the walkthrough: three small convolution blocks (16, 32 and 64 filters, each "
                "with batch normalization; the first strides by 2, the others end in max-pooling) and a single "
                "softmax layer, only 29 k parameters. Trained with Adam in batches of 256 and a one-cycle "
                "learning rate (warm up to 1.6e-2 over the first 10 % of steps, then cosine down to zero), it "
                "passes 99 % test accuracy in two epochs (99.02 to 99.21 % over seven seeds; BENCHMARKS.md has "
                "its time against the walkthrough's)."
            ),
            layers=(
                "[Conv2D 16 3x3 stride 2 (no bias), BatchNorm, ReLU], [Conv2D f 3x3 same (no bias), BatchNorm, "
                "ReLU, MaxPool 2] for f = 32, 64, Flatten, Dense 10 softmax"
            ),
            build=build_fast_cnn,
            # Batches of 256 cost 16 % less per digit than 128 here, and the higher rate makes up for half the
            # steps: 99.10 % median over seven seeds against 99.02 % of five (BENCHMARKS.md section 2).
            defaults={
                "epochs": 2,
                "batch_size": 256,
                "optimizer": "adam",
                "learning_rate": 1.6e-2,
                "lr_schedule": "one_cycle",
            },
            published=False,
            params=29_402,
        ),
        Architecture(
            key="strong_cnn",
            title="Shifted CNN (the first Best preset)",
            description=(
                "Not from the walkthrough, and the Best preset until December 2026: four convolution layers (32, "
                "64, 64, 128 filters) with batch normalization, dropout before the softmax, and a RandomTranslation "
                "layer that moves every training digit by up to 2 pixels each epoch (it does nothing at prediction "
                "time). With the one-cycle schedule over 15 epochs it reaches 99.5 to 99.7 % test accuracy."
            ),
            layers=(
                "RandomTranslation ±2 px, [Conv2D 32, BN, ReLU], MaxPool 2, [Conv2D 64, BN, ReLU] x2, MaxPool 2, "
                "[Conv2D 128, BN, ReLU], MaxPool 2, Flatten, Dropout 0.25, Dense 10 softmax"
            ),
            build=build_strong_cnn,
            defaults=dict(_AUGMENTED_RECIPE),
            published=False,
            params=141_994,
        ),
        Architecture(
            key="robust_cnn",
            title="Robust to drawings (augmented CNN)",
            description=(
                "Not from the walkthrough: the Best preset's network, trained on digits changed the ways a drawing "
                "on the canvas differs from MNIST's scans. Every epoch each training digit is turned by up to 12°, "
                "scaled by 0.85 to 1.1, slanted, drawn with a thicker or thinner pen, bent a little and moved by up "
                "to 2 pixels (the 'drawn' augmentation; its preview is under More settings). It scores a little "
                "lower on MNIST's own test set and better on drawn digits."
            ),
            layers=(
                "[Conv2D 32, BN, ReLU], MaxPool 2, [Conv2D 64, BN, ReLU] x2, MaxPool 2, [Conv2D 128, BN, ReLU], "
                "MaxPool 2, Flatten, Dropout 0.25, Dense 10 softmax; 'drawn' augmentation while training"
            ),
            build=build_robust_cnn,
            defaults=dict(_AUGMENTED_RECIPE, augmentation="drawn"),
            published=False,
            params=141_994,
        ),
        Architecture(
            key="best_cnn",
            title="Best 99.7 % (augmented CNN)",
            description=(
                "Not from the walkthrough: four convolution layers (32, 64, 64, 128 filters) with batch "
                "normalization and dropout before the softmax, trained on all 60,000 training digits (none held "
                "out: the last epoch's model is kept), each changed a little every epoch: turned by up to 8°, "
                "scaled by 0.92 to 1.08, slanted, drawn with a slightly thicker or thinner pen, bent and moved by "
                "up to 2 pixels (the 'varied' augmentation). Label smoothing (0.1) keeps it from growing "
                "over-sure of the training digits. With the one-cycle schedule over 20 epochs it reached 99.64 "
                "to 99.74 % test accuracy (median 99.71 % of seven draws) in 11 to 14 minutes on a 2-core CPU "
                "(BENCHMARKS.md section 3)."
            ),
            layers=(
                "[Conv2D 32, BN, ReLU], MaxPool 2, [Conv2D 64, BN, ReLU] x2, MaxPool 2, [Conv2D 128, BN, ReLU], "
                "MaxPool 2, Flatten, Dropout 0.25, Dense 10 softmax; 'varied' augmentation while training"
            ),
            build=build_best_cnn,
            # Measured on 2026-12-07: without label smoothing the same recipe's draws scored 99.59 to 99.69 %.
            defaults=dict(_AUGMENTED_RECIPE, epochs=20, augmentation="varied", label_smoothing=0.1, validation=False),
            published=False,
            params=141_994,
        ),
    )
}

PUBLISHED_KEYS = tuple(key for key, arch in ARCHITECTURES.items() if arch.published)
# No time in a label: machines differ by 5x and more, so the Train page shows this machine's own figure.
PRESETS = {"Quick 99 %": "fast_cnn", "Best 99.7 %": "best_cnn", "Robust to drawings": "robust_cnn"}


def get_architecture(key: str) -> Architecture:
    """Return the registry entry for `key`; KeyError names the known keys."""
    try:
        return ARCHITECTURES[key]
    except KeyError:
        raise KeyError(f"unknown architecture {key!r} (choose one of {', '.join(ARCHITECTURES)})") from None


def build_model(key: str):
    """Return a fresh, uncompiled Keras model of architecture `key` (input (None, 28, 28, 1))."""
    return get_architecture(key).build()


def layer_table(model) -> list[dict]:
    """Return one row per layer: name, type, output shape and parameter count."""
    rows = []
    for layer in model.layers:
        shape = getattr(layer, "output", None)
        rows.append(
            {
                "layer": layer.name,
                "type": type(layer).__name__,
                "output shape": str(tuple(shape.shape)) if shape is not None else "",
                "parameters": int(layer.count_params()),
            }
        )
    return rows

"""Inside a model, for one 28x28 input: every layer's output from one compiled pass, the first convolution's
filters, where the model looks (Grad-CAM and integrated gradients, written with tf.GradientTape) and where
the digit lands among the test digits (the penultimate layer's features, mapped to 2-D).

The studio's models are Sequential, for which `model.output` is undefined until the model is called
(keras-team/keras-io#1903); so the views run the layers one after another inside a tf.function instead of
building sub-models, which also makes every layer's output one pass rather than one `predict` per layer.
Gradients are a few lines of tf.GradientTape: no extra library to pin for what they do here.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

import numpy as np

from mnist_core.settings import IMAGE_SIZE
from mnist_core.tfimport import import_keras

INTEGRATION_STEPS = 128  # integrated gradients: the path from black to the input (trapezoid rule; 64 missed
# completeness by 0.8 % on untrained CNNs)
EMBEDDING_DIGITS = 2000  # test digits on the embedding map
NEAREST = 8  # the digits most like the input
EMBEDDING_METHODS = ("pca", "tsne")
SPATIAL = ("Conv2D", "MaxPooling2D", "AveragePooling2D", "BatchNormalization", "ReLU", "Activation", "Dropout")


@dataclass(frozen=True)
class LayerOutput:
    """One layer's output for one input: its name, type, shape (without the batch) and values."""

    name: str
    kind: str
    shape: tuple[int, ...]
    values: np.ndarray

    @property
    def is_map(self) -> bool:
        """Return True for feature maps (height, width, channels), False for a vector of units."""
        return len(self.shape) == 3


class Inspector:
    """The views inside one Keras model, traced once: its layers in order, one pass for every output, the
    gradients for Grad-CAM and integrated gradients, and the penultimate features of test digits (cached)."""

    def __init__(self, model):
        import_keras()
        import tensorflow as tf

        self.model = model
        self.layers = model_layers(model)
        # A Sequential model runs its layers one after another; any other (an ensemble's averaging graph) is
        # read through one model with every layer's output, which such a model has.
        self._graph = None
        if not isinstance(model, import_keras().Sequential):
            self._graph = import_keras().Model(model.inputs, [layer.output for layer in self.layers])
        kinds = [type(layer).__name__ for layer in self.layers]
        self.last_conv = _grad_cam_layer(kinds)
        last_dense = max((i for i, kind in enumerate(kinds) if kind == "Dense"), default=len(self.layers) - 1)
        self.feature_layer = max(0, last_dense - 1)  # the penultimate features: what the classifier reads
        spec = [tf.TensorSpec((None, IMAGE_SIZE, IMAGE_SIZE, 1), tf.float32)]
        self._outputs = tf.function(self._all_outputs, input_signature=spec, reduce_retracing=True)
        self._features = tf.function(
            lambda x: self._all_outputs(x, stop=self.feature_layer)[-1], input_signature=spec, reduce_retracing=True
        )
        self._integrated = tf.function(self._integrated_gradients, reduce_retracing=True)
        self._cam = tf.function(self._grad_cam, reduce_retracing=True) if self.last_conv is not None else None
        self._embeddings: dict[tuple, Embedding] = {}
        self._lock = threading.Lock()

    def _all_outputs(self, x, stop: int | None = None):
        """Return every layer's output (through layer `stop` when given), running the layers in order."""
        if self._graph is not None:
            outputs = self._graph(x, training=False)
            return outputs if stop is None else outputs[: stop + 1]
        outputs = []
        for index, layer in enumerate(self.layers):
            x = layer(x, training=False)
            outputs.append(x)
            if index == stop:
                break
        return outputs

    def layer_outputs(self, image: np.ndarray) -> list[LayerOutput]:
        """Return every layer's output for one (28, 28) image in [0, 1], from one compiled pass."""
        outputs = self._outputs(_batch(image))
        return [
            LayerOutput(layer.name, type(layer).__name__, tuple(output.shape[1:]), output.numpy()[0])
            for layer, output in zip(self.layers, outputs, strict=True)
        ]

    def first_filters(self) -> np.ndarray | None:
        """Return the first convolution's kernels as (filters, height, width) for one input channel, None for a
        model without convolutions."""
        for layer in self.layers:
            if type(layer).__name__ == "Conv2D":
                kernel = layer.get_weights()[0]  # (height, width, in_channels, filters)
                return np.moveaxis(kernel[:, :, 0, :], -1, 0)
        return None

    def _integrated_gradients(self, image, target, steps):
        """Return the integrated gradients of class `target`'s probability from a black image to `image`."""
        import tensorflow as tf

        alphas = tf.reshape(tf.linspace(0.0, 1.0, steps + 1), (-1, 1, 1, 1))
        path = alphas * image  # the baseline is black (0): MNIST's background
        with tf.GradientTape() as tape:
            tape.watch(path)
            probabilities = self._all_outputs(path)[-1][:, target]
        gradients = tape.gradient(probabilities, path)
        average = tf.reduce_mean((gradients[:-1] + gradients[1:]) / 2.0, axis=0)  # the trapezoid rule
        return image[0] * average

    def integrated_gradients(self, image: np.ndarray, target: int, steps: int = INTEGRATION_STEPS) -> np.ndarray:
        """Return the (28, 28) integrated gradients of class `target` for one image: how much each pixel, from
        black to its value, raised (+) or lowered (-) the class's probability; they sum to the change."""
        import tensorflow as tf

        return self._integrated(_batch(image), tf.constant(target), tf.constant(steps)).numpy()[..., 0]

    def _grad_cam(self, image, target):
        """Return the Grad-CAM map of class `target` on the last convolution's output, at its resolution."""
        import tensorflow as tf

        x = tf.concat([image, tf.zeros_like(image)], axis=0)  # the input, and a blank page beside it
        with tf.GradientTape() as tape:
            for index, layer in enumerate(self.layers[:-1]):
                x = layer(x, training=False)
                if index == self.last_conv:
                    maps = x
                    tape.watch(maps)
            score = _logits(self.layers[-1], x)[0, target]  # before the softmax: it saturates
        gradients = tape.gradient(score, maps)[:1]
        weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)  # one weight per channel
        # Measured from a blank page: batch norm gives empty paper activity of its own, which would light up.
        return tf.nn.relu(tf.reduce_sum(weights * (maps[:1] - maps[1:]), axis=-1))[0]

    def grad_cam(self, image: np.ndarray, target: int) -> np.ndarray | None:
        """Return Grad-CAM of class `target` for one image, resized to (28, 28) and scaled to [0, 1] (all 0
        when nothing speaks for the class); None for a model without convolutions."""
        if self._cam is None:
            return None
        import tensorflow as tf

        cam = self._cam(_batch(image), tf.constant(target))
        resized = tf.image.resize(cam[None, :, :, None], (IMAGE_SIZE, IMAGE_SIZE), method="bilinear")
        values = resized.numpy()[0, :, :, 0]
        top = values.max()
        return values / top if top > 0 else values

    def features(self, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """Return the penultimate layer's features (N, D) for images (N, 28, 28) in [0, 1]."""
        batch = np.asarray(images, np.float32).reshape(-1, IMAGE_SIZE, IMAGE_SIZE, 1)
        chunks = [self._features(batch[i : i + batch_size]).numpy() for i in range(0, len(batch), batch_size)]
        return np.concatenate(chunks).reshape(len(batch), -1)

    def embedding(self, images: np.ndarray, method: str = "pca") -> Embedding:
        """Return the 2-D map of `images`' penultimate features, computed once per model, method and image set."""
        if method not in EMBEDDING_METHODS:
            raise ValueError(f"method: {method!r} is not one of {', '.join(EMBEDDING_METHODS)}")
        key = (method, len(images), hash(np.asarray(images[:: max(1, len(images) // 50)]).tobytes()))
        with self._lock:
            if key not in self._embeddings:
                self._embeddings[key] = Embedding.of(self.features(images), method)
            return self._embeddings[key]


@dataclass(frozen=True)
class Embedding:
    """Digits' penultimate features (N, D) and their 2-D map (N, 2); PCA keeps its projection for new inputs."""

    features: np.ndarray
    coords: np.ndarray
    method: str
    projection: object | None = None  # the fitted PCA

    @classmethod
    def of(cls, features: np.ndarray, method: str) -> Embedding:
        """Return the map of `features`: PCA's first two components, or t-SNE (seeded)."""
        if method == "tsne":
            from sklearn.manifold import TSNE

            coords = TSNE(n_components=2, init="pca", perplexity=30, random_state=0).fit_transform(features)
            return cls(features, coords, method)
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=0).fit(features)
        return cls(features, pca.transform(features), method, pca)

    def place(self, feature: np.ndarray) -> np.ndarray:
        """Return where one input's features (D,) land on the map: PCA projects them; t-SNE, which has no
        projection, puts them at the mean place of their nearest digits."""
        if self.projection is not None:
            return self.projection.transform(feature.reshape(1, -1))[0]
        return self.coords[nearest(self.features, feature)].mean(axis=0)


def _logits(last, x):
    """Return the class scores before the softmax, given the input `x` of the model's last layer: a softmax
    Dense layer's affine part, what a Softmax layer receives, or (any other last layer) the log of its output."""
    import tensorflow as tf

    kind = type(last).__name__
    if kind == "Dense" and getattr(last.activation, "__name__", "") == "softmax":
        return tf.matmul(x, last.kernel) + (last.bias if last.bias is not None else 0.0)
    if kind == "Softmax":
        return x
    return tf.math.log(last(x, training=False) + 1e-7)


def _grad_cam_layer(kinds: list[str]) -> int | None:
    """Return the index of the layer whose maps Grad-CAM weighs: the last convolution's, after its batch norm
    and activation when they follow it (the maps the next block reads, not pre-activation values), None for a
    model without convolutions."""
    last = max((i for i, kind in enumerate(kinds) if kind == "Conv2D"), default=None)
    if last is None:
        return None
    while last + 1 < len(kinds) and kinds[last + 1] in ("BatchNormalization", "ReLU", "Activation"):
        last += 1
    return last


def model_layers(model) -> list:
    """Return a model's layers in the order they run at inference (a Sequential's own list), without the input
    layer and without augmentation layers (RandomTranslation...): they pass an image through unchanged there,
    and no gradient flows through them."""
    return [
        layer
        for layer in model.layers
        if type(layer).__name__ != "InputLayer" and not type(layer).__name__.startswith("Random")
    ]


def _batch(image: np.ndarray) -> np.ndarray:
    """Return one (28, 28) image as a (1, 28, 28, 1) float32 batch."""
    return np.asarray(image, np.float32).reshape(1, IMAGE_SIZE, IMAGE_SIZE, 1)


def nearest(features: np.ndarray, feature: np.ndarray, count: int = NEAREST) -> np.ndarray:
    """Return the indices of the `count` rows of `features` (N, D) nearest to `feature` (D,), nearest first
    (Euclidean distance)."""
    distances = np.linalg.norm(features - feature.reshape(1, -1), axis=1)
    return np.argsort(distances, kind="stable")[:count]


_INSPECTORS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # one per loaded model (models.py's cache)
_INSPECTORS_LOCK = threading.Lock()


def inspector(model) -> Inspector:
    """Return the Inspector of `model`, made once while the model stays loaded."""
    with _INSPECTORS_LOCK:
        if model not in _INSPECTORS:
            _INSPECTORS[model] = Inspector(model)
        return _INSPECTORS[model]

"""What the Inside page draws: feature maps tiled into one image, a dense layer's strongest units, filters,
saliency over the input, and the embedding map of test digits with the input marked."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from mnist_core.charts import LAYOUT, PALETTE, chart_title

MAPS_SHOWN = 32  # feature maps of one layer shown (the first ones, in channel order)
UNITS_SHOWN = 12  # a dense layer's strongest units shown
MAP_GAP = 1  # pixels between tiled maps
MAP_PIXELS = 56  # each map is enlarged by a whole factor to at least this size
DIGIT_COLORS = (*PALETTE, "#333333")  # ten: one per digit on the embedding map


def tile_maps(values: np.ndarray, columns: int = 8, shown: int = MAPS_SHOWN) -> np.ndarray:
    """Return a layer's feature maps (height, width, channels) tiled into one image in [0, 1] (dark is active),
    each map scaled by its own largest value; `columns` maps a row, the first `shown` channels."""
    maps = np.moveaxis(values[:, :, :shown], -1, 0)
    tops = np.abs(maps).max(axis=(1, 2), keepdims=True)
    scaled = np.where(tops > 0, np.clip(maps / np.where(tops > 0, tops, 1), 0, 1), 0)
    crisp = max(1, MAP_PIXELS // maps.shape[1])  # small maps enlarged here: a browser would blur them
    return _tiled(np.kron(1 - scaled, np.ones((1, crisp, crisp))), columns)


def strongest_units(values: np.ndarray, count: int = UNITS_SHOWN) -> list[tuple[int, float]]:
    """Return the `count` units of a vector with the largest activations, largest first, as (unit, value)."""
    order = np.argsort(-values, kind="stable")[:count]
    return [(int(unit), float(values[unit])) for unit in order]


def units_figure(units: list[tuple[int, float]], title: str, height: int = 220) -> go.Figure:
    """Return a bar chart of a dense layer's strongest units."""
    figure = go.Figure(
        go.Bar(
            x=[f"#{unit}" for unit, _ in units],
            y=[value for _, value in units],
            marker_color=PALETTE[0],
            hovertemplate="unit %{x}: %{y:.3f}<extra></extra>",
        )
    )
    figure.update_layout(**LAYOUT, height=height, title=chart_title(title), showlegend=False)
    figure.update_xaxes(type="category")
    return figure


def filters_image(kernels: np.ndarray, columns: int = 8, scale: int = 6) -> np.ndarray:
    """Return the first convolution's kernels (filters, 3, 3) tiled into one image in [0, 1] (mid-grey is 0,
    light positive, dark negative, one scale for all), each kernel enlarged `scale` times."""
    top = np.abs(kernels).max() or 1.0
    return _tiled(np.kron(0.5 + kernels / (2 * top), np.ones((1, scale, scale))), columns)


def _tiled(images: np.ndarray, columns: int) -> np.ndarray:
    """Return images (N, h, w) in [0, 1] tiled in rows of `columns`, on white."""
    count, height, width = images.shape
    columns = min(columns, count)
    rows = -(-count // columns)
    grid = np.ones((rows * (height + MAP_GAP) - MAP_GAP, columns * (width + MAP_GAP) - MAP_GAP), np.float32)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        y, x = row * (height + MAP_GAP), column * (width + MAP_GAP)
        grid[y : y + height, x : x + width] = image
    return grid


def overlay(image: np.ndarray, heat: np.ndarray, signed: bool = False, scale: int = 8) -> np.ndarray:
    """Return an RGB uint8 picture of a (28, 28) input in grey with a saliency map over it, enlarged `scale`
    times: red where the map is high (and, when `signed`, blue where it is negative)."""
    grey = 0.35 * np.asarray(image, np.float32)
    top = np.abs(heat).max() or 1.0
    positive = np.clip(heat / top, 0, 1)
    negative = np.clip(-heat / top, 0, 1) if signed else np.zeros_like(positive)
    rgb = np.clip(np.stack([grey + 0.65 * positive, grey, grey + 0.65 * negative], axis=-1), 0, 1)
    return (np.kron(rgb, np.ones((scale, scale, 1))) * 255).astype(np.uint8)


def enlarged(image: np.ndarray, scale: int = 8) -> np.ndarray:
    """Return a (28, 28) input in [0, 1] as a grey uint8 picture enlarged `scale` times (crisp pixels)."""
    return (np.kron(np.clip(image, 0, 1), np.ones((scale, scale))) * 255).astype(np.uint8)


def embedding_figure(coords: np.ndarray, labels: np.ndarray, point: np.ndarray, method: str, height: int = 460):
    """Return the 2-D map of test digits coloured by label, with the input as a large black cross."""
    figure = go.Figure()
    for digit in range(10):
        chosen = labels == digit
        figure.add_trace(
            go.Scattergl(
                x=coords[chosen, 0],
                y=coords[chosen, 1],
                mode="markers",
                name=str(digit),
                marker={"size": 5, "color": DIGIT_COLORS[digit], "opacity": 0.6},
                hovertemplate=f"a {digit}<extra></extra>",
            )
        )
    figure.add_trace(
        go.Scatter(
            x=[point[0]],
            y=[point[1]],
            mode="markers",
            name="this input",
            marker={"size": 18, "symbol": "x", "color": "black", "line": {"width": 2, "color": "white"}},
            hovertemplate="this input<extra></extra>",
        )
    )
    name = {"pca": "PCA", "tsne": "t-SNE"}[method]
    figure.update_layout(
        **LAYOUT,
        height=height,
        title=chart_title(f"Where the digit lands ({name} of the penultimate layer)", "one dot per test digit"),
    )
    figure.update_xaxes(showticklabels=False)
    figure.update_yaxes(showticklabels=False)
    return figure

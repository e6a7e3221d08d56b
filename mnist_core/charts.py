"""Plotly figures for the pages: training curves, digits, confusion matrix, probabilities."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mnist_core.settings import NUM_CLASSES

TARGET_ACCURACY = 0.99  # the walkthrough's goal, drawn as a line once curves come within reach
TARGET_NEAR = 0.9
PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6", "#9d755d", "#bab0ac")
METRIC_TITLES = {"loss": "Loss (cross-entropy)", "accuracy": "Accuracy"}
X_TITLES = {"epoch": "Epoch", "elapsed": "Training seconds"}
# Legend below the x-axis title, not on top of it; a top margin that holds Plotly's toolbar (about 30 px, shown
# on hover or a tap) above the title, which sits on the plot area: on a phone the toolbar covered it.
LAYOUT = {
    "margin": {"l": 10, "r": 10, "t": 64, "b": 10},
    "legend": {"orientation": "h", "y": -0.3, "yanchor": "top"},
}
TITLE_PLACE = {"xref": "paper", "x": 0, "xanchor": "left", "yref": "paper", "y": 1, "yanchor": "bottom"}


def chart_title(text: str, subtitle: str = "") -> dict:
    """Return a layout title `text` (and a smaller `subtitle` under it) on the plot area's top edge, below the
    toolbar's strip; a phone's width holds either line."""
    if not text:
        return {"text": ""}
    pad = 28 if subtitle else 10  # the title's baseline is placed; the subtitle hangs below it
    return {"text": text, "subtitle": {"text": subtitle}, "pad": {"b": pad}, **TITLE_PLACE}


@dataclass
class Series:
    """One set of per-epoch curves to draw: a run or a published reference."""

    name: str
    rows: list[dict]
    dashed: bool = False
    color: str | None = None


def smooth(values: list[float], weight: float) -> list[float]:
    """Return the exponential moving average of `values` (TensorBoard's smoothing; 0 = unchanged)."""
    out, last = [], None
    for value in values:
        last = value if last is None else weight * last + (1 - weight) * value
        out.append(last)
    return out


def _xs(rows: list[dict], x: str) -> list[float]:
    """Return the x values of per-epoch rows: epoch numbers or cumulative seconds."""
    return [row.get(x) for row in rows]


def has_validation(item: Series) -> bool:
    """Return True when any epoch of the series has a validation accuracy (not a run trained without one)."""
    return any(_is_finite(row.get("val_accuracy")) for row in item.rows)


def _is_finite(value) -> bool:
    """Return True for a number that is neither None nor NaN."""
    return isinstance(value, (int, float)) and math.isfinite(value)


def percent_tick_format(values) -> str:
    """Return a tick format for accuracies spanning `values` with as many decimals as neighbouring ticks need."""
    finite = [value for value in values if _is_finite(value)]
    span = max(finite) - min(finite) if len(finite) > 1 else 1.0
    decimals = 0 if span >= 0.2 else 1 if span >= 0.02 else 2 if span >= 0.002 else 3
    return f".{decimals}%"


def _accuracy_axis(figure: go.Figure, values, **where) -> None:
    """Format an accuracy axis readably at any range, with the 99 % line once the curves come near it."""
    figure.update_yaxes(tickformat=percent_tick_format(values), **where)
    finite = [value for value in values if _is_finite(value)]
    if finite and max(finite) >= TARGET_NEAR:
        figure.add_hline(
            y=TARGET_ACCURACY,
            line={"color": "#9aa5b1", "width": 1, "dash": "dot"},
            annotation_text="99 %",
            annotation_position="bottom right",
            **({"row": where["row"], "col": where["col"]} if where else {}),
        )


def curves_figure(
    series: list[Series], metric: str = "accuracy", x: str = "epoch", smoothing: float = 0.0, height: int = 380
) -> go.Figure:
    """Return one chart of `metric` per epoch for every series: validation thick and named in the legend,
    training thin and dotted in the same colour (one legend entry per series)."""
    figure = go.Figure()
    plotted = []
    for i, item in enumerate(series):
        color = item.color or PALETTE[i % len(PALETTE)]
        xs = _xs(item.rows, x)
        # A run trained without validation has no validation curve: its training curve is the one in the legend.
        validated = has_validation(item)
        for prefix, width in (("val_", 3), ("", 1.5)) if validated else (("", 1.5),):
            ys = smooth([row.get(prefix + metric) for row in item.rows], smoothing)
            if not ys:
                continue
            plotted += ys
            figure.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines+markers" if len(ys) < 30 else "lines",
                    name=item.name if prefix else f"{item.name} (training{'' if validated else ' only'})",
                    legendgroup=item.name,
                    showlegend=bool(prefix) or not validated,
                    line={
                        "color": color,
                        "width": width,
                        "dash": "dash" if item.dashed else ("dot" if not prefix else "solid"),
                    },
                    marker={"size": 5},
                )
            )
    figure.update_layout(
        title=chart_title(
            METRIC_TITLES.get(metric, metric),
            "solid: validation · dotted: training" if any(map(has_validation, series)) else "training (no validation)",
        ),
        xaxis_title=X_TITLES[x],
        height=height,
        **{**LAYOUT, "margin": {**LAYOUT["margin"], "t": 84}},  # room for the subtitle too
    )
    if x == "epoch" and max((len(item.rows) for item in series), default=0) <= 20:
        figure.update_xaxes(dtick=1)  # whole epochs only, no '1.5'
    if metric == "accuracy":
        _accuracy_axis(figure, plotted)
    return figure


def side_by_side_figure(series: list[Series], x: str = "epoch", smoothing: float = 0.0, height: int = 420) -> go.Figure:
    """Return a 2x2 grid: train / validation loss and accuracy, one colour per series."""
    figure = make_subplots(
        rows=2, cols=2, subplot_titles=("Train loss", "Validation loss", "Train accuracy", "Validation accuracy")
    )
    for i, item in enumerate(series):
        color = item.color or PALETTE[i % len(PALETTE)]
        xs = _xs(item.rows, x)
        validated = has_validation(item)
        for (row, col), key in zip(
            ((1, 1), (1, 2), (2, 1), (2, 2)), ("loss", "val_loss", "accuracy", "val_accuracy"), strict=True
        ):
            if key.startswith("val_") and not validated:
                continue  # trained without validation: its validation panels stay empty, named in the legend
            figure.add_trace(
                go.Scatter(
                    x=xs,
                    y=smooth([r.get(key) for r in item.rows], smoothing),
                    mode="lines",
                    name=item.name if validated else f"{item.name} (no validation)",
                    legendgroup=item.name,
                    showlegend=(row, col) == (1, 1),
                    line={"color": color, "dash": "dash" if item.dashed else "solid"},
                ),
                row=row,
                col=col,
            )
    figure.update_xaxes(title_text=X_TITLES[x], row=2)
    for col, key in ((1, "accuracy"), (2, "val_accuracy")):
        _accuracy_axis(figure, [row.get(key) for item in series for row in item.rows], row=2, col=col)
    figure.update_layout(height=height, **LAYOUT)
    return figure


def batch_curve_figure(batches: list[dict], height: int = 300) -> go.Figure:
    """Return the running per-batch loss and accuracy (two y axes) against fractional epochs."""
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    xs = [row["epoch_progress"] for row in batches]
    figure.add_trace(
        go.Scatter(x=xs, y=[row["loss"] for row in batches], name="running loss", line={"color": PALETTE[1]}),
        secondary_y=False,
    )
    figure.add_trace(
        go.Scatter(x=xs, y=[row["accuracy"] for row in batches], name="running accuracy", line={"color": PALETTE[0]}),
        secondary_y=True,
    )
    figure.update_yaxes(title_text="loss", secondary_y=False)
    figure.update_yaxes(
        title_text="accuracy", tickformat=percent_tick_format([row["accuracy"] for row in batches]), secondary_y=True
    )
    figure.update_layout(
        title=chart_title("Running curve (every few batches)"), xaxis_title="Epoch", height=height, **LAYOUT
    )
    return figure


def digit_figure(image: np.ndarray, height: int = 420, title: str = "") -> go.Figure:
    """Return a heatmap of one image (grey, white ink on black), each pixel's value written in it."""
    values = np.asarray(image)
    figure = go.Figure(
        go.Heatmap(
            z=values,
            colorscale="gray",
            showscale=False,
            text=values.round(2) if values.dtype.kind == "f" else values,
            texttemplate="%{text}",
            textfont={"size": 7},
            hovertemplate="row %{y}, col %{x}: %{z}<extra></extra>",
        )
    )
    figure.update_yaxes(autorange="reversed", scaleanchor="x", showticklabels=False, showgrid=False, zeroline=False)
    figure.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    figure.update_layout(
        height=height, title=chart_title(title), margin={"l": 0, "r": 0, "t": 64 if title else 0, "b": 0}
    )
    return figure


def class_counts_figure(counts: dict[str, list[int]], height: int = 320) -> go.Figure:
    """Return grouped bars: images per digit for each split (whole-number ticks for a handful of drawings)."""
    figure = go.Figure(
        [
            go.Bar(name=split, x=list(range(NUM_CLASSES)), y=values, marker_color=PALETTE[i])
            for i, (split, values) in enumerate(counts.items())
        ]
    )
    figure.update_layout(
        barmode="group", xaxis={"dtick": 1, "title": "digit"}, yaxis_title="images", height=height, **LAYOUT
    )
    if max((max(values, default=0) for values in counts.values()), default=0) <= 10:
        figure.update_yaxes(dtick=1)  # plotly's own ticks would put 0.5 between counts of one and two
    return figure


def mean_images_figure(means: np.ndarray, height: int = 212) -> go.Figure:
    """Return the ten mean digits side by side."""
    figure = make_subplots(
        rows=1, cols=NUM_CLASSES, subplot_titles=[str(d) for d in range(NUM_CLASSES)], horizontal_spacing=0.01
    )
    for digit in range(NUM_CLASSES):
        figure.add_trace(
            go.Heatmap(z=means[digit], colorscale="gray", showscale=False, hovertemplate="%{z:.0f}<extra></extra>"),
            row=1,
            col=digit + 1,
        )
    figure.update_yaxes(autorange="reversed", showticklabels=False)
    figure.update_xaxes(showticklabels=False)
    for digit in range(NUM_CLASSES):  # square pixels: each subplot's y axis follows its own x axis
        suffix = "" if digit == 0 else str(digit + 1)
        figure.layout[f"yaxis{suffix}"].scaleanchor = f"x{suffix}"
    figure.update_layout(height=height, margin={"l": 0, "r": 0, "t": 56, "b": 0})  # digits clear of the toolbar
    return figure


def histogram_figure(counts: np.ndarray, edges: np.ndarray, log_scale: bool = True, height: int = 300) -> go.Figure:
    """Return the pixel-intensity histogram as bars (log count axis by default: most pixels are 0)."""
    centres = (edges[:-1] + edges[1:]) / 2
    figure = go.Figure(go.Bar(x=centres, y=counts, width=np.diff(edges), marker_color=PALETTE[0]))
    figure.update_layout(xaxis_title="pixel value (0-255)", yaxis_title="pixels", height=height, **LAYOUT)
    if log_scale:
        figure.update_yaxes(type="log")
    return figure


def confusion_figure(matrix: list[list[int]], selected: tuple[int, int] | None = None, height: int = 480) -> go.Figure:
    """Return the confusion matrix (rows: true digit, columns: predicted) as clickable squares with counts."""
    values = np.asarray(matrix)
    true, predicted = np.indices(values.shape)
    # Squares of a scatter, not a heatmap: Streamlit reports clicks on scatter points only.
    # A log colour scale so the few mistakes show next to the ~1,000 correct per digit.
    shade = np.log10(values + 1).ravel()
    figure = go.Figure(
        go.Scatter(
            x=predicted.ravel(),
            y=true.ravel(),
            mode="markers+text",
            text=values.ravel(),
            textfont={"color": ["white" if s > 0.75 * shade.max() else "#1f2933" for s in shade], "size": 11},
            marker={
                "symbol": "square",
                "size": (height - 110) / NUM_CLASSES * 0.92,
                "color": shade,
                "colorscale": "Blues",
                "cmin": 0,
                "line": {"width": 0},
            },
            customdata=values.ravel(),
            hovertemplate="true %{y}, predicted %{x}: %{customdata}<extra></extra>",
            # A click selects a cell: keep every other cell (and its count) as it was, not greyed out.
            selected={"marker": {"opacity": 1}},
            unselected={"marker": {"opacity": 1}, "textfont": {"color": "#1f2933"}},
        )
    )
    if selected is not None:
        figure.add_shape(
            type="rect",
            x0=selected[1] - 0.5,
            x1=selected[1] + 0.5,
            y0=selected[0] - 0.5,
            y1=selected[0] + 0.5,
            line={"color": PALETTE[3], "width": 3},
        )
    figure.update_xaxes(title="predicted", dtick=1, side="top", range=[-0.5, 9.5], showgrid=False, zeroline=False)
    figure.update_yaxes(title="true", dtick=1, range=[9.5, -0.5], showgrid=False, zeroline=False)
    figure.update_layout(
        height=height,
        width=height,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        plot_bgcolor="white",
        clickmode="event+select",
        dragmode=False,
    )
    return figure


def probability_figure(probs: np.ndarray, height: int = 260, title: str = "") -> go.Figure:
    """Return the ten class probabilities as bars, the most likely digit highlighted."""
    probs = np.asarray(probs)
    colors = [PALETTE[1] if d == int(probs.argmax()) else PALETTE[0] for d in range(NUM_CLASSES)]
    figure = go.Figure(
        go.Bar(
            x=list(range(NUM_CLASSES)),
            y=probs,
            marker_color=colors,
            text=[f"{p:.0%}" for p in probs],
            textposition="outside",
            hovertemplate="%{x}: %{y:.2%}<extra></extra>",
        )
    )
    figure.update_layout(
        title=chart_title(title),
        xaxis={"dtick": 1, "title": "digit"},
        yaxis={"range": [0, 1.15], "tickformat": ".0%"},
        height=height,
        margin={"l": 10, "r": 10, "t": 64 if title else 10, "b": 10},
    )
    return figure

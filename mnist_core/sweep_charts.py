"""The Sweep page's trials table and figures, from a study's trials: Optuna's own plots (history, parallel
coordinates, parameter importance) in the studio's style, and every trial's validation curve."""

from __future__ import annotations

import threading
import warnings

import plotly.graph_objects as go

from mnist_core.charts import LAYOUT, PALETTE, chart_title, percent_tick_format
from mnist_core.labels import MISSING, percent, seconds

_CACHE: dict[tuple, go.Figure | None] = {}  # (figure, sweep, version): thirty tabs share one figure
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 64
IMPORTANCE_AFTER = 4  # complete trials before parameter importance says anything
TARGET = "validation accuracy"
BEST_MARK = "★"


def trials_table(rows: list[dict], best_number: int | None) -> list[dict]:
    """Return the trials table: number (the best starred), state, each parameter, best val accuracy, epochs,
    seconds, machine, run id and the trial it retries."""
    names = sorted({name for row in rows for name in row["params"]})
    table = []
    for row in rows:
        line = {
            "trial": f"{row['number']} {BEST_MARK}" if row["number"] == best_number else str(row["number"]),
            "state": row["state"],
        }
        for name in names:
            value = row["params"].get(name)
            line[name] = f"{value:.3g}" if isinstance(value, float) else (MISSING if value is None else str(value))
        line["best val accuracy"] = percent(max(row["curve"].values(), default=None))
        line["epochs"] = row["epochs"]
        line["seconds"] = seconds(row["seconds"])
        line["machine"] = row["host"] or MISSING
        line["run"] = row["run_id"] or MISSING
        line["retry of"] = MISSING if row["retries"] is None else str(row["retries"])
        table.append(line)
    return table


def curves_figure(rows: list[dict], best_number: int | None, height: int = 380) -> go.Figure:
    """Return every trial's validation accuracy per epoch (from the study, so trials of any machine show), the
    best one thick, pruned ones dotted."""
    figure = go.Figure()
    values = []
    for index, row in enumerate(row for row in rows if row["curve"]):
        best = row["number"] == best_number
        epochs, accuracy = list(row["curve"]), list(row["curve"].values())
        values += accuracy
        figure.add_trace(
            go.Scatter(
                x=epochs,
                y=accuracy,
                mode="lines+markers",
                name=f"trial {row['number']}" + (f" {BEST_MARK}" if best else ""),
                line={
                    "color": PALETTE[index % len(PALETTE)],
                    "width": 4 if best else 1.5,
                    "dash": "dot" if row["state"] == "pruned" else "solid",
                },
                hovertemplate=f"trial {row['number']} ({row['state']})<br>epoch %{{x}}: %{{y:.2%}}<extra></extra>",
            )
        )
    figure.update_layout(
        **LAYOUT,
        height=height,
        title=chart_title("Validation accuracy of every trial", "thick: the best trial · dotted: pruned"),
        xaxis={"title": "Epoch", "dtick": 1},
        yaxis={"tickformat": percent_tick_format(values) if values else ".0%"},
    )
    return figure


def _styled(figure: go.Figure, title: str, subtitle: str, height: int) -> go.Figure:
    """Return one of Optuna's figures with the studio's title, margins and height."""
    figure.update_layout(**LAYOUT, height=height, title=chart_title(title, subtitle))
    return figure


def history_figure(study, height: int = 360) -> go.Figure:
    """Return Optuna's optimization history: each trial's best val accuracy and the best so far."""
    from optuna.visualization import plot_optimization_history

    figure = plot_optimization_history(study, target_name=TARGET)
    figure.update_yaxes(tickformat=".1%")
    return _styled(figure, "Optimization history", "each trial's value, and the best so far", height)


def parallel_figure(study, height: int = 400) -> go.Figure | None:
    """Return Optuna's parallel coordinates of parameters against val accuracy; None before two complete trials."""
    from optuna.visualization import plot_parallel_coordinate

    if sum(trial.state.name == "COMPLETE" for trial in study.get_trials(deepcopy=False)) < 2:
        return None
    figure = plot_parallel_coordinate(study, target_name=TARGET)
    return _styled(figure, "Parallel coordinates", "one line per complete trial, coloured by its value", height)


def importance_figure(study, height: int = 320) -> go.Figure | None:
    """Return Optuna's parameter importance (fANOVA); None before IMPORTANCE_AFTER complete trials or with fewer
    than two searched parameters."""
    from optuna.visualization import plot_param_importances

    complete = [trial for trial in study.get_trials(deepcopy=False) if trial.state.name == "COMPLETE"]
    if len(complete) < IMPORTANCE_AFTER or len({name for trial in complete for name in trial.params}) < 2:
        return None
    with warnings.catch_warnings():
        # Trials that tie (a tiny sweep often does) make Optuna warn that every importance is equal: the chart
        # already shows that, and the warning would land in the server log once a page draws it.
        warnings.filterwarnings("ignore", message="Target and region quantiles", category=UserWarning)
        figure = plot_param_importances(study, target_name=TARGET)
    return _styled(figure, "Parameter importance", "how much of the spread in val accuracy each one explains", height)


def cached(kind: str, study, version: tuple) -> go.Figure | None:
    """Return the `kind` figure ('history', 'parallel', 'importance') of `study` as of `version`, made once."""
    key = (kind, study.study_name, id(study._storage), version)
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
    makers = {"history": history_figure, "parallel": parallel_figure, "importance": importance_figure}
    figure = makers[kind](study)
    with _CACHE_LOCK:
        _CACHE[key] = figure
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
    return figure

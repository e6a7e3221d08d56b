"""Chart details a person reads: tick labels that differ, the 99 % line, one legend entry per run, labels."""

from __future__ import annotations

import pytest

from mnist_core import charts, labels


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.11, 0.43, 0.75], ".0%"),  # ticks 20 % apart: whole percents
        ([0.095, 0.1, 0.105], ".2%"),  # a stopped MLP near chance: 9.60 %, 9.80 %, ...
        ([0.97, 0.985, 0.993], ".1%"),
        ([0.9931, 0.9935], ".3%"),
        ([0.5], ".0%"),
    ],
)
def test_accuracy_ticks_have_the_decimals_their_range_needs(values, expected):
    assert charts.percent_tick_format(values) == expected


def test_accuracy_chart_marks_99_percent_once_near_and_names_each_run_once():
    near = [{"epoch": e, "accuracy": a, "val_accuracy": a, "loss": 1, "val_loss": 1} for e, a in ((1, 0.95), (2, 0.98))]
    far = [{"epoch": 1, "accuracy": 0.2, "val_accuracy": 0.3, "loss": 2, "val_loss": 2}]
    figure = charts.curves_figure([charts.Series("cnn 09:30 1a2b", near), charts.Series("mlp 09:40 ffff", far)])
    assert [shape.y0 for shape in figure.layout.shapes] == [0.99]
    shown = [trace.name for trace in figure.data if trace.showlegend]
    assert shown == ["cnn 09:30 1a2b", "mlp 09:40 ffff"]
    assert len(figure.data) == 4  # validation and training for each, training under the same legend entry
    assert not charts.curves_figure([charts.Series("mlp", far)]).layout.shapes  # far from 99 %: no line


def test_labels():
    assert labels.percent(0.98765) == "98.77 %" and labels.percent(None) == "–" and labels.percent(True) == "–"
    assert [labels.duration(s) for s in (None, 42.4, 185, 3725)] == ["–", "42 s", "3m 05s", "1h 02m"]
    assert labels.short_name("20261201-093015-cnn-1a2b", "cnn") == "cnn 09:30 1a2b"

"""Compare: the curves of any runs and of the walkthrough's published runs, overlaid or side by side."""

import streamlit as st

from mnist_core import charts, compare, reference, runs, ui

ui.page_setup("Compare")
# Imported models have no curves: they join the summary table.
all_runs = [run for run in runs.list_runs() if (run.epochs or run.state == runs.IMPORTED) and not run.damaged]
by_id = {run.run_id: run for run in all_runs}

pick_runs, pick_published = st.columns([2, 1])
chosen = pick_runs.multiselect(
    "Runs",
    list(by_id),
    default=compare.opening_run_ids(all_runs, st.query_params.get("run")),
    help="Opens on the three runs with the best validation accuracy (a run trained without validation counts "
    "with its test accuracy once evaluated), and the run a link asked for.",
    format_func=lambda run_id: ui.short_run_label(by_id[run_id]),
    key="compare_runs",
    placeholder="Choose runs",
)
published = pick_published.multiselect(
    "Published curves (walkthrough, GPU)",
    reference.published_architectures(),
    default=[] if all_runs else ["cnn", "deeper_cnn_bn"],
    key="compare_published",
)
if not all_runs:
    st.info("No run has finished an epoch yet; meanwhile, here are the walkthrough's published curves.")
    ui.link("train", "Train a model")

layout_column, x_column, smoothing_column, clip_column = st.columns(4)
layout = layout_column.segmented_control(
    "Layout", ["Overlaid", "Side by side"], default="Overlaid", key="compare_layout"
)
x_axis = x_column.segmented_control(
    "X axis",
    ["epoch", "elapsed"],
    default="epoch",
    key="compare_x",
    format_func=lambda x: {"epoch": "Epoch", "elapsed": "Wall-clock seconds"}[x],
)
smoothing = smoothing_column.slider("Smoothing", 0.0, 0.95, 0.0, 0.05, key="compare_smoothing")
clip = clip_column.toggle(
    "Only the runs' epochs",
    value=True,
    key="compare_clip",
    help="Cut the published 100-epoch curves at the last epoch of the chosen runs, so short runs are not squeezed.",
)

chosen_runs = [by_id[run_id] for run_id in chosen]
ui.ensemble_control(chosen_runs, "compare")
series = compare.run_series(chosen_runs) + compare.published_series(
    published, compare.epochs_of(chosen_runs) if clip else None
)
if not series and not chosen_runs:
    st.info("Choose at least one run or published curve.")
    st.stop()
x_axis = x_axis or "epoch"
if not series:
    st.caption("Imported models have no curves: they are compared in the table below.")
elif layout == "Side by side":
    st.plotly_chart(charts.side_by_side_figure(series, x_axis, smoothing, height=640), key="compare_grid")
else:
    left, right = st.columns(2)
    left.plotly_chart(charts.curves_figure(series, "loss", x_axis, smoothing), key="compare_loss")
    right.plotly_chart(charts.curves_figure(series, "accuracy", x_axis, smoothing), key="compare_accuracy")
if x_axis == "elapsed" and published:
    st.caption("Published runs were timed on a GPU, so their seconds are not comparable with runs trained here.")

st.subheader("Summary")
st.dataframe(
    compare.comparison_rows(chosen_runs, published),
    hide_index=True,
    width="stretch",
    column_config={"parameters": st.column_config.NumberColumn(format="localized")},
)
st.caption("Test accuracy appears once a run has been evaluated on the Evaluate page.")

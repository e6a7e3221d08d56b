"""Evaluate: a run's test accuracy and loss, confusion matrix, per-digit scores, misclassified digits."""

import streamlit as st

from mnist_core import charts, evaluate, runs, ui
from mnist_core.models import ModelFileError

GALLERY_SIZE = 60

ui.page_setup("Evaluate", "🎯")
view = ui.dataset_or_stop()
with_model = [run for run in runs.list_runs() if run.has_model]
run = ui.pick_run(with_model, "evaluate_run", label="Run (its best model by validation accuracy)")
if run is None:
    ui.no_runs_yet("trained models")
    st.stop()

result = evaluate.stored_evaluation(run)
if result is None:
    st.info("This run's model has not been scored on the 10,000 test images yet.")
    if st.button("Evaluate on the test set", type="primary", key="evaluate_start"):
        with st.spinner("Scoring 10,000 test images…"):
            try:
                evaluate.evaluate_run(run)
            except ModelFileError as error:
                st.error(f"The model file cannot be loaded: {error}")
            except runs.RunError as error:
                st.error(f"The scores could not be saved: {error}")
            else:
                st.rerun()  # show the stored scores, without this "not scored yet" prompt above them
    st.stop()

columns = st.columns(4)
columns[0].metric("Test accuracy", ui.percent(result["accuracy"]))
columns[1].metric("Test loss", f"{result['loss']:.4f}")
columns[2].metric("Misclassified", f"{len(result['misclassified']):,}", help=f"of {result['count']:,} test digits")
columns[3].metric("Scored in", f"{result['seconds']:.2f} s")
st.caption(f"Model {result['model']} after {result['epochs_done']} epochs, evaluated {result['evaluated_at']}.")

matrix_column, table_column = st.columns([3, 2], gap="large")
with matrix_column:
    st.subheader("Confusion matrix")
    st.caption("Click a cell to show those digits below.")
    selected = st.session_state.get("evaluate_cell")
    event = st.plotly_chart(
        charts.confusion_figure(result["confusion_matrix"], selected),
        on_select="rerun",
        selection_mode="points",
        key="evaluate_confusion",
    )
    points = event.selection.points if event and event.selection else []
    if points:
        cell = (int(points[0]["y"]), int(points[0]["x"]))
        if cell != selected:
            st.session_state["evaluate_cell"] = cell
            st.session_state["evaluate_true"], st.session_state["evaluate_predicted"] = cell
            st.rerun()
with table_column:
    st.subheader("Per digit")
    st.dataframe(
        result["per_class"],
        hide_index=True,
        width="stretch",
        column_order=["digit", "precision", "recall", "f1", "support"],  # evaluation.json sorts its keys
        column_config={name: st.column_config.NumberColumn(format="%.4f") for name in ("precision", "recall", "f1")},
    )

st.subheader("Misclassified test digits")
choices = ["any", *range(10)]
true_column, predicted_column = st.columns(2)
true_digit = true_column.selectbox("True digit", choices, key="evaluate_true")
predicted_digit = predicted_column.selectbox("Predicted digit", choices, key="evaluate_predicted")
wrong = evaluate.filter_misclassified(
    result["misclassified"],
    None if true_digit == "any" else true_digit,
    None if predicted_digit == "any" else predicted_digit,
)
st.caption(
    f"{len(wrong):,} digits, most confident mistakes first"
    + (f" (first {GALLERY_SIZE})" if len(wrong) > GALLERY_SIZE else "")
)
gallery = st.columns(10)
for i, row in enumerate(wrong[:GALLERY_SIZE]):
    gallery[i % 10].image(
        view.images["test"][row["index"]],
        caption=f"#{row['index']}: {row['true']} → {row['predicted']} ({row['confidence']:.0%})",
        width="stretch",
    )

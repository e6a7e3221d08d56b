"""Evaluate: a run's test accuracy and loss, confusion matrix, per-digit scores, misclassified digits."""

import streamlit as st

from mnist_core import charts, evaluate, runs, ui
from mnist_core.models import ModelFileError

GALLERY_SIZE = 60

ui.page_setup("Evaluate")
view = ui.dataset_or_stop()
with_model = [run for run in runs.list_runs() if run.has_model]
run = ui.pick_run(
    ui.run_filter(with_model, "evaluate"), "evaluate_run", label="Run (its best model by validation accuracy)"
)
if run is None:
    ui.no_runs_yet("trained models")
    st.stop()
if board := evaluate.leaderboard(with_model):
    with st.expander(f"Leaderboard · {len(board)} model(s) scored on the test set", icon=":material/leaderboard:"):
        st.dataframe(board, hide_index=True, width="stretch")

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
trained = "imported" if run.state == runs.IMPORTED else f"after {result['epochs_done']} epochs"
st.caption(f"Model {result['model']} ({trained}), evaluated {result['evaluated_at']}.")

choices = ["any", *range(10)]
true_digit, predicted_digit = (st.session_state.get(key, "any") for key in ("evaluate_true", "evaluate_predicted"))
cell = (true_digit, predicted_digit) if "any" not in (true_digit, predicted_digit) else None
matrix_column, table_column = st.columns([3, 2], gap="large")
with matrix_column:
    st.subheader("Confusion matrix", help=ui.HELP["confusion_matrix"])
    st.caption("Click a cell to show those digits below; the boxed cell is the one shown.")
    # A new chart for every cell shown, without a selection of its own: a click always registers.
    event = st.plotly_chart(
        charts.confusion_figure(result["confusion_matrix"], cell),
        on_select="rerun",
        selection_mode="points",
        key=f"evaluate_confusion_{true_digit}_{predicted_digit}",
    )
    points = event.selection.points if event and event.selection else []
    if points:
        st.session_state["evaluate_true"], st.session_state["evaluate_predicted"] = (
            int(points[0]["y"]),
            int(points[0]["x"]),
        )
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

st.subheader("Test digits of the chosen cell")
true_column, predicted_column = st.columns(2)
true_digit = true_column.selectbox("True digit", choices, key="evaluate_true")
predicted_digit = predicted_column.selectbox("Predicted digit", choices, key="evaluate_predicted")
rows, description = evaluate.gallery(
    result,
    None if true_digit == "any" else true_digit,
    None if predicted_digit == "any" else predicted_digit,
)
st.caption(
    description
    + (f" (first {GALLERY_SIZE} shown)" if len(rows) > GALLERY_SIZE else "")
    + ": click one to see inside the model."
)
shown = rows[:GALLERY_SIZE]
clicked = ui.clickable_grid(
    [view.images["test"][row["index"]] for row in shown],
    [f"#{row['index']}: {row['true']} → {row['predicted']} ({row['confidence']:.0%})" for row in shown],
    [row["index"] for row in shown],
    key=f"evaluate_gallery_{true_digit}_{predicted_digit}",
)
if clicked is not None:  # a digit opens inside the model: its layers, where the model looked
    st.switch_page(ui.PAGES["inside"][0], query_params={"run": run.run_id, "digit": str(clicked)})

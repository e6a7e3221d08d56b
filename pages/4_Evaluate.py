"""Evaluate: a run's accuracy and loss on the test set or on my drawings, confusion matrix, per-digit scores,
the digits it got wrong; the leaderboard of every model on both."""

import streamlit as st

from mnist_core import charts, evaluate, labels, runs, ui
from mnist_core.models import ModelFileError

GALLERY_SIZE = 60

ui.page_setup("Evaluate")
view = ui.dataset_or_stop()
with_model = [run for run in runs.list_runs() if run.has_model]
run = ui.pick_run(
    ui.run_filter(with_model, "evaluate"),
    "evaluate_run",
    label="Run (its best model by validation accuracy; without validation, its last)",
)
if run is None:
    ui.no_runs_yet("trained models")
    st.stop()
SETS = {"test": "the test set", "mine": "my drawings"}
scored_on = st.segmented_control(
    "Score on", list(SETS), format_func=SETS.get, default="test", required=True, key="evaluate_on"
)
if board := evaluate.leaderboard(with_model, ui.drawings_accuracies(with_model)):
    with st.expander(f"Leaderboard · {labels.counted(len(board), 'model')}", icon=":material/leaderboard:"):
        st.dataframe(
            board,
            hide_index=True,
            width="stretch",
            column_config={"parameters": st.column_config.NumberColumn(format="localized")},
        )

if scored_on == "mine":
    mine = ui.my_drawings()
    if not len(mine):
        st.info("No drawings of yours yet: save some on the Draw page (**Save this drawing as**), then score here.")
        ui.link("draw", "Go to Draw")
        st.stop()
    try:
        result, images, images_key = ui.drawings_score(run, mine), mine.images, mine.names
    except ModelFileError as error:
        st.error(f"The model file cannot be loaded: {error}")
        st.stop()
    what = f"Scored on your {len(mine):,} drawings just now, with {result['model']}."
    if mine.problems:
        what += f" {len(mine.problems)} left out as unreadable (the Dataset page names them)."
    if run.members and run.drawings_trained_on:
        what += f" A member was trained on {run.drawings_trained_on} of your drawings: this score flatters it."
    elif run.drawings_trained_on:
        what += f" It was trained on {run.drawings_trained_on} of your drawings: its held-out score on Train is fair."
else:
    result, images, images_key = evaluate.stored_evaluation(run), view.images["test"], "test"
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
    trained = (
        run.architecture_title.lower()
        if run.state == runs.IMPORTED
        else f"after {labels.counted(result['epochs_done'], 'epoch')}"
    )
    what = f"Model {result['model']} ({trained}), evaluated {labels.moment(result['evaluated_at'])}."

columns = st.columns(4)
columns[0].metric("Test accuracy" if scored_on == "test" else "Accuracy on my drawings", ui.percent(result["accuracy"]))
columns[1].metric("Loss", f"{result['loss']:.4f}")
columns[2].metric("Misclassified", f"{len(result['misclassified']):,}", help=f"of {result['count']:,} digits")
columns[3].metric("Scored in", f"{result['seconds']:.2f} s")
st.caption(what)
ui.ensemble_agreement(run, images, images_key)

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

st.subheader("Test digits of the chosen cell" if scored_on == "test" else "Your drawings of the chosen cell")
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
    + (": click one to see inside the model." if rows else ".")
)
shown = rows[:GALLERY_SIZE]
clicked = ui.clickable_grid(
    [images[row["index"]] for row in shown],
    [f"#{row['index']}: {row['true']} → {row['predicted']} ({row['confidence']:.0%})" for row in shown],
    [row["index"] for row in shown],
    key=f"evaluate_gallery_{scored_on}_{true_digit}_{predicted_digit}",
)
if clicked is not None:  # a digit opens inside the model: its layers, where the model looked
    if scored_on == "mine":
        ui.open_inside(run, images[clicked], label=int(mine.labels[clicked]))
    ui.open_inside(run, test_digit=clicked)

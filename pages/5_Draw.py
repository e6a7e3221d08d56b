"""Draw: draw a digit and see the 28x28 image a model sees and what every trained model predicts."""

import streamlit as st

from mnist_core import charts, evaluate, models, predict, ui

CANVAS_SIZE = 280
CLEAR_SHORTCUT = "Backspace"
TILES_PER_ROW = 4
STEP_TITLES = {
    "cropped": "1 · cropped to the ink",
    "fitted_20x20": "2 · scaled into 20x20",
    "centred_28x28": "3 · centred by mass in 28x28",
}


ui.page_setup("Draw")
view = ui.dataset_or_stop()
with_model = ui.trained_models_or_stop()

canvas_column, result_column = st.columns([1, 2], gap="large")
with canvas_column:
    st.caption(
        "Draw one digit with the mouse, large and centred, like on paper. With the mouse over the canvas, its "
        "toolbar shows above its top right corner: **Undo** takes back the last stroke, then Redo, Edit and the bin."
    )
    st.space("small")  # room for that toolbar, clear of the caption
    image, clear = ui.drawing_canvas("draw_canvas", CANVAS_SIZE)
    # One above the other: side by side, the shortcut's key cap leaves "Clear" no room.
    st.button(
        "Clear",
        key="draw_clear",
        icon=":material/ink_eraser:",
        width="stretch",
        shortcut=CLEAR_SHORTCUT,
        help=f"Empty the canvas (shortcut: {CLEAR_SHORTCUT}). Undo, in the canvas's toolbar, takes back one stroke.",
        on_click=clear,
        kwargs={"draw_sample": None},
    )
    st.button(
        "Test digit",
        key="draw_sample_button",
        icon=":material/casino:",
        width="stretch",
        help="Try a random digit from the test set instead of drawing one",
        on_click=clear,
        kwargs={"draw_sample": predict.random_index(len(view.labels["test"]))},
    )

with result_column:
    best, why_best = evaluate.best_model(with_model)  # after the canvas: a Clear reaches it sooner
    run = ui.pick_run(ui.run_filter(with_model, "draw"), "draw_run", label="Model", default_id=best.run_id)
    st.caption(f"{'Opened on' if run.run_id == best.run_id else 'The best model is'} {why_best}.")
    sample = st.session_state.get("draw_sample")
    prepared = predict.drawing_or_sample(image, view.images["test"][sample] if sample is not None else None)
    if prepared.source == "sample":
        st.caption(f"Test digit #{sample:,}, labelled {view.labels['test'][sample]}: draw on the canvas to replace it.")
    if prepared.blank:
        st.info("The canvas is blank: draw a digit to see the predictions.")
        st.stop()
    ui.share_drawing(prepared.image)  # the Inside page shows it inside any model
    try:
        probabilities = models.run_predictor(run).probabilities(prepared.image)
    except models.ModelFileError as error:
        st.error(f"This run's model cannot be loaded: {error}")
        st.stop()
    digit = int(probabilities.argmax())
    if prepared.warning:
        st.warning(prepared.warning, icon=":material/help:")
        st.plotly_chart(charts.probability_figure(probabilities), key="draw_probabilities")
    else:
        verdict, chart = st.columns([1, 3])
        verdict.metric("Prediction", digit, help="the digit with the highest probability")
        verdict.metric("Confidence", ui.percent(float(probabilities[digit])))
        chart.plotly_chart(charts.probability_figure(probabilities), key="draw_probabilities")
    if prepared.source == "canvas":
        ui.save_drawing_control(prepared, image, "draw_save")
    ui.link("inside", "See inside the model: layer by layer, where it looks", run.run_id)
    st.markdown("**What the model sees**")
    step_columns = st.columns(len(STEP_TITLES))
    for column, (step, title) in zip(step_columns, STEP_TITLES.items(), strict=True):
        column.image(predict.squared(prepared.steps[step]), caption=title, width="stretch", clamp=True)

st.subheader("Every trained model")
if prepared.warning:
    st.caption("The drawing does not look like a digit (see above): take these answers with a grain of salt.")
for i, other in enumerate(with_model):
    if i % TILES_PER_ROW == 0:  # a row at a time: on a phone the columns stack, and the order holds
        tiles = st.columns(TILES_PER_ROW)
    try:
        probs = models.run_predictor(other).probabilities(prepared.image)
    except models.ModelFileError:
        tiles[i % TILES_PER_ROW].warning(f"{other.run_id}: its model file cannot be loaded.")
        continue
    with tiles[i % TILES_PER_ROW]:
        top = int(probs.argmax())
        # The run's own name first (two runs of one preset differ only by it), then what it is.
        st.markdown(
            f"**{top}** · {ui.percent(float(probs[top]))}  \n**{other.short_name}**  \n{other.architecture_title}"
        )
        st.plotly_chart(
            charts.probability_figure(probs, height=150),
            key=f"draw_all_{other.run_id}",
            config={"displayModeBar": False},
        )

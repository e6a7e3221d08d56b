"""Draw: draw a digit and see the 28x28 image a model sees and what every trained model predicts."""

import streamlit as st
from streamlit_drawable_canvas import st_canvas

from mnist_core import charts, predict, runs, ui
from mnist_core.architectures import get_architecture
from mnist_core.models import ModelFileError

CANVAS_SIZE = 280
STEP_TITLES = {
    "cropped": "1 · cropped to the ink",
    "fitted_20x20": "2 · scaled into 20x20",
    "centred_28x28": "3 · centred by mass in 28x28",
}


ui.page_setup("Draw", "✏️")
view = ui.dataset_or_stop()
with_model = [run for run in runs.list_runs() if run.has_model and run.state not in runs.ACTIVE_STATES]
if not with_model:
    ui.no_runs_yet("trained models")
    st.stop()

canvas_column, result_column = st.columns([1, 2], gap="large")
with canvas_column:
    st.caption("Draw one digit with the mouse, large and centred, like on paper.")
    st.session_state.setdefault("draw_canvas_version", 0)
    canvas = st_canvas(
        stroke_width=18,
        stroke_color="#FFFFFF",
        background_color="#000000",
        height=CANVAS_SIZE,
        width=CANVAS_SIZE,
        drawing_mode="freedraw",
        return_image_data=True,
        key=f"draw_canvas_{st.session_state['draw_canvas_version']}",
    )
    clear_column, sample_column = st.columns(2)
    if clear_column.button("Clear", key="draw_clear", icon="🧹", width="stretch"):
        st.session_state["draw_canvas_version"] += 1
        st.session_state.pop("draw_sample", None)
        st.rerun()
    if sample_column.button(
        "Test digit",
        key="draw_sample_button",
        icon="🎲",
        width="stretch",
        help="Try a random digit from the test set instead of drawing one",
    ):
        st.session_state["draw_canvas_version"] += 1
        st.session_state["draw_sample"] = predict.random_index(len(view.labels["test"]))
        st.rerun()

with result_column:
    run = ui.pick_run(with_model, "draw_run", label="Model")
    image_data = canvas.image_data if canvas is not None else None
    prepared = predict.preprocess_canvas(image_data) if image_data is not None else None
    sample = st.session_state.get("draw_sample")
    if (prepared is None or prepared.blank) and sample is not None:
        prepared = predict.preprocess_canvas(view.images["test"][sample])
        st.caption(f"Test digit #{sample:,}, labelled {view.labels['test'][sample]}: draw on the canvas to replace it.")
    if prepared is None or prepared.blank:
        st.info("The canvas is blank: draw a digit to see the predictions.")
        st.stop()
    try:
        probabilities = predict.predictor_for(ui.model_of(run)).probabilities(prepared.image)
    except ModelFileError as error:
        st.error(f"This run's model cannot be loaded: {error}")
        st.stop()
    digit = int(probabilities.argmax())
    verdict, chart = st.columns([1, 3])
    verdict.metric("Prediction", digit, help="the digit with the highest probability")
    verdict.metric("Confidence", ui.percent(float(probabilities[digit])))
    chart.plotly_chart(charts.probability_figure(probabilities), key="draw_probabilities")
    st.markdown("**What the model sees**")
    step_columns = st.columns(len(STEP_TITLES))
    for column, (step, title) in zip(step_columns, STEP_TITLES.items(), strict=True):
        column.image(predict.squared(prepared.steps[step]), caption=title, width="stretch", clamp=True)

st.subheader("Every trained model")
tiles = st.columns(4)
for i, other in enumerate(with_model):
    try:
        probs = predict.predictor_for(ui.model_of(other)).probabilities(prepared.image)
    except ModelFileError:
        tiles[i % 4].warning(f"{other.run_id}: its model file cannot be loaded.")
        continue
    with tiles[i % 4]:
        best = int(probs.argmax())
        st.markdown(
            f"**{best}** · {ui.percent(float(probs[best]))}  \n{get_architecture(other.config.architecture).title}"
        )
        st.plotly_chart(
            charts.probability_figure(probs, height=170, title=other.run_id),
            key=f"draw_all_{other.run_id}",
            config={"displayModeBar": False},
        )

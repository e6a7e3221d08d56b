"""Inside: follow one digit through a model layer by layer, see its filters, where it looks, where it lands."""

import streamlit as st

from mnist_core import charts, inside, inside_charts, models, ui

ui.page_setup("Inside")
view = ui.dataset_or_stop()
with_model = ui.trained_models_or_stop()

input_column, result_column = st.columns([1, 2], gap="large")
with input_column:
    run = ui.pick_run(ui.run_filter(with_model, "inside"), "inside_run", label="Model")
    image, what, label = ui.inside_input(view, "inside")
    try:
        predictor = models.run_predictor(run)
    except models.ModelFileError as error:
        st.error(f"This run's model cannot be loaded: {error}")
        st.stop()
    probabilities = predictor.probabilities(image)
    predicted = int(probabilities.argmax())
    st.image(inside_charts.enlarged(image), caption=what, width="stretch")
    known = f" (labelled {label})" if label is not None else ""
    st.markdown(f"**Predicted {predicted}** · {ui.percent(float(probabilities[predicted]))}{known}")
    st.plotly_chart(charts.probability_figure(probabilities, height=200), key="inside_probabilities")
    target = st.selectbox("Explain the class", range(10), index=predicted, key=f"inside_class_{predicted}")
    views = inside.inspector(predictor.model)

with result_column:
    layers_tab, filters_tab, looks_tab, lands_tab = st.tabs(
        ["Layer by layer", "First-layer filters", "Where it looks", "Where it lands"]
    )
    with layers_tab:
        ui.layer_outputs(views.layer_outputs(image), "inside")
    with filters_tab:
        ui.first_filters(views.first_filters(), ensemble=bool(run.members))
    with looks_tab:
        ui.saliency(image, views, target, ensemble=bool(run.members))
    with lands_tab:
        ui.embedding_view(views, view, image, "inside")

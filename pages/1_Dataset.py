"""Dataset: browse MNIST digits by split and label (and your own saved drawings); class counts, mean digits,
pixel histogram."""

import streamlit as st

from mnist_core import charts, explore, ui

ui.page_setup("Dataset")
view = ui.dataset_or_stop()

left, middle, right = st.columns([2, 2, 1])
MINE = "my drawings"
split = left.segmented_control("Split", [*explore.SPLITS, MINE], default="train", required=True, key="dataset_split")
if split == MINE:
    ui.my_drawings_view("dataset")
    st.stop()
label = middle.selectbox("Label", ["all", *range(10)], key="dataset_label")
per_page = right.selectbox("Per page", [24, 48, 96], key="dataset_per_page")

positions = explore.filtered_positions(view, split, None if label == "all" else label)
pages = explore.page_count(len(positions), per_page)
page = st.number_input(f"Page (of {pages:,})", 1, pages, 1, key=f"dataset_page_{split}_{label}_{per_page}")
shown = explore.page_of(positions, page, per_page)
st.caption(f"{len(positions):,} {split} images" + ("" if label == "all" else f" of digit {label}"))

choice_key = f"dataset_choice_{split}_{label}_{page}_{per_page}"
st.caption("Click a digit to see it large below.")
clicked = ui.clickable_grid(
    [view.images[split][position] for position in shown],
    [f"#{view.source_index[split][position]} · {view.labels[split][position]}" for position in shown],
    shown.tolist(),
    key=f"dataset_grid_{split}_{label}_{page}_{per_page}",
    selected=st.session_state.get(choice_key, shown[0] if len(shown) else None),
)
if clicked is not None:
    st.session_state[choice_key] = clicked  # the dropdown below follows the click, and the outline with it
    st.rerun()

st.subheader("One digit, large")
choice = st.selectbox(
    "Digit on this page",
    shown.tolist(),
    format_func=lambda p: f"#{view.source_index[split][p]} (label {view.labels[split][p]})",
    key=choice_key,
)
if choice is not None:
    image_column, info_column = st.columns([3, 1])
    image_column.plotly_chart(
        charts.digit_figure(view.images[split][choice], title=f"{split} image #{view.source_index[split][choice]}"),
        key="dataset_digit",
    )
    info_column.metric("Label", int(view.labels[split][choice]))
    info_column.metric("Index in its file", f"{view.source_index[split][choice]:,}")
    info_column.caption("Pixel values are 0 (black) to 255 (white ink); models see them divided by 255.")

stats = ui.dataset_statistics(split)
st.subheader("Class balance")
st.plotly_chart(charts.class_counts_figure(stats["class_counts"]), key="dataset_counts")
st.subheader(f"Mean digit ({split})")
st.plotly_chart(charts.mean_images_figure(stats["mean_images"]), key="dataset_means")
st.subheader(f"Pixel intensities ({split})")
log_scale = st.toggle("Logarithmic count axis (most pixels are 0)", value=True, key="dataset_log")
st.plotly_chart(charts.histogram_figure(*stats["histogram"], log_scale=log_scale), key="dataset_hist")

"""MNIST studio: the navigation of every page, and the home page (data, runs, a guide to the pages)."""

import streamlit as st

from mnist_core import runs, ui
from mnist_core.settings import DATA_DIR_ENV, runs_root


def home() -> None:
    """Show where the data comes from, the runs so far, and a guide to the pages."""
    ui.page_setup("MNIST studio")
    st.caption(
        "Browse MNIST, train Keras models with live curves, compare them, evaluate them and draw your own digits."
    )

    view = ui.dataset_or_stop()
    sizes = {split: len(labels) for split, labels in view.labels.items()}
    left, middle, right = st.columns(3)
    left.metric("Training images", f"{sizes['train']:,}")
    middle.metric("Validation images", f"{sizes['validation']:,}")
    right.metric("Test images", f"{sizes['test']:,}")
    st.caption(f"Data source: {view.source} · split 90 / 10 with `random_state=42`, as in the walkthrough.")

    all_runs = runs.list_runs()
    st.subheader("Runs")
    if all_runs:
        counts = runs.count_by_state(all_runs)
        for column, (state, count) in zip(st.columns(len(counts)), counts.items(), strict=True):
            column.metric(f"{ui.STATE_ICONS[state]} {state}", count)
        ui.runs_table(all_runs[:10])
        st.caption(
            f"Runs live in `{runs_root()}` (set `MNIST_RUNS_DIR` to move them); `tensorboard --logdir` works on it."
        )
    else:
        ui.no_runs_yet("runs")

    st.subheader("Pages")
    guide = {
        "dataset": "browse the digits by split and label, see any one large with its pixel values, class counts, "
        "mean digits and the pixel histogram.",
        "train": "pick an architecture or a fast preset, set its hyperparameters and watch live loss and accuracy "
        "curves; stop, continue, or load a finished run; bring in a model trained elsewhere.",
        "compare": "overlay or tile the curves of several runs and of the walkthrough's published runs.",
        "evaluate": "test accuracy, confusion matrix, per-digit precision / recall / F1, and the misclassified digits.",
        "draw": "draw a digit and see what every trained model makes of it.",
        "inside": "follow a digit (yours, or any test digit) through a model layer by layer: feature maps, the "
        "first filters, where it looks (Grad-CAM, integrated gradients) and where it lands among the test digits.",
        "sweep": "let Optuna search learning rate, batch size and optimizer: live trials, history, parallel "
        "coordinates and parameter importance; each trial is a run, and more machines can join.",
    }
    for page, text in guide.items():
        ui.link(page)
        st.caption(text)
    if not any(run.state == "finished" for run in all_runs):
        st.caption(f"Tip: the data folder comes from `{DATA_DIR_ENV}`; runs keep training when you close the page.")


ui.recover_runs()
ui.require_access()  # shared mode: nothing below (no page, no navigation) before the login
st.navigation(ui.navigation(home)).run()

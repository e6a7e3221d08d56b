"""The one Streamlit module of mnist_core: cached loaders and widgets that several pages share."""

from __future__ import annotations

import os
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's C++ chatter out of the server log

import streamlit as st

from mnist_core import control, explore, runs
from mnist_core.access import Actor
from mnist_core.data import DataError, load_mnist

STATE_ICONS = {"queued": "🕓", "running": "🏃", "finished": "✅", "stopped": "⏹️", "failed": "❌", "damaged": "⚠️"}
PAGES = {
    "home": ("dashboard.py", "Home", "🏠"),
    "dataset": ("pages/1_Dataset.py", "Dataset", "🔢"),
    "train": ("pages/2_Train.py", "Train", "🏋️"),
    "compare": ("pages/3_Compare.py", "Compare", "📈"),
    "evaluate": ("pages/4_Evaluate.py", "Evaluate", "🎯"),
    "draw": ("pages/5_Draw.py", "Draw", "✏️"),
}


def navigation(home) -> list:
    """Return the studio's pages for st.navigation: `home` (a function) first, then pages/."""
    pages = [st.Page(home, title="Home", icon="🏠", default=True)]
    for key, (path, title, icon) in PAGES.items():
        if key != "home":
            pages.append(st.Page(path, title=title, icon=icon, url_path=title))
    return pages


def page_setup(title: str, icon: str) -> None:
    """Set the page's title, icon and wide layout, and show its heading."""
    page_title = title if title == "MNIST studio" else f"{title} · MNIST studio"  # the home page: not twice
    st.set_page_config(page_title=page_title, page_icon=icon, layout="wide")
    st.title(f"{icon} {title}")


def link(page: str, label: str | None = None) -> None:
    """Show a link to one of the studio's pages ('train', 'draw', ...)."""
    path, title, icon = PAGES[page]
    try:
        st.page_link(path, label=label or title, icon=icon)
    except Exception:  # noqa: BLE001 - a page run on its own (tests) has no page registry to link into
        st.markdown(f"**{icon} {label or title}** page")


@st.cache_resource(show_spinner=False)
def recover_runs() -> list[str]:
    """Once per server start: mark runs whose training died with the last server failed, start the queue."""
    try:
        return control.schedule()
    except runs.RunError:
        return []  # a full or read-only disk: the pages still show everything; actions say why they fail


def actor() -> Actor:
    """Return who this browser session acts as (recorded as the owner of the runs it starts)."""
    return Actor(None, admin=True)


def act(action, *args, **kwargs):
    """Return action(*args, **kwargs), or None after showing its RunError (damaged, disk full...) in one line."""
    try:
        return action(*args, **kwargs)
    except runs.RunError as error:
        st.error(str(error)[:1].upper() + str(error)[1:], icon="⚠️")
        return None


@st.cache_resource(show_spinner="Loading MNIST…")
def dataset() -> explore.DatasetView:
    """Return the dataset's three splits, loaded once per server."""
    return explore.dataset_view(load_mnist())


def dataset_or_stop() -> explore.DatasetView:
    """Return the dataset, or show what went wrong and how to fix it, and stop the page."""
    try:
        return dataset()
    except DataError as error:
        st.error(f"**MNIST could not be loaded.** {error}")
        st.info(
            "Point the studio at a folder with the four IDX files, then restart it:\n\n"
            "`MNIST_DATA_DIR=/path/to/mnist streamlit run dashboard.py`"
        )
        st.stop()


@st.cache_resource(show_spinner="Loading model…", max_entries=16)
def _model(path: str, modified_ns: int):
    """Return the Keras model saved at `path` (cached per file version)."""
    from mnist_core.models import load_model_file

    return load_model_file(path)


def model_of(run: runs.Run, which: str = "best"):
    """Return the run's saved model, cached until the file changes."""
    path = run.model_path(which)
    return _model(str(path), path.stat().st_mtime_ns)


@st.cache_resource(show_spinner="Building the model to count its parameters…")
def architecture_summary(key: str) -> tuple[list[dict], int]:
    """Return (layer table rows, parameter count) of a freshly built `key` model."""
    from mnist_core.architectures import build_model, layer_table

    model = build_model(key)
    return layer_table(model), int(model.count_params())


def percent(value) -> str:
    """Return a fraction as '98.76 %', or '–' when missing."""
    return f"{100 * value:.2f} %" if isinstance(value, (int, float)) else "–"


def run_label(run: runs.Run) -> str:
    """Return a one-line description of a run for pickers."""
    summary = run.summary()
    if run.damaged:
        return f"{STATE_ICONS[runs.DAMAGED]} {summary['run_id']} · damaged"
    best = f" · best val {percent(summary['best_val_accuracy'])}" if summary["best_val_accuracy"] is not None else ""
    return (
        f"{STATE_ICONS.get(summary['state'], '')} {summary['run_id']} · {summary['state']} · "
        f"{summary['epochs_done']}/{summary['epochs_target']} epochs{best}"
    )


def short_run_label(run: runs.Run) -> str:
    """Return a compact run name for multiselect chips: state icon, architecture, time started."""
    stamp = run.run_id.split("-")
    when = f"{stamp[1][:2]}:{stamp[1][2:4]}" if len(stamp) > 2 else run.run_id
    architecture = run.config.architecture if run.config else "?"
    return f"{STATE_ICONS.get(run.state, '')} {architecture} {when} ({run.run_id[-4:]})"


def runs_table(all_runs: list[runs.Run]) -> None:
    """Show a table of runs: state, architecture, epochs, best validation and test accuracy."""
    rows = []
    for run in all_runs:
        summary = run.summary()
        rows.append(
            {
                "run": summary["run_id"],
                "state": f"{STATE_ICONS.get(summary['state'], '')} {summary['state']}",
                "architecture": summary["architecture"] or "–",
                "epochs": f"{summary['epochs_done']}/{summary['epochs_target'] or '–'}",
                "best val accuracy": percent(summary["best_val_accuracy"]),
                "test accuracy": percent(summary["test_accuracy"]),
                "s / epoch": f"{summary['seconds_per_epoch']:.1f}" if summary["seconds_per_epoch"] else "–",
                "problem": run.problem or "",
            }
        )
    if not rows:
        return
    column_order = None if any(run.damaged for run in all_runs) else [key for key in rows[0] if key != "problem"]
    st.dataframe(rows, hide_index=True, width="stretch", column_order=column_order)


def pick_run(all_runs: list[runs.Run], key: str, label: str = "Run", default_id: str | None = None):
    """Show a run picker remembered in the URL (?run=...), so a reload keeps it; return the Run or None."""
    if not all_runs:
        return None
    ids = [run.run_id for run in all_runs]
    by_id = {run.run_id: run for run in all_runs}
    labels = {run.run_id: run_label(run) for run in all_runs}
    wanted = st.query_params.get("run")
    if st.session_state.get(key) not in by_id:
        st.session_state[key] = wanted if wanted in by_id else (default_id if default_id in by_id else ids[0])
    # Streamlit 1.67 shows a keyed selectbox's old label on every other rerun once format_func's text changes
    # (streamlit/streamlit#13788): a run that just stopped still read "running". A widget key that follows the
    # labels makes a fresh selectbox whenever they change; st.session_state[key] keeps the choice.
    digest = zlib.crc32("\n".join(labels.values()).encode())
    run_id = st.selectbox(
        label,
        ids,
        index=ids.index(st.session_state[key]),
        key=f"{key}_{digest:08x}",
        format_func=labels.get,
    )
    st.session_state[key] = run_id
    st.query_params["run"] = run_id
    return by_id[run_id]


def no_runs_yet(what: str) -> None:
    """Explain that the page needs a run, and link to the Train page."""
    st.info(f"No {what} yet. Train a model first — the **Quick 99 %** preset takes about half a minute.")
    link("train", "Go to Train")


def duration(seconds) -> str:
    """Return seconds as '42 s', '3m 05s' or '1h 02m' (short enough for a metric), '–' when unknown."""
    if seconds is None:
        return "–"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def progress_text(run: runs.Run) -> str:
    """Return the progress bar's caption: epoch, batch and running loss / accuracy."""
    progress = run.progress
    if not progress:
        return "waiting for the first batch…" if run.state in runs.ACTIVE_STATES else ""
    return (
        f"epoch {progress['epoch']}/{run.config.epochs} · batch {progress['batch']}/{progress['steps_per_epoch']} · "
        f"running loss {progress['loss']:.4f} · running accuracy {percent(progress['accuracy'])}"
    )


@st.cache_data(show_spinner=False)
def dataset_statistics(split: str) -> dict:
    """Return the class counts of every split, and the mean digits and pixel histogram of `split`."""
    view = dataset()
    counts, edges = explore.pixel_histogram(view, split)
    return {
        "class_counts": explore.class_counts(view),
        "mean_images": explore.mean_images(view, split),
        "histogram": (counts, edges),
    }

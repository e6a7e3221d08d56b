"""The one Streamlit module of mnist_core: cached loaders and widgets that several pages share."""

from __future__ import annotations

import base64
import contextvars
import functools
import html
import io
import os
import time
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's C++ chatter out of the server log

import numpy as np
import streamlit as st
import streamlit.components.v1 as components
from PIL import Image
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import get_script_run_ctx, script_runner

from mnist_core import (
    access,
    augment,
    charts,
    control,
    drawings,
    ensembles,
    evaluate,
    explore,
    export,
    imported,
    inside,
    inside_charts,
    models,
    runfiles,
    runs,
    sweeps,
    teaching,
)
from mnist_core.access import Actor
from mnist_core.architectures import build_model, layer_table
from mnist_core.config import TrainConfig
from mnist_core.data import DataError, load_mnist, to_model_input
from mnist_core.labels import (
    EPOCHS_DONE,
    SECONDS_PER_EPOCH,
    counted,
    digit_with_article,
    duration,
    percent,
    seconds,
)
from mnist_core.predict import Preprocessed
from mnist_core.settings import (
    AUGMENTATIONS,
    LR_SCHEDULES,
    MAX_IMPORT_BYTES,
    OPTIMIZERS,
    RESOURCES_DIR,
    TRAIN_SPLIT_SIZE,
    runs_root,
)


def _keep_keras_between_runs() -> None:
    """Stand in for Streamlit's clean-up after every script run, which resets Keras and closes matplotlib.

    Streamlit calls keras.backend.clear_session() after every run of every session once Keras is imported
    (the Draw and Evaluate pages load models): about 200 ms of CPU each time, so thirty tabs refreshing a
    live run would need six cores. The studio builds no models in page runs (they are loaded once and
    shared), so there is no per-run Keras state to clear, and it draws nothing with matplotlib."""


script_runner._clean_problem_modules = _keep_keras_between_runs

# Material icons ship with Streamlit, so they render on a machine without an emoji font; they work in
# markdown, headings, metric labels and the navigation. Widget options and table cells show plain text, so
# states there get a mark from the basic Unicode set every font has.
STATE_ICONS = {
    "queued": ":material/schedule:",
    "running": ":material/directions_run:",
    "finished": ":material/check_circle:",
    "stopped": ":material/stop_circle:",
    "failed": ":material/cancel:",
    "damaged": ":material/warning:",
    "pruned": ":material/content_cut:",
    "imported": ":material/upload_file:",
}
STATE_MARKS = {
    "queued": "◷",
    "running": "▶",
    "finished": "✓",
    "stopped": "■",
    "failed": "✗",
    "damaged": "⚠",
    "pruned": "✂",
    "imported": "⇪",
}
PAGES = {
    "home": ("dashboard.py", "Home", ":material/home:"),
    "dataset": ("pages/1_Dataset.py", "Dataset", ":material/grid_view:"),
    "train": ("pages/2_Train.py", "Train", ":material/model_training:"),
    "compare": ("pages/3_Compare.py", "Compare", ":material/stacked_line_chart:"),
    "evaluate": ("pages/4_Evaluate.py", "Evaluate", ":material/target:"),
    "draw": ("pages/5_Draw.py", "Draw", ":material/draw:"),
    "sweep": ("pages/6_Sweep.py", "Sweep", ":material/tune:"),
    "inside": ("pages/7_Inside.py", "Inside", ":material/layers:"),
}
DRAWING_KEY = "inside_drawing"  # the Draw page's last drawing (28x28, 0-1), for the Inside page
DRAWING_LABEL_KEY = "inside_drawing_label"  # its true digit, when it is a saved drawing opened from Evaluate
PAGE_ICONS = {title: icon for _, title, icon in PAGES.values()} | {"MNIST studio": PAGES["home"][2]}


def navigation(home) -> list:
    """Return the studio's pages for st.navigation: `home` (a function) first, then pages/."""
    pages = [st.Page(home, title="Home", icon=PAGES["home"][2], default=True)]
    for key, (path, title, icon) in PAGES.items():
        if key != "home":
            pages.append(st.Page(path, title=title, icon=icon, url_path=title))
    return pages


def _route_through_home() -> None:
    """Rerun a page that Streamlit ran on its own, so it runs through dashboard.py's navigation instead.

    With a pages/ folder, a fresh server runs the page a deep link names (/Train) by itself until some run
    reaches st.navigation: the sidebar lists file names without icons, and nothing dashboard.py does first
    (the login of shared mode) has happened. Leaving that mode and running again puts every page behind the
    one entry point from the very first request."""
    ctx = get_script_run_ctx()
    if ctx is None or not PagesManager.uses_pages_directory:
        return
    if ctx.pages_manager.current_page_script_hash == ctx.pages_manager.main_script_hash:
        return  # the main script itself (the home page, or a page run alone by AppTest)
    PagesManager.uses_pages_directory = False
    st.rerun()


def page_setup(title: str, icon: str | None = None) -> None:
    """Set the page's title, icon (its Material icon from PAGES) and wide layout, and show its heading."""
    _route_through_home()
    icon = PAGE_ICONS.get(title, icon)
    page_title = title if title == "MNIST studio" else f"{title} · MNIST studio"  # the home page: not twice
    st.set_page_config(page_title=page_title, page_icon=icon, layout="wide")
    st.title(f"{icon} {title}")


def link(page: str, label: str | None = None, run_id: str | None = None) -> None:
    """Show a link to one of the studio's pages ('train', 'draw', ...), opening on run `run_id` if given."""
    path, title, icon = PAGES[page]
    try:
        st.page_link(path, label=label or title, icon=icon, query_params={"run": run_id} if run_id else None)
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
    """Return who this browser session acts as (recorded as the owner of the runs it starts): on a local studio
    without a password everyone is admin; in shared mode, this session's login, checked again now (a session
    logged out meanwhile, in another tab, gets the login page instead of acting)."""
    current = _access().actor
    if current is not None:
        return current
    if _IN_FRAGMENT.get():
        st.rerun()  # a fragment cannot show the login: run the whole page, which does
    return require_access()  # shows the login (or why the studio is closed) and stops


_IN_FRAGMENT = contextvars.ContextVar("mnist_studio_in_fragment", default=False)


def fragment(run_every: float | None):
    """Return a decorator like st.fragment(run_every=...) whose body knows it runs in a fragment."""

    def decorate(function):
        @functools.wraps(function)
        def body(*args, **kwargs):
            token = _IN_FRAGMENT.set(True)
            try:
                return function(*args, **kwargs)
            finally:
                _IN_FRAGMENT.reset(token)

        return st.fragment(run_every=run_every)(body)

    return decorate


def act(action, *args, **kwargs):
    """Return action(*args, **kwargs), or None after showing its RunError (damaged, disk full...) in one line."""
    try:
        return action(*args, **kwargs)
    except runs.RunError as error:
        message = str(error)[:1].upper() + str(error)[1:]
        if _IN_FRAGMENT.get():
            st.toast(message, icon=":material/error:", duration="long")  # outlives the fragment's next redraw
        else:
            st.error(message, icon=":material/error:")
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


@st.cache_resource(show_spinner="Building the model to count its parameters…")
def architecture_summary(key: str) -> tuple[list[dict], int]:
    """Return (layer table rows, parameter count) of a freshly built `key` model."""

    model = build_model(key)
    return layer_table(model), int(model.count_params())


def run_label(run: runs.Run) -> str:
    """Return a one-line description of a run for pickers."""
    summary = run.summary()
    if run.damaged:
        return f"{STATE_MARKS[runs.DAMAGED]} {summary['run_id']} · damaged"
    best = f" · best val {percent(summary['best_val_accuracy'])}" if summary["best_val_accuracy"] is not None else ""
    named = f"{run.name} ({run.run_id[-4:]})" if run.name != run.run_id else run.run_id
    tags = "".join(f" #{tag}" for tag in run.tags)
    if run.state == runs.IMPORTED:
        return f"{STATE_MARKS[runs.IMPORTED]} {named}{tags} · imported · {run.architecture_title}"
    return (
        f"{STATE_MARKS.get(summary['state'], '')} {named}{tags} · {summary['state']} · "
        f"{summary['epochs_done']}/{summary['epochs_target']} epochs{best}"
    )


def short_run_label(run: runs.Run) -> str:
    """Return a compact run name for multiselect chips: state mark, architecture, time started, id suffix."""
    return f"{STATE_MARKS.get(run.state, '')} {run.short_name}"


def runs_table(all_runs: list[runs.Run]) -> None:
    """Show a table of runs: state, architecture, epochs, best validation and test accuracy."""
    rows = []
    for run in all_runs:
        summary = run.summary()
        rows.append(
            {
                "run": summary["run_id"],
                "name": summary["name"] if summary["name"] != summary["run_id"] else "",
                "tags": " ".join(f"#{tag}" for tag in summary["tags"]),
                "state": f"{STATE_MARKS.get(summary['state'], '')} {summary['state']}",
                "architecture": summary["architecture"] or "–",
                EPOCHS_DONE: f"{summary['epochs_done']}/{summary['epochs_target'] or '–'}"
                if run.state != runs.IMPORTED
                else "–",
                "best val accuracy": percent(summary["best_val_accuracy"]),
                "test accuracy": percent(summary["test_accuracy"]),
                SECONDS_PER_EPOCH: seconds(summary["seconds_per_epoch"]),
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
    if wanted in by_id:  # a link's ?run= (kept in step with the picker below, so a rerun asks for the same run)
        st.session_state[key] = wanted
    elif st.session_state.get(key) not in by_id:
        st.session_state[key] = default_id if default_id in by_id else ids[0]
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


def run_filter(all_runs: list[runs.Run], key: str) -> list[runs.Run]:
    """Show "Filter runs" (tags, architecture, state) once there is something to tell runs apart by; return the
    runs that pass (all of them until a filter is set)."""
    tags = sorted({tag for run in all_runs for tag in run.tags})
    architectures = sorted({run.architecture for run in all_runs if run.architecture})
    states = sorted({run.state for run in all_runs})
    if len(all_runs) < 2 or not (tags or len(architectures) > 1 or len(states) > 1):
        return all_runs
    with st.popover("Filter runs", icon=":material/filter_list:"):
        chosen_tags = st.multiselect("Tags (all of)", tags, key=f"{key}_filter_tags") if tags else []
        chosen_architectures = st.multiselect("Architecture", architectures, key=f"{key}_filter_architectures")
        chosen_states = st.multiselect("State", states, key=f"{key}_filter_states")
    shown = runs.filter_runs(all_runs, chosen_tags, chosen_architectures, chosen_states)
    if len(shown) < len(all_runs):
        st.caption(f"Showing {len(shown)} of {len(all_runs)} runs (Filter runs).")
    return shown


def label_control(run: runs.Run, key: str) -> None:
    """Show "Name, note, tags" for a run: a popover that saves them into the run (they survive continue)."""
    with st.popover("Name, note, tags", icon=":material/label:"):
        name = st.text_input("Name", run.labels.get("name", ""), key=f"{key}_name_{run.run_id}", max_chars=60)
        note = st.text_area("Note", run.labels.get("note", ""), key=f"{key}_note_{run.run_id}", max_chars=2000)
        tags = st.text_input(
            "Tags", " ".join(run.tags), key=f"{key}_tags_{run.run_id}", help="Words separated by spaces, e.g. lr-sweep"
        )
        saved = st.button("Save", key=f"{key}_label_save", type="primary")
        if saved and act(control.label_run, run.run_id, name, note, tags.replace(",", " ").split(), actor=actor()):
            st.rerun()


def download_controls(run: runs.Run, key: str) -> None:
    """Show downloads of the run's best model (.keras, loads in any Keras) and of its plain files (.zip); each
    file is made only when its button is clicked."""
    model_column, zip_column = st.columns(2)
    model_column.download_button(
        "Model (.keras)",
        data=lambda: run.model_path("best").read_bytes(),
        file_name=f"{run.run_id}-best.keras",
        mime="application/octet-stream",
        icon=":material/download:",
        key=f"{key}_download_model",
        on_click="ignore",
        help="The best model by validation accuracy (the last epoch's for a run trained without validation): "
        "keras.models.load_model(path) loads it anywhere.",
    )
    zip_column.download_button(
        "Run (.zip)",
        data=lambda: export.run_zip(run),
        file_name=f"{run.run_id}.zip",
        mime="application/zip",
        icon=":material/folder_zip:",
        key=f"{key}_download_zip",
        on_click="ignore",
        help="Config, status, curves (epochs.csv, batches.jsonl), evaluation, labels and both models.",
    )


def import_control(key: str) -> str | None:
    """Show an upload of a model trained elsewhere, with a name and Import; return the new run's id once imported."""
    st.caption(
        "A **.keras** model that takes 28x28 images (pixels 0-1) and gives the 10 digit probabilities, or a "
        "**.weights.h5** file of one of the architectures, for instance from the walkthrough's notebook. "
        "Files with Lambda layers or custom code are refused, never run."
    )
    done = st.session_state.get(f"{key}_done", 0)  # imports so far: each one gets empty widgets afterwards
    upload = st.file_uploader(
        "Model file", type=["keras", "h5"], key=f"{key}_file_{done}", max_upload_size=MAX_IMPORT_BYTES // 2**20
    )
    name = st.text_input("Name", key=f"{key}_name_{done}", max_chars=60, placeholder="the file's name")
    if not st.button("Import", icon=":material/upload:", key=f"{key}_button", disabled=upload is None):
        return None
    with st.spinner("Checking and loading the model…"):
        run = act(imported.import_bytes, upload.getvalue(), upload.name, name.strip() or None, actor=actor())
    if run is None:
        return None
    st.session_state[f"{key}_done"] = done + 1
    return run.run_id


def imported_panel(run: runs.Run, key: str) -> None:
    """Show an imported run: where its model came from, where to use it, its name editor, delete and download."""
    record = run.imported
    named = f" · {run.name}" if run.name != run.run_id else ""
    st.markdown(f"### {STATE_ICONS[runs.IMPORTED]} imported · {run.architecture_title}{named}")
    st.caption(
        f"From {record['source']} ({record['format']}) · {record['parameters']:,} parameters · "
        f"imported {str(run.status.get('created', ''))[:16].replace('T', ' ')}"
    )
    if run.labels.get("note"):
        st.caption(f"Note: {run.labels['note']}")
    st.info("Trained elsewhere, so it has no curves here: score it on Evaluate and try it on Draw.")
    evaluate_column, draw_column = st.columns(2)
    with evaluate_column:
        link("evaluate", "Evaluate it", run.run_id)
    with draw_column:
        link("draw", "Draw a digit for it", run.run_id)
    delete_control(run, key)
    download_controls(run, key)


def delete_control(run: runs.Run, key: str) -> None:
    """Show "Delete run" with its confirmation; a deleted run goes to the trash and an Undo shows (undo_banner)."""
    with st.popover("Delete run", icon=":material/delete:"):
        st.caption(f"Moves {run.run_id} to the trash: **Undo** on this page brings it back as it was.")
        if st.button("Delete this run", type="primary", key=f"{key}_delete"):
            entry = act(control.delete_run, run.run_id, actor=actor())
            if entry:
                st.session_state[f"{key}_deleted"] = entry
                st.query_params.pop("run", None)
                st.rerun()


def undo_banner(key: str) -> None:
    """After a deletion from this page: say which run went to the trash, with Undo (and a way to dismiss it)."""
    entry = st.session_state.get(f"{key}_deleted")
    if not entry:
        return
    run_id = runfiles.trashed_run_id(entry)
    message, undo, dismiss = st.columns([4, 1, 1], vertical_alignment="center")
    message.info(f"Run {run_id} is in the trash.", icon=":material/delete:")
    if undo.button("Undo", icon=":material/undo:", key=f"{key}_undo"):
        if act(control.restore_run, entry, actor=actor()) is not None:
            st.session_state[key] = run_id
            st.query_params["run"] = run_id
        del st.session_state[f"{key}_deleted"]
        st.rerun()
    if dismiss.button("Dismiss", key=f"{key}_dismiss"):
        del st.session_state[f"{key}_deleted"]
        st.rerun()


def trained_models_or_stop() -> list[runs.Run]:
    """Return the runs whose model is saved and that are not training, or say how to make one and stop."""
    with_model = [run for run in runs.list_runs() if run.has_model and run.state not in runs.ACTIVE_STATES]
    if not with_model:
        no_runs_yet("trained models")
        st.stop()
    return with_model


def no_runs_yet(what: str) -> None:
    """Explain that the page needs a run, and link to the Train page."""
    st.info(f"No {what} yet. Train a model first: the **Quick 99 %** preset is the fastest way to 99 %.")
    link("train", "Go to Train")


def drawing_canvas(key: str, size: int, stroke_width: int = 18):
    """Show a white-on-black drawing canvas, one per session; return (its RGBA image or None when there is none
    yet, clear): `clear` is an on_click callback that empties the canvas (its keyword arguments: session_state
    values to set as well).

    Clear empties the same canvas through a new `initial_drawing`, which it loads in place. (A new widget key
    remounts the canvas instead: for seconds two canvases were on the page, and a digit drawn then was lost.) Until
    the canvas sends its emptied drawing, a page run still receives the one from before the Clear: it counts as
    blank, and so does nothing else."""
    import json

    from streamlit_drawable_canvas import st_canvas

    clears_key, stale_key = f"{key}_clears", f"{key}_stale"  # how many Clears; the drawing they emptied

    def clear(**state) -> None:
        st.session_state[clears_key] = st.session_state.get(clears_key, 0) + 1
        st.session_state[stale_key] = True  # the run after the click records the drawing it still receives
        st.session_state.update(state)

    canvas = st_canvas(
        stroke_width=stroke_width,
        stroke_color="#FFFFFF",
        background_color="#000000",
        height=size,
        width=size,
        drawing_mode="freedraw",
        initial_drawing={"objects": [], "studioClears": st.session_state.get(clears_key, 0)},
        return_image_data=True,
        key=key,
    )
    drawing = json.dumps((canvas.json_data or {}).get("objects", []), sort_keys=True)
    if st.session_state.get(stale_key) is True:
        st.session_state[stale_key] = drawing
    if st.session_state.get(stale_key) == drawing:
        return None, clear
    st.session_state.pop(stale_key, None)
    return canvas.image_data, clear


# Short help where the words are new, shown as tooltips ("?" next to a heading, metric or widget).
HELP = {
    "no_validation": (
        "Off: nothing is held out. The model trains on all 60,000 training images (the 6,000 validation ones "
        "too) and the model kept is the last epoch's; the curves show training only, so judge it on the test "
        "set. With the one-cycle schedule the last epochs are the best ones anyway, and in BENCHMARKS.md "
        "(section 3) a run without validation scored higher on the test set than the same recipe's held-out one."
    ),
    "label_smoothing": (
        "0: each training digit's target is its label alone. 0.1: the label gets 0.91 and every other digit 0.01, "
        "so the model is never pushed to be fully sure; in BENCHMARKS.md (section 3) it lifted the Best preset's "
        "test accuracy above 99.70 %. The loss it shows is higher for it (its floor is no longer 0)."
    ),
    "validation_accuracy": (
        "The share of the 6,000 validation images (held out from training) the model gets right after each "
        "epoch. It tells how well the model does on digits it has not learned from; training accuracy only "
        "tells how well it remembers."
    ),
    "confusion_matrix": (
        "Each row is the true digit, each column what the model predicted: the diagonal holds the digits it got "
        "right, every other cell one kind of mistake (row 4, column 9: fours it took for nines)."
    ),
    "one_cycle": (
        "A learning-rate schedule: the rate climbs from a tenth of its peak over the first 10 % of the batches, "
        "then falls smoothly to zero. Big steps early, careful steps at the end: fewer epochs for the same accuracy."
    ),
    "batch_norm": (
        "Batch normalization rescales each layer's outputs to a steady range for every batch, so the next layer "
        "always sees well-scaled inputs. Networks with it learn much faster, but need a few hundred batches "
        "before their running statistics (used at prediction time) settle."
    ),
    "stop_continue": (
        "Stop ends training after the current batch and keeps every finished epoch; the epoch under way is "
        "discarded. Continue resumes from the last finished epoch (the discarded one is trained again) up to the "
        "planned epochs plus any you add; the plan never shrinks."
    ),
}


def _png_data_url(image: np.ndarray) -> str:
    """Return a uint8 image (H, W) as a PNG data URL."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def image_grid(images: list, captions: list[str], tile_pixels: int = 76) -> None:
    """Show digits (each (28, 28) uint8) as a grid that keeps their order at any width, each with its caption."""
    if not images:
        return
    tiles = "".join(
        f'<figure><img src="{_png_data_url(image)}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        for image, caption in zip(images, captions, strict=True)
    )
    st.html(
        "<style>.mnist-grid{display:grid;gap:6px;"
        f"grid-template-columns:repeat(auto-fill,minmax({tile_pixels}px,1fr))}}"
        ".mnist-grid figure{margin:0}.mnist-grid img{width:100%;image-rendering:pixelated;display:block}"
        ".mnist-grid figcaption{font-size:11px;line-height:1.2;text-align:center;color:#52606d}</style>"
        f'<div class="mnist-grid">{tiles}</div>'
    )


PREVIEW_COPIES = 5  # augmented versions shown of each digit


def augmentation_preview(kind: str, key: str) -> None:
    """Show one training digit of each class and how augmentation `kind` changes it (new examples on a click)."""
    seed_key = f"{key}_seed"
    seed = st.session_state.get(seed_key, 0)
    st.image(_augmentation_mosaic(kind, seed), width=6 * 28 * 2)
    st.caption(f"Left: the digit as it is; then {PREVIEW_COPIES} ways training might see it this epoch ({kind}).")
    if st.button("Other examples", icon=":material/refresh:", key=f"{key}_again"):
        st.session_state[seed_key] = seed + 1
        st.rerun()


@st.cache_data(show_spinner=False, max_entries=16)
def _augmentation_mosaic(kind: str, seed: int) -> np.ndarray:
    """Return a uint8 mosaic (10 rows x (1 + PREVIEW_COPIES) digits, 1-pixel grey gaps) of the preview."""
    view = dataset()
    firsts = [int(np.flatnonzero(view.labels["train"] == digit)[0]) for digit in range(10)]
    originals = view.images["train"][firsts]
    changed = augment.preview(originals, kind, PREVIEW_COPIES, seed)
    rows = np.concatenate([originals[:, None] / 255.0, changed], axis=1)  # (10, 1 + copies, 28, 28)
    padded = np.pad(rows, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=0.35)
    return (padded.transpose(0, 2, 1, 3).reshape(10 * 30, -1) * 255).astype(np.uint8)


# A grid of digits that reports clicks: a static page (no build step) in resources/thumbnails.
_THUMBNAILS = components.declare_component("mnist_thumbnails", path=str(RESOURCES_DIR / "thumbnails"))


def clickable_grid(
    images: list, captions: list[str], ids: list[int], key: str, selected: int | None = None
) -> int | None:
    """Show digits (each (28, 28) uint8) as a grid in reading order at any width, `selected` outlined; return the
    id of the thumbnail clicked since the last run (None when none was)."""
    tiles = [
        {"src": _png_data_url(image), "caption": caption, "id": int(tile_id)}
        for image, caption, tile_id in zip(images, captions, ids, strict=True)
    ]
    selected = None if selected is None else int(selected)
    value = _THUMBNAILS(tiles=tiles, tile_pixels=76, selected=selected, key=key, default=None)
    handled = f"{key}_handled"
    if not value or value.get("nonce") == st.session_state.get(handled):
        return None
    st.session_state[handled] = value["nonce"]  # the component repeats its last value on every run
    return int(value["id"])


LEARNING_RATES = [round(10**exponent * mantissa, 12) for exponent in range(-5, 1) for mantissa in (1, 3)][:-1]
BATCH_SIZES = (16, 32, 64, 128, 256, 512)


def sweep_form(key: str, architectures: dict) -> tuple[str, sweeps.SweepConfig | None, str | None]:
    """Show a new sweep's settings with the search space's defaults; return (its name, its config or None, the
    one-line problem that stops it from starting)."""
    defaults = sweeps.SweepConfig(architecture="mlp")
    architecture = st.selectbox(
        "Architecture", list(architectures), format_func=architectures.get, key=f"{key}_architecture"
    )
    name = st.text_input("Name", f"{architecture.replace('_', '-')}-{time.strftime('%H%M')}", key=f"{key}_name")
    trials_column, epochs_column = st.columns(2)
    trials = trials_column.number_input("Trials", 1, 500, defaults.trials, key=f"{key}_trials")
    epochs = epochs_column.number_input("Epochs per trial", 1, 100, 2, key=f"{key}_epochs")
    low, high = st.select_slider(
        "Learning rate (searched on a log scale)",
        LEARNING_RATES,
        value=defaults.learning_rate,
        format_func=lambda rate: f"{rate:g}",
        key=f"{key}_lr",
    )
    batch_sizes = st.multiselect("Batch sizes", BATCH_SIZES, list(defaults.batch_sizes), key=f"{key}_batch")
    optimizers = st.multiselect("Optimizers", OPTIMIZERS, list(defaults.optimizers), key=f"{key}_optimizers")
    with st.expander("More settings"):
        schedules = st.multiselect("Schedules", LR_SCHEDULES, list(defaults.lr_schedules), key=f"{key}_schedules")
        augmentations = st.multiselect(
            "Augmentations", AUGMENTATIONS, list(defaults.augmentations), key=f"{key}_augmentations"
        )
        sampler = st.selectbox(
            "Sampler",
            sweeps.SAMPLERS,
            format_func=SAMPLER_TITLES.get,
            key=f"{key}_sampler",
            help="TPE learns from the trials so far; grid tries three learning rates times every choice.",
        )
        pruning = st.toggle(
            "Prune trials that trail (median pruner)",
            defaults.pruning,
            key=f"{key}_pruning",
            help="After two finished trials, a trial whose validation accuracy after an epoch is below the median of "
            "the others at that epoch stops early (shown as pruned).",
        )
        subset = st.number_input(
            "Training images per trial (fewer = a quick demo)",
            10,
            TRAIN_SPLIT_SIZE,
            TRAIN_SPLIT_SIZE,
            step=1000,
            key=f"{key}_subset",
        )
    config = sweeps.SweepConfig(
        architecture=architecture,
        trials=int(trials),
        epochs=int(epochs),
        learning_rate=(low, high),
        batch_sizes=tuple(batch_sizes),
        optimizers=tuple(optimizers),
        lr_schedules=tuple(schedules),
        augmentations=tuple(augmentations),
        sampler=sampler,
        pruning=pruning,
        train_subset=None if subset == TRAIN_SPLIT_SIZE else int(subset),
    )
    try:
        return name.strip(), config.validated(), None
    except sweeps.SweepError as error:
        return name.strip(), None, f"Cannot start: {error}"


SAMPLER_TITLES = {"tpe": "TPE (learns from earlier trials)", "random": "Random", "grid": "Grid"}


def sweep_status(summary: sweeps.SweepSummary) -> str:
    """Return one line on where a sweep stands: trials done of how many, running, waiting, stopped."""
    parts = [f"{summary.done} of {summary.trials} trials done"]
    if summary.running:
        parts.append(f"{summary.running} running")
    if summary.waiting:
        parts.append(f"{summary.waiting} queued again after their worker died")
    if summary.stopped:
        parts.append("stopped")
    elif not summary.active:
        parts.append("finished")
    return " · ".join(parts)


def sweep_controls(name: str, summary: sweeps.SweepSummary, key: str) -> None:
    """Show Stop while a sweep is active, and "Resume with N more trials" (which starts a worker here) once it is
    stopped or done; in a shared studio only for the admin (sweeps start processes of their own)."""
    if not actor().admin:
        st.caption("Only the teacher (admin password) starts, stops or resumes sweeps in a shared studio.")
        return
    if summary.active and not summary.stopped:
        stop = st.button("Stop the sweep", icon=":material/stop:", key=f"{key}_stop")
        if stop and act(sweeps.request_stop, name) is not None:
            st.toast("Stop requested: the trial under way stops within a batch or two, on every machine.")
        return
    more_column, button_column = st.columns([1, 1], vertical_alignment="bottom")
    more = more_column.number_input("More trials", 1, 500, 4, key=f"{key}_more")
    resume = button_column.button(f"Resume with {more} more", icon=":material/play_arrow:", key=f"{key}_resume")
    if resume and act(sweeps.resume, name, int(more)) is not None and act(sweeps.start_worker, name) is not None:
        st.rerun()


def best_trial(trial, name: str, all_runs: list[runs.Run], key: str) -> None:
    """Show a sweep's best trial: its val accuracy and settings, and links opening its run on every page; for a
    trial of another machine, its model brought in from the shared store (an imported run)."""
    if trial is None:
        st.caption("The best trial shows here once one is complete.")
        return
    value_column, about_column = st.columns([1, 2], vertical_alignment="center")
    value_column.metric(f"Best: trial {trial.number}", percent(trial.value), help=HELP["validation_accuracy"])
    about_column.caption(sweeps.describe_params(dict(trial.params)))
    here = {run.run_id: run for run in all_runs}
    source = sweeps.model_source(name, trial.number)
    brought = [run for run in all_runs if (run.imported or {}).get("source") == source]
    run_id = trial.user_attrs.get("run_id") if trial.user_attrs.get("run_id") in here else None
    run_id = run_id or (brought[0].run_id if brought else None)
    if run_id is None:
        about_column.caption(f"Trained on {trial.user_attrs.get('host', 'another machine')}: its run folder is there.")
        if sweeps.MODEL_ATTR in trial.user_attrs:
            fetch = st.button("Bring its model here", icon=":material/download:", key=f"{key}_fetch_{trial.number}")
            if fetch and act(sweeps.fetch_model, name, trial.number) is not None:
                st.rerun()
        return
    for column, page in zip(st.columns(4), ("train", "compare", "evaluate", "draw"), strict=True):
        with column:
            link(page, f"Open on {PAGES[page][1]}", run_id)


def share_drawing(image: np.ndarray, label: int | None = None) -> None:
    """Keep a drawing ((28, 28) in [0, 1]) and its true digit when known, for the Inside page."""
    st.session_state[DRAWING_KEY], st.session_state[DRAWING_LABEL_KEY] = image, label


def open_inside(
    run: runs.Run, drawing: np.ndarray | None = None, test_digit: int | None = None, label: int | None = None
) -> None:
    """Switch to the Inside page on `run`, with a drawing (uint8 (28, 28); `label` its true digit when known) or
    test digit `test_digit`."""
    if drawing is not None:
        share_drawing(to_model_input(drawing[None])[0, :, :, 0], label)
        st.session_state["inside_source"] = "drawing"
        st.switch_page(PAGES["inside"][0], query_params={"run": run.run_id})
    st.switch_page(PAGES["inside"][0], query_params={"run": run.run_id, "digit": str(test_digit)})


def inside_input(view: explore.DatasetView, key: str) -> tuple[np.ndarray, str, int | None]:
    """Show where the Inside page's input comes from (the Draw page's drawing, or a test digit, which a link's
    ?digit= chooses); return (the (28, 28) image in [0, 1], what it is in words, its true label or None)."""
    drawing = st.session_state.get(DRAWING_KEY)
    asked = st.query_params.get("digit")
    count = len(view.labels["test"])
    if asked is not None and asked.isdigit() and int(asked) < count:
        st.session_state[f"{key}_source"], st.session_state[f"{key}_digit"] = "test", int(asked)
    options = ["drawing", "test"] if drawing is not None else ["test"]
    if st.session_state.get(f"{key}_source") not in options:
        st.session_state[f"{key}_source"] = options[0]
    source = st.segmented_control(
        "Input",
        options,
        format_func={"drawing": "Your drawing", "test": "A test digit"}.get,
        key=f"{key}_source",
        required=True,
    )
    if source == "drawing":
        label = st.session_state.get(DRAWING_LABEL_KEY)
        return drawing, "your drawing on the Draw page" if label is None else "your saved drawing", label
    index = st.number_input("Test digit #", 0, count - 1, key=f"{key}_digit", help="Any of the 10,000 test digits")
    st.query_params["digit"] = str(index)
    image = to_model_input(view.images["test"][index : index + 1])[0, :, :, 0]
    return image, f"test digit #{index:,}", int(view.labels["test"][index])


def layer_outputs(outputs: list, key: str) -> None:
    """Show every layer's output in order: feature maps as a tiled image, a vector's strongest units as bars."""
    st.caption(
        "The input goes through the layers from top to bottom. Feature maps: dark where a filter responds "
        f"(the first {inside_charts.MAPS_SHOWN} channels); dense layers: their {inside_charts.UNITS_SHOWN} most "
        "active units."
    )
    for index, output in enumerate(outputs):
        title = f"{index + 1}. {output.name} · {output.kind} · {' x '.join(map(str, output.shape))}"
        if output.is_map:
            st.markdown(f"**{title}**")
            st.image(inside_charts.tile_maps(output.values), width="stretch", clamp=True)
        elif index == len(outputs) - 1:
            st.plotly_chart(
                charts.probability_figure(output.values, height=220, title=title), key=f"{key}_layer_{index}"
            )
        else:
            units = inside_charts.strongest_units(output.values)
            st.plotly_chart(inside_charts.units_figure(units, title), key=f"{key}_layer_{index}")


ENSEMBLE_INSIDE = "An ensemble averages its members' answers: pick a member as the model to see its {what}."


def first_filters(kernels, ensemble: bool = False) -> None:
    """Show the first convolution's learned kernels as small images (or why there are none)."""
    if ensemble:
        st.info(ENSEMBLE_INSIDE.format(what="filters"))
        return
    if kernels is None:
        st.info("This model has no convolution: its first layer sees the 784 pixels as one long list.")
        return
    size = f"{kernels.shape[1]}x{kernels.shape[2]}"
    st.caption(
        f"The {len(kernels)} {size} kernels the first convolution learned. Grey is 0, light adds the pixel, dark "
        "subtracts it: a light row above a dark one responds to the top edge of a stroke."
    )
    st.image(inside_charts.filters_image(kernels), width=min(640, 60 * min(8, len(kernels))), clamp=True)


def saliency(image: np.ndarray, views: inside.Inspector, target: int, ensemble: bool = False) -> None:
    """Show Grad-CAM (convolutional models) and integrated gradients (every model) for class `target`."""
    cam_column, gradients_column = st.columns(2)
    with cam_column:
        st.markdown(f"**Grad-CAM for {target}**")
        cam = views.grad_cam(image, target)
        if ensemble:
            st.info(ENSEMBLE_INSIDE.format(what="Grad-CAM") + " Integrated gradients work for any model.")
        elif cam is None:
            st.info("Grad-CAM needs a convolution; this model has none. Integrated gradients work for any model.")
        else:
            st.image(inside_charts.overlay(image, cam), width="stretch")
            st.caption(
                "Red: the regions of the last convolution's feature maps whose activity raises the score of "
                f"{target}; coarse, because that layer sees the digit at low resolution."
            )
    with gradients_column:
        st.markdown(f"**Integrated gradients for {target}**")
        attributions = views.integrated_gradients(image, target)
        st.image(inside_charts.overlay(image, attributions, signed=True), width="stretch")
        st.caption(
            f"Each pixel's share of the change in the probability of {target} from a black image to this one "
            f"(they add up to it: {attributions.sum():+.3f}). Red raises it, blue lowers it."
        )


def embedding_view(views: inside.Inspector, view: explore.DatasetView, image: np.ndarray, key: str) -> None:
    """Show where the input lands among the first test digits (PCA or t-SNE) and the digits most like it."""
    method = st.segmented_control(
        "Map",
        inside.EMBEDDING_METHODS,
        format_func={"pca": "PCA", "tsne": "t-SNE"}.get,
        key=f"{key}_map",
        default="pca",
        required=True,
    )
    digits = view.images["test"][: inside.EMBEDDING_DIGITS]
    with st.spinner(f"Mapping {len(digits):,} test digits (once per model)…"):
        embedding = views.embedding(to_model_input(digits)[..., 0], method)
    feature = views.features(image[None])[0]
    point = embedding.place(feature)
    labels = view.labels["test"][: inside.EMBEDDING_DIGITS]
    st.plotly_chart(inside_charts.embedding_figure(embedding.coords, labels, point, method), key=f"{key}_embedding")
    closest = inside.nearest(embedding.features, feature)
    st.markdown("**The test digits most like yours** (nearest in the penultimate layer's features)")
    image_grid([digits[i] for i in closest], [f"#{i}: a {labels[i]}" for i in closest])


def save_drawing_control(prepared: Preprocessed, raw: np.ndarray | None, key: str) -> None:
    """Show "Save as": the ten digits, one click saves the drawing with that label into my drawings; a drawing
    that does not look like a digit (a stray dot, a dash) is not offered, so it cannot skew the set."""
    if prepared.warning:
        st.caption(":material/block: Only a drawing that looks like a digit can be saved to my drawings.")
        return
    image = prepared.image

    def save(label: int) -> None:
        try:
            drawings.save_drawing(image, label, raw)
        except drawings.DrawingError as error:
            st.toast(str(error)[:1].upper() + str(error)[1:], icon=":material/error:")
            return
        count = drawings.counts(my_drawings())[label]
        st.toast(
            f"Saved as {digit_with_article(label)}: {count} of your {label}s now (Dataset page, my drawings).",
            icon=":material/save:",
        )

    st.markdown(
        "**Save this drawing as**",
        help="The digit you meant: it joins your own labelled set (Dataset page, my drawings) to score models on.",
    )
    # Buttons, not a toggle: a double click saves once and says so, where a second click deselected a pill.
    with st.container(horizontal=True, gap="small"):
        for digit in range(10):
            st.button(str(digit), key=f"{key}_{digit}", on_click=save, args=(digit,))


def my_drawings() -> drawings.DrawingSet:
    """Return the saved drawings, read again whenever one is saved, deleted or restored, or a file is changed."""
    return _my_drawings(str(drawings.resolve(None)), drawings.version())


@st.cache_data(show_spinner=False, max_entries=4)
def _my_drawings(root: str, version: str) -> drawings.DrawingSet:
    """Return the drawings in `root` as of `version` (one read per change, for every tab)."""
    return drawings.load_drawings(root)


def drawings_score(run: runs.Run, mine: drawings.DrawingSet) -> dict:
    """Return the run's scores on the drawings `mine`, computed once per model file and set of drawings;
    ModelFileError when the model does not load."""
    path = run.model_path("best")
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as error:
        raise models.ModelFileError(f"{path}: cannot be read ({error.strerror or error})") from error
    # Keyed by the drawings' names, not labels.csv's version read apart from them: the scores are always of
    # the drawings shown beside them (a name's image and label never change).
    return _drawings_score(str(path), mtime, mine.names, run.run_id, mine)


@st.cache_data(show_spinner="Scoring your drawings…", max_entries=64)
def _drawings_score(path: str, mtime: int, names: tuple, run_id: str, _mine: drawings.DrawingSet) -> dict:
    """Return the scores of the model at `path` (as of `mtime`) on the drawings `names`."""
    return evaluate.score_images(runs.get_run(run_id), _mine.images, _mine.labels)


def drawings_accuracies(with_model: list[runs.Run]) -> dict[str, float] | None:
    """Return each run's accuracy on my drawings (None when there are none), for the leaderboard."""
    mine = my_drawings()
    if not len(mine):
        return None
    scores = {}
    for run in with_model:
        try:
            scores[run.run_id] = drawings_score(run, mine)["accuracy"]
        except (models.ModelFileError, runs.RunError, OSError):
            continue  # a model that does not load is named on its own page
    return scores


def handwriting_caption(run: runs.Run) -> None:
    """Show how a taught run was taught your handwriting and its held-out accuracy before and after."""
    config, record = run.config, run.handwriting
    if not config or not config.drawings_repeat:
        return
    share = teaching.share_line(config.drawings_train, config.drawings_repeat, config.mnist_train_size)
    if record is None:  # queued: the training process measures the held-out drawings when it starts
        st.caption(f":material/draw: Being taught your handwriting: {share}.")
        return
    st.caption(f":material/draw: Taught your handwriting at epoch {record['at_epoch']}: {share}.")
    st.markdown(f"**{teaching.after_line(record, run.state in runs.ACTIVE_STATES)}**")


def teach_control(run: runs.Run, key: str) -> None:
    """Show "Teach it your handwriting": a repeat factor, epochs to add, the split and its share, and Continue
    with my drawings mixed in."""
    with st.expander("Teach it your handwriting", icon=":material/draw:"):
        mine = my_drawings()
        split = teaching.split(mine)
        train, held_out = split.counts
        st.caption(
            f"Your {counted(len(mine), 'saved drawing')}: {train} to train on, {held_out} held out (one in four, "
            "always the same ones) to measure it before and after."
        )
        mnist_images = run.config.mnist_train_size
        repeat = st.number_input(
            "Repeat each drawing, per epoch",
            1,
            100,
            teaching.suggested_repeat(train, mnist_images),
            key=f"{key}_teach_repeat",
            help=f"A few dozen drawings among {mnist_images:,} digits would hardly count: each is shown this many "
            "times an epoch (with the run's augmentation, so no two copies are alike when it has one).",
        )
        extra = st.number_input(
            "Epochs to teach",
            1,
            100,
            2,
            key=f"{key}_teach_epochs",
            help="Epochs added to the run, your drawings in each.",
        )
        st.caption(teaching.share_line(train, int(repeat), mnist_images).capitalize() + ".")
        clicked = st.button(
            "Continue with my drawings", icon=":material/school:", key=f"{key}_teach", disabled=not train
        )
        if clicked and act(
            control.continue_run, run.run_id, int(extra), actor=actor(), teaching=split, repeat=int(repeat)
        ):
            st.rerun()


def ensemble_control(chosen: list[runs.Run], key: str) -> None:
    """Show "Make an ensemble" of the chosen runs that have a model: their averaged probabilities become one more
    model (a run of its own, on every page and in the leaderboard)."""
    members = [run for run in chosen if run.has_model and not run.members]  # an ensemble's members, not itself
    if len(members) < ensembles.MIN_MEMBERS:
        return
    with st.popover(f"Make an ensemble of these {len(members)}", icon=":material/join:"):
        st.caption(
            "Their models' probabilities, averaged, act as one more model: it shows on Draw, Evaluate and the "
            "leaderboard, with how often it agrees with each member."
        )
        name = st.text_input("Name", key=f"{key}_ensemble_name", max_chars=60, placeholder="the members' names")
        if st.button("Make the ensemble", type="primary", key=f"{key}_ensemble_make"):
            with st.spinner("Putting the models together…"):
                run = act(ensembles.make_ensemble, [m.run_id for m in members], name.strip() or None, actor=actor())
            if run is not None:
                st.success(f"Ensemble {run.name} made: open it on Evaluate or Draw.")
                link("evaluate", "Evaluate it", run.run_id)


def ensemble_agreement(run: runs.Run, images: np.ndarray, images_key) -> None:
    """Show, for an ensemble run, how often each member's prediction is the ensemble's on `images`, which
    `images_key` names (it changes whenever they do)."""
    if not run.members:
        return
    try:
        rows = _agreement(run.run_id, run.model_path("best").stat().st_mtime_ns, images_key, images)
    except (models.ModelFileError, OSError) as error:
        st.error(f"The ensemble's model file cannot be loaded: {error}")
        return
    # The agreements are cached; the names are read now, so a member renamed since shows its new name.
    rows = [dict(row, name=_member_name(row["run"], row["name"])) for row in rows]
    st.subheader("Agreement with each member")
    named = any(row["name"] != row["run"] for row in rows)  # a run's name is its id until it is given one
    st.dataframe(
        [
            {
                "member": row["name"],
                **({"run": row["run"] if row["name"] != row["run"] else ""} if named else {}),
                "agrees on": percent(row["agreement"]),
            }
            for row in rows
        ],
        hide_index=True,
        width="stretch",
    )
    st.caption(f"The share of these {len(images):,} digits on which the member predicts what the ensemble does.")


def _member_name(run_id: str, known: str) -> str:
    """Return the member run's name as it is now (`known` if the run is gone since)."""
    try:
        return runs.get_run(run_id).name
    except runs.RunError:
        return known


@st.cache_data(show_spinner="Comparing the ensemble with its members…", max_entries=16)
def _agreement(run_id: str, mtime: int, images_key, _images: np.ndarray) -> list[dict]:
    """Return the agreement rows of ensemble `run_id` (as of `mtime`) on the images `images_key` names."""
    return ensembles.agreement(runs.get_run(run_id), to_model_input(_images)[..., 0])


MAX_PROBLEMS_SHOWN = 3  # a file damaged throughout would otherwise fill the page with warnings


def my_drawings_view(key: str) -> None:
    """Show my drawings: class counts, the drawings (a click picks one), the one picked large with Delete, and
    Undo of the last deletion."""
    undo = st.session_state.get(f"{key}_deleted")
    if undo:
        entry, label = undo
        message, button = st.columns([4, 1], vertical_alignment="center")
        if button.button("Undo", icon=":material/undo:", key=f"{key}_undo"):
            del st.session_state[f"{key}_deleted"]
            try:
                drawings.restore_drawing(entry)
            except drawings.DrawingError as error:
                message.error(str(error), icon=":material/error:")  # shown, not lost to a rerun
            else:
                st.rerun()
        else:
            message.info(f"The {label} you deleted is in the trash.", icon=":material/delete:")
    mine = my_drawings()
    for problem in mine.problems[:MAX_PROBLEMS_SHOWN]:
        st.warning(problem, icon=":material/warning:")
    if len(mine.problems) > MAX_PROBLEMS_SHOWN:
        st.warning(f"… and {len(mine.problems) - MAX_PROBLEMS_SHOWN} more left out.", icon=":material/warning:")
    if not len(mine):
        st.info(
            "No drawings of yours yet: draw a digit on the Draw page, then click it under **Save this drawing as**."
        )
        link("draw", "Go to Draw")
        return
    plural = "drawing" if len(mine) == 1 else "drawings"
    st.caption(f"{len(mine):,} {plural} of yours, saved in `{drawings.resolve(None)}` (PNG files and labels.csv).")
    st.plotly_chart(charts.class_counts_figure({"my drawings": drawings.counts(mine)}), key=f"{key}_mine_counts")
    # A drawing is picked by its own number, not its place: another tab's delete moves the places.
    chosen_key = f"{key}_mine_chosen"
    ids = [drawings.drawing_id(name) for name in mine.names]
    clicked = clickable_grid(
        list(mine.images),
        [digit_with_article(int(label)) for label in mine.labels],
        ids,
        key=f"{key}_mine_grid_{len(mine)}",
        selected=st.session_state.get(chosen_key),
    )
    if clicked is not None:
        st.session_state[chosen_key] = clicked
        st.rerun()
    if st.session_state.get(chosen_key) not in ids:
        st.caption("Click a drawing to see it large, or to delete it.")
        return
    chosen = ids.index(st.session_state[chosen_key])
    image_column, info_column = st.columns([3, 1])
    name = mine.names[chosen]
    image_column.plotly_chart(charts.digit_figure(mine.images[chosen], title=name), key=f"{key}_mine_digit")
    info_column.metric("Label", int(mine.labels[chosen]))
    info_column.caption(f"Saved {mine.saved[chosen].replace('T', ' ')[:16]}")
    if info_column.button("Delete this drawing", icon=":material/delete:", key=f"{key}_mine_delete"):
        try:
            entry = drawings.delete_drawing(name)
        except drawings.DrawingError as error:
            info_column.error(str(error), icon=":material/error:")
        else:
            st.session_state[f"{key}_deleted"] = (entry, int(mine.labels[chosen]))
            st.session_state.pop(chosen_key, None)
            st.rerun()


def config_caption(config) -> str:
    """Return a run's settings in one line: epochs, batch, optimizer, rate, schedule, augmentation, smoothing..."""
    return (
        f"{config.epochs} epochs · batch {config.batch_size} · {config.optimizer} lr {config.learning_rate:g}"
        + (f" ({config.lr_schedule})" if config.lr_schedule != "constant" else "")
        + (f" · augmentation {config.augmentation}" if config.augmentation != "none" else "")
        + (f" · label smoothing {config.label_smoothing:g}" if config.label_smoothing else "")
        + (f" · {config.mnist_train_size:,} training images" if config.train_subset else "")
        + ("" if config.validation else " · no validation (nothing held out, last epoch's model)")
        + (f" · your drawings ×{config.drawings_repeat}" if config.drawings_repeat else "")
    )


def estimate_caption(all_runs: list[runs.Run], config: TrainConfig) -> str:
    """Return how long `config` should train on this machine, from its earlier runs of the same architecture."""
    pace, count = runs.seconds_per_image_here(all_runs, config.architecture)
    if pace is None:
        return f"No {config.architecture} run has finished an epoch here yet: the first one times this machine."
    per_epoch = pace * (config.train_size + config.validation_size)
    return (
        f"On this machine: about {duration(per_epoch)} per epoch, {duration(per_epoch * config.epochs)} for "
        f"{config.epochs} epoch(s) (from {count} earlier {config.architecture} run(s); other runs training at the "
        "same time slow it down)."
    )


def progress_text(run: runs.Run) -> str:
    """Return the progress bar's caption: epoch, batch and running loss / accuracy while it trains; once it has
    ended, its finished epochs and what became of a partial one."""
    progress = run.progress
    if run.state == runs.RUNNING and progress:
        return (
            f"epoch {progress['epoch']}/{run.config.epochs} · batch {progress['batch']}/{progress['steps_per_epoch']}"
            f" · running loss {progress['loss']:.4f} · running accuracy {percent(progress['accuracy'])}"
        )
    done = f"{len(run.epochs)} of {run.config.epochs} epochs done"
    if run.state == runs.RUNNING:
        return "waiting for the first batch…"
    if run.state == runs.QUEUED:
        return f"queued · {done}"
    if progress and progress["epoch"] > len(run.epochs):
        done += (
            f" · epoch {progress['epoch']} was stopped at batch {progress['batch']}/{progress['steps_per_epoch']}"
            " and is trained again from its start on Continue"
        )
    return done


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


# Access: local (no password, bound to loopback), shared (a password; nothing shows before the login), or closed.

SESSION_COOKIE = "mnist_studio_session"
_ACCESS_KEY = "_access_session_key"  # session_state: the SHA-256 of this session's login token
_ACCESS_TOKEN = "_access_token"  # the token issued in this browser connection, until the cookie holds it
_ACCESS_ERROR = "_access_error"
_ACCESS_CLEAR_COOKIE = "_access_clear_cookie"
_ACCESS_PASSWORD = "_access_password"


class _Access:
    """Where this browser session stands: mode "local", "shared" or "closed"; in shared mode its login or None."""

    def __init__(self, mode: str, message: str = "", passwords=None, store=None, session=None):
        self.mode, self.message, self.passwords, self.store, self.session = mode, message, passwords, store, session

    @property
    def actor(self) -> Actor | None:
        if self.mode == "local":
            return Actor(None, admin=True)
        return self.session.actor if self.mode == "shared" and self.session else None


def _serves_loopback_only() -> bool:
    """Return True when the server listens on this machine's loopback only (an AppTest has no server at all)."""

    address = st.get_option("server.address")
    if not address:  # Streamlit listens on every interface when no address is set
        return bool(st.get_option("global.appTest"))
    return access.is_loopback_address(address)


def _secrets():
    """Return st.secrets when a secrets.toml was found and parsed, else None."""
    return st.secrets if st.secrets.load_if_toml_exists() else None


def _access() -> _Access:
    """Work out this session's access without drawing anything (pages and fragments may call it)."""

    try:
        passwords = access.configured_passwords(_secrets())
    except access.PasswordHashError as error:
        return _Access("closed", f"The studio's password hash is malformed: {error}")
    if not passwords.configured:
        if _serves_loopback_only():
            return _Access("local")
        where = st.get_option("server.address") or "every network interface"
        return _Access(
            "closed",
            f"This studio listens on {where} and has no password, so it will not open. Set one: run "
            "`.venv/bin/python -m mnist_core password`, put the line it prints in `.streamlit/secrets.toml`, "
            "and restart with `make run SHARE=1` (README: Classroom mode); or use it alone with `make run`.",
        )
    store = access.SessionStore(runs_root())
    key = st.session_state.get(_ACCESS_KEY)
    if key is None:  # no login in this connection yet: one kept in the browser's cookie from an earlier visit?
        session = store.lookup(_session_cookie())
    else:
        session = store.get(key)  # read again every run: a logout in another tab, or a new password, ends it
    if session is not None and not session.valid_under(passwords):
        session = None
    if session is None:
        st.session_state.pop(_ACCESS_KEY, None)
    else:
        st.session_state[_ACCESS_KEY] = session.key
    return _Access("shared", passwords=passwords, store=store, session=session)


def _session_cookie() -> str | None:
    """Return the login token the browser sent when this connection opened (None when none; AppTest has none)."""
    value = st.context.cookies.get(SESSION_COOKIE)
    return value if isinstance(value, str) else None


def _cookie_script(statement: str) -> None:
    """Run one line of JavaScript on the page (st.html is not iframed: document.cookie is the studio's own)."""
    st.html(f"<script>{statement}</script>", unsafe_allow_javascript=True)


def _log_in(passwords, store) -> None:
    """The login form's callback: check the password on the server, record the login, or say it was wrong."""

    password = st.session_state.get(_ACCESS_PASSWORD) or ""
    st.session_state[_ACCESS_PASSWORD] = ""  # the password is not kept in the session
    role = passwords.role_of(password) if password else None
    if role is None:
        st.session_state[_ACCESS_ERROR] = "Wrong password."
        return
    try:
        token = store.issue(role, passwords.fingerprint(role))
    except OSError as error:
        st.session_state[_ACCESS_ERROR] = f"Cannot record the login in {store.path}: {error.strerror or error}"
        return
    st.session_state.pop(_ACCESS_ERROR, None)
    st.session_state[_ACCESS_KEY] = access.token_key(token)
    st.session_state[_ACCESS_TOKEN] = token


def _log_out(store, key: str) -> None:
    """The Log out button's callback: forget the login on the server and in this session, clear the cookie."""
    import contextlib

    with contextlib.suppress(OSError):  # a read-only runs folder: the session below still forgets it
        store.revoke(key)
    for name in list(st.session_state):
        del st.session_state[name]
    st.session_state[_ACCESS_CLEAR_COOKIE] = True


def _no_page() -> None:
    """Stands in for the home page in the navigation registered behind the login; never run."""


def _closed_page(message: str | None, passwords=None, store=None) -> None:
    """Show the login form (message None) or a one-line reason why the studio is closed, and nothing else; stop."""

    st.set_page_config(page_title="Log in · MNIST studio", page_icon=":material/lock:", layout="centered")
    # The studio's pages are registered (a deep link such as /Train opens after the login) but not listed.
    st.navigation(navigation(_no_page), position="hidden")
    st.title(":material/lock: MNIST studio")
    if message is not None:
        st.error(message.replace("$", "\\$"))  # a hash format's $ signs are not LaTeX
        st.stop()
    st.caption("This studio is shared: enter the class password to use it.")
    with st.form("access_login"):
        st.text_input("Password", type="password", key=_ACCESS_PASSWORD)
        st.form_submit_button("Log in", type="primary", on_click=_log_in, args=(passwords, store))
    error = st.session_state.pop(_ACCESS_ERROR, None)
    if error:
        st.error(error, icon=":material/lock:")
    logged_out = st.session_state.pop(_ACCESS_CLEAR_COOKIE, False)
    stale = _session_cookie()
    if logged_out or stale:
        clear = f'document.cookie = "{SESSION_COOKIE}=; Path=/; Max-Age=0; SameSite=Strict"'
        if logged_out:
            clear += "; window.location.reload()"  # a fresh page: nothing of the studio stays, not even its sidebar
        elif access.TOKEN_PATTERN.match(stale):
            # only the cookie this connection started with: a newer login made in another tab stays
            clear = f'if (document.cookie.includes("{SESSION_COOKIE}={stale}")) {clear}'
        _cookie_script(clear)
    st.stop()


def require_access() -> Actor:
    """Let this browser session in, or stop the script run: call it before st.navigation on every page run.

    Local (no password, the server bound to loopback): everyone is admin, nothing is shown. Shared (a password
    hash configured): only the login form shows, without the studio's navigation, until the right password is
    entered; then a Log out button and who you are go in the sidebar. Bound to another address without a
    password, or with a malformed hash: a one-line error and nothing else."""

    state = _access()
    if state.mode == "local":
        return state.actor
    if state.mode == "closed" or state.session is None:
        _closed_page(state.message if state.mode == "closed" else None, state.passwords, state.store)
    current = state.actor
    with st.sidebar:
        who = ":material/key: Admin" if current.admin else ":material/person: Logged in"
        st.caption(f"{who} · session `{current.id[2:8]}`")
        st.button("Log out", key="access_logout", on_click=_log_out, args=(state.store, state.session.key))
        token = st.session_state.get(_ACCESS_TOKEN)
        if token and _session_cookie() != token:
            # Keep the login across reloads and server restarts: the token in a cookie, sent with the websocket.
            _cookie_script(
                f'document.cookie = "{SESSION_COOKIE}={token}; Path=/; '
                f'Max-Age={access.SESSION_MAX_AGE}; SameSite=Strict"'
                ' + (location.protocol === "https:" ? "; Secure" : "")'
            )
    return current

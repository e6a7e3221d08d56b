"""Train: start a run of any architecture or preset, watch it live, stop or continue it, open an old one, or
bring in a model trained elsewhere."""

import streamlit as st

from mnist_core import control, curves, reference, runs, ui
from mnist_core.architectures import ARCHITECTURES, PRESETS, PUBLISHED_KEYS, get_architecture
from mnist_core.config import ConfigError, TrainConfig
from mnist_core.settings import AUGMENTATIONS, LR_SCHEDULES, OPTIMIZERS, TRAIN_IMAGES, TRAIN_SPLIT_SIZE

# How often each tab redraws a running run: thirty tabs must cost the server little, and the progress a tab
# shows must stay within 3 s of the trainer's.
STATUS_SECONDS = 1.5  # progress bar and metrics
QUEUED_SECONDS = 5.0  # a queued run only waits for its turn
CHARTS_SECONDS = 4.0  # epoch curves and the running curve: a few points more each time

ui.page_setup("Train")
ui.dataset_or_stop()
all_runs = runs.list_runs()
active = [run for run in all_runs if run.state in runs.ACTIVE_STATES]

settings, view = st.columns([1, 2], gap="large")

with settings:
    st.subheader("New run")
    start_from = st.radio("Start from", ["Walkthrough architecture", *PRESETS], key="train_start_from", horizontal=True)
    if start_from in PRESETS:
        key = PRESETS[start_from]
    else:
        key = st.selectbox(
            "Architecture", PUBLISHED_KEYS, format_func=lambda k: ARCHITECTURES[k].title, key="train_architecture"
        )
    arch = get_architecture(key)
    st.markdown(f"**{arch.title}** · {arch.params:,} parameters")
    st.caption(arch.description, help=ui.HELP["batch_norm"] if "BatchNorm" in arch.layers else None)
    with st.expander("Layers"):
        st.caption(arch.layers)
        if st.toggle("Show the Keras layer summary", key=f"train_summary_{key}"):
            layer_rows, params = ui.architecture_summary(key)
            st.dataframe(layer_rows, hide_index=True, width="stretch")
            st.caption(f"Total: {params:,} parameters")
    defaults = TrainConfig.for_architecture(key)  # its recipe, with TrainConfig's own defaults for the rest
    epochs = st.number_input("Epochs", 1, 1000, defaults.epochs, key=f"train_epochs_{key}")
    batch_size = st.number_input("Batch size", 1, TRAIN_SPLIT_SIZE, defaults.batch_size, key=f"train_batch_{key}")
    optimizer = st.selectbox(
        "Optimizer", OPTIMIZERS, OPTIMIZERS.index(defaults.optimizer), key=f"train_optimizer_{key}"
    )
    learning_rate = st.number_input(
        "Learning rate", 0.0, 10.0, defaults.learning_rate, format="%.5f", step=1e-4, key=f"train_lr_{key}"
    )
    with st.expander("More settings", key="train_more_settings"):  # a key: a preset switch keeps it as it was
        lr_schedule = st.selectbox(
            "Learning-rate schedule",
            LR_SCHEDULES,
            LR_SCHEDULES.index(defaults.lr_schedule),
            key=f"train_schedule_{key}",
            help=ui.HELP["one_cycle"],
        )
        augmentation = st.selectbox(
            "Augmentation",
            AUGMENTATIONS,
            AUGMENTATIONS.index(defaults.augmentation),
            key=f"train_augmentation_{key}",
            help="shift: every epoch, each digit moves by up to 2 pixels. drawn: it is also turned, scaled, "
            "slanted, drawn with a thicker or thinner pen and bent a little, like drawings on the canvas. "
            "varied: the same, milder.",
        )
        if augmentation != "none":
            ui.augmentation_preview(augmentation, f"train_preview_{key}")
        label_smoothing = st.number_input(
            "Label smoothing",
            0.0,
            0.5,
            defaults.label_smoothing,
            step=0.05,
            key=f"train_label_smoothing_{key}",
            help=ui.HELP["label_smoothing"],
        )
        seed = st.number_input("Seed", 0, 2**31 - 1, defaults.seed, key=f"train_seed_{key}")
        validation = st.toggle(
            "Hold out 6,000 images for validation",
            defaults.validation,
            key=f"train_validation_{key}",
            help=ui.HELP["no_validation"],
        )
        available = TRAIN_SPLIT_SIZE if validation else TRAIN_IMAGES
        subset = st.number_input(
            "Training images (fewer = a quick demo)",
            10,
            available,
            available,
            step=1000,
            key=f"train_subset_{key}" if validation else f"train_subset_{key}_all",
            help=f"The first N of the {available:,} training images"
            + ("; validation uses N / 9" if validation else "")
            + ". Batch-normalized models (every preset) need a few hundred batches before they score well.",
        )
    try:
        config = TrainConfig.for_architecture(
            key,
            epochs=epochs,
            batch_size=batch_size,
            optimizer=optimizer,
            learning_rate=learning_rate,
            seed=seed,
            lr_schedule=lr_schedule,
            augmentation=augmentation,
            label_smoothing=label_smoothing,
            train_subset=None if subset == available else subset,
            validation=validation,
        )
    except ConfigError as error:
        config, problem = None, f"Cannot start: {error}"
    else:
        problem = None
        st.caption(ui.estimate_caption(all_runs, config))
    if active:
        st.caption(f"{len(active)} run(s) queued or running: a new run waits its turn (one trains at a time).")
    if st.button("Start training", type="primary", key="train_start", width="stretch"):
        if problem:
            st.error(problem)
        elif (run := ui.act(control.start_run, config, actor=ui.actor())) is not None:
            st.session_state["train_run"] = run.run_id
            st.query_params["run"] = run.run_id
            st.rerun()
    with st.expander("Bring in a model trained elsewhere", icon=":material/upload_file:"):
        if imported_id := ui.import_control("train_import"):
            st.session_state["train_run"] = imported_id
            st.query_params["run"] = imported_id
            st.rerun()


def show_status(run_id: str, shown_state: str) -> None:
    """Show a run's state, progress, metrics and Stop / Continue; rerun the page when its state changes."""
    run = runs.get_run(run_id)
    if run.state != shown_state:
        st.rerun()  # it started or ended: the whole page changes (and stops refreshing once it is done)
    config, state = run.config, run.state
    title = get_architecture(config.architecture).title
    named = f" · {run.name}" if run.name != run.run_id else ""
    st.markdown(f"### {ui.STATE_ICONS.get(state, '')} {state} · {title}{named}")
    st.caption(ui.config_caption(config))
    if run.labels.get("note"):
        st.caption(f"Note: {run.labels['note']}")
    ui.handwriting_caption(run)
    if run.status.get("error"):
        st.error(run.status["error"])
    if state == runs.QUEUED:
        st.info("Queued: it starts as soon as the run ahead of it ends.")
    st.progress(runs.progress_fraction(run), text=ui.progress_text(run))
    metric_columns = st.columns(4)
    metric_columns[0].metric(ui.EPOCHS_DONE.capitalize(), f"{len(run.epochs)} / {config.epochs}")
    metric_columns[1].metric("s / epoch (median)", ui.seconds(run.seconds_per_epoch), help=ui.SECONDS_PER_EPOCH)
    left = runs.time_left(run)
    estimating = state == runs.RUNNING and left is None
    metric_columns[2].metric("Time left", "estimating…" if estimating else ui.duration(left))
    if config.validation:
        metric_columns[3].metric(
            "Best val accuracy", ui.percent(run.best_val_accuracy), help=ui.HELP["validation_accuracy"]
        )
    else:
        last = run.epochs[-1]["accuracy"] if run.epochs else None
        metric_columns[3].metric("Training accuracy", ui.percent(last), help=ui.HELP["no_validation"])
    if state in runs.ACTIVE_STATES:
        stop = st.button("Stop", icon=":material/stop:", key="train_stop")
        if stop and ui.act(control.request_stop, run.run_id, actor=ui.actor()):
            st.toast("Stop requested: it stops after the current batch.")
        st.caption(ui.HELP["stop_continue"])
    elif run.has_model or not run.epochs:  # no epoch finished: Continue starts it again
        done, planned = len(run.epochs), config.epochs
        extra_column, button_column = st.columns([1, 1], vertical_alignment="bottom")
        extra = extra_column.number_input(
            "Epochs to add to the plan",
            0 if done < planned else 1,
            1000,
            0 if done < planned else 2,
            key=f"train_more_epochs_{done < planned}",
            help=ui.HELP["stop_continue"],
        )
        target = max(planned, done) + int(extra)
        continue_clicked = button_column.button(
            f"Continue to epoch {target}", icon=":material/play_arrow:", key="train_continue"
        )
        if continue_clicked and ui.act(control.continue_run, run.run_id, int(extra), actor=ui.actor()):
            st.rerun()
        if run.has_model:
            ui.teach_control(run, "train")
    if state not in runs.ACTIVE_STATES:
        ui.delete_control(run, "train_run")
        if run.has_model:
            ui.download_controls(run, "train_run")


def show_charts(run_id: str, running: bool) -> None:
    """Show the run's epoch curves and its running (per-batch) curve, from figures shared by every tab."""
    run = runs.get_run(run_id)
    figures = curves.epoch_figures(run, overlay=bool(st.session_state.get("train_overlay")))
    if figures:
        left, right = st.columns(2)
        left.plotly_chart(figures[0], key="train_loss_chart")
        right.plotly_chart(figures[1], key="train_accuracy_chart")
    else:
        st.caption("Loss and accuracy per epoch appear here when the first epoch ends.")
    running, skipped = curves.running_figure(run.path)
    if running is not None:
        st.plotly_chart(running, key="train_batch_chart")
    elif running:
        st.caption("The first points appear a few seconds after the run starts (TensorFlow is loading).")
    if skipped:
        st.warning(f"batches.jsonl: {skipped} unreadable line(s) left out of the running curve.")


with view:
    st.subheader("Run")
    ui.undo_banner("train_run")
    shown_runs = ui.run_filter(all_runs, "train")
    selected = ui.pick_run(shown_runs, "train_run", default_id=active[0].run_id if active else None)
    if selected is None:
        st.info("No runs yet: choose an architecture or a preset on the left and press **Start training**.")
    elif selected.damaged:
        st.error(f"This run is damaged: {selected.problem}. Other runs are not affected; this one can only be deleted.")
        ui.delete_control(selected, "train_run")
    elif selected.state == runs.IMPORTED:
        ui.label_control(selected, "train_run")
        ui.imported_panel(selected, "train_run")
    else:
        # Outside the status fragment: its text boxes are not redrawn every 1.5 s while the run trains.
        ui.label_control(selected, "train_run")
        if selected.config.architecture in reference.published_architectures():
            st.toggle("Overlay the walkthrough's published curve", key="train_overlay")
        # The status refreshes every second or so, the charts every few seconds (they change by a few points).
        status_every = {runs.RUNNING: STATUS_SECONDS, runs.QUEUED: QUEUED_SECONDS}.get(selected.state)
        ui.fragment(status_every)(show_status)(selected.run_id, selected.state)
        running = selected.state == runs.RUNNING
        ui.fragment(CHARTS_SECONDS if running else None)(show_charts)(selected.run_id, running)

st.divider()
st.subheader("All runs")
if all_runs:
    ui.runs_table(all_runs)
else:
    st.caption("Runs you start appear here with their state, and keep training when you close the page.")

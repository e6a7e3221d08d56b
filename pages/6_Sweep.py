"""Sweep: let Optuna search the learning rate, batch size and optimizer; watch the trials live, each one a run."""

import streamlit as st

from mnist_core import runs, sweep_charts, sweeps, ui
from mnist_core.architectures import ARCHITECTURES

REFRESH_SECONDS = 3.0  # while trials run: the table and curves gain an epoch every few seconds at most

ui.page_setup("Sweep")
ui.dataset_or_stop()
settings, view = st.columns([1, 2], gap="large")

with settings:
    st.subheader("New sweep")
    name, config, problem = ui.sweep_form("sweep_new", {key: arch.title for key, arch in ARCHITECTURES.items()})
    if st.button("Start sweep", type="primary", key="sweep_start", width="stretch", disabled=not ui.actor().admin):
        if problem:
            st.error(problem)
        elif ui.act(sweeps.start, name, config) is not None:
            st.session_state["sweep_chosen"] = name
            st.rerun()
    st.caption("A background worker trains the trials one after another; more machines can join (README: Sweeps).")


def show_sweep(name: str, was_active: bool) -> None:
    """Show a sweep's state, its controls, the best trial and the trials' table and figures."""
    loaded = ui.act(sweeps.load_summary, name)
    if loaded is None:
        return
    study, config, summary = loaded
    if summary.active != was_active:
        st.rerun()  # it started or ended: the whole page changes (and stops refreshing once done)
    st.markdown(f"**{name}** · {config.architecture} · {ui.sweep_status(summary)}")
    ui.sweep_controls(name, summary, "sweep")
    ui.best_trial(summary.best, name, runs.list_runs(), "sweep")
    rows = sweeps.trial_rows(study)
    best_number = summary.best.number if summary.best else None
    trials_tab, curves_tab, history_tab, parallel_tab, importance_tab = st.tabs(
        ["Trials", "Curves", "History", "Parallel coordinates", "Importance"]
    )
    trials_tab.dataframe(sweep_charts.trials_table(rows, best_number), hide_index=True, width="stretch")
    curves_tab.plotly_chart(sweep_charts.curves_figure(rows, best_number), key="sweep_curves")
    for tab, kind, wait in (
        (history_tab, "history", "the first trial"),
        (parallel_tab, "parallel", "two complete trials"),
        (importance_tab, "importance", f"{sweep_charts.IMPORTANCE_AFTER} complete trials of 2+ searched settings"),
    ):
        figure = sweep_charts.cached(kind, study, summary.version) if summary.done else None
        if figure is None:
            tab.caption(f"Appears after {wait}.")
        else:
            tab.plotly_chart(figure, key=f"sweep_{kind}")


with view:
    st.subheader("Sweeps")
    names = ui.act(sweeps.sweep_names) or []
    if not names:
        st.info("No sweeps yet: choose what to search on the left and press **Start sweep**.")
        st.stop()
    chosen = st.selectbox("Sweep", names, key="sweep_chosen")
    loaded = ui.act(sweeps.load_summary, chosen)
    active = loaded is not None and loaded[2].active
    ui.fragment(REFRESH_SECONDS if active else None)(show_sweep)(chosen, bool(active))

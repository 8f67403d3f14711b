"""The Train page's live cards: one per queued run or experiment, polled while they train."""

from __future__ import annotations

import math

import streamlit as st

from app.services import get_store, load_experiment
from app.widgets import explain, run_method, run_title, status_badge
from core.run_words import kept_epoch_words, progress_text
from core.store import ExperimentRecord, RunFileDamaged, RunRecord
from core.text import interval_text as interval_words
from core.text import md
from core.viz import recall_heatmap_figure, training_curves_figure

__all__ = ["run_card", "experiment_card", "interval_text", "run_interval_text"]


def _results_link(run_id: str, help: str | None = None) -> None:
    """A plain link to Results for this run (?run=ID): it works from inside the live panel's
    fragment, where switching pages by code left the page blank while another run trained."""
    st.page_link("../pages/results.py", label="Open its results", icon="📊", query_params={"run": run_id}, help=help)


def interval_text(summary: dict | None, label: str = "balanced accuracy") -> str:
    """'balanced accuracy 0.812 [0.781, 0.843] (mean of 5 runs, 95 % interval)' from a
    t-interval dict: the interval's ends, which the metric's range may cut, never ± half."""
    if not summary or summary.get("mean") is None or not math.isfinite(summary["mean"]):
        return f"{label}: not yet known"
    low, high = summary.get("ci") or (None, None)
    if low is None or not math.isfinite(low):
        return f"{label} {summary['mean']:.3f} (one run so far: no interval yet)"
    return f"{label} {interval_words(summary['mean'], (low, high))} (mean of {summary['n']} runs, 95 % interval)"


def run_interval_text(metrics: dict, key: str, label: str) -> str:
    """'balanced accuracy 0.739 [0.701, 0.774] (95 % interval over its 412 test cases)': one
    run's number with the bootstrap interval stored with it, or its count when there is none."""
    value = metrics.get(key)
    if value is None or not math.isfinite(value):
        return f"{label}: not known"
    ci = (metrics.get("ci") or {}).get(key) or {}
    n = int(sum(row.get("support", 0) for row in metrics.get("per_class") or []))
    where = f"its {n} test cases" if n else "its test cases"
    if ci.get("low") is None or not math.isfinite(ci["low"]) or not math.isfinite(ci.get("high", math.nan)):
        return f"{label} {value:.3f} (from {where}, no interval)"
    return f"{label} {interval_words(value, (ci['low'], ci['high']))} (95 % interval over {where})"


def _charts(record: RunRecord) -> None:
    store = get_store()
    try:
        history, metrics = store.history(record.id), store.metrics(record.id)
    except RunFileDamaged as exc:
        st.error(md(exc))
        return
    info = metrics.get("dataset")
    if not history or not info:
        st.caption("Curves appear after the first epoch.")
        return
    selected = (metrics.get("training") or {}).get("selected_epoch")
    st.plotly_chart(training_curves_figure(history, selected), width="stretch", key=f"train.curves.{record.id}")
    explain("Loss should fall and accuracy rise. When balanced accuracy stays well below accuracy, the rare "
            f"classes are being missed. {kept_epoch_words(history, selected) if record.status == 'done' else ''} "
            "A shaded band marks the epochs of a two-stage fix.")
    st.plotly_chart(recall_heatmap_figure(history, info["class_names"], info["counts_train"], info["groups"]),
                    width="stretch", key=f"train.recall.{record.id}")
    explain("Recall of each class (the share of its validation samples the model finds) at every epoch: common "
            "classes at the top, rare ones at the bottom; label colours mark head (blue), medium (orange) and "
            "tail (red) classes. Bright is good; a dark row is a class the model is ignoring.")


def run_card(record: RunRecord) -> None:
    store = get_store()
    with st.container(border=True):
        top, button = st.columns([5, 1])
        method = "" if record.name == run_title(record) else f" · {run_method(record)}"
        top.markdown(f"{status_badge(record.status)} **{md(record.name)}**{method}")
        if record.status in ("queued", "running"):
            if button.button("Cancel", key=f"train.cancel.{record.id}"):
                store.request_cancel(record.id)
                record = store.get(record.id)
        if record.status == "queued":
            st.caption("Waiting for the worker to pick it up…")
        elif record.status == "running":
            progress = record.progress or {}
            text = "cancelling…" if store.cancel_requested(record.id) else progress_text(progress)
            st.progress(min(max(float(progress.get("fraction", 0.0)), 0.0), 1.0), text=text)
            _charts(record)
        elif record.status == "done":
            try:
                metrics = store.metrics(record.id)
            except RunFileDamaged:
                metrics = record.summary or {}
            st.success(f"Finished: {run_interval_text(metrics, 'balanced_accuracy', 'balanced accuracy')}; "
                       f"{run_interval_text(metrics, 'accuracy', 'accuracy')}.")
            _results_link(record.id)
            # built only when opened: eight cards' charts drawn hidden cost the browser seconds per visit
            curves = st.expander("Training curves and per-class recall", key=f"train.curves_open.{record.id}",
                                 on_change="rerun")
            if curves.open:
                with curves:
                    _charts(record)
        else:
            (st.error if record.status == "failed" else st.warning)(md(record.error or record.status))


def experiment_card(exp: ExperimentRecord) -> None:
    """Progress over the experiment's runs, the interval so far, and its failures."""
    store = get_store()
    runs = exp.runs
    done = [r for r in runs if r.status == "done"]
    with st.container(border=True):
        top, button = st.columns([5, 1])
        top.markdown(f"{status_badge(exp.status)} **{md(exp.name)}** · experiment of {len(runs)} runs")
        active = [r for r in runs if r.status in ("queued", "running")]
        if active and button.button("Cancel", key=f"train.cancel.{exp.id}",
                                    help="Cancels every run of the experiment that has not finished."):
            for r in active:
                store.request_cancel(r.id)
            exp = store.get_experiment(exp.id)
            runs, active = exp.runs, [r for r in exp.runs if r.status in ("queued", "running")]
        running = next((r for r in runs if r.status == "running"), None)
        fraction = (len(done) + float((running.progress or {}).get("fraction", 0.0) if running else 0.0)) / len(runs)
        if active:
            now = f" · now {md(running.name)}: {progress_text(running.progress)}" if running else ""
            st.progress(min(fraction, 1.0), text=f"{len(done)} of {len(runs)} runs done{now}")
        if done:
            summary = load_experiment(exp.id)["summary"]
            (st.success if exp.status == "done" else st.info)(
                ("Finished: " if exp.status == "done" else "So far: ") + interval_text(summary["balanced_accuracy"])
                + "; " + interval_text(summary["accuracy"], "accuracy") + ".")
            _results_link(done[0].id, help="Opens its first run; the Results page then shows the experiment's mean "
                                           "over every run.")
        for r in runs:
            if r.status in ("failed", "cancelled"):
                (st.error if r.status == "failed" else st.warning)(f"{md(r.name)}: {md(r.error or r.status)}")

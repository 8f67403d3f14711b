"""Good starting points: after a training, an experiment or a sweep this session made, the
run picker and Compare open it (for a sweep, the best cell against plain cross-entropy),
following it while it trains, until the person picks another run or types an address."""

from __future__ import annotations

import streamlit as st

from app import state
from app.services import get_store, load_sweep_summary
from core.analysis import (
    StartingPoint, experiment_starting_point, grouped_run_labels, is_experiment_id, run_starting_point,
    sweep_starting_point,
)
from core.store import SWEEP_PREFIX, RunNotFound, RunRecord

__all__ = ["remember_made", "forget_made", "follow_made", "picker_labels"]


def remember_made(item_id: str) -> None:
    """This session just made `item_id` (a run, an experiment or a sweep): open it next."""
    st.session_state[state.JUST_MADE] = {"id": item_id, "shown": None}


def forget_made() -> None:
    st.session_state.pop(state.JUST_MADE, None)


def _point(item_id: str) -> StartingPoint:
    store = get_store()
    if item_id.startswith(SWEEP_PREFIX):
        return sweep_starting_point(load_sweep_summary(item_id), store.get_sweep(item_id))
    if is_experiment_id(item_id):
        return experiment_starting_point(store.get_experiment(item_id))
    return run_starting_point(store.get(item_id))


def follow_made(current: str | None) -> str | None:
    """The run to select for what this session made, or None (nothing made, nothing finished
    yet, or the person has picked another run since it was selected). Also sets Compare's pair."""
    made = st.session_state.get(state.JUST_MADE)
    if not made:
        return None
    if made["shown"] is not None and current != made["shown"]:
        forget_made()  # the person chose another run: theirs wins from now on
        return None
    try:
        point = _point(made["id"])
    except (KeyError, RunNotFound):  # deleted meanwhile
        forget_made()
        return None
    if point.finished or point.run is None:
        if point.finished:
            forget_made()
        if point.run is None:
            return None
    else:
        made["shown"] = point.run
    if point.finished and not made["id"].startswith(SWEEP_PREFIX):  # Compare: the newest pair, this one in it
        st.session_state.pop(state.COMPARE_RUN_IDS, None)
        st.session_state.pop(state.COMPARE_EXPERIMENT_IDS, None)
        if is_experiment_id(made["id"]):
            st.session_state[state.COMPARE_MODE] = "Experiments"
    if point.compare_runs:
        st.session_state[state.COMPARE_RUN_IDS] = point.compare_runs
    if point.compare_experiments:
        st.session_state[state.COMPARE_EXPERIMENT_IDS] = point.compare_experiments
        st.session_state[state.COMPARE_MODE] = "Experiments"
    return point.run


def picker_labels(runs: list[RunRecord], title) -> dict[str, str]:
    """id -> the picker's label, a sweep's and an experiment's runs together under its name."""
    store = get_store()
    return dict(grouped_run_labels(runs, store.list_experiments(), store.list_sweeps(), title=title))


"""The Train page's live panel: the runs this session queued, then any run still active or
started in the last hour, each as a card that follows its training."""

from __future__ import annotations

import time

import streamlit as st

from app import state
from app.run_cards import experiment_card, run_card
from app.services import get_store
from core.analysis import is_experiment_id
from core.store import ExperimentRecord, RunNotFound

__all__ = ["watch", "live_panel", "RECENT_S"]

RECENT_S = 3600  # runs started this long ago still get a card


def watch(item_id: str) -> None:
    """Give a run or experiment queued from this session a card at the top."""
    st.session_state.setdefault(state.WATCH_RUN_IDS, []).append(item_id)


def _items():
    """Runs queued from this session, then any run still active or started in the last hour (so a
    reload or a second tab still shows them), an experiment as one card."""
    store = get_store()
    recent = [r.experiment or r.id for r in store.list_runs() if r.queue is None  # a sweep's: on the Sweeps page
              and (r.status in ("queued", "running") or time.time() - r.created < RECENT_S)][:8]
    items = []
    for item_id in dict.fromkeys([*reversed(st.session_state.get(state.WATCH_RUN_IDS, [])), *recent]):
        try:
            items.append(store.get_experiment(item_id) if is_experiment_id(item_id) else store.get(item_id))
        except RunNotFound:
            continue
    return items


def live_panel() -> None:
    """The cards, polling once a second while something is queued or running."""
    active = any(item.status in ("queued", "running") for item in _items())

    @st.fragment(run_every=1.0 if active else None)
    def panel() -> None:
        current = _items()
        if not current:
            return
        st.subheader("Your runs")
        for item in current:
            (experiment_card if isinstance(item, ExperimentRecord) else run_card)(item)
        if active and not any(item.status in ("queued", "running") for item in current):
            st.rerun()  # all finished: one full rerun refreshes the sidebar and stops the polling

    panel()

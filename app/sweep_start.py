"""Starting a sweep from a page, once for every button that does (the sweep builder, "Try
the standard fixes"): refusals shown in words, what was made remembered so Results and
Compare open it, and the Sweeps page opened on it."""

from __future__ import annotations

import streamlit as st

from app.services import start_sweep_in_background
from app.starting_points import remember_made
from app.widgets import flash
from core.jobs import SweepRefused, SweepSpec
from core.text import md

__all__ = ["start_sweep_and_follow"]


def start_sweep_and_follow(spec: SweepSpec, *, started: str, refused: str) -> None:
    """Start `spec` in the background and open its progress; `started` is the notice for a
    new sweep ("Started the sweep: 6 trainings ..."), `refused` heads the list of
    combinations that cannot run."""
    try:
        sweep_id, to_run = start_sweep_in_background(spec)
    except SweepRefused as exc:
        st.error(f"**{refused}:** " + "; ".join(md(p) for p in exc.problems))
        return
    except ValueError as exc:
        st.error(md(exc))
        return
    remember_made(sweep_id)  # Results and Compare open its best setting against plain cross-entropy
    flash("This sweep is already training; here it is." if to_run < 0 else
          "Every run of this sweep had finished already; here are its results." if to_run == 0 else started)
    st.switch_page("../pages/sweeps.py", query_params={"sweep": sweep_id})

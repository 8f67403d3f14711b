"""The Post-hoc explorer's state and numbers: its slider keys and defaults, reset and
save-as-a-derived-run (button callbacks), and the cards that show what the adjustment
changed against the original model."""

from __future__ import annotations

from typing import Any

import streamlit as st

from app import state
from app.services import get_store
from app.widgets import explain, flash
from core.analysis import CALIBRATION_METRICS, METRICS, POSTHOC_DEFAULTS
from core.jobs import save_derived_run
from core.text import md

__all__ = ["KEY", "TEMPERATURES", "DEFAULTS", "start", "reset", "save", "change_cards"]

KEY = "posthoc."
TEMPERATURES = [0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0]
DEFAULTS = {**POSTHOC_DEFAULTS, "fitted_T": False}
CARD_ROWS = [[("accuracy", "{:.1%}"), ("balanced_accuracy", "{:.1%}"), ("f1_macro", "{:.3f}"),
              ("worst_class_recall", "{:.1%}")],
             [("ece", "{:.3f}"), ("mce", "{:.3f}"), ("classwise_ece", "{:.3f}"), ("nll", "{:.3f}"),
              ("brier", "{:.3f}")]]


def start() -> None:
    """Every slider at its default unless the person moved it earlier in this session."""
    for name, value in DEFAULTS.items():
        st.session_state.setdefault(KEY + name, value)


def reset() -> None:
    for key, default in DEFAULTS.items():
        st.session_state[KEY + key] = default


def save(run_id: str, params: dict, suggested: str) -> None:
    """Store the adjusted model as a new finished run and select it; the sliders restart."""
    name = (st.session_state.get(KEY + "name") or "").strip() or suggested
    try:
        new_id = save_derived_run(get_store(), run_id, name, params)
    except (ValueError, OSError) as exc:
        st.session_state[KEY + "error"] = f"Could not save: {md(exc)}"
        return
    st.session_state[state.RUN_ID] = new_id
    st.session_state[KEY + "name"] = ""
    reset()
    flash(f"Saved as **{md(name)}**, a new finished run, now selected in the sidebar's run picker: every analysis "
          "page shows it, and the Runs page lists it. Its adjustments are built in, so the sliders start "
          "from zero again.")


def change_cards(original: dict[str, Any], adjusted: dict[str, Any]) -> None:
    """How well the adjusted model decides and how honest its confidence is, each with its
    change from the original model."""
    for row in CARD_ROWS:
        for col, (key, fmt) in zip(st.columns(5), row):
            info = METRICS.get(key) or CALIBRATION_METRICS[key]
            delta = adjusted[key] - original[key]
            col.metric(info.display_name, fmt.format(adjusted[key]),
                       delta=fmt.replace("{:", "{:+").format(delta).replace("%", " pts") if abs(delta) >= 5e-4 else None,
                       delta_color="normal" if info.higher_is_better else "inverse", help=info.description)
    explain("Top row: how well it decides (higher is better). Bottom row: how honest its confidence is (lower is "
            "better). Small arrows: change from the original model; green is an improvement.")

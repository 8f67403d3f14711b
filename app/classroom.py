"""Classroom mode: larger type and layouts that fit a projector's 1024x768.

A teacher turns it on in the sidebar or opens a link with ``?classroom=1``; it stays on
across page switches (the address says so on every page) until turned off or opened with
``?classroom=0``. One style sheet, injected once per run, does the work on every page:
bigger type, columns that stack instead of squeezing their labels, words that never break
in the middle, button rows and segmented controls that wrap instead of hiding options.
"""

from __future__ import annotations

import streamlit as st

CLASSROOM = "tailscope.classroom"  # whether classroom mode is on
_TOGGLE = "tailscope.classroom_toggle"  # the switch (Streamlit forgets a widget's value across page switches)
CLASSROOM_IN_ADDRESS = "tailscope.classroom_in_address"  # the ?classroom= value this session last wrote

# Streamlit sizes its type and spacing in rem, so one root size scales the whole page.
# Columns narrower than `min-width` wrap onto the next line (then take the full width).
CLASSROOM_CSS = """
<style>
html { font-size: 19px; }
[data-testid="stMainBlockContainer"] { padding: 2rem 1.5rem 4rem; }
[data-testid="stHorizontalBlock"] { flex-wrap: wrap; row-gap: 0.5rem; }
[data-testid="stHorizontalBlock"] > [data-testid="stColumn"] { min-width: min(100%, 11rem); }
[data-testid="stWidgetLabel"] p, [data-testid="stWidgetLabel"] label,
[data-testid="stBaseButton-secondary"] p, [data-testid="stBaseButton-primary"] p, [data-testid="stMetricLabel"] p,
[data-testid="stMarkdownContainer"] p { word-break: normal; overflow-wrap: normal; hyphens: manual; }
[data-testid="stButtonGroup"] > div { flex-wrap: wrap; overflow-x: visible; }
[data-testid="stWidgetLabel"] *, [data-testid="stMetricLabel"] *, [data-testid="stMetricDeltaDescription"],
[data-testid="stMetricDeltaDescription"] * { white-space: normal !important; text-overflow: clip !important;
  overflow: visible !important; }
div:has(> [data-testid="stMetricDelta"]) { flex-wrap: wrap; row-gap: 0.25rem; overflow: visible; }
[data-testid="stSidebar"] { font-size: 0.9rem; }
</style>
"""

# On every page, classroom or not: a label, a metric's name, a button or a chosen option in
# a narrow column wraps onto a second line instead of ending in "…" (at 1024 px, three
# columns beside the sidebar are ~180 px each).
NO_CUT_CSS = """
<style>
[data-testid="stWidgetLabel"] *, [data-testid="stMetricLabel"] *, [data-testid="stCheckbox"] label *,
[data-testid^="stBaseButton"] p, [data-testid^="stBaseButton"] div, [data-testid="stPageLink"] *,
[data-testid="stMultiSelectTagsContainer"] span, [data-testid="stExpander"] summary * {
  white-space: normal !important; text-overflow: clip !important; overflow: visible !important; }
[data-testid="stMultiSelectTagsContainer"] span { height: auto !important; max-width: 100% !important; }
[data-testid^="stBaseButton"] { height: auto; }
[data-testid="stMetricDelta"], [data-testid="stMetricDelta"] *,
[data-testid="stMetricDeltaDescription"], [data-testid="stMetricDeltaDescription"] * { white-space: normal !important;
  text-overflow: clip !important; overflow: visible !important; }
div:has(> [data-testid="stMetricDelta"]) { flex-wrap: wrap; row-gap: 0.25rem; overflow: visible; }
[data-testid="stButtonGroup"] > div { flex-wrap: wrap; overflow-x: visible; }
</style>
"""


def classroom_toggle() -> bool:
    """The sidebar's switch; returns whether classroom mode is on (and styles the page if so)."""
    in_address = st.query_params.get("classroom")
    if in_address in ("0", "1") and in_address != st.session_state.get(CLASSROOM_IN_ADDRESS):
        st.session_state[CLASSROOM] = in_address == "1"  # a link or bookmark says so: it wins
    st.session_state[_TOGGLE] = st.session_state.get(CLASSROOM, False)
    on = st.toggle("Classroom mode", key=_TOGGLE, on_change=_switched,
                   help="Larger type, and every page laid out to fit a projector (1024×768). The address keeps "
                        "?classroom=1, so a bookmark or shared link opens in classroom mode.")
    st.html(NO_CUT_CSS)
    if on:
        st.query_params["classroom"] = "1"
        st.html(CLASSROOM_CSS)
    elif "classroom" in st.query_params:
        del st.query_params["classroom"]
    st.session_state[CLASSROOM_IN_ADDRESS] = "1" if on else None
    return on


def _switched() -> None:
    st.session_state[CLASSROOM] = st.session_state[_TOGGLE]

"""Tailscope's Streamlit entry: page config, routing and the shared sidebar."""

from __future__ import annotations

import logging
import os
import secrets

import streamlit as st

from app.services import ASSETS, restore_data_choice
from app.widgets import flash, remember_form_values, sidebar

st.set_page_config(page_title="Tailscope", page_icon="🔭", layout="wide")
st.logo(str(ASSETS / "logo.svg"), icon_image=str(ASSETS / "icon.svg"), size="large")

PAGES = {
    "Workbench": [
        st.Page("../pages/home.py", title="Home", icon="🏠", default=True),
        st.Page("../pages/data.py", title="Data", icon="📦"),
        st.Page("../pages/train.py", title="Train", icon="🏋️"),
        st.Page("../pages/runs.py", title="Runs", icon="🗂️"),
    ],
    "Analyse a run": [
        st.Page("../pages/results.py", title="Results", icon="📊"),
        st.Page("../pages/compare.py", title="Compare", icon="⚖️"),
        st.Page("../pages/geometry.py", title="Geometry", icon="🧭"),
        st.Page("../pages/calibration.py", title="Calibration", icon="🎯"),
        st.Page("../pages/posthoc.py", title="Post-hoc explorer", icon="🎚️"),
        st.Page("../pages/gallery.py", title="Error gallery", icon="🔍"),
        st.Page("../pages/triage.py", title="Rare-class triage", icon="🩺"),
        st.Page("../pages/robustness.py", title="Robustness", icon="🛡️"),
    ],
    "Compare many settings": [
        st.Page("../pages/sweeps.py", title="Sweeps", icon="🧪"),
    ],
    "Teach": [
        st.Page("../pages/playground.py", title="Playground", icon="🎓"),
        st.Page("../pages/lessons.py", title="Lessons", icon="📚"),
    ],
}

log = logging.getLogger("tailscope.app")


def run_page(page) -> None:
    """Run the page; an unexpected error becomes a short notice with a reference, and its
    traceback goes to the server's log only, so no viewer sees code or server paths.
    TAILSCOPE_RAISE_ERRORS=1 lets errors through (the tests use it to see them)."""
    try:
        page.run()
    except Exception:
        if os.environ.get("TAILSCOPE_RAISE_ERRORS") == "1":
            raise
        reference = secrets.token_hex(4)
        log.exception("page %s failed (reference %s)", page.title, reference)
        st.error(f"Something went wrong on this page (reference {reference}). Try again, or pick another run in the "
                 "sidebar; if it keeps happening, the server's log holds the details under that reference.")


remember_form_values()
restore_data_choice()
page = st.navigation(PAGES, expanded=True)  # every page in view: no "View more" hiding the last ones
sidebar()
flash()
run_page(page)

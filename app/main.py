"""Tailscope's Streamlit entry: page config, routing and the shared sidebar."""

from __future__ import annotations

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
    ],
    "Teach": [
        st.Page("../pages/playground.py", title="Playground", icon="🎓"),
    ],
}

remember_form_values()
restore_data_choice()
page = st.navigation(PAGES)
sidebar()
flash()
page.run()

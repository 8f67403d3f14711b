"""Home: what Tailscope is for, and the three steps to a first result."""

import streamlit as st

from app.services import get_store
from app.latest_view import latest_work_panel
from app.widgets import empty_state
from core.glossary import glossary_markdown

st.title("🔭 Tailscope")
st.markdown(
    "**See what class imbalance does to a classifier, and what fixes it.** Real data is rarely "
    "balanced: a few common classes (the *head*) have many examples and many rare classes (the "
    "*tail*) have few. A model trained on such data learns to favour the head, and its overall "
    "accuracy hides how badly it does on the rare classes, often the ones that matter most."
)

c1, c2, c3 = st.columns(3)
with c1:
    st.subheader("1 · Data")
    st.write("Pick a built-in set or upload a table, a ZIP of images or an `.npz`, then make "
             "the training split long-tailed.")
    st.page_link("../pages/data.py", label="Choose data", icon="📦")
with c2:
    st.subheader("2 · Train")
    st.write("Choose a model, a loss, a sampler and an optional two-stage fix, and watch it train "
             "with per-class recall updating live.")
    st.page_link("../pages/train.py", label="Train a model", icon="🏋️")
with c3:
    st.subheader("3 · Look")
    st.write("Per-class results, comparison of methods, feature geometry, calibration and the "
             "errors on rare classes with what drove them.")
    st.page_link("../pages/results.py", label="See results", icon="📊")

st.divider()
runs = get_store().list_runs()
if not runs:
    empty_state("No runs yet. A demo run trains a small network on handwritten digits where the "
                "digit 9 has 50 times fewer examples than the digit 0: a minute later the Results "
                "page shows what that does.")
else:
    latest_work_panel(runs)
    st.page_link("../pages/runs.py", label="All runs", icon="🗂️")

with st.expander("Words used in this workbench (also under **Glossary** in the sidebar of every page)"):
    st.markdown(glossary_markdown())

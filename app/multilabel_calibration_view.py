"""The Calibration page for a multi-label run: pick a finding; its reliability diagram and
ECE with a 95 % interval on the cases whose entry for it is known, and every finding's ECE
beside how often training saw it."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from app.services import RunBundle, get_store, load_bundle
from app.widgets import explain, table_height
from core.analysis import label_calibration_table, label_cases, label_ece_interval, label_reliability
from core.text import md
from core.viz import label_reliability_figure

__all__ = ["finding_choices", "multilabel_calibration"]


def finding_choices(bundle: RunBundle) -> tuple[list[int], dict[int, str]]:
    """Findings from most to fewest training cases, each with its words for a picker."""
    per_label = pd.DataFrame(bundle.metrics["per_label"])
    order = per_label.sort_values("train_count", ascending=False, kind="stable").index.tolist()
    words = {j: f"{row['label']} ({row['group']}, {int(row['train_count']):,} training cases)"
             for j, row in per_label.iterrows()}
    return order, words


@st.cache_data(show_spinner="Bootstrapping each finding's calibration error…", max_entries=16)
def _table(home: str, run_id: str, updated: float, n_bins: int) -> pd.DataFrame:
    bundle = load_bundle(run_id)
    art = bundle.artifacts
    return label_calibration_table(art.logits, art.label_matrix, pd.DataFrame(bundle.metrics["per_label"]), n_bins)


def multilabel_calibration(bundle: RunBundle) -> None:
    """Everything the Calibration page shows for a multi-label run."""
    art, record = bundle.artifacts, bundle.record
    order, words = finding_choices(bundle)
    st.markdown("Each finding is its own yes/no question here: when the model gives a finding a 30 % chance, about "
                "30 in 100 such cases should carry it. Cases whose entry for the finding is unknown are left out.")
    c1, c2 = st.columns([3, 2])
    # options are plain text, not markdown: the finding's name as written
    label = c1.selectbox("Finding", order, index=len(order) - 1, format_func=lambda j: words[j],
                         key=f"calibration.ml_label.{record.id}", help="Findings from the most to the fewest training "
                         "cases; the rarest is chosen first.")
    n_bins = c2.slider("Chance bins", 5, 30, 10, key="calibration.ml_bins",
                       help="The range 0–100 % is cut into this many equal slices.")
    name = bundle.metrics["per_label"][label]["label"]
    probs, present = label_cases(art.logits, art.label_matrix, label)
    if not probs.size:
        st.info(f"No test case has a known entry for {md(name)}, so there is nothing to measure.")
    else:
        found = label_ece_interval(probs, present, n_bins)
        ranged = math.isfinite(found.low) and math.isfinite(found.high)
        m1, m2, m3 = st.columns(3)
        m1.metric("Calibration error (ECE)", f"{found.estimate:.3f}", border=True, delta_color="off",
                  delta_arrow="off", delta=f"{found.low:.3f} to {found.high:.3f}" if ranged else "no interval",
                  help="Case-weighted mean gap between the predicted chance and the share of cases with the finding, "
                       "over the slices below; 0 is perfect. 95 % interval: bootstrap over the test cases, within "
                       "those with and those without the finding.")
        m2.metric("Mean predicted chance", f"{probs.mean():.1%}", border=True,
                  help="The model's average chance for this finding over the test cases with a known entry.")
        m3.metric("Share with the finding", f"{present.mean():.1%}", border=True,
                  delta=f"{int(present.sum())} of {probs.size} test cases", delta_color="off", delta_arrow="off",
                  help="How many test cases truly carry it. Far from the mean predicted chance: the model over- or "
                       "under-calls it overall.")
        st.plotly_chart(label_reliability_figure(label_reliability(probs, present, n_bins), name), width="stretch",
                        key="calibration.ml_reliability")
        explain("Each bar is a slice of the model's chance for this finding: its height is how many of those cases "
                "carried it. On the dashed diagonal the two agree; a bar below it means the model called the finding "
                "likelier than it was. The small bars underneath count the cases in each slice: a rare finding has "
                "few cases in the high slices, so its gaps there mean little.")

    st.subheader("Every finding, common to rare")
    table = _table(str(get_store().home), record.id, record.updated, n_bins)
    num = st.column_config.NumberColumn
    st.dataframe(table, hide_index=True, width="stretch", height=table_height(len(table), 460), column_config={
        "label": "finding", "group": "group", "train_count": num("training cases"),
        "test_known": num("test cases known"), "test_positives": num("test cases with it"),
        "ece": num("ECE", format="%.3f"), "ece_low": num("95 % low", format="%.3f"),
        "ece_high": num("95 % high", format="%.3f")})
    explain("Each finding's calibration error with its 95 % interval (bootstrap over its test cases), from the most to "
            "the fewest training cases. Errors that grow towards the bottom mean the rare findings get the least "
            "honest chances; a wide interval means few test cases stand behind the number.")

"""The Triage page for a multi-label run: pick a finding and how common it is where the model
will be used ("this finding at 2 % prevalence"); the operating point at the threshold tuned
on validation (or another), sensitivity and specificity with intervals, PPV and NPV at that
prevalence."""

from __future__ import annotations

import math

import streamlit as st

from app.fit_tables import wrapping_table
from app.multilabel_calibration_view import finding_choices
from app.services import RunBundle
from app.triage_view import point_cards
from app.widgets import explain
from core.analysis import label_cases, label_operating_point
from core.text import md
from core.viz import triage_pr_figure, triage_roc_figure, two_by_two_frame

__all__ = ["multilabel_triage"]


def multilabel_triage(bundle: RunBundle) -> None:
    """Everything the Triage page shows for a multi-label run."""
    art, record = bundle.artifacts, bundle.record
    order, words = finding_choices(bundle)
    st.markdown("Each finding is its own yes/no flag here. Pick one and say how common it is where the model will be "
                "used; the numbers below follow. Test cases whose entry for the finding is unknown are left out.")
    c1, c2, c3 = st.columns([2, 2, 3])
    # options are plain text, not markdown: the finding's name as written
    label = c1.selectbox("Finding to flag", order, index=len(order) - 1, format_func=lambda j: words[j],
                         key=f"triage.ml_label.{record.id}", help="From the most to the fewest training cases.")
    row = bundle.metrics["per_label"][label]
    name, tuned = row["label"], float(row["threshold"])
    scores, positive = label_cases(art.logits, art.label_matrix, label)
    own = round(100 * positive.mean(), 2) if positive.size else 1.0
    prevalence = c2.number_input("How common is it in your setting (%)", 0.01, 99.99, value=max(own, 0.01), step=0.5,
                                 format="%g", key=f"triage.ml_prevalence.{record.id}.{label}",
                                 help=f"Of every 100 cases you see, how many carry {md(name)}. The test cases with a "
                                      f"known entry have {own:g} %.")
    threshold = c3.slider("Flag a case when the model's chance is at least", 0.0, 1.0, value=round(tuned, 3),
                          step=0.001, format="%.3f", key=f"triage.ml_threshold.{record.id}.{label}",
                          help=f"Starts at {tuned:.3f}, the threshold tuned on the validation cases (best F1). Lower: "
                               "more flagged, fewer missed, more false alarms.")
    if not positive.size or positive.all() or not positive.any():
        st.info(f"The test cases with a known entry for {md(name)} are all of one kind (with it, or without it), so "
                "sensitivity and specificity cannot both be measured. Pick another finding.")
        return
    point = label_operating_point(art.logits, art.label_matrix, label, threshold, prevalence=prevalence / 100)
    st.markdown(f"**{md(name)} at {prevalence:g} % prevalence, flagged at {threshold:.3f}**"
                + (" (the tuned threshold)" if abs(threshold - tuned) < 5e-4 else f" (tuned: {tuned:.3f})"))
    point_cards(point, name, prevalence)
    per_1000 = 10 * prevalence
    found, alarms = per_1000 * point["sensitivity"]["value"], (1000 - per_1000) * (1 - point["specificity"]["value"])
    if math.isfinite(found) and math.isfinite(alarms):
        explain(f"In words: of 1,000 cases where {prevalence:g} % carry {md(name)} (about {per_1000:,.0f}), the model "
                f"flags about {found:,.0f} of them and misses about {per_1000 - found:,.0f}; it also raises about "
                f"{alarms:,.0f} false alarms among the {1000 - per_1000:,.0f} others. Sensitivity and specificity come "
                "from the test cases (Wilson intervals); PPV and NPV follow from them at your prevalence (Bayes), "
                "their intervals from the ends of the other two.")
    st.markdown("**The test cases at this threshold**")
    wrapping_table(two_by_two_frame(point, name))
    explain("Counts on this run's test cases with a known entry (their own mix, not your setting's): the model's "
            "call in rows, the truth in columns.")
    r1, r2 = st.columns(2)
    r1.plotly_chart(triage_roc_figure(scores, positive, point, name), width="stretch", key="triage.ml_roc")
    r2.plotly_chart(triage_pr_figure(scores, positive, point, name, prevalence / 100), width="stretch",
                    key="triage.ml_pr")
    explain("Left: every threshold as a trade between finding cases (up) and false alarms (right); the cross is the "
            f"threshold above. Right: how often a flag is right at {prevalence:g} % prevalence; the dotted line is "
            "flagging at random. A rare finding makes even a good model's flags often wrong.")

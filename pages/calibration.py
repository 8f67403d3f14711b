"""Calibration: when the model says "90 % sure", is it right 9 times in 10, for rare classes too?"""

import numpy as np
import streamlit as st

from app.calibration_view import TABS, calibration_cards, class_test_counts, temperature_section
from app.multilabel_calibration_view import multilabel_calibration
from app.prior_view import metrics_at, prior_cards, prior_note, prior_picker
from app.services import load_bundle
from app.widgets import explain, require_run, table_height
from core.analysis import (
    CALIBRATION_METRICS, calibration_gap_by_group, calibration_table, per_class_ece,
    reliability_bins, softmax,
)
from core.data import head_to_tail_order
from core.viz import calibration_gap_bars, confidence_histogram, per_class_ece_bars, reliability_diagram

st.title("🎯 Calibration")
st.markdown(
    "A model gives every answer with a **confidence**. It is *calibrated* when that confidence can be "
    "taken at its word: of all the cases it calls 90 % sure, about 90 % are right. An **over-confident** "
    "model sounds surer than it deserves: for a clinician, a rare condition called with 95 % confidence "
    "that is right only 70 % of the time invites no second look when it should. Imbalanced training "
    "often makes models over-confident exactly on the rare (tail) classes."
)

record = require_run(multilabel=True)
bundle = load_bundle(record.id)
if bundle.multilabel:  # several findings per case: one finding at a time
    multilabel_calibration(bundle)
    st.stop()
art, names, groups = bundle.artifacts, bundle.class_names, bundle.groups
probs, y = softmax(art.logits), np.asarray(art.labels)

st.markdown("##### This run, with 95 % interval")
calibration_cards(bundle)
explain("This one run on the test split as it is; under ECE, MCE and NLL the ends of a 95 % interval (bootstrap "
        "over the test cases), under the others the number of test cases. Below: the calibration error at another "
        "class mix.")

choice = prior_picker(bundle, "calibration")
if not choice.as_tested:
    prior_cards(metrics_at(bundle, choice), metrics_at(bundle))
prior_note(choice, what="cards just above")

st.subheader("Reliability diagram")
c1, c2 = st.columns([3, 2])
view = c1.radio("Show", ["All test cases", "By group", "One class"], horizontal=True, key="calibration.view",
                help="By group and One class use only the test cases whose true class is in that group or class.")
n_bins = c2.slider("Confidence bins", 5, 30, 15, key="calibration.bins",
                   help="The confidence range 0–100 % is cut into this many equal slices.")
if view == "By group":
    members = {g: np.isin(y, [j for j, gj in enumerate(groups) if gj == g]) for g in ("head", "medium", "tail")}
    series = {g: reliability_bins(probs[m], y[m], n_bins) for g, m in members.items() if m.any()}
    colors = None
elif view == "One class":
    cls = st.selectbox("Class", head_to_tail_order(art.class_counts).tolist(), key="calibration.class",
                       format_func=lambda j: f"{names[j]} ({groups[j]}, {art.class_counts[j]:,} training examples)")
    mask = y == cls
    series = {names[cls]: reliability_bins(probs[mask], y[mask], n_bins)}
    colors = {names[cls]: groups[cls]}
else:
    series, colors = reliability_bins(probs, y, n_bins), None
if view == "One class" and not mask.any():
    st.info("This class has no test cases, so there is nothing to draw.")
else:
    st.plotly_chart(reliability_diagram(series, colors=colors), width="stretch", key="calibration.reliability")
explain("Each bar is a slice of confidence: its height is how often the model was right there. On the dashed "
        "diagonal confidence and accuracy agree. A bar below it is over-confidence (the hatched gap sits on top: the "
        "model claimed more than it delivered); a bar above it is under-confidence (the hatching covers the bar's "
        "top: it was right more often than it said). "
        "The small bars underneath count the cases in each slice: a tall gap over few cases means little.")

st.subheader("Where the confidence goes wrong, and the fix")
# Only the open tab is drawn (as on Results and Geometry): six charts at once cost a click about half a second.
by_class, right_wrong, temperature = st.tabs(TABS, key="calibration.tabs", on_change="rerun")
if by_class.open:
    with by_class:
        left, right = st.columns(2)
        with left:
            st.markdown("**Calibration error per class**")
            st.plotly_chart(per_class_ece_bars(names, per_class_ece(probs, y, n_bins), art.class_counts, groups,
                                               class_test_counts(bundle)), width="stretch",
                            key="calibration.per_class")
            explain("ECE measured on each class's own test cases (n above each bar), classes from most to fewest "
                    "training examples. Rising bars to the right mean the rare classes get the least honest "
                    "confidence. A hatched bar marked (few) rests on fewer than 10 test cases: read it with care.")
        with right:
            st.markdown("**Over- or under-confident, per group**")
            st.plotly_chart(calibration_gap_bars(calibration_gap_by_group(probs, y, groups)), width="stretch",
                            key="calibration.gap")
            explain("Average confidence minus accuracy on each group's test cases: above zero the model claims more "
                    "than it delivers (over-confident), below zero it undersells itself.")

if right_wrong.open:
    with right_wrong:
        st.markdown("**How sure it was when right, and when wrong**")
        st.plotly_chart(confidence_histogram(probs.max(axis=1), probs.argmax(axis=1) == y), width="stretch",
                        key="calibration.histogram")
        explain("A trustworthy model is unsure when it is wrong: the purple bars (wrong answers) should sit to the "
                "left. Wrong answers piled up near 100 % are the confident mistakes to worry about.")

if temperature.open:
    with temperature:
        temperature_section(bundle, n_bins)

with st.expander("Every number, per group and per class"):
    table = calibration_table(probs, y, groups, names, n_bins, class_order=head_to_tail_order(art.class_counts))
    table = table.drop(columns="scope")
    percent = st.column_config.NumberColumn(format="percent")
    st.dataframe(table, hide_index=True, width="stretch", height=table_height(len(table), 560), column_config={
        "name": "group or class", "n": st.column_config.NumberColumn("test cases"), "accuracy": percent,
        "confidence": percent, **{k: st.column_config.NumberColumn(
            CALIBRATION_METRICS[k].display_name if k in CALIBRATION_METRICS else k, format="%.3f",
            help=CALIBRATION_METRICS[k].description if k in CALIBRATION_METRICS else None)
            for k in ("gap", "ece", "mce", "adaptive_ece", "brier", "nll")}})
    explain("The same measures as at the top, on the test cases of each group (first rows) and of each class, "
            "from the most to the fewest training examples, then on all cases. Accuracy within a class is its "
            "recall; gap is mean confidence minus accuracy.")


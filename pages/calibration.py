"""Calibration: when the model says "90 % sure", is it right 9 times in 10, for rare classes too?"""

import math

import numpy as np
import streamlit as st

from app.calibration_view import calibration_cards, class_test_counts
from app.multilabel_calibration_view import multilabel_calibration
from app.prior_view import metrics_at, prior_cards, prior_note, prior_picker
from app.services import load_bundle
from app.widgets import explain, require_run, table_height
from core.analysis import (
    CALIBRATION_METRICS, calibration_gap_by_group, calibration_table, explore, per_class_ece,
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
cal = bundle.metrics.get("calibration", {})
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

st.subheader("How sure it was when right, and when wrong")
st.plotly_chart(confidence_histogram(probs.max(axis=1), probs.argmax(axis=1) == y), width="stretch",
                key="calibration.histogram")
explain("A trustworthy model is unsure when it is wrong: the purple bars (wrong answers) should sit to the left. "
        "Wrong answers piled up near 100 % are the confident mistakes to worry about.")

left, right = st.columns(2)
with left:
    st.subheader("Calibration error per class")
    st.plotly_chart(per_class_ece_bars(names, per_class_ece(probs, y, n_bins), art.class_counts, groups,
                                       class_test_counts(bundle)), width="stretch", key="calibration.per_class")
    explain("ECE measured on each class's own test cases (n above each bar), classes from most to fewest training "
            "examples. Rising bars to the right mean the rare classes get the least honest confidence. A hatched "
            "bar marked (few) rests on fewer than 10 test cases: read it with care.")
with right:
    st.subheader("Over- or under-confident, per group")
    st.plotly_chart(calibration_gap_bars(calibration_gap_by_group(probs, y, groups)), width="stretch",
                    key="calibration.gap")
    explain("Average confidence minus accuracy on each group's test cases: above zero the model claims more "
            "than it delivers (over-confident), below zero it undersells itself.")

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

st.subheader("Temperature scaling: the one-number fix")
T = cal.get("optimal_temperature", float("nan"))
if T is None or not math.isfinite(T):
    st.info("This run has no validation cases, so no temperature could be fitted.")
    st.stop()
before, after = explore(art, n_bins=n_bins, groups=groups), explore(art, temperature=T, n_bins=n_bins, groups=groups)
st.markdown(
    f"Dividing every score by one number **T** softens (T > 1) or sharpens (T < 1) all confidences at once "
    f"(Guo et al. 2017). T is chosen on the validation cases, never the test cases, to make the true answers "
    f"least surprising. Here **T = {T:.2f}**, so the model was "
    f"{'over-confident and is softened' if T > 1 else 'under-confident and is sharpened'}. It never changes "
    f"which class is predicted, so accuracy stays {before['accuracy']:.1%}."
)
m1, m2, m3, m4 = st.columns(4)
m1.metric("Temperature T", f"{T:.2f}", help=CALIBRATION_METRICS["optimal_temperature"].description)
m2.metric("ECE after", f"{after['ece']:.3f}", delta=f"{after['ece'] - before['ece']:+.3f}", delta_color="inverse",
          help="Change from the original ECE (negative is better).")
m3.metric("NLL after", f"{after['nll']:.3f}", delta=f"{after['nll'] - before['nll']:+.3f}", delta_color="inverse",
          help="Change from the original NLL (negative is better).")
m4.metric("Accuracy after", f"{after['accuracy']:.1%}", delta="unchanged", delta_color="off", delta_arrow="off",
          help="Temperature scaling never changes a prediction.")
b1, b2 = st.columns(2)
b1.plotly_chart(reliability_diagram(before["reliability"], title="Before (T = 1)"), width="stretch",
                key="calibration.before")
b2.plotly_chart(reliability_diagram(after["reliability"], title=f"After (T = {T:.2f})"), width="stretch",
                key="calibration.after")
explain("The same diagram before and after: closer to the diagonal is better. On small test sets ECE can rise "
        "slightly even when NLL falls, because T is tuned for NLL on other (validation) cases.")
st.page_link("../pages/posthoc.py", label="Try temperature with other fixes in the Post-hoc explorer", icon="🎚️")

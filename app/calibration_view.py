"""The Calibration page's headline cards: each measure of this one run with its 95 %
bootstrap interval over the test cases (ECE, MCE, NLL) or, where no interval is computed,
the number of test cases it rests on; and its temperature-scaling tab."""

from __future__ import annotations

import math

import numpy as np
import streamlit as st

from app.services import get_store, load_bundle
from app.widgets import explain
from core.analysis import CALIBRATION_METRICS, calibration_intervals, explore, softmax
from core.text import number
from core.viz import reliability_diagram

__all__ = ["TABS", "CALIBRATION_CARDS", "WITH_INTERVAL", "calibration_cards", "class_test_counts",
           "temperature_section"]

# the page's tabs below the reliability diagram, in order: only the open one is drawn
TABS = ("Per class and group", "When right and when wrong", "Temperature scaling")

CALIBRATION_CARDS = ("ece", "mce", "adaptive_ece", "classwise_ece", "brier", "nll")
WITH_INTERVAL = ("ece", "mce", "nll")


@st.cache_data(show_spinner="Bootstrapping the calibration measures over the test cases…", max_entries=64)
def _intervals(home: str, run_id: str, updated: float) -> dict[str, tuple[float, float]]:
    art = load_bundle(run_id).artifacts
    found = calibration_intervals(softmax(art.logits), art.labels, metrics=WITH_INTERVAL)
    return {k: (i.low, i.high) for k, i in found.items()}


def calibration_cards(bundle) -> None:
    """One card per measure as stored with the run; ECE, MCE and NLL with their interval."""
    cal = bundle.metrics.get("calibration") or {}
    intervals = _intervals(str(get_store().home), bundle.record.id, bundle.record.updated)
    n = len(bundle.artifacts.labels)
    columns = st.columns(3)  # two rows of three: six cards side by side cut their interval's words
    for i, key in enumerate(CALIBRATION_CARDS):
        col = columns[i % 3]
        info, value = CALIBRATION_METRICS[key], cal.get(key)
        low, high = intervals.get(key, (math.nan, math.nan))
        known = value is not None and math.isfinite(value)
        ranged = known and math.isfinite(low) and math.isfinite(high)
        col.metric(info.display_name, f"{value:.3f}" if known else "n/a",
                   delta=f"{number(low)} to {number(high)}" if ranged else f"{n} test cases", delta_color="off",
                   delta_arrow="off",  # the heading says "with 95 % interval": at 1024 px a description was cut
                   help=f"{info.description} Lower is better." + (
                       f" 95 % interval: stratified bootstrap over the {n} test cases." if ranged else ""),
                   border=True)


def class_test_counts(bundle) -> np.ndarray:
    """Test cases of each class index."""
    return np.bincount(np.asarray(bundle.artifacts.labels), minlength=bundle.artifacts.num_classes)


def temperature_section(bundle, n_bins: int) -> None:
    """The one-number fix (Guo et al. 2017): T fitted on the validation cases, the cards and the
    reliability diagram before and after it."""
    art, groups = bundle.artifacts, bundle.groups
    cal = bundle.metrics.get("calibration", {})
    T = cal.get("optimal_temperature", float("nan"))
    if T is None or not math.isfinite(T):
        st.info("This run has no validation cases, so no temperature could be fitted.")
    else:
        before = explore(art, n_bins=n_bins, groups=groups)
        after = explore(art, temperature=T, n_bins=n_bins, groups=groups)
        st.markdown(
            f"**The one-number fix.** Dividing every score by one number **T** softens (T > 1) or sharpens "
            f"(T < 1) all confidences at once (Guo et al. 2017). T is chosen on the validation cases, never the "
            f"test cases, to make the true answers least surprising. Here **T = {T:.2f}**, so the model was "
            f"{'over-confident and is softened' if T > 1 else 'under-confident and is sharpened'}. It never "
            f"changes which class is predicted, so accuracy stays {before['accuracy']:.1%}."
        )
        m1, m2, m3, m4 = st.columns(4)
        m1.metric("Temperature T", f"{T:.2f}", help=CALIBRATION_METRICS["optimal_temperature"].description)
        m2.metric("ECE after", f"{after['ece']:.3f}", delta=f"{after['ece'] - before['ece']:+.3f}",
                  delta_color="inverse", help="Change from the original ECE (negative is better).")
        m3.metric("NLL after", f"{after['nll']:.3f}", delta=f"{after['nll'] - before['nll']:+.3f}",
                  delta_color="inverse", help="Change from the original NLL (negative is better).")
        m4.metric("Accuracy after", f"{after['accuracy']:.1%}", delta="unchanged", delta_color="off",
                  delta_arrow="off", help="Temperature scaling never changes a prediction.")
        b1, b2 = st.columns(2)
        b1.plotly_chart(reliability_diagram(before["reliability"], title="Before (T = 1)"), width="stretch",
                        key="calibration.before")
        b2.plotly_chart(reliability_diagram(after["reliability"], title=f"After (T = {T:.2f})"), width="stretch",
                        key="calibration.after")
        explain("The same diagram before and after: closer to the diagonal is better. On small test sets ECE can "
                "rise slightly even when NLL falls, because T is tuned for NLL on other (validation) cases.")
        st.page_link("../pages/posthoc.py", label="Try temperature with other fixes in the Post-hoc explorer",
                     icon="🎚️")

"""The Calibration page's headline cards: each measure of this one run with its 95 %
bootstrap interval over the test cases (ECE, MCE, NLL) or, where no interval is computed,
the number of test cases it rests on."""

from __future__ import annotations

import math

import numpy as np
import streamlit as st

from app.services import get_store, load_bundle
from core.analysis import CALIBRATION_METRICS, calibration_intervals, softmax
from core.text import number

__all__ = ["CALIBRATION_CARDS", "WITH_INTERVAL", "calibration_cards", "class_test_counts"]

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

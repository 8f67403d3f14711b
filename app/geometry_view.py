"""Tabs of the Geometry page that read stored numbers only: neural collapse over training,
and the angles between classes (cosines of class means and classifier weights, minority
collapse). The feature map, which needs a UMAP job, stays on the page."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import streamlit as st

from app.services import RunBundle
from app.widgets import explain
from core.analysis import minority_collapse
from core.data import in_original_units
from core.viz import cosine_heatmap, nc_history_figure

__all__ = ["TABS", "sample_values", "fmt", "neural_collapse_tab", "angles_tab"]

TABS = ("Feature map", "Neural collapse", "Lengths vs counts", "Angles", "Tail spread")  # the page's tabs, in order

NC_CARDS = [("NC1", "nc1", "Within-class spread relative to between-class spread (0 = each class is a point)."),
            ("NC2 lengths", "nc2_equinorm_means", "How unequal the class-mean lengths are (0 = all equal)."),
            ("NC2 angles", "nc2_maxangle_means", "How far the class-mean angles are from a perfect simplex."),
            ("NC3", "nc3", "Mismatch between classifier weights and class means (0 = aligned)."),
            ("NC4", "nc4", "Share of test samples where 'nearest class mean' disagrees with the model.")]


def fmt(value) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3f}"


def neural_collapse_tab(bundle: RunBundle) -> None:
    """NC1-NC4 at the end of training as cards, and over training as lines."""
    nc = bundle.metrics.get("geometry", {})
    for col, (label, key, help_text) in zip(st.columns(len(NC_CARDS)), NC_CARDS):
        col.metric(label, fmt(nc.get(key)), help=help_text, border=True)
    st.caption("Cards: the test set at the end of training. Lines: a fixed training subset, every few epochs.")
    if any(row.get("nc1") is not None for row in bundle.history):
        st.plotly_chart(nc_history_figure(bundle.history), width="stretch", key="geometry.nc_history")
    else:
        st.info("This run recorded no neural-collapse numbers during training (set `train.nc_every` above 0).")
    explain("Neural collapse (Papyan, Han & Donoho 2020) is what long training on balanced data tends toward: "
            "each class shrinks to a point and the class points spread out as evenly as possible. Lower is more "
            "collapsed.\n"
            "- **NC1**: within-class spread relative to between-class spread "
            "(0 = each class collapses to a point).\n"
            "- **NC2**: how equal the class-mean lengths and angles are (0 = a perfectly symmetric simplex).\n"
            "- **NC3**: how well the classifier lines up with the class means (0 = perfectly aligned).\n"
            "- **NC4**: how often 'nearest class mean' disagrees with the model.\n\n"
            "Class means are measured from mu_G, the mean of the class means (every class counts once, so the head "
            "does not pull it; a sample-weighted mean would give other numbers).")


def angles_tab(bundle: RunBundle, means: np.ndarray, order) -> None:
    """Cosines between every pair of class means and of classifier weights, head to tail, and
    the mean cosine within the tail against the rest (minority collapse)."""
    art, names, groups = bundle.artifacts, bundle.class_names, bundle.groups
    ideal = -1 / (len(names) - 1) if len(names) > 1 else 0.0
    left, right = st.columns(2)
    left.plotly_chart(cosine_heatmap(means, names, order, "class means (centred on mu_G)"), width="stretch",
                      key="geometry.cos_means")
    right.plotly_chart(cosine_heatmap(art.head_weight, names, order, "classifier weights"), width="stretch",
                       key="geometry.cos_weights")
    explain(f"Cosine of the angle between every pair of classes, head to tail. White is the ideal simplex value "
            f"-1/(K-1) = {ideal:.2f} for K = {len(names)} classes (all pairs equally far apart). Red pairs point "
            "closer together than ideal (easier to confuse), blue pairs further apart.")
    few_heads = groups.count("head") < 2  # then compare the tail with every other class
    reference = "Head + medium" if few_heads else "Head"
    mc = minority_collapse(art.head_weight, means, [g if g == "tail" or not few_heads else "head" for g in groups])
    cards = [("Tail", "tail_weight_cosine"), (reference, "head_weight_cosine"), ("Tail", "tail_mean_cosine"),
             (reference, "head_mean_cosine")]
    for col, (who, key) in zip(st.columns(4), cards):
        col.metric(f"{who}: {'weights' if 'weight' in key else 'class means'}", fmt(mc[key]), border=True,
                   help=f"Mean cosine between pairs of {who.lower()} classes.")
    explain("Cards: the mean cosine within each group. Minority collapse (Fang et al. 2021): under strong imbalance "
            "the rare classes' classifier vectors squeeze toward each other, so the model can hardly tell rare "
            f"classes apart. It shows as a tail value well above the others' (ideal for both: {ideal:.2f}). "
            "'n/a': the group has fewer than two classes.")


def sample_values(splits, x: np.ndarray) -> pd.DataFrame:
    """One table sample's values as in the data file (age 54, not the standardised 2.24 the
    model saw), one row per column of the file."""
    row = in_original_units(splits, np.asarray(x)[None]).iloc[0]
    return pd.DataFrame({"feature": [str(c) for c in row.index],
                         "value": ["" if v is None or (isinstance(v, float) and v != v) else
                                   (f"{v:.6g}" if isinstance(v, float) else str(v)) for v in row.to_numpy()]})

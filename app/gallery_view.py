"""Page-level sections of the Error gallery: shortcuts to the most confused pairs, the
features each class relies on (tables), and the HTML report of the shown or matching cases.
The cards themselves are in `app.gallery_cards`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from app.gallery_cards import report_extras
from app.text_view import report_text_html
from app.services import RunBundle
from app.widgets import explain
from core.analysis import (
    build_report_cases, class_feature_importance, importance_sample, importance_sides, most_confused_pairs,
)
from core.data import Splits, feature_table
from core.store import RunRecord
from core.registry import plugin_label
from core.text import md
from core.viz import class_importance_heatmap, error_report_html

__all__ = ["REPORT_MAX", "MapsFn", "confused_pair_buttons", "class_importance_section", "report_section"]

REPORT_MAX = 64  # cases in a report of every match
# (inputs, sample ids, {"true"/"pred"/"chosen": target classes}, what is computed) -> maps by target kind
MapsFn = Callable[[np.ndarray, Sequence[int], Mapping[str, Any], str], dict]


def confused_pair_buttons(bundle: RunBundle, key: Callable[[str], str]) -> None:
    """One button per most-confused pair involving a tail class; a click sets the filters to
    that pair's mistakes."""
    art, names, groups = bundle.artifacts, bundle.class_names, bundle.groups

    def show_pair(true: int, pred: int) -> None:
        st.session_state.update({key("true"): [true], key("pred"): [pred], key("correct"): "wrong",
                                 key("conf"): (0.0, 1.0), key("page"): 1})

    pairs = most_confused_pairs(art, top=4, groups=groups)
    if not len(pairs):
        return
    st.markdown("**Most confused pairs** involving a rare (tail) class: a rare class the model mistakes for another, "
                "or another class it mistakes for a rare one")
    for col, (i, pair) in zip(st.columns(len(pairs)), pairs.iterrows()):
        col.button(f"Show me {pair.true_group} class {md(names[pair.true])} predicted as {pair.pred_group} class "
                   f"{md(names[pair.pred])} ({pair['count']} cases)", key=f"gallery.pair.{i}", width="stretch",
                   wrap=True, on_click=show_pair, args=(int(pair.true), int(pair.pred)))


def class_importance_section(bundle: RunBundle, x_test: np.ndarray, features: Sequence[str], maps: MapsFn,
                             chart_key: str) -> None:
    """A table run's per-class feature importance: the attributions towards the true class,
    averaged per class over a sample of test cases, head and tail side by side on one scale."""
    art, names, groups = bundle.artifacts, bundle.class_names, bundle.groups
    # built only when opened: a summary of the whole run, two heatmaps the cards above do not need
    box = st.expander("Which features each class relies on, rare classes beside common ones",
                      key=f"{chart_key}.importance_open", on_change="rerun")
    if box.open:
        with box:
            _class_importance(art, names, groups, x_test, features, maps, chart_key)


def _class_importance(art, names, groups, x_test, features, maps: MapsFn, chart_key: str) -> None:
    rows = importance_sample(art.labels)
    sample_maps = maps(x_test[rows], art.test_index[rows].tolist(), {"true": art.labels[rows]},
                       "per-class importance")
    importance = class_feature_importance(sample_maps["true"], art.labels[rows], art.num_classes)
    sides = importance_sides(art.class_counts, groups)
    for col, (title, ks) in zip(st.columns(len(sides)), sides):
        fig = class_importance_heatmap(importance[ks], [names[k] for k in ks], features, [groups[k] for k in ks])
        col.plotly_chart(fig.update_traces(zmax=float(np.nanmax(importance))).update_layout(
            title=title, height=300 + 26 * len(ks), margin=dict(t=50)), width="stretch",
            key=f"{chart_key}.importance.{title}")
    explain("Each cell: how much a feature moved the model's score for that class, averaged over its test samples "
            "(darker = relied on more; both sides share one scale). Rare classes leaning on other features than "
            "common ones, or on very few, is a sign they were learned from too few examples.")


def report_section(record: RunRecord, bundle: RunBundle, cases: pd.DataFrame, shown: pd.DataFrame,
                   shown_maps: Mapping[str, np.ndarray], x_test: np.ndarray, splits: Splits,
                   features: Sequence[str], method: str, reviews: Any, maps: MapsFn) -> None:
    """The cases on this page (or every match, up to REPORT_MAX) as one HTML report with their
    maps, the reviews and the saved operating point."""
    art, image = bundle.artifacts, bundle.modality == "image"
    st.subheader("Take it with you")
    every = len(cases) > len(shown) and st.toggle(
        f"Report every matching case ({min(len(cases), REPORT_MAX)} of {len(cases)})", key="gallery.report_all",
        help=f"Otherwise the report holds the {len(shown)} cases on this page. Every match, the surest mistakes "
             f"first, up to {REPORT_MAX}; their maps are computed once and saved.")
    if every:
        picked = cases.head(REPORT_MAX)
        x_picked = x_test[picked["row"].to_numpy()]
        picked_maps = maps(x_picked, picked["sample_id"].tolist(), {"true": picked["true"], "pred": picked["pred"]},
                           "the report's attribution maps")
    else:
        picked, x_picked, picked_maps = shown, x_test[shown["row"].to_numpy()], shown_maps
    report_cases = build_report_cases(picked, art, x_picked, picked_maps["true"], picked_maps["pred"],
                                      modality=bundle.modality, feature_names=features,
                                      value_tables=None if image else [feature_table(splits, r) for r in x_picked])
    if splits.text_names:  # each note with its words coloured, escaped by the builder
        for case, html in zip(report_cases, report_text_html(bundle, splits, picked, picked_maps), strict=True):
            case["text_html"] = html
    st.download_button(
        f"⬇️ Download these {len(report_cases)} cases as an HTML report", on_click="ignore", key="gallery.download",
        data=lambda: error_report_html(report_cases, title=f"Error gallery: {record.name}", run_name=record.name,
                                       method=method, class_names=bundle.class_names, reviews=reviews,
                                       **report_extras(record.id)),
        file_name=f"{record.id}-{plugin_label('attribution', method).lower().replace(' ', '-')}-errors.html",
        mime="text/html",
    )
    explain("One file with the cards and their maps, plus how to read them, every case review and the saved "
            "operating point (if any); it opens offline in any browser.")

"""The Compare page's pieces: stable run colours, the colour legend in the table, and the
paired "is it real?" section shared by runs and experiments."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd
import streamlit as st

from app.services import get_store
from app.widgets import explain
from core.analysis import CALIBRATION_METRICS, METRICS
from core.glossary import display_name, setting_title, setting_value
from core.jobs import compare_ids
from core.store import RunFileDamaged
from core.text import md
from core.viz import paired_difference_figure

__all__ = ["PAIRED_METRICS", "differences_in_words", "metric_label", "legend_styler", "paired_section"]

PAIRED_METRICS = ("balanced_accuracy", "accuracy", "f1_macro", "gmean", "worst_class_recall", "ece")


def differences_in_words(differences: pd.DataFrame) -> pd.DataFrame:
    """`config_differences` as people read it: settings by their title ('Loss', 'Learning
    rate') and plug-in names by their display name."""
    shown = pd.DataFrame([[setting_value(key, v) for v in row] for key, row in differences.iterrows()],
                         index=[setting_title(key) for key in differences.index], columns=differences.columns)
    return shown.rename_axis("setting")


def metric_label(key: str) -> str:
    return display_name(key)


def legend_styler(table: pd.DataFrame, colors: Mapping[str, str], fmt: str | dict = "{:.3f}"):
    """The table with each row's run colour as a swatch in its first column, so the table
    doubles as the legend of every chart on the page."""
    shown = table.copy()
    shown.insert(0, "colour", "")
    return shown.style.format(fmt, na_rep="n/a", subset=list(table.columns)).apply(
        lambda col: [f"background-color: {colors.get(i, '#ffffff')}" for i in col.index], subset=["colour"], axis=0)


@st.cache_data(show_spinner="Testing the differences…", max_entries=64)
def _compare(home: str, a: str, b: str, metric: str, stamp: tuple) -> dict:
    return compare_ids(get_store(), a, b, metric)


def _stamp(ids: Sequence[str]) -> tuple:
    """Changes when any of the runs behind these ids changes (a new fold finishing, say)."""
    store = get_store()
    runs = []
    for item in ids:
        runs += store.get_experiment(item).runs if item.startswith("exp-") else [store.get(item)]
    return tuple((r.id, r.updated) for r in runs)


def paired_section(ids: Sequence[str], reference: str, labels: Mapping[str, str], colors: Mapping[str, str],
                   kind: str) -> None:
    """Each item minus the reference, on one metric: interval, p-value and verdict, as a
    forest plot and a table."""
    metric = st.selectbox("Metric to test", PAIRED_METRICS, format_func=metric_label, key=f"compare.paired.{kind}",
                          help="The paired test compares the two on the same test cases (runs) or the same folds "
                               "and seeds (experiments), which removes their shared luck.")
    rows, problems = [], []
    for item in (i for i in ids if i != reference):
        try:
            result = _compare(str(get_store().home), item, reference, metric, _stamp([item, reference]))
        except (ValueError, RunFileDamaged) as exc:
            problems.append(f"{md(labels[item])}: {md(exc)}")
            continue
        low, high = result["ci"]
        rows.append({"run": labels[item], "difference": result["difference"], "low": low, "high": high,
                     "p_value": result["p_value"], "verdict": result["verdict"], "test": result["test"],
                     "note": result["note"]})
    for problem in problems:
        st.warning(problem)
    if not rows:
        return
    table = pd.DataFrame(rows)
    st.plotly_chart(paired_difference_figure(table, labels[reference], metric_label(metric),
                                             {labels[i]: c for i, c in colors.items()}),
                    width="stretch", key=f"compare.forest.{kind}")
    direction = "higher" if (METRICS.get(metric) or CALIBRATION_METRICS[metric]).higher_is_better else "lower"
    thing = "a run" if kind == "runs" else "an experiment"
    explain(f"Each dot is {thing}'s {metric_label(metric).lower()} minus that of '{md(labels[reference])}', with "
            f"its 95 % interval ({direction} is better). A filled dot's interval stays clear of zero; an open dot's "
            "crosses it: that difference is within noise and could flip with another split or seed.")
    shown = table.assign(interval=[f"[{r.low:+.3f}, {r.high:+.3f}]" for r in table.itertuples()],
                         p=[("< 0.001" if p < 0.001 else f"{p:.3f}") if math.isfinite(p) else "n/a"
                            for p in table["p_value"]])
    st.dataframe(shown[["run", "difference", "interval", "p", "verdict", "test"]], hide_index=True, width="stretch",
                 column_config={"difference": st.column_config.NumberColumn(format="%+.3f")})
    for note in table["note"]:
        if note:
            st.caption(note)

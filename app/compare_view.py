"""The Compare page's pieces: stable run colours, the colour legend in the table, the
headline numbers of runs or experiments, and the paired "is it real?" section shared by both."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd
import streamlit as st

from app.fit_tables import as_text, wrapping_table
from app.services import RunBundle, get_store, load_bundle, load_experiment
from app.widgets import explain, format_interval
from core.analysis import (
    EXPERIMENT_KEYS, METRICS, ROBUST_KEYS, best_per_column, metric_info_of, metrics_table,
)
from core.glossary import display_name, setting_title, setting_value
from core.analysis import compare_against
from core.store import RunFileDamaged
from core.text import interval_text, md
from core.viz import paired_difference_figure

__all__ = ["PAIRED_METRICS", "SHORT_LABELS", "differences_in_words", "metric_label", "legend_styler",
           "experiment_numbers", "run_numbers", "paired_section"]

PAIRED_METRICS = ("balanced_accuracy", "accuracy", "f1_macro", "gmean", "worst_class_recall", "ece")
SHORT_LABELS = {"roc_auc_ovr_macro": "ROC-AUC", "average_precision_macro": "Avg precision",
                "worst_class_recall": "Worst class", "balanced_accuracy": "Balanced acc."}


def differences_in_words(differences: pd.DataFrame) -> pd.DataFrame:
    """`config_differences` as people read it: settings by their title ('Loss', 'Learning
    rate') and plug-in names by their display name."""
    shown = pd.DataFrame([[setting_value(key, v) for v in row] for key, row in differences.iterrows()],
                         index=[setting_title(key) for key in differences.index], columns=differences.columns)
    return shown.rename_axis("setting")


def metric_label(key: str) -> str:
    return display_name(key)


def legend_styler(table: pd.DataFrame, colors: Mapping[str, str], fmt: str = "{:.3f}",
                  labels: Mapping[str, str] | None = None, best: pd.DataFrame | None = None):
    """The table turned so that each run is a column (a few runs fit a projector's width,
    ten metrics side by side did not), its first row the run's colour as a swatch, so the
    table doubles as the legend of every chart on the page; `best` (runs x metrics, True
    where a run is best) shades those cells."""
    def text(value) -> str:  # formatted here: a column of text, not numbers beside the swatch's ""
        return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)

    # st.table reads Markdown in cells and headers: every text is escaped here, and the
    # shading looks runs and metrics up by their escaped names
    runs = {as_text(run): run for run in table.index}
    keys = {as_text(labels.get(k, k) if labels else k): k for k in table.columns}
    shown = pd.concat([pd.DataFrame([[""] * len(table.index)], index=["colour"], columns=table.index),
                       table.T.map(lambda v: as_text(text(v)))])
    shown.index = ["colour", *keys]
    shown.columns = list(runs)

    def shade(row):
        if row.name == "colour":
            return [f"background-color: {colors.get(runs[run], '#ffffff')}" for run in row.index]
        if best is None:
            return [""] * len(row)
        key = keys[row.name]
        return ["background-color: #d8f0d8; font-weight: 700" if best.loc[runs[run], key] else "" for run in row.index]

    return shown.style.apply(shade, axis=1)


def experiment_numbers(chosen: Sequence[str], labels: Mapping[str, str],
                       colors: Mapping[str, str]) -> dict[str, pd.DataFrame]:
    """The experiments' headline table (mean and 95 % interval, runs finished); returns their
    per-class rows by label."""
    summaries = {labels[i]: load_experiment(i) for i in chosen}
    table = pd.DataFrame({key: [format_interval(s["summary"][key]["mean"], *s["summary"][key]["ci"])
                                for s in summaries.values()] for key in EXPERIMENT_KEYS}, index=list(summaries))
    table.insert(0, "runs", [f"{s['n_done']} of {s['n_runs']}" for s in summaries.values()])
    wrapping_table(legend_styler(table, colors, fmt="{}", labels={
        "runs": "runs finished", **{k: SHORT_LABELS.get(k, metric_label(k)) for k in EXPERIMENT_KEYS}}))
    explain("Mean over each experiment's finished runs with its 95 % interval. Intervals that overlap a lot mean the "
            "methods cannot be told apart on this data; the paired test below says so precisely.")
    return {labels[i]: pd.DataFrame(summaries[labels[i]]["per_class"]) for i in chosen}


def run_numbers(chosen: Sequence[str], labels: Mapping[str, str], colors: Mapping[str, str]) -> dict[str, RunBundle]:
    """The runs' headline table with each column's best shaded; a run whose files cannot be
    read is left out with a note, and the page stops when fewer than two remain. Returns the
    runs' bundles by label."""
    bundles = {}
    for i in chosen:
        try:
            bundles[labels[i]] = load_bundle(i)
        except RunFileDamaged as exc:
            st.warning(f"Left out: {md(exc)}")
    if len(bundles) < 2:
        st.stop()
    table = metrics_table({label: b.metrics for label, b in bundles.items()})
    best = best_per_column(table, {k: METRICS[k].higher_is_better for k in table.columns})
    wrapping_table(legend_styler(table, colors, labels={k: SHORT_LABELS.get(k, METRICS[k].display_name)
                                                         for k in table.columns}, best=best))
    explain("One column per run; its colour swatch is its colour in every chart below. The best run in each row is "
            "shaded green: picked after looking, so by itself it proves nothing (a best that is within noise is no "
            "real winner): see the test below.")
    return bundles


@st.cache_data(show_spinner="Testing the differences…", max_entries=64)
def _compare(home: str, items: tuple[str, ...], reference: str, metric: str, stamp: tuple) -> list[dict]:
    return compare_against(get_store(), list(items), reference, metric)


def _stamp(ids: Sequence[str]) -> tuple:
    """Changes when any of the runs behind these ids changes (a new fold finishing, say)."""
    store = get_store()
    runs = []
    for item in ids:
        runs += store.get_experiment(item).runs if item.startswith("exp-") else [store.get(item)]
    return tuple((r.id, r.updated) for r in runs)


def _attacked_metrics(ids: Sequence[str], kind: str) -> tuple[str, ...]:
    """The measures under attack, when every item was scored under one (`evaluation.attack`):
    two single runs pair their attacked test cases on balanced accuracy; experiments pair
    their seeds or folds on each measure."""
    store = get_store()
    configs = [store.get_experiment(i).config if i.startswith("exp-") else store.get(i).config for i in ids]
    if not all((c.get("evaluation") or {}).get("attack") for c in configs):
        return ()
    return ("robust_balanced_accuracy",) if kind == "runs" else ROBUST_KEYS


def paired_section(ids: Sequence[str], reference: str, labels: Mapping[str, str], colors: Mapping[str, str],
                   kind: str) -> None:
    """Each item minus the reference, on one metric: interval, p-value and verdict, as a
    forest plot and a table."""
    metric = st.selectbox("Metric to test", (*PAIRED_METRICS, *_attacked_metrics(ids, kind)), format_func=metric_label, key=f"compare.paired.{kind}",
                          help="The paired test compares the two on the same test cases (runs) or the same folds "
                               "and seeds (experiments), which removes their shared luck.")
    items = [i for i in ids if i != reference]
    results = _compare(str(get_store().home), tuple(items), reference, metric, _stamp([*items, reference]))
    rows = []
    for item, result in zip(items, results, strict=True):
        if "error" in result:
            st.warning(f"{md(labels[item])}: {md(result['error'])}")
            continue
        low, high = result["ci"]
        rows.append({"run": labels[item], "difference": result["difference"], "low": low, "high": high,
                     "p_value": result["p_value"], "p_adjusted": result["p_adjusted"], "verdict": result["verdict"],
                     "status": result["status"], "confidence": result["confidence"], "test": result["test"],
                     "note": result["note"], "adjustment": result["adjustment"], "mcnemar": result.get("mcnemar")})
    if not rows:
        return
    table = pd.DataFrame(rows)
    higher = metric_info_of(metric).higher_is_better
    st.plotly_chart(paired_difference_figure(table, labels[reference], metric_label(metric),
                                             {labels[i]: c for i, c in colors.items()}, higher),
                    width="stretch", key=f"compare.forest.{kind}")
    thing = "a run" if kind == "runs" else "an experiment"
    adjustment = next((a for a in table["adjustment"] if a), "")
    explain(f"Each dot is {thing}'s {metric_label(metric).lower()} minus that of '{md(labels[reference])}', with "
            f"its interval ({'higher' if higher else 'lower'} is better). A filled dot's interval stays clear of zero: "
            "a difference beyond noise. An open dot's crosses it: within noise, it could flip with another split or "
            "seed. "
            + (f"Several are held against one reference at once, so the p-values are adjusted ({adjustment}, keeping "
               "the chance of any false alarm at 5 %) and the intervals widened to match: a dot is filled exactly "
               "when its adjusted p is below 0.05." if adjustment else "A dot is filled exactly when p < 0.05."))
    table["interval"] = [interval_text(r.difference, (r.low, r.high), signed=True) if math.isfinite(r.low)
                         else "no interval" for r in table.itertuples()]
    table["p"] = [format_p_value(p) for p in table["p_value"]]
    columns = ["run", "interval", "p", "verdict", "test"]
    if adjustment:
        table["adjusted p"] = [format_p_value(p) for p in table["p_adjusted"]]
        columns.insert(3, "adjusted p")
    wrapping_table(table[columns].rename(columns={"interval": "difference [interval]"}).set_index("run"))
    for row in table.itertuples():
        if row.note:
            st.caption(f"{md(row.run)}: {md(row.note)}")


def format_p_value(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"

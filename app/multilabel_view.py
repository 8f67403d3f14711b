"""The Results page for a multi-label run: headline numbers with intervals, each finding's
average precision against its training frequency, which findings come together, and a
verdict on rare-finding mAP against another multi-label run or experiment."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.services import RunBundle, get_store
from app.widgets import metric_cards, run_method
from core.analysis import compare_ids
from core.data import source_label
from core.glossary import display_name
from core.safe_csv import csv_bytes
from core.store import RunRecord
from core.text import md
from core.viz import RARE_MARK, cooccurrence_figure, label_ap_figure

__all__ = ["multilabel_results"]

_CARDS = ("map", "map_tail", "f1_macro", "f1_micro", "roc_auc_macro", "subset_accuracy", "hamming_loss", "map_head")


def multilabel_results(record: RunRecord, bundle: RunBundle, show) -> None:
    """Everything the Results page shows for a multi-label run (`show`: the page's chart function)."""
    m, art = bundle.metrics, bundle.artifacts
    data = m["dataset"]
    names = list(data["label_names"])
    st.caption(f"**{md(record.name)}** · method {run_method(record)} · data {md(source_label(record.dataset))}: "
               f"{len(art.label_matrix)} test cases, {len(names)} findings a case can carry at once. Hover the ? "
               "beside a number for what it means.")
    if data.get("hidden_entries"):
        how = "read as absent (the common mistake, on purpose)" if data.get("unknown_as_absent") else \
            "left out of the loss (masked)"
        st.info(f"{data['hidden_entries']} training entries were unknown ({data['hidden_share']:.0%} of each "
                f"finding's hidden on purpose); in training they were {how}. Test cases keep every entry.", icon="🏷️")
    intervals = {k: (v.get("low"), v.get("high")) for k, v in (m.get("ci") or {}).items()}
    metric_cards(_CARDS, m, intervals, {k: display_name(k) for k in _CARDS},
                 "bootstrap over whole test cases, 1,000 resamples")
    st.caption(f"Decisions (F1, exact matches, Hamming loss) use {md(m.get('decision', 'a threshold of 0.5'))}."
               + _empty_groups(m, record.config.get("data", {})))

    st.subheader("Finding by finding, common to rare")
    per_label = pd.DataFrame(m["per_label"])
    show(label_ap_figure(per_label), "label-ap",
         "Each dot is a finding; further right means more training cases carried it. Height: its average precision "
         "(how well the model ranks the cases that have it above those that do not; 1 is perfect). Dots low on "
         "the left are rare findings the model misses. Bars: 95 % interval over resampled test cases; a rare "
         "finding's long bar means its number rests on few test cases.")
    st.download_button("Per-finding metrics (CSV)", csv_bytes(per_label), file_name=f"{record.id}-per-finding.csv",
                       mime="text/csv", key="results.ml_csv", on_click="ignore", icon=":material/download:",
                       help="Average precision with its interval, ROC-AUC, threshold and counts of every finding.")

    st.subheader("Which findings come together")
    conditional = st.toggle("As a share of the row finding's cases", key="results.cooccurrence_share",
                            help="Off: how many training cases carry both findings. On: of the cases with the row's "
                                 "finding, the share that also carry the column's.")
    show(cooccurrence_figure(art.train_cooccurrence, names, data["groups"], conditional=conditional),
         "cooccurrence",
         f"Training cases known to carry both findings. {RARE_MARK} marks a rare finding: when it mostly comes with a "
         "common one, a model can lean on the common one and still miss the rare one on its own.")
    _verdict_panel(record)


def _empty_groups(metrics: dict, data: dict) -> str:
    """Why a group's mAP reads n/a: no finding falls in it under the data's cut-offs."""
    groups = set(metrics["dataset"].get("groups") or ())
    few, many = data.get("few_shot", 20), data.get("many_shot", 100)
    missing = [f"no finding has fewer than {few} training cases, so there are no rare findings to score"
               if "tail" not in groups else "",
               f"no finding has more than {many}, so there are no common ones" if "head" not in groups else ""]
    said = "; ".join(w for w in missing if w)
    return (f" Here {said} (the cut-offs are under 'Split and group settings' on the Data page, or "
            "data.few_shot and data.many_shot in a config).") if said else ""


def _verdict_panel(record: RunRecord) -> None:
    """Rare-finding mAP of this run (or its experiment) against another of the same data."""
    st.subheader("Is another method better on the rare findings?")
    store = get_store()
    mine = record.experiment or record.id
    if record.experiment:
        others = {e.id: e.name for e in store.list_experiments() if e.id != mine and e.config.get("data", {})
                  .get("source") == record.config.get("data", {}).get("source")}
        noun = "experiment"
    else:
        others = {r.id: r.name for r in store.list_runs("done") if r.id != mine and not r.experiment
                  and r.dataset == record.dataset}
        noun = "run"
    if not others:
        st.caption(f"No other multi-label {noun} on this data yet: train another method (e.g. a re-balanced loss) "
                   "with the same data and seeds to compare.")
        return
    other = st.selectbox(f"Compare with this {noun}", list(others), format_func=lambda i: others[i],
                         key="results.ml_compare")
    try:
        result = compare_ids(store, mine, other, "map_tail")
    except ValueError as exc:
        st.warning(md(str(exc)))
        return
    low, high = result["ci"]
    st.markdown(f"**{md(result['verdict'])}** Difference in {display_name('map_tail')}: "
                f"{result['difference']:+.3f} (95 % interval {low:+.3f} to {high:+.3f}, p = {result['p_value']:.3g}; "
                f"{md(result['test'])}).")
    st.caption("Over seeds each pair of runs shares its split and seed; a difference inside the interval's noise is "
               "reported as such, never as a win.")

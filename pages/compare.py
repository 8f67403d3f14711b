"""Compare: finished runs on the same data, side by side, class by class."""

import pandas as pd
import streamlit as st

from app import state
from app.services import finished_runs, load_bundle
from app.widgets import empty_state, explain
from core.analysis import (
    METRICS, best_per_column, comparable, config_differences, metrics_table, newest_comparable, run_labels,
)
from core.data import source_label
from core.viz import curves_overlay_figure, group_comparison_figure, metric_comparison_figure, metric_difference_figure

SHORT_LABELS = {"roc_auc_ovr_macro": "ROC-AUC", "average_precision_macro": "Avg precision",
                "worst_class_recall": "Worst class", "balanced_accuracy": "Balanced acc."}

st.title("⚖️ Compare runs")
st.caption("Put finished runs trained on the same data side by side: which one finds the rare classes, and at "
           "what cost to the common ones.")


def show(fig, name: str, caption: str) -> None:
    """A chart, its plain-language caption and a self-contained HTML download."""
    st.plotly_chart(fig, width="stretch", key=f"compare.{name}",
                    config={"toImageButtonOptions": {"filename": f"compare-{name}"}})
    explain(caption)
    st.download_button("Download this chart (HTML)", lambda: fig.to_html(include_plotlyjs=True), type="tertiary",
                       file_name=f"compare-{name}.html", mime="text/html", key=f"compare.{name}.html",
                       on_click="ignore", icon=":material/download:",
                       help="The interactive chart as one file that opens offline in any browser.")


runs = finished_runs()
if len(runs) < 2:
    empty_state("Comparing needs at least two finished runs on the same data. Train another run on the Train page "
                "(same dataset, a different loss or sampler), or start a demo run.", key="compare.demo")
    st.stop()
by_id = {r.id: r for r in runs}
labels = dict(zip(by_id, run_labels([(r.name, r.id) for r in runs]), strict=True))
remembered = [i for i in st.session_state.get(state.COMPARE_RUN_IDS, []) if i in by_id]
chosen = st.multiselect(
    "Runs to compare", list(by_id), default=remembered or newest_comparable({r.id: r.config for r in runs}),
    format_func=lambda i: f"{labels[i]} · {source_label(by_id[i].dataset)} · {by_id[i].method}", key="compare.runs",
    help="Finished runs, newest first. The first one you pick is the reference the differences are measured from.")
st.session_state[state.COMPARE_RUN_IDS] = chosen
if len(chosen) < 2:
    st.info("Pick at least two runs to compare.")
    st.stop()
ok, reason = comparable({labels[i]: by_id[i].config for i in chosen})
if not ok:
    st.error(f"**These runs cannot be compared.** {reason}")
    st.stop()
st.caption(f"✔ Comparable: {reason}.")

bundles = {labels[i]: load_bundle(i) for i in chosen}
reference = next(iter(bundles))
differences = config_differences({label: b.config for label, b in bundles.items()})
if differences.empty:
    st.caption("The runs use identical settings: any difference comes from randomness alone.")
else:
    n = len(differences)
    with st.expander(f"What differs between the runs ({n} setting{'s' if n > 1 else ''})", expanded=n <= 6):
        st.dataframe(differences, width="stretch")

st.subheader("Headline numbers")
table = metrics_table({label: b.metrics for label, b in bundles.items()})
best = best_per_column(table, {k: METRICS[k].higher_is_better for k in table.columns})
styled = table.style.format("{:.3f}", na_rep="n/a").apply(
    lambda col: ["background-color: #d8f0d8; font-weight: 700" if b else "" for b in best[col.name]], axis=0)
st.dataframe(styled, width="stretch", column_config={k: st.column_config.NumberColumn(
    SHORT_LABELS.get(k, METRICS[k].display_name), help=METRICS[k].description) for k in table.columns})
explain("One row per run. The best run in each column is shaded green. Accuracy favours the common classes; "
        "balanced accuracy, G-mean and worst-class recall show how the rare ones fare.")

st.subheader("Class by class, head to tail")
metric = st.segmented_control("Measure", ["recall", "precision", "f1"], default="recall", key="compare.metric") \
    or "recall"
per_class = {label: pd.DataFrame(b.metrics["per_class"]) for label, b in bundles.items()}
show(metric_comparison_figure(per_class, metric), "per-class",
     "One group of bars per class, common classes on the left and rare ones on the right. A method built for "
     "imbalance should raise the bars on the right.")
st.markdown(f"**Change against '{reference}'**")
show(metric_difference_figure(per_class, metric), "difference",
     f"Change against '{reference}' for every class: green bars are classes the other run handles better, red "
     "ones worse. Gains on the right (rare classes) paid for with small losses on the left are the usual trade.")

left, right = st.columns(2)
with left:
    st.markdown("**Head, medium and tail classes**")
    show(group_comparison_figure({label: pd.DataFrame(b.metrics["groups"]) for label, b in bundles.items()}),
         "groups", "Average hit rate of the common (head), middle and rare (tail) classes, one bar per run.")
with right:
    st.markdown("**Training curves**")
    show(curves_overlay_figure({label: b.history for label, b in bundles.items()}), "curves",
         "Validation balanced accuracy per epoch, one line per run: which run learns the rare classes, and how "
         "fast.")

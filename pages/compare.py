"""Compare: finished runs (or experiments) on the same data, side by side, and whether
their differences are beyond noise."""

import pandas as pd
import streamlit as st

from app import state
from app.compare_view import differences_in_words, legend_styler, metric_label, paired_section
from app.prior_view import shift_chart
from app.services import finished_runs, get_store, load_bundle, load_experiment
from app.widgets import empty_state, explain, format_interval
from core.analysis import (
    EXPERIMENT_KEYS, METRICS, best_per_column, comparable, config_differences, metrics_table, newest_comparable,
    run_labels,
)
from core.data import source_label
from core.glossary import method_display
from core.store import RunFileDamaged
from core.text import md
from core.viz import (
    curves_overlay_figure, group_comparison_figure, metric_comparison_figure, metric_difference_figure, run_colors,
)

SHORT_LABELS = {"roc_auc_ovr_macro": "ROC-AUC", "average_precision_macro": "Avg precision",
                "worst_class_recall": "Worst class", "balanced_accuracy": "Balanced acc."}

st.title("⚖️ Compare")
st.caption("Put finished runs trained on the same data side by side: which one finds the rare classes, at what cost "
           "to the common ones, and whether the difference is real or within noise.")


def show(fig, name: str, caption: str) -> None:
    """A chart, its plain-language caption and a self-contained HTML download."""
    st.plotly_chart(fig, width="stretch", key=f"compare.{name}",
                    config={"toImageButtonOptions": {"filename": f"compare-{name}"}})
    explain(caption)
    st.download_button("Download this chart (HTML)", lambda: fig.to_html(include_plotlyjs=True), type="tertiary",
                       file_name=f"compare-{name}.html", mime="text/html", key=f"compare.{name}.html",
                       on_click="ignore", icon=":material/download:",
                       help="The interactive chart as one file that opens offline in any browser.")


def option_label(item_id: str) -> str:
    """A run or experiment in the picker: its name, its data and its method in words."""
    item = by_id[item_id]
    return f"{labels[item_id]} · {source_label(item.dataset)} · {method_display(item.config)}"


experiments = [e for e in get_store().list_experiments() if any(r.status == "done" for r in e.runs)]
mode = "Runs"
if experiments:
    mode = st.segmented_control("Compare", ["Runs", "Experiments"], default="Runs", key="compare.mode",
                                help="Experiments repeat one configuration over folds and seeds: comparing them "
                                     "tells a real difference from a lucky split.") or "Runs"

if mode == "Experiments":
    by_id = {e.id: e for e in experiments}
    labels = dict(zip(by_id, run_labels([(e.name, e.id) for e in experiments]), strict=True))
    configs = {e.id: e.config for e in experiments}
    chosen = st.multiselect("Experiments to compare", list(by_id), default=newest_comparable(configs),
                            format_func=option_label,
                            key="compare.experiments")
else:
    runs = finished_runs()
    if len(runs) < 2:
        empty_state("Comparing needs at least two finished runs on the same data. Train another run on the Train "
                    "page (same dataset, a different loss or sampler), or start a demo run.", key="compare.demo")
        st.stop()
    by_id = {r.id: r for r in runs}
    labels = dict(zip(by_id, run_labels([(r.name, r.id) for r in runs]), strict=True))
    configs = {r.id: r.config for r in runs}
    remembered = [i for i in st.session_state.get(state.COMPARE_RUN_IDS, []) if i in by_id]
    chosen = st.multiselect(
        "Runs to compare", list(by_id), default=remembered or newest_comparable(configs),
        format_func=option_label,
        key="compare.runs", help="Finished runs, newest first.")
    st.session_state[state.COMPARE_RUN_IDS] = chosen
if len(chosen) < 2:
    st.info(f"Pick at least two {mode.lower()} to compare.")
    st.stop()
ok, reason = comparable({labels[i]: configs[i] for i in chosen}, mode.lower())
if not ok:
    st.error(f"**These {mode.lower()} cannot be compared.** {md(reason)}")
    st.stop()
st.caption(f"✔ Comparable: {md(reason)}.")
reference = st.selectbox("Measured against", chosen, format_func=labels.get, key=f"compare.reference.{mode}",
                         help="The reference: differences on this page are every other one minus this one.")
colors = {labels[i]: c for i, c in run_colors(sorted(chosen, key=lambda i: by_id[i].created)).items()}
names = [labels[i] for i in chosen]

differences = config_differences({labels[i]: configs[i] for i in chosen})
if differences.empty:
    st.caption("They use identical settings: any difference comes from randomness alone.")
else:
    n = len(differences)
    with st.expander(f"What differs between them ({n} setting{'s' if n > 1 else ''})", expanded=n <= 6):
        st.dataframe(differences_in_words(differences), width="stretch")

st.subheader("Headline numbers")
if mode == "Experiments":
    summaries = {labels[i]: load_experiment(i) for i in chosen}
    table = pd.DataFrame({key: [format_interval(s["summary"][key]["mean"], *s["summary"][key]["ci"])
                                for s in summaries.values()] for key in EXPERIMENT_KEYS}, index=names)
    table.insert(0, "runs", [f"{s['n_done']} of {s['n_runs']}" for s in summaries.values()])
    st.dataframe(legend_styler(table, colors, fmt="{}"), width="stretch",
                 column_config={k: st.column_config.TextColumn(SHORT_LABELS.get(k, metric_label(k)))
                                for k in EXPERIMENT_KEYS})
    explain("Mean over each experiment's finished runs with its 95 % interval. Intervals that overlap a lot mean the "
            "methods cannot be told apart on this data; the paired test below says so precisely.")
    per_class = {labels[i]: pd.DataFrame(summaries[labels[i]]["per_class"]) for i in chosen}
    groups = None
else:
    bundles = {}
    for i in chosen:
        try:
            bundles[labels[i]] = load_bundle(i)
        except RunFileDamaged as exc:
            st.warning(f"Left out: {md(exc)}")
    if len(bundles) < 2:
        st.stop()
    names = list(bundles)
    table = metrics_table({label: b.metrics for label, b in bundles.items()})
    best = best_per_column(table, {k: METRICS[k].higher_is_better for k in table.columns})
    st.dataframe(legend_styler(table, colors).apply(
        lambda col: ["background-color: #d8f0d8; font-weight: 700" if b else "" for b in best[col.name]],
        subset=list(table.columns), axis=0), width="stretch",
        column_config={k: st.column_config.NumberColumn(SHORT_LABELS.get(k, METRICS[k].display_name),
                                                        help=METRICS[k].description) for k in table.columns})
    explain("One row per run; its colour swatch is its colour in every chart below. The best run in each column is "
            "shaded green: picked after looking, so by itself it proves nothing (a best that is within noise is no real winner): see the test below.")
    per_class = {label: pd.DataFrame(b.metrics["per_class"]) for label, b in bundles.items()}
    groups = {label: pd.DataFrame(b.metrics["groups"]) for label, b in bundles.items()}

st.subheader("Is the difference real?")
paired_section(chosen, reference, labels, run_colors(sorted(chosen, key=lambda i: by_id[i].created)),
               mode.lower())

st.subheader("Class by class, head to tail")
metric = st.segmented_control("Measure", ["recall", "precision", "f1"], default="recall", key="compare.metric") \
    or "recall"
show(metric_comparison_figure(per_class, metric, colors), "per-class",
     "One group of bars per class, common classes on the left and rare ones on the right. A method built for "
     "imbalance should raise the bars on the right."
     + (" Bars: 95 % interval over the experiment's runs." if mode == "Experiments" else ""))
show(metric_difference_figure(per_class, metric, labels[reference], colors), "difference",
     f"Change against '{md(labels[reference])}' for every class, in each run's colour: bars above zero are classes the "
     "other run handles better, below zero worse. Gains on the right (rare classes) paid for with small losses on "
     "the left are the usual trade.")
if groups:
    left, right = st.columns(2)
    with left:
        st.markdown("**Head, medium and tail classes**")
        show(group_comparison_figure(groups, colors), "groups",
             "Average hit rate of the common (head), middle and rare (tail) classes, one bar per run.")
    with right:
        st.markdown("**Training curves**")
        show(curves_overlay_figure({label: b.history for label, b in bundles.items()}, colors=colors), "curves",
             "Validation balanced accuracy per epoch, one line per run: which run learns the rare classes, and how "
             "fast.")

if mode == "Runs":
    st.subheader("When the clinic's class mix differs from training")
    c1, c2 = st.columns([3, 2])
    adapt = c2.toggle("Adapt each model to the mix", key="compare.shift_adapt",
                      help="Moves each model's scores to the mix (score + log(new share / training share)), as if it "
                           "had been told how common each class is there.")
    with c1:
        figure = shift_chart(bundles, "compare.shift_metric", "balanced_accuracy", adapt, colors)
    show(figure, "shift", "Each run scored on test cases whose class mix moves from the training order (common classes far "
         "more common, left) through balanced (middle) to reversed (rare classes now common, right). The run whose line "
         "stays highest and flattest across the chart is the fix to trust when your clinic's mix is unknown or "
         "differs from the training data.")

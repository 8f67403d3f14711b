"""Compare: finished runs (or experiments) on the same data, side by side, and whether
their differences are beyond noise."""

import pandas as pd
import streamlit as st

from app import state
from app.compare_view import differences_in_words, experiment_numbers, paired_section, run_numbers
from app.fit_tables import wrapping_table
from app.prior_view import shift_chart
from app.services import finished_runs, get_store
from app.widgets import chart_with_download, empty_state
from core.config import is_multilabel_data
from core.analysis import comparable, config_differences, experiment_labels, newest_comparable, run_labels
from core.data import source_label
from core.glossary import method_display
from core.text import md
from core.viz import (
    curves_overlay_figure, group_comparison_figure, metric_comparison_figure, metric_difference_figure, run_colors,
)

st.title("⚖️ Compare")
st.caption("Put finished runs trained on the same data side by side: which one finds the rare classes, at what cost "
           "to the common ones, and whether the difference is real or within noise.")


def show(fig, name: str, caption: str) -> None:
    """A chart, its plain-language caption and a self-contained HTML download."""
    chart_with_download(fig, caption, key=f"compare.{name}", download_key=f"compare.{name}.html",
                        filename=f"compare-{name}")


def option_label(item_id: str) -> str:
    """A run or experiment in the picker: its name, its data and its method in words."""
    item = by_id[item_id]
    if mode == "Experiments":  # its name (a sweep's cell in words) and its number of runs, nothing else
        return labels[item_id]
    return f"{labels[item_id]} · {source_label(item.dataset)} · {method_display(item.config)}"


experiments = [e for e in get_store().list_experiments() if any(r.status == "done" for r in e.runs)]
mode = "Runs"
if experiments:
    mode = st.segmented_control("Compare", ["Runs", "Experiments"], key="compare.mode",
                                default=st.session_state.pop(state.COMPARE_MODE, "Runs"),
                                help="Experiments repeat one configuration over folds and seeds: comparing them "
                                     "tells a real difference from a lucky split.") or "Runs"

if mode == "Experiments":
    by_id = {e.id: e for e in experiments}
    labels = experiment_labels(experiments, get_store().list_sweeps())
    configs = {e.id: e.config for e in experiments}
    remembered = [i for i in st.session_state.get(state.COMPARE_EXPERIMENT_IDS, []) if i in by_id]
    chosen = st.multiselect("Experiments to compare", list(by_id), default=remembered or newest_comparable(configs),
                            format_func=option_label, key="compare.experiments", select_all=False)
    st.session_state[state.COMPARE_EXPERIMENT_IDS] = chosen
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
        format_func=option_label, select_all=False,  # no "Select 8 matches" as the first option after typing
        key="compare.runs", help="Finished runs, newest first.")
    st.session_state[state.COMPARE_RUN_IDS] = chosen
if len(chosen) < 2:
    st.info(f"Pick at least two {mode.lower()} to compare.")
    st.stop()
multi = {is_multilabel_data(configs[i]["data"]) for i in chosen}
if multi != {False}:  # several findings per case: compared on rare-finding mAP on the Results page
    st.info("Multi-label runs (several findings per case) are compared on the Results page: open one and pick the "
            "other under *Is another method better on the rare findings?*." if multi == {True} else
            "One of these is a multi-label run and another is not: compare runs of one kind.", icon="🏷️")
    st.stop()
ok, reason = comparable({labels[i]: configs[i] for i in chosen}, mode.lower())
if not ok:
    st.error(f"**These {mode.lower()} cannot be compared.** {md(reason)}")
    st.stop()
st.caption(f"✔ Comparable: {md(reason)}.")
reference = st.selectbox("Measured against", chosen, format_func=labels.get, key=f"compare.reference.{mode}",
                         help="The reference: differences on this page are every other one minus this one.")
st.caption(f"Every difference below is another one minus **{md(labels[reference])}**.")  # its whole name
colors = {labels[i]: c for i, c in run_colors(sorted(chosen, key=lambda i: by_id[i].created)).items()}

differences = config_differences({labels[i]: configs[i] for i in chosen})
if differences.empty:
    st.caption("They use identical settings: any difference comes from randomness alone.")
else:
    n = len(differences)
    with st.expander(f"What differs between them ({n} setting{'s' if n > 1 else ''})", expanded=n <= 6):
        wrapping_table(differences_in_words(differences))

st.subheader("Headline numbers")
if mode == "Experiments":
    per_class, groups = experiment_numbers(chosen, labels, colors), None
else:
    bundles = run_numbers(chosen, labels, colors)
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

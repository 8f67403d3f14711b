"""Results: how the selected run does overall and class by class, head to tail."""

import pandas as pd
import streamlit as st

from app.label_forms import label_noise_note
from app.labels_view import labels_section
from app.made_rows_view import made_rows_section
from app.multilabel_view import multilabel_results
from app.prior_view import shift_chart
from app.results_view import TABS, confusion_explorer, headline, rare_stage_panel, run_key
from app.services import load_bundle
from app.widgets import chart_with_download, require_run, run_method
from core.analysis import softmax
from core.data import source_label
from core.registry import plugin_label
from core.run_words import kept_epoch_words, reused_stage_words
from core.safe_csv import csv_bytes
from core.text import md
from core.viz import group_bars_figure, per_class_figure, pr_curve_figure, run_colors, training_curves_figure


def show(fig, name: str, caption: str, **kwargs):
    """A chart, its plain-language caption and a self-contained HTML download."""
    chart_with_download(fig, caption, key=run_key(record, name), download_key=f"results.{name}.html",
                        filename=f"{record.id}-{name}", **kwargs)


st.title("📊 Results")
record = require_run(multilabel=True)
bundle = load_bundle(record.id)
if bundle.multilabel:  # several findings per case: its own view
    multilabel_results(record, bundle, show)
    st.stop()
art, m = bundle.artifacts, bundle.metrics
names, k = bundle.class_names, art.num_classes
per_class, groups = pd.DataFrame(m["per_class"]), pd.DataFrame(m["groups"])
probs = softmax(art.logits)
order = per_class["class_index"].tolist()  # head to tail
st.caption(f"**{md(record.name)}** · method {run_method(record)} · data {md(source_label(record.dataset))}: "
           f"{len(art.labels)} test samples, {k} classes. Hover the ? beside a number for what it means; every chart has a camera button (top right) that saves a PNG.")
if noise_note := label_noise_note(bundle.config.data):
    st.info(noise_note, icon="🏷️")

choice, pooled, per_class_shown = headline(record, bundle)
rare_stage_panel(m, list(names))

st.subheader("Which classes get confused")
confusion_explorer(record, bundle, probs, order, show)

st.subheader("Class by class, and more views")
# Only the open tab is drawn (as on Geometry): every chart at once cost a sidebar click half a second.
by_class, shifted, curves_pr, curves = st.tabs(TABS, key="results.tabs", on_change="rerun")
if by_class.open:
    with by_class:
        st.caption("Class by class, head to tail: the common classes first, the rare ones last.")
        left, right = st.columns([3, 2])
        with left:
            metric = st.segmented_control("Measure", ["recall", "precision", "f1"], default="recall",
                                          key="results.metric") or "recall"
            show(per_class_figure(per_class_shown, metric), "per-class",
                 "Each dot is a class; further right means more training samples. Points on the left are rare "
                 "classes: if they sit low, the model fails on the tail. A hollow dot rests on fewer than 10 test "
                 "cases. Bars: 95 % interval "
                 + ("over the experiment's runs." if pooled else "(Wilson) for the class's few test cases; a rare "
                    "class's long bar means its number rests on very few cases."))
        with right:
            st.markdown("**Head, medium and tail classes**")
            show(group_bars_figure(groups), "groups",
                 "Average hit rate of the common (head), middle and rare (tail) classes. A long-tail-aware method "
                 "lifts the tail's bar without sinking the others.")
        st.download_button("Per-class metrics (CSV)", csv_bytes(per_class), file_name=f"{record.id}-per-class.csv",
                           mime="text/csv", key="results.csv", on_click="ignore", icon=":material/download:",
                           help="Precision, recall, F1, test and training counts and group of every class.")

if shifted.open:
    with shifted:
        show(shift_chart({record.name: bundle}, "results.shift_metric", "accuracy", choice.adapt,
                         run_colors([record.name])), "shift",
             "The same model scored on test cases whose class mix moves from the training order (common classes much "
             "more common, left) through balanced (middle) to reversed (the rare classes now the common ones, right). "
             "A flat line means the number holds wherever the model is used; accuracy usually falls to the right "
             "when a model favours common classes. "
             + ("The model is adapted to each mix (switch off above to see it unchanged)."
                if choice.adapt else "Balanced accuracy stays flat unless the model is adapted."))

if curves_pr.open:
    with curves_pr:
        supported = per_class.set_index("class_index")["support"]
        default_pr = [order[0], *[j for j in order[::-1] if supported.loc[j] > 0][:2]]
        chosen = st.multiselect("Classes", order, default=list(dict.fromkeys(default_pr)),
                                format_func=lambda j: names[j], key=run_key(record, "pr_classes"))
        show(pr_curve_figure(probs, art.labels, chosen, names), "pr-curves",
             "How precise the model stays as it finds more of a class. A curve hugging the top right is good; the "
             "dotted line of the same colour is what guessing would give. Rare classes often fall away early.")

if curves.open:
    with curves:
        training = m.get("training") or {}
        if training.get("steps") == 0:
            st.caption(f"{plugin_label('model', bundle.config.model.name)} is a table baseline: it is fitted in one "
                       "go, so there are no epochs to show.")
        else:
            show(training_curves_figure(bundle.history, training.get("selected_epoch")), "training",
                 "Validation scores and losses per epoch. If balanced accuracy flattens while accuracy still rises, "
                 "the gains come from the common classes; a validation loss turning up means over-fitting. "
                 + kept_epoch_words(bundle.history, training.get("selected_epoch")) + " "
                 + reused_stage_words(training))

labels_section(bundle, show)  # pseudo-labels and pre-training, for runs that used unlabelled rows
if bundle.config.resampler is not None:  # the rows its resampler made up, and their checks
    made_rows_section(m, plugin_label("resampler", bundle.config.resampler.name))

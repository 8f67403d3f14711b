"""Results: how the selected run does overall and class by class, head to tail."""

import numpy as np
import pandas as pd
import streamlit as st

from app.label_forms import label_noise_note
from app.labels_view import labels_section
from app.prior_view import metrics_at, per_class_table, prior_cards, prior_note, prior_picker, shift_chart
from app.services import load_bundle, load_experiment, load_splits
from app.widgets import explain, metric_cards, require_run, run_method, table_height
from core.analysis import confusion, softmax
from core.data import in_original_units, source_label
from core.safe_csv import csv_bytes
from core.text import md
from core.viz import (
    cell_samples, confusion_figure, confusion_selection, group_bars_figure, image_thumbnails, per_class_figure,
    pr_curve_figure, run_colors, tail_warnings, training_curves_figure,
)

CARDS = ("accuracy", "balanced_accuracy", "f1_macro", "gmean", "mcc", "cohen_kappa", "roc_auc_ovr_macro",
         "average_precision_macro")
SHORT_LABELS = {"roc_auc_ovr_macro": "ROC-AUC (macro)", "average_precision_macro": "Average precision"}
SHOWN_SAMPLES = 30


def run_key(name: str) -> str:
    """Widget keys holding class choices belong to one run (another run has other classes)."""
    return f"results.{name}.{record.id}"


def show(fig, name: str, caption: str, **kwargs):
    """A chart, its plain-language caption and a self-contained HTML download."""
    st.plotly_chart(fig, width="stretch", key=run_key(name), config={
        "toImageButtonOptions": {"filename": f"{record.id}-{name}"}}, **kwargs)
    explain(caption)
    st.download_button("Download this chart (HTML)", lambda: fig.to_html(include_plotlyjs=True), type="tertiary",
                       file_name=f"{record.id}-{name}.html", mime="text/html", key=f"results.{name}.html",
                       on_click="ignore", icon=":material/download:",
                       help="The interactive chart as one file that opens offline in any browser.")


st.title("📊 Results")
record = require_run()
bundle = load_bundle(record.id)
art, m = bundle.artifacts, bundle.metrics
names, k = bundle.class_names, art.num_classes
per_class, groups = pd.DataFrame(m["per_class"]), pd.DataFrame(m["groups"])
probs = softmax(art.logits)
order = per_class["class_index"].tolist()  # head to tail
st.caption(f"**{md(record.name)}** · method {run_method(record)} · data {md(source_label(record.dataset))}: "
           f"{len(art.labels)} test samples, {k} classes. Hover the ? beside a number for what it means; every chart has a camera button (top right) that saves a PNG.")
if noise_note := label_noise_note(bundle.config.data):
    st.info(noise_note, icon="🏷️")

experiment = load_experiment(record.experiment) if record.experiment else None
pooled = experiment is not None and st.toggle(
    f"Show the experiment **{md(experiment['name'])}**: the mean over its {experiment['n_done']} finished runs "
    f"(of {experiment['n_runs']})", value=True, key="results.pooled",
    help="On: the cards and the class-by-class chart show the mean over every fold and seed of the experiment, with "
         "a 95 % t-interval. Off: this one run, with bootstrap intervals over its test cases.")
if pooled:
    summary = experiment["summary"]
    values = {k: summary[k]["mean"] for k in CARDS}
    intervals = {k: tuple(summary[k]["ci"]) for k in CARDS}
    how = f"t-interval over {experiment['n_done']} runs"
    per_class_shown = pd.DataFrame(experiment["per_class"]).assign(
        group=lambda d: [bundle.groups[int(i)] for i in d["class_index"]])
else:
    values = {k: m.get(k) for k in CARDS}
    intervals = {k: (ci["low"], ci["high"]) for k, ci in (m.get("ci") or {}).items()}
    how = "stratified bootstrap over the test cases"
    per_class_shown = per_class
choice = prior_picker(bundle, "results")
if choice.as_tested:
    metric_cards(CARDS, values, intervals, SHORT_LABELS, how)
    explain(("Mean over the experiment's runs" if pooled else "This run") + " ± half the width of its 95 % interval: "
            "differences between methods smaller than that are within noise (the Compare page tests them). "
            + ("The charts below the class-by-class view are for this one run." if pooled else ""))
    prior_note(choice)
else:
    at_prior = metrics_at(bundle, choice)
    prior_cards(at_prior, metrics_at(bundle))
    prior_note(choice, what="cards and the table" + (" (of this one run, not the experiment's mean)" if pooled else ""))
    per_class_table(at_prior, names, order)
    explain("MCC, ROC-AUC and the charts below, but for the last one, are for the test split as it is.")
for note in tail_warnings(m, per_class):
    st.warning(note, icon="⚠️")

st.subheader("Which classes get confused")
cm = confusion(art.logits, art.labels, k)
chart_state = st.session_state.get(run_key("confusion")) or {}  # last clicks, read before the chart is drawn
picked = confusion_selection((chart_state.get("selection") or {}).get("points", []))
if picked != st.session_state.get(run_key("chart_cells"), []):  # a new click wins over the boxes below
    st.session_state[run_key("chart_cells")] = picked
    if picked:
        st.session_state[run_key("true")], st.session_state[run_key("pred")] = picked[0]
if run_key("true") not in st.session_state:  # start on the largest mistake
    off = np.where(np.eye(k, dtype=bool), -1, cm)
    st.session_state[run_key("true")], st.session_state[run_key("pred")] = map(int, np.unravel_index(off.argmax(),
                                                                                                     cm.shape))
pair = (st.session_state[run_key("true")], st.session_state[run_key("pred")])
cells = picked if len(picked) > 1 and pair in picked else [pair]

chart_col, list_col = st.columns([3, 2], gap="large")
with chart_col:
    normalize = st.toggle("Show shares of each true class instead of counts", key="results.normalize",
                          help="Each row then sums to 1 and the diagonal is the class's hit rate (recall).")
    show(confusion_figure(cm, names, order, normalize, highlight=cells), "confusion",
         "Rows are the true class, columns what the model said; the diagonal is right, everything else is "
         "a mistake. Classes run from most to fewest training samples, so mistakes piling up in the lower "
         "rows mean the rare classes are swallowed by common ones. Click a cell (or drag a box) to list "
         "its test samples.", on_select="rerun", selection_mode=("points", "box"))
with list_col:
    c1, c2 = st.columns(2)
    c1.selectbox("True class", order, format_func=lambda j: names[j], key=run_key("true"))
    c2.selectbox("Predicted class", order, format_func=lambda j: names[j], key=run_key("pred"))
    samples = cell_samples(art.labels, probs, cells, names)
    where = ", ".join(f"true {md(names[t])} → predicted {md(names[p])}" for t, p in cells)
    if samples.empty:
        st.info(f"No test samples are {where}.")
    else:
        st.markdown(f"**{len(samples)} test samples** ({where}), most confident first"
                    + (f"; the first {SHOWN_SAMPLES} shown" if len(samples) > SHOWN_SAMPLES else "") + ".")
        shown = samples.head(SHOWN_SAMPLES)
        x_test = load_splits(bundle.config.data).x_test[art.test_index[shown["position"].to_numpy()]]
        if bundle.modality == "image":
            st.image(image_thumbnails(x_test), width=64, caption=[
                f"{md(r.true)}→{md(r.predicted)} ({r.confidence:.0%})" for r in shown.itertuples()])
            explain("Each picture: true class → predicted class, and how sure the model was of its answer.")
        else:
            st.caption("The cases are listed under the chart, with their values as in the data file.")
if not samples.empty and bundle.modality != "image":  # rows of values need the page's full width
    scaled = st.toggle("Show the standardised values the model saw", key="results.standardised",
                       help="Off: each value as in the data file (mg/dl, the category's name, the date). On: scaled "
                            "so 0 is the training average and ±1 one standard deviation.")
    features = (pd.DataFrame(x_test.reshape(len(shown), -1), columns=m["dataset"].get("feature_names")) if scaled
                else in_original_units(load_splits(bundle.config.data), x_test))
    st.dataframe(pd.concat([shown.drop(columns="position").reset_index(drop=True), features], axis=1),
                 hide_index=True, height=table_height(len(shown)),
                 column_config={"confidence": st.column_config.ProgressColumn(min_value=0, max_value=1),
                                "p_true": st.column_config.NumberColumn("p(true class)", format="%.2f")})
    explain(f"Test cases that are {where}: true and predicted class, the model's confidence, and the "
            + ("feature values the model saw (standardised: 0 is the training average, ±1 one standard deviation)."
               if scaled else "values as the data file has them (gaps show the value they were filled with)."))

st.subheader("Class by class, head to tail")
left, right = st.columns([3, 2])
with left:
    metric = st.segmented_control("Measure", ["recall", "precision", "f1"], default="recall",
                                  key="results.metric") or "recall"
    show(per_class_figure(per_class_shown, metric), "per-class",
         "Each dot is a class; further right means more training samples. Points on the left are rare classes: "
         "if they sit low, the model fails on the tail. Bars: 95 % interval "
         + ("over the experiment's runs." if pooled else "(Wilson) for the class's few test cases; a rare class's "
            "long bar means its number rests on very few cases."))
with right:
    st.markdown("**Head, medium and tail classes**")
    show(group_bars_figure(groups), "groups",
         "Average hit rate of the common (head), middle and rare (tail) classes. A long-tail-aware method "
         "lifts the tail's bar without sinking the others.")
st.download_button("Per-class metrics (CSV)", csv_bytes(per_class), file_name=f"{record.id}-per-class.csv",
                   mime="text/csv", key="results.csv", on_click="ignore", icon=":material/download:",
                   help="Precision, recall, F1, test and training counts and group of every class.")

st.subheader("If the class mix differs from training")
show(shift_chart({record.name: bundle}, "results.shift_metric", "accuracy", choice.adapt, run_colors([record.name])),
     "shift",
     "The same model scored on test cases whose class mix moves from the training order (common classes much more "
     "common, left) through balanced (middle) to reversed (the rare classes now the common ones, right). A flat line "
     "means the number holds wherever the model is used; accuracy usually falls to the right when a model favours "
     "common classes. " + ("The model is adapted to each mix (switch off above to see it unchanged)."
                           if choice.adapt else "Balanced accuracy stays flat unless the model is adapted."))

st.subheader("Precision-recall curves")
default_pr = [order[0], *[j for j in order[::-1] if per_class.set_index("class_index").loc[j, "support"] > 0][:2]]
chosen = st.multiselect("Classes", order, default=list(dict.fromkeys(default_pr)), format_func=lambda j: names[j],
                        key=run_key("pr_classes"))
show(pr_curve_figure(probs, art.labels, chosen, names), "pr-curves",
     "How precise the model stays as it finds more of a class. A curve hugging the top right is good; the dotted "
     "line of the same colour is what guessing would give. Rare classes often fall away early.")

labels_section(bundle, show)  # pseudo-labels and pre-training, for runs that used unlabelled rows

st.subheader("Training curves")
training = m.get("training") or {}
if training.get("steps") == 0:
    st.caption(f"{bundle.config.model.name} is a table baseline: it is fitted in one go, so there are no epochs to "
               "show.")
else:
    show(training_curves_figure(bundle.history, training.get("selected_epoch")), "training",
         "Validation scores and losses per epoch. If balanced accuracy flattens while accuracy still rises, the gains "
         "come from the common classes; a validation loss turning up means over-fitting. The dashed line marks the "
         "epoch whose model was kept (the best validation balanced accuracy).")

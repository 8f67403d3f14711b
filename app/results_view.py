"""The Results page's two interactive parts: the headline cards (one run or its experiment's
mean, at the test split's class mix or another one) and the confusion matrix whose cells,
clicked or picked, list their test cases."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import streamlit as st

from app.fit_tables import columns_that_fit
from app.prior_view import PriorChoice, metrics_at, per_class_table, prior_cards, prior_note, prior_picker
from app.services import RunBundle, load_experiment, load_splits
from app.widgets import explain, metric_cards, table_height
from core.analysis import confusion
from core.data import case_id_words, in_original_units
from core.run_words import SINGLE_RUN_SCOPE, scope_words
from core.store import RunRecord
from core.text import md
from core.viz import cell_samples, confusion_figure, confusion_selection, image_thumbnails, tail_warnings

__all__ = ["CARDS", "SHORT_LABELS", "SHOWN_SAMPLES", "TABS", "run_key", "headline", "confusion_explorer", "rare_stage_panel"]

CARDS = ("accuracy", "balanced_accuracy", "f1_macro", "gmean", "mcc", "cohen_kappa", "roc_auc_ovr_macro",
         "average_precision_macro")
SHORT_LABELS = {"roc_auc_ovr_macro": "ROC-AUC (macro)", "average_precision_macro": "Average precision"}
SHOWN_SAMPLES = 30
# the page's tabs below the confusion explorer, in order: only the open one is drawn
TABS = ("Class by class", "If the class mix differs", "Precision-recall curves", "Training curves")


def run_key(record: RunRecord, name: str) -> str:
    """Widget keys holding class choices belong to one run (another run has other classes)."""
    return f"results.{name}.{record.id}"


def headline(record: RunRecord, bundle: RunBundle) -> tuple[PriorChoice, bool, pd.DataFrame]:
    """The headline cards: this run, or its experiment's mean over folds and seeds, at the
    class mix the person picks; then the warnings about the tail. Returns (the class-mix
    choice, whether the experiment's mean is shown, the per-class rows the class-by-class
    chart shows)."""
    m, names = bundle.metrics, bundle.class_names
    per_class = pd.DataFrame(m["per_class"])
    order = per_class["class_index"].tolist()  # head to tail
    experiment = load_experiment(record.experiment) if record.experiment else None
    if experiment is not None:  # named here: a label is read out as written, so it holds no escaped text
        st.caption(f"This run is one of the experiment **{md(experiment['name'])}**.")
    pooled = experiment is not None and st.toggle(
        f"Show the experiment's mean over its {experiment['n_done']} finished runs (of {experiment['n_runs']})",
        value=True, key="results.pooled",
        help="On: the cards, the warnings and the class-by-class chart show the mean over every fold and seed of the "
             "experiment, with a 95 % t-interval. Off: this one run, with bootstrap intervals over its test cases.")
    choice = prior_picker(bundle, "results")
    if pooled and not choice.as_tested:
        pooled = False  # re-weighting to another mix works on one run's test cases
        st.info("**Showing this run, not the experiment's mean:** scoring at another class mix re-weights one "
                "run's own test cases, so the cards below are for this one run. Choose *the test split as it is* "
                "to see the experiment's mean again.", icon="ℹ️")
    if pooled:
        summary = experiment["summary"]
        values = {k: summary[k]["mean"] for k in CARDS}
        intervals = {k: tuple(summary[k]["ci"]) for k in CARDS}
        how = f"t-interval over {experiment['n_done']} runs, kept inside the metric's range"
        per_class_shown = pd.DataFrame(experiment["per_class"]).assign(
            group=lambda d: [bundle.groups[int(i)] for i in d["class_index"]])
        scope = scope_words(experiment["config"].get("evaluation") or {}, experiment["n_done"])
    else:
        values = {k: m.get(k) for k in CARDS}
        intervals = {k: (ci["low"], ci["high"]) for k, ci in (m.get("ci") or {}).items()}
        how = "stratified bootstrap over the test cases"
        per_class_shown = per_class
        scope = f"{SINGLE_RUN_SCOPE}, with 95 % interval" if choice.as_tested else \
            f"{SINGLE_RUN_SCOPE}: {len(bundle.artifacts.labels)} test cases, re-weighted"
    st.markdown(f"##### {scope}")
    if choice.as_tested:
        count = (f"{experiment['n_done']} runs, no interval" if pooled else
                 f"{len(bundle.artifacts.labels)} test cases, no interval")
        metric_cards(CARDS, values, intervals, SHORT_LABELS, how, count=count)
        explain(("Mean over the experiment's runs" if pooled else "This run") + " with the ends of its 95 % "
                "interval: differences between methods inside that are within noise (the Compare page tests "
                "them). " + ("The charts below the class-by-class view are for this one run." if pooled else ""))
        prior_note(choice)
    else:
        at_prior = metrics_at(bundle, choice)
        prior_cards(at_prior, metrics_at(bundle))
        prior_note(choice, what="cards and the table")
        per_class_table(at_prior, names, order, counts=per_class.set_index("class_index")["support"])
        explain("MCC, ROC-AUC and the charts below, but for the last one, are for the test split as it is.")
    warn_values = {k: summary[k]["mean"] for k in ("accuracy", "balanced_accuracy")} if pooled else m
    for note in tail_warnings(warn_values, per_class_shown):
        st.warning(note, icon="⚠️")
    return choice, pooled, per_class_shown


def _picked_cells(record: RunRecord, cm: np.ndarray) -> list[tuple[int, int]]:
    """The confusion cells to list: the chart's last click or box (read before the chart is
    drawn) wins over the two class boxes; at first, the largest mistake."""
    key = lambda name: run_key(record, name)  # noqa: E731
    chart_state = st.session_state.get(key("confusion")) or {}
    picked = confusion_selection((chart_state.get("selection") or {}).get("points", []))
    if picked != st.session_state.get(key("chart_cells"), []):  # a new click wins over the boxes below
        st.session_state[key("chart_cells")] = picked
        if picked:
            st.session_state[key("true")], st.session_state[key("pred")] = picked[0]
    if key("true") not in st.session_state:  # start on the largest mistake
        off = np.where(np.eye(len(cm), dtype=bool), -1, cm)
        st.session_state[key("true")], st.session_state[key("pred")] = map(int, np.unravel_index(off.argmax(),
                                                                                                 cm.shape))
    pair = (st.session_state[key("true")], st.session_state[key("pred")])
    return picked if len(picked) > 1 and pair in picked else [pair]


def _case_values(bundle: RunBundle, shown: pd.DataFrame, x_test: np.ndarray, where: str) -> None:
    """The listed table cases with their values, as in the data file or as the model saw them."""
    scaled = st.toggle("Show the standardised values the model saw", key="results.standardised",
                       help="Off: each value as in the data file (mg/dl, the category's name, the date). On: scaled "
                            "so 0 is the training average and ±1 one standard deviation.")
    features = (pd.DataFrame(x_test.reshape(len(shown), -1), columns=bundle.metrics["dataset"].get("feature_names"))
                if scaled else in_original_units(load_splits(bundle.config.data), x_test))
    # the cases' own columns (name, true and predicted class) and the values that fit beside
    # them at 1024 px; the other values wait in the grid's "Show/hide columns" menu
    table = pd.concat([shown.drop(columns="position").reset_index(drop=True), features], axis=1)
    values, more = columns_that_fit(table, [table.columns[0], "true", "predicted"], list(features.columns),
                                    reserved=len("confidence") + len("p(true class)") + 4)
    pinned = {name: st.column_config.Column(pinned=True) for name in (table.columns[0], "true", "predicted")}
    st.dataframe(
        table, hide_index=True, height=table_height(len(shown)),
        column_config={**pinned, "confidence": st.column_config.ProgressColumn(min_value=0, max_value=1),
                       "p_true": st.column_config.NumberColumn("p(true class)", format="%.2f"),
                       **{c: {"hidden": True} for c in more}})
    if more:
        st.caption(f"{len(values)} of the {len(features.columns)} values are shown; the others (" +
                   ", ".join(md(c) for c in more[:5]) + (", …" if len(more) > 5 else "") +
                   ") are in the table's Show/hide columns menu, at its top right.")
    explain(f"Test cases that are {where}, each named by its {md(case_id_words(bundle.artifacts.id_name))}: true and "
            "predicted class, the model's confidence, and the "
            + ("feature values the model saw (standardised: 0 is the training average, ±1 one standard deviation)."
               if scaled else "values as the data file has them (gaps show the value they were filled with)."))


def confusion_explorer(record: RunRecord, bundle: RunBundle, probs: np.ndarray, order: list[int],
                       show: Callable[..., None]) -> None:
    """The confusion matrix beside the test cases of the picked cells (pictures, or rows of
    values under both). `show(fig, name, caption, **kwargs)` is the page's chart renderer."""
    art, names, k = bundle.artifacts, bundle.class_names, bundle.artifacts.num_classes
    cm = confusion(art.logits, art.labels, k)
    cells = _picked_cells(record, cm)
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
        c1.selectbox("True class", order, format_func=lambda j: names[j], key=run_key(record, "true"))
        c2.selectbox("Predicted class", order, format_func=lambda j: names[j], key=run_key(record, "pred"))
        samples = cell_samples(art.labels, probs, cells, names, art.ids, art.id_name)
        where = ", ".join(f"true {md(names[t])} → predicted {md(names[p])}" for t, p in cells)
        if samples.empty:
            st.info(f"No test samples are {where}.")
            return
        st.markdown(f"**{len(samples)} test samples** ({where}), most confident first"
                    + (f"; the first {SHOWN_SAMPLES} shown" if len(samples) > SHOWN_SAMPLES else "") + ".")
        shown = samples.head(SHOWN_SAMPLES)
        x_test = load_splits(bundle.config.data).x_test[art.test_index[shown["position"].to_numpy()]]
        if bundle.modality == "image":
            st.image(image_thumbnails(x_test), width=64, caption=[
                f"{md(art.case_name(r.position))}: {md(r.true)}→{md(r.predicted)} ({r.confidence:.0%})"
                for r in shown.itertuples()])
            explain(f"Each picture: its {md(case_id_words(art.id_name))}, true class → predicted class, and how "
                    "sure the model was of its answer.")
        else:
            st.caption("The cases are listed under the chart, with their values as in the data file.")
    if bundle.modality != "image":  # rows of values need the page's full width
        _case_values(bundle, shown, x_test, where)


_RARE_STAGE_WORDS = {"log_loss": "Log loss (lower is better)", "brier": "Brier score (lower is better)",
                     "auc": "AUC: ranks cases that reached it above those that did not (1 is perfect, 0.5 chance)",
                     "calibration_in_the_large": "Mean predicted minus observed share (0: calibrated)",
                     "calibration_slope": "Calibration slope (1: calibrated; below 1: too extreme)"}


def rare_stage_panel(metrics: dict, class_names: list[str]) -> None:
    """An ordinal run's scores of the probability it gives its rare last stage, with intervals."""
    rare = metrics.get("rare_stage")
    if not rare:
        return
    stage = class_names[rare["stage"]] if rare["stage"] < len(class_names) else str(rare["stage"])
    st.subheader(f"The rare last stage: {md(stage)}")
    rows = [{"score": words, "value": rare[key]["estimate"], "95 % interval low": rare[key]["low"],
             "95 % interval high": rare[key]["high"]} for key, words in _RARE_STAGE_WORDS.items() if rare.get(key)]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption(f"The classes are ordered stages; the last, {md(stage)}, is the rare event ordinal models are built "
               f"for. These score the probability the model gives it on the {rare['test_cases']} test cases that "
               "reached it and the rest; intervals: bootstrap over the test cases."
               + (f" {md(rare['log_loss'].get('note'))}" if rare["log_loss"].get("note") else ""))

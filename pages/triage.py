"""Rare-class triage: where to draw the line for one class in your setting, and what a batch
of new cases looks like to the model."""

import math

import numpy as np
import streamlit as st

from app.fit_tables import wrapping_table
from app.multilabel_triage_view import multilabel_triage
from app.services import load_bundle
from app.triage_view import class_probabilities, new_cases_tab, point_cards, save_operating_point, saved_operating_point
from app.widgets import explain, flash, require_run
from core.analysis import least_cost_threshold, operating_point
from core.data import head_to_tail_order
from core.text import md
from core.viz import triage_pr_figure, triage_roc_figure, two_by_two_frame

st.title("🩺 Rare-class triage")
st.markdown("For one diagnosis, decide **how sure the model must be before it raises a flag**, and see what that "
            "means in a setting where the diagnosis is as common as in yours. Then score a batch of new, unlabelled "
            "cases and see how common each class seems to be among them.")

record = require_run(multilabel=True)
bundle = load_bundle(record.id)
if bundle.multilabel:  # several findings per case: one finding at a time
    multilabel_triage(bundle)
    st.stop()
art, names = bundle.artifacts, bundle.class_names
probs, y = class_probabilities(bundle), np.asarray(art.labels)
support = np.bincount(y, minlength=art.num_classes)


def key(name: str) -> str:
    return f"triage.{name}.{record.id}"


def test_share(cls: int) -> float:
    return round(100 * support[cls] / max(len(y), 1), 2)


def new_class() -> None:
    st.session_state[key("prevalence")] = test_share(st.session_state[key("class")])


def use_threshold(value: float) -> None:
    st.session_state[key("threshold")] = value


def save() -> None:
    """The settings as they are on screen (read from the widgets), saved with the run."""
    chosen = {"class": int(st.session_state[key("class")]), "threshold": float(st.session_state[key("threshold")]),
              "prevalence": float(st.session_state[key("prevalence")]) / 100,
              "cost_miss": float(st.session_state[key("cost")])}
    save_operating_point(record.id, chosen)
    flash(f"Saved with the run: flag {md(names[chosen['class']])} at {chosen['threshold']:.3f}. New cases scored by "
          "this run use it.")


saved = saved_operating_point(record.id)
if key("class") not in st.session_state:  # first visit: start from the saved point, or the rarest class
    with_cases = [j for j in head_to_tail_order(art.class_counts).tolist() if support[j] > 0]
    cls = int(saved.get("class", with_cases[-1] if with_cases else 0))
    st.session_state[key("class")] = cls
    st.session_state[key("threshold")] = float(saved.get("threshold", 0.5))
    prevalence = saved.get("prevalence")
    st.session_state[key("prevalence")] = round(100 * prevalence, 3) if prevalence is not None else test_share(cls)
    st.session_state[key("cost")] = float(saved.get("cost_miss") or 10.0)

one_class, new_cases = st.tabs(["One class: where to draw the line", "New cases: predict and estimate the mix"])
with one_class:
    c1, c2, c3 = st.columns([2, 2, 3])
    cls = c1.selectbox("Class to flag", head_to_tail_order(art.class_counts).tolist(), key=key("class"),
                       on_change=new_class, format_func=lambda j: f"{names[j]} ({support[j]} test cases)")
    prevalence = c2.number_input("How common is it in your setting (%)", 0.01, 99.99, step=0.5, format="%g",
                                 key=key("prevalence"),
                                 help=f"Of every 100 cases you see, how many are {md(names[cls])}. The test split has "
                                      f"{test_share(cls):g} %.")
    threshold = c3.slider("Flag a case when the model's probability is at least", 0.0, 1.0, step=0.001,
                          format="%.3f", key=key("threshold"),
                          help="Lower: more cases flagged, fewer missed, more false alarms. Higher: the reverse.")
    scores, positive = probs[:, cls], y == cls
    point = operating_point(scores, positive, threshold, prevalence=prevalence / 100)
    point_cards(point, names[cls], prevalence)
    per_1000 = 1000 * prevalence / 100
    found, alarms = per_1000 * point["sensitivity"]["value"], (1000 - per_1000) * (1 - point["specificity"]["value"])
    if math.isfinite(found) and math.isfinite(alarms):
        explain(f"In words: of 1,000 cases where {prevalence:g} % are {md(names[cls])} (about {per_1000:,.0f}), the "
                f"model flags about {found:,.0f} of them and misses about {per_1000 - found:,.0f}; it also raises "
                f"about {alarms:,.0f} false alarms among the {1000 - per_1000:,.0f} others. The intervals say how "
                "sure these numbers are, given how few test cases stand behind them.")
    st.markdown("**The test cases at this threshold**")
    wrapping_table(two_by_two_frame(point, names[cls]))
    explain("Counts on this run's test cases (their own mix, not your setting's): the model's call in rows, the "
            "truth in columns. Top left: found; bottom left: missed; top right: false alarms.")
    r1, r2 = st.columns(2)
    r1.plotly_chart(triage_roc_figure(scores, positive, point, names[cls]), width="stretch", key="triage.roc")
    r2.plotly_chart(triage_pr_figure(scores, positive, point, names[cls], prevalence / 100), width="stretch",
                    key="triage.pr")
    explain("Left: every threshold as a trade between finding cases (up) and false alarms (right); the cross is the "
            f"threshold chosen above. Right: how often a flag is right at {prevalence:g} % prevalence; the dotted line "
            "is what flagging at random would give. A rare diagnosis makes even a good model's flags often wrong.")

    st.subheader("What does a miss cost?")
    cost = st.number_input("A missed case costs as much as this many false alarms", 0.0, 100000.0, step=1.0,
                           format="%g", key=key("cost"),
                           help="E.g. 20: missing one case is as bad as 20 needless follow-ups.")
    try:
        best = least_cost_threshold(scores, positive, prevalence=prevalence / 100, cost_miss=cost)
    except ValueError as exc:
        best = None
        st.info(f"No threshold can be suggested: {md(exc)}.")
    if best is not None:
        usable = not best["calls_nobody"] and math.isfinite(best["threshold"])
        suggested = math.floor(min(max(best["threshold"], 0.0), 1.0) * 1000) / 1000 if usable else None
        if usable:
            st.markdown(f"**Least expected cost:** flag at **{suggested:.3f}** (sensitivity "
                        f"{best['sensitivity']:.1%}, specificity {best['specificity']:.1%}; expected cost "
                        f"{best['expected_cost']:.3f} false-alarm units per case).")
        else:
            st.markdown("**Least expected cost:** flag nobody: at this prevalence and cost, the false alarms would "
                        "cost more than the cases found.")
        st.button("Use this threshold", key="triage.use_best", disabled=not usable, on_click=use_threshold,
                  args=(suggested,))
        explain("The threshold where missed cases times their cost plus false alarms, at your prevalence, add up to "
                "the least, judged on this run's test cases.")

    current = {"class": int(cls), "threshold": float(threshold), "prevalence": prevalence / 100, "cost_miss": cost}
    st.button("Save this operating point with the run", type="primary", key="triage.save", on_click=save,
              icon=":material/bookmark:")
    if saved:
        same = saved == current
        st.caption(f"Saved with this run: flag {md(names[int(saved['class'])])} at {float(saved['threshold']):.3f}"
                   + ("" if same else " (the settings above differ; save to replace it)") + ".")

with new_cases:
    new_cases_tab(bundle)

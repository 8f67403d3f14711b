"""The Rare-class triage page's pieces: the run's test probabilities, the operating point
saved with a run, the four cards of an operating point, and the new-cases tab (scored by
`core.predict`, cached per file, run and saved operating point)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import streamlit as st

from app.services import get_store, load_bundle
from app.widgets import explain, saved_annotation, table_height
from core.analysis import softmax
from core.data import DataError, case_id_words
from core.data import PICTURE_SUFFIXES
from core.predict import NewCases, class_notes, predict_new_cases
from core.text import md
from core.viz import prior_estimate_figure

__all__ = ["class_probabilities", "saved_operating_point", "save_operating_point", "point_cards", "new_cases_tab",
           "mix_explanation", "mix_in_words"]

POINT_LABELS = {"sensitivity": "Sensitivity", "specificity": "Specificity", "ppv": "PPV", "npv": "NPV"}
# The class-mix estimators of `core.analysis.estimate_label_shift`, in words for the legend.
ESTIMATOR_WORDS = {"em": "EM on recalibrated probabilities", "bbse": "BBSE, from the model's mistakes"}


@st.cache_data(show_spinner=False, max_entries=32)
def _probabilities(home: str, run_id: str, updated: float) -> np.ndarray:
    return softmax(load_bundle(run_id).artifacts.logits)


def class_probabilities(bundle) -> np.ndarray:
    """The run's test probabilities (n, K), computed once per run."""
    return _probabilities(str(get_store().home), bundle.record.id, bundle.record.updated)


def saved_operating_point(run_id: str) -> dict[str, Any]:
    """The operating point saved with the run ({} if none, or when its file is damaged: the
    damaged-file notice says so)."""
    return saved_annotation(lambda: get_store().annotation(run_id, "operating_point"), {})


def save_operating_point(run_id: str, value: dict[str, Any]) -> None:
    get_store().write_annotation(run_id, "operating_point", value)


def point_cards(point: dict[str, Any], name: str, prevalence: float) -> None:
    """Sensitivity, specificity, PPV and NPV (`core.analysis.operating_point`) with their
    95 % intervals; `prevalence` in percent, as the page asks for it."""
    helps = {"sensitivity": f"Share of the {name} cases that get flagged (does not depend on how common it is).",
             "specificity": "Share of the other cases that are not flagged (does not depend on how common it is).",
             "ppv": f"Of the flagged cases, how many truly are {name}, at {prevalence:g} % prevalence.",
             "npv": f"Of the cases not flagged, how many truly are not {name}, at {prevalence:g} % prevalence."}
    for col, (key, label) in zip(st.columns(4), POINT_LABELS.items()):
        v = point[key]
        known = math.isfinite(v["value"])
        col.metric(label, f"{v['value']:.1%}" if known else "n/a", border=True, help=md(helps[key]),
                   delta=f"{v['low']:.1%} to {v['high']:.1%}" if known and math.isfinite(v["low"]) else None,
                   delta_color="off", delta_arrow="off", delta_description="95 % interval")


@st.cache_data(show_spinner="Scoring the new cases and estimating their class mix…", max_entries=8)
def _predict(home: str, run_id: str, updated: float, filename: str, data: bytes, operating: str) -> NewCases:
    return predict_new_cases(get_store(), run_id, filename, data)


def _predict_uploaded(bundle, filename: str, data: bytes) -> NewCases:
    operating = json.dumps(saved_operating_point(bundle.record.id), sort_keys=True)
    return _predict(str(get_store().home), bundle.record.id, bundle.record.updated, filename, data, operating)


def mix_in_words(result: NewCases) -> str:
    """The estimated share of every class with its interval, and the method, as a sentence;
    a class the batch seems not to hold, or that cannot be estimated, says so."""
    names, notes = result.class_names, class_notes(result.prior, len(result.frame))
    level = result.prior.get("confidence", 0.95)
    parts = []
    for c, name in enumerate(names):
        p, low, high = (float(result.prior[key][c]) for key in ("prior", "low", "high"))
        parts.append(f"**{md(name)}**: {md(notes[c])}" if notes[c] else
                     f"**{md(name)}** {p:.1%} ({low:.1%} to {high:.1%})")
    return (f"**Estimated mix** ({ESTIMATOR_WORDS[result.estimator]}, {level:.0%} intervals): "
            + "; ".join(parts) + ".")


def mix_explanation(result: NewCases) -> str:
    """What the class-mix chart shows and how it was estimated, in plain words."""
    level = result.prior.get("confidence", 0.95)
    main = ("EM (Saerens et al. 2002): it finds the mix that best explains all the probabilities of your cases "
            "together" if result.estimator == "em" else
            "BBSE (Lipton et al. 2018): it counts the model's answers among your cases and undoes the mistakes it "
            "is known to make")
    check = ("BBSE (Lipton et al. 2018), which counts the model's answers and undoes its known mistakes"
             if result.second_estimator == "bbse" else "EM (Saerens et al. 2002) on the recalibrated probabilities")
    return (f"Grey: how common each class is in the run's own data (its {result.reference_cases:,} labelled "
            f"{result.reference_splits} cases). Blue: how common it seems among your new cases. First the model's "
            "probabilities were recalibrated on those labelled cases, so that they mean what they say whatever the "
            f"training did to them; then the mix was estimated by {main}. White: a second method, {check}, as a "
            f"check. The whiskers are {level:.0%} intervals: they allow for the luck of which cases are in your "
            "batch and of which cases the recalibration rested on. When blue and white agree, the estimate is "
            "trustworthy; when they do not, the cases may differ from the run's in more than their mix.")


def new_cases_tab(bundle) -> None:
    """Upload unlabelled cases; show the batch's estimated class mix beside the training mix,
    the predictions before and after re-adjusting to it, and both as CSV."""
    names, run_id = bundle.class_names, bundle.record.id
    st.markdown("Upload cases **without labels**, in the same form as the run's data "
                + ("(a table with the same columns)." if bundle.modality != "image" else
                   "(a .zip of pictures, one picture, or an .npz with an array x).")
                + " The model scores each one and estimates how common each class is in the batch.")
    types = (["csv", "tsv", "txt", "parquet", "npz"] if bundle.modality != "image"
             else ["zip", "npz", *(s.lstrip(".") for s in PICTURE_SUFFIXES)])
    uploaded = st.file_uploader("New cases", type=types, key="triage.upload")
    if uploaded is None:
        st.info("Upload a file to score new cases.")
        return
    try:
        result = _predict_uploaded(bundle, uploaded.name, uploaded.getvalue())
    except (DataError, ValueError) as exc:
        st.error(md(exc))
        return
    for warning in result.warnings:
        st.warning(md(warning), icon="⚠️")
    st.markdown(f"**{len(result.frame):,} cases scored**, each named by its {md(case_id_words(result.id_name))}.")
    first, second = result.estimator, result.second_estimator
    st.plotly_chart(prior_estimate_figure(
        names, result.prior, result.reference_prior, reference_name="the run's own data",
        estimate_name=f"new cases: {ESTIMATOR_WORDS[first]}", check=result.prior["estimates"][second],
        check_name=f"new cases: {ESTIMATOR_WORDS[second]}"), width="stretch", key="triage.mix")
    st.markdown(mix_in_words(result))
    explain(mix_explanation(result))
    before, after = st.columns(2)
    before.markdown("**Predictions as the model gives them**")
    after.markdown("**Re-adjusted to the estimated mix**")
    for where, frame in ((before, result.frame), (after, result.adjusted_frame)):
        where.dataframe(frame, hide_index=True, height=table_height(len(frame)), column_config={
            c: st.column_config.NumberColumn(c, format="%.3f") for c in frame.columns if c.startswith("p(")})
    explain("Left: each case's predicted class, the model's own answer" + (" (the saved operating point applied)"
            if result.operating_point else "") + ", and its probabilities, recalibrated for cases mixed like the "
            f"run's data. Right: the same cases after moving the probabilities to the batch's estimated mix (by "
            f"{ESTIMATOR_WORDS[first]}), which is what they would be if the model had been trained on cases like "
            "these.")
    st.download_button("Predictions (CSV)", result.to_csv(), file_name=f"{run_id}-new-cases.csv", mime="text/csv",
                       key="triage.csv", on_click="ignore", icon=":material/download:",
                       help="Both views side by side, one row per case.")
    st.download_button("Estimated class mix (CSV)", result.prior_csv(),
                       file_name=f"{run_id}-new-cases-mix.csv", mime="text/csv", key="triage.mix_csv",
                       on_click="ignore", icon=":material/download:")

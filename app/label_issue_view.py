"""The Error gallery's review of suspected label issues in the training set: compute them
once (with a progress bar), the per-class figure, and one card per suspected row with its
given and suggested class and a reviewer's verdict."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from app.services import get_store
from app.widgets import explain, saved_annotation, table_height
from core.analysis import (
    TRAIN_REVIEW_MARKS, display_image, label_issue_counts, label_issue_table, read_label_issues, read_train_reviews,
    set_train_review,
)
from core.data import case_words, feature_table
from core.jobs import compute_run_label_issues
from core.store import RunFileDamaged
from core.text import md
from core.viz import label_issue_counts_figure

__all__ = ["label_issue_review"]

PER_PAGE = 8


def _compute(run_id: str) -> None:
    words = "Scoring every training row with models that never saw it…"
    bar = st.progress(0.0, text=words)
    try:
        compute_run_label_issues(get_store(), run_id, progress=lambda done, total: bar.progress(
            done / max(total, 1), text=f"{words} fold {done} of {total}"))
    except ValueError as exc:
        st.error(f"Label issues cannot be found for this run: {md(exc)}")
    finally:
        bar.empty()


def _verdict_form(run_id: str, row: int, given: int, suggested: int, saved: dict | None, key: str) -> None:
    with st.form(key, border=False):
        mark = st.radio("Your verdict", TRAIN_REVIEW_MARKS, horizontal=True, key=f"{key}.mark",
                        index=TRAIN_REVIEW_MARKS.index(saved["mark"]) if saved else None)
        if st.form_submit_button("Save verdict", key=f"{key}.save") and mark is not None:
            try:
                set_train_review(get_store(), run_id, row, mark, given=given, suggested=suggested)
            except RunFileDamaged as exc:
                st.error(f"Not saved: {md(exc)}")
                return
            st.success(f"Saved: {md(mark)}.")


def label_issue_review(run_id: str, bundle: Any, splits: Any, names: Sequence[str], groups: Sequence[str]) -> None:
    """The section: a button to compute issues when the run has none yet, else the review list."""
    st.subheader("Suspected label issues in the training set")
    explain("A wrong label on a rare class teaches the model the wrong thing from very few examples. Here every "
            "training row is scored by models trained on the *other* rows (5 folds): a row whose recorded class "
            "those models confidently contradict is a **suspected label issue**. The *score* is how likely they "
            "find the recorded class (low: suspicious); *suggested* is the class they find most likely. A "
            "suspicion is a reason to look, not proof.")
    store = get_store()
    report = saved_annotation(lambda: read_label_issues(store, run_id), None, where="issues")
    if report is None or len(report.given) != len(splits.y_train):
        if st.button("🔎 Find suspected label issues", key=f"gallery.issues.compute.{run_id}", type="primary",
                     help="Trains a quick model on each of 5 folds of the training split; seconds for tables "
                          "and small pictures."):
            _compute(run_id)
            report = saved_annotation(lambda: read_label_issues(store, run_id), None, where="issues.new")
        if report is None:
            return
    detection = report.detection()
    line = f"**{report.num_flagged}** of {len(report.given)} training rows are suspected."
    if detection and detection["precision"] is not None and detection["recall"] is not None:
        line += (f" This run's labels were corrupted on purpose, so the truth is known: **{detection['recall']:.0%}** "
                 f"of the {detection['noisy_rows']} wrong labels were found, and **{detection['precision']:.0%}** of "
                 f"the suspected rows are truly wrong (picking rows at random: {detection['base_rate']:.0%}).")
    st.markdown(line)
    counts = label_issue_counts(report, names, groups)
    st.plotly_chart(label_issue_counts_figure(counts), width="stretch", key=f"gallery.issues.fig.{run_id}")
    ids, id_name = getattr(splits, "ids_train", None), getattr(splits, "id_name", "row")
    table = label_issue_table(report, names, ids=ids, id_name=id_name)
    if table.empty:
        st.info("No training row is suspected: the quick models agree with every recorded label they were sure of.")
        return
    reviews = saved_annotation(lambda: read_train_reviews(store, run_id), {}, where="issues.reviews")
    table["verdict"] = [reviews.get(int(r), {}).get("mark", "") for r in table["train_row"]]
    st.dataframe(table.drop(columns=[] if report.clean is not None else ["truly_wrong"]), hide_index=True,
                 height=table_height(len(table), 300),
                 column_config={"score": st.column_config.NumberColumn(format="%.3f", help="How likely the "
                                "models find the recorded class; low is suspicious.")})
    image = bundle.modality == "image"
    shown = table.head(PER_PAGE)
    for col, issue in zip(st.columns(2) * (len(shown) // 2 + 1), shown.itertuples(index=False)):
        row = int(issue.train_row)
        with col.container(border=True):
            who = (f"{md(case_words(id_name, ids[row]))} (training row {row})" if ids is not None
                   else f"Training row {row}")
            st.markdown(f"**{who}** · given **{md(issue.given)}** · suggested **{md(issue.suggested)}** "
                        f"· score {issue.score:.3f}")
            if image:
                st.image(display_image(splits.x_train[row]), width=96)
            elif getattr(splits, "texts_train", None) is not None:  # free text: the note itself, as text
                st.markdown(" · ".join(md(t) for t in splits.texts_train[row]))
            values = None if image else feature_table(splits, splits.x_train[row])
            if values is not None and len(values):  # a table's other columns (none in a text-only set)
                st.dataframe(values, hide_index=True, height=table_height(len(values), 200))
            _verdict_form(run_id, row, int(report.given[row]), int(report.suggested[row]), reviews.get(row),
                          key=f"gallery.issues.review.{run_id}.{row}")

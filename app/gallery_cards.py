"""Pieces of the Error gallery page: the run's model on the device, attribution maps with a
progress bar, one card per case, the training cases most like it, and a reviewer's verdict."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from app.fit_tables import wrapping_table
from app.services import get_store
from app.widgets import explain, saved_annotation, table_height
from core.analysis import (
    REVIEW_MARKS, case_attributions, clear_review, display_image, load_run_model, neighbour_values, rare_class_errors,
    read_reviews, report_annotations, reviews_csv, reviews_table, set_review,
)
from core.store import RunFileDamaged, RunStore
from core.text import md
from core.train import resolve_device
from core.viz import attribution_pair_figure, feature_attribution_bars, image_with_attribution

__all__ = ["DEVICE", "run_model", "attribution_maps", "case_card", "neighbour_panel", "review_form",
           "review_summary", "saved_reviews", "report_extras"]

NEIGHBOUR_HEADERS = {"train_row": "training row", "distance": "distance (as the model sees it)"}
DEVICE = str(resolve_device("auto"))  # the GPU when there is one
FEW_VALUES = 16  # a case with at most this many features shows them all, wrapped; more scroll in a grid


@st.cache_resource(show_spinner="Loading the trained model…", max_entries=4)
def _model(home: str, run_id: str):
    return load_run_model(RunStore(home), run_id, device=DEVICE)


def run_model(run_id: str):
    """The run's trained model on DEVICE, loaded once per run; FileNotFoundError without one."""
    return _model(str(get_store().home), run_id)


def attribution_maps(run_dir: Path, model, inputs: np.ndarray, sample_ids: Sequence[int],
                     targets: Mapping[str, Sequence[int]], *, method: str, params: dict, what: str) -> dict:
    """`case_attributions` with a progress bar; bad method settings stop the page with the reason."""
    bar = st.progress(0.0, text=f"Computing {what}…")
    try:
        return case_attributions(run_dir, model, inputs, list(sample_ids), method=method, targets=targets,
                                 params=params, device=DEVICE,
                                 progress=lambda d, t: bar.progress(d / max(t, 1), text=f"Computing {what}… {d}/{t}"))
    except ValueError as exc:
        st.error(f"These method settings do not work here: {md(exc)}")
        st.stop()
    finally:
        bar.empty()


def case_card(case: Any, x: np.ndarray, probs: np.ndarray, maps: Mapping[str, np.ndarray], *,
              label: Callable[[int], str], names: Sequence[str], features: Sequence[str], image: bool,
              chosen: int | None, opacity: float | None, chart_key: str,
              values: pd.DataFrame | None = None, review: Mapping[str, str] | None = None,
              below: Callable[[], None] | None = None) -> None:
    """One case: the input, true vs predicted with the model's confidence and top-3
    probabilities, and the maps for the true and the predicted class (or the chosen one)
    side by side. `values` (a table's `feature_table`) shows the row in the file's units
    beside the standardised values; `review` is a saved verdict on the case; `below` draws
    more inside the card (nearest training cases, the review form)."""

    def chart(fig, name: str) -> None:
        st.plotly_chart(fig, width="stretch", key=f"{chart_key}.{case.sample_id}.{name}")

    with st.container(border=True):
        left, right = st.columns([1, 3] if image else [1, 2])
        top3 = ", ".join(f"{md(names[k])} ({probs[k]:.0%})" for k in np.argsort(-probs)[:3])
        left.markdown(f"**{md(case.case)}** · {'✅ right' if case.correct else '❌ wrong'}  \n"
                      f"True: **{md(label(case.true))}**  \nPredicted: **{md(label(case.pred))}**  \n"
                      f"Confidence in its answer: **{case.confidence:.0%}**  \nMost likely: {top3}")
        if review:
            note = f": {md(review['note'])}" if review.get("note") else ""
            left.markdown(f"🏷️ Reviewed: **{md(review['mark'])}**{note}")
        if image:
            left.image(display_image(x), caption="the input", width=160)
        table = None if image else values if values is not None else pd.DataFrame({"feature": features,
                                                                                    "standardised": x})
        panels = ([("chosen", "towards", chosen)] if chosen is not None else
                  [("true", "true:", case.true)] + ([("pred", "predicted:", case.pred)] if not case.correct else []))
        with right:
            if image and len(panels) == 2:
                chart(attribution_pair_figure(x, maps["true"], maps["pred"], label(case.true), label(case.pred),
                                              opacity=opacity).update_layout(height=300), "pair")
            else:
                for col, (which, word, k) in zip(st.columns(2), panels):
                    title = f"{word} {label(k)}"
                    with col:
                        chart(image_with_attribution(x, maps[which], opacity, title=title).update_layout(
                            height=300, margin=dict(l=10, r=10, t=40, b=10)) if image else
                              feature_attribution_bars(maps[which], features, top=8, title=title), which)
        if table is not None and len(table):  # the whole card's width: every column in view, no word broken
            _case_values(st, table)
        if below is not None:
            below()


def _case_values(where, table: pd.DataFrame) -> None:
    """The case's own values across the card: a few as a table, every column in view (in the
    card's narrow first column a grid cut its last column off), many in a scrolling grid."""
    if len(table) > FEW_VALUES:
        where.dataframe(table, hide_index=True, height=table_height(len(table), 250), column_config={
            "standardised": st.column_config.NumberColumn("standardised", format="%.2f")})
    else:
        shown = table.assign(**({"standardised": table["standardised"].map("{:.2f}".format)}
                                if "standardised" in table else {}))
        wrapping_table(shown.set_index(shown.columns[0]), where)
    where.caption(("value: as in the data file (yes / no: whether the row has that category). " if "value" in table
                   else "") + "standardised: what the model saw (0 is the training average, ±1 one typical spread "
                  "away).")


def neighbour_panel(case: Any, near: pd.DataFrame, train_inputs: Callable[[np.ndarray], np.ndarray] | None, *,
                    label: Callable[[int], str], image: bool, x: np.ndarray, splits: Any, reason: str | None,
                    train_names: Callable[[np.ndarray], list[str]] | None = None,
                    train_texts: Callable[[np.ndarray], list[str]] | None = None) -> None:
    """The stored training cases the model finds most like this one, of its true class and
    of the class it predicted, as pictures or rows in the file's units. `near` holds this
    case's rows of `nearest_training_cases`; `train_inputs(train_rows)` gives the inputs of
    those stored training cases and `train_names(train_rows)` their names as a person finds
    them ("patient_id P-00412"); either is None when the stored cases cannot be matched to
    the data any more. `train_texts(train_rows)` gives their free text, shown above their values."""
    with st.expander("Most similar training cases", expanded=not case.correct):
        if reason:
            st.caption(reason)
            return
        sides = [("true", case.true, "its true class")]
        if not case.correct:
            sides.append(("pred", case.pred, "the predicted class"))
        # pictures side by side; tables of values one under the other, each the panel's width
        places = st.columns(len(sides)) if image else [st.container() for _ in sides]
        for col, (side, k, what) in zip(places, sides):
            rows = near[near["side"] == side]
            col.markdown(f"**{what.capitalize()}: {md(label(k))}**")
            if rows.empty:
                col.caption("No training case of this class was stored.")
                continue
            who = train_names(rows["train_row"].to_numpy()) if train_names is not None else None
            words = [f"{who[i] if who else f'#{i + 1}'}, distance {d:.2f}" for i, d in enumerate(rows["distance"])]
            if train_inputs is None:
                wrapping_table(rows[["train_row", "distance"]].rename(columns=NEIGHBOUR_HEADERS)
                               .set_index(NEIGHBOUR_HEADERS["train_row"]), col)
                continue
            inputs = train_inputs(rows["train_row"].to_numpy())
            if train_texts is not None:  # free text: the training notes themselves, most similar first
                for who, text in zip(words, train_texts(rows["train_row"].to_numpy())):
                    col.markdown(f"*{md(who)}*: {md(text)}")
            if image:
                col.image([display_image(xi, size=72) for xi in inputs], caption=words, width=72)
            elif len(table := neighbour_values(splits, x, inputs, words)):  # none when the text is all there is
                wrapping_table(table.set_index(table.columns[0]), col)  # its neighbours' headers wrap
        st.caption("Distance 0 means the model sees the two cases as identical. If this case sits closer to the "
                   "predicted class's training cases than to its own class's, the model had a reason for its answer: "
                   "look for a wrong label or a genuinely ambiguous case. If it looks like its own class, the "
                   "model simply erred.")


def review_form(run_id: str, sample_id: int, saved: Mapping[str, str] | None, *, key: str) -> None:
    """A reviewer's verdict on one case and a note, saved with the run when submitted."""
    status = f"{key}.status"

    def save() -> None:
        mark, note = st.session_state.get(f"{key}.mark"), st.session_state.get(f"{key}.note") or ""
        if mark is None:
            st.session_state[status] = ("warning", "Choose a verdict before saving.")
            return
        try:
            set_review(get_store(), run_id, int(sample_id), mark, note)
        except (ValueError, RunFileDamaged) as exc:  # a damaged reviews file: the notice above says what to do
            st.session_state[status] = ("error", f"Not saved: {md(exc)}")
            return
        st.session_state[status] = ("success", f"Saved: {md(mark)}.")

    def remove() -> None:
        try:
            clear_review(get_store(), run_id, int(sample_id))
        except RunFileDamaged as exc:
            st.session_state[status] = ("error", f"Not removed: {md(exc)}")
            return
        st.session_state[status] = ("success", "Review removed.")

    with st.expander("Review this case" + (f" (saved: {saved['mark']})" if saved else ""), expanded=False):
        with st.form(key, border=False):
            st.radio("Your verdict", REVIEW_MARKS, index=REVIEW_MARKS.index(saved["mark"]) if saved else None,
                     horizontal=True, key=f"{key}.mark",
                     captions=["the recorded answer is probably a data mistake", "it could fairly be either class",
                               "the label is right, the model is wrong"])
            st.text_area("Note (optional)", value=saved["note"] if saved else "", key=f"{key}.note", height=80,
                         placeholder="What you saw, for whoever reads the report")
            c1, c2 = st.columns(2)
            c1.form_submit_button("Save review", on_click=save, key=f"{key}.save", type="primary")
            if saved:
                c2.form_submit_button("Remove review", on_click=remove, key=f"{key}.remove")
        if status in st.session_state:
            kind, text = st.session_state.pop(status)
            getattr(st, kind)(text)


def saved_reviews(run_id: str) -> dict[int, dict[str, str]]:
    """The run's case reviews; none, with the damaged-file notice, when its file is damaged."""
    return saved_annotation(lambda: read_reviews(get_store(), run_id), {})


def report_extras(run_id: str) -> dict[str, Any]:
    """The saved operating point for the HTML report, and the damaged files it leaves out."""
    saved = report_annotations(get_store(), run_id)
    return {"operating_point": saved["operating_point"], "damaged": saved["damaged"]}


def review_summary(run_id: str, art, names: Sequence[str], groups: Sequence[str],
                   reviews: Mapping[int, Mapping[str, str]]) -> pd.DataFrame:
    """The run's reviews so far: how many of its rare-class mistakes are reviewed, what the
    marks mean, the table and its CSV. Returns the table (the report includes it)."""
    st.subheader("Case review")
    rare = rare_class_errors(art, groups)
    done = reviews_table(reviews, art, names)
    st.markdown(f"**{len(done)}** case{'s' if len(done) != 1 else ''} reviewed; this run makes **{len(rare)}** "
                f"mistakes on rare (tail and medium) classes, **{int(rare['sample_id'].isin(list(reviews)).sum())}** "
                "of them reviewed so far.")
    explain("Open **Review this case** on any card to record your verdict: *label looks wrong* (the recorded answer "
            "is probably a mistake in the data), *ambiguous* (the case could fairly be either class) or *model error* "
            "(the label is right and the model is wrong), with a note. Verdicts are kept with the run, listed here, "
            "and go into the HTML report and the CSV below.")
    if len(done):
        st.dataframe(done, hide_index=True,
                     column_config={"confidence": st.column_config.NumberColumn(format="percent")})
    st.download_button(f"⬇️ Download the {len(done)} case reviews as CSV", data=reviews_csv(done), on_click="ignore",
                       file_name=f"{run_id}-reviews.csv", mime="text/csv", key="gallery.reviews_csv",
                       disabled=not len(done))
    return done

"""The Lessons page's pieces: which lesson (in the address as ?lesson=NAME), its Run button and
live progress, and the verdict drawn from its finished runs (cached until a run changes)."""

from __future__ import annotations

import json
import math

import streamlit as st

from app import state

from app.fit_tables import stacked_cards
from app.services import get_store, resume_sweep, start_sweep_in_background
from app.widgets import explain, flash
from core.config import DataConfig
from core.data import list_uploads, source_label
from core.lessons import (
    LESSONS, Lesson, Verdict, create_lesson, format_interval, lesson_state, lesson_sweep, lesson_verdict,
    list_lessons, own_data_choices, state_of, takes_own_data,
)
from core.run_words import format_seconds
from core.text import md
from core.viz import lesson_figure

__all__ = ["INTRO", "pick_lesson", "progress_panel", "load_verdict", "show_verdict", "show_charts", "show_findings",
           "show_questions"]

KEY = "lessons."
INTRO = ("Each lesson takes one published claim about class imbalance and tests it here, on small built-in data, "
         "with several seeds. The verdict is computed from the runs: **holds here** when the interval of the "
         "difference lies on the side the paper claims, **does not hold here** when it lies on the other side, "
         "**within noise** when it covers zero, and **too few runs** or **cannot tell** (with the reason) when the "
         "runs cannot decide. A lesson's comparisons are tested together (Holm's adjustment), so a claim holds only "
         "when it would still hold after looking at all of them. Small data and few seeds can disagree with a "
         "paper: that is part of the lesson.")
SIZES = {"full": "Class-ready (about a minute)", "tiny": "Quick look (seconds, rough numbers)"}
STATUS_BOX = {"holds": st.success, "does not hold": st.error}


def _default_size(name: str) -> str:
    """The class-ready size, unless only the quick look has runs (e.g. a teacher's preview)."""
    store = get_store()
    full, tiny = (lesson_state(store, create_lesson(name, s)) for s in ("full", "tiny"))
    return "tiny" if full["done"] == 0 and tiny["done"] > 0 else "full"


def pick_lesson() -> Lesson:
    """Lesson and size pickers (display names); the address keeps the lesson (?lesson=NAME)."""
    names = list_lessons()
    in_address = st.query_params.get("lesson")
    if in_address in names and KEY + "name" not in st.session_state:
        st.session_state[KEY + "name"] = in_address
    left, right = st.columns([3, 2])
    name = left.selectbox("Lesson", names, key=KEY + "name", format_func=lambda n: LESSONS.info(n).label,
                          help="Each lesson tests one claim from a paper on real runs.")
    st.query_params["lesson"] = name
    size_key = f"{KEY}size.{name}"
    if size_key not in st.session_state:
        st.session_state[size_key] = _default_size(name)
    size = right.radio("Size", list(SIZES), key=size_key, format_func=SIZES.get, horizontal=True,
                       help="The quick look trains 2 seeds for 2 epochs: it shows the machinery, not numbers to "
                            "teach from. Run the class-ready size before class (or `tailscope lesson NAME "
                            "--prerun`) and it opens at once.")
    data = own_data_picker(name) if takes_own_data(name) else None
    return create_lesson(name, size, data)


@st.cache_data(show_spinner="Checking the stored uploads…", max_entries=8)
def _own_data(home: str, name: str, saved_json: str, stamp: tuple) -> tuple[list[str], list[str]]:
    usable, reasons = own_data_choices(get_store(), name, json.loads(saved_json))
    return [c.model_dump_json() for c in usable], reasons


def data_words(data: DataConfig) -> str:
    """An upload as the lesson uses it: file, label column and its stages in order."""
    return (f"{source_label(data.source)} · label {data.label_column or '(guessed)'} · stages "
            + " → ".join(data.ordinal or []))


def own_data_picker(name: str) -> DataConfig | None:
    """For a lesson that can run on a person's data: its built-in set or a stored upload whose
    label is marked as ordered stages; the other uploads listed with the reason each cannot
    be used. Returns the chosen upload's config, or None for the built-in set."""
    store = get_store()
    stamp = (len(store.list_runs()), tuple(u.source for u in list_uploads()))
    saved = st.session_state.get(state.DATA_CONFIG) or {}  # the Data page's choice (restored from disk)
    usable, reasons = _own_data(str(store.home), name, json.dumps(saved, sort_keys=True, default=str), stamp)
    options = ["", *usable]
    choice = st.radio("Data", options, key=f"{KEY}data.{name}", horizontal=True,
                      format_func=lambda o: "the built-in set" if not o else md(data_words(
                          DataConfig.model_validate_json(o))),
                      help="The lesson's own generated data, or one of your uploaded tables whose label is marked as "
                           "ordered stages on the Data page.")
    if reasons:
        with st.expander(f"Uploads this lesson cannot use ({len(reasons)})"):
            for reason in reasons:
                st.markdown(f"- {md(reason)}")
    elif not usable:
        st.caption("To run it on your own table: upload it on the Data page, mark its label's values as ordered stages "
                   "(first to last, the rare event last) and save it for training.")
    return DataConfig.model_validate_json(choice) if choice else None


def _start(lesson: Lesson) -> None:
    sweep_id, to_run = start_sweep_in_background(lesson.spec)
    flash(f"Training {to_run} run(s) in the background; finished runs are kept." if to_run > 0 else
          "Already training." if to_run < 0 else "Nothing left to train.")


def _resume(sweep_id: str) -> None:
    waiting = resume_sweep(sweep_id)
    flash(f"Resumed: {waiting} run(s) to train." if waiting else "Nothing left to train.")


def progress_panel(lesson: Lesson) -> dict:
    """Run / Resume buttons and a progress bar that looks every 2 s while the lesson trains,
    then reruns the page so the verdict appears. The page's state, progress, time left and
    verdict all come from one read of the lesson's sweep (its "record")."""
    record = lesson_sweep(get_store(), lesson)
    state = {**state_of(lesson, record), "record": record}
    running = state["status"] in ("running", "queued")
    st.fragment(run_every=2.0 if running else None)(_progress)(lesson, state)
    return state


def _progress(lesson: Lesson, state: dict) -> None:
    """The progress box as the page read it; a poll that finds the sweep moved on reruns the
    whole page, so nothing is drawn from two different reads."""
    fresh = lesson_state(get_store(), lesson)
    if (fresh["status"], fresh["done"]) != (state["status"], state["done"]):
        st.rerun()
    with st.container(border=True):
        if state["status"] == "not run":
            st.markdown(f"Not run yet: **{state['total']} trainings**. They run in the background; you can leave "
                        "this page and come back.")
            st.button("Run this lesson", key=KEY + "run", type="primary", on_click=_start, args=(lesson,),
                      icon=":material/play_arrow:")
            return
        total = max(state["total"], 1)
        st.progress(state["done"] / total, text=f"**{state['status']}** · {state['done']} of {state['total']} "
                                                "runs done")
        if state["status"] in ("stopped", "failed", "cancelled"):
            st.button("Resume", key=KEY + "resume", on_click=_resume, args=(state["sweep"],),
                      icon=":material/play_arrow:", help="Trains the runs that did not finish; finished ones are kept.")
        elif state["status"] == "running" and state["done"] < state["total"]:
            record = state["record"]
            started = [r.started for r in record.runs if r.started]
            finished = [r.finished for r in record.runs if r.finished and r.status == "done"]
            if started and finished:
                rate = len(finished) / max(max(finished) - min(started), 1e-9)
                st.caption(f"About {format_seconds((state['total'] - state['done']) / rate)} left.")


@st.cache_data(show_spinner="Reading the lesson's runs…", max_entries=32)
def _verdict(home: str, name: str, size: str, stamp: tuple, _record) -> Verdict:
    return lesson_verdict(get_store(), create_lesson(name, size), _record)


def load_verdict(lesson: Lesson, state: dict) -> Verdict:
    """The verdict of the runs in the page's one read of the sweep (`state["record"]`),
    recomputed only when one of them changed."""
    store = get_store()
    record = state.get("record") or store.get_sweep(state["sweep"])
    stamp = tuple((r.id, r.status, r.updated) for r in record.runs)
    return _verdict(str(store.home), lesson.name, lesson.size, stamp, record)


def show_verdict(verdict: Verdict, state: dict) -> None:
    box = STATUS_BOX.get(verdict.status, st.info)
    first = verdict.findings[0] if verdict.findings else None
    level = f"{first.comparison.confidence:.1%}" if first and first.comparison else "95 %"
    box(f"**Verdict: {md(verdict.headline)}**" + (f"  \n{md(first.label)} ({md(first.measure)}), {level} interval "
                                                   f"over {first.n} paired runs." if first else ""))
    if state["done"] < state["total"]:
        st.warning(f"Only {state['done']} of {state['total']} runs have finished: the verdict may change.")
    st.markdown(md(verdict.caption))


def show_charts(verdict: Verdict, lesson: Lesson) -> None:
    for i, chart in enumerate(verdict.charts):
        st.plotly_chart(lesson_figure(chart.frame, kind=chart.kind, title=chart.title, x_title=chart.x_title,
                                      y_title=chart.y_title, log_x=chart.log_x, reference=chart.reference,
                                      reference_label=chart.reference_label, bounds=chart.bounds),
                        key=f"{KEY}chart.{lesson.name}.{lesson.size}.{i}", width="stretch")
    explain("Dots and lines: means over the seeds (or folds); bars and bands: their 95 % intervals.")


def _p(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def show_findings(verdict: Verdict) -> None:
    """Every comparison as a card, readable on a projector: the difference with its interval,
    the raw and the adjusted p, and the words read from them (a grid of these sentences
    hid the difference and the verdict behind a sideways scroll at 1024 px)."""
    rows = [{"comparison": f"{f.label} ({f.measure}, {f.n} paired runs)",
             "difference [interval]": format_interval(f.estimate, f.ci)
             if f.status not in ("too few runs", "cannot tell") else format_interval(f.estimate, (math.nan,) * 2),
             "p (adjusted)": f"{_p(f.p_value)} ({_p(f.p_adjusted)})",
             "verdict": f.reason or f.status} for f in verdict.findings]
    stacked_cards(rows, "comparison")
    adjustment = next((f.comparison.adjustment for f in verdict.findings if f.comparison is not None
                       and f.comparison.adjustment), "")
    if adjustment:
        explain(f"p: each comparison alone; adjusted: {adjustment} (Holm), the one the verdict reads. The intervals "
                "are widened to match, so a verdict of *holds* always comes with an interval clear of zero.")


def show_questions(lesson: Lesson) -> None:
    st.subheader("Questions for the class")
    st.markdown("\n".join(f"{n}. {md(q)}" for n, q in enumerate(lesson.questions, 1)))
    explain(f"**At full scale, on a GPU.** {md(lesson.gpu_note)}")

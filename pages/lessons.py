"""Lessons: watch a published claim about imbalance hold, or fail, on real runs."""

import streamlit as st

from app import lesson_view as lv
from app.widgets import explain
from core.text import md

st.title("📚 Lessons")
st.markdown(lv.INTRO)
lesson = lv.pick_lesson()

st.subheader(lesson.display)
st.markdown(f"**The claim.** {md(lesson.claim)}")
st.caption(f"Paper: {md(lesson.paper)}")
explain(f"**How it is tested here.** {md(lesson.setup)}")
state = lv.progress_panel(lesson)
if state["done"] == 0:
    lv.show_questions(lesson)
    st.stop()

st.subheader("What the runs say")
verdict = lv.load_verdict(lesson, state)
lv.show_verdict(verdict, state)
lv.show_charts(verdict, lesson)
with st.expander("Every comparison, with its interval", expanded=True):
    lv.show_findings(verdict)
    explain("Each card: a difference between two settings on the same seeds (or folds), its 95 % interval, and what "
            "that interval says about the paper's claim.")
lv.show_questions(lesson)

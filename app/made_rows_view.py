"""Rows a resampler makes up, shown apart from the real ones: the Data page's preview of what
a chosen resampler would add to the training rows, and the Results page's section on the
rows a run's resampler made (how many, how many near copies of a real row, and whether a
model trained on them alone still works on real rows)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from app.train_forms import plugin_picker, resampling_preview, synthetic_checks_words
from app.widgets import explain, table_height
from core.config import DataConfig
from core.methods import RESAMPLERS
from core.text import md
from core.viz import resampling_figure

__all__ = ["MAKERS", "added_rows_words", "resampler_preview_panel", "made_rows_section", "made_rows_numbers"]

MAKERS = tuple(n for n in RESAMPLERS.names() if RESAMPLERS.info(n).capabilities.get("kind") == "over")


def added_rows_words(counts: pd.DataFrame, made_by: str) -> str:
    """What a resampler would add, in one plain sentence (Markdown, names escaped): the made
    rows per class, out of the real ones."""
    made = counts[counts["synthetic"] > 0]
    if made.empty:
        return f"{md(made_by)} would add no rows here: every class already has the count it aims for."
    parts = ", ".join(f"{int(r.synthetic):,} of class **{md(r['class'])}** (beside {int(r.before):,} real)"
                      for _, r in made.iterrows())
    return (f"{md(made_by)} would add **{int(made['synthetic'].sum()):,} made-up rows** to the "
            f"{int(counts['before'].sum()):,} real training rows: {parts}. They are not real cases; training sees "
            "them, validation and test rows never do.")


def resampler_preview_panel(data: DataConfig, *, seed: int, key: str = "data.made_rows") -> None:
    """For a table: pick a resampler that makes rows and see what it would add, the made rows
    apart from the real ones. Fitted only on request (a GAN takes seconds to minutes)."""
    with st.expander("What a resampler would add (optional)"):
        st.caption("A resampler makes up extra training rows for the rare classes. Pick one to see how many rows it "
                   "would make and where they sit among the real ones; the Train page uses the same choice.")
        chosen = plugin_picker("Resampler", RESAMPLERS, key, options=MAKERS, default="smote")
        info = RESAMPLERS.info(chosen["name"])
        if not st.toggle("Show what it would add", key=f"{key}.show",
                         help="Fits the resampler on the training split with the settings above."):
            return
        try:
            view, counts, checks = resampling_preview(data, chosen, seed)
        except ValueError as exc:
            st.error(md(exc))
            return
        st.markdown(added_rows_words(counts, info.label))
        st.plotly_chart(resampling_figure(view, counts["class"].tolist(), info.label), width="stretch",
                        key=f"{key}.figure")
        st.dataframe(counts.rename(columns={"before": "real rows", "removed": "real rows removed",
                                            "synthetic": "made rows", "after": "rows training sees"}),
                     hide_index=True, width="stretch", height=table_height(len(counts), 300))
        explain("Dots are real training rows, open diamonds the rows it would make up, each in its class's colour, "
                "flattened onto the table's two main directions of variation.")
        if checks:
            explain(synthetic_checks_words(checks, "validation"))


def made_rows_numbers(checks: dict[str, Any]) -> pd.DataFrame:
    """The stored checks as a small table for the Results page."""
    rows = [("rows made", f"{checks['made']:,}"),
            ("near copies of a real row", f"{checks['flagged']:,} ({checks['share_flagged']:.0%})"),
            ("trained on real rows", _score(checks.get("train_real"))),
            ("trained on made rows only", _score(checks.get("train_synthetic"))),
            ("trained on both", _score(checks.get("train_both")))]
    return pd.DataFrame(rows, columns=["check", "value"])


def _score(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{value:.3f}"


def made_rows_section(metrics: dict[str, Any], made_by: str) -> None:
    """Results: the rows the run's resampler made and their checks, when it made any."""
    checks = metrics.get("synthetic_checks")
    if not checks:
        return
    st.subheader("Rows the resampler made up")
    st.markdown(f"{md(made_by)} made **{checks['made']:,}** training rows for the rare classes; they are marked apart "
                "on the Geometry page's training map and never entered the validation or test rows.")
    st.dataframe(made_rows_numbers(checks), hide_index=True, width="content")
    explain(synthetic_checks_words(checks, "test") + " The last three are balanced accuracy on this run's real test rows "
            "(train on made rows, test on real ones).")

"""Small tables that never cut a word: at 1024x768 (the sidebar open, classroom type) the
main column is about 560 px wide, and a data grid that is wider scrolls sideways, hiding its
right-hand columns (a difference, a verdict, the false alarms) behind a scroll bar nobody
sees on a projector. Small tables are drawn instead as HTML tables whose cells wrap, or as
one card per row when a row holds sentences; big interactive grids choose their columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from app.classroom import CLASSROOM
from core.text import md

# Cells wrap at spaces; numbers and short words keep together; the table never outgrows its column.
_TABLE_CSS = """<style>
[data-testid="stTable"] table { table-layout: auto; width: 100%; }
[data-testid="stTable"] th, [data-testid="stTable"] td { white-space: normal; overflow-wrap: anywhere;
  word-break: normal; min-width: 3.5em; }
</style>"""


def as_text(value: Any) -> Any:
    """A text cell, header or index entry escaped (`st.table` reads Markdown in them, so a run
    named `**x**` would show bold); numbers and the rest unchanged."""
    return md(value) if isinstance(value, str) else value


def wrapping_table(frame: pd.DataFrame | Any, where=st) -> None:
    """`frame` (a DataFrame or a pandas Styler) as an HTML table whose cells wrap: every
    column stays in view at any width, for tables of a few rows and columns. Text shows as
    written, never as Markdown."""
    if isinstance(frame, pd.DataFrame):
        frame = frame.map(as_text).rename(index=as_text, columns=as_text)
    # A Styler is drawn from its data's own labels (its display formats do not reach them),
    # so whoever styles a table escapes its text first (`app.compare_view.legend_styler`).
    where.html(_TABLE_CSS)
    where.table(frame)


def stacked_cards(rows: Sequence[Mapping[str, Any]], title: str, where=st) -> None:
    """One bordered card per row: `title`'s value in bold, then each other field as
    "field: value" on its own line. For rows of sentences, which no table column fits."""
    for row in rows:
        with where.container(border=True):
            lines = [f"**{md(row[title])}**"] + [f"{md(key)}: {md(value)}" for key, value in row.items()
                                                 if key != title and value not in (None, "")]
            st.markdown("  \n".join(lines))


# Characters of grid text beside the sidebar at 1024 px: a ~665 px column at ~8.5 px a
# character in classroom type, ~700 px at ~7.5 px otherwise (each column with its padding).
GRID_CHARS = {"classroom": 70, "normal": 84}


def grid_chars() -> int:
    """How many characters of grid text fit beside the sidebar at 1024 px in this session."""
    return GRID_CHARS["classroom" if st.session_state.get(CLASSROOM) else "normal"]


def columns_that_fit(frame: pd.DataFrame, first: Sequence[str], rest: Sequence[str], *,
                     budget: int | None = None, reserved: int = 0) -> tuple[list[str], list[str]]:
    """(shown, hidden) of `rest`: the columns that fit after `first` in a data grid of about
    `budget` characters (default `grid_chars()`; a column counts its header's or longest shown value's length, and
    two for its padding; `reserved` holds what non-text columns such as a bar take). The
    hidden ones wait in the grid's "Show/hide columns" menu, so the grid never scrolls
    sideways at 1024 px; at least one of `rest` is always shown."""
    def width(column: str) -> int:
        values = frame[column].head(200)
        texts = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in values if v is not None]
        return 2 + max([len(str(column))] + [len(t) for t in texts])

    budget = grid_chars() if budget is None else budget
    used = reserved + sum(width(c) for c in first)
    shown: list[str] = []
    for column in rest:
        used += width(column)
        if shown and used > budget:
            break
        shown.append(column)
    return shown, [c for c in rest if c not in shown]

"""Titles that fit their chart: plotly clips a title or axis title longer than the figure
(at 1024 px, two charts side by side are about 280 px wide each), so long ones are broken
into lines at spaces."""

from __future__ import annotations

from core.text import plotly_text


def wrap_title(text: object, width: int = 30) -> str | None:
    """`text` escaped for plotly and broken with `<br>` into lines of at most `width`
    characters (a longer word keeps its own line)."""
    if text is None:
        return None
    lines: list[str] = []
    for word in str(text).split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "<br>".join(plotly_text(line) for line in lines)

"""Text with its words coloured by attribution, and the per-class statistics of a text
column, for the Error gallery, its HTML report and the Data page.

A note is whatever a person typed, so it is escaped before it meets HTML: every character
of it reaches the page as text, with markdown and Streamlit directives neutralised too
(entities for every ASCII punctuation character), so the same string is safe in `st.html`,
in markdown and in the offline report.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.text import plotly_text

__all__ = ["escape_text", "highlighted_text_html", "text_length_figure", "text_hover"]

_TOWARDS, _AWAY = (214, 39, 40), (31, 119, 180)  # red pushes towards the class, blue away: as the maps


def escape_text(text: str) -> str:
    """Every character of `text` as itself in HTML and markdown alike: ASCII punctuation
    as numeric entities (no tag, no link, no emphasis, no `:red[...]`), newlines as spaces."""
    out = []
    for ch in str(text):
        if ch in "\r\n\t":
            out.append(" ")
        elif ord(ch) < 128 and not ch.isalnum() and ch != " ":
            out.append(f"&#{ord(ch)};")
        else:
            out.append(ch)
    return "".join(out)


def highlighted_text_html(text: str, spans: Sequence[tuple[int, int]], scores: np.ndarray, *, title: str = "",
                          scale: float | None = None) -> str:
    """`text` with each piece at `spans` shaded by its score: red towards the class, blue
    away, stronger for larger |score| (relative to `scale`, default the largest here).
    Each piece's score is in its tooltip. Returns one `<div>` of escaped text."""
    scores = np.asarray(scores, dtype=np.float64)
    top = scale if scale is not None and scale > 0 else float(np.max(np.abs(scores), initial=0.0)) or 1.0
    parts, at = [], 0
    for (start, stop), score in zip(spans, scores, strict=True):
        parts.append(escape_text(text[at:start]))
        alpha = min(abs(score) / top, 1.0) * 0.75
        colour = _TOWARDS if score > 0 else _AWAY
        parts.append(f'<span title="{score:+.3f}" style="background-color: rgba({colour[0]}, {colour[1]}, '
                     f'{colour[2]}, {alpha:.2f}); border-radius: 3px; padding: 0 2px">'
                     f"{escape_text(text[start:stop])}</span>")
        at = stop
    parts.append(escape_text(text[at:]))
    heading = f'<div style="font-size: 0.85em; color: #555">{escape_text(title)}</div>' if title else ""
    return f'<div style="line-height: 1.9; margin-bottom: 0.6em">{heading}{"".join(parts)}</div>'


def text_length_figure(stats: pd.DataFrame, title: str = "Words per text, by class") -> go.Figure:
    """Median words per text of each class with the middle half as a bar (`text_statistics` rows)."""
    fig = go.Figure(go.Bar(
        x=[plotly_text(c) for c in stats["class"]], y=stats["median words"],
        error_y=dict(type="data", symmetric=False, array=stats["upper quartile"] - stats["median words"],
                     arrayminus=stats["median words"] - stats["lower quartile"]),
        hovertemplate="%{x}<br>median %{y} words<extra></extra>", marker_color="#4c78a8"))
    return fig.update_layout(title=plotly_text(title), yaxis_title="words per text (median, middle half)",
                             xaxis_title="class", height=320, margin=dict(t=50, b=40))


def text_hover(texts: Sequence[str], width: int = 60, limit: int = 300) -> list[str]:
    """Each text as plotly hover text: escaped, cut after `limit` characters, wrapped at
    about `width` characters a line (`<br>` between lines)."""
    import textwrap

    out = []
    for text in texts:
        text = " ".join(str(text).split())
        short = text if len(text) <= limit else text[:limit].rstrip() + "…"
        out.append("<br>".join(plotly_text(line) for line in textwrap.wrap(short, width)) or "(empty)")
    return out

"""Figures of a lesson: a tidy frame (x, series, y, low, high) in, a plotly Figure out.

A lesson's analysis computes every number and interval; these builders only place them:
dots with 95 % interval bars per method ("bars"), lines with shaded bands along a numeric
setting ("lines"), or raw points ("scatter"), with an optional dashed reference line.
"""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

from core.text import plotly_text
from core.viz._sweep_figs import SWEEP_COLORS

__all__ = ["lesson_figure"]

_KINDS = ("bars", "lines", "scatter")


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha})"


def _finite(value) -> bool:
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)


def lesson_figure(frame: pd.DataFrame, *, kind: str, title: str = "", x_title: str = "", y_title: str = "",
                  log_x: bool = False, reference: float | None = None, reference_label: str = "",
                  bounds: tuple[float, float] | None = None) -> go.Figure:
    """One trace per series. "bars": categorical x, a dot per cell with its interval as an
    error bar, series side by side; "lines": numeric x, the mean joined with a band for the
    interval; "scatter": every point as given. `bounds`: what the measure can take; an
    interval reaching past them (a t-interval over few seeds can) is drawn cut there."""
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {', '.join(_KINDS)}, got {kind!r}")
    if bounds is not None and not frame.empty:
        frame = frame.assign(low=frame["low"].clip(*bounds), high=frame["high"].clip(*bounds))
    fig = go.Figure()
    series = list(dict.fromkeys(frame["series"])) if not frame.empty else []
    for i, name in enumerate(series):
        rows = frame[frame["series"] == name]
        color = SWEEP_COLORS[i % len(SWEEP_COLORS)]
        label = plotly_text(str(name))
        x = [plotly_text(str(v)) for v in rows["x"]] if kind == "bars" else rows["x"].tolist()
        y = rows["y"].tolist()
        low, high = rows["low"].tolist(), rows["high"].tolist()
        if kind == "lines":
            if all(_finite(v) for v in low + high) and low:
                fig.add_trace(go.Scatter(x=x + x[::-1], y=high + low[::-1], fill="toself", mode="lines",
                                         line={"width": 0}, fillcolor=_rgba(color, 0.18), hoverinfo="skip",
                                         showlegend=False, legendgroup=label))
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=label, legendgroup=label,
                                     line={"color": color, "width": 2.5},
                                     hovertemplate=f"{label}<br>%{{x}}: %{{y:.3f}}<extra></extra>"))
        elif kind == "bars":
            plus = [h - m if _finite(h) and _finite(m) else None for h, m in zip(high, y)]
            minus = [m - lo if _finite(lo) and _finite(m) else None for lo, m in zip(low, y)]
            fig.add_trace(go.Scatter(x=x, y=y, mode="markers", name=label, marker={"color": color, "size": 12},
                                     error_y={"type": "data", "array": plus, "arrayminus": minus, "thickness": 2,
                                              "width": 6, "color": color},
                                     hovertemplate=f"{label}<br>%{{x}}: %{{y:.3f}}<extra></extra>"))
        else:
            fig.add_trace(go.Scatter(x=x, y=y, mode="markers", name=label,
                                     marker={"color": color, "size": 8, "opacity": 0.7},
                                     hovertemplate=f"{label}<br>%{{x}}: %{{y:.3f}}<extra></extra>"))
    if reference is not None and _finite(reference):
        fig.add_hline(y=reference, line={"dash": "dash", "color": "#3b3b3b", "width": 1.5},
                      annotation_text=plotly_text(reference_label), annotation_position="bottom right")
    fig.update_layout(title=plotly_text(title), xaxis_title=plotly_text(x_title), yaxis_title=plotly_text(y_title),
                      legend={"orientation": "h", "y": -0.25}, margin={"t": 50, "b": 10}, height=420,
                      scattermode="group" if kind == "bars" else None)
    if log_x:
        fig.update_xaxes(type="log")
    if kind == "lines" and not frame.empty:
        fig.update_xaxes(tickvals=sorted(set(frame["x"])))
    return fig

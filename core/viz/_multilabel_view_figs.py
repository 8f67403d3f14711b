"""Figures of one finding of a multi-label run read as its own yes/no question: its
reliability diagram, drawn by the single-label `reliability_diagram` with the axes and
legend said for a finding (predicted chance against the share of cases that carried it),
and the map of the test cases' features coloured by whether each carries the finding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.text import plotly_text
from core.viz._calibration_figs import reliability_diagram

__all__ = ["label_map_figure", "label_reliability_figure"]


def label_reliability_figure(table: pd.DataFrame, name: str) -> go.Figure:
    """Reliability of one finding's probability (`core.analysis.label_reliability`'s table)."""
    fig = reliability_diagram(table, title=name)
    fig.for_each_trace(lambda t: t.update(name="share of these cases with the finding")
                       if t.name == "how often it was right" else None)
    fig.for_each_trace(lambda t: t.update(name="gap to the predicted chance")
                       if t.name == "gap to its confidence" else None)
    fig.for_each_trace(lambda t: t.update(hovertemplate=t.hovertemplate.replace(
        "confidence", "predicted chance").replace("right %{y:.0%} of the time", "present in %{y:.0%}"))
        if t.hovertemplate else None)
    fig.update_yaxes(title_text="share with the finding", row=1, col=1)
    fig.update_xaxes(title_text="the model's chance for the finding", row=2, col=1)
    return fig


_STATES = ((0, "without", "#b8b8b8", "circle"), (2, "entry unknown", "#f2a541", "circle-open"),
           (1, "with", "#c0392b", "circle"))  # drawn in this order: the cases with the finding on top


def label_map_figure(coords: np.ndarray, targets: np.ndarray, chance: np.ndarray, name: str, *,
                     axis_label: str = "UMAP") -> go.Figure:
    """2-D or 3-D map of the test cases (`coords`), one trace each for the cases without the
    finding, with an unknown entry (`targets` NaN) and with it; the hover gives each case's
    number and the model's chance for the finding."""
    xy, t = np.asarray(coords, dtype=np.float64), np.asarray(targets, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] not in (2, 3) or len(xy) != len(t) or len(np.asarray(chance)) != len(t):
        raise ValueError(f"need 2 or 3 coordinates per case and one entry and one chance each; got {xy.shape}, "
                         f"{t.shape[0]} entries and {len(np.asarray(chance))} chances")
    state = np.where(np.isnan(t), 2, t).astype(np.int64)
    shown = plotly_text(name)
    fig = go.Figure()
    for value, words, color, symbol in _STATES:
        mask = state == value
        if not mask.any():
            continue
        axes = {"x": xy[mask, 0], "y": xy[mask, 1], **({"z": xy[mask, 2]} if xy.shape[1] == 3 else {})}
        trace = go.Scatter3d if xy.shape[1] == 3 else go.Scatter
        label = f"{words} {shown} ({int(mask.sum())})" if value != 2 else f"{words} ({int(mask.sum())})"
        fig.add_trace(trace(**axes, mode="markers", name=label, marker={"color": color, "symbol": symbol,
                                                                       "size": 8 if value == 1 else 5},
                            customdata=np.column_stack([np.flatnonzero(mask) + 1, np.asarray(chance)[mask]]),
                            hovertemplate="test case %{customdata[0]:.0f}<br>chance for " + shown
                            + " %{customdata[1]:.0%}<extra>" + label + "</extra>"))
    fig.update_layout(height=520, legend={"orientation": "h", "y": -0.12}, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      xaxis_title=f"{axis_label} 1", yaxis_title=f"{axis_label} 2")
    return fig

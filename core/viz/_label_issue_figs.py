"""The figure of suspected label issues per class (the Error gallery's training-set review)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from core.text import plotly_text
from core.viz._data_figs import GROUP_COLORS

__all__ = ["label_issue_counts_figure"]


def label_issue_counts_figure(counts: pd.DataFrame) -> go.Figure:
    """Per given class (a `label_issue_counts` frame, drawn in its row order): the share of its
    training rows suspected of a wrong label, coloured by group, with the counts on hover; and,
    when the true labels are known, the share truly wrong as a grey marker beside it."""
    names = [plotly_text(str(c)) for c in counts["class"]]
    groups = counts["group"].fillna("").astype(str).tolist()
    fig = go.Figure(go.Bar(
        x=names, y=counts["share"], name="suspected",
        marker_color=[GROUP_COLORS.get(g, "#7f7f7f") for g in groups],
        customdata=list(zip(counts["suspected"], counts["rows"], [g or "-" for g in groups])),
        hovertemplate="%{x} (%{customdata[2]})<br>%{customdata[0]} of %{customdata[1]} rows suspected"
                      "<extra></extra>"))
    if "truly_wrong" in counts:
        truth = counts["truly_wrong"] / counts["rows"].clip(lower=1)
        fig.add_trace(go.Scatter(x=names, y=truth, mode="markers", name="truly wrong (injected)",
                                 marker=dict(symbol="line-ew-open", size=22, color="#444", line=dict(width=3)),
                                 customdata=list(zip(counts["truly_wrong"], counts["caught"])),
                                 hovertemplate="%{x}: %{customdata[0]} truly wrong, %{customdata[1]} of them "
                                               "suspected<extra></extra>"))
    fig.update_layout(yaxis=dict(title="share of the class's training rows", tickformat=".0%", rangemode="tozero"),
                      xaxis_title="given class", height=320, margin=dict(l=10, r=10, t=30, b=10),
                      legend=dict(orientation="h", y=1.12), bargap=0.3)
    return fig

"""Figures of one finding of a multi-label run read as its own yes/no question: its
reliability diagram, drawn by the single-label `reliability_diagram` with the axes and
legend said for a finding (predicted chance against the share of cases that carried it)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from core.viz._calibration_figs import reliability_diagram

__all__ = ["label_reliability_figure"]


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

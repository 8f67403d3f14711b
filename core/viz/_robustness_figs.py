"""Figures of the Robustness page: `robustness_table` frames in, plotly Figures out.

Groups keep the colours of every other page (head blue, medium orange, tail red); intervals
are error bars, so a difference inside them reads as noise.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.text import plotly_text

__all__ = ["robustness_curve_figure", "robust_by_count_figure", "disparity_figure"]

_GROUP_COLORS = {"head": "#1f77b4", "medium": "#ff7f0e", "tail": "#d62728", "all classes": "#333333"}
_RUN_DASH = ("solid", "dash")
_LAYOUT = {"margin": {"l": 60, "r": 20, "t": 50, "b": 50}}


def _bars(rows: pd.DataFrame) -> dict:
    return {"type": "data", "symmetric": False, "array": (rows["high"] - rows["accuracy"]).to_numpy(),
            "arrayminus": (rows["accuracy"] - rows["low"]).to_numpy(), "thickness": 1}


def robustness_curve_figure(table: pd.DataFrame, *, title: str = "Accuracy as the attack grows") -> go.Figure:
    """Balanced accuracy and each group's accuracy (with 95 % intervals) against epsilon."""
    fig = go.Figure()
    pooled = table[table["scope"].isin(["balanced", "group"])]
    for name, rows in pooled.groupby("name", sort=False):
        rows = rows.sort_values("epsilon")
        fig.add_trace(go.Scatter(
            x=rows["epsilon"], y=rows["accuracy"], error_y=_bars(rows), mode="lines+markers",
            name="balanced (all classes)" if name == "all classes" else f"{name} classes",
            line={"color": _GROUP_COLORS.get(name, "#888888"), "dash": "dot" if name == "all classes" else "solid"},
            hovertemplate="epsilon %{x:g}<br>accuracy %{y:.1%}<extra>" + plotly_text(str(name)) + "</extra>"))
    fig.update_layout(**_LAYOUT, title=title, xaxis_title="attack size epsilon (0 = clean inputs)",
                      yaxis={"title": "accuracy on attacked inputs", "range": [0, 1.02], "tickformat": ".0%"},
                      legend={"orientation": "h", "y": -0.2})
    return fig


def robust_by_count_figure(table: pd.DataFrame, epsilon: float) -> go.Figure:
    """Each class's clean accuracy (hollow) and accuracy under attack at `epsilon` (filled)
    against its number of training examples (log scale), coloured by group."""
    classes = table[table["scope"] == "class"]
    clean = classes[classes["epsilon"] == classes["epsilon"].min()].set_index("name")
    attacked = classes[np.isclose(classes["epsilon"], epsilon)].set_index("name")
    fig = go.Figure()
    for group in ("head", "medium", "tail"):
        members = attacked[attacked["group"] == group]
        if members.empty:
            continue
        color = _GROUP_COLORS[group]
        names = [plotly_text(str(n)) for n in members.index]
        for label, frame, symbol in (("clean", clean.loc[members.index], "circle-open"),
                                     (f"attacked (epsilon {epsilon:g})", members, "circle")):
            fig.add_trace(go.Scatter(
                x=frame["count_train"], y=frame["accuracy"], error_y=_bars(frame), mode="markers",
                marker={"color": color, "symbol": symbol, "size": 10}, name=f"{group}: {label}", text=names,
                hovertemplate="%{text}<br>%{x:,} training examples<br>accuracy %{y:.1%}<extra>" + label + "</extra>"))
        for name in members.index:  # a thin line from clean to attacked: the drop of that class
            fig.add_trace(go.Scatter(x=[members.loc[name, "count_train"]] * 2,
                                     y=[clean.loc[name, "accuracy"], members.loc[name, "accuracy"]], mode="lines",
                                     line={"color": color, "width": 1}, showlegend=False, hoverinfo="skip"))
    fig.update_layout(**_LAYOUT, title=f"Each class, clean and attacked (ε {epsilon:g})",
                      xaxis={"title": "training examples (log scale)", "type": "log"},
                      yaxis={"title": "accuracy (recall) of the class", "range": [-0.02, 1.05], "tickformat": ".0%"},
                      legend={"orientation": "h", "y": -0.25})
    return fig


def disparity_figure(curves: Mapping[str, pd.DataFrame]) -> go.Figure:
    """The head - tail accuracy gap against epsilon, one line per run ({label: disparity_curve})."""
    fig = go.Figure()
    fig.add_hline(y=0, line={"color": "#888888", "dash": "dash"})
    for i, (label, curve) in enumerate(curves.items()):
        rows = curve.rename(columns={"gap": "accuracy"}).sort_values("epsilon")
        fig.add_trace(go.Scatter(
            x=rows["epsilon"], y=rows["accuracy"], error_y=_bars(rows), mode="lines+markers",
            name=plotly_text(label), line={"dash": _RUN_DASH[i % 2], "color": ("#6a3d9a", "#33a02c")[i % 2]},
            hovertemplate="epsilon %{x:g}<br>gap %{y:+.1%}<extra>" + plotly_text(label) + "</extra>"))
    fig.update_layout(**_LAYOUT, title="Gap between common and rare classes (head minus tail)",
                      xaxis_title="attack size epsilon (0 = clean inputs)",
                      yaxis={"title": "head accuracy minus tail accuracy", "tickformat": "+.0%"},
                      legend={"orientation": "h", "y": -0.2})
    return fig

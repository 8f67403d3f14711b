"""Figures for runs that learned from unlabelled rows: the pseudo-labels a first model gave,
class by class, and the loss of self-supervised pre-training.

Pseudo-labels help the rare classes only if they reach them and are right there; a first
model trained on imbalanced labels tends to give most of its confident labels to the
common classes, which these figures make visible.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.analysis import wilson_interval
from core.data import head_to_tail_order
from core.text import plotly_text

__all__ = ["pseudo_label_table", "pseudo_label_figure", "pretrain_loss_figure"]

RIGHT, WRONG, POOL = "#2ca02c", "#d62728", "#7f7f7f"


def pseudo_label_table(report: Mapping[str, Any], class_names: Sequence[str]) -> pd.DataFrame:
    """One row per class, head to tail by labelled rows: labelled rows, unlabelled rows of
    the class (where the true classes are known), pseudo-labels given, how many were right,
    precision with its 95 % Wilson interval, and recall of the class's unlabelled rows."""
    rows = pd.DataFrame(report["per_class"])
    rows.insert(1, "class", [class_names[int(j)] for j in rows["class_index"]])
    rows = rows.iloc[head_to_tail_order(rows["labelled"].to_numpy())].reset_index(drop=True)
    known = rows["correct"].notna().to_numpy()
    low = np.full(len(rows), np.nan)
    high = np.full(len(rows), np.nan)
    if known.any():
        low[known], high[known] = wilson_interval(rows.loc[known, "correct"].to_numpy(dtype=float),
                                                  rows.loc[known, "checked"].to_numpy(dtype=float))
    rows["precision_low"], rows["precision_high"] = low, high
    for column in ("precision", "recall", "unlabelled", "checked", "correct"):
        rows[column] = pd.to_numeric(rows[column], errors="coerce")
    return rows


def pseudo_label_figure(table: pd.DataFrame, threshold: float | None = None) -> go.Figure:
    """Left: pseudo-labels per class (right ones and wrong ones stacked) beside how many
    unlabelled rows truly belong to the class. Right: precision per class with its 95 %
    interval. Classes run head to tail, as `pseudo_label_table` orders them."""
    names = [plotly_text(str(c)) for c in table["class"]]
    known = table["correct"].notna().any()
    kept = "" if threshold is None else f" (kept where at least {threshold:.0%} sure)"
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, subplot_titles=(
        f"Pseudo-labels per class{kept}", "Share of the class's pseudo-labels that are right"))
    custom = np.stack([table["labelled"].to_numpy(), table["pseudo_labels"].to_numpy()], axis=1)
    if known:
        right = table["correct"].fillna(0).to_numpy()
        wrong = table["pseudo_labels"].to_numpy() - right
        for values, name, color in ((right, "right", RIGHT), (wrong, "wrong", WRONG)):
            fig.add_trace(go.Bar(x=names, y=values, name=f"pseudo-labels, {name}", marker_color=color,
                                 customdata=custom, hovertemplate="class %{x}<br>%{customdata[0]} labelled rows<br>"
                                 f"%{{y}} pseudo-labels {name}<extra></extra>"), row=1, col=1)
        fig.add_trace(go.Scatter(x=names, y=table["unlabelled"].to_numpy(), mode="markers",
                                 name="unlabelled rows truly of the class",
                                 marker=dict(symbol="line-ew-open", size=18, color=POOL, line=dict(width=3)),
                                 hovertemplate="class %{x}<br>%{y} unlabelled rows truly of this class<extra></extra>"),
                      row=1, col=1)
        precision = table["precision"].to_numpy(dtype=float)
        fig.add_trace(go.Scatter(
            x=names, y=precision, mode="markers", name="precision", marker=dict(size=10, color="#1f77b4"),
            error_y=dict(type="data", symmetric=False, array=table["precision_high"].to_numpy() - precision,
                         arrayminus=precision - table["precision_low"].to_numpy(), color="#1f77b4"),
            customdata=custom, hovertemplate="class %{x}<br>precision %{y:.2f} of %{customdata[1]} pseudo-labels"
                                             "<extra></extra>"), row=1, col=2)
    else:
        fig.add_trace(go.Bar(x=names, y=table["pseudo_labels"].to_numpy(), name="pseudo-labels", marker_color=POOL,
                             customdata=custom, hovertemplate="class %{x}<br>%{customdata[0]} labelled rows<br>"
                                                              "%{y} pseudo-labels<extra></extra>"), row=1, col=1)
        fig.add_annotation(text="the unlabelled rows' true classes are unknown", showarrow=False, xref="x2 domain",
                           yref="y2 domain", x=0.5, y=0.5)
    fig.update_layout(barmode="stack", height=380, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", yanchor="top", y=-0.3, x=0))
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=names,
                     title="class (most labelled rows on the left)")
    fig.update_yaxes(title="rows", row=1, col=1)
    fig.update_yaxes(title="precision", range=[-0.05, 1.05], row=1, col=2)
    return fig


def pretrain_loss_figure(loss: Sequence[float], objective: str) -> go.Figure:
    """The self-supervised loss per pre-training epoch: it should fall; a flat line means
    the backbone learned little before the labelled training started."""
    epochs = list(range(1, len(loss) + 1))
    label = plotly_text(objective)
    fig = go.Figure(go.Scatter(x=epochs, y=[float(v) for v in loss], mode="lines+markers", name=label,
                               line=dict(color="#444444"), marker=dict(size=4),
                               hovertemplate=f"epoch %{{x}}<br>{label} loss %{{y:.3f}}<extra></extra>"))
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=30, b=10), showlegend=False,
                      title=dict(text=f"Pre-training loss: {label}", font=dict(size=14)))
    fig.update_xaxes(title="pre-training epoch", tick0=1, dtick=max(1, -(-len(epochs) // 10)))
    fig.update_yaxes(title="loss (lower is better)")
    return fig

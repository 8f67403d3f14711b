"""Figures for the Train page: learning curves and per-class recall over epochs.

Both read the run history rows the trainer writes (epoch, stage, train_loss, val_loss,
val_accuracy, val_balanced_accuracy, val_recall) and mark the epochs of a two-stage fix,
whose rows carry a stage other than "train".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.data import class_groups, head_to_tail_order
from core.text import plotly_text
from core.viz._data_figs import GROUP_COLORS
from core.viz._fit import wrap_title

__all__ = ["training_curves_figure", "recall_heatmap_figure"]

STAGE2_FILL = "rgba(120, 120, 120, 0.12)"


def _value(row: dict[str, Any], key: str) -> float:
    v = row.get(key)
    return float("nan") if v is None else float(v)


def _stage2_span(history: Sequence[dict[str, Any]]) -> tuple[float, float, str] | None:
    """(first, last, stage name) of the two-stage epochs, or None."""
    rows = [r for r in history if r.get("stage", "train") != "train"]
    if not rows:
        return None
    return float(rows[0]["epoch"]), float(rows[-1]["epoch"]), str(rows[0]["stage"])


def epoch_axis(epochs: Sequence[float]) -> dict[str, Any]:
    """Whole-number epoch ticks, about ten at most: a 2-epoch run shows 1 and 2, not 1.2, 1.4."""
    return dict(title="epoch", tick0=1, dtick=max(1, math.ceil(len(set(epochs)) / 10)))


def training_curves_figure(history: Sequence[dict[str, Any]], selected_epoch: int | None = None) -> go.Figure:
    """Loss (train, validation) and validation accuracy (balanced, plain) per epoch, with
    the kept epoch marked when model selection kept an earlier one than the last.

    A gap between plain and balanced accuracy is the imbalance showing: the head
    classes carry plain accuracy while rare classes drag the balanced one down.
    """
    epochs = [int(r["epoch"]) for r in history]
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        # on two lines: a half-width chart at 1024 px cut the second one
                        subplot_titles=("Loss<br>(lower is better)", "Validation accuracy<br>(higher is better)"))
    series = [
        (1, "train_loss", "train loss", dict(color="#444444")),
        (1, "val_loss", "validation loss", dict(color="#444444", dash="dot")),
        (2, "val_balanced_accuracy", "balanced accuracy", dict(color="#2ca02c", width=3)),
        (2, "val_accuracy", "accuracy", dict(color="#9467bd", dash="dot")),
    ]
    for col, key, name, line in series:
        fig.add_trace(go.Scatter(x=epochs, y=[_value(r, key) for r in history], name=name, mode="lines+markers",
                                 line=line, marker=dict(size=4),
                                 hovertemplate=f"epoch %{{x}}<br>{name}: %{{y:.3f}}<extra></extra>"),
                      row=1, col=col)
    span = _stage2_span(history)
    if span:
        first, last, stage = span
        fig.add_vrect(x0=first - 0.5, x1=last + 0.5, fillcolor=STAGE2_FILL, line_width=0, row=1, col=1,
                      annotation_text=f"stage 2: {stage}", annotation_position="top left")
        fig.add_vrect(x0=first - 0.5, x1=last + 0.5, fillcolor=STAGE2_FILL, line_width=0, row=1, col=2)
    train_epochs = [int(r["epoch"]) for r in history if r.get("stage", "train") == "train"]
    if selected_epoch and train_epochs and selected_epoch != train_epochs[-1]:
        for col in (1, 2):
            fig.add_vline(x=selected_epoch, line_color="#2ca02c", line_dash="dash", line_width=1.5, row=1, col=col)
        fig.add_annotation(x=selected_epoch, y=1.0, xref="x2", yref="y2", showarrow=False, yanchor="bottom",
                           text=f"kept: epoch {selected_epoch}", font=dict(color="#2ca02c", size=11))
    fig.update_xaxes(**epoch_axis(epochs))
    fig.update_yaxes(range=[0, 1.02], row=1, col=2)
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=60, b=10),
                      legend=dict(orientation="h", yanchor="top", y=-0.22, x=0))
    if not history:
        fig.add_annotation(text="waiting for the first epoch…", showarrow=False, xref="paper", yref="paper",
                           x=0.5, y=0.5)
    return fig


def recall_heatmap_figure(
    history: Sequence[dict[str, Any]],
    class_names: Sequence[str],
    class_counts: Sequence[int],
    groups: Sequence[str] | None = None,
) -> go.Figure:
    """Validation recall of every class (rows, head at the top, tail at the bottom) at
    every epoch (columns). Class labels are coloured by group (head / medium / tail)."""
    k = len(class_names)
    if len(class_counts) != k:
        raise ValueError(f"{k} class names but {len(class_counts)} counts")
    groups = list(groups) if groups is not None else class_groups(class_counts)
    order = head_to_tail_order(class_counts)
    epochs = [int(r["epoch"]) for r in history]
    recall = np.full((k, len(history)), np.nan)
    for j, row in enumerate(history):
        values = row.get("val_recall") or []
        for c, v in enumerate(values[:k]):
            if v is not None:
                recall[c, j] = float(v)
    names = [plotly_text(class_names[i]) for i in order]
    z = [[None if np.isnan(v) else float(v) for v in recall[i]] for i in order]
    counts = np.asarray(class_counts)
    custom = [[f"{groups[i]}, {int(counts[i])} training samples"] * len(history) for i in order]
    fig = go.Figure(go.Heatmap(
        z=z, x=epochs, y=names, zmin=0, zmax=1, colorscale="Viridis", customdata=custom,
        colorbar=dict(title="recall", thickness=12),
        hovertemplate="class %{y} (%{customdata})<br>epoch %{x}<br>recall %{z:.2f}<extra></extra>",
    ))
    span = _stage2_span(history)
    if span:
        fig.add_vline(x=span[0] - 0.5, line=dict(color="white", width=2, dash="dash"),
                      annotation_text=f"stage 2: {span[2]}", annotation_position="top right")
    ticktext = [f"<span style='color:{GROUP_COLORS.get(groups[i], '#444')}'>{plotly_text(class_names[i])}</span>"
                for i in order]
    height = int(min(max(260, 22 * k + 110), 900))
    fig.update_layout(
        height=height, margin=dict(l=10, r=10, t=30, b=10),
        xaxis=epoch_axis(epochs),
        yaxis=dict(type="category", categoryorder="array", categoryarray=names, autorange="reversed",
                   tickmode="array", tickvals=names, ticktext=ticktext,
                   # broken into lines that fit the plot's height (~8 px a character)
                   title=wrap_title("class (head at the top, tail at the bottom)", (height - 100) // 8)),
    )
    return fig

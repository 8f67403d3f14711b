"""Figures for the Data page: class counts before/after an imbalance profile, image grids.

Classes are drawn head to tail (by training count after the profile) and coloured by
their head / medium / tail group, the same colours every per-class chart uses.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from core.data import head_to_tail_order
from core.text import plotly_text

__all__ = ["GROUP_COLORS", "BEFORE_COLOR", "class_counts_figure", "image_grid", "resampling_figure",
           "label_damage_figure"]

GROUP_COLORS: dict[str, str] = {"head": "#1f77b4", "medium": "#ff7f0e", "tail": "#d62728"}
BEFORE_COLOR = "rgba(150, 150, 150, 0.35)"


def class_counts_figure(
    counts_before: Sequence[int],
    counts_after: Sequence[int],
    class_names: Sequence[str],
    groups: Sequence[str],
    log_y: bool = False,
) -> go.Figure:
    """Training samples per class: a grey bar for what the data offers, a coloured bar
    (head / medium / tail) for what the imbalance profile keeps. Head to tail, left to right."""
    before = np.asarray(counts_before, dtype=np.int64)
    after = np.asarray(counts_after, dtype=np.int64)
    k = len(class_names)
    if not (len(before) == len(after) == len(groups) == k):
        raise ValueError(f"need one count and group per class: {k} classes, {len(before)} before, "
                         f"{len(after)} after, {len(groups)} groups")
    order = head_to_tail_order(after)
    names = [plotly_text(class_names[i]) for i in order]
    fig = go.Figure()
    fig.add_trace(go.Bar(
        x=names, y=before[order].tolist(), name="available (before)", marker_color=BEFORE_COLOR,
        width=0.85, hovertemplate="class %{x}<br>available: %{y}<extra></extra>",
    ))
    for group, color in GROUP_COLORS.items():
        members = [i for i in order if groups[i] == group]
        if not members:
            continue
        fig.add_trace(go.Bar(
            x=[plotly_text(class_names[i]) for i in members], y=after[members].tolist(), name=f"{group} (kept)",
            marker_color=color, width=0.55, customdata=before[members].tolist(),
            hovertemplate=f"class %{{x}} ({group})<br>kept: %{{y}} of %{{customdata}}<extra></extra>",
        ))
    fig.update_layout(
        barmode="overlay", bargap=0.1, height=380, margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
        xaxis=dict(type="category", categoryorder="array", categoryarray=names,
                   title="class (most to fewest training samples)"),
        yaxis=dict(type="log" if log_y else "linear", title="training samples"),
    )
    return fig


def label_damage_figure(table: pd.DataFrame) -> go.Figure:
    """Per class, head to tail: the share of its training labels made wrong on purpose and
    the share hidden (rows moved to the unlabelled pool). `table` is
    `core.data.label_damage_table`: a few wrong labels are a large share of a rare class."""
    needed = {"class", "group", "labelled rows", "hidden rows", "corrupted share", "hidden share"}
    if missing := needed - set(table.columns):
        raise ValueError(f"table lacks columns {sorted(missing)}")
    order = head_to_tail_order((table["labelled rows"] + table["hidden rows"]).to_numpy())
    rows = table.iloc[order]
    names = [plotly_text(c) for c in rows["class"]]
    fig = go.Figure()
    for column, label, color in (("corrupted share", "wrong labels", "#d62728"),
                                 ("hidden share", "hidden labels", "#7f7f7f")):
        if not (rows[column] > 0).any():
            continue
        count = "corrupted rows" if column == "corrupted share" else "hidden rows"
        fig.add_trace(go.Bar(
            x=names, y=rows[column].tolist(), name=label, marker_color=color,
            customdata=np.c_[rows[count].to_numpy(), rows["group"].to_numpy()],
            hovertemplate=f"class %{{x}} (%{{customdata[1]}})<br>{label}: %{{y:.0%}} (%{{customdata[0]}} rows)"
                          "<extra></extra>",
        ))
    fig.update_layout(
        barmode="group", height=340, margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
        xaxis=dict(type="category", categoryorder="array", categoryarray=names,
                   title="class (most to fewest training samples)"),
        yaxis=dict(title="share of the class's training rows", tickformat=".0%", rangemode="tozero"),
    )
    return fig


def _to_rgb_uint8(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) floats in [0, 1] -> (N, H, W, 3) uint8."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"images must be (N, 1 or 3, H, W), got shape {x.shape}")
    if x.shape[1] == 1:
        x = np.repeat(x, 3, axis=1)
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8).transpose(0, 2, 3, 1)


def image_grid(
    images: np.ndarray,
    labels: Sequence[int],
    class_names: Sequence[str],
    per_class: int = 8,
    max_classes: int = 30,
    pad: int = 1,
) -> go.Figure:
    """One row per class (in class-index order) with its first `per_class` images.

    A single RGB mosaic (white padding between tiles), so even a hundred tiles stay one
    light trace; class names label the rows.
    """
    pixels = _to_rgb_uint8(images)
    labels = np.asarray(labels)
    n, h, w, _ = pixels.shape
    classes = list(range(min(len(class_names), max_classes)))
    rows = len(classes)
    tile_h, tile_w = h + pad, w + pad
    mosaic = np.full((rows * tile_h + pad, per_class * tile_w + pad, 3), 255, dtype=np.uint8)
    for r, c in enumerate(classes):
        for j, idx in enumerate(np.flatnonzero(labels == c)[:per_class]):
            top, left = pad + r * tile_h, pad + j * tile_w
            mosaic[top:top + h, left:left + w] = pixels[idx]
    title = None if len(class_names) <= max_classes else f"first {max_classes} of {len(class_names)} classes"
    fig = go.Figure(go.Image(z=mosaic, hoverinfo="skip"))
    scale = max(1.0, 36 / h)  # small images (8x8 digits) drawn larger
    fig.update_layout(
        title=title, height=int(min(max(rows * tile_h * scale + 40, 160), 1400)),
        width=int(min(max(per_class * tile_w * scale + 120, 300), 1200)),
        margin=dict(l=10, r=10, t=30 if title else 10, b=10),
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(tickmode="array", tickvals=[pad + r * tile_h + h / 2 for r in range(rows)],
                     ticktext=[plotly_text(class_names[c]) for c in classes], showgrid=False, ticks="")
    return fig


_KIND_STYLE = {  # marker symbol, size, opacity, outline; drawn in this order
    "kept": ("circle", 6, 0.55, 0.0),
    "removed": ("x-thin-open", 9, 0.9, 2.0),
    "synthetic": ("diamond-open", 8, 0.95, 1.5),
}
_KIND_LABEL = {"kept": "real row", "removed": "real row removed", "synthetic": "synthetic row"}


def resampling_figure(view: pd.DataFrame, class_names: Sequence[str], made_by: str = "") -> go.Figure:
    """The training rows before and after a resampler (`resampling_view`): real rows as dots,
    removed ones as crosses, made-up ones as open diamonds ("row made by `made_by`" when the
    resampler's words are given), one colour per class."""
    colors = px.colors.qualitative.Bold
    words = {**_KIND_LABEL, **({"synthetic": f"row made by {plotly_text(made_by)}"} if made_by else {})}
    fig = go.Figure()
    for kind, (symbol, size, opacity, width) in _KIND_STYLE.items():
        for label in sorted(view.loc[view["kind"] == kind, "label"].unique()):
            rows = view[(view["kind"] == kind) & (view["label"] == label)]
            color, name = colors[int(label) % len(colors)], plotly_text(class_names[label])
            fig.add_trace(go.Scatter(
                x=rows["pc1"], y=rows["pc2"], mode="markers", name=f"{name}: {words[kind]}",
                legendgroup=kind, legendgrouptitle_text=words[kind] + "s",
                marker=dict(symbol=symbol, size=size, opacity=opacity, color=color, line=dict(width=width, color=color)),
                hovertemplate=f"class {name} · {words[kind]}<extra></extra>",
            ))
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=10, b=10), legend=dict(groupclick="toggleitem"),
                      xaxis=dict(title="first principal component", zeroline=False),
                      yaxis=dict(title="second principal component", zeroline=False))
    return fig

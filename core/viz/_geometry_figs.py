"""Figures for feature geometry: embeddings, neural collapse, norms, angles, spreads.

Pure builders (arrays / DataFrames in, plotly Figure out, no Streamlit). Every per-class
chart orders classes head to tail (largest training count first) and colours head /
medium / tail groups the same way as the rest of the workbench. In the embedding scatter
rare classes are drawn larger, more opaque and last, so the head does not bury them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.analysis import pairwise_cosines, unit_image
from core.data import head_to_tail_order
from core.text import plotly_text

__all__ = [
    "embedding_scatter",
    "embedding_marker_sizes",
    "embedding_hover_features",
    "centred_class_means",
    "nc_history_figure",
    "norm_count_figure",
    "cosine_heatmap",
    "spread_bars",
    "sample_image_figure",
    "add_thumbnails",
    "NC_HISTORY_LABELS",
]

_GROUP_COLORS = {"head": "#1f77b4", "medium": "#ff7f0e", "tail": "#d62728"}
_MUTED = "#c8c8c8"
_GL_THRESHOLD = 5_000  # 2-D scatters above this many points use WebGL

# history key -> (panel, legend label); the panels group measures on one scale
NC_HISTORY_LABELS: dict[str, tuple[str, str]] = {
    "nc1": ("NC1: within- vs between-class spread", "NC1"),
    "nc2_equinorm_means": ("NC2: how unequal lengths and angles are", "lengths, class means"),
    "nc2_equinorm_weights": ("NC2: how unequal lengths and angles are", "lengths, classifier weights"),
    "nc2_maxangle_means": ("NC2: how unequal lengths and angles are", "angles, class means"),
    "nc2_maxangle_weights": ("NC2: how unequal lengths and angles are", "angles, classifier weights"),
    "nc3": ("NC3: classifier vs class means", "NC3"),
    "nc4": ("NC4: nearest-mean vs model disagreement", "NC4"),
}


# ---------------------------------------------------------------- helpers


def _class_colors(num_classes: int) -> list[str]:
    # no greys in the palettes: grey means "muted" when the tail is highlighted
    if num_classes <= 10:
        palette = px.colors.qualitative.Bold
    elif num_classes <= 24:
        palette = px.colors.qualitative.Dark24
    else:
        return px.colors.sample_colorscale("Turbo", np.linspace(0.03, 0.97, num_classes).tolist())
    return list(palette[:num_classes])


def _rarity(counts: np.ndarray) -> np.ndarray:
    """0 for the largest class, 1 for the rarest, linear in log count (0.5 when all equal)."""
    logs = np.log(np.maximum(np.asarray(counts, dtype=np.float64), 1.0))
    span = logs.max() - logs.min()
    if span <= 0:
        return np.full(logs.shape, 0.5)
    return (logs.max() - logs) / span


def embedding_marker_sizes(class_counts: Sequence[int], small: float = 5.0, large: float = 12.0) -> np.ndarray:
    """Marker size per class: the rarer the class (in log training count), the larger."""
    return small + (large - small) * _rarity(np.asarray(class_counts))


def embedding_hover_features(x: np.ndarray, feature_names: Sequence[str], top: int = 3) -> list[str]:
    """Per row, the `top` feature values that stand out most (largest |z-score| against
    the rows given), as plotly hover text: 'alcohol = 13.2 (+2.1 SD)', lines joined by `<br>`."""
    x = np.asarray(x, dtype=np.float64)
    std = x.std(axis=0)
    z = np.divide(x - x.mean(axis=0), std, out=np.zeros_like(x), where=std > 0)
    picks = np.argsort(-np.abs(z), axis=1, kind="stable")[:, :top]
    return ["<br>".join(f"{plotly_text(feature_names[j])} = {x[i, j]:.4g} ({z[i, j]:+.1f} SD)" for j in row)
            for i, row in enumerate(picks)]


def centred_class_means(features: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Class means minus mu_G, the mean of the class means (balanced, as in Papyan et al.);
    NaN rows for classes absent from `labels`."""
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    counts = np.bincount(labels, minlength=num_classes)
    sums = np.zeros((num_classes, features.shape[1]))
    np.add.at(sums, labels, features)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts[:, None]
    means[counts == 0] = np.nan
    return means - means[counts > 0].mean(axis=0)


# ---------------------------------------------------------------- embedding


def embedding_scatter(
    coords: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    class_counts: Sequence[int],
    *,
    pred: np.ndarray | None = None,
    groups: Sequence[str] | None = None,
    highlight_tail: bool = False,
    highlight_errors: bool = False,
    hover_text: Sequence[str] | None = None,
    sample_ids: np.ndarray | None = None,
    axis_label: str = "UMAP",
    title: str | None = None,
    wrong_label: np.ndarray | None = None,
    case_names: Sequence[str] | None = None,
    made: np.ndarray | None = None,
    made_by: str = "",
) -> go.Figure:
    """2-D (Scatter) or 3-D (Scatter3d) map of samples, one trace per class, head first so
    the rarer classes are drawn on top, larger and more opaque.

    customdata per point = [sample id, true class, predicted class, hover text, the case's
    name], so a selection event gives back the sample id; the hover names each point by
    `case_names` ("patient_id P-00412", escaped here) or else as "sample 12". `highlight_tail` greys every class that is
    not in the tail group; `highlight_errors` rings the misclassified samples (a separate
    trace named 'misclassified', drawn last). `hover_text` is plotly text, one entry per point
    (`embedding_hover_features` escapes the feature names in it). `wrong_label`: a mask of the
    points whose training label was made wrong on purpose (coloured by the label they were
    given); they get an X on top, in a trace named 'wrong label', so noise is seen apart.
    `made`: a mask of the points a resampler made up (no real case); they leave their class's
    trace for one of their own, open diamonds in their class's colour, named "made by
    `made_by` (n)", and their hover says so.
    """
    coords = np.asarray(coords, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    counts = np.asarray(class_counts)
    num_classes, dims = len(class_names), coords.shape[1]
    if dims not in (2, 3):
        raise ValueError(f"coords must have 2 or 3 columns, got {dims}")
    if coords.shape[0] != labels.shape[0]:
        raise ValueError(f"{coords.shape[0]} points for {labels.shape[0]} labels")
    sample_ids = np.arange(len(labels)) if sample_ids is None else np.asarray(sample_ids)
    pred = None if pred is None else np.asarray(pred).astype(np.int64)
    names = np.asarray([plotly_text(c) for c in class_names], dtype=object)
    pred_names = names[pred] if pred is not None else np.full(len(labels), "n/a", dtype=object)
    extra = np.full(len(labels), "", dtype=object)
    if hover_text is not None:
        extra[:] = ["<br>" + text if text else "" for text in hover_text]
    sizes, rarity, colors = embedding_marker_sizes(counts), _rarity(counts), _class_colors(num_classes)
    is_tail = np.array([g == "tail" for g in groups]) if groups is not None else np.zeros(num_classes, bool)
    use_gl = dims == 2 and len(labels) > _GL_THRESHOLD
    trace_type = go.Scatter3d if dims == 3 else (go.Scattergl if use_gl else go.Scatter)
    who = np.asarray([f"sample {i}" for i in sample_ids] if case_names is None else
                     [plotly_text(str(n)) for n in case_names], dtype=object)
    if len(who) != len(labels):
        raise ValueError(f"{len(who)} case names for {len(labels)} points")
    template = ("true class <b>%{customdata[1]}</b> · predicted <b>%{customdata[2]}</b>"
                "<br>%{customdata[4]}%{customdata[3]}<extra></extra>")

    def xyz(mask: np.ndarray) -> dict[str, Any]:
        axes = dict(x=coords[mask, 0], y=coords[mask, 1])
        if dims == 3:
            axes["z"] = coords[mask, 2]
        return axes

    # a clicked point turns black; the others keep their look (plotly would fade them)
    keep_look = dict(marker=dict(opacity=1.0))
    selection_style = {} if dims == 3 else dict(selected=dict(marker=dict(color="#000000")), unselected=keep_look)
    made = np.zeros(len(labels), bool) if made is None else np.asarray(made, dtype=bool)
    if made.shape != labels.shape:
        raise ValueError(f"made has {made.shape[0]} entries for {labels.shape[0]} points")
    fig = go.Figure()
    for k in head_to_tail_order(counts):
        mask = (labels == k) & ~made
        if not mask.any():
            continue
        muted = highlight_tail and is_tail.any() and not is_tail[k]
        opacity = 0.25 if muted else 0.5 + 0.45 * rarity[k]
        if highlight_errors and not muted:
            opacity = min(opacity, 0.6)
        marker = dict(size=sizes[k] if dims == 2 else sizes[k] * 0.6, color=_MUTED if muted else colors[k])
        if highlight_tail and is_tail[k]:
            marker["line"] = dict(color="#222222", width=1)
        customdata = np.column_stack([sample_ids[mask], names[labels[mask]], pred_names[mask], extra[mask], who[mask]])
        fig.add_trace(trace_type(**xyz(mask), mode="markers", name=f"{names[k]} ({counts[k]} train)",
                                 marker=marker, opacity=opacity, customdata=customdata, **selection_style,
                                 hovertemplate=template, legendgroup=str(k)))
    if made.any():
        source = plotly_text(made_by) or "the resampler"
        customdata = np.column_stack([sample_ids[made], names[labels[made]], pred_names[made], extra[made], who[made]])
        fig.add_trace(trace_type(**xyz(made), mode="markers", name=f"made by {source} ({int(made.sum())})",
                                 marker=dict(symbol="diamond-open", size=9 if dims == 2 else 5, line=dict(width=1.5),
                                             color=[colors[k] for k in labels[made]]),
                                 customdata=customdata, **selection_style,
                                 hovertemplate=f"<b>made by {source}</b>, not a real case<br>" + template))
    if highlight_errors and pred is not None:
        wrong = pred != labels
        ring = np.asarray(sizes)[labels[wrong]] + 5
        fig.add_trace(trace_type(**xyz(wrong), mode="markers", name=f"misclassified ({int(wrong.sum())})",
                                 marker=dict(symbol="circle-open", color="#111111",
                                             size=ring if dims == 2 else ring * 0.6, line=dict(width=1.5)),
                                 hoverinfo="skip", **({} if dims == 3 else {"unselected": keep_look})))
    if wrong_label is not None and np.asarray(wrong_label).any():
        wrong = np.asarray(wrong_label, dtype=bool)
        if wrong.shape != labels.shape:
            raise ValueError(f"wrong_label has {wrong.shape[0]} entries for {labels.shape[0]} points")
        fig.add_trace(trace_type(**xyz(wrong), mode="markers", name=f"wrong label ({int(wrong.sum())})",
                                 marker=dict(symbol="x", color="#111111", size=9 if dims == 2 else 4),
                                 hoverinfo="skip", **({} if dims == 3 else {"unselected": keep_look})))
    axis = dict(showticklabels=False, zeroline=False, showgrid=dims == 3)
    if dims == 3:
        fig.update_layout(scene=dict(xaxis=dict(axis, title=f"{axis_label} 1"),
                                     yaxis=dict(axis, title=f"{axis_label} 2"),
                                     zaxis=dict(axis, title=f"{axis_label} 3")))
    else:
        fig.update_xaxes(axis, title=f"{axis_label} 1")
        fig.update_yaxes(axis, title=f"{axis_label} 2")
    fig.update_layout(title=plotly_text(title), height=580, legend=dict(title="class (training count)", itemsizing="constant"),
                      uirevision="embedding", margin=dict(l=10, r=10, t=50 if title else 20, b=10))
    return fig


# ---------------------------------------------------------------- neural collapse over epochs


def nc_history_figure(history: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Neural-collapse measures per epoch, one panel per measure (NC1 on a log axis: it
    spans orders of magnitude). Only rows that recorded NC metrics are used."""
    rows = [r for r in history if r.get("nc1") is not None or r.get("nc3") is not None]
    frame = pd.DataFrame(rows)
    panels = list(dict.fromkeys(panel for panel, _ in NC_HISTORY_LABELS.values()))
    fig = make_subplots(rows=2, cols=2, subplot_titles=panels, vertical_spacing=0.16, horizontal_spacing=0.08)
    palette = px.colors.qualitative.T10
    for i, (key, (panel, label)) in enumerate(NC_HISTORY_LABELS.items()):
        if frame.empty or key not in frame:
            continue
        index = panels.index(panel)
        values = pd.to_numeric(frame[key], errors="coerce")
        fig.add_trace(go.Scatter(x=frame["epoch"], y=values, mode="lines+markers", name=label,
                                 line=dict(color=palette[i % len(palette)]),
                                 hovertemplate=f"{label}<br>epoch %{{x}}: %{{y:.3g}}<extra></extra>"),
                      row=index // 2 + 1, col=index % 2 + 1)
    epochs = frame["epoch"].nunique() if "epoch" in frame else 0
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_xaxes(tick0=1, dtick=max(1, int(np.ceil(epochs / 10))))
    fig.update_xaxes(title="epoch", row=2)
    fig.update_layout(height=560, legend=dict(orientation="h", y=-0.15), margin=dict(l=10, r=10, t=40, b=10))
    return fig


# ---------------------------------------------------------------- norms against counts


def norm_count_figure(
    geometry: pd.DataFrame,
    class_names: Sequence[str],
    groups: Sequence[str],
    correlations: Mapping[str, float] | None = None,
) -> go.Figure:
    """Class-mean norm (left) and head-weight norm (right) against training count (log x),
    points coloured by group; the Spearman rank correlations go in the panel titles."""
    correlations = correlations or {}

    def title(name: str, key: str) -> str:
        rho = correlations.get(key)
        return name if rho is None or not np.isfinite(rho) else f"{name} (Spearman ρ = {rho:+.2f})"

    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, subplot_titles=(
        title("length of each class mean", "mean_norm_count_spearman"),
        title("length of each class's classifier weights", "weight_norm_count_spearman")))
    names, group_array = np.asarray([plotly_text(c) for c in class_names], dtype=object), np.asarray(groups)
    show_text = len(class_names) <= 30
    for col, column in enumerate(("mean_norm", "weight_norm"), start=1):
        for group, color in _GROUP_COLORS.items():
            part = geometry[group_array[geometry["class"].to_numpy()] == group]
            if part.empty:
                continue
            fig.add_trace(go.Scatter(
                x=part["count"], y=part[column], mode="markers+text" if show_text else "markers",
                text=names[part["class"].to_numpy()], textposition="top center", name=group,
                legendgroup=group, showlegend=col == 1, marker=dict(color=color, size=10),
                hovertemplate="class %{text}<br>training count %{x}<br>length %{y:.3g}<extra>" + group + "</extra>",
            ), row=1, col=col)
    fig.update_xaxes(type="log", title="training examples (log scale)")
    fig.update_yaxes(title="length (norm)", col=1)
    fig.update_layout(height=430, legend=dict(title="group"), margin=dict(l=10, r=10, t=50, b=10))
    return fig


# ---------------------------------------------------------------- pairwise angles


def cosine_heatmap(
    vectors: np.ndarray,
    class_names: Sequence[str],
    order: Sequence[int] | None = None,
    title: str | None = None,
) -> go.Figure:
    """Pairwise cosines between the rows of `vectors` (class means or head weights),
    rows and columns in `order` (pass head to tail). The diverging scale is centred on
    -1/(K-1), the value every pair takes in an ideal simplex: red pairs point closer
    together than ideal, blue ones further apart."""
    vectors = np.asarray(vectors, dtype=np.float64)
    order = np.arange(vectors.shape[0]) if order is None else np.asarray(order)
    cosines = pairwise_cosines(vectors[order])
    num_classes = vectors.shape[0]
    ideal = -1.0 / (num_classes - 1) if num_classes > 1 else 0.0
    labels = [plotly_text(class_names[i]) for i in order]
    angles = np.degrees(np.arccos(np.clip(cosines, -1.0, 1.0)))
    fig = go.Figure(go.Heatmap(
        z=cosines, x=labels, y=labels, zmin=-1.0, zmax=1.0, zmid=ideal, colorscale="RdBu_r",
        customdata=angles, colorbar=dict(title="cosine", tickvals=[-1.0, ideal, 1.0],
                                         ticktext=["-1 opposite", f"{ideal:.2f} ideal", "1 same direction"]),
        hovertemplate="%{y} vs %{x}<br>cosine %{z:.2f} (angle %{customdata:.0f}°)<extra></extra>",
    ))
    fig.update_xaxes(type="category", title="class (head → tail)", tickangle=-45 if num_classes > 10 else 0)
    fig.update_yaxes(type="category", autorange="reversed", title="class (head → tail)")
    fig.update_layout(title=plotly_text(title), height=460, margin=dict(l=10, r=10, t=50 if title else 20, b=10))
    return fig


# ---------------------------------------------------------------- spreads


def spread_bars(geometry: pd.DataFrame, class_names: Sequence[str], groups: Sequence[str]) -> go.Figure:
    """Per class, head to tail: how wide the class's cloud is (mean distance of its
    samples to their class centre) above, and how close the nearest other class centre
    is below; bars coloured by group."""
    shown_names = np.asarray([plotly_text(c) for c in class_names], dtype=object)
    table = geometry.assign(name=shown_names[geometry["class"].to_numpy()],
                            group=np.asarray(groups)[geometry["class"].to_numpy()])
    table = table.iloc[head_to_tail_order(table["count"].to_numpy())]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.12, subplot_titles=(
        "spread: average distance of a class's samples to their own class centre",
        "gap: distance from the class centre to the nearest other class centre"))
    for row, column in enumerate(("spread_mean_dist", "nearest_centre_dist"), start=1):
        for group, color in _GROUP_COLORS.items():
            part = table[table["group"] == group]
            if part.empty:
                continue
            fig.add_trace(go.Bar(x=part["name"].astype(str), y=part[column], name=group, legendgroup=group,
                                 showlegend=row == 1, marker_color=color, customdata=part["count"],
                                 hovertemplate="class %{x} (%{customdata} train)<br>%{y:.3g}<extra></extra>"),
                          row=row, col=1)
    order = table["name"].astype(str).tolist()
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=order)
    fig.update_xaxes(title="class (head → tail)", row=2, col=1)
    fig.update_layout(height=560, barmode="overlay", legend=dict(title="group"),
                      margin=dict(l=10, r=10, t=40, b=10))
    return fig


# ---------------------------------------------------------------- one sample


def sample_image_figure(image: np.ndarray, title: str | None = None) -> go.Figure:
    """One input image ((C,H,W) with C = 1 or 3, or (H,W)), crisp at any size."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3 and image.shape[0] == 1:
        image = image[0]
    if image.ndim == 2:
        trace = go.Heatmap(z=image, colorscale="Greys", showscale=False, hoverinfo="skip")
    else:
        rgb = np.moveaxis(image[:3], 0, -1)
        low, high = rgb.min(), rgb.max()
        rgb = (rgb - low) / (high - low) if high > low else np.zeros_like(rgb)
        trace = go.Image(z=(rgb * 255).astype(np.uint8), hoverinfo="skip")
    fig = go.Figure(trace)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    fig.update_layout(title=plotly_text(title), height=260, width=260, margin=dict(l=5, r=5, t=40 if title else 5, b=5))
    return fig


def _png_data_uri(image: np.ndarray, size: int, color: str) -> str:
    """A (C,H,W) input as a small PNG (pixels repeated, never blurred) in a data URI. A
    grey image is drawn as ink of `color` on a transparent ground, so the class shows."""
    import base64
    import io

    from PIL import Image, ImageColor

    img = unit_image(image)
    scale = max(1, size // max(img.shape[1:]))
    pixels = (np.repeat(np.repeat(img, scale, axis=1), scale, axis=2) * 255 + 0.5).astype(np.uint8)
    if pixels.shape[0] == 1:
        rgb = np.broadcast_to(np.array(ImageColor.getrgb(color), np.uint8), (*pixels.shape[1:], 3))
        picture = Image.fromarray(np.dstack([rgb, pixels[0]]), mode="RGBA")
    else:
        picture = Image.fromarray(pixels.transpose(1, 2, 0))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def add_thumbnails(fig: go.Figure, coords: np.ndarray, images: np.ndarray, labels: np.ndarray,
                   class_counts: Sequence[int], *, max_images: int = 120, seed: int = 0) -> go.Figure:
    """Draw the inputs themselves on a 2-D map (`embedding_scatter`): `max_images` at most,
    taken in turns from every class (rarest first), so each class shows as many pictures
    as it can. Hover labels cannot hold pictures, so the pictures go on the map. Returns `fig`."""
    coords, labels = np.asarray(coords, dtype=np.float64), np.asarray(labels).astype(np.int64)
    if coords.shape[1] != 2:
        raise ValueError("thumbnails need a 2-D map")
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(labels == k)) for k in head_to_tail_order(np.asarray(class_counts))[::-1]]
    turns = [members[i] for i in range(max((len(m) for m in per_class), default=0))
             for members in per_class if i < len(members)]
    picked = turns[:max_images]
    span = np.ptp(coords, axis=0).max() or 1.0
    size, colors = span * 0.04, _class_colors(len(class_counts))
    # One assignment: `add_layout_image` revalidates every picture already placed, each call.
    fig.update_layout(images=[*fig.layout.images, *(
        dict(source=_png_data_uri(images[i], 32, colors[labels[i]]), x=coords[i, 0], y=coords[i, 1], xref="x",
             yref="y", sizex=size, sizey=size, xanchor="center", yanchor="middle", layer="above", sizing="contain",
             opacity=0.95) for i in picked)])
    return fig

"""Figures for attribution maps: arrays in, plotly Figure out, no Streamlit.

One colour convention everywhere: red is evidence *for* the class the map explains,
blue evidence *against*, and values near zero are transparent so the image under an
overlay stays readable.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.analysis import unit_image
from core.text import plotly_text

__all__ = [
    "ATTRIBUTION_COLORSCALE",
    "NEGATIVE_COLOR",
    "POSITIVE_COLOR",
    "attribution_pair_figure",
    "class_importance_heatmap",
    "feature_attribution_bars",
    "image_with_attribution",
]

POSITIVE_COLOR = "#b2182b"
NEGATIVE_COLOR = "#2166ac"

# Diverging, with a transparent middle: small attributions do not veil the image.
ATTRIBUTION_COLORSCALE: list[list] = [
    [0.0, "rgba(33,102,172,1)"],
    [0.25, "rgba(103,169,207,0.75)"],
    [0.5, "rgba(247,247,247,0)"],
    [0.75, "rgba(239,138,98,0.75)"],
    [1.0, "rgba(178,24,43,1)"],
]


def image_with_attribution(
    image: np.ndarray,
    attribution: np.ndarray,
    opacity: float = 0.5,
    title: str | None = None,
) -> go.Figure:
    """An image ((C,H,W), C=1 grey or 3 RGB) with its attribution ((C or 1,H,W), summed
    over channels) overlaid as a signed heatmap centred on zero."""
    pixels, heat = _image_pixels(image), _attribution_plane(attribution, np.shape(image))
    limit = _symmetric_limit(heat)
    fig = go.Figure([
        go.Image(z=pixels, hoverinfo="skip", name="image"),
        _overlay(heat, opacity, coloraxis="coloraxis", name="attribution"),
    ])
    fig.update_layout(coloraxis=_coloraxis(limit), title=plotly_text(title))
    _style_image_axes(fig, pixels.shape)
    return fig


def attribution_pair_figure(
    image: np.ndarray,
    attr_true: np.ndarray,
    attr_pred: np.ndarray,
    true_name: str,
    pred_name: str,
    opacity: float = 0.5,
) -> go.Figure:
    """The same image explained for its true class (left) and the predicted one (right),
    on one shared colour scale so the strength of the two maps can be compared."""
    pixels = _image_pixels(image)
    heats = [_attribution_plane(a, np.shape(image)) for a in (attr_true, attr_pred)]
    limit = max(_symmetric_limit(h) for h in heats)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.04,
                        subplot_titles=(f"true: {plotly_text(true_name)}", f"predicted: {plotly_text(pred_name)}"))
    for col, (heat, label) in enumerate(zip(heats, ("true", "predicted")), start=1):
        fig.add_trace(go.Image(z=pixels, hoverinfo="skip", name="image"), row=1, col=col)
        fig.add_trace(_overlay(heat, opacity, coloraxis="coloraxis", name=f"attribution ({label})"), row=1, col=col)
    fig.update_layout(coloraxis=_coloraxis(limit), margin=dict(l=10, r=10, t=40, b=10))
    _style_image_axes(fig, pixels.shape)
    return fig


def feature_attribution_bars(
    values: np.ndarray,
    feature_names: Sequence[str] | None,
    top: int = 10,
    title: str | None = None,
) -> go.Figure:
    """The `top` features by |attribution| as horizontal bars, largest at the top,
    red when the feature pushed towards the class, blue when away."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    names = ([plotly_text(n) for n in feature_names] if feature_names is not None else
             [f"feature {i}" for i in range(v.size)])
    if len(names) != v.size:
        raise ValueError(f"{v.size} values but {len(names)} feature names")
    if top < 1:
        raise ValueError(f"top must be at least 1, got {top}")
    order = np.argsort(-np.abs(np.nan_to_num(v)), kind="stable")[:top]
    shown = v[order]
    fig = go.Figure(go.Bar(
        x=shown, y=[names[i] for i in order], orientation="h",
        marker_color=[POSITIVE_COLOR if x >= 0 else NEGATIVE_COLOR for x in shown],
        hovertemplate="%{y}: %{x:.3g}<extra></extra>",
    ))
    fig.update_layout(
        title=plotly_text(title), height=120 + 24 * len(order), margin=dict(l=10, r=10, t=40 if title else 10, b=30),
        yaxis=dict(autorange="reversed", automargin=True), xaxis=dict(title="attribution", zeroline=True),
        showlegend=False,
    )
    return fig


def class_importance_heatmap(
    importance: np.ndarray,
    class_names: Sequence[str],
    feature_names: Sequence[str],
    groups: Sequence[str] | None = None,
) -> go.Figure:
    """Classes (rows, in the order given) by features: mean |attribution|. With `groups`
    (one 'head'/'medium'/'tail' label per class) rows are labelled with their group, so
    whether tail classes lean on different features than head classes shows at a glance."""
    z = np.asarray(importance, dtype=np.float64)
    if z.ndim != 2 or z.shape != (len(class_names), len(feature_names)):
        raise ValueError(f"importance must be ({len(class_names)} classes, {len(feature_names)} features); got shape {z.shape}")
    if groups is not None and len(groups) != len(class_names):
        raise ValueError(f"{len(class_names)} classes but {len(groups)} groups")
    rows = [plotly_text(c if groups is None else f"{c} ({g})")
            for c, g in zip(class_names, groups or [None] * len(class_names))]
    fig = go.Figure(go.Heatmap(
        z=z, x=[plotly_text(f) for f in feature_names], y=rows, colorscale="Reds", zmin=0,
        colorbar=dict(title="mean |attr.|"),
        hovertemplate="class %{y}<br>feature %{x}<br>mean |attribution| %{z:.3g}<extra></extra>",
    ))
    fig.update_layout(
        yaxis=dict(autorange="reversed", type="category", automargin=True),
        xaxis=dict(type="category", tickangle=-45, automargin=True),
        height=160 + 22 * len(rows), margin=dict(l=10, r=10, t=30, b=10),
    )
    if groups is not None:
        for boundary in (i for i in range(1, len(groups)) if groups[i] != groups[i - 1]):
            fig.add_hline(y=boundary - 0.5, line=dict(color="black", width=2))
    return fig


# ---------------------------------------------------------------- helpers


def _image_pixels(image: np.ndarray) -> np.ndarray:
    """(H,W,3) uint8 for go.Image; inputs outside [0,1] are min-max scaled to show."""
    img = unit_image(image)
    rgb = np.repeat(img, 3, axis=0) if img.shape[0] == 1 else img
    return np.round(rgb * 255).astype(np.uint8).transpose(1, 2, 0)


def _attribution_plane(attribution: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    a = np.asarray(attribution, dtype=np.float64)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[1:] != tuple(image_shape[1:]):
        raise ValueError(f"attribution must be (C or 1, {image_shape[1]}, {image_shape[2]}); got shape {a.shape}")
    return a.sum(axis=0)


def _symmetric_limit(values: np.ndarray) -> float:
    limit = float(np.nanmax(np.abs(values))) if values.size else 0.0
    return limit if np.isfinite(limit) and limit > 0 else 1.0


def _overlay(heat: np.ndarray, opacity: float, *, coloraxis: str, name: str) -> go.Heatmap:
    if not 0 <= opacity <= 1:
        raise ValueError(f"opacity must lie in [0, 1], got {opacity}")
    return go.Heatmap(z=heat, coloraxis=coloraxis, opacity=opacity, name=name,
                      hovertemplate="x %{x}, y %{y}<br>attribution %{z:.3g}<extra></extra>")


def _coloraxis(limit: float) -> dict:
    return dict(colorscale=ATTRIBUTION_COLORSCALE, cmin=-limit, cmax=limit,
                colorbar=dict(title="attr.", thickness=12))


def _style_image_axes(fig: go.Figure, pixel_shape: tuple[int, ...]) -> None:
    """Square pixels, image orientation (row 0 at the top), no axes."""
    height, width = pixel_shape[:2]
    fig.update_xaxes(visible=False, range=[-0.5, width - 0.5], constrain="domain")
    for yaxis in fig.select_yaxes():
        x_name = "x" + yaxis.plotly_name.removeprefix("yaxis")
        yaxis.update(visible=False, range=[height - 0.5, -0.5], scaleanchor=x_name, constrain="domain")
    fig.update_layout(plot_bgcolor="white")

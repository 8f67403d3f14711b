"""Figures of the Calibration page and the Post-hoc explorer: arrays in, plotly Figure out.

Per-class charts run head to tail (by training count) and colour classes by their
head / medium / tail group, with the same colours as every other page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.analysis import FEW_CASES, few_cases_words
from core.data import head_to_tail_order
from core.text import plotly_text
from core.viz._fit import wrap_title

__all__ = [
    "calibration_gap_bars", "confidence_histogram", "per_class_ece_bars", "posthoc_confusion_heatmap",
    "posthoc_recall_bars", "reliability_diagram",
]

_GROUP_COLORS = {"head": "#1f77b4", "medium": "#ff7f0e", "tail": "#d62728"}
_GROUP_ORDER = ("head", "medium", "tail")
_CORRECT, _WRONG = "#2ca02c", "#9467bd"
_OVERALL = "#52606d"  # bars of the whole test set: no group colour
_SERIES_COLORS = ("#333333", "#17becf", "#8c564b", "#e377c2", "#bcbd22")
_LAYOUT = {"margin": {"l": 60, "r": 20, "t": 50, "b": 50}}


def reliability_diagram(series: pd.DataFrame | Mapping[str, pd.DataFrame], *,
                        colors: Mapping[str, str] | None = None, title: str = "") -> go.Figure:
    """Reliability diagram over `reliability_bins` tables, with bin counts underneath.

    One table: bars of accuracy per confidence bin and the gap up (or down) to the bin's
    mean confidence, as in Guo et al. 2017. Several ({label: table}, e.g. head / medium /
    tail, which get the group colours): one line per table through (mean confidence,
    accuracy). The diagonal is
    perfect calibration; below it the model is over-confident. ``colors`` maps a label to a
    colour or to a group name (which means that group's colour).
    """
    tables = {"all test cases": series} if isinstance(series, pd.DataFrame) else dict(series)
    colors = {**_GROUP_COLORS, **(colors or {})}
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.74, 0.26], vertical_spacing=0.05)
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
                             line={"dash": "dash", "color": "#888888"}, hoverinfo="skip"), row=1, col=1)
    single = len(tables) == 1
    for i, (label, t) in enumerate(tables.items()):
        fallback = _OVERALL if single else _SERIES_COLORS[i % len(_SERIES_COLORS)]
        color = _GROUP_COLORS.get(colors.get(label), colors.get(label)) or fallback
        centre = ((t["bin_lower"] + t["bin_upper"]) / 2).to_numpy()
        width = (t["bin_upper"] - t["bin_lower"]).to_numpy()
        custom = np.column_stack([t["bin_lower"], t["bin_upper"], t["confidence"], t["count"]])
        shown = plotly_text(label)  # a class name on the Calibration page
        hover = ("confidence %{customdata[0]:.2f}–%{customdata[1]:.2f}<br>mean confidence %{customdata[2]:.2f}"
                 "<br>right %{y:.0%} of the time<br>%{customdata[3]:,} cases<extra>" + shown + "</extra>")
        if single:
            fig.add_trace(go.Bar(x=centre, y=t["accuracy"], width=width, name="how often it was right",
                                 marker={"color": color, "line": {"color": "white", "width": 1}},
                                 customdata=custom, hovertemplate=hover), row=1, col=1)
            gap = (t["confidence"] - t["accuracy"]).to_numpy()
            fig.add_trace(go.Bar(x=centre, y=gap, base=t["accuracy"], width=width, name="gap to its confidence",
                                 marker={"color": "rgba(0,0,0,0)", "line": {"color": _WRONG, "width": 1.5},
                                         "pattern": {"shape": "/", "fgcolor": _WRONG, "fillmode": "overlay",
                                                     "solidity": 0.25}},
                                 hoverinfo="skip"), row=1, col=1)
        else:
            filled = t["count"].to_numpy() > 0
            fig.add_trace(go.Scatter(x=t["confidence"][filled], y=t["accuracy"][filled], mode="lines+markers",
                                     name=shown, line={"color": color}, customdata=custom[filled],
                                     hovertemplate=hover, legendgroup=shown), row=1, col=1)
        fig.add_trace(go.Bar(x=centre, y=t["count"], width=width if single else width / len(tables),
                             offset=None if single else (i / len(tables) - 0.5) * width,
                             name=f"cases ({shown})", marker={"color": color}, opacity=0.6, showlegend=False,
                             legendgroup=shown, hovertemplate="%{y:,} cases<extra>" + shown + "</extra>"),
                      row=2, col=1)
    fig.update_layout(**_LAYOUT, title=plotly_text(title or None), barmode="overlay", height=460, bargap=0,
                      legend={"orientation": "h", "y": -0.18})
    fig.update_yaxes(title_text="how often right", range=[0, 1.02], tickformat=".0%", row=1, col=1)
    fig.update_yaxes(title_text="cases", row=2, col=1)
    fig.update_xaxes(range=[0, 1], row=1, col=1)
    fig.update_xaxes(title_text="confidence (how sure the model was)", range=[0, 1], tickformat=".0%", row=2, col=1)
    return fig


def confidence_histogram(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 20) -> go.Figure:
    """How sure the model was on the cases it got right and on those it got wrong."""
    conf = np.asarray(confidence, dtype=np.float64)
    hit = np.asarray(correct).astype(bool)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    centre, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    fig = go.Figure()
    for name, mask, color in (("right", hit, _CORRECT), ("wrong", ~hit, _WRONG)):
        counts, _ = np.histogram(conf[mask], bins=edges)
        fig.add_trace(go.Bar(x=centre, y=counts, width=width, name=f"{name} ({int(mask.sum()):,})",
                             marker={"color": color}, opacity=0.65,
                             hovertemplate="confidence %{x:.2f}<br>%{y:,} cases<extra>" + name + "</extra>"))
    fig.update_layout(**_LAYOUT, barmode="overlay", bargap=0, height=340,
                      xaxis={"title": "confidence (how sure the model was)", "range": [0, 1], "tickformat": ".0%"},
                      yaxis={"title": "test cases"}, legend={"orientation": "h", "y": 1.12})
    return fig


def per_class_ece_bars(class_names: Sequence[str], values: Sequence[float] | np.ndarray,
                       counts: Sequence[int] | np.ndarray, groups: Sequence[str],
                       test_counts: Sequence[int] | np.ndarray | None = None) -> go.Figure:
    """Calibration error within each class, classes head to tail, coloured by group. With
    `test_counts`, each bar is labelled with its number of test cases, and a class with
    fewer than FEW_CASES is drawn hatched and marked "(few)"."""
    order = head_to_tail_order(counts)
    names = [plotly_text(class_names[i]) for i in order]
    vals, cnt, grp = np.asarray(values, dtype=np.float64)[order], np.asarray(counts)[order], [groups[i] for i in order]
    tests = None if test_counts is None else np.asarray(test_counts, dtype=int)[order]
    fig = go.Figure()
    for g in [g for g in _GROUP_ORDER if g in grp] + sorted(set(grp) - set(_GROUP_ORDER)):
        idx = [i for i, gi in enumerate(grp) if gi == g]
        extra = {}
        if tests is not None:
            few = tests[idx] < FEW_CASES
            extra = {"text": [f"n={few_cases_words(int(t))}" for t in tests[idx]], "textposition": "outside",
                     "marker_pattern_shape": ["/" if f else "" for f in few]}
        fig.add_trace(go.Bar(x=[names[i] for i in idx], y=vals[idx], name=g,
                             marker={"color": _GROUP_COLORS.get(g, "#7f7f7f")}, customdata=cnt[idx],
                             hovertemplate="%{x}<br>ECE %{y:.3f}<br>%{customdata:,} training examples<extra>"
                                           + g + "</extra>", **extra))
    fig.update_layout(**_LAYOUT, height=340, bargap=0.2,
                      xaxis={"title": wrap_title("class (most training examples → fewest)", 24), "type": "category",
                             "categoryorder": "array", "categoryarray": names},
                      yaxis={"title": "ECE within the class", "rangemode": "tozero"},
                      legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0})
    return fig


def calibration_gap_bars(gaps: Mapping[str, float]) -> go.Figure:
    """Mean confidence minus accuracy per group: above zero over-confident, below under."""
    names = [g for g in _GROUP_ORDER if g in gaps] + sorted(set(gaps) - set(_GROUP_ORDER))
    values = np.array([gaps[g] for g in names], dtype=np.float64)
    fig = go.Figure(go.Bar(
        x=names, y=values, marker={"color": [_GROUP_COLORS.get(g, "#7f7f7f") for g in names]},
        text=[f"{v:+.3f}" if np.isfinite(v) else "no cases" for v in values], textposition="outside",
        hovertemplate="%{x}: confidence − accuracy = %{y:+.3f}<extra></extra>", showlegend=False))
    reach = max(0.05, float(np.nanmax(np.abs(values))) * 1.35) if np.isfinite(values).any() else 0.05
    fig.add_hline(y=0, line={"color": "#444444", "width": 1})
    for y, text in ((reach * 0.9, "over-<br>confident ↑"), (-reach * 0.9, "under-<br>confident ↓")):
        fig.add_annotation(x=1.02, xref="paper", xanchor="left", y=y, text=text, showarrow=False, align="left",
                           font={"color": "#666666", "size": 11})
    fig.update_layout(**{**_LAYOUT, "margin": {**_LAYOUT["margin"], "r": 95}}, height=340,
                      xaxis={"title": "group of classes", "type": "category"},
                      yaxis={"title": "mean confidence − accuracy", "range": [-reach, reach], "zeroline": False})
    return fig


def posthoc_recall_bars(class_names: Sequence[str], recall_before: np.ndarray, recall_after: np.ndarray,
                        counts: Sequence[int] | np.ndarray, groups: Sequence[str]) -> go.Figure:
    """Per-class recall before (pale) and after (solid) the adjustment, head to tail."""
    order = head_to_tail_order(counts)
    names = [plotly_text(class_names[i]) for i in order]
    colors = [_GROUP_COLORS.get(groups[i], "#7f7f7f") for i in order]
    fig = go.Figure()
    for label, values, opacity in (("original", recall_before, 0.35), ("adjusted", recall_after, 1.0)):
        fig.add_trace(go.Bar(x=names, y=np.asarray(values, dtype=np.float64)[order], name=label, opacity=opacity,
                             marker={"color": colors, "line": {"color": colors, "width": 1}},
                             customdata=[groups[i] for i in order],
                             hovertemplate="%{x} (%{customdata})<br>recall %{y:.0%}<extra>" + label + "</extra>"))
    fig.update_layout(**_LAYOUT, barmode="group", height=380, bargap=0.25, bargroupgap=0.05,
                      xaxis={"title": wrap_title("class (most training examples → fewest)", 24), "type": "category",
                             "categoryorder": "array", "categoryarray": names},
                      yaxis={"title": "recall (share found)", "range": [0, 1.05], "tickformat": ".0%"},
                      # in the top margin, above the plot: over the bars it hid their tops (99 % read as ~88 %)
                      legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0})
    return fig


def posthoc_confusion_heatmap(confusion: np.ndarray, class_names: Sequence[str],
                              counts: Sequence[int] | np.ndarray) -> go.Figure:
    """Confusion matrix, rows normalised (each row: where that class's cases went), head to tail."""
    order = head_to_tail_order(counts)
    cm = np.asarray(confusion)[np.ix_(order, order)]
    names = [plotly_text(class_names[i]) for i in order]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(cm.sum(axis=1, keepdims=True) > 0, cm / cm.sum(axis=1, keepdims=True), 0.0)
    small = len(names) <= 15
    fig = go.Figure(go.Heatmap(
        z=share, x=names, y=names, colorscale="Blues", zmin=0, zmax=1, customdata=cm,
        text=np.where(cm > 0, np.round(share * 100).astype(int).astype(str), "") if small else None,
        texttemplate="%{text}" if small else None,
        hovertemplate="true %{y} → predicted %{x}<br>%{z:.0%} of its cases (%{customdata:,})<extra></extra>",
        colorbar={"title": "share", "tickformat": ".0%"}))
    # every class labelled (plotly thins crowded labels, which hid two on a projector), and
    # cells of at least ~30 px: the figure grows with the number of classes
    ticks = {"tickmode": "array", "tickvals": names, "ticktext": names, "automargin": True}
    fig.update_layout(**_LAYOUT, height=max(420, 160 + 34 * len(names)),
                      xaxis={"title": "predicted class", "type": "category", "side": "bottom",
                             "tickangle": -45 if len(names) > 6 else 0, **ticks},
                      yaxis={"title": "true class", "type": "category", "autorange": "reversed", **ticks})
    return fig

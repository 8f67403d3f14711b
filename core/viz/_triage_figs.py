"""Figures of rare-class triage: a model under a shifted class mix, one class's operating
point, and the class mix estimated for a batch of new cases. Arrays / DataFrames in,
plotly Figures out; every number drawn is computed by `core.analysis` and passed in.

Colours stay fixed across pages: runs keep their `run_colors`, the training mix is grey,
the estimated mix of new cases teal (a second estimate of it white, outlined), the chosen
operating point black.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from sklearn.metrics import roc_curve

from core.text import plotly_text
from core.viz._fit import wrap_title

__all__ = [
    "SHIFT_METRIC_LABELS",
    "prior_estimate_figure",
    "prior_shift_figure",
    "shift_ratio_label",
    "triage_pr_figure",
    "triage_roc_figure",
    "two_by_two_frame",
]

SHIFT_METRIC_LABELS = {"accuracy": "Accuracy", "balanced_accuracy": "Balanced accuracy", "f1_macro": "Macro F1",
                       "ece": "Calibration error (ECE)"}
_RUN_FALLBACK = ("#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")
_TRAINING, _BATCH, _POINT, _CURVE, _CHANCE = "#9aa5b1", "#17becf", "#111111", "#52606d", "#b0b0b0"
_LAYOUT = {"margin": {"l": 75, "r": 20, "t": 50, "b": 80},
           "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0}}


def shift_ratio_label(ratio: float) -> str:
    """A test mix in words: 'like training (50×)', 'balanced', 'reversed (50×)'."""
    if np.isclose(ratio, 1.0):
        return "balanced"
    if ratio > 1:
        return f"like training ({ratio:g}×)"
    return f"reversed ({1 / ratio:g}×)"


def prior_shift_figure(curves: Mapping[str, pd.DataFrame], metric: str = "balanced_accuracy",
                       colors: Mapping[str, str] | None = None) -> go.Figure:
    """`metric` against the test split's class mix, one line per run (the tables of
    `core.analysis.prior_shift_curve`, columns "ratio" and the metric).

    The x axis is the ratio of the largest to the smallest class share on a log scale,
    running from forward long-tailed (the training order, left) through balanced to
    backward long-tailed (the order reversed, right), with those three marks named in words.
    """
    if metric not in SHIFT_METRIC_LABELS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(SHIFT_METRIC_LABELS)}")
    fig = go.Figure()
    ratios: list[float] = []
    for n, (run, table) in enumerate(curves.items()):
        table = table.sort_values("ratio", ascending=False)
        color = (colors or {}).get(run) or _RUN_FALLBACK[n % len(_RUN_FALLBACK)]
        name = plotly_text(run)
        words = [shift_ratio_label(r) for r in table["ratio"]]
        fig.add_trace(go.Scatter(
            x=table["ratio"].to_numpy(dtype=float), y=table[metric].to_numpy(dtype=float), name=name,
            mode="lines+markers", line={"color": color}, marker={"size": 6}, customdata=words,
            hovertemplate=f"<b>{name}</b><br>test mix %{{customdata}}<br>"
                          f"{SHIFT_METRIC_LABELS[metric].lower()} %{{y:.3f}}<extra></extra>"))
        ratios += table["ratio"].tolist()
    fig.update_layout(**_LAYOUT, height=400, showlegend=True)
    if ratios:
        high, low = max(ratios), min(ratios)
        ticks = sorted({high, 1.0, low, *(r for r in (10.0, 0.1) if low < r < high)}, reverse=True)
        fig.update_xaxes(type="log", autorange="reversed", tickvals=ticks,
                         ticktext=[shift_ratio_label(t).replace(" (", "<br>(") for t in ticks])
        fig.add_vline(x=1.0, line={"dash": "dot", "color": _CHANCE, "width": 1})
    else:
        fig.update_xaxes(type="log", autorange="reversed")
    fig.update_xaxes(title="class mix of the test cases: common classes first (left), balanced, "
                           "rare classes first (right)")
    values = [v for t in curves.values() for v in t[metric].to_numpy(dtype=float) if np.isfinite(v)]
    fig.update_yaxes(title=SHIFT_METRIC_LABELS[metric], range=_score_range(values, metric))
    return fig


def _score_range(values: list[float], metric: str, min_span: float = 0.2) -> list[float] | None:
    """The values with a margin, never past the score's own bounds (0 and, but for ECE, 1),
    and never so narrow that a flat line fills the chart with noise."""
    if not values:
        return None
    low, high = min(values), max(values)
    pad = max((min_span - (high - low)) / 2, 0.03)
    low, high = max(low - pad, 0.0), high + pad
    if metric != "ece":
        high = min(high, 1.0 + 0.01)
    return [low, high]


def _point_value(point: Mapping[str, Any], key: str) -> float:
    value = point[key]
    return float(value["value"] if isinstance(value, Mapping) else value)


def triage_roc_figure(scores: np.ndarray, positive: np.ndarray, point: Mapping[str, Any],
                      class_name: str) -> go.Figure:
    """ROC curve of one class against the rest (`scores` = its probability), with the
    operating point `point` (a `core.analysis.operating_point` result) marked."""
    positive = np.asarray(positive, dtype=bool)
    fig = go.Figure()
    name = plotly_text(class_name)
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="guessing", hoverinfo="skip",
                             line={"dash": "dot", "color": _CHANCE, "width": 1}))
    if positive.any() and (~positive).any():
        fpr, tpr, thresholds = roc_curve(positive.astype(int), np.asarray(scores, dtype=float))
        fig.add_trace(go.Scatter(
            x=fpr, y=tpr, mode="lines", line={"shape": "hv", "color": _CURVE}, name=f"{name}: every threshold",
            customdata=np.minimum(thresholds, 1.0),
            hovertemplate="threshold %{customdata:.3f}<br>false alarms %{x:.1%} of others<br>"
                          "finds %{y:.1%} of " + name + "<extra></extra>"))
    x, y = 1 - _point_value(point, "specificity"), _point_value(point, "sensitivity")
    fig.add_trace(go.Scatter(
        x=[x], y=[y], mode="markers", name=f"threshold {float(point['threshold']):.3f}",
        marker={"color": _POINT, "size": 13, "symbol": "x"}, customdata=[float(point["threshold"])],
        hovertemplate="chosen threshold %{customdata:.3f}<br>false alarms %{x:.1%}<br>sensitivity %{y:.1%}"
                      "<extra></extra>"))
    fig.update_layout(**_LAYOUT, height=380)
    fig.update_xaxes(title="false alarms (others flagged)", range=[-0.01, 1.01])
    fig.update_yaxes(title=wrap_title(f"sensitivity: share of {class_name} found"), range=[-0.01, 1.02])
    return fig


def triage_pr_figure(scores: np.ndarray, positive: np.ndarray, point: Mapping[str, Any], class_name: str,
                     prevalence: float | None = None) -> go.Figure:
    """Precision (PPV) against sensitivity for one class, at `prevalence` (default: the
    test cases' own share of the class), with the operating point `point` marked.

    At another prevalence than the sample's, precision follows from the same sensitivity and
    false-alarm rate by Bayes' rule, so the curve is the one a clinic with that mix would see.
    """
    positive = np.asarray(positive, dtype=bool)
    prevalence = float(positive.mean()) if prevalence is None else float(prevalence)
    fig = go.Figure()
    name = plotly_text(class_name)
    fig.add_trace(go.Scatter(x=[0, 1], y=[prevalence, prevalence], mode="lines", name="guessing", hoverinfo="skip",
                             line={"dash": "dot", "color": _CHANCE, "width": 1}))
    if positive.any() and (~positive).any():
        fpr, tpr, thresholds = roc_curve(positive.astype(int), np.asarray(scores, dtype=float), drop_intermediate=False)
        flagged = tpr * prevalence + fpr * (1 - prevalence)
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(flagged > 0, tpr * prevalence / flagged, 1.0)
        fig.add_trace(go.Scatter(
            x=tpr, y=precision, mode="lines", line={"color": _CURVE}, name=f"{name}: every threshold",
            customdata=np.minimum(thresholds, 1.0),
            hovertemplate="threshold %{customdata:.3f}<br>finds %{x:.1%}<br>a positive call is right %{y:.1%} "
                          "of the time<extra></extra>"))
    x, y = _point_value(point, "sensitivity"), _point_value(point, "ppv")
    fig.add_trace(go.Scatter(
        x=[x], y=[y], mode="markers", name=f"threshold {float(point['threshold']):.3f}",
        marker={"color": _POINT, "size": 13, "symbol": "x"}, customdata=[float(point["threshold"])],
        hovertemplate="chosen threshold %{customdata:.3f}<br>sensitivity %{x:.1%}<br>PPV %{y:.1%}<extra></extra>"))
    fig.update_layout(**_LAYOUT, height=380)
    fig.update_xaxes(title=wrap_title(f"sensitivity: share of {class_name} found"), range=[-0.01, 1.01])
    fig.update_yaxes(title=wrap_title(f"PPV: flags that are right (at {prevalence:.1%})"), range=[-0.01, 1.02])
    return fig


def two_by_two_frame(point: Mapping[str, Any], class_name: str) -> pd.DataFrame:
    """The 2x2 table of an operating point: the model's call (rows) against the truth
    (columns), counted on the test cases, with totals. Plain text for a table (not markup)."""
    tp, fp, fn, tn = (int(point[k]) for k in ("tp", "fp", "fn", "tn"))
    return pd.DataFrame(
        {f"truly {class_name}": [tp, fn, tp + fn], f"truly not {class_name}": [fp, tn, fp + tn],
         "total": [tp + fp, fn + tn, tp + fp + fn + tn]},
        index=[f"model says {class_name}", f"model says not {class_name}", "total"])


def prior_estimate_figure(class_names: Sequence[str], estimate: Mapping[str, Any],
                          training_prior: Sequence[float], *, reference_name: str = "training mix",
                          estimate_name: str = "new cases (estimated)", check: Mapping[str, Any] | None = None,
                          check_name: str = "second method") -> go.Figure:
    """The class mix estimated for a batch of new cases (bars with their interval,
    `estimate` = {"prior", "low", "high"}) beside a reference mix (`training_prior`, named
    `reference_name`), and optionally a second estimate of the same mix (`check`, same
    keys) as outlined white bars with their own interval, so two methods read side by side."""
    names = [plotly_text(n) for n in class_names]
    prior = np.asarray(estimate["prior"], dtype=float)
    low, high = np.asarray(estimate["low"], dtype=float), np.asarray(estimate["high"], dtype=float)
    fig = go.Figure()
    reference = plotly_text(reference_name)
    fig.add_trace(go.Bar(x=names, y=np.asarray(training_prior, dtype=float), name=reference,
                         marker={"color": _TRAINING}, hovertemplate=f"%{{x}}: %{{y:.1%}} ({reference})<extra></extra>"))
    fig.add_trace(go.Bar(
        x=names, y=prior, name=plotly_text(estimate_name), marker={"color": _BATCH},
        error_y={"type": "data", "symmetric": False, "array": high - prior, "arrayminus": prior - low,
                 "color": _POINT},
        customdata=np.column_stack([low, high]),
        hovertemplate="%{x}: %{y:.1%} of the new cases<br>95 % interval %{customdata[0]:.1%} to "
                      "%{customdata[1]:.1%}<extra></extra>"))
    if check is not None:
        value = np.asarray(check["prior"], dtype=float)
        c_low, c_high = np.asarray(check["low"], dtype=float), np.asarray(check["high"], dtype=float)
        label = plotly_text(check_name)
        fig.add_trace(go.Bar(
            x=names, y=value, name=label, marker={"color": "#ffffff", "line": {"color": _POINT, "width": 1}},
            error_y={"type": "data", "symmetric": False, "array": c_high - value, "arrayminus": value - c_low,
                     "color": _POINT},
            customdata=np.column_stack([c_low, c_high]),
            hovertemplate="%{x}: %{y:.1%} by " + label + "<br>95 % interval %{customdata[0]:.1%} to "
                          "%{customdata[1]:.1%}<extra></extra>"))
    fig.update_layout(**_LAYOUT, height=380, barmode="group")
    fig.update_yaxes(title="share of cases", tickformat=".0%", rangemode="tozero")
    return fig

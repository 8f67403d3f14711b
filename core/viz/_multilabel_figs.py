"""Figures of a multi-label run: each finding's average precision against how often it was
seen in training (the counterpart of recall against class count), and which findings come
together (the co-occurrence matrix, as counts or as conditional probabilities), with the
rare findings marked."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.text import plotly_text
from core.viz._results_figs import GROUP_COLORS, _error_bars, _layout, _log_ticks

__all__ = ["label_ap_figure", "cooccurrence_figure", "conditional_cooccurrence", "RARE_MARK"]

RARE_MARK = "★"  # beside a rare (tail) finding's name on the co-occurrence axes


def label_ap_figure(per_label: pd.DataFrame) -> go.Figure:
    """Per-label AP (y) against the label's training positives (log x), one colour per group,
    with 95 % error bars from `ap_low` / `ap_high`. Expects the rows of a multi-label run's
    `metrics.json` `per_label` (label, train_count, test_positives, group, ap, ap_low, ap_high)."""
    df = per_label.reset_index(drop=True)
    fig = go.Figure()
    for group, color in GROUP_COLORS.items():
        part = df[df["group"] == group]
        if part.empty:
            continue
        fig.add_trace(go.Scatter(
            x=part["train_count"].to_numpy(dtype=float), y=part["ap"].to_numpy(dtype=float), mode="markers",
            name=group, error_y=_error_bars(part, "ap", color), marker={"color": color, "size": 11},
            customdata=np.stack([part["label"].map(plotly_text).to_numpy(), part["test_positives"].to_numpy()],
                                axis=1),
            hovertemplate="finding <b>%{customdata[0]}</b><br>%{x} training cases with it<br>"
                          "average precision %{y:.2f}<br>%{customdata[1]} test cases with it"
                          "<extra>%{fullData.name}</extra>"))
    _layout(fig, None)
    counts = df["train_count"].to_numpy(dtype=float)
    positive = counts[counts > 0]
    span = [np.log10(positive.min()) - 0.15, np.log10(positive.max()) + 0.15] if positive.size else None
    fig.update_xaxes(title="training cases carrying the finding (log scale)", type="log", range=span,
                     tickvals=_log_ticks(counts))
    fig.update_yaxes(title="average precision (AP)", range=[-0.05, 1.05])
    return fig


def conditional_cooccurrence(counts: np.ndarray) -> np.ndarray:
    """P(column finding | row finding): each row divided by its diagonal (the row finding's
    cases); NaN for a finding never seen."""
    counts = np.asarray(counts, dtype=float)
    own = np.diag(counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(own[:, None] > 0, counts / own[:, None], np.nan)


def cooccurrence_figure(counts: np.ndarray, names: Sequence[str], groups: Sequence[str], *,
                        conditional: bool = False) -> go.Figure:
    """Heat map of the training co-occurrence matrix: cell (i, j) counts training cases known to
    carry both findings i and j, or, `conditional`, the share of finding i's cases that also
    carry j. Rare (tail) findings are marked with `RARE_MARK` on both axes."""
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] != len(names):
        raise ValueError(f"counts must be a square matrix with one row per finding ({len(names)}), "
                         f"got shape {counts.shape}")
    labels = [plotly_text(f"{RARE_MARK} {n}" if g == "tail" else str(n)) for n, g in zip(names, groups)]
    values = conditional_cooccurrence(counts) if conditional else counts.astype(float)
    text = [[("" if not np.isfinite(v) else f"{v:.0%}" if conditional else f"{int(v)}") for v in row]
            for row in values]
    hover = ("of cases with <b>%{y}</b>, %{z:.0%} also carry <b>%{x}</b>" if conditional
             else "<b>%{y}</b> and <b>%{x}</b> together in %{z:.0f} training cases")
    fig = go.Figure(go.Heatmap(z=values, x=labels, y=labels, text=text, texttemplate="%{text}",
                               colorscale="Blues", zmin=0, zmax=1 if conditional else None,
                               hovertemplate=hover + "<extra></extra>",
                               colorbar={"title": "share" if conditional else "cases"}))
    _layout(fig, None, height=max(360, 40 * len(names) + 120))
    fig.update_yaxes(autorange="reversed", title="finding" + (" (given)" if conditional else ""))
    fig.update_xaxes(title="finding" + (" (also present)" if conditional else ""))
    return fig

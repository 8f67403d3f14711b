"""Figures for one run's results and for comparing runs: arrays / DataFrames in, plotly out.

Conventions shared by every per-class view: classes run head to tail (largest training
count first), and head / medium / tail are always the same three colours
(`GROUP_COLORS`). Confusion matrices put the truth on rows and the prediction on columns,
as sklearn does.

A few small table helpers live here too (`cell_samples`, `tail_warnings`,
`image_thumbnails`): they shape arrays for display and never compute a metric.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from sklearn.metrics import average_precision_score, precision_recall_curve

from core.analysis import FEW_CASES
from core.glossary import display_name
from core.text import md, plotly_text
from core.viz._fit import wrap_title

__all__ = [
    "GROUP_COLORS",
    "RUN_COLORS",
    "cell_samples",
    "confusion_figure",
    "confusion_selection",
    "curves_overlay_figure",
    "group_bars_figure",
    "group_comparison_figure",
    "image_thumbnails",
    "metric_comparison_figure",
    "metric_difference_figure",
    "paired_difference_figure",
    "per_class_figure",
    "run_colors",
    "pr_curve_figure",
    "tail_warnings",
]

GROUP_COLORS: dict[str, str] = {"head": "#1f77b4", "medium": "#ff7f0e", "tail": "#d62728"}
# Runs get colours that are not the group colours, so a run never reads as a group.
RUN_COLORS: tuple[str, ...] = ("#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")
POSITIVE, NEGATIVE = "#2ca02c", "#d62728"
METRIC_LABELS = {"precision": "Precision", "recall": "Recall (hit rate)", "f1": "F1"}
_TEXT_IN_CELLS_UP_TO = 20  # more classes than this: numbers only on hover


def _layout(fig: go.Figure, title: str | None, height: int = 420) -> go.Figure:
    fig.update_layout(title=title, height=height, margin={"l": 60, "r": 20, "t": 50, "b": 50},
                      legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0})
    return fig


# --- one run ----------------------------------------------------------------------------


def confusion_figure(
    cm_counts: np.ndarray,
    class_names: Sequence[str],
    order: Sequence[int] | None = None,
    normalize: bool = False,
    highlight: Sequence[tuple[int, int]] = (),
) -> go.Figure:
    """Confusion-matrix heatmap, rows = true class, columns = predicted class.

    `cm_counts` is the K x K count matrix in class-index order; `order` lists class
    indices in display order (head to tail), default 0..K-1. With `normalize`, cells are
    row fractions (the diagonal is each class's recall). Hover always shows the count and
    the row percentage; `highlight` (true, predicted) cells get an outline. A second, invisible scatter trace sits on the cell centres with
    `customdata = [true index, predicted index, count, row fraction]`: heatmap cells cannot
    be selected in plotly, markers can, so a click on a cell selects that marker. Click and
    drag modes are left to the host (Streamlit sets them from its `selection_mode`).
    """
    cm = np.asarray(cm_counts, dtype=np.float64)
    k = cm.shape[0]
    if cm.shape != (k, k):
        raise ValueError(f"cm_counts must be square, got {cm.shape}")
    if len(class_names) != k:
        raise ValueError(f"{len(class_names)} class names for {k} classes")
    idx = np.arange(k) if order is None else np.asarray(order, dtype=np.int64)
    if sorted(idx.tolist()) != list(range(k)):
        raise ValueError("order must be a permutation of the class indices")
    counts = cm[np.ix_(idx, idx)]
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(totals > 0, counts / np.where(totals > 0, totals, 1), 0.0)
    names = [plotly_text(class_names[i]) for i in idx]
    z = frac if normalize else counts
    heat = go.Heatmap(
        z=z, x=names, y=names, colorscale="Blues", zmin=0, zmax=1 if normalize else max(float(z.max()), 1.0),
        colorbar={"title": "share of row" if normalize else "count"}, hoverinfo="skip", name="confusion",
        texttemplate=("%{z:.2f}" if normalize else "%{z:.0f}") if k <= _TEXT_IN_CELLS_UP_TO else None,
    )
    tt, pp = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    custom = np.stack([idx[tt].ravel(), idx[pp].ravel(), counts.ravel(), frac.ravel()], axis=1)
    cells = go.Scatter(
        x=[names[j] for j in pp.ravel()], y=[names[i] for i in tt.ravel()], mode="markers", name="cells",
        marker={"symbol": "square", "size": max(8, min(40, 480 // k)), "color": "rgba(0,0,0,0)"},
        customdata=custom, showlegend=False,
        hovertemplate="true <b>%{y}</b>, predicted <b>%{x}</b><br>%{customdata[2]:.0f} samples"
                      " (%{customdata[3]:.1%} of this true class)<extra></extra>",
    )
    fig = go.Figure([heat, cells])
    position = {int(c): n for n, c in enumerate(idx)}
    for t, p in highlight:
        fig.add_shape(type="rect", x0=position[p] - 0.5, x1=position[p] + 0.5, y0=position[t] - 0.5,
                      y1=position[t] + 0.5, line={"color": "#d62728", "width": 3}, layer="above")
    _layout(fig, None, height=max(440, min(900, 120 + 36 * k)))
    fig.update_xaxes(title="predicted class", type="category", side="bottom", showgrid=False)
    fig.update_yaxes(title="true class", type="category", autorange="reversed", showgrid=False)
    return fig


def confusion_selection(points: Sequence[Mapping[str, Any]]) -> list[tuple[int, int]]:
    """(true, predicted) class indices of the cells picked on a `confusion_figure`, sorted.

    Reads the selection points a chart host reports (Streamlit's `event.selection.points`),
    whose `customdata` arrives as a list or as a dict keyed "0", "1", ...; points from
    other traces (without customdata) are ignored.
    """
    cells = set()
    for point in points:
        data = point.get("customdata")
        if data is None:
            continue
        values = [data[str(i)] if isinstance(data, Mapping) else data[i] for i in (0, 1)]
        cells.add((int(values[0]), int(values[1])))
    return sorted(cells)


def _error_bars(df: pd.DataFrame, metric: str, color: str) -> dict | None:
    """Asymmetric 95 % error bars from `<metric>_low` / `<metric>_high` columns, if present."""
    low, high = f"{metric}_low", f"{metric}_high"
    if low not in df or high not in df:
        return None
    value = df[metric].to_numpy(dtype=float)
    return {"type": "data", "symmetric": False, "color": color, "thickness": 1.2, "width": 3,
            "array": np.nan_to_num(df[high].to_numpy(dtype=float) - value),
            "arrayminus": np.nan_to_num(value - df[low].to_numpy(dtype=float))}


def per_class_figure(per_class_df: pd.DataFrame, metric: str = "recall") -> go.Figure:
    """Per-class `metric` against training count (log x), one colour per group, with 95 %
    error bars when the table has `<metric>_low` / `<metric>_high` (Wilson intervals for
    one run, t-intervals over an experiment's runs).

    Expects the columns of `core.analysis.per_class_metrics` (class, count_train, group,
    precision, recall, f1, support).
    """
    if metric not in per_class_df:
        raise ValueError(f"no column {metric!r}; have {list(per_class_df.columns)}")
    fig = go.Figure()
    per_run = per_class_df["support"] / (per_class_df["n_runs"] if "n_runs" in per_class_df else 1)
    few = (per_run < FEW_CASES).to_numpy()
    for group, color in GROUP_COLORS.items():
        inside = (per_class_df["group"] == group).to_numpy()
        part = per_class_df[inside]
        if part.empty:
            continue
        fig.add_trace(go.Scatter(
            x=part["count_train"].to_numpy(), y=part[metric].to_numpy(), mode="markers", name=group,
            error_y=_error_bars(part, metric, color),
            marker={"color": color, "size": 11, "line": {"width": 2, "color": [color if f else "white" for f in few[
                inside]]}, "symbol": ["circle-open" if f else "circle" for f in few[inside]]},
            customdata=np.stack([part["class"].map(plotly_text).to_numpy(), part["support"].to_numpy(),
                                 np.where(few[inside], " (few: read with care)", "")], axis=1),
            hovertemplate="class <b>%{customdata[0]}</b><br>%{x} training samples<br>"
                          f"{METRIC_LABELS.get(metric, metric)} %{{y:.2f}}<br>%{{customdata[1]}} test samples"
                          "%{customdata[2]}<extra>%{fullData.name}</extra>",
        ))
    if few.any():  # a legend entry for the hollow marks
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"hollow: fewer than {FEW_CASES} test cases",
                                 marker={"symbol": "circle-open", "size": 11, "color": "#555"}, hoverinfo="skip"))
    _layout(fig, None)
    counts = per_class_df["count_train"].to_numpy(dtype=float)
    positive = counts[counts > 0]
    span = [np.log10(positive.min()) - 0.15, np.log10(positive.max()) + 0.15] if positive.size else None
    fig.update_xaxes(title="training samples of the class (log scale)", type="log", range=span,
                     tickvals=_log_ticks(counts))
    fig.update_yaxes(title=METRIC_LABELS.get(metric, metric), range=[-0.05, 1.05])
    return fig


def _log_ticks(values: np.ndarray) -> list[int]:
    """1-2-5 ticks spanning the values, so a log axis reads as plain numbers."""
    values = np.asarray(values, dtype=float)
    values = values[values > 0]
    if values.size == 0:
        return [1, 10, 100]
    lo, hi = values.min(), values.max()
    ticks = [m * 10**e for e in range(0, 8) for m in (1, 2, 5)]
    inside = [t for t in ticks if lo / 1.5 <= t <= hi * 1.5]
    return inside if len(inside) >= 2 else [t for t in ticks if lo / 10 <= t <= hi * 10]


def group_bars_figure(groups_df: pd.DataFrame) -> go.Figure:
    """Head / medium / tail accuracy bars (columns of `core.analysis.group_metrics`)."""
    df = groups_df.reset_index(drop=True)
    fig = go.Figure(go.Bar(
        x=df["group"].tolist(), y=df["accuracy"].to_numpy(dtype=float),
        marker_color=[GROUP_COLORS.get(g, "#7f7f7f") for g in df["group"]],
        text=[f"{a:.0%}" if np.isfinite(a) else "n/a" for a in df["accuracy"].to_numpy(dtype=float)],
        textposition="outside",
        customdata=df[["n_classes", "n_train", "n_test"]].to_numpy(),
        hovertemplate="<b>%{x}</b>: mean recall %{y:.2f}<br>%{customdata[0]} classes, "
                      "%{customdata[1]} training and %{customdata[2]} test samples<extra></extra>",
    ))
    _layout(fig, None, height=360)
    fig.update_yaxes(title="mean recall of the group's classes", range=[0, 1.12])
    fig.update_xaxes(title=None)
    return fig


def pr_curve_figure(
    probs: np.ndarray, labels: np.ndarray, class_indices: Sequence[int], class_names: Sequence[str]
) -> go.Figure:
    """One-vs-rest precision-recall curve of each chosen class (sklearn's
    `precision_recall_curve`), average precision in the legend, and each class's
    prevalence as the dotted chance line."""
    probs = np.asarray(probs)
    y = np.asarray(labels)
    fig = go.Figure()
    for n, j in enumerate(class_indices):
        positives = (y == j).astype(int)
        name = plotly_text(class_names[j])
        color = RUN_COLORS[n % len(RUN_COLORS)]
        if positives.sum() == 0:
            continue  # no curve without positives
        precision, recall, _ = precision_recall_curve(positives, probs[:, j])
        ap = average_precision_score(positives, probs[:, j])
        fig.add_trace(go.Scatter(
            x=recall, y=precision, mode="lines", line={"shape": "hv", "color": color}, name=f"{name} (AP {ap:.2f})",
            hovertemplate=f"class <b>{name}</b><br>recall %{{x:.2f}}<br>precision %{{y:.2f}}<extra></extra>",
        ))
        prevalence = positives.mean()
        fig.add_trace(go.Scatter(x=[0, 1], y=[prevalence, prevalence], mode="lines", showlegend=False,
                                 line={"dash": "dot", "color": color, "width": 1}, hoverinfo="skip",
                                 name=f"{name} chance"))
    _layout(fig, None)
    fig.update_xaxes(title="recall: share of the class found", range=[0, 1.02])
    fig.update_yaxes(title="precision: share of claims that are right", range=[0, 1.05])
    return fig


# --- comparing runs ---------------------------------------------------------------------


def run_colors(keys: Sequence[str]) -> dict[str, str]:
    """One colour per run, fixed by the order given (e.g. creation order), so a run keeps
    its colour in every chart and whichever run is the reference."""
    return {key: RUN_COLORS[n % len(RUN_COLORS)] for n, key in enumerate(keys)}


def _colors(runs: Sequence[str], colors: Mapping[str, str] | None) -> dict[str, str]:
    return dict(colors) if colors else run_colors(runs)


def metric_comparison_figure(per_class_by_run: Mapping[str, pd.DataFrame], metric: str = "recall",
                             colors: Mapping[str, str] | None = None) -> go.Figure:
    """Per-class `metric` side by side, one bar colour per run, classes head to tail (in
    the first run's order; runs being compared share the data set); 95 % error bars when
    the tables carry `<metric>_low` / `<metric>_high`."""
    fig = go.Figure()
    runs = list(per_class_by_run)
    if not runs:
        return _layout(fig, None)
    colors = _colors(runs, colors)
    order = per_class_by_run[runs[0]]["class"].astype(str).tolist()
    for run in runs:
        df = per_class_by_run[run].assign(**{"class": lambda d: d["class"].astype(str)}).set_index("class")
        df = df.reindex(order)
        fig.add_trace(go.Bar(
            x=[plotly_text(c) for c in order], y=df[metric].to_numpy(dtype=float), name=wrap_title(run, 40),
            marker_color=colors[run], error_y=_error_bars(df, metric, "#333"), customdata=df["count_train"].to_numpy(),
            hovertemplate=f"<b>{plotly_text(run)}</b><br>class %{{x}} (%{{customdata}} training samples)<br>"
                          f"{METRIC_LABELS.get(metric, metric)} %{{y:.2f}}<extra></extra>",
        ))
    _layout(fig, None)
    fig.update_layout(barmode="group")
    fig.update_xaxes(title="class (most training samples on the left)", type="category")
    fig.update_yaxes(title=METRIC_LABELS.get(metric, metric), range=[0, 1.05])
    return fig


def metric_difference_figure(per_class_by_run: Mapping[str, pd.DataFrame], metric: str = "recall",
                             reference: str | None = None, colors: Mapping[str, str] | None = None) -> go.Figure:
    """Per-class `metric` of every other run minus the `reference` run's (default: the
    first), one bar colour per run as in the other charts; classes head to tail."""
    fig = go.Figure()
    runs = list(per_class_by_run)
    if len(runs) < 2:
        return _layout(fig, None)
    reference = reference if reference in per_class_by_run else runs[0]
    colors = _colors(runs, colors)
    base = per_class_by_run[reference].assign(**{"class": lambda d: d["class"].astype(str)}).set_index("class")
    order = base.index.tolist()
    for run in (r for r in runs if r != reference):
        other = per_class_by_run[run].assign(**{"class": lambda d: d["class"].astype(str)}).set_index("class")
        diff = other[metric].reindex(order).to_numpy(dtype=float) - base[metric].to_numpy(dtype=float)
        fig.add_trace(go.Bar(
            x=[plotly_text(c) for c in order], y=diff, name=wrap_title(f"{run} − {reference}", 40),
            marker_color=colors[run], customdata=base["count_train"].to_numpy(),
            hovertemplate=f"<b>{plotly_text(run)}</b> vs <b>{plotly_text(reference)}</b><br>class %{{x}} "
                          f"(%{{customdata}} training samples)<br>{METRIC_LABELS.get(metric, metric)} change "
                          "%{y:+.2f}<extra></extra>",
        ))
    _layout(fig, None)
    fig.update_layout(barmode="group", showlegend=True)
    fig.add_hline(y=0, line_color="#444", line_width=1)
    fig.update_xaxes(title="class (most training samples on the left)", type="category")
    fig.update_yaxes(title=wrap_title(f"change in {METRIC_LABELS.get(metric, metric).lower()} (above 0: better "
                                      f"than {reference})", 45), zeroline=True)
    return fig


def paired_difference_figure(comparisons: pd.DataFrame, reference: str, metric_label: str,
                             colors: Mapping[str, str] | None = None, higher_is_better: bool | None = True
                             ) -> go.Figure:
    """Each run's difference to the reference with its interval (a forest plot): a filled dot
    is a difference beyond noise, an open one is not. Columns: run, difference, low, high,
    verdict, and optionally status (the comparison's own; else read from the interval) and
    confidence (the interval's level, lower than 0.95 once adjusted for several runs)."""
    fig = go.Figure()
    runs = comparisons["run"].tolist()
    colors = _colors(runs, colors)
    title = f"difference in {metric_label} against {reference}"
    reference = plotly_text(reference)
    for row in comparisons.to_dict(orient="records"):
        low, high, diff = (float(row[k]) if row[k] is not None else math.nan for k in ("low", "high", "difference"))
        has_interval = math.isfinite(low) and math.isfinite(high)
        status = row.get("status") or ("within noise" if not has_interval or low <= 0 <= high else "better")
        beyond = status in ("better", "worse", "different")
        run, color = plotly_text(row["run"]), colors.get(row["run"], "#444")
        level = float(row.get("confidence") or 0.95)
        interval = (f"{level:.1%} interval [{low:+.3f}, {high:+.3f}]" if has_interval else "no interval")
        fig.add_trace(go.Scatter(
            x=[diff], y=[wrap_title(row["run"], 28)], mode="markers", name=run, showlegend=False,
            marker={"color": color, "size": 13, "symbol": "circle" if beyond else "circle-open",
                    "line": {"width": 2, "color": color}},
            error_x={"type": "data", "symmetric": False, "array": [high - diff if has_interval else 0],
                     "arrayminus": [diff - low if has_interval else 0], "color": color, "thickness": 2,
                     "visible": has_interval},
            hovertemplate=f"<b>{run}</b> − <b>{reference}</b><br>{metric_label} %{{x:+.3f}}<br>{interval}<br>"
                          f"{plotly_text(row['verdict'])}<extra></extra>",
        ))
    _layout(fig, None, height=max(200, 110 + 60 * len(runs)))
    fig.add_vline(x=0, line_color="#444", line_width=1, line_dash="dot")
    side = {True: " (right of the line: better)", False: " (left of the line: better)"}.get(higher_is_better, "")
    x_title = wrap_title(title + side, 55)
    fig.update_layout(margin={"b": 45 + 17 * x_title.count("<br>") + 17})  # room for every line of the title
    fig.update_xaxes(title=x_title, zeroline=False)
    fig.update_yaxes(type="category", autorange="reversed")
    return fig


def group_comparison_figure(groups_by_run: Mapping[str, pd.DataFrame],
                            colors: Mapping[str, str] | None = None) -> go.Figure:
    """Head / medium / tail accuracy, one bar per run inside each group."""
    fig = go.Figure()
    colors = _colors(list(groups_by_run), colors)
    for run, df in groups_by_run.items():
        acc = df["accuracy"].to_numpy(dtype=float)
        fig.add_trace(go.Bar(
            x=df["group"].tolist(), y=acc, name=wrap_title(run, 40), marker_color=colors[run],
            text=[f"{a:.0%}" if np.isfinite(a) else "" for a in acc], textposition="outside",
            hovertemplate=f"<b>{plotly_text(run)}</b><br>%{{x}}: mean recall %{{y:.2f}}<extra></extra>",
        ))
    _layout(fig, None, height=380)
    fig.update_layout(barmode="group")
    fig.update_xaxes(categoryorder="array", categoryarray=list(GROUP_COLORS))
    fig.update_yaxes(title="mean recall of the group's classes", range=[0, 1.12])
    return fig


def curves_overlay_figure(
    histories: Mapping[str, Sequence[Mapping[str, Any]]], key: str = "val_balanced_accuracy",
    colors: Mapping[str, str] | None = None,
) -> go.Figure:
    """One line per run: `key` of the run history per epoch."""
    fig = go.Figure()
    colors = _colors(list(histories), colors)
    for run, history in histories.items():
        rows = [r for r in history if r.get(key) is not None]
        fig.add_trace(go.Scatter(
            x=[r["epoch"] for r in rows], y=[r[key] for r in rows], name=wrap_title(run, 40), mode="lines+markers",
            line={"color": colors[run]}, marker={"size": 5},
            hovertemplate=f"<b>{plotly_text(run)}</b><br>epoch %{{x}}: %{{y:.3f}}<extra></extra>",
        ))
    _layout(fig, None, height=380)
    longest = max((len(h) for h in histories.values()), default=0)
    fig.update_xaxes(title="epoch", dtick=max(1, round(longest / 10)))
    fig.update_yaxes(title=display_name(key))
    return fig


# --- table helpers ----------------------------------------------------------------------


def cell_samples(
    labels: np.ndarray, probs: np.ndarray, cells: Sequence[tuple[int, int]], class_names: Sequence[str],
    ids: Sequence[str] | None = None, id_name: str = "case",
) -> pd.DataFrame:
    """Test samples in the chosen confusion cells (true, predicted), most confident first.

    Columns: position (row in the run's test arrays), the case's identifier under its own
    name when `ids` are given (e.g. "patient_id": "P-00412"), true, predicted, confidence
    (the probability the model gave its prediction), p_true (what it gave the truth).
    """
    y = np.asarray(labels)
    p = np.asarray(probs)
    pred = p.argmax(axis=1)
    mask = np.zeros(y.shape[0], dtype=bool)
    for t, q in cells:
        mask |= (y == t) & (pred == q)
    rows = np.flatnonzero(mask)
    names = np.asarray([str(c) for c in class_names], dtype=object)
    df = pd.DataFrame({"position": rows})
    if ids is not None:
        df[id_name] = np.asarray(ids, dtype=str)[rows] if len(rows) else np.zeros(0, dtype=str)
    df = df.assign(true=names[y[rows]], predicted=names[pred[rows]], confidence=p[rows, pred[rows]],
                   p_true=p[rows, y[rows]])
    return df.sort_values("confidence", ascending=False, kind="stable").reset_index(drop=True)


def tail_warnings(summary: Mapping[str, float], per_class_df: pd.DataFrame, gap: float = 0.05,
                  worst: int = 3) -> list[str]:
    """Plain-language warnings, as markdown (class names escaped): accuracy well above
    balanced accuracy (the common classes carry it), and classes the model never recognises."""
    notes = []
    tested = per_class_df[per_class_df["support"] > 0]
    lowest = tested.sort_values(["recall", "count_train"], kind="stable").head(worst)
    names = ", ".join(f"{md(c)} (hit rate {r:.0%}, {round(n)} training samples)"
                      for c, r, n in zip(lowest["class"], lowest["recall"], lowest["count_train"], strict=True))
    acc, bal = summary.get("accuracy", np.nan), summary.get("balanced_accuracy", np.nan)
    if np.isfinite(acc) and np.isfinite(bal) and acc - bal > gap:
        notes.append(f"**Accuracy hides the tail:** {acc:.1%} of all test cases are right, but the average "
                     f"class is found only {bal:.1%} of the time, because the common classes dominate the "
                     f"test set. Worst classes: {names}.")
    missed = tested[tested["recall"] == 0]
    if len(missed):
        listed = ", ".join(md(c) for c in missed["class"].head(8)) + (" …" if len(missed) > 8 else "")
        notes.append(f"**{len(missed)} of {len(tested)} classes are never recognised** ({listed}): every test "
                     "case of them is given another class, which is why G-mean is 0.")
    return notes


def image_thumbnails(images: np.ndarray, size: int = 96) -> list[np.ndarray]:
    """(N, C, H, W) images as (size x size [x 3]) uint8 thumbnails for display: each image
    stretched to its own min..max, enlarged by pixel repetition (no blur on tiny inputs)."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 3:
        x = x[:, None]
    out = []
    for img in x:
        lo, hi = img.min(), img.max()
        img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
        img = np.moveaxis(img, 0, -1)  # H, W, C
        if img.shape[-1] == 1:
            img = img[..., 0]
        factor = max(1, size // max(img.shape[0], img.shape[1]))
        img = img.repeat(factor, axis=0).repeat(factor, axis=1)
        out.append((img * 255).round().astype(np.uint8))
    return out

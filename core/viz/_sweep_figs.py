"""Figures of a sweep: a grid of experiments, one table row per grid cell, in; plotly out.

The table is `core.jobs.sweep_table`'s: a text column per grid axis (the sweep's labels of
its values), `status`, `runs done`, every metric as `<metric>`, `<metric>_low`,
`<metric>_high` (mean and 95 % interval over the cell's runs), `head_recall` and
`tail_recall` likewise, and the paired comparison with the reference cell:
`difference_vs_reference`, `verdict_vs_reference`, `better_beyond_noise`. Callers pick
the rows to draw (the other axes held at one value each); the builders never compute a
statistic, they only place and mark what the table says.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.text import plotly_text

__all__ = ["SWEEP_COLORS", "REFERENCE_COLOR", "axis_title", "metric_bounds", "is_numeric_axis", "sweep_colors",
           "sweep_heatmap_figure", "sweep_lines_figure", "sweep_tail_head_figure"]

REFERENCE_COLOR = "#3b3b3b"  # the reference (plain cross-entropy) is always this dark grey, dashed
SWEEP_COLORS: tuple[str, ...] = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                                 "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a")
BETTER_COLOR = "#17c964"  # outline of a cell better than the reference beyond noise (seen on dark and light)
HATCH_COLOR = "rgba(90, 90, 90, 0.75)"
MISSING_COLOR = "#ececec"
_AXIS_TITLES = {
    "method": "method", "loss.name": "loss", "sampler.name": "sampler", "stage2.name": "two-stage fix",
    "resampler.name": "resampler", "model.name": "model", "data.source": "dataset",
    "data.imbalance.ratio": "imbalance ratio (largest class / smallest)",
    "data.imbalance.profile": "imbalance profile", "data.imbalance.mu": "share of rare classes (step profile)",
    "train.epochs": "epochs", "train.lr": "learning rate", "train.batch_size": "batch size",
    "train.weight_decay": "weight decay", "train.optimizer": "optimiser", "train.schedule": "learning-rate schedule",
    "loss.drw_epoch": "re-weighting from epoch (DRW)",
}
_STATUS_WORDS = {"queued": "waiting", "running": "training", "failed": "failed", "cancelled": "cancelled",
                 "done": "no result"}
_SIGNED_METRICS = {"mcc": (-1.0, 1.0), "cohen_kappa": (-1.0, 1.0)}


def axis_title(axis: str) -> str:
    """A grid axis in words: `data.imbalance.ratio` -> "imbalance ratio (...)"; an unknown
    dotted key reads as its last part with spaces (`model.hidden` -> "hidden")."""
    return _AXIS_TITLES.get(axis) or axis.rsplit(".", 1)[-1].replace("_", " ")


def metric_bounds(metric: str) -> tuple[float, float]:
    """The values a summary metric can take (an interval reaching past them is cut there)."""
    return _SIGNED_METRICS.get(metric, (0.0, 1.0))


def _number(label: Any) -> float | None:
    try:
        value = float(label)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def is_numeric_axis(labels: Sequence[Any]) -> bool:
    """Every value of the axis is a number (ratios, learning rates): it can be a line's x."""
    return bool(labels) and all(_number(v) is not None for v in labels)


def sweep_colors(labels: Sequence[str], reference: str | None = None) -> dict[str, str]:
    """One colour per value, in order; the reference value always dark grey. The same
    labels give the same colours in every sweep figure."""
    colors, others = {}, iter(SWEEP_COLORS * (1 + len(labels) // len(SWEEP_COLORS)))
    for label in labels:
        colors[label] = REFERENCE_COLOR if label == reference else next(others)
    return colors


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _text(value: Any) -> str | None:
    """A table's text cell, or None when empty (pandas reads a missing text as NaN)."""
    return value if isinstance(value, str) and value else None


def _count(value: Any) -> int:
    number = _finite(value)
    return 0 if number is None else int(number)


def _flag(value: Any) -> bool:
    """True only for a true boolean (a missing one, NaN, is not true)."""
    return isinstance(value, (bool, np.bool_)) and bool(value)


def _order(table: pd.DataFrame, axis: str, given: Sequence[str] | None) -> list[str]:
    if given is not None:
        return [str(v) for v in given]
    return list(dict.fromkeys(str(v) for v in table[axis]))


def _reference_value(reference: Sequence[str] | None, axis: str | None) -> str | None:
    return str(reference[1]) if reference and axis is not None and reference[0] == axis else None


def _is_reference(row: Mapping[str, Any], reference: Sequence[str] | None) -> bool:
    return bool(reference) and str(row.get(reference[0])) == str(reference[1])


def _interval_words(mean: float | None, low: float | None, high: float | None, n_done: int) -> str:
    if mean is None:
        return "no finished run yet"
    runs = f"{n_done} run{'s' if n_done != 1 else ''}"
    if low is None or high is None:
        return f"{mean:.3f} ({runs}: no interval)"
    return f"{mean:.3f} (95 % interval {low:.3f} to {high:.3f}, {runs})"


def _row_interval(row: Mapping[str, Any], key: str) -> str:
    return _interval_words(_finite(row.get(key)), _finite(row.get(f"{key}_low")), _finite(row.get(f"{key}_high")),
                           _count(row.get("runs done")))


_MARKS = {"better": "▲ better", "worse": "▼ worse", "different": "≠ different", "within noise": "≈ within noise",
          "too few": "too few seeds", "cannot tell": "cannot tell"}


def _verdict_words(row: Mapping[str, Any], reference: Sequence[str] | None) -> tuple[str, str]:
    """(short mark for the cell, sentence for the hover) of the cell against the reference,
    read from `status_vs_reference` (the comparison's own status, adjusted with the map's
    other cells) and `verdict_vs_reference` (its words, with raw and adjusted p)."""
    if _is_reference(row, reference):
        return "reference", "the reference: every other cell is compared with this one"
    verdict = _text(row.get("verdict_vs_reference"))
    ref = plotly_text(reference[1]) if reference else "the reference"
    if not verdict:
        return "not tested", f"not compared with {ref} yet (needs finished runs of both, on the same seeds)"
    difference = _finite(row.get("difference_vs_reference"))
    diff = f"{difference:+.3f}, " if difference is not None else ""
    note = _text(row.get("note_vs_reference")) or ""
    mark = _MARKS.get(_text(row.get("status_vs_reference")) or "", "not tested")
    sentence = f"difference from {ref}: {diff}{_wrapped(verdict)}"
    return mark, sentence + (f"<br>{_wrapped(f'({note})')}" if note else "")


def _wrapped(text: str, width: int = 72) -> str:
    """Plain text as escaped hover lines (plotly never wraps a hover label itself)."""
    return "<br>".join(plotly_text(line) for line in textwrap.wrap(text, width))


def _cell_lines(x0: float, y0: float, pieces: Sequence[tuple[float, float, float, float]]) -> tuple[list, list]:
    xs, ys = [], []
    for a, b, c, d in pieces:
        xs += [x0 + a, x0 + c, None]
        ys += [y0 + b, y0 + d, None]
    return xs, ys


def _hatch(cell_w_px: float, cell_h_px: float) -> list[tuple[float, float, float, float]]:
    """Three short 45-degree stripes in two opposite corners of a cell, in data units of a
    cell about `cell_w_px` x `cell_h_px` pixels (so they look alike in wide and tall cells)."""
    pieces = []
    for t in (7, 14, 21):
        dx, dy = min(t / cell_w_px, 0.45), min(t / cell_h_px, 0.45)
        pieces += [(-0.5, -0.5 + dy, -0.5 + dx, -0.5), (0.5 - dx, 0.5, 0.5, 0.5 - dy)]
    return pieces


_OUTLINE = [(-0.47, -0.47, 0.47, -0.47), (0.47, -0.47, 0.47, 0.47), (0.47, 0.47, -0.47, 0.47),
            (-0.47, 0.47, -0.47, -0.47)]


def sweep_heatmap_figure(
    table: pd.DataFrame,
    rows: str,
    columns: str | None,
    metric: str,
    *,
    metric_label: str | None = None,
    reference: Sequence[str] | None = None,
    higher_is_better: bool | None = True,
    row_order: Sequence[str] | None = None,
    column_order: Sequence[str] | None = None,
    run_ids: Mapping[str, str] | None = None,
) -> go.Figure:
    """The metric's mean for every cell, `rows` axis down and `columns` axis across
    (`columns` None: one column, drawn as a narrow strip 640 px wide), each cell written out
    with its verdict against the reference cell (`reference` = (axis, value), e.g.
    ("method", "ce")).

    Marks: a cell *not* better than the reference beyond noise has striped corners (within
    noise, worse, or not tested yet); one that is better has a green outline; the
    reference cell a dashed dark outline. A cell with no finished run is grey and says why
    (waiting, training, failed). A transparent marker on each cell centre carries
    `customdata = [experiment id, run id to open, row value, column value]` (values escaped;
    run id from `run_ids`, experiment -> its first finished run, else "") and the hover
    text, so a click can open the cell (heatmap cells cannot be selected in plotly, markers
    can). Colour runs light to dark from worse to better (reversed for lower-is-better metrics).
    """
    if rows not in table or (columns is not None and columns not in table):
        raise ValueError(f"the table has no column {rows if rows not in table else columns!r}")
    if metric not in table:
        raise ValueError(f"no column {metric!r}; have {list(table.columns)}")
    label = metric_label or metric
    row_values = _order(table, rows, row_order)
    col_values = _order(table, columns, column_order) if columns is not None else [""]
    cells: dict[tuple[str, str], Mapping[str, Any]] = {}
    for record in table.to_dict("records"):
        key = (str(record[rows]), str(record[columns]) if columns is not None else "")
        if key in cells:
            raise ValueError(f"two cells at {rows}={key[0]}" + (f", {columns}={key[1]}" if columns else "")
                             + ": hold the sweep's other axes at one value each first")
        cells[key] = record
    n_rows, n_cols = len(row_values), len(col_values)
    z = np.full((n_rows, n_cols), np.nan)
    for (r, c), record in cells.items():
        if r in row_values and c in col_values:
            mean = _finite(record.get(metric))
            if mean is not None:
                z[row_values.index(r), col_values.index(c)] = mean
    known = z[np.isfinite(z)]
    zmin, zmax = (float(known.min()), float(known.max())) if known.size else (0.0, 1.0)
    if zmax - zmin < 1e-9:
        zmin, zmax = zmin - 0.05, zmax + 0.05
    reverse = higher_is_better is False
    big = n_cols > 7 or n_rows > 8
    row_px = 52 if big else 64
    width = 640 if n_cols == 1 else None  # one column: a narrow strip, not a page-wide bar
    hatch_piece = _hatch((330 if n_cols == 1 else 820 / n_cols), row_px)
    size_main, size_mark = (12, 10) if big else (14, 11)

    fig = go.Figure()
    missing = np.where(np.isfinite(z), np.nan, 1.0)
    fig.add_trace(go.Heatmap(
        z=missing, x=list(range(n_cols)), y=list(range(n_rows)), colorscale=[[0, MISSING_COLOR], [1, MISSING_COLOR]],
        showscale=False, hoverinfo="skip", name="no result", xgap=3, ygap=3))
    better_word = "higher" if not reverse else "lower"
    fig.add_trace(go.Heatmap(
        z=z, x=list(range(n_cols)), y=list(range(n_rows)), zmin=zmin, zmax=zmax, colorscale="Blues",
        reversescale=reverse, xgap=3, ygap=3, hoverinfo="skip", name=plotly_text(label),
        colorbar={"title": {"text": f"{plotly_text(label)}<br>({better_word} is better)", "side": "right"},
                  "thickness": 14}))

    xs, ys, texts, colors, hovers, custom = [], [], [], [], [], []
    hatch: tuple[list, list] = ([], [])
    better: tuple[list, list] = ([], [])
    ref_box: tuple[list, list] = ([], [])
    for i, r in enumerate(row_values):
        for j, c in enumerate(col_values):
            record = cells.get((r, c), {})
            where = f"{plotly_text(axis_title(rows))} = <b>{plotly_text(r)}</b>"
            if columns is not None:
                where += f"<br>{plotly_text(axis_title(columns))} = <b>{plotly_text(c)}</b>"
            mean = _finite(record.get(metric)) if record else None
            n_done, n_runs = _count(record.get("runs done")), _count(record.get("runs"))
            if mean is None:
                status = _text(record.get("status")) or ""
                word = _STATUS_WORDS.get(status, "not in this sweep") if record else "not in this sweep"
                texts.append(f"<span style='font-size:{size_mark}px'>{word}</span>")
                colors.append("#666666")
                hovers.append(f"{where}<br>{plotly_text(label)}: no finished run yet ({word}; "
                              f"{n_done} of {n_runs} runs done)")
            else:
                low, high = _finite(record.get(f"{metric}_low")), _finite(record.get(f"{metric}_high"))
                mark, sentence = _verdict_words(record, reference)
                t = (mean - zmin) / (zmax - zmin)
                dark = (1 - t if reverse else t) > 0.55
                texts.append(f"<b>{mean:.3f}</b><br><span style='font-size:{size_mark}px'>{mark}</span>")
                colors.append("#ffffff" if dark else "#1a1a1a")
                hovers.append(f"{where}<br>{plotly_text(label)} {_interval_words(mean, low, high, n_done)}"
                              f"<br>{sentence}" + (f"<br>{n_done} of {n_runs} runs done" if n_done < n_runs else ""))
                is_ref = _is_reference(record, reference)
                target = ref_box if is_ref else better if _flag(record.get("better_beyond_noise")) else hatch
                shape = _OUTLINE if target is not hatch else hatch_piece
                lx, ly = _cell_lines(j, i, shape)
                target[0].extend(lx)
                target[1].extend(ly)
            experiment = _text(record.get("experiment")) or ""
            run_id = (run_ids or {}).get(experiment, "")
            if run_id:
                hovers[-1] += "<br><i>click to open its results</i>"
            xs.append(j)
            ys.append(i)
            custom.append([experiment, run_id, plotly_text(r), plotly_text(c)])

    ref_name = plotly_text(reference[1]) if reference else "the reference"
    for (lx, ly), name, line in (
        (hatch, f"striped corners: not better than {ref_name} beyond noise", {"color": HATCH_COLOR, "width": 1.5}),
        (better, f"green frame: better than {ref_name} beyond noise", {"color": BETTER_COLOR, "width": 4}),
        (ref_box, f"dashed frame: the reference ({ref_name})", {"color": REFERENCE_COLOR, "width": 2,
                                                                "dash": "dash"}),
    ):
        if lx:
            fig.add_trace(go.Scatter(x=lx, y=ly, mode="lines", line=line, name=name, hoverinfo="skip",
                                     showlegend=True))
    fig.add_trace(go.Scatter(
        x=xs, y=ys, mode="markers+text", name="cells", showlegend=False, text=texts,
        textfont={"color": colors, "size": size_main}, textposition="middle center",
        marker={"symbol": "square", "size": 44, "color": "rgba(0,0,0,0)"},
        customdata=custom, hovertext=hovers, hovertemplate="%{hovertext}<extra></extra>"))

    height = int(min(860, max(320, 150 + row_px * n_rows)))
    # The legend sits at the foot of the figure, under the axis title: on top, the chart's mode
    # bar (camera, zoom) covered its right end.
    fig.update_layout(height=min(height + 40, 860), width=width,
                      margin={"l": 60, "r": 20, "t": 30, "b": 110},
                      legend={"orientation": "h", "yref": "container", "yanchor": "bottom", "y": 0.01, "x": 0,
                              "font": {"size": 12}},
                      hovermode="closest", hoverdistance=-1, plot_bgcolor="#ffffff")  # any point: its cell
    fig.update_xaxes(tickvals=list(range(n_cols)), ticktext=[plotly_text(c) for c in col_values],
                     title=plotly_text(axis_title(columns)) if columns is not None else None, showgrid=False,
                     zeroline=False, range=[-0.5, n_cols - 0.5], side="bottom", tickfont={"size": 13})
    fig.update_yaxes(tickvals=list(range(n_rows)), ticktext=[plotly_text(r) for r in row_values],
                     title=plotly_text(axis_title(rows)), showgrid=False, zeroline=False,
                     range=[n_rows - 0.5, -0.5], tickfont={"size": 13}, automargin=True)
    return fig


def _hex_to_rgba(color: str, alpha: float) -> str:
    color = color.lstrip("#")
    r, g, b = (int(color[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r}, {g}, {b}, {alpha})"


def sweep_lines_figure(
    table: pd.DataFrame,
    x: str,
    metric: str,
    *,
    series: str | None = None,
    metric_label: str | None = None,
    reference: Sequence[str] | None = None,
    x_order: Sequence[str] | None = None,
    series_order: Sequence[str] | None = None,
    log_x: bool | None = None,
) -> go.Figure:
    """The metric's mean against the `x` axis, one line per value of `series` (e.g. one per
    method), with its 95 % interval as a shaded band. A numeric `x` (imbalance ratio) is
    drawn to scale, on a log axis when `log_x` (default: when its values span a factor 10
    or more); a text `x` gets dots with interval bars side by side. The reference series
    is dark grey and dashed. Intervals are cut at what the metric can take (`metric_bounds`).
    """
    if x not in table or metric not in table or (series is not None and series not in table):
        raise ValueError(f"the table lacks one of {[x, metric, series]}")
    label = metric_label or metric
    lo_bound, hi_bound = metric_bounds(metric)
    x_values = _order(table, x, x_order)
    numeric = is_numeric_axis(x_values)
    positions = {v: _number(v) for v in x_values} if numeric else {v: plotly_text(v) for v in x_values}
    if numeric:
        numbers = [positions[v] for v in x_values]
        if log_x is None:
            log_x = min(numbers) > 0 and max(numbers) / min(numbers) >= 10
        log_x = bool(log_x) and min(numbers) > 0
    groups = _order(table, series, series_order) if series is not None else [None]
    ref_series = _reference_value(reference, series)
    palette = sweep_colors([g for g in groups if g is not None], ref_series)
    fig = go.Figure()
    drawn: list[float] = []
    for group in sorted(groups, key=lambda g: g is not None and g == ref_series):  # the reference on top
        part = table if group is None else table[table[series].astype(str) == group]
        by_x = {str(r[x]): r for r in part.to_dict("records")}
        rows = [by_x.get(v, {}) for v in x_values]
        xs = [positions[v] for v in x_values]
        means = [_finite(r.get(metric)) for r in rows]
        lows = [None if m is None or _finite(r.get(f"{metric}_low")) is None else
                min(max(_finite(r.get(f"{metric}_low")), lo_bound), m) for r, m in zip(rows, means)]
        highs = [None if m is None or _finite(r.get(f"{metric}_high")) is None else
                 max(min(_finite(r.get(f"{metric}_high")), hi_bound), m) for r, m in zip(rows, means)]
        drawn += [v for v in (*means, *lows, *highs) if v is not None]
        color = palette.get(group, SWEEP_COLORS[0]) if group is not None else SWEEP_COLORS[0]
        name = plotly_text(group) if group is not None else plotly_text(label)
        is_ref = group is not None and group == _reference_value(reference, series)
        banded = numeric and sum(lo is not None for lo in lows) >= 2
        if banded:
            keep = [i for i, lo in enumerate(lows) if lo is not None]
            fig.add_trace(go.Scatter(
                x=[xs[i] for i in keep] + [xs[i] for i in reversed(keep)],
                y=[highs[i] for i in keep] + [lows[i] for i in reversed(keep)],
                fill="toself", fillcolor=_hex_to_rgba(color, 0.13), line={"width": 0}, mode="lines",
                hoverinfo="skip", showlegend=False, legendgroup=name, name=f"{name} (95 % interval)"))
        hover = [
            (f"{plotly_text(group)}<br>" if group is not None else "")
            + f"{plotly_text(axis_title(x))} = {plotly_text(v)}<br>{plotly_text(label)} "
            + _interval_words(m, lo, hi, _count(r.get("runs done")))
            for v, r, m, lo, hi in zip(x_values, rows, means, lows, highs)]
        error = None if banded else {
            "type": "data", "symmetric": False, "color": color, "thickness": 1.5, "width": 4,
            "array": [0 if hi is None or m is None else hi - m for hi, m in zip(highs, means)],
            "arrayminus": [0 if lo is None or m is None else m - lo for lo, m in zip(lows, means)]}
        fig.add_trace(go.Scatter(
            x=xs, y=means, mode="lines+markers" if numeric else "markers", name=name, legendgroup=name,
            line={"color": color, "width": 3 if is_ref else 2.5, "dash": "dash" if is_ref else "solid"},
            marker={"color": color, "size": 9, "symbol": "diamond" if is_ref else "circle"},
            legendrank=1 if is_ref else 1000, error_y=error, connectgaps=False, hovertext=hover, hovertemplate="%{hovertext}<extra></extra>"))
    fig.update_layout(height=460, margin={"l": 60, "r": 20, "t": 40, "b": 60},
                      legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0, "font": {"size": 12}},
                      hovermode="closest", scattermode="group" if not numeric else None)
    if numeric:
        fig.update_xaxes(type="log" if log_x else "linear", tickvals=[positions[v] for v in x_values],
                         ticktext=[plotly_text(v) for v in x_values],
                         title=plotly_text(axis_title(x)) + (" (log scale)" if log_x else ""))
    else:
        fig.update_xaxes(type="category", title=plotly_text(axis_title(x)),
                         categoryorder="array", categoryarray=[positions[v] for v in x_values])
        ref_x = _reference_value(reference, x)
        ref_rows = table[table[x].astype(str) == ref_x] if ref_x is not None and series is None else table.iloc[:0]
        ref_mean = _finite(ref_rows[metric].iloc[0]) if len(ref_rows) == 1 else None
        if ref_mean is not None:  # one dot per value of the reference's axis: a level line to compare with
            fig.add_hline(y=ref_mean, line={"color": REFERENCE_COLOR, "dash": "dash", "width": 1.5},
                          annotation_text=f"{plotly_text(ref_x)} (the reference)", annotation_position="top left")
    if drawn:  # the values and their intervals, a little room around them, never past the bounds
        pad = max(0.05 * (max(drawn) - min(drawn)), 0.01)
        fig.update_yaxes(range=[max(min(drawn) - pad, lo_bound - pad), min(max(drawn) + pad, hi_bound + pad)])
    fig.update_yaxes(title=plotly_text(label))
    return fig


def sweep_tail_head_figure(
    table: pd.DataFrame,
    color_by: str | None,
    *,
    label_by: str | None = None,
    reference: Sequence[str] | None = None,
    color_order: Sequence[str] | None = None,
) -> go.Figure:
    """Tail-class recall (up) against head-class recall (across), one point per cell with
    95 % interval bars both ways, one colour per value of `color_by` (e.g. method), each
    point labelled with its `label_by` value (e.g. the imbalance ratio). The dotted diagonal
    is "the tail does as well as the head": points far below it leave the rare classes
    behind; up and to the right is better on both."""
    for column in ("head_recall", "tail_recall"):
        if column not in table:
            raise ValueError(f"no column {column!r}; have {list(table.columns)}")
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="tail as good as head",
                             line={"color": "#9a9a9a", "dash": "dot", "width": 1.5}, hoverinfo="skip"))
    groups = _order(table, color_by, color_order) if color_by is not None else [None]
    ref_value = _reference_value(reference, color_by)
    palette = sweep_colors([g for g in groups if g is not None], ref_value)
    values: list[float] = []
    for group in sorted(groups, key=lambda g: g is not None and g == ref_value):  # the reference on top
        part = table if group is None else table[table[color_by].astype(str) == group]
        rows = [r for r in part.to_dict("records")
                if _finite(r.get("head_recall")) is not None and _finite(r.get("tail_recall")) is not None]
        if not rows:
            continue
        color = palette.get(group, SWEEP_COLORS[0]) if group is not None else SWEEP_COLORS[0]
        name = plotly_text(group) if group is not None else "cells"

        def bars(key: str, rows=rows, color=color) -> dict:
            mean = [_finite(r[key]) for r in rows]
            low = [_finite(r.get(f"{key}_low")) for r in rows]
            high = [_finite(r.get(f"{key}_high")) for r in rows]
            return {"type": "data", "symmetric": False, "color": _hex_to_rgba(color, 0.5), "thickness": 1.2,
                    "width": 2,
                    "array": [0 if h is None else max(min(h, 1.0) - m, 0) for m, h in zip(mean, high)],
                    "arrayminus": [0 if lo is None else max(m - max(lo, 0.0), 0) for m, lo in zip(mean, low)]}

        def hover(r: Mapping[str, Any]) -> str:
            settings = "<br>".join(f"{plotly_text(axis_title(a))} = <b>{plotly_text(r[a])}</b>"
                                   for a in (color_by, label_by) if a is not None)
            return settings + "".join(f"<br>{group_name}-class recall {_row_interval(r, f'{group_name}_recall')}"
                                      for group_name in ("head", "tail"))

        is_ref = group is not None and group == ref_value
        for key in ("head_recall", "tail_recall"):  # every drawn value, bars included, fits the shared range
            values += [v for r in rows for v in (_finite(r[key]), _finite(r.get(f"{key}_low"))) if v is not None]
        fig.add_trace(go.Scatter(
            x=[_finite(r["head_recall"]) for r in rows], y=[_finite(r["tail_recall"]) for r in rows],
            mode="lines+markers+text" if label_by is not None else "markers", name=name,
            line={"color": _hex_to_rgba(color, 0.45), "width": 1.2, "dash": "dash" if is_ref else "solid"},
            text=[plotly_text(r[label_by]) for r in rows] if label_by is not None else None,
            textposition="middle left", textfont={"size": 11, "color": color},
            marker={"color": color, "size": 12 if is_ref else 11, "symbol": "diamond" if is_ref else "circle",
                    "line": {"width": 1, "color": "white"}}, legendrank=1 if is_ref else 1000,
            error_x=bars("head_recall"), error_y=bars("tail_recall"),
            hovertext=[hover(r) for r in rows], hovertemplate="%{hovertext}<extra></extra>"))
    # One range for both axes (recall cannot pass 1), so the diagonal is "as good as" at every
    # point and equal gaps mean equal differences; it starts just below the lowest value drawn.
    low = max(0.0, math.floor((min(values, default=0.0) - 0.03) * 20) / 20)
    span = [low - 0.01 * (1 - low), 1 + 0.02 * (1 - low)]
    fig.update_layout(height=520, margin={"l": 60, "r": 20, "t": 40, "b": 60},
                      legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0, "font": {"size": 12}},
                      hovermode="closest")
    fig.update_xaxes(title="head-class recall: share of the common classes' cases found", range=span)
    fig.update_yaxes(title="tail-class recall: rare classes' cases found", range=span)
    return fig

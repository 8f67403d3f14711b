"""Figure builders of the Sweeps page: values in the right places, the marks, the escaping."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from core.text import plotly_text
from core.viz import (
    REFERENCE_COLOR, axis_title, is_numeric_axis, metric_bounds, sweep_colors, sweep_heatmap_figure,
    sweep_lines_figure, sweep_tail_head_figure,
)

METHODS = ["ce", "weighted_ce", "ldam", "crt"]
RATIOS = ["10", "50", "100", "200"]
METRIC = "balanced_accuracy"
REFERENCE = ["method", "ce"]


def _verdict(method: str, ratio: str) -> tuple[str | None, float | None, str | None, str | None]:
    """(verdict, difference, note, status) of a cell: one of each kind, to test every mark."""
    if method == "ce":
        return None, None, None, None
    if (method, ratio) == ("weighted_ce", "10"):
        return "better beyond noise (p = 0.01; Benjamini-Hochberg-adjusted p = 0.03)", 0.2, None, "better"
    if (method, ratio) == ("ldam", "10"):
        return "worse beyond noise (p = 0.02)", -0.1, None, "worse"
    if method == "crt":
        return "too few seeds to tell (with 3 seeds no p below 0.25 is possible)", 0.05, None, "too few"
    return "within noise (p = 0.4)", 0.01, None, "within noise"


@pytest.fixture
def table() -> pd.DataFrame:
    """Like `core.jobs.sweep_table`: 4 methods x 4 ratios; (ldam, 200) has no finished run."""
    rows = []
    for i, method in enumerate(METHODS):
        for j, ratio in enumerate(RATIOS):
            mean = 0.9 - 0.1 * j + 0.02 * i
            verdict, diff, note, status = _verdict(method, ratio)
            missing = (method, ratio) == ("ldam", "200")
            rows.append({
                "method": method, "data.imbalance.ratio": ratio, "experiment": f"exp-{i}{j}",
                "status": "queued" if missing else "done", "runs done": 0 if missing else 3, "runs": 3,
                METRIC: None if missing else mean, f"{METRIC}_low": None if missing else mean - 0.03,
                f"{METRIC}_high": None if missing else min(mean + 0.03, 1.02),
                "head_recall": None if missing else 0.95 - 0.01 * j, "head_recall_low": None if missing else 0.9,
                "head_recall_high": None if missing else 0.99, "tail_recall": None if missing else mean - 0.2,
                "tail_recall_low": None if missing else mean - 0.25, "tail_recall_high": None if missing else mean - 0.15,
                "difference_vs_reference": diff, "verdict_vs_reference": verdict,
                "status_vs_reference": status,
                "better_beyond_noise": None if verdict is None else status == "better",
                "note_vs_reference": note,
            })
    return pd.DataFrame(rows)


def _trace(fig, name_part: str):
    return next(t for t in fig.data if t.name and name_part in t.name)


def _cells_marked(trace) -> set[tuple[int, int]]:
    """(row, column) of the cells a line trace draws in (segments' midpoints)."""
    xs, ys = list(trace.x), list(trace.y)
    cells = set()
    for k in range(0, len(xs), 3):  # each segment: start, end, None
        cells.add((round((ys[k] + ys[k + 1]) / 2), round((xs[k] + xs[k + 1]) / 2)))
    return cells


def test_heatmap_puts_each_mean_in_its_cell(table):
    fig = sweep_heatmap_figure(table, "method", "data.imbalance.ratio", METRIC, metric_label="Balanced accuracy",
                               reference=REFERENCE)
    heat = _trace(fig, "Balanced accuracy")
    z = np.asarray(heat.z, dtype=float)
    assert z.shape == (4, 4)
    for row in table.itertuples(index=False):
        i, j = METHODS.index(row.method), RATIOS.index(row[1])
        expected = getattr(row, METRIC)
        assert (math.isnan(z[i, j]) if pd.isna(expected) else z[i, j] == pytest.approx(expected))
    assert list(fig.layout.yaxis.ticktext) == METHODS and list(fig.layout.xaxis.ticktext) == RATIOS
    assert fig.layout.yaxis.range[0] > fig.layout.yaxis.range[1], "the first method on top"
    assert "imbalance ratio" in fig.layout.xaxis.title.text


def test_heatmap_marks_cells_not_better_than_the_reference(table):
    fig = sweep_heatmap_figure(table, "method", "data.imbalance.ratio", METRIC, reference=REFERENCE)
    hatched = _cells_marked(_trace(fig, "striped corners"))
    framed = _cells_marked(_trace(fig, "green frame"))
    reference = _cells_marked(_trace(fig, "the reference"))
    assert framed == {(1, 0)}, "weighted_ce at ratio 10 is the one better beyond noise"
    assert reference == {(0, j) for j in range(4)}
    finished_others = {(i, j) for i in range(1, 4) for j in range(4)} - {(2, 3)}
    assert hatched == finished_others - framed, "every other finished cell is marked: worse, within noise, too few"
    cells = _trace(fig, "cells")
    texts = dict(zip(zip(cells.y, cells.x), cells.text))
    assert "▲ better" in texts[(1, 0)] and "▼ worse" in texts[(2, 0)]
    assert "reference" in texts[(0, 0)] and "≈ within noise" in texts[(1, 1)]
    assert "too few seeds" in texts[(3, 0)], "a test that could not reach p < 0.05 says so"
    assert "waiting" in texts[(2, 3)] and "0." not in texts[(2, 3)], "no finished run: said so, no number"
    missing = _trace(fig, "no result")
    assert np.isfinite(np.asarray(missing.z, dtype=float)).sum() == 1


def test_heatmap_hover_and_click_data(table):
    run_ids = {"exp-10": "run-a"}
    fig = sweep_heatmap_figure(table, "method", "data.imbalance.ratio", METRIC, metric_label="Balanced accuracy",
                               reference=REFERENCE, run_ids=run_ids)
    cells = _trace(fig, "cells")
    k = list(zip(cells.y, cells.x)).index((1, 0))
    assert list(cells.customdata[k]) == ["exp-10", "run-a", "weighted_ce", "10"]
    hover = cells.hovertext[k]
    row = table[(table.method == "weighted_ce") & (table["data.imbalance.ratio"] == "10")].iloc[0]
    assert f"{row[METRIC]:.3f}" in hover and f"{row[METRIC + '_low']:.3f} to {row[METRIC + '_high']:.3f}" in hover
    assert "+0.200" in hover and "better beyond noise" in hover and "click to open" in hover
    other = list(zip(cells.y, cells.x)).index((3, 0))
    assert cells.customdata[other][1] == "" and "click" not in cells.hovertext[other]
    assert "no p below 0.25 is possible" in cells.hovertext[other]
    assert fig.layout.hoverdistance == -1, "anywhere in a cell picks that cell"


def test_heatmap_colours_follow_the_better_direction(table):
    ece = table.rename(columns={METRIC: "ece", f"{METRIC}_low": "ece_low", f"{METRIC}_high": "ece_high"})
    higher = _trace(sweep_heatmap_figure(table, "method", "data.imbalance.ratio", METRIC), METRIC)
    lower = _trace(sweep_heatmap_figure(ece, "method", "data.imbalance.ratio", "ece", higher_is_better=False), "ece")
    assert not higher.reversescale and lower.reversescale
    assert "lower is better" in lower.colorbar.title.text


def test_heatmap_of_a_ten_by_six_grid_stays_readable():
    rows = [{"method": f"m{i}", "ratio": str(r), "status": "done", "runs done": 3, "runs": 3, "experiment": f"e{i}{r}",
             METRIC: 0.5 + 0.01 * i + 0.001 * r} for i in range(10) for r in (2, 5, 10, 20, 50, 100)]
    fig = sweep_heatmap_figure(pd.DataFrame(rows), "method", "ratio", METRIC)
    assert np.asarray(_trace(fig, METRIC).z).shape == (10, 6)
    cells = _trace(fig, "cells")
    assert cells.textfont.size <= 12 and 500 <= fig.layout.height <= 860
    assert all(t.startswith("<b>0.") for t in cells.text)


def test_heatmap_with_one_axis_is_a_narrow_column(table):
    one = table[table["data.imbalance.ratio"] == "10"].drop(columns="data.imbalance.ratio")
    fig = sweep_heatmap_figure(one, "method", None, METRIC, reference=REFERENCE)
    assert np.asarray(_trace(fig, METRIC).z).shape == (4, 1)
    assert fig.layout.width and fig.layout.width < 800


def test_heatmap_refuses_two_cells_in_one_square(table):
    with pytest.raises(ValueError, match="other axes"):
        sweep_heatmap_figure(table, "method", None, METRIC)


def test_lines_against_a_numeric_axis_on_a_log_scale(table):
    fig = sweep_lines_figure(table, "data.imbalance.ratio", METRIC, series="method", reference=REFERENCE,
                             metric_label="Balanced accuracy")
    assert fig.layout.xaxis.type == "log" and list(fig.layout.xaxis.tickvals) == [10, 50, 100, 200]
    line = next(t for t in fig.data if t.name == "weighted_ce" and t.mode == "lines+markers")
    assert list(line.x) == [10.0, 50.0, 100.0, 200.0]
    expected = table[table.method == "weighted_ce"][METRIC].tolist()
    assert list(line.y) == pytest.approx(expected)
    band = next(t for t in fig.data if t.name == "weighted_ce (95 % interval)")
    low = table[table.method == "weighted_ce"][f"{METRIC}_low"].tolist()
    high = [min(h, 1.0) for h in table[table.method == "weighted_ce"][f"{METRIC}_high"]]
    assert band.fill == "toself" and list(band.y) == pytest.approx(high + low[::-1]), "cut at 1"
    ldam = next(t for t in fig.data if t.name == "ldam" and t.mode == "lines+markers")
    assert ldam.y[-1] is None and ldam.connectgaps is False, "a cell with no result is a gap"
    ce = next(t for t in fig.data if t.name == "ce" and t.mode == "lines+markers")
    assert ce.line.dash == "dash" and ce.line.color == REFERENCE_COLOR
    assert fig.data[-1].name == "ce (95 % interval)" or fig.data[-1].name == "ce", "the reference drawn on top"


def test_lines_with_a_text_axis_are_dots_with_interval_bars(table):
    one = table[table["data.imbalance.ratio"] == "10"]
    fig = sweep_lines_figure(one, "method", METRIC, reference=REFERENCE)
    (dots,) = [t for t in fig.data if t.mode == "markers"]
    assert list(dots.x) == METHODS and list(dots.y) == pytest.approx(one[METRIC].tolist())
    assert dots.error_y.array[0] == pytest.approx(0.03)
    assert fig.layout.xaxis.type == "category"
    (level,) = fig.layout.shapes
    assert level.y0 == pytest.approx(one[one.method == "ce"][METRIC].iloc[0]), "a level line at the reference"
    low, high = fig.layout.yaxis.range
    assert low > 0.5 and high < 1.05, "the axis spans the values, not 0 to 1"


def test_tail_against_head_one_point_per_cell(table):
    fig = sweep_tail_head_figure(table, "method", label_by="data.imbalance.ratio", reference=REFERENCE)
    diagonal = fig.data[0]
    assert list(diagonal.x) == [0, 1] and list(diagonal.y) == [0, 1]
    points = {t.name: t for t in fig.data[1:]}
    assert set(points) == set(METHODS)
    ldam = points["ldam"]
    assert len(ldam.x) == 3, "the cell with no result has no point"
    part = table[(table.method == "ldam") & table["tail_recall"].notna()]
    assert list(ldam.x) == pytest.approx(part["head_recall"].tolist())
    assert list(ldam.y) == pytest.approx(part["tail_recall"].tolist())
    assert list(ldam.error_y.array) == pytest.approx((part["tail_recall_high"] - part["tail_recall"]).tolist())
    assert list(ldam.text) == ["10", "50", "100"]
    assert points["ce"].marker.symbol == "diamond" and points["ce"].marker.color == REFERENCE_COLOR
    # Both axes share one range, ending just past 1 (recall cannot pass it), starting below every bar.
    assert list(fig.layout.xaxis.range) == list(fig.layout.yaxis.range)
    low, high = fig.layout.xaxis.range
    lowest = min(table[f"{g}_recall_low"].dropna().min() for g in ("head", "tail"))
    assert 1.0 < high < 1.05 and lowest - 0.1 < low < lowest


HOSTILE = ["<b>bold</b>", "%{x} weight", "<img src=x onerror=alert(1)>"]


def test_user_text_is_escaped_everywhere(table):
    table = table.copy()
    table["method"] = table["method"].map(dict(zip(METHODS, HOSTILE + ["ce"])))
    axis = "<i>my.axis</i>"
    table = table.rename(columns={"data.imbalance.ratio": axis})
    figs = [sweep_heatmap_figure(table, "method", axis, METRIC, reference=["method", "ce"]),
            sweep_lines_figure(table, axis, METRIC, series="method", reference=["method", "ce"]),
            sweep_lines_figure(table[table[axis] == "10"], "method", METRIC),
            sweep_tail_head_figure(table, "method", label_by=axis)]
    for fig in figs:
        text = fig.to_json()
        for raw in HOSTILE:
            assert raw not in text, f"{raw!r} drawn as markup"
    heat = figs[0]
    assert plotly_text(HOSTILE[0]) in heat.layout.yaxis.ticktext
    assert plotly_text(HOSTILE[1]) in " ".join(_trace(heat, "cells").hovertext)
    assert list(figs[2].layout.xaxis.categoryarray)[:3] == [plotly_text(h) for h in HOSTILE]


def test_helpers():
    assert axis_title("data.imbalance.ratio").startswith("imbalance ratio") and axis_title("model.hidden") == "hidden"
    assert metric_bounds("mcc") == (-1.0, 1.0) and metric_bounds("balanced_accuracy") == (0.0, 1.0)
    assert is_numeric_axis(["10", "1e2", "0.5"]) and not is_numeric_axis(["ce", "10"]) and not is_numeric_axis([])
    colors = sweep_colors(["a", "ce", "b"], "ce")
    assert colors["ce"] == REFERENCE_COLOR and len(set(colors.values())) == 3
    assert sweep_colors(["a", "b"]) == sweep_colors(["a", "b"]), "the same labels, the same colours"

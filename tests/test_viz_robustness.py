"""Figures of the Robustness page, read back from the returned figures."""

from __future__ import annotations

import numpy as np

from core.analysis import disparity_curve, robustness_table
from core.viz import disparity_figure, robust_by_count_figure, robustness_curve_figure


def _table():
    y = np.repeat([0, 1, 2], [20, 10, 6])
    clean = y.copy()
    attacked = np.where(np.arange(len(y)) % 3 == 0, (y + 1) % 3, y)
    return robustness_table(y, {0.0: clean, 0.1: attacked}, ["head", "medium", "tail"], ["a", "<b>b</b>", "c"],
                            [40, 16, 6], n_resamples=200)


def test_curve_has_a_line_per_group_and_balanced_with_intervals():
    fig = robustness_curve_figure(_table())
    names = [t.name for t in fig.data]
    assert names == ["balanced (all classes)", "head classes", "medium classes", "tail classes"]
    assert all(list(t.x) == [0.0, 0.1] and t.error_y.array is not None for t in fig.data)
    assert fig.data[0].y[0] == 1.0


def test_classes_are_drawn_clean_and_attacked_against_their_training_count():
    fig = robust_by_count_figure(_table(), 0.1)
    points = [t for t in fig.data if t.mode == "markers"]
    assert len(points) == 6 and fig.layout.xaxis.type == "log"
    assert all("<b>" not in str(t.text) for t in points), "class names are escaped"


def test_gap_draws_one_line_per_run():
    curve = disparity_curve(_table())
    fig = disparity_figure({"plain": curve, "re-weighted": curve.assign(gap=curve["gap"] / 2)})
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert [t.name for t in lines] == ["plain", "re-weighted"]
    assert lines[1].y[-1] == lines[0].y[-1] / 2

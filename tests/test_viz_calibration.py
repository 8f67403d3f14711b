"""Calibration and post-hoc figures: trace types, order, colours and values."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from core.analysis import reliability_bins, softmax
from core.viz import (
    calibration_gap_bars, confidence_histogram, per_class_ece_bars, posthoc_confusion_heatmap, posthoc_recall_bars,
    reliability_diagram,
)

HEAD, MEDIUM, TAIL = "#1f77b4", "#ff7f0e", "#d62728"
NAMES = ["cat", "dog", "eel", "fox"]
COUNTS = np.array([20, 300, 5, 60])  # head to tail: dog, fox, cat, eel
GROUPS = ["medium", "head", "tail", "medium"]


@pytest.fixture(scope="module")
def probs_labels():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, size=400)
    z = rng.normal(size=(400, 4)) * 2
    z[np.arange(400), y] += 1.5
    return softmax(z), y


def test_reliability_diagram_single(probs_labels):
    probs, y = probs_labels
    bins = reliability_bins(probs, y, 10)
    fig = reliability_diagram(bins)
    diagonal, acc, gap, count = fig.data
    assert isinstance(diagonal, go.Scatter) and list(diagonal.x) == [0, 1] and list(diagonal.y) == [0, 1]
    assert all(isinstance(t, go.Bar) for t in (acc, gap, count))
    np.testing.assert_allclose(np.asarray(acc.y, dtype=float), bins["accuracy"], equal_nan=True)
    np.testing.assert_allclose(np.asarray(acc.x), (np.arange(10) + 0.5) / 10)
    np.testing.assert_allclose(np.asarray(gap.base, dtype=float) + np.asarray(gap.y, dtype=float),
                               bins["confidence"], equal_nan=True)
    assert list(count.y) == bins["count"].tolist() and sum(count.y) == len(y)
    assert count.yaxis == "y2"  # counts sit in the lower panel


def test_reliability_diagram_per_group_uses_group_colours(probs_labels):
    probs, y = probs_labels
    tables = {g: reliability_bins(probs[y == i], y[y == i], 8) for i, g in enumerate(("head", "medium", "tail"))}
    fig = reliability_diagram(tables)
    lines = [t for t in fig.data if isinstance(t, go.Scatter) and t.name in tables]
    assert [t.name for t in lines] == ["head", "medium", "tail"]
    assert [t.line.color for t in lines] == [HEAD, MEDIUM, TAIL]
    filled = tables["tail"]["count"] > 0
    np.testing.assert_allclose(np.asarray(lines[2].y), tables["tail"]["accuracy"][filled])
    counts = [t for t in fig.data if isinstance(t, go.Bar)]
    assert sum(sum(t.y) for t in counts) == sum(int((y == i).sum()) for i in range(3))


def test_reliability_diagram_colour_by_group_name(probs_labels):
    probs, y = probs_labels
    fig = reliability_diagram({"eel": reliability_bins(probs, y)}, colors={"eel": "tail"})
    assert fig.data[1].marker.color == TAIL


def test_confidence_histogram(probs_labels):
    probs, y = probs_labels
    conf, correct = probs.max(axis=1), probs.argmax(axis=1) == y
    fig = confidence_histogram(conf, correct, n_bins=10)
    right, wrong = fig.data
    edges = np.linspace(0, 1, 11)
    assert list(right.y) == np.histogram(conf[correct], edges)[0].tolist()
    assert list(wrong.y) == np.histogram(conf[~correct], edges)[0].tolist()
    assert sum(right.y) + sum(wrong.y) == len(y)
    assert right.name.startswith("right") and wrong.name.startswith("wrong")


def test_per_class_ece_bars_run_head_to_tail_in_group_colours():
    values = np.array([0.1, 0.2, 0.3, 0.4])
    fig = per_class_ece_bars(NAMES, values, COUNTS, GROUPS)
    assert list(fig.layout.xaxis.categoryarray) == ["dog", "fox", "cat", "eel"]
    by_group = {t.name: t for t in fig.data}
    assert list(by_group) == ["head", "medium", "tail"]
    assert by_group["head"].marker.color == HEAD and by_group["tail"].marker.color == TAIL
    assert list(by_group["medium"].x) == ["fox", "cat"]
    np.testing.assert_allclose(by_group["medium"].y, [0.4, 0.1])
    assert list(by_group["tail"].customdata) == [5]


def test_calibration_gap_bars():
    fig = calibration_gap_bars({"tail": 0.2, "head": -0.05, "medium": 0.01})
    bar = fig.data[0]
    assert list(bar.x) == ["head", "medium", "tail"]
    np.testing.assert_allclose(bar.y, [-0.05, 0.01, 0.2])
    assert list(bar.marker.color) == [HEAD, MEDIUM, TAIL]
    assert fig.layout.yaxis.range[0] < -0.2 and fig.layout.yaxis.range[1] > 0.2
    assert calibration_gap_bars({"head": float("nan")}).data[0].text == ("no cases",)


def test_posthoc_recall_bars():
    before, after = np.array([0.1, 0.9, 0.0, 0.5]), np.array([0.3, 0.8, 0.4, 0.6])
    fig = posthoc_recall_bars(NAMES, before, after, COUNTS, GROUPS)
    original, adjusted = fig.data
    assert original.name == "original" and adjusted.name == "adjusted"
    assert list(adjusted.x) == ["dog", "fox", "cat", "eel"]
    np.testing.assert_allclose(original.y, [0.9, 0.5, 0.1, 0.0])
    np.testing.assert_allclose(adjusted.y, [0.8, 0.6, 0.3, 0.4])
    assert list(adjusted.marker.color) == [HEAD, MEDIUM, MEDIUM, TAIL]
    assert original.opacity < adjusted.opacity


def test_posthoc_confusion_heatmap():
    cm = np.array([[8, 2, 0, 0], [1, 90, 0, 9], [0, 3, 1, 0], [0, 0, 0, 0]])
    fig = posthoc_confusion_heatmap(cm, NAMES, COUNTS)
    heat = fig.data[0]
    assert isinstance(heat, go.Heatmap)
    assert list(heat.x) == ["dog", "fox", "cat", "eel"] == list(heat.y)
    z = np.asarray(heat.z, dtype=float)
    order = [1, 3, 0, 2]
    np.testing.assert_array_equal(np.asarray(heat.customdata), cm[np.ix_(order, order)])
    np.testing.assert_allclose(z[0], [0.9, 0.09, 0.01, 0.0])  # dog's cases
    np.testing.assert_allclose(z[1], 0.0)  # fox has no test cases: an empty row, not NaN
    np.testing.assert_allclose(z[[0, 2, 3]].sum(axis=1), 1.0)

"""Figure builders of the Results and Compare pages, checked against independent computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from sklearn.metrics import average_precision_score, confusion_matrix, precision_recall_curve

from core.analysis import group_metrics, per_class_metrics, softmax
from core.viz import (
    GROUP_COLORS, cell_samples, confusion_figure, confusion_selection, curves_overlay_figure, group_bars_figure,
    group_comparison_figure, image_thumbnails, metric_comparison_figure, metric_difference_figure, per_class_figure,
    paired_difference_figure, pr_curve_figure, tail_warnings,
)

K = 4
NAMES = ["cat", "dog", "owl", "yak"]
COUNTS = np.array([5, 120, 40, 12])  # head is class 1, tail is class 0


@pytest.fixture
def predictions():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, K, 200)
    logits = rng.normal(size=(200, K))
    logits[np.arange(200), labels] += rng.uniform(0, 2.5, 200)  # mostly right, some mistakes
    return logits, labels


def _trace(fig: go.Figure, name: str):
    return next(t for t in fig.data if t.name == name)


def test_confusion_counts_and_order_match_sklearn(predictions):
    logits, labels = predictions
    pred = logits.argmax(1)
    cm = confusion_matrix(labels, pred, labels=range(K))
    order = [1, 2, 3, 0]
    fig = confusion_figure(cm, NAMES, order)
    heat = _trace(fig, "confusion")
    assert isinstance(heat, go.Heatmap)
    np.testing.assert_array_equal(np.asarray(heat.z), cm[np.ix_(order, order)])
    assert list(heat.x) == list(heat.y) == ["dog", "owl", "yak", "cat"]
    assert fig.layout.yaxis.autorange == "reversed" and fig.layout.xaxis.type == "category"


def test_confusion_normalised_rows_are_recall(predictions):
    logits, labels = predictions
    cm = confusion_matrix(labels, logits.argmax(1), labels=range(K))
    fig = confusion_figure(cm, NAMES, normalize=True)
    z = np.asarray(_trace(fig, "confusion").z)
    np.testing.assert_allclose(z, confusion_matrix(labels, logits.argmax(1), labels=range(K), normalize="true"))
    np.testing.assert_allclose(z.sum(axis=1), 1.0)


def test_confusion_cells_carry_indices_counts_and_row_share(predictions):
    logits, labels = predictions
    cm = confusion_matrix(labels, logits.argmax(1), labels=range(K))
    order = [2, 0, 3, 1]
    cells = _trace(confusion_figure(cm, NAMES, order), "cells")
    custom = np.asarray(cells.customdata)
    assert custom.shape == (K * K, 4)
    for t, p, count, share in custom:
        t, p = int(t), int(p)
        assert count == cm[t, p]
        assert share == pytest.approx(cm[t, p] / cm[t].sum())
    # the marker for (true, pred) sits on the heatmap cell with those names
    first = custom[1]
    assert (cells.y[1], cells.x[1]) == (NAMES[int(first[0])], NAMES[int(first[1])])
    assert "of this true class" in cells.hovertemplate


def test_confusion_highlight_and_selection_round_trip():
    cm = np.array([[3, 1, 0], [0, 2, 2], [1, 0, 4]])
    fig = confusion_figure(cm, ["a", "b", "c"], order=[2, 0, 1], highlight=[(1, 2)])
    (shape,) = fig.layout.shapes
    # class 1 is display row 2, class 2 display column 0
    assert (shape.x0, shape.x1, shape.y0, shape.y1) == (-0.5, 0.5, 1.5, 2.5)
    # Streamlit reports customdata as a dict keyed "0", "1", ...; a list works too
    points = [{"curve_number": 1, "customdata": {"0": 2, "1": 0, "2": 1, "3": 0.2}},
              {"curve_number": 1, "customdata": [1, 2, 2, 0.5]}, {"curve_number": 0, "x": "a"}]
    assert confusion_selection(points) == [(1, 2), (2, 0)]
    assert confusion_selection([]) == []


def test_confusion_rejects_bad_order():
    with pytest.raises(ValueError, match="permutation"):
        confusion_figure(np.eye(3), ["a", "b", "c"], order=[0, 0, 1])


def test_per_class_scatter_groups_and_values(predictions):
    logits, labels = predictions
    table = per_class_metrics(logits, labels, COUNTS, NAMES)
    fig = per_class_figure(table, "f1")
    assert fig.layout.xaxis.type == "log"
    assert {t.name for t in fig.data} == set(table["group"])
    for trace in fig.data:
        assert trace.marker.color == GROUP_COLORS[trace.name]
        part = table[table["group"] == trace.name]
        np.testing.assert_array_equal(trace.x, part["count_train"])
        np.testing.assert_allclose(trace.y, part["f1"])
        assert list(np.asarray(trace.customdata)[:, 0]) == list(part["class"])
    with pytest.raises(ValueError, match="no column"):
        per_class_figure(table, "auc")


def test_group_bars_values_and_colours(predictions):
    logits, labels = predictions
    groups = group_metrics(logits, labels, COUNTS, many=100, few=20)
    (bar,) = group_bars_figure(groups).data
    assert list(bar.x) == list(groups["group"])
    np.testing.assert_allclose(bar.y, groups["accuracy"])
    assert list(bar.marker.color) == [GROUP_COLORS[g] for g in groups["group"]]


def test_pr_curves_match_sklearn(predictions):
    logits, labels = predictions
    probs = softmax(logits)
    fig = pr_curve_figure(probs, labels, [1, 0], NAMES)
    curves = [t for t in fig.data if t.showlegend is not False]
    assert len(curves) == 2
    for trace, j in zip(curves, [1, 0], strict=True):
        precision, recall, _ = precision_recall_curve(labels == j, probs[:, j])
        np.testing.assert_allclose(trace.x, recall)
        np.testing.assert_allclose(trace.y, precision)
        assert f"AP {average_precision_score(labels == j, probs[:, j]):.2f}" in trace.name
    chance = [t for t in fig.data if t.showlegend is False]
    assert chance[0].y[0] == pytest.approx(np.mean(labels == 1))


def test_pr_curve_skips_a_class_without_positives():
    probs = softmax(np.random.default_rng(1).normal(size=(20, 3)))
    labels = np.array([0, 1] * 10)
    fig = pr_curve_figure(probs, labels, [2], ["a", "b", "c"])
    assert len(fig.data) == 0


def _tables(predictions):
    logits, labels = predictions
    other = logits.copy()
    other[:, 0] += 1.0  # favours the tail class 0
    return {"base": per_class_metrics(logits, labels, COUNTS, NAMES),
            "tail-friendly": per_class_metrics(other, labels, COUNTS, NAMES)}


def test_metric_comparison_bars_follow_the_first_run_order(predictions):
    tables = _tables(predictions)
    fig = metric_comparison_figure(tables, "recall")
    assert [t.name for t in fig.data] == ["base", "tail-friendly"] and fig.layout.barmode == "group"
    order = list(tables["base"]["class"])
    assert order == ["dog", "owl", "yak", "cat"]  # head to tail
    for trace in fig.data:
        assert list(trace.x) == order
        np.testing.assert_allclose(trace.y, tables[trace.name].set_index("class").loc[order, "recall"])


def test_metric_difference_signs_reference_and_run_colours(predictions):
    tables = _tables(predictions)
    colors = {"base": "#111111", "tail-friendly": "#222222"}
    (bar,) = metric_difference_figure(tables, "recall", colors=colors).data
    base = tables["base"].set_index("class")
    other = tables["tail-friendly"].set_index("class")
    expected = other.loc[list(bar.x), "recall"].to_numpy() - base.loc[list(bar.x), "recall"].to_numpy()
    np.testing.assert_allclose(bar.y, expected)
    assert expected[-1] > 0  # the tail class gains
    assert bar.marker.color == "#222222" and bar.name == "tail-friendly − base", "the run keeps its colour"
    (flipped,) = metric_difference_figure(tables, "recall", reference="tail-friendly", colors=colors).data
    np.testing.assert_allclose(flipped.y, -expected)
    assert flipped.marker.color == "#111111"
    assert len(metric_difference_figure({"only": tables["base"]}).data) == 0


def test_paired_difference_forest_plot():
    table = pd.DataFrame({"run": ["a", "b"], "difference": [0.1, -0.01], "low": [0.05, -0.04],
                          "high": [0.15, 0.02], "verdict": ["better beyond noise (p = 0.001)", "within noise (p = 0.6)"]})
    fig = paired_difference_figure(table, "ref", "Balanced accuracy", {"a": "#111111", "b": "#222222"})
    assert [t.y[0] for t in fig.data] == ["a", "b"]
    assert [t.marker.symbol for t in fig.data] == ["circle", "circle-open"], "open: the interval crosses zero"
    np.testing.assert_allclose([t.error_x.array[0] for t in fig.data], [0.05, 0.03])
    np.testing.assert_allclose([t.error_x.arrayminus[0] for t in fig.data], [0.05, 0.03])


def test_per_class_error_bars_come_from_interval_columns(predictions):
    table = _tables(predictions)["base"].assign(recall_low=lambda d: d["recall"] - 0.1,
                                                recall_high=lambda d: np.minimum(d["recall"] + 0.2, 1.0))
    table["group"] = ["head", "medium", "tail", "tail"][: len(table)]
    fig = per_class_figure(table, "recall")
    for trace in fig.data:
        part = table[table["group"] == trace.name]
        np.testing.assert_allclose(trace.error_y.arrayminus, 0.1)
        np.testing.assert_allclose(trace.error_y.array, part["recall_high"] - part["recall"])
    assert per_class_figure(table.drop(columns=["recall_low", "recall_high"]), "recall").data[0].error_y.array is None


def test_group_comparison_and_curves_overlay(predictions):
    logits, labels = predictions
    groups = {"a": group_metrics(logits, labels, COUNTS), "b": group_metrics(logits * 0.5, labels, COUNTS)}
    fig = group_comparison_figure(groups)
    assert [t.name for t in fig.data] == ["a", "b"]
    np.testing.assert_allclose(fig.data[1].y, groups["b"]["accuracy"])
    histories = {"a": [{"epoch": 1, "val_balanced_accuracy": 0.2}, {"epoch": 2, "val_balanced_accuracy": 0.4}],
                 "b": [{"epoch": 1, "val_balanced_accuracy": 0.3}, {"epoch": 2, "val_balanced_accuracy": None}]}
    fig = curves_overlay_figure(histories)
    assert list(fig.data[0].y) == [0.2, 0.4] and list(fig.data[1].x) == [1]


def test_cell_samples_matches_a_direct_filter(predictions):
    logits, labels = predictions
    probs = softmax(logits)
    pred = probs.argmax(1)
    table = cell_samples(labels, probs, [(0, 1), (2, 2)], NAMES)
    expected = np.flatnonzero(((labels == 0) & (pred == 1)) | ((labels == 2) & (pred == 2)))
    assert sorted(table["position"]) == expected.tolist()
    assert table["confidence"].is_monotonic_decreasing
    row = table.iloc[0]
    assert row["confidence"] == pytest.approx(probs[row["position"]].max())
    assert row["p_true"] == pytest.approx(probs[row["position"], labels[row["position"]]])
    assert set(table["true"]) <= {"cat", "owl"}


def test_tail_warnings():
    per_class = pd.DataFrame({"class": ["big", "mid", "rare"], "count_train": [500, 50, 5],
                              "recall": [0.99, 0.6, 0.0], "support": [900, 80, 20]})
    notes = tail_warnings({"accuracy": 0.94, "balanced_accuracy": 0.53}, per_class)
    assert notes[0].startswith("**Accuracy hides the tail:**") and "94.0%" in notes[0] and "53.0%" in notes[0]
    assert notes[0].index("rare") < notes[0].index("mid")  # worst class first
    assert "never recognised" in notes[1] and "rare" in notes[1]
    balanced = per_class.assign(recall=[0.9, 0.8, 0.7])
    assert tail_warnings({"accuracy": 0.82, "balanced_accuracy": 0.80}, balanced) == []


def test_image_thumbnails_are_enlarged_uint8():
    grey = np.random.default_rng(0).normal(size=(2, 1, 8, 8))
    thumbs = image_thumbnails(grey, size=64)
    assert thumbs[0].shape == (64, 64) and thumbs[0].dtype == np.uint8
    assert thumbs[0].min() == 0 and thumbs[0].max() == 255
    rgb = image_thumbnails(np.zeros((1, 3, 32, 32)), size=96)
    assert rgb[0].shape == (96, 96, 3)

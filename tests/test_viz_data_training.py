"""Figure builders of the Data and Train pages, checked against the data they draw."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from core.data import class_groups, head_to_tail_order, profile_counts
from core.viz import (
    GROUP_COLORS, class_counts_figure, image_grid, recall_heatmap_figure, training_curves_figure,
)

BEFORE = [50, 48, 47, 50, 45, 49]
NAMES = ["cat", "dog", "owl", "eel", "yak", "emu"]


def _kept_bars(fig: go.Figure) -> dict[str, tuple[int, str]]:
    """class -> (kept count, colour) from the coloured traces."""
    out = {}
    for trace in fig.data[1:]:
        for x, y in zip(trace.x, trace.y):
            out[x] = (y, trace.marker.color)
    return out


@pytest.mark.parametrize("profile,order", [("exp", None), ("step", None), ("linear", [5, 4, 3, 2, 1, 0])])
def test_class_counts_bars_match_the_profile(profile, order):
    after = profile_counts(BEFORE, profile, ratio=10, mu=0.5, order=order)
    groups = class_groups(after)
    fig = class_counts_figure(BEFORE, after, NAMES, groups)
    before_trace = fig.data[0]
    kept = _kept_bars(fig)
    expected_order = [NAMES[i] for i in np.argsort(-after, kind="stable")]
    assert list(before_trace.x) == expected_order, "head to tail, left to right"
    assert list(fig.layout.xaxis.categoryarray) == expected_order
    assert dict(zip(before_trace.x, before_trace.y)) == dict(zip(NAMES, BEFORE))
    assert {name: kept[name][0] for name in NAMES} == dict(zip(NAMES, after.tolist()))
    for name, group in zip(NAMES, groups):
        assert kept[name][1] == GROUP_COLORS[group]
    assert fig.layout.yaxis.type == "linear"


def test_class_counts_log_scale_and_shape_checks():
    fig = class_counts_figure(BEFORE, BEFORE, NAMES, ["head"] * 6, log_y=True)
    assert fig.layout.yaxis.type == "log"
    assert [t.name for t in fig.data] == ["available (before)", "head (kept)"]
    with pytest.raises(ValueError, match="one count and group per class"):
        class_counts_figure(BEFORE, BEFORE[:-1], NAMES, ["head"] * 6)


def test_head_to_tail_order_is_stable():
    assert head_to_tail_order([3, 9, 3, 9]).tolist() == [1, 3, 0, 2]


def test_image_grid_places_each_class_on_its_row():
    rng = np.random.default_rng(0)
    images = rng.random((12, 1, 4, 4)).astype(np.float32)
    labels = np.array([0, 1, 2] * 4)
    fig = image_grid(images, labels, ["a", "b", "c"], per_class=3, pad=1)
    (trace,) = fig.data
    z = np.asarray(trace.z)
    assert z.shape == (3 * 5 + 1, 3 * 5 + 1, 3)
    # row 1 (class "b"), tile 2 is the third image of class 1: index 7
    tile = z[1 + 1 * 5 : 1 + 1 * 5 + 4, 1 + 2 * 5 : 1 + 2 * 5 + 4, 0]
    assert np.array_equal(tile, (images[7, 0] * 255 + 0.5).astype(np.uint8))
    assert list(fig.layout.yaxis.ticktext) == ["a", "b", "c"]


def test_image_grid_keeps_colour_and_caps_classes():
    images = np.zeros((6, 3, 2, 2), np.float32)
    images[:, 0] = 1.0  # pure red
    fig = image_grid(images, np.arange(6), [str(i) for i in range(6)], per_class=1, max_classes=4, pad=0)
    z = np.asarray(fig.data[0].z)
    assert z.shape == (4 * 2, 2, 3) and (z[..., 0] == 255).all() and (z[..., 1] == 0).all()
    assert "first 4 of 6" in fig.layout.title.text


def _history(k: int = 3, epochs: int = 4, stage2: int = 2) -> list[dict]:
    rng = np.random.default_rng(1)
    rows = []
    for e in range(epochs + stage2):
        recall = rng.random(k).round(3).tolist()
        recall[1] = None if e == 0 else recall[1]  # a class absent from validation once
        rows.append({"epoch": e + 1, "stage": "train" if e < epochs else "crt", "train_loss": 2.0 / (e + 1),
                     "val_loss": 2.5 / (e + 1), "val_accuracy": 0.5 + e / 20, "val_balanced_accuracy": 0.3 + e / 20,
                     "val_recall": recall})
    return rows


def test_training_curves_follow_the_history_and_mark_stage_two():
    history = _history()
    fig = training_curves_figure(history)
    by_name = {t.name: t for t in fig.data}
    assert set(by_name) == {"train loss", "validation loss", "balanced accuracy", "accuracy"}
    for name, key in [("train loss", "train_loss"), ("validation loss", "val_loss"),
                      ("balanced accuracy", "val_balanced_accuracy"), ("accuracy", "val_accuracy")]:
        assert list(by_name[name].x) == [r["epoch"] for r in history]
        assert np.allclose(by_name[name].y, [r[key] for r in history])
    assert by_name["train loss"].xaxis == "x" and by_name["accuracy"].xaxis == "x2"
    rects = [s for s in fig.layout.shapes if s.type == "rect"]
    assert len(rects) == 2 and {(r.x0, r.x1) for r in rects} == {(4.5, 6.5)}
    assert [a.text for a in fig.layout.annotations if "stage 2" in (a.text or "")] == ["stage 2: crt"]
    assert "new text" not in [a.text for a in fig.layout.annotations]


def test_training_curves_without_stage_two_or_history():
    assert not training_curves_figure(_history(stage2=0)).layout.shapes
    empty = training_curves_figure([])
    assert any("waiting" in (a.text or "") for a in empty.layout.annotations)


def test_recall_heatmap_orders_classes_head_to_tail():
    history = _history()
    counts = [5, 40, 12]
    fig = recall_heatmap_figure(history, ["a", "b", "c"], counts)
    (trace,) = fig.data
    assert list(trace.y) == ["b", "c", "a"]
    assert list(trace.x) == [r["epoch"] for r in history]
    z = np.array(trace.z, dtype=float)
    for row, cls in enumerate([1, 2, 0]):
        expected = [np.nan if r["val_recall"][cls] is None else r["val_recall"][cls] for r in history]
        assert np.allclose(z[row], expected, equal_nan=True)
    assert trace.zmin == 0 and trace.zmax == 1
    assert fig.layout.yaxis.autorange == "reversed"
    groups = class_groups(counts)
    for text, cls in zip(fig.layout.yaxis.ticktext, [1, 2, 0]):
        assert GROUP_COLORS[groups[cls]] in text
    assert any(s.type == "line" and s.x0 == 4.5 for s in fig.layout.shapes)


def test_recall_heatmap_rejects_mismatched_counts():
    with pytest.raises(ValueError):
        recall_heatmap_figure(_history(), ["a", "b"], [1, 2, 3])


def test_resampling_figure_draws_each_kind_with_its_marker():
    import pandas as pd

    from core.viz import resampling_figure

    view = pd.DataFrame({"pc1": [0.0, 1.0, 2.0, 3.0], "pc2": [0.0, 1.0, 0.5, 0.2], "label": [0, 1, 1, 1],
                         "kind": ["kept", "removed", "synthetic", "synthetic"]})
    fig = resampling_figure(view, ["cat", "dog"])
    by_name = {t.name: t for t in fig.data}
    assert set(by_name) == {"cat: real row", "dog: real row removed", "dog: synthetic row"}
    assert by_name["dog: synthetic row"].marker.symbol == "diamond-open"
    assert list(by_name["dog: synthetic row"].x) == [2.0, 3.0]
    assert by_name["dog: real row removed"].marker.symbol == "x-thin-open"

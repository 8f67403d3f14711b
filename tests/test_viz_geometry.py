"""Geometry figure builders: traces, orders and values checked against independent computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from sklearn.metrics.pairwise import cosine_similarity

from core.analysis import class_geometry, pairwise_cosines
from core.viz import (
    centred_class_means, cosine_heatmap, embedding_hover_features, embedding_marker_sizes, embedding_scatter,
    nc_history_figure, norm_count_figure, sample_image_figure, spread_bars,
)

COUNTS = np.array([5, 80, 20])  # class 1 is the head, class 0 the rarest
NAMES = ["ant", "bee", "cat"]
GROUPS = ["tail", "head", "medium"]


@pytest.fixture
def points():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], [6, 30, 12])
    coords = rng.normal(size=(labels.size, 3))
    pred = labels.copy()
    pred[[0, 10, 40]] = [1, 2, 1]
    return coords, labels, pred


def test_scatter_draws_head_first_and_rare_classes_larger(points):
    coords, labels, pred = points
    fig = embedding_scatter(coords[:, :2], labels, NAMES, COUNTS, pred=pred, groups=GROUPS)
    assert all(isinstance(t, go.Scatter) for t in fig.data)
    assert [t.legendgroup for t in fig.data] == ["1", "2", "0"]  # head, medium, tail: the tail drawn on top
    sizes = {t.legendgroup: t.marker.size for t in fig.data}
    assert sizes["0"] > sizes["2"] > sizes["1"]
    opacities = {t.legendgroup: t.opacity for t in fig.data}
    assert opacities["0"] > opacities["1"]
    for trace in fig.data:
        k = int(trace.legendgroup)
        np.testing.assert_allclose(trace.x, coords[labels == k, 0])
        ids = np.array([row[0] for row in trace.customdata], dtype=int)
        np.testing.assert_array_equal(ids, np.flatnonzero(labels == k))
        assert {row[1] for row in trace.customdata} == {NAMES[k]}
    tail_trace = fig.data[2]
    assert [row[2] for row in tail_trace.customdata][0] == "bee"  # sample 0 was predicted as class 1


def test_marker_sizes_grow_as_counts_shrink():
    sizes = embedding_marker_sizes([1000, 100, 10, 1])
    assert np.all(np.diff(sizes) > 0)
    assert np.allclose(embedding_marker_sizes([7, 7]), embedding_marker_sizes([7, 7])[0])


def test_scatter_highlights(points):
    coords, labels, pred = points
    plain = embedding_scatter(coords[:, :2], labels, NAMES, COUNTS, pred=pred, groups=GROUPS)
    fig = embedding_scatter(coords[:, :2], labels, NAMES, COUNTS, pred=pred, groups=GROUPS,
                            highlight_tail=True, highlight_errors=True)
    ring = fig.data[-1]
    assert ring.name == "misclassified (3)" and ring.marker.symbol == "circle-open"
    np.testing.assert_allclose(ring.x, coords[pred != labels, 0])
    colours = {t.legendgroup: t.marker.color for t in fig.data[:-1]}
    plain_colours = {t.legendgroup: t.marker.color for t in plain.data}
    assert colours["0"] == plain_colours["0"]  # the tail class keeps its colour
    assert colours["1"] == colours["2"] != plain_colours["1"]  # the others are greyed
    assert len(plain.data) == 3  # no ring without the toggle


def test_scatter_3d_and_hover_text(points):
    coords, labels, pred = points
    hover = [f"row {i}" for i in range(len(labels))]
    fig = embedding_scatter(coords, labels, NAMES, COUNTS, pred=pred, hover_text=hover, highlight_errors=True)
    assert all(isinstance(t, go.Scatter3d) for t in fig.data)
    assert fig.data[0].customdata[0][3] == f"<br>row {np.flatnonzero(labels == 1)[0]}"
    np.testing.assert_allclose(fig.data[0].z, coords[labels == 1, 2])


def test_scatter_uses_webgl_for_many_points():
    labels = np.arange(6000) % 3
    fig = embedding_scatter(np.zeros((6000, 2)), labels, NAMES, COUNTS)
    assert all(isinstance(t, go.Scattergl) for t in fig.data)


def test_hover_features_pick_the_most_unusual_values():
    x = np.array([[0.0, 10.0], [0.0, 10.0], [0.0, 10.0], [9.0, 10.1]])
    text = embedding_hover_features(x, ["a", "b"], top=1)
    assert text[3].startswith("a = 9")
    assert "SD" in text[0]


def test_centred_class_means_use_the_mean_of_class_means():
    features = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [10.0, 10.0]])
    labels = np.array([0, 0, 1, 1])
    means = centred_class_means(features, labels, 3)
    raw = np.array([[1.0, 0.0], [5.0, 7.0]])
    np.testing.assert_allclose(means[:2], raw - raw.mean(axis=0))
    assert np.isnan(means[2]).all()


def test_cosine_heatmap_values_in_the_requested_order():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(4, 6))
    order = [2, 0, 3, 1]
    fig = cosine_heatmap(vectors, ["a", "b", "c", "d"], order)
    heat = fig.data[0]
    np.testing.assert_allclose(np.asarray(heat.z), pairwise_cosines(vectors[order]))
    np.testing.assert_allclose(np.asarray(heat.z), cosine_similarity(vectors[order]), atol=1e-12)
    assert list(heat.x) == list(heat.y) == ["c", "a", "d", "b"]
    assert heat.zmid == pytest.approx(-1 / 3)


def test_cosine_heatmap_of_a_simplex_sits_on_the_centre_colour():
    k = 5
    simplex = np.eye(k) - 1.0 / k  # rows of a simplex equiangular tight frame
    heat = cosine_heatmap(simplex, list("abcde")).data[0]
    off_diagonal = np.asarray(heat.z)[~np.eye(k, dtype=bool)]
    np.testing.assert_allclose(off_diagonal, heat.zmid)


def test_nc_history_uses_only_rows_with_nc_metrics():
    history = [
        {"stage": "train", "epoch": 1, "train_loss": 2.0, "nc1": 3.0, "nc3": 0.9, "nc4": 0.5,
         "nc2_equinorm_means": 0.4},
        {"stage": "train", "epoch": 2, "train_loss": 1.5},
        {"stage": "train", "epoch": 3, "train_loss": 1.0, "nc1": 0.3, "nc3": 0.2, "nc4": 0.1,
         "nc2_equinorm_means": 0.1},
    ]
    fig = nc_history_figure(history)
    by_name = {t.name: t for t in fig.data}
    assert set(by_name) == {"NC1", "NC3", "NC4", "lengths, class means"}
    np.testing.assert_allclose(by_name["NC1"].x, [1, 3])
    np.testing.assert_allclose(by_name["NC1"].y, [3.0, 0.3])
    assert fig.layout.yaxis.type == "log"  # the NC1 panel


@pytest.fixture
def geometry():
    rng = np.random.default_rng(2)
    labels = np.repeat([0, 1, 2], 20)
    features = rng.normal(size=(60, 4)) + 3 * np.eye(4)[labels]
    weights = rng.normal(size=(3, 4))
    return class_geometry(features, labels, weights, COUNTS)


def test_norm_count_figure(geometry):
    fig = norm_count_figure(geometry, NAMES, GROUPS, {"mean_norm_count_spearman": 0.5,
                                                       "weight_norm_count_spearman": 1.0})
    assert fig.layout.xaxis.type == fig.layout.xaxis2.type == "log"
    left = [t for t in fig.data if t.xaxis == "x"]
    right = [t for t in fig.data if t.xaxis == "x2"]
    assert sum(len(t.x) for t in left) == sum(len(t.x) for t in right) == 3
    tail = next(t for t in right if t.name == "tail")
    assert list(tail.x) == [5] and tail.y[0] == pytest.approx(geometry.loc[0, "weight_norm"])
    assert tail.marker.color == "#d62728"
    titles = [a.text for a in fig.layout.annotations]
    assert "+0.50" in titles[0] and "+1.00" in titles[1]


def test_spread_bars_ordered_head_to_tail(geometry):
    fig = spread_bars(geometry, NAMES, GROUPS)
    assert list(fig.layout.xaxis.categoryarray) == ["bee", "cat", "ant"]
    top = {t.name: t for t in fig.data if t.yaxis == "y"}
    bottom = {t.name: t for t in fig.data if t.yaxis == "y2"}
    assert top["head"].marker.color == "#1f77b4" and top["medium"].marker.color == "#ff7f0e"
    assert top["tail"].y[0] == pytest.approx(geometry.loc[0, "spread_mean_dist"])
    assert bottom["head"].y[0] == pytest.approx(geometry.loc[1, "nearest_centre_dist"])


def test_sample_image_figure():
    grey = sample_image_figure(np.arange(64, dtype=float).reshape(1, 8, 8))
    assert isinstance(grey.data[0], go.Heatmap) and np.asarray(grey.data[0].z).shape == (8, 8)
    rgb = sample_image_figure(np.random.default_rng(0).normal(size=(3, 4, 4)))
    assert isinstance(rgb.data[0], go.Image) and np.asarray(rgb.data[0].z).shape == (4, 4, 3)


def test_builders_accept_pandas_string_columns(geometry):
    names = pd.array(NAMES, dtype="string")
    assert spread_bars(geometry, list(names), GROUPS).data


def test_thumbnails_share_the_pictures_among_classes_rarest_first():
    import base64
    import io

    from PIL import Image

    from core.viz import add_thumbnails, embedding_scatter

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], [100, 30, 4])
    coords, images = rng.normal(size=(134, 2)), rng.uniform(size=(134, 1, 8, 8))
    fig = add_thumbnails(embedding_scatter(coords, labels, ["a", "b", "c"], [100, 30, 4]), coords, images, labels,
                         [100, 30, 4], max_images=20)
    placed = fig.layout.images
    assert len(placed) == 20
    where = {(round(im.x, 9), round(im.y, 9)) for im in placed}
    index = {(round(x, 9), round(y, 9)): i for i, (x, y) in enumerate(coords)}
    counts = np.bincount(labels[[index[w] for w in where]], minlength=3)
    assert counts.tolist() == [8, 8, 4], "every rare sample, then equal turns"
    picture = Image.open(io.BytesIO(base64.b64decode(placed[0].source.split(",", 1)[1])))
    assert picture.size == (32, 32)  # 8x8 repeated 4 times, not blurred
    with pytest.raises(ValueError, match="2-D"):
        add_thumbnails(go.Figure(), np.zeros((3, 3)), images[:3], labels[:3], [1, 1, 1])


def test_every_chart_has_the_one_look_without_naming_it(points):
    """The white look is plotly's default for the whole project (set once in core.viz), so a
    builder that names no template and one that used to name it draw alike."""
    import plotly.io as pio

    from core.viz import confusion_figure

    assert pio.templates.default == "plotly_white"
    coords, labels, pred = points
    for fig in (embedding_scatter(coords[:, :2], labels, NAMES, COUNTS, pred=pred, groups=GROUPS),
                confusion_figure(np.eye(3, dtype=int) * 5, NAMES)):
        assert fig.layout.template.layout.plot_bgcolor == "white"

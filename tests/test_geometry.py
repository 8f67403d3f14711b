"""Neural-collapse and per-class geometry against constructed cases and explicit loops."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from core.analysis._geometry import (
    class_geometry,
    geometry_summary,
    minority_collapse,
    neural_collapse,
    norm_count_correlation,
    pairwise_cosines,
)
from core.artifacts import EvalArtifacts

NC_KEYS = {
    "nc1",
    "nc2_equinorm_means",
    "nc2_equinorm_weights",
    "nc2_equiangular_means",
    "nc2_equiangular_weights",
    "nc2_maxangle_means",
    "nc2_maxangle_weights",
    "nc3",
    "nc4",
}


def simplex_etf(num_classes: int, dim: int, seed: int = 0) -> np.ndarray:
    """(K, d) rows forming a simplex equiangular tight frame in a random K-dim subspace."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(dim, num_classes)))
    centring = np.eye(num_classes) - 1.0 / num_classes
    return math.sqrt(num_classes / (num_classes - 1)) * (basis @ centring).T


def collapsed_data(num_classes=5, dim=8, per_class=4, sigma=0.0, seed=0):
    etf = simplex_etf(num_classes, dim, seed)
    labels = np.repeat(np.arange(num_classes), per_class)
    noise = np.random.default_rng(seed + 1).normal(scale=sigma, size=(labels.size, dim))
    return etf[labels] + noise, labels, etf


def test_exact_simplex_etf_is_fully_collapsed():
    features, labels, etf = collapsed_data()
    logits = features @ etf.T
    result = neural_collapse(features, labels, etf, logits)
    assert set(result) == NC_KEYS
    assert all(type(value) is float for value in result.values())
    for key, value in result.items():
        assert value == pytest.approx(0.0, abs=1e-9), key


def test_nc4_accepts_predicted_labels_and_is_nan_without_them():
    features, labels, etf = collapsed_data()
    assert neural_collapse(features, labels, etf, labels)["nc4"] == 0.0
    assert neural_collapse(features, labels, etf, (labels + 1) % 5)["nc4"] == 1.0
    assert math.isnan(neural_collapse(features, labels, etf)["nc4"])


def test_nc1_grows_with_within_class_noise():
    nc1 = [
        neural_collapse(*collapsed_data(per_class=50, sigma=sigma)[:2], simplex_etf(5, 8))["nc1"]
        for sigma in (0.0, 0.05, 0.2, 0.5, 1.0)
    ]
    assert nc1[0] == pytest.approx(0.0, abs=1e-12)
    assert all(a < b for a, b in zip(nc1, nc1[1:]))


def direct_neural_collapse(features, labels, weights, pred):
    """The REFERENCE.md formulas, written out with loops (small K only)."""
    num_classes, dim = weights.shape
    means = []
    for k in range(num_classes):
        members = [features[i] for i in range(len(labels)) if labels[i] == k]
        means.append(sum(members) / len(members))
    global_mean = sum(means) / num_classes
    within = np.zeros((dim, dim))
    for i in range(len(labels)):
        diff = (features[i] - means[labels[i]])[:, None]
        within += diff @ diff.T
    within /= len(labels)
    between = np.zeros((dim, dim))
    for k in range(num_classes):
        diff = (means[k] - global_mean)[:, None]
        between += diff @ diff.T
    between /= num_classes
    nc1 = np.trace(within @ np.linalg.pinv(between)) / num_classes

    centred = [m - global_mean for m in means]
    out = {"nc1": nc1}
    for name, vectors in (("means", centred), ("weights", list(weights))):
        norms = [np.linalg.norm(v) for v in vectors]
        out[f"nc2_equinorm_{name}"] = np.std(norms) / np.mean(norms)
        cosines = [
            vectors[a] @ vectors[b] / (norms[a] * norms[b])
            for a in range(num_classes)
            for b in range(num_classes)
            if a != b
        ]
        out[f"nc2_equiangular_{name}"] = np.std(cosines)
        out[f"nc2_maxangle_{name}"] = np.mean([abs(c + 1 / (num_classes - 1)) for c in cosines])
    means_matrix = np.stack(centred, axis=1)  # d x K
    alignment_gap = weights.T / np.linalg.norm(weights) - means_matrix / np.linalg.norm(means_matrix)
    out["nc3"] = np.linalg.norm(alignment_gap) ** 2
    disagreements = 0
    for i in range(len(labels)):
        nearest = min(range(num_classes), key=lambda k: np.linalg.norm(features[i] - means[k]))
        disagreements += nearest != pred[i]
    out["nc4"] = disagreements / len(labels)
    return out


def test_hand_sized_case_matches_direct_computation():
    features = np.array([[0.0, 1.0], [0.5, 1.5], [2.0, 0.0], [2.5, -0.5], [-1.0, -1.0], [1.0, -0.5]])
    labels = np.array([0, 0, 1, 1, 2, 2])
    weights = np.array([[0.2, 1.0], [1.5, -0.3], [-0.8, -0.9]])
    pred = np.array([0, 1, 1, 1, 2, 1])
    expected = direct_neural_collapse(features, labels, weights, pred)
    result = neural_collapse(features, labels, weights, pred)
    assert expected["nc4"] > 0  # the case exercises a disagreement
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_absent_classes_are_skipped():
    features, labels, etf = collapsed_data(num_classes=4)
    padded_weights = np.vstack([etf, np.full((1, etf.shape[1]), 7.0)])  # class 4 never appears
    assert neural_collapse(features, labels, padded_weights, labels) == pytest.approx(
        neural_collapse(features, labels, etf, labels)
    )


def test_class_geometry_columns_and_values():
    features = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 0.0], [10.0, 4.0]])
    labels = np.array([0, 0, 1, 1])
    weights = np.array([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]])  # class 2 absent
    table = class_geometry(features, labels, weights, np.array([50, 20, 5]), pred=np.array([0, 1, 1, 0]))
    assert list(table.columns) == [
        "class", "count", "mean_norm", "weight_norm", "spread_trace",
        "spread_mean_dist", "nearest_centre_dist", "recall",
    ]
    # centres (1, 0) and (10, 2); mu_G = (5.5, 1)
    np.testing.assert_allclose(table["weight_norm"], [5.0, 1.0, 2.0])
    np.testing.assert_allclose(table["mean_norm"][:2], [math.hypot(4.5, 1)] * 2)
    np.testing.assert_allclose(table["spread_trace"][:2], [1.0, 4.0])
    np.testing.assert_allclose(table["spread_mean_dist"][:2], [1.0, 2.0])
    np.testing.assert_allclose(table["nearest_centre_dist"][:2], [math.hypot(9, 2)] * 2)
    np.testing.assert_allclose(table["recall"][:2], [0.5, 0.5])
    assert table.iloc[2][["mean_norm", "spread_trace", "nearest_centre_dist", "recall"]].isna().all()
    assert "recall" not in class_geometry(features, labels, weights, np.array([50, 20, 5])).columns


def test_weight_norms_proportional_to_counts_give_spearman_one():
    counts = np.array([500, 200, 90, 30, 8])
    table = pd.DataFrame({"count": counts, "weight_norm": counts * 0.01, "mean_norm": np.ones(5)})
    result = norm_count_correlation(table)
    assert result["weight_norm_count_spearman"] == pytest.approx(1.0)
    assert math.isnan(result["mean_norm_count_spearman"])  # constant: no warning, just NaN


def test_pairwise_cosines():
    cosines = pairwise_cosines(np.array([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]]))
    np.testing.assert_allclose(cosines, [[1, 0, -1], [0, 1, 0], [-1, 0, 1]], atol=1e-12)


def test_minority_collapse_on_constructed_case():
    # Head classes spread at 120 degrees in one plane; tail classes nearly parallel.
    angles = np.deg2rad([0.0, 120.0, 240.0])
    head = np.stack([np.cos(angles), np.sin(angles), np.zeros(3)], axis=1)
    tail = np.array([[0.0, 0.0, 1.0], [0.1, 0.0, 1.0], [0.0, 0.1, 1.0]])
    weights = np.vstack([head, tail])
    groups = ["head"] * 3 + ["tail"] * 3
    result = minority_collapse(weights, weights * 2.0, groups)
    assert result["head_weight_cosine"] == pytest.approx(-0.5)
    assert result["head_mean_cosine"] == pytest.approx(-0.5)
    tail_expected = np.mean([1 / 1.01**0.5, 1 / 1.01**0.5, 1 / 1.01])
    assert result["tail_weight_cosine"] == pytest.approx(tail_expected)
    assert result["tail_weight_cosine"] > 0.9 > result["head_weight_cosine"]


def test_geometry_summary_is_a_flat_dict_of_floats():
    features, labels, etf = collapsed_data(num_classes=4, per_class=10, sigma=0.1)
    counts = np.array([100, 40, 10, 3])
    empty = np.zeros((0, 4))
    artifacts = EvalArtifacts(
        logits=features @ etf.T, labels=labels, features=features, head_weight=etf * counts[:, None] ** 0.5,
        head_bias=np.zeros(4), train_features=features, train_labels=labels, class_counts=counts,
        val_logits=empty, val_labels=np.zeros(0, int), val_features=np.zeros((0, 8)),
        test_index=np.arange(labels.size),
    )
    summary = geometry_summary(artifacts, groups=["head", "head", "tail", "tail"])
    assert NC_KEYS | {"weight_norm_count_spearman", "mean_norm_count_spearman"} <= set(summary)
    assert {"tail_weight_cosine", "head_weight_cosine", "tail_mean_cosine", "head_mean_cosine"} <= set(summary)
    assert all(type(value) is float for value in summary.values())
    assert summary["weight_norm_count_spearman"] == pytest.approx(1.0)
    assert "tail_weight_cosine" not in geometry_summary(artifacts)

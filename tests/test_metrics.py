"""Summary, per-class and group metrics against sklearn / imblearn and hand-worked cases."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from imblearn.metrics import geometric_mean_score
from sklearn import metrics as skm

from core.analysis._metrics import (
    METRICS,
    balanced_accuracy,
    confusion,
    group_metrics,
    per_class_metrics,
    softmax,
    summary_metrics,
)
from core.data._groups import class_groups

K = 4


@pytest.fixture
def sample():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, K, 300)
    logits = rng.normal(size=(300, K))
    logits[np.arange(300), labels] += 1.0  # better than chance, not perfect
    return logits, labels


def test_softmax_is_stable_and_normalised():
    p = softmax(np.array([[1000.0, 1000.0, -1000.0], [0.0, 0.0, 0.0]]))
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p[0], [0.5, 0.5, 0.0])


def test_summary_matches_sklearn_and_imblearn(sample):
    logits, labels = sample
    pred = logits.argmax(axis=1)
    probs = softmax(logits)
    got = summary_metrics(logits, labels, K)
    assert set(got) == set(METRICS)
    recalls = skm.recall_score(labels, pred, average=None)
    expected = {
        "accuracy": skm.accuracy_score(labels, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(labels, pred),
        "f1_macro": skm.f1_score(labels, pred, average="macro"),
        "gmean": geometric_mean_score(labels, pred),
        "worst_class_recall": recalls.min(),
        "mcc": skm.matthews_corrcoef(labels, pred),
        "cohen_kappa": skm.cohen_kappa_score(labels, pred),
        "roc_auc_ovr_macro": skm.roc_auc_score(labels, probs, multi_class="ovr", average="macro"),
        "average_precision_macro": skm.average_precision_score(
            np.eye(K)[labels], probs, average="macro"),
    }
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key


def test_gmean_is_kth_root_of_recall_product(sample):
    logits, labels = sample
    recalls = skm.recall_score(labels, logits.argmax(axis=1), average=None)
    assert summary_metrics(logits, labels, K)["gmean"] == pytest.approx(np.prod(recalls) ** (1 / K))


def test_missing_classes_do_not_raise_and_use_present_classes():
    labels = np.array([0, 0, 1, 1, 1])  # classes 2 and 3 absent
    logits = np.eye(K)[[0, 2, 1, 1, 1]] * 3.0  # one class-0 sample predicted as absent class 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning leaks out either
        got = summary_metrics(logits, labels, K)
    assert got["balanced_accuracy"] == pytest.approx((0.5 + 1.0) / 2)
    assert got["gmean"] == pytest.approx(np.sqrt(0.5 * 1.0))
    assert got["worst_class_recall"] == pytest.approx(0.5)
    assert np.isfinite(got["roc_auc_ovr_macro"])


def test_single_present_class_gives_nan_not_error():
    got = summary_metrics(np.zeros((3, K)), np.array([2, 2, 2]), K)
    assert np.isnan(got["roc_auc_ovr_macro"]) and np.isnan(got["average_precision_macro"])
    assert all(isinstance(v, float) for v in got.values())


def test_metric_info_declares_direction():
    for key, info in METRICS.items():
        assert info.key == key and info.display_name and info.description
        assert info.higher_is_better is True


def test_per_class_table_matches_sklearn(sample):
    logits, labels = sample
    counts = np.array([30, 500, 5, 60])
    table = per_class_metrics(logits, labels, counts, class_names=["a", "b", "c", "d"])
    assert list(table.columns) == ["class", "class_index", "count_train", "precision", "recall", "f1",
                                   "support", "group"]
    assert table["count_train"].tolist() == [500, 60, 30, 5]
    assert table["class"].tolist() == ["b", "d", "a", "c"]
    assert table["group"].tolist() == ["head", "medium", "medium", "tail"]
    p, r, f, s = skm.precision_recall_fscore_support(labels, logits.argmax(axis=1), zero_division=0)
    idx = table["class_index"].to_numpy()
    np.testing.assert_allclose(table["precision"], p[idx])
    np.testing.assert_allclose(table["recall"], r[idx])
    np.testing.assert_allclose(table["f1"], f[idx])
    np.testing.assert_array_equal(table["support"], s[idx])


def test_class_groups_literature_thresholds():
    # > 100 head, 20..100 (inclusive) medium, < 20 tail
    assert class_groups([101, 100, 20, 19, 5000]) == ["head", "medium", "medium", "tail", "head"]
    cifar_lt = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert class_groups(cifar_lt) == ["head"] * 8 + ["medium"] * 2


def test_class_groups_tercile_fallback():
    # All above 100: terciles of K=6 -> top 2 head, bottom 2 tail.
    assert class_groups([900, 800, 700, 600, 500, 400]) == ["head"] * 2 + ["medium"] * 2 + ["tail"] * 2
    # Order-independent: groups follow counts, not indices.
    shuffled = class_groups([400, 900, 600, 500, 800, 700])
    assert shuffled == ["tail", "head", "medium", "tail", "head", "medium"]
    # Equal counts share a group; a balanced set stays one group.
    assert class_groups([500, 500, 500]) == ["head"] * 3
    assert class_groups([900, 500, 500, 500, 200]) == ["head", "head", "head", "head", "tail"]


def test_class_groups_small_k():
    assert class_groups([7]) == ["head"]
    assert class_groups([5, 9]) == ["tail", "head"]
    assert class_groups([3, 3]) == ["head", "head"]
    with pytest.raises(ValueError):
        class_groups([])


def test_group_metrics_mean_recall_per_group():
    counts = np.array([500, 50, 5])  # head, medium, tail
    labels = np.array([0, 0, 1, 1, 2, 2, 2, 2])
    pred = np.array([0, 0, 1, 0, 0, 0, 0, 2])
    table = group_metrics(np.eye(3)[pred], labels, counts)
    assert table["group"].tolist() == ["head", "medium", "tail"]
    assert table["n_classes"].tolist() == [1, 1, 1]
    assert table["n_train"].tolist() == [500, 50, 5]
    assert table["n_test"].tolist() == [2, 2, 4]
    np.testing.assert_allclose(table["accuracy"], [1.0, 0.5, 0.25])


def test_group_metrics_only_groups_present():
    table = group_metrics(np.eye(2)[[0, 1]], np.array([0, 1]), np.array([500, 300]))
    assert table["group"].tolist() == ["head", "tail"]  # tercile fallback, K=2


def test_confusion_fixed_size_and_normalised():
    labels = np.array([0, 0, 1, 1])
    pred = np.array([0, 1, 1, 1])
    raw = confusion(pred, labels, 3, normalize=False)
    np.testing.assert_array_equal(raw, [[1, 1, 0], [0, 2, 0], [0, 0, 0]])
    np.testing.assert_array_equal(raw, confusion(np.eye(3)[pred], labels, 3, normalize=False))
    norm = confusion(pred, labels, 3, normalize=True)
    np.testing.assert_allclose(norm, [[0.5, 0.5, 0], [0, 1, 0], [0, 0, 0]])


def test_per_class_table_is_a_dataframe_without_test_samples():
    table = per_class_metrics(np.zeros((0, 3)), np.array([], dtype=int), [10, 5, 1])
    assert isinstance(table, pd.DataFrame) and len(table) == 3
    assert table["support"].sum() == 0
    empty = confusion(np.zeros((0, 3)), np.array([], dtype=int), 3, normalize=True)
    np.testing.assert_array_equal(empty, np.zeros((3, 3)))


@pytest.mark.parametrize("seed", range(6))
def test_balanced_accuracy_equals_sklearns(seed):
    """Counted without sklearn, the same number as sklearn's: predictions of classes the labels
    lack, labels that skip classes, negative or boolean labels, and (n, K) scores."""
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(1, 60)), int(rng.integers(2, 7))
    labels = rng.choice(rng.choice(np.arange(-2, k), size=max(1, k - 2), replace=False), n)
    pred = rng.integers(-2, k, n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns of predicted classes the labels lack
        assert balanced_accuracy(pred, labels) == pytest.approx(skm.balanced_accuracy_score(labels, pred), abs=1e-12)
        scores = rng.normal(size=(n, k))
        assert balanced_accuracy(scores, labels % k) == pytest.approx(
            skm.balanced_accuracy_score(labels % k, scores.argmax(1)), abs=1e-12)
        assert balanced_accuracy(pred > 0, labels > 0) == pytest.approx(
            skm.balanced_accuracy_score(labels > 0, pred > 0), abs=1e-12)
    with pytest.raises(ValueError):  # what sklearn refuses is refused the same way
        balanced_accuracy(pred[:-1] if n > 1 else np.array([], dtype=int), labels)

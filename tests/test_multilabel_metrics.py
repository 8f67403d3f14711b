"""Multi-label metrics against scikit-learn and hand-worked cases; unknown entries left out;
intervals and the paired verdict on tail mAP."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score, average_precision_score, f1_score, hamming_loss, roc_auc_score,
)

from core.analysis import (
    compare_experiments, compare_multilabel_runs, metric_info_of, multilabel_intervals, multilabel_summary,
    paired_multilabel_bootstrap, per_label_auroc, per_label_average_precision,
)
from core.data import as_label_matrix, label_counts


def _problem(seed=0, n=120, labels=5, rounded=False):
    rng = np.random.default_rng(seed)
    rates = np.array([0.5, 0.3, 0.15, 0.08, 0.04])[:labels]
    y = (rng.random((n, labels)) < rates).astype(float)
    y[0] = 1  # every label has a positive
    scores = np.clip(0.35 * y + rng.random((n, labels)) * 0.7, 0, 1)
    if rounded:
        scores = np.round(scores, 1)  # many ties
    return scores, y


@pytest.mark.parametrize("rounded", [False, True])
def test_average_precision_and_auroc_match_sklearn_per_label(rounded):
    scores, y = _problem(rounded=rounded)
    ap = per_label_average_precision(scores, y)
    auc = per_label_auroc(scores, y)
    for c in range(y.shape[1]):
        assert ap[c] == pytest.approx(average_precision_score(y[:, c], scores[:, c]), abs=1e-12)
        assert auc[c] == pytest.approx(roc_auc_score(y[:, c], scores[:, c]), abs=1e-12)
    assert multilabel_summary(scores, y, label_counts(y))["map"] == pytest.approx(
        average_precision_score(y, scores, average="macro"), abs=1e-12)


def test_unknown_entries_are_left_out_per_label():
    scores, y = _problem(seed=1)
    hidden = y.copy()
    rng = np.random.default_rng(3)
    mask = rng.random(y.shape) < 0.3
    mask[0] = False
    hidden[mask] = np.nan
    ap = per_label_average_precision(scores, hidden)
    for c in range(y.shape[1]):
        keep = ~mask[:, c]
        assert ap[c] == pytest.approx(average_precision_score(y[keep, c], scores[keep, c]), abs=1e-12)
    # what an unknown entry holds, or scores there, change nothing
    other_scores = scores.copy()
    other_scores[mask] = rng.random(mask.sum())
    np.testing.assert_allclose(per_label_average_precision(other_scores, hidden), ap)
    as_int = np.where(mask, -1, y).astype(int)
    np.testing.assert_allclose(per_label_average_precision(scores, as_int), ap)


def test_hand_worked_average_precision_with_a_tie_and_no_positive():
    # scores 0.9 (pos), 0.8 (neg), 0.8 (pos), 0.1 (neg): thresholds 0.9 -> P=1 R=1/2; 0.8 -> P=2/3 R=1
    # AP = 1/2 * 1 + 1/2 * 2/3 = 5/6. The second label has no positive: no AP.
    scores = np.array([[0.9, 0.2], [0.8, 0.3], [0.8, 0.4], [0.1, 0.5]])
    y = np.array([[1, 0], [0, 0], [1, 0], [0, 0]])
    ap = per_label_average_precision(scores, y)
    assert ap[0] == pytest.approx(5 / 6) and np.isnan(ap[1])


def test_thresholded_numbers_match_sklearn():
    scores, y = _problem(seed=2)
    out = multilabel_summary(scores, y, label_counts(y), threshold=0.5)
    pred = (scores >= 0.5).astype(int)
    assert out["f1_macro"] == pytest.approx(f1_score(y, pred, average="macro", zero_division=0))
    assert out["f1_micro"] == pytest.approx(f1_score(y, pred, average="micro", zero_division=0))
    assert out["hamming_loss"] == pytest.approx(hamming_loss(y, pred))
    assert out["subset_accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert out["roc_auc_macro"] == pytest.approx(roc_auc_score(y, scores, average="macro"))


def test_thresholded_numbers_skip_unknown_entries_by_hand():
    # case 0: (1, ?) decided (1, 1): right on what is known; case 1: (0, 1) decided (1, 1): one wrong
    scores = np.array([[0.9, 0.9], [0.7, 0.6]])
    y = np.array([[1, -1], [0, 1]])
    out = multilabel_summary(scores, y, [5, 1])
    assert out["hamming_loss"] == pytest.approx(1 / 3)  # 1 wrong of 3 known entries
    assert out["subset_accuracy"] == pytest.approx(1 / 2)
    assert out["f1_micro"] == pytest.approx(2 * 2 / (2 * 2 + 1))  # tp 2, fp 1, fn 0


def test_groups_follow_training_counts():
    scores, y = _problem(seed=4)
    ap = per_label_average_precision(scores, y)
    counts = [500, 200, 60, 8, 3]  # head, head, medium, tail, tail
    out = multilabel_summary(scores, y, counts)
    assert out["map_head"] == pytest.approx(ap[:2].mean())
    assert out["map_medium"] == pytest.approx(ap[2])
    assert out["map_tail"] == pytest.approx(ap[3:].mean())


def test_label_matrix_refuses_what_is_not_one():
    with pytest.raises(ValueError, match="case 1, label 0 holds 2"):
        as_label_matrix(np.array([[0, 1], [2, 0]]))
    with pytest.raises(ValueError, match="2-D label matrix"):
        as_label_matrix(np.array([0, 1, 2]))
    assert np.isnan(as_label_matrix(np.array([[1, -1]]))[0, 1])
    # frequencies among known entries: label 0 known in 3 cases, present in 2; label 1 never known
    from core.data import label_frequencies

    freq = label_frequencies(np.array([[1, -1], [0, -1], [1, -1]]), names=["a", "b"])
    assert freq["a"] == pytest.approx(2 / 3) and np.isnan(freq["b"])


def test_intervals_contain_the_estimate_and_stay_in_range():
    scores, y = _problem(seed=5, n=200)
    summary, per_label = multilabel_intervals(scores, y, [150, 120, 60, 16, 8], n_resamples=200, seed=0)
    for key, iv in summary.items():
        assert iv.low <= iv.estimate <= iv.high, key
        assert 0 <= iv.low and iv.high <= 1
    assert len(per_label) == 5 and all(iv.high > iv.low for iv in per_label)
    again, _ = multilabel_intervals(scores, y, [150, 120, 60, 16, 8], n_resamples=200, seed=0)
    assert again["map_tail"] == summary["map_tail"]


def test_paired_tail_map_verdict_follows_the_interval():
    rng = np.random.default_rng(6)
    y = (rng.random((300, 4)) < [0.5, 0.4, 0.06, 0.05]).astype(float)
    noise = rng.random(y.shape)
    good = np.clip(0.6 * y + 0.6 * noise, 0, 1)
    bad = good.copy()
    bad[:, 2:] = noise[:, 2:]  # B knows nothing about the two tail labels
    counts = [150, 120, 6, 5]
    comparison = compare_multilabel_runs(good, bad, y, counts, "map_tail", n_resamples=500)
    assert comparison.status == "better" and comparison.ci[0] > 0 and comparison.p_value <= 0.05
    same = compare_multilabel_runs(good, good, y, counts, "map_tail", n_resamples=200)
    assert same.status == "cannot tell"
    close = paired_multilabel_bootstrap(good, np.clip(good + 1e-3 * rng.standard_normal(good.shape), 0, 1), y,
                                        counts, "map_tail", n_resamples=500)
    low, high = close.interval(0.95)
    assert (close.p_value <= 0.05) == (low > 0 or high < 0)


def test_seed_comparison_on_tail_map_uses_the_registered_range_and_direction():
    assert metric_info_of("map_tail").higher_is_better and not metric_info_of("hamming_loss").higher_is_better
    a = [0.40, 0.42, 0.41, 0.43, 0.44, 0.45]
    b = [0.30, 0.31, 0.33, 0.32, 0.30, 0.34]
    result = compare_experiments(a, b, metric="map_tail", design="seeds")
    assert result.status == "better" and result.ci[1] <= 1
    few = compare_experiments(a[:3], b[:3], metric="map_tail", design="seeds")
    assert few.status == "too few"


def test_per_label_thresholds_maximise_validation_f1():
    from sklearn.metrics import f1_score as sk_f1

    from core.analysis import tune_label_thresholds

    scores, y = _problem(seed=7, rounded=True)
    y[5, 1] = np.nan
    thresholds = tune_label_thresholds(scores, y)
    for c in range(y.shape[1]):
        keep = ~np.isnan(y[:, c])
        best = max(sk_f1(y[keep, c], scores[keep, c] >= t) for t in np.unique(scores[keep, c]))
        assert sk_f1(y[keep, c], scores[keep, c] >= thresholds[c]) == pytest.approx(best)
    # hand-worked: scores .9 (pos) .6 (neg) .4 (pos) .1 (neg): t=.9 F1 2/3, t=.6 F1 1/2, t=.4 F1 4/5
    t = tune_label_thresholds(np.array([[0.9], [0.6], [0.4], [0.1]]), np.array([[1], [0], [1], [0]]))
    assert t.tolist() == [0.4]
    assert tune_label_thresholds(np.array([[0.9], [0.2]]), np.array([[0], [0]])).tolist() == [0.5]
    # chosen on validation, scored on test
    test_scores, test_y = _problem(seed=8)
    tuned = multilabel_summary(test_scores, test_y, label_counts(y), threshold=thresholds)
    pred = (test_scores >= thresholds).astype(int)
    assert tuned["f1_macro"] == pytest.approx(f1_score(test_y, pred, average="macro", zero_division=0))

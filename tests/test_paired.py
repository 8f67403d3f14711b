"""Paired comparisons against hand-worked tables, closed formulas and enumerations."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import balanced_accuracy_score

from core.analysis import (
    Comparison,
    compare_experiments,
    compare_single_runs,
    corrected_resampled_ttest,
    mcnemar,
    paired_bootstrap_difference,
    paired_seed_test,
    verdict,
)


def _table_predictions(both_right: int, only_a: int, only_b: int, both_wrong: int):
    """Predictions of two runs on a binary task with the given McNemar table."""
    labels = np.zeros(both_right + only_a + only_b + both_wrong, dtype=int)
    right_a = np.repeat([True, True, False, False], [both_right, only_a, only_b, both_wrong])
    right_b = np.repeat([True, False, True, False], [both_right, only_a, only_b, both_wrong])
    return np.where(right_a, 0, 1), np.where(right_b, 0, 1), labels


# --- McNemar ---------------------------------------------------------------------------------

def test_mcnemar_exact_on_a_small_table():
    pred_a, pred_b, labels = _table_predictions(5, 1, 8, 3)
    result = mcnemar(pred_a, pred_b, labels)
    assert (result["both_right"], result["only_a_right"], result["only_b_right"], result["both_wrong"]) == (5, 1, 8, 3)
    assert result["exact"] is True
    # 2 * P(X <= 1 | X ~ Binomial(9, 1/2)) = 2 * (1 + 9) / 512
    assert result["p_value"] == pytest.approx(0.0390625, abs=1e-15)
    assert result["statistic"] == 1


def test_mcnemar_chi_square_with_continuity_correction():
    pred_a, pred_b, labels = _table_predictions(100, 40, 20, 15)
    result = mcnemar(np.eye(2)[pred_a], np.eye(2)[pred_b], labels)  # logits work too
    chi2 = (abs(40 - 20) - 1) ** 2 / (40 + 20)
    assert result["exact"] is False
    assert result["statistic"] == pytest.approx(chi2, abs=1e-12)
    assert result["p_value"] == pytest.approx(math.erfc(math.sqrt(chi2 / 2)), abs=1e-12)  # chi2(1) tail


def test_mcnemar_switches_to_chi_square_at_25_discordant_pairs():
    assert mcnemar(*_table_predictions(10, 20, 4, 0))["exact"] is True
    assert mcnemar(*_table_predictions(10, 20, 5, 0))["exact"] is False


# --- folds: corrected resampled t-test ---------------------------------------------------------

def test_corrected_resampled_ttest_by_hand_and_wider_than_naive():
    rng = np.random.default_rng(0)
    b = 0.80 + 0.02 * rng.normal(size=10)
    a = b + 0.01 + 0.01 * rng.normal(size=10)
    d = a - b
    result = corrected_resampled_ttest(d, n_train=900, n_test=100, folds=5, repeats=2)
    mean = sum(d) / 10
    var = sum((x - mean) ** 2 for x in d) / 9
    se = math.sqrt((1 / 10 + 100 / 900) * var)
    t = mean / se
    assert result["t"] == pytest.approx(t, rel=1e-12)
    assert result["df"] == 9
    assert result["p_value"] == pytest.approx(2 * stats.t.sf(abs(t), 9), rel=1e-12)
    half = stats.t.ppf(0.975, 9) * se
    assert result["ci"] == pytest.approx([mean - half, mean + half], rel=1e-12)
    assert result["p_value"] > stats.ttest_rel(a, b).pvalue  # folds overlap: the naive test is over-confident


def test_corrected_resampled_ttest_zero_variance_and_shape_checks():
    assert corrected_resampled_ttest([0.02] * 6, n_train=50, n_test=10, folds=3, repeats=2)["p_value"] == 0.0
    assert corrected_resampled_ttest([0.0] * 6, n_train=50, n_test=10, folds=3, repeats=2)["p_value"] == 1.0
    with pytest.raises(ValueError, match="3 folds x 2 repeats"):
        corrected_resampled_ttest([0.1] * 5, n_train=50, n_test=10, folds=3, repeats=2)


# --- seeds: sign flips and Wilcoxon --------------------------------------------------------------

def _enumerated_sign_flip_p(d: np.ndarray) -> float:
    observed = abs(d.mean())
    flips = np.array(list(itertools.product([1, -1], repeat=d.size)))
    return float(np.mean(np.abs((flips * d).mean(axis=1)) >= observed - 1e-12))


def test_three_seeds_cannot_reach_significance():
    result = paired_seed_test([0.010, 0.020, 0.015])
    assert result["p_value"] == pytest.approx(0.25)
    assert result["min_p"] == pytest.approx(0.25)
    assert "with 3 paired runs no test can reach p < 0.05" in result["note"]
    comparison = compare_experiments([0.81, 0.82, 0.83], [0.80, 0.80, 0.815], metric="balanced_accuracy",
                                     design="seeds")
    assert comparison.verdict == "too few seeds to tell (p = 0.25; with 3 seeds p cannot go below 0.25)"
    assert "no test can reach p < 0.05" in comparison.note
    # Six seeds can reach it: then a mixed bag is within noise again.
    mixed = compare_experiments([0.81, 0.80, 0.83, 0.79, 0.82, 0.80], [0.80, 0.81, 0.82, 0.80, 0.81, 0.80],
                                metric="balanced_accuracy", design="seeds")
    assert mixed.verdict.startswith("within noise") and not mixed.note


def test_sign_flip_test_against_enumeration():
    d = np.random.default_rng(1).normal(0.01, 0.02, size=8)
    result = paired_seed_test(d)
    assert result["p_value"] == pytest.approx(_enumerated_sign_flip_p(d), abs=1e-12)
    assert result["note"] == "" and result["min_p"] == pytest.approx(2 / 2**8)
    summary_half = stats.t.ppf(0.975, 7) * d.std(ddof=1) / math.sqrt(8)
    assert result["ci"] == pytest.approx([d.mean() - summary_half, d.mean() + summary_half], abs=1e-12)


def test_many_seeds_use_wilcoxon():
    d = np.random.default_rng(2).normal(0.01, 0.02, size=15)
    result = paired_seed_test(d)
    assert result["test"] == "Wilcoxon signed-rank test"
    assert result["p_value"] == pytest.approx(stats.wilcoxon(d).pvalue, abs=1e-15)
    assert paired_seed_test([1.0])["note"] == "with 1 paired run no test is possible"


def test_compare_experiments_folds_design():
    rng = np.random.default_rng(3)
    b = 0.7 + 0.03 * rng.normal(size=10)
    a = b + 0.05 + 0.005 * rng.normal(size=10)
    result = compare_experiments(a, b, metric="f1_macro", design="folds", n_train=900, n_test=100, folds=10,
                                 repeats=1)
    expected = corrected_resampled_ttest(a - b, n_train=900, n_test=100, folds=10, repeats=1)
    assert result.p_value == expected["p_value"] and result.difference == pytest.approx(0.05, abs=0.01)
    assert result.verdict.startswith("better beyond noise")
    assert compare_experiments(b, a, metric="f1_macro", design="folds", n_train=900, n_test=100, folds=10,
                               repeats=1).verdict.startswith("worse beyond noise")
    with pytest.raises(ValueError, match="n_train"):
        compare_experiments(a, b, metric="f1_macro", design="folds")
    with pytest.raises(ValueError, match="design"):
        compare_experiments(a, b, metric="f1_macro", design="bootstrap")


# --- verdicts --------------------------------------------------------------------------------

def test_verdict_strings():
    assert verdict(0.02, (0.01, 0.03), 0.003) == "better beyond noise (p = 0.003)"
    assert verdict(-0.02, (-0.03, -0.01), 0.0123) == "worse beyond noise (p = 0.012)"
    assert verdict(0.01, (-0.01, 0.03), 0.41) == "within noise (p = 0.41)"
    assert verdict(0.05, (0.03, 0.07), 0.00004) == "better beyond noise (p < 0.001)"
    # ECE: lower is better, so a lower ECE for a (negative difference) is better
    assert verdict(-0.02, (-0.03, -0.01), 0.003, higher_is_better=False) == "better beyond noise (p = 0.003)"
    assert verdict(0.02, (0.01, 0.03), 0.003, higher_is_better=False) == "worse beyond noise (p = 0.003)"
    assert verdict(0.02, (0.01, 0.03), float("nan")).startswith("undetermined")


def test_metric_direction_comes_from_the_registry():
    ece_a, ece_b = [0.05, 0.06, 0.04, 0.05, 0.055, 0.045], [0.10, 0.12, 0.11, 0.10, 0.115, 0.105]
    result = compare_experiments(ece_a, ece_b, metric="ece", design="seeds")
    assert result.p_value == pytest.approx(2 / 2**6) and result.verdict == "better beyond noise (p = 0.031)"
    with pytest.raises(ValueError, match="higher_is_better"):
        compare_experiments(ece_a, ece_b, metric="my_loss", design="seeds")


# --- single runs: paired bootstrap ---------------------------------------------------------------

def _run(n: int = 600, k: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(k), [n // 2, n // 4, n // 8, n - n // 2 - n // 4 - n // 8]))
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), labels] += 0.8
    return logits, labels


def test_identical_runs_differ_by_exactly_zero():
    logits, labels = _run()
    result = paired_bootstrap_difference(logits, logits, labels, 4, n_resamples=200)
    assert (result.estimate, result.low, result.high) == (0.0, 0.0, 0.0)
    assert result.method.startswith("paired stratified bootstrap")


def _fixed_errors(k_fixed: int = 40):
    """Run b, and run a = b with `k_fixed` of b's errors (a known set) made right."""
    logits_b, labels = _run(seed=4)
    wrong = np.flatnonzero(logits_b.argmax(axis=1) != labels)[:k_fixed]
    logits_a = logits_b.copy()
    logits_a[wrong, labels[wrong]] += 100.0
    return logits_a, logits_b, labels, wrong


def test_fixing_errors_gives_a_positive_difference_beyond_noise():
    logits_a, logits_b, labels, wrong = _fixed_errors()
    result = paired_bootstrap_difference(logits_a, logits_b, labels, 4, metric="accuracy")
    assert result.estimate == pytest.approx(wrong.size / labels.size, abs=1e-12)
    assert 0 < result.low <= result.estimate <= result.high
    expected = (balanced_accuracy_score(labels, logits_a.argmax(1))
                - balanced_accuracy_score(labels, logits_b.argmax(1)))
    comparison = compare_single_runs(logits_a, logits_b, labels, 4)
    assert comparison.difference == pytest.approx(expected, abs=1e-12)
    assert comparison.ci[0] > 0
    assert comparison.test == "McNemar (chi-square) with a paired bootstrap interval"
    assert comparison.verdict == "better beyond noise (p < 0.001)"
    assert comparison.n == labels.size
    reverse = compare_single_runs(logits_b, logits_a, labels, 4)
    assert reverse.verdict == "worse beyond noise (p < 0.001)" and reverse.ci[1] < 0


def test_paired_interval_agrees_with_naive_paired_loop():
    logits_a, logits_b, labels, _ = _fixed_errors(15)
    logits_b = logits_b + np.random.default_rng(5).normal(0, 0.5, size=logits_b.shape)
    ours = paired_bootstrap_difference(logits_a, logits_b, labels, 4, n_resamples=2000)
    rng = np.random.default_rng(1)
    groups = [np.flatnonzero(labels == c) for c in range(4)]
    pred_a, pred_b = logits_a.argmax(1), logits_b.argmax(1)
    diffs = []
    for _ in range(500):  # Monte-Carlo error of the bounds ~0.003 here
        idx = np.concatenate([rng.choice(g, g.size) for g in groups])
        diffs.append(balanced_accuracy_score(labels[idx], pred_a[idx])
                     - balanced_accuracy_score(labels[idx], pred_b[idx]))
    low, high = np.percentile(diffs, [2.5, 97.5])
    assert (ours.low, ours.high) == pytest.approx((low, high), abs=0.01)
    assert ours.half_width > 0.01


def test_comparison_to_dict_and_exact_mcnemar_label():
    pred_a, pred_b, labels = _table_predictions(5, 1, 8, 3)
    comparison = compare_single_runs(np.eye(2)[pred_a], np.eye(2)[pred_b], labels, 2, metric="accuracy",
                                     n_resamples=200)
    assert comparison.test == "McNemar (exact) with a paired bootstrap interval"
    assert comparison.p_value == pytest.approx(0.0390625)
    assert comparison.verdict == "worse beyond noise (p = 0.039)"
    record = comparison.to_dict()
    assert list(record) == ["metric", "difference", "ci", "p_value", "test", "verdict", "n", "note"]
    assert isinstance(record["ci"], list) and len(record["ci"]) == 2
    assert isinstance(comparison, Comparison)

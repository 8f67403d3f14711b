"""Paired comparisons against hand-worked tables, closed formulas, enumerations and brute-force
inversions of the tests."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import balanced_accuracy_score

from core.analysis import (
    Comparison,
    PairedTest,
    adjust_family,
    compare_experiments,
    compare_single_runs,
    corrected_resampled_ttest,
    corrected_t_test,
    decide,
    mcnemar,
    one_class_reason,
    paired_bootstrap_test,
    sign_flip_test,
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


def test_corrected_resampled_ttest_reference_value():
    """REFERENCE-METHODS 7.3: J = 10, mean 0.02, s = 0.01, n_test/n_train = 0.25."""
    d = 0.02 + 0.01 * np.array([1, -1] * 5) * math.sqrt(9 / 10)  # mean 0.02, sd (ddof 1) 0.01
    result = corrected_resampled_ttest(d, n_train=400, n_test=100, folds=10, repeats=1)
    assert d.std(ddof=1) == pytest.approx(0.01, rel=1e-12)
    assert result["t"] == pytest.approx(3.3806, abs=1e-4)
    assert result["p_value"] == pytest.approx(0.0081, abs=1e-4)


def test_corrected_resampled_ttest_zero_variance_and_shape_checks():
    assert corrected_resampled_ttest([0.02] * 6, n_train=50, n_test=10, folds=3, repeats=2)["p_value"] == 0.0
    assert corrected_resampled_ttest([0.0] * 6, n_train=50, n_test=10, folds=3, repeats=2)["p_value"] == 1.0
    with pytest.raises(ValueError, match="3 folds x 2 repeats"):
        corrected_resampled_ttest([0.1] * 5, n_train=50, n_test=10, folds=3, repeats=2)


def test_corrected_t_test_interval_is_its_own_t_interval_at_every_level():
    d = np.array([0.03, 0.01, 0.04, 0.02, 0.05, 0.00, 0.03, 0.02, 0.04, 0.01])
    test = corrected_t_test(d, n_train=400, n_test=100, folds=5, repeats=2)
    se = math.sqrt((1 / 10 + 0.25) * d.var(ddof=1))
    for confidence in (0.9, 0.95, 0.99):
        half = stats.t.ppf((1 + confidence) / 2, 9) * se
        assert test.interval(confidence) == pytest.approx((d.mean() - half, d.mean() + half), rel=1e-12)
    assert "100 test and 400 training" in test.note
    flat = corrected_t_test([0.02] * 6, n_train=50, n_test=10, folds=3, repeats=2)
    assert "zero spread" in flat.degenerate


# --- seeds: sign-flip permutation test -------------------------------------------------------

def _enumerated_p(d: np.ndarray, delta: float = 0.0) -> float:
    """Share of all 2^n sign flips of d - delta at least as extreme as the observed mean."""
    x = d - delta
    flips = np.array(list(itertools.product([1, -1], repeat=d.size)))
    return float(np.mean(np.abs((flips * x).sum(axis=1)) >= abs(x.sum()) - 1e-12))


def test_sign_flip_p_value_against_enumeration():
    d = np.random.default_rng(1).normal(0.01, 0.02, size=8)
    test = sign_flip_test(d)
    assert test.p_value == pytest.approx(_enumerated_p(d), abs=1e-12)
    assert test.min_p == pytest.approx(2 / 2**8)
    assert test.p_value == pytest.approx(stats.permutation_test(
        (d,), lambda x, axis=-1: x.mean(axis=axis), permutation_type="samples", n_resamples=np.inf).pvalue, abs=1e-12)


def test_sign_flip_interval_is_the_set_of_deltas_the_test_accepts():
    d = np.array([0.05, 0.02, 0.07, -0.01, 0.04, 0.06, 0.03])
    low, high = sign_flip_test(d).interval(0.95)
    grid = np.linspace(d.min() - 0.01, d.max() + 0.01, 2001)
    accepted = grid[[_enumerated_p(d, delta) > 0.05 for delta in grid]]
    step = grid[1] - grid[0]
    assert low == pytest.approx(accepted.min(), abs=step) and high == pytest.approx(accepted.max(), abs=step)
    assert 0 < low < d.mean() < high  # here the test rejects 0: the interval must exclude it


def test_many_seeds_use_a_fixed_set_of_random_flips():
    d = np.random.default_rng(2).normal(0.01, 0.02, size=22)
    test = sign_flip_test(d)
    exact = stats.permutation_test((d,), lambda x, axis=-1: x.mean(axis=axis), permutation_type="samples",
                                   n_resamples=200_000, rng=np.random.default_rng(0)).pvalue
    assert test.p_value == pytest.approx(exact, abs=0.01)
    assert sign_flip_test(d).p_value == test.p_value  # the same flips every time
    assert test.test == "sign-flip permutation test"


def test_five_seeds_or_fewer_cannot_decide_and_claim_nothing():
    result = compare_experiments([0.81, 0.82, 0.83], [0.80, 0.80, 0.815], metric="balanced_accuracy",
                                 design="seeds")
    assert result.status == "too few"
    assert result.verdict == "too few seeds to tell (with 3 seeds no p below 0.25 is possible)"
    assert result.ci == (-1.0, 1.0)  # every difference the metric allows: nothing excluded
    assert result.p_value == pytest.approx(0.25)
    five = compare_experiments([0.9] * 4 + [0.91], [0.1, 0.2, 0.1, 0.2, 0.1], metric="balanced_accuracy",
                               design="seeds")
    assert five.status == "too few" and "0.062" in five.verdict
    mixed = compare_experiments([0.81, 0.80, 0.83, 0.79, 0.82, 0.80], [0.80, 0.81, 0.82, 0.80, 0.81, 0.80],
                                metric="balanced_accuracy", design="seeds")
    assert mixed.status == "within noise" and mixed.ci[0] < 0 < mixed.ci[1]


def test_zero_spread_is_named_not_trusted():
    same = compare_experiments([0.9] * 8, [0.6] * 8, metric="accuracy", design="seeds")
    assert same.status == "cannot tell" and "zero spread" in same.verdict
    assert math.isnan(same.p_value) and all(math.isnan(v) for v in same.ci)
    equal = compare_experiments([0.7] * 8, [0.7] * 8, metric="accuracy", design="seeds")
    assert equal.status == "cannot tell" and "do not differ at all" in equal.verdict
    told = compare_experiments([0.9, 0.8] * 4, [0.6] * 8, metric="accuracy", design="seeds",
                               degenerate="both predict one class (0) for every case")
    assert told.verdict == "cannot tell: both predict one class (0) for every case"


def test_metric_direction_and_range_come_from_the_registry():
    ece_a, ece_b = [0.05, 0.06, 0.04, 0.05, 0.055, 0.045], [0.10, 0.12, 0.11, 0.10, 0.115, 0.105]
    result = compare_experiments(ece_a, ece_b, metric="ece", design="seeds")
    assert result.p_value == pytest.approx(2 / 2**6) and result.verdict == "better beyond noise (p = 0.031)"
    assert compare_experiments(ece_b, ece_a, metric="ece", design="seeds").status == "worse"
    mcc = compare_experiments([0.1, 0.2], [0.3, 0.1], metric="mcc", design="seeds")
    assert mcc.ci == (-2.0, 2.0)
    with pytest.raises(ValueError, match="higher_is_better"):
        compare_experiments(ece_a, ece_b, metric="my_loss", design="seeds")


def test_compare_experiments_folds_design():
    rng = np.random.default_rng(3)
    b = 0.7 + 0.03 * rng.normal(size=10)
    a = b + 0.05 + 0.005 * rng.normal(size=10)
    result = compare_experiments(a, b, metric="f1_macro", design="folds", n_train=900, n_test=100, folds=10,
                                 repeats=1)
    expected = corrected_resampled_ttest(a - b, n_train=900, n_test=100, folds=10, repeats=1)
    assert result.p_value == expected["p_value"] and result.difference == pytest.approx(0.05, abs=0.01)
    assert result.ci == pytest.approx(tuple(expected["ci"]), rel=1e-12)
    assert result.status == "better" and result.verdict.startswith("better beyond noise")
    assert compare_experiments(b, a, metric="f1_macro", design="folds", n_train=900, n_test=100, folds=10,
                               repeats=1).status == "worse"
    with pytest.raises(ValueError, match="n_train"):
        compare_experiments(a, b, metric="f1_macro", design="folds")
    with pytest.raises(ValueError, match="design"):
        compare_experiments(a, b, metric="f1_macro", design="bootstrap")


# --- single runs: paired bootstrap ---------------------------------------------------------------

def _run(n: int = 600, k: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(k), [n // 2, n // 4, n // 8, n - n // 2 - n // 4 - n // 8]))
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), labels] += 0.8
    return logits, labels


def test_identical_runs_cannot_be_told_apart():
    logits, labels = _run()
    result = compare_single_runs(logits, logits, labels, 4, n_resamples=200)
    assert result.status == "cannot tell" and "same class for every test case" in result.verdict


def _fixed_errors(k_fixed: int = 40):
    """Run b, and run a = b with `k_fixed` of b's errors (a known set) made right."""
    logits_b, labels = _run(seed=4)
    wrong = np.flatnonzero(logits_b.argmax(axis=1) != labels)[:k_fixed]
    logits_a = logits_b.copy()
    logits_a[wrong, labels[wrong]] += 100.0
    return logits_a, logits_b, labels, wrong


def test_fixing_errors_gives_a_positive_difference_beyond_noise():
    logits_a, logits_b, labels, wrong = _fixed_errors()
    test = paired_bootstrap_test(logits_a, logits_b, labels, 4, metric="accuracy")
    assert test.estimate == pytest.approx(wrong.size / labels.size, abs=1e-12)
    low, high = test.interval(0.95)
    assert 0 < low <= test.estimate <= high
    expected = (balanced_accuracy_score(labels, logits_a.argmax(1))
                - balanced_accuracy_score(labels, logits_b.argmax(1)))
    comparison = compare_single_runs(logits_a, logits_b, labels, 4)
    assert comparison.difference == pytest.approx(expected, abs=1e-12)
    assert comparison.ci[0] > 0
    assert comparison.test.startswith("paired stratified bootstrap of the metric")
    assert comparison.verdict == "better beyond noise (p < 0.001)"
    assert "McNemar's test of accuracy" in comparison.note
    assert comparison.n == labels.size
    reverse = compare_single_runs(logits_b, logits_a, labels, 4)
    assert reverse.verdict == "worse beyond noise (p < 0.001)" and reverse.ci[1] < 0


def test_bootstrap_p_and_interval_come_from_the_same_resamples():
    logits_a, logits_b, labels, _ = _fixed_errors(6)
    logits_b = logits_b + np.random.default_rng(5).normal(0, 0.5, size=logits_b.shape)
    test = paired_bootstrap_test(logits_a, logits_b, labels, 4, n_resamples=2000)
    for level in (0.01, 0.05, 0.2, 0.5):
        low, high = test.interval(1 - level)
        assert (test.p_value <= level) == (low > 0 or high < 0)


def test_paired_interval_agrees_with_naive_paired_loop():
    logits_a, logits_b, labels, _ = _fixed_errors(15)
    logits_b = logits_b + np.random.default_rng(5).normal(0, 0.5, size=logits_b.shape)
    ours = paired_bootstrap_test(logits_a, logits_b, labels, 4, n_resamples=2000).interval(0.95)
    rng = np.random.default_rng(1)
    groups = [np.flatnonzero(labels == c) for c in range(4)]
    pred_a, pred_b = logits_a.argmax(1), logits_b.argmax(1)
    diffs = []
    for _ in range(500):  # Monte-Carlo error of the bounds ~0.003 here
        idx = np.concatenate([rng.choice(g, g.size) for g in groups])
        diffs.append(balanced_accuracy_score(labels[idx], pred_a[idx])
                     - balanced_accuracy_score(labels[idx], pred_b[idx]))
    low, high = np.percentile(diffs, [2.5, 97.5])
    assert ours == pytest.approx((low, high), abs=0.01)
    assert ours[1] - ours[0] > 0.02


def test_models_that_predict_one_class_are_named():
    labels = np.array([0, 1, 2] * 30)
    a, b = np.zeros((90, 3)), np.zeros((90, 3))
    a[:, 0], b[:, 0] = 1.0, 2.0
    result = compare_single_runs(a, b, labels, 3, n_resamples=200)
    assert result.status == "cannot tell"
    assert one_class_reason(a.argmax(1), b.argmax(1), names=["healthy", "sepsis", "embolism"]).startswith(
        "both predict one class (healthy)")
    b[0, 1] = 5.0
    assert one_class_reason(a.argmax(1), b.argmax(1)) == ""


def test_comparison_to_dict():
    pred_a, pred_b, labels = _table_predictions(5, 1, 8, 3)
    comparison = compare_single_runs(np.eye(2)[pred_a], np.eye(2)[pred_b], labels, 2, metric="accuracy",
                                     n_resamples=500)
    assert comparison.status == "worse" and comparison.verdict.startswith("worse beyond noise")
    record = comparison.to_dict()
    assert list(record) == ["metric", "difference", "ci", "confidence", "p_value", "p_adjusted", "adjustment", "test",
                            "verdict", "status", "beyond_noise", "n", "note"]
    assert isinstance(record["ci"], list) and len(record["ci"]) == 2
    assert isinstance(comparison, Comparison)


# --- several comparisons at once ---------------------------------------------------------------

def _normal_test(p: float, estimate: float) -> PairedTest:
    """A z-test with a given two-sided p and its own interval."""
    se = abs(estimate) / stats.norm.isf(p / 2)
    return PairedTest(estimate, p, 30, "z-test",
                      lambda c: (estimate - stats.norm.isf((1 - c) / 2) * se, estimate + stats.norm.isf((1 - c) / 2) * se))


@pytest.mark.parametrize(("method", "adjusted", "rejected"), [
    ("holm", [0.03, 0.06, 0.06, 0.02], [True, False, False, True]),
    ("fdr_bh", [0.02, 0.04, 0.04, 0.02], [True, True, True, True]),
])
def test_family_adjustment_matches_statsmodels_reference_values(method, adjusted, rejected):
    """REFERENCE-METHODS 7.5: p = [0.01, 0.04, 0.03, 0.005]."""
    family = [decide(_normal_test(p, 0.1), "accuracy") for p in (0.01, 0.04, 0.03, 0.005)]
    out = adjust_family(family, method)
    assert [c.p_adjusted for c in out] == pytest.approx(adjusted)
    assert [c.beyond_noise for c in out] == rejected
    for c in out:  # the printed interval agrees with the adjusted decision
        assert (c.ci[0] > 0) == c.beyond_noise
        assert c.adjustment.endswith("over 4 comparisons") and "adjusted" in c.verdict
    assert [c.p_value for c in out] == [0.01, 0.04, 0.03, 0.005]  # the raw p stays


def _holm_by_hand(p, alpha):
    """Holm (1979) as written: walk the p-values from the smallest, reject while the j-th
    (from 1) is <= alpha / (m - j + 1), stop at the first that is not; the adjusted p is the
    largest (m - k + 1) p_(k) over k <= j, capped at 1."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    rejected, adjusted, running, still = [False] * m, [0.0] * m, 0.0, True
    for j, i in enumerate(order, start=1):
        still = still and p[i] <= alpha / (m - j + 1)
        rejected[i] = still
        running = max(running, min(1.0, (m - j + 1) * p[i]))
        adjusted[i] = running
    return rejected, adjusted


def test_holm_adjust_matches_the_step_down_by_hand_and_statsmodels():
    """The vectorised Holm against the procedure walked by hand on random families of 2 to
    12 p-values (ties, values adjusted past 1, several levels), and against statsmodels'
    multipletests on two of them (each statsmodels call runs a full garbage collection)."""
    from statsmodels.stats.multitest import multipletests

    from core.analysis import holm_adjust

    rng = np.random.default_rng(4)
    families = []
    for trial in range(300):
        m = int(rng.integers(2, 13))
        p = rng.uniform(0, 1, m) ** rng.choice([1, 3, 6])
        if trial % 3 == 0:
            p[: m // 2] = p[0]  # ties
        alpha = float(rng.choice([0.01, 0.05, 0.2]))
        rejected, adjusted = holm_adjust(p, alpha)
        expected_rejected, expected = _holm_by_hand(p.tolist(), alpha)
        assert adjusted.tolist() == pytest.approx(expected, abs=1e-12)
        assert rejected.tolist() == expected_rejected
        families.append((p, alpha, rejected.any() and not rejected.all()))
    assert sum(mixed for *_, mixed in families) > 30  # many families reject some and keep others
    for p, alpha in ((np.array([0.2, 0.01, 0.01, 0.6, 0.03, 0.004]), 0.05), (families[7][0], families[7][1])):
        rejected, adjusted = holm_adjust(p, alpha)
        expected_rejected, expected, _, _ = multipletests(p, alpha=alpha, method="holm")
        assert adjusted == pytest.approx(expected, abs=1e-12) and rejected.tolist() == expected_rejected.tolist()
    assert holm_adjust([0.01, 0.04, 0.03, 0.005])[1] == pytest.approx([0.03, 0.06, 0.06, 0.02])  # REFERENCE-METHODS 7.5


def test_family_leaves_untestable_comparisons_alone_and_knows_small_seed_counts():
    six = compare_experiments([0.9, 0.8, 0.85, 0.95, 0.9, 0.88], [0.5] * 6, metric="accuracy", design="seeds")
    assert six.status == "better"  # p = 2/64 passes 0.05 alone ...
    few = compare_experiments([0.9, 0.8], [0.5, 0.5], metric="accuracy", design="seeds")
    out = adjust_family([six, decide(_normal_test(0.2, 0.05), "accuracy"), few], "holm")
    assert out[0].status == "too few" and "2 comparisons" in out[0].verdict  # ... but not 0.025 as one of two
    assert out[2] is few
    assert out[0].ci[0] <= 0 <= out[0].ci[1]

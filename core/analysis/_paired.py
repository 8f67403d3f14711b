"""Is method A really better than method B, or is the gap within noise?

Two runs scored on the same test cases, or two methods run on the same folds or seeds,
are paired: comparing them pair by pair removes the shared difficulty of the cases and
splits, so the tests here are all paired (REFERENCE.md, "Uncertainty and comparisons"):
McNemar with a paired bootstrap for two single runs, the corrected resampled t-test for
cross-validation folds, and an exact sign-flip or Wilcoxon test for seeds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar as _sm_mcnemar

from core.analysis._calibration import CALIBRATION_METRICS
from core.analysis._metrics import METRICS, _predictions
from core.analysis._uncertainty import Interval, _ResampleScorer, _stratified_bootstrap, t_interval

__all__ = [
    "Comparison",
    "compare_experiments",
    "compare_single_runs",
    "corrected_resampled_ttest",
    "mcnemar",
    "paired_bootstrap_difference",
    "paired_seed_test",
    "verdict",
]

# Up to this many pairs all 2^n sign flips are enumerated; above it Wilcoxon is used.
_MAX_EXACT_PAIRS = 10


@dataclass(frozen=True)
class Comparison:
    """The difference a - b of one metric, its interval, the test behind the p-value and
    the verdict in words."""

    metric: str
    difference: float
    ci: tuple[float, float]
    p_value: float
    test: str
    verdict: str
    n: int
    note: str = ""

    def to_dict(self) -> dict:
        return {"metric": self.metric, "difference": self.difference, "ci": [self.ci[0], self.ci[1]],
                "p_value": self.p_value, "test": self.test, "verdict": self.verdict, "n": self.n,
                "note": self.note}


# --- verdicts ----------------------------------------------------------------------------------

def _format_p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def _direction(metric: str, higher_is_better: bool | None) -> bool | None:
    """Which way is better for `metric`: an explicit answer wins, else the metric registry."""
    if higher_is_better is not None:
        return higher_is_better
    info = METRICS.get(metric) or CALIBRATION_METRICS.get(metric)
    if info is None:
        raise ValueError(f"unknown metric {metric!r}: pass higher_is_better")
    return info.higher_is_better


def verdict(
    difference: float,
    ci: Sequence[float],
    p_value: float,
    higher_is_better: bool | None = True,
    alpha: float = 0.05,
) -> str:
    """"better beyond noise (p = 0.003)", "worse beyond noise (...)" or "within noise (...)"
    for a's difference a - b. The decision rests on p; the direction on the difference's
    sign (or, when it is exactly 0, the interval's midpoint), flipped for lower-is-better
    metrics such as ECE. With no better direction (None) a clear gap is "different"."""
    if p_value is None or math.isnan(p_value):
        return "undetermined (no test possible)"
    p_text = _format_p(p_value)
    if p_value >= alpha:
        return f"within noise ({p_text})"
    sign = np.sign(difference) if difference and not math.isnan(difference) else np.sign(ci[0] + ci[1])
    if higher_is_better is None or not (sign > 0 or sign < 0):
        return f"different beyond noise ({p_text})"
    a_better = bool(sign > 0) == higher_is_better
    return f"{'better' if a_better else 'worse'} beyond noise ({p_text})"


# --- two single runs on one test set ------------------------------------------------------------

def mcnemar(pred_a: np.ndarray, pred_b: np.ndarray, labels: np.ndarray) -> dict:
    """McNemar's test on which test cases each run gets right: only the discordant cases
    (b = only a right, c = only b right) carry information. Exact binomial when b + c < 25,
    where the chi-square approximation is poor; else chi-square with continuity correction.

    `pred_a`, `pred_b`: (n,) predictions or (n, K) logits. Keys: both_right, only_a_right
    (b), only_b_right (c), both_wrong, statistic, p_value, exact, n.
    """
    a, b = _predictions(pred_a), _predictions(pred_b)
    if a.shape != b.shape:
        raise ValueError(f"the two runs predict different numbers of cases: {a.shape} vs {b.shape}")
    y = np.asarray(labels).astype(np.int64, copy=False)
    if y.shape != a.shape:
        raise ValueError(f"labels must have shape {a.shape}, got {y.shape}")
    right_a, right_b = a == y, b == y
    table = np.array([[np.sum(right_a & right_b), np.sum(right_a & ~right_b)],
                      [np.sum(~right_a & right_b), np.sum(~right_a & ~right_b)]])
    exact = bool(table[0, 1] + table[1, 0] < 25)
    result = _sm_mcnemar(table, exact=exact, correction=True)
    return {"both_right": int(table[0, 0]), "only_a_right": int(table[0, 1]), "only_b_right": int(table[1, 0]),
            "both_wrong": int(table[1, 1]), "statistic": float(result.statistic), "p_value": float(result.pvalue),
            "exact": exact, "n": int(y.size)}


def paired_bootstrap_difference(
    logits_a: np.ndarray,
    logits_b: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    metric: str = "balanced_accuracy",
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Interval of metric(a) - metric(b), both runs scored on the same stratified
    resamples of the test set, so case difficulty shared by the runs cancels out."""
    scorer_a = _ResampleScorer(logits_a, labels, num_classes, (metric,))
    scorer_b = _ResampleScorer(logits_b, labels, num_classes, (metric,))
    estimate, low, high, method = _stratified_bootstrap(
        labels, lambda idx: scorer_a(idx) - scorer_b(idx), 1, n_resamples=n_resamples, confidence=confidence,
        seed=seed, per_row=2 * max(scorer_a.n, scorer_a.codes_per_row),
    )
    return Interval(float(estimate[0]), float(low[0]), float(high[0]), f"paired {method}")


def compare_single_runs(
    logits_a: np.ndarray,
    logits_b: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    metric: str = "balanced_accuracy",
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    alpha: float = 0.05,
    higher_is_better: bool | None = None,
) -> Comparison:
    """Two runs on the same test set: McNemar's p on per-case correctness with a paired
    bootstrap interval of the metric difference. McNemar tests accuracy-type agreement,
    so for a class-balanced metric the two can disagree; the note says when they do."""
    test = mcnemar(logits_a, logits_b, labels)
    diff = paired_bootstrap_difference(logits_a, logits_b, labels, num_classes, metric, n_resamples, confidence,
                                       seed)
    p = test["p_value"]
    excludes_zero = diff.low > 0 or diff.high < 0
    note = ""
    if (p < alpha) != excludes_zero:
        note = (f"McNemar's test (on which cases each run gets right) and the bootstrap interval of {metric} "
                "disagree: the difference may lie in which classes are right rather than how many cases.")
    return Comparison(
        metric=metric, difference=diff.estimate, ci=(diff.low, diff.high), p_value=p,
        test=f"McNemar ({'exact' if test['exact'] else 'chi-square'}) with a paired bootstrap interval",
        verdict=verdict(diff.estimate, (diff.low, diff.high), p, _direction(metric, higher_is_better), alpha),
        n=test["n"], note=note,
    )


# --- several runs: folds or seeds --------------------------------------------------------------

def corrected_resampled_ttest(
    differences: Sequence[float] | np.ndarray,
    *,
    n_train: int,
    n_test: int,
    folds: int,
    repeats: int,
    confidence: float = 0.95,
) -> dict:
    """Corrected resampled t-test (Nadeau & Bengio 2003; Bouckaert & Frank 2004) on the
    per-fold differences of r repeats of k-fold CV. Folds share training data, so the
    plain variance of the differences is too small; the n_test/n_train term corrects it:
    t = mean(d) / sqrt((1/(k r) + n_test/n_train) var(d)), df = k r - 1.

    Zero variance (every fold the same difference): p = 0 if the mean is not 0, else 1,
    and the interval is the mean itself. Keys: mean, se, t, df, p_value, ci, n.
    """
    d = np.asarray(differences, dtype=np.float64)
    if d.ndim != 1 or d.size != folds * repeats:
        raise ValueError(f"expected {folds} folds x {repeats} repeats = {folds * repeats} differences, got {d.size}")
    if folds * repeats < 2 or n_train <= 0 or n_test <= 0:
        raise ValueError("need at least two differences and positive n_train and n_test")
    mean = float(d.mean())
    df = d.size - 1
    se = math.sqrt((1 / d.size + n_test / n_train) * d.var(ddof=1))
    if se == 0:
        t = math.copysign(math.inf, mean) if mean else 0.0
        p = 0.0 if mean else 1.0
    else:
        t = mean / se
        p = float(2 * stats.t.sf(abs(t), df))
    half = float(stats.t.ppf((1 + confidence) / 2, df)) * se
    return {"mean": mean, "se": se, "t": t, "df": df, "p_value": p, "ci": [mean - half, mean + half], "n": int(d.size)}


def paired_seed_test(differences: Sequence[float] | np.ndarray, confidence: float = 0.95) -> dict:
    """Test of per-seed differences a - b (same split, matched seeds): an exact sign-flip
    permutation test of the mean up to 10 pairs, Wilcoxon signed-rank above; the interval
    is the t-interval of the mean difference.

    With n pairs no exact test of this kind gets below p = 2 / 2^n (all flips but the
    observed one and its mirror look less extreme), so 3 seeds can never give p < 0.05;
    `min_p` holds that floor and `note` says so. Keys: mean, ci, p_value, test, n, min_p, note.
    """
    d = np.asarray(differences, dtype=np.float64)
    if d.ndim != 1 or np.isnan(d).any():
        raise ValueError("differences must be a 1-D array without NaN")
    n = d.size
    summary = t_interval(d, confidence)
    min_p = min(1.0, 2.0 ** (1 - n)) if n else float("nan")
    if n < 2:
        return {"mean": summary["mean"], "ci": summary["ci"], "p_value": float("nan"), "test": "none", "n": n,
                "min_p": min_p, "note": f"with {n} paired run{'s' if n != 1 else ''} no test is possible"}
    if not d.any():  # no pair differs: nothing to test, and Wilcoxon would have no ranks
        p_value, test = 1.0, "none (every difference is 0)"
    elif n <= _MAX_EXACT_PAIRS:
        result = stats.permutation_test((d,), lambda x, axis=-1: x.mean(axis=axis), permutation_type="samples",
                                        n_resamples=np.inf, vectorized=True, alternative="two-sided")
        p_value, test = float(result.pvalue), "exact paired permutation test (sign flips)"
    else:
        p_value, test = float(stats.wilcoxon(d).pvalue), "Wilcoxon signed-rank test"
    note = ""
    if min_p >= 0.05:
        note = (f"with {n} paired runs no test can reach p < 0.05 (the smallest attainable p is {min_p:.2g}); "
                "run more seeds to tell the methods apart")
    return {"mean": summary["mean"], "ci": summary["ci"], "p_value": p_value, "test": test, "n": n,
            "min_p": min_p, "note": note}


def compare_experiments(
    values_a: Sequence[float] | np.ndarray,
    values_b: Sequence[float] | np.ndarray,
    *,
    metric: str,
    design: str,
    n_train: int | None = None,
    n_test: int | None = None,
    folds: int | None = None,
    repeats: int | None = None,
    confidence: float = 0.95,
    alpha: float = 0.05,
    higher_is_better: bool | None = None,
) -> Comparison:
    """Two methods over matched runs: position i of `values_a` and `values_b` is the same
    fold or seed. design "folds": corrected resampled t-test (needs n_train, n_test, folds,
    repeats); "seeds": exact sign-flip or Wilcoxon test."""
    a = np.asarray(values_a, dtype=np.float64)
    b = np.asarray(values_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"values must be paired 1-D arrays of equal length, got {a.shape} and {b.shape}")
    d = a - b
    direction = _direction(metric, higher_is_better)
    if design == "folds":
        if None in (n_train, n_test, folds, repeats):
            raise ValueError('design "folds" needs n_train, n_test, folds and repeats')
        result = corrected_resampled_ttest(d, n_train=n_train, n_test=n_test, folds=folds, repeats=repeats,
                                           confidence=confidence)
        test = "corrected resampled t-test (Nadeau & Bengio)"
        note = ""
    elif design == "seeds":
        result = paired_seed_test(d, confidence)
        test, note = result["test"], result["note"]
    else:
        raise ValueError(f'design must be "folds" or "seeds", got {design!r}')
    ci = (float(result["ci"][0]), float(result["ci"][1]))
    said = verdict(result["mean"], ci, result["p_value"], direction, alpha)
    if design == "seeds" and said.startswith("within") and result["min_p"] >= alpha:
        # Not "within noise": no p-value this test can give would have said otherwise.
        said = (f"too few seeds to tell ({_format_p(result['p_value'])}; with {d.size} seeds p cannot go below "
                f"{result['min_p']:.2g})")
    return Comparison(metric=metric, difference=result["mean"], ci=ci, p_value=result["p_value"], test=test,
                      verdict=said, n=int(d.size), note=note)

"""Is method A really better than method B, or is the gap within noise?

Two runs scored on the same test cases, or two methods run on the same folds or seeds,
are paired: comparing them pair by pair removes the shared difficulty of the cases and
splits. For each kind of comparison one procedure gives the difference, its p-value and
its interval at any level (a `PairedTest`; `core.analysis._verdict` reads the words from
it), so they always agree:

- seeds: an exact sign-flip permutation test of the mean difference (all 2^n flips up to
  13 pairs, a fixed set of 10,000 above), its interval by test inversion. It needs no
  normality, and it is honest about small n: below 6 pairs no p under 0.05 exists, so the
  verdict is "too few seeds to tell" and the interval excludes nothing. We do not bootstrap
  a handful of seeds: a bootstrap interval never reaches beyond the values seen, so three
  seeds that all happen to favour A would read "beyond noise" a quarter of the time when A
  and B are the same (and a t-interval on 2-4 degrees of freedom leaves the metric's range).
- folds: the corrected resampled t-test (Nadeau & Bengio 2003, as Bouckaert & Frank 2004
  use it for k-fold cross-validation) and its own t-interval. Its variance factor
  1/(k r) + n_test/n_train takes the sizes of the *fold design*, n_test/n_train =
  1/(k - 1): the correction accounts for the overlap of the training folds, which the
  design fixes. Nadeau & Bengio do not cover training sets subsampled after the split (an
  imbalance profile); using the subsampled n_train instead would inflate the factor (2.39
  in place of 0.25 on one 5-fold table) and with it every interval. `sizes` in the result
  say which sizes were used.
- two single runs: a paired, class-stratified bootstrap of the chosen metric's difference
  (both runs scored on the same resamples of the test cases); the p-value and the
  interval come from the same resamples (p = 2 min(P*(D <= 0), P*(D >= 0)), the interval
  their percentiles), so p <= alpha exactly when the interval excludes 0. McNemar's test
  stays available as what it is: a test of *accuracy* (which cases each run gets right).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar as _sm_mcnemar

from core.analysis._calibration import metric_info_of
from core.analysis._metrics import _predictions
from core.analysis._uncertainty import _ResampleScorer
from core.analysis._verdict import Comparison, PairedTest, decide, difference_bounds, metric_bounds

__all__ = [
    "compare_experiments",
    "compare_single_runs",
    "corrected_resampled_ttest",
    "corrected_t_test",
    "mcnemar",
    "one_class_reason",
    "paired_bootstrap_test",
    "sign_flip_test",
]

_MAX_EXACT_PAIRS = 13  # up to here every one of the 2^n sign flips (8,192) is enumerated
_RANDOM_FLIPS = 10_000  # above it: this many flips, a fixed set (identity and mirror included)
_BATCH_ELEMENTS = 2_000_000  # resampled indices per vectorised bootstrap batch


def _clip(interval: tuple[float, float], bounds: tuple[float, float]) -> tuple[float, float]:
    """An interval never reaches outside the range the difference can take."""
    return max(interval[0], bounds[0]), min(interval[1], bounds[1])


def _largest_count(level: float, total: int, per: float = 1.0) -> int:
    """The largest integer c with per * c / total <= level, by the same float comparison the
    p-value is tested with (so the interval and p agree even at the boundary)."""
    c = int(math.floor(level * total / per))
    while per * (c + 1) / total <= level:
        c += 1
    while c >= 0 and per * c / total > level:
        c -= 1
    return c


def _spread_problem(d: np.ndarray) -> str:
    if d.size and np.ptp(d) == 0:
        if d[0] == 0:
            return "every pair gave exactly the same value: the two do not differ at all here"
        return (f"every pair gave the same difference ({d[0]:+.3g}): zero spread is not certainty (it usually means "
                "both predict the same way for every case whatever the seed)")
    return ""


# --- intervals at any level, kept as data so results can be cached (pickled) ------------------

@dataclass(frozen=True)
class _Fixed:
    """The same interval at every level (a test that cannot reject anything)."""

    limits: tuple[float, float]

    def __call__(self, confidence: float) -> tuple[float, float]:
        return self.limits


@dataclass(frozen=True)
class _OrderInterval:
    """Ends read as order statistics: the (k+1)-th smallest of `low` and of -`high`, with k
    the largest count whose share (times `per`) stays at or below the level."""

    low: np.ndarray
    high: np.ndarray
    count: int
    limits: tuple[float, float]
    per: float = 1.0

    def __call__(self, confidence: float) -> tuple[float, float]:
        k = _largest_count(1 - confidence, self.count, self.per)
        if k < 0:
            return self.limits
        return _clip((float(self.low[k]), float(self.high[self.count - 1 - k])), self.limits)


@dataclass(frozen=True)
class _TInterval:
    mean: float
    se: float
    df: int
    p_value: float
    limits: tuple[float, float]

    def __call__(self, confidence: float) -> tuple[float, float]:
        return _t_interval(self.mean, self.se, self.df, self.p_value, confidence, self.limits)


# --- seeds: sign-flip permutation test ---------------------------------------------------------

def _flips(n: int, seed: int) -> np.ndarray:
    """Rows of +1/-1: all 2^n when n is small, else identity, mirror and random draws."""
    if n <= _MAX_EXACT_PAIRS:
        bits = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
        return 1 - 2 * bits
    rng = np.random.default_rng(seed)
    random = 1 - 2 * rng.integers(0, 2, size=(_RANDOM_FLIPS - 2, n))
    return np.vstack([np.ones((1, n), dtype=np.int64), -np.ones((1, n), dtype=np.int64), random])


def sign_flip_test(
    differences: Sequence[float] | np.ndarray,
    *,
    bounds: tuple[float, float] | None = None,
    unit: str = "seeds",
    seed: int = 0,
) -> PairedTest:
    """Exact sign-flip test of mean(d) = delta, inverted into an interval.

    For a flip that negates the pairs in F, |sum s_i (d_i - delta)| >= |sum (d_i - delta)|
    holds exactly for delta between mean(d over F) and mean(d over the rest), an interval
    that always contains mean(d). So p(delta), the share of flips at least as extreme, is
    a count of intervals, falls away from mean(d) on both sides, and the set where
    p(delta) > alpha is itself an interval: its ends are order statistics of the flips'
    interval ends. p = p(0) from the same counts. `bounds`: the range of the difference.
    """
    d = np.asarray(differences, dtype=np.float64)
    if d.ndim != 1 or not np.all(np.isfinite(d)):
        raise ValueError("differences must be a 1-D array of finite numbers")
    n = d.size
    limits = difference_bounds(None) if bounds is None else bounds
    name = "exact sign-flip permutation test" if n <= _MAX_EXACT_PAIRS else "sign-flip permutation test"
    if n < 2:
        mean = float(d.mean()) if n else math.nan
        return PairedTest(mean, math.nan, n, name, _Fixed(limits), unit=unit, min_p=1.0,
                          too_few=f"with {n} paired run{'s' if n != 1 else ''} no test is possible")
    flips = _flips(n, seed)
    negated = flips < 0
    size = negated.sum(axis=1)
    part = negated @ d
    total = d.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_f = part / size
        mean_rest = (total - part) / (n - size)
    trivial = (size == 0) | (size == n)
    low = np.where(trivial, -np.inf, np.minimum(mean_f, mean_rest))
    high = np.where(trivial, np.inf, np.maximum(mean_f, mean_rest))
    count = flips.shape[0]
    p_value = float(np.count_nonzero((low <= 0) & (high >= 0)) / count)
    interval = _OrderInterval(np.sort(low), np.sort(high), count, limits)
    return PairedTest(float(d.mean()), p_value, n, name, interval, unit=unit, min_p=float(trivial.sum() / count),
                      degenerate=_spread_problem(d))


# --- folds: corrected resampled t-test --------------------------------------------------------

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
    per-fold differences of r repeats of k-fold CV:
    t = mean(d) / sqrt((1/(k r) + n_test/n_train) var(d)), df = k r - 1.
    Keys: mean, se, t, df, p_value, ci, n. Zero variance: t is infinite (or 0) and the
    interval the mean itself; `corrected_t_test` calls that degenerate."""
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


def _t_interval(mean: float, se: float, df: int, p_value: float, confidence: float,
                limits: tuple[float, float]) -> tuple[float, float]:
    """mean -/+ t_crit se, nudged at the exact boundary so it agrees with p in floats."""
    level = 1 - confidence
    half = float(stats.t.ppf(1 - level / 2, df)) * se
    if p_value <= level and abs(mean) <= half:
        half = abs(mean) * (1 - 1e-12)
    elif p_value > level and abs(mean) > half:
        half = abs(mean)
    return _clip((mean - half, mean + half), limits)


def corrected_t_test(
    differences: Sequence[float] | np.ndarray,
    *,
    n_train: int,
    n_test: int,
    folds: int,
    repeats: int,
    bounds: tuple[float, float] | None = None,
) -> PairedTest:
    """The corrected resampled t-test as a `PairedTest`: its t-interval at any level."""
    d = np.asarray(differences, dtype=np.float64)
    result = corrected_resampled_ttest(d, n_train=n_train, n_test=n_test, folds=folds, repeats=repeats)
    limits = difference_bounds(None) if bounds is None else bounds
    mean, se, df, p = result["mean"], result["se"], result["df"], result["p_value"]
    note = (f"sizes used: {n_test} test and {n_train} training cases per fold (n_test/n_train = "
            f"{n_test / n_train:.3g})")
    return PairedTest(mean, p, int(d.size), "corrected resampled t-test (Nadeau & Bengio)",
                      _TInterval(mean, se, df, p, limits), unit="folds",
                      degenerate=_spread_problem(d), note=note)


# --- two single runs --------------------------------------------------------------------------

def mcnemar(pred_a: np.ndarray, pred_b: np.ndarray, labels: np.ndarray) -> dict:
    """McNemar's test of *accuracy*: only the discordant cases (b = only a right, c = only
    b right) carry information. Exact binomial when b + c < 25, else chi-square with
    continuity correction. It says nothing about balanced metrics.

    `pred_a`, `pred_b`: (n,) predictions or (n, K) logits. Keys: both_right, only_a_right
    (b), only_b_right (c), both_wrong, statistic, p_value, exact, n, tests.
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
            "exact": exact, "n": int(y.size), "tests": "accuracy"}


def _stratified_indices(labels: np.ndarray, rows: int, rng: np.random.Generator) -> np.ndarray:
    """(rows, n) test-case indices, each class resampled within itself (its count kept)."""
    order = np.argsort(labels, kind="stable")
    counts = np.bincount(labels)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    per_case_start = np.repeat(starts, counts)
    per_case_count = np.repeat(counts, counts)
    draws = per_case_start + (rng.random((rows, labels.size)) * per_case_count).astype(np.int64)
    return order[draws]


def paired_bootstrap_test(
    logits_a: np.ndarray,
    logits_b: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    metric: str = "balanced_accuracy",
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    bounds: tuple[float, float] | None = None,
) -> PairedTest:
    """metric(a) - metric(b) with both runs scored on the same stratified resamples of the
    test cases; p and the interval from those resamples (see the module docstring)."""
    y = np.asarray(labels).astype(np.int64, copy=False)
    scorer_a = _ResampleScorer(logits_a, y, num_classes, (metric,))
    scorer_b = _ResampleScorer(logits_b, y, num_classes, (metric,))
    whole = np.arange(y.size)[None, :]
    estimate = float(scorer_a(whole)[0, 0] - scorer_b(whole)[0, 0])
    rng = np.random.default_rng(seed)
    batch = max(1, _BATCH_ELEMENTS // max(y.size, 1))
    parts = []
    for start in range(0, n_resamples, batch):
        idx = _stratified_indices(y, min(batch, n_resamples - start), rng)
        parts.append(scorer_a(idx)[0] - scorer_b(idx)[0])
    diffs = np.sort(np.concatenate(parts))
    below, above = np.count_nonzero(diffs <= 0), np.count_nonzero(diffs >= 0)
    p_value = min(1.0, 2 * min(below, above) / n_resamples)
    interval = _OrderInterval(diffs, diffs, n_resamples, difference_bounds(bounds), per=2.0)
    degenerate = ""
    if np.array_equal(_predictions(logits_a), _predictions(logits_b)):
        degenerate = "the two runs predict the same class for every test case"
    elif np.ptp(diffs) == 0:
        degenerate = "every resample of the test cases gave the same difference"
    return PairedTest(estimate, p_value, int(y.size), f"paired stratified bootstrap of the metric (B={n_resamples})",
                      interval, unit="test cases", degenerate=degenerate)


def one_class_reason(*prediction_sets: np.ndarray, names: Sequence[str] = ()) -> str:
    """"both runs predict one class for every case" when every run given predicts a single
    class throughout (a collapsed model), else ""."""
    classes = set()
    for preds in prediction_sets:
        values = np.unique(np.asarray(preds))
        if values.size != 1:
            return ""
        classes.add(int(values[0]))
    if not classes:
        return ""
    which = ", ".join(str(names[c]) if c < len(names) else str(c) for c in sorted(classes))
    return f"both predict one class ({which}) for every case, so no difference between them can be measured"


def compare_single_runs(
    logits_a: np.ndarray,
    logits_b: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    metric: str = "balanced_accuracy",
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
    higher_is_better: bool | None = None,
) -> Comparison:
    """Two runs on the same test set: the paired bootstrap of `metric` decides; McNemar's
    test of accuracy is reported beside it, labelled as such, in the note."""
    test = paired_bootstrap_test(logits_a, logits_b, labels, num_classes, metric, n_resamples=n_resamples,
                                 seed=seed, bounds=metric_bounds(metric))
    collapsed = one_class_reason(_predictions(logits_a), _predictions(logits_b))
    mc = mcnemar(logits_a, logits_b, labels)
    info = metric_info_of(metric)
    words = info.display_name if info else metric
    accuracy_note = (f"McNemar's test of accuracy (a test of how many cases each gets right, not of {words}): "
                     f"p = {mc['p_value']:.2g}, {mc['only_a_right']} cases only a gets right, "
                     f"{mc['only_b_right']} only b.")
    test = replace(test, degenerate=collapsed or test.degenerate, note=accuracy_note)
    return decide(test, metric, higher_is_better=higher_is_better, alpha=alpha)


# --- several runs: folds or seeds --------------------------------------------------------------

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
    alpha: float = 0.05,
    higher_is_better: bool | None = None,
    bounds: tuple[float, float] | None = None,
    degenerate: str = "",
) -> Comparison:
    """Two methods over matched runs: position i of `values_a` and `values_b` is the same
    fold or seed. design "folds": corrected resampled t-test (needs n_train, n_test, folds,
    repeats: the fold design's sizes); "seeds": sign-flip permutation test. `bounds`: the
    range of the metric (looked up for registered metrics); `degenerate`: a reason, found
    by the caller, why no comparison is possible (e.g. every run predicts one class)."""
    a = np.asarray(values_a, dtype=np.float64)
    b = np.asarray(values_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"values must be paired 1-D arrays of equal length, got {a.shape} and {b.shape}")
    limits = difference_bounds(bounds if bounds is not None else metric_bounds(metric))
    if design == "folds":
        if None in (n_train, n_test, folds, repeats):
            raise ValueError('design "folds" needs n_train, n_test, folds and repeats')
        test = corrected_t_test(a - b, n_train=n_train, n_test=n_test, folds=folds, repeats=repeats, bounds=limits)
    elif design == "seeds":
        test = sign_flip_test(a - b, bounds=limits)
    else:
        raise ValueError(f'design must be "folds" or "seeds", got {design!r}')
    if degenerate:
        test = replace(test, degenerate=degenerate)
    return decide(test, metric, higher_is_better=higher_is_better, alpha=alpha,
                  explicit_direction=higher_is_better is not None)

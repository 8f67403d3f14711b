"""How sure can we be of a number? Intervals for one run's metrics and for several runs.

A balanced accuracy measured on a test set with five cases of the rarest class moves a
lot with which five cases were drawn, so every headline number gets an interval
(REFERENCE.md, "Uncertainty and comparisons"), and no interval leaves the range its
metric can take:

- one run, smooth metrics (accuracy, balanced accuracy, macro F1, ECE): a stratified
  percentile bootstrap over the test cases. Percentile intervals are quantiles of values
  the metric took, so they stay inside its range. BCa was tried: in simulations with known
  truth (5 classes, 150-600 test cases, 200 repetitions) it covered no better for the
  smooth metrics (91-97 % against 91-97 %) and worse for ECE (87-91 % against 82-97 %),
  where its bias correction can push the interval past the estimate.
- one run, worst-class recall and G-mean: these follow the weakest class, and a class
  with no hit keeps recall 0 in every within-class resample, so the bootstrap gave
  [0, 0] (and covered the truth 32-93 % of the time). Both rise with every class's
  recall, so their interval is the metric at the ends of the per-class Wilson intervals,
  each at 1 - alpha/K (Bonferroni): valid jointly, never stuck at 0 (coverage 98.5-100 %).
- per class: Wilson intervals for recall and precision.
- over the runs of an experiment: the t-interval of the mean, cut at the metric's range
  (cutting never lowers coverage: the truth lies inside the range), and flagged, with no
  interval, when every run gave the same number: zero spread is not certainty. A bootstrap
  of 2-5 runs would be narrower than the t-interval but never wider than the values seen
  and so covers far below 95 %; the t-interval is wide because 2-5 runs know little.

Pure numpy / scipy / statsmodels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from core.analysis import _calibration as cal
from core.analysis._calibration import DEFAULT_BINS, _equal_width_index, metric_info_of
from core.analysis._metrics import _check_labels, softmax

__all__ = [
    "BOOTSTRAP_METRICS",
    "FEW_CASES",
    "few_cases_words",
    "Interval",
    "bootstrap_intervals",
    "calibration_intervals",
    "per_class_intervals",
    "pooled_per_class",
    "summarize_runs",
    "t_interval",
    "wilson_interval",
]

BOOTSTRAP_METRICS: tuple[str, ...] = (
    "accuracy", "balanced_accuracy", "f1_macro", "gmean", "worst_class_recall", "ece",
)
DEFAULT_INTERVAL_METRICS: tuple[str, ...] = ("accuracy", "balanced_accuracy", "f1_macro", "gmean", "ece")

FEW_CASES = 10  # a per-class number from fewer test cases than this is marked as resting on few cases


def few_cases_words(n: int) -> str:
    """A per-class test count as shown beside its numbers: "3 (few)" below FEW_CASES."""
    return f"{n} (few)" if n < FEW_CASES else str(n)


# Resamples per vectorised call: bounds memory at about this many gathered indices.
_BATCH_ELEMENTS = 2_000_000


@dataclass(frozen=True)
class Interval:
    """A point estimate with its interval and how the interval was obtained."""

    estimate: float
    low: float
    high: float
    method: str
    note: str = ""  # why the interval may be narrower than it should be, in words

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def to_dict(self) -> dict:
        return {"estimate": self.estimate, "low": self.low, "high": self.high, "method": self.method,
                "note": self.note}


# --- vectorised metrics over many resamples -----------------------------------------------

class _ResampleScorer:
    """Scores a batch of resampled test sets in a few array operations.

    Each test sample gets one integer code (predicted class, confidence bin, hit or miss);
    a batch of resampled index rows becomes per-row counts of those codes through one
    bincount with row offsets, and every metric follows from the counts. Resampling
    within classes keeps each class's support fixed, so recall needs no true-label count.
    """

    def __init__(self, logits: np.ndarray, labels: np.ndarray, num_classes: int, metrics: Sequence[str]):
        logits = np.asarray(logits, dtype=np.float64)
        if logits.ndim != 2 or logits.shape[1] != num_classes:
            raise ValueError(f"logits must have shape (n, {num_classes}), got {logits.shape}")
        unknown = sorted(set(metrics) - set(BOOTSTRAP_METRICS))
        if unknown:
            raise ValueError(f"no bootstrap for {unknown}; known metrics: {', '.join(BOOTSTRAP_METRICS)}")
        y = _check_labels(labels, logits.shape[0], num_classes)
        self.metrics = tuple(metrics)
        self.n = y.size
        self.k = num_classes
        self.n_bins = DEFAULT_BINS if "ece" in self.metrics else 1
        probs = softmax(logits)
        pred = probs.argmax(axis=1)
        conf = probs[np.arange(self.n), pred]
        conf_bin = _equal_width_index(conf, self.n_bins) if self.n_bins > 1 else 0
        self.code = ((pred * self.n_bins + conf_bin) * 2 + (pred == y)).astype(np.int64)
        self.conf = conf
        support = np.bincount(y, minlength=num_classes)
        self.present = np.flatnonzero(support)
        self.support = support[self.present]

    @property
    def codes_per_row(self) -> int:
        return self.k * self.n_bins * 2

    def __call__(self, idx: np.ndarray) -> np.ndarray:
        """Metrics of each row of sample indices `idx` (rows, n): shape (len(metrics), rows)."""
        rows, size = idx.shape[0], self.codes_per_row
        flat = (self.code[idx] + (np.arange(rows) * size)[:, None]).ravel()
        counts = np.bincount(flat, minlength=rows * size).reshape(rows, self.k, self.n_bins, 2)
        hits = counts[..., 1]
        predicted = counts.sum(axis=(2, 3))
        # A hit predicted as class c is a hit of class c, so hits per predicted class are TP.
        tp = hits.sum(axis=2)[:, self.present]
        recall = tp / self.support
        out: dict[str, np.ndarray] = {}
        for name in self.metrics:
            if name == "accuracy":
                out[name] = tp.sum(axis=1) / self.n
            elif name == "balanced_accuracy":
                out[name] = recall.mean(axis=1)
            elif name == "worst_class_recall":
                out[name] = recall.min(axis=1)
            elif name == "f1_macro":
                out[name] = (2 * tp / (self.support + predicted[:, self.present])).mean(axis=1)
            elif name == "gmean":  # as scipy.stats.gmean, which imblearn uses: 0 if any recall is 0
                with np.errstate(divide="ignore"):
                    out[name] = np.exp(np.log(recall).mean(axis=1))
            elif name == "ece":
                conf_sum = np.bincount(flat, weights=self.conf[idx].ravel(), minlength=rows * size)
                conf_sum = conf_sum.reshape(rows, self.k, self.n_bins, 2).sum(axis=(1, 3))
                out[name] = np.abs(hits.sum(axis=1) - conf_sum).sum(axis=1) / self.n
        return np.stack([out[name] for name in self.metrics])


def _stratified_bootstrap(
    labels: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    n_outputs: int,
    *,
    n_resamples: int,
    confidence: float,
    seed: int,
    per_row: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Estimate and percentile interval of `statistic` (index rows -> (n_outputs, rows))
    under resampling within each class.

    Each class's sample indices are one of `scipy.stats.bootstrap`'s samples with
    `paired=False`, and scipy resamples every sample independently: that is stratified
    resampling. scipy refuses one-observation samples, so singleton classes, whose
    resample is always themselves, are appended unchanged. `per_row` (work per resample)
    sets the batch size.
    """
    if n_resamples < 1:
        raise ValueError("n_resamples must be at least 1")
    if not 0 < confidence < 1:
        raise ValueError("confidence must lie strictly between 0 and 1")
    y = np.asarray(labels).astype(np.int64, copy=False)
    if y.size == 0:
        nan = np.full(n_outputs, np.nan)
        return nan, nan, nan, "no test samples"
    estimate = statistic(np.arange(y.size)[None, :])[:, 0]
    order = np.argsort(y, kind="stable")
    counts = np.bincount(y)
    groups = np.split(order, np.cumsum(counts)[:-1])
    varied = [g for g in groups if g.size > 1]
    fixed = np.concatenate([g for g in groups if g.size == 1] + [np.empty(0, dtype=np.int64)])
    if not varied:  # a zero-width interval would claim certainty: give none
        nan = np.full(n_outputs, np.nan)
        return estimate, nan, nan.copy(), "no class has two test samples: nothing to resample, no interval"

    def resampled_statistic(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
        rows = np.atleast_2d(samples[0]).shape[0]
        parts = [np.atleast_2d(s) for s in samples] + [np.broadcast_to(fixed, (rows, fixed.size))]
        values = statistic(np.concatenate(parts, axis=-1))
        return values if samples[0].ndim > 1 else values[:, 0]

    result = stats.bootstrap(
        varied, resampled_statistic, n_resamples=n_resamples,
        batch=max(1, _BATCH_ELEMENTS // max(per_row, 1)), vectorized=True, paired=False, axis=-1,
        confidence_level=confidence, method="percentile", rng=np.random.default_rng(seed),
    )
    ci = result.confidence_interval
    method = f"stratified bootstrap, percentile, B={n_resamples}"
    return estimate, np.atleast_1d(ci.low), np.atleast_1d(ci.high), method


def bootstrap_intervals(
    logits: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    *,
    metrics: Sequence[str] = DEFAULT_INTERVAL_METRICS,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Interval]:
    """An interval for each metric of one run (see the module docstring for which method).

    Smooth metrics: percentile bootstrap over the test samples, resampled within each class
    so every class keeps its test count (a class cannot vanish from a replicate and its
    recall never becomes undefined). Worst-class recall and G-mean: from the per-class
    Wilson intervals at 1 - alpha/K. `estimate` is the metric on the test set as given
    (classes absent from `labels` are left out, as in `summary_metrics`). A class with one
    test case is the same in every replicate, which the interval's `note` says. No
    samples: all NaN.
    """
    wilson_based = [m for m in metrics if m in _WILSON_METRICS]
    resampled = [m for m in metrics if m not in _WILSON_METRICS]
    out: dict[str, Interval] = {}
    if resampled:
        scorer = _ResampleScorer(logits, labels, num_classes, resampled)
        estimate, low, high, method = _stratified_bootstrap(
            labels, scorer, len(scorer.metrics), n_resamples=n_resamples, confidence=confidence, seed=seed,
            per_row=max(scorer.n, scorer.codes_per_row),
        )
        note = _singleton_note(labels)
        out.update({name: Interval(float(estimate[i]), float(low[i]), float(high[i]), method, note)
                    for i, name in enumerate(scorer.metrics)})
    if wilson_based:
        out.update(_wilson_bounded(logits, labels, num_classes, wilson_based, confidence))
    return {name: out[name] for name in metrics}


_WILSON_METRICS = ("worst_class_recall", "gmean")


def calibration_intervals(
    probs: np.ndarray,
    labels: np.ndarray,
    *,
    metrics: Sequence[str] = ("ece", "mce", "nll"),
    n_bins: int = DEFAULT_BINS,
    n_resamples: int = 400,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Interval]:
    """A percentile-bootstrap interval over the test cases (resampled within each class, as
    `bootstrap_intervals`) for calibration measures of `CALIBRATION_METRICS` that take
    (probs, labels): ECE, MCE, NLL, Brier. Percentile ends are values the measure took, so
    they stay inside its range."""
    funcs = {"ece": lambda p, y: cal.ece(p, y, n_bins), "mce": lambda p, y: cal.mce(p, y, n_bins),
             "adaptive_ece": lambda p, y: cal.adaptive_ece(p, y, n_bins), "nll": cal.nll, "brier": cal.brier,
             "classwise_ece": lambda p, y: cal.classwise_ece(p, y, n_bins)}
    unknown = sorted(set(metrics) - set(funcs))
    if unknown:
        raise ValueError(f"no calibration interval for {unknown}; known: {', '.join(funcs)}")
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64, copy=False)

    def statistic(idx: np.ndarray) -> np.ndarray:
        return np.array([[funcs[m](p[row], y[row]) for row in idx] for m in metrics])

    estimate, low, high, method = _stratified_bootstrap(
        y, statistic, len(metrics), n_resamples=n_resamples, confidence=confidence, seed=seed, per_row=max(y.size, 1))
    note = _singleton_note(y) if y.size else ""
    return {m: Interval(float(estimate[i]), float(low[i]), float(high[i]), method, note)
            for i, m in enumerate(metrics)}


def _singleton_note(labels: np.ndarray) -> str:
    counts = np.bincount(np.asarray(labels).astype(np.int64, copy=False))
    single = np.flatnonzero(counts == 1)
    if not single.size:
        return ""
    which = ", ".join(str(int(c)) for c in single[:5]) + (" ..." if single.size > 5 else "")
    return (f"{single.size} class{'es' if single.size > 1 else ''} (index {which}) "
            f"{'have' if single.size > 1 else 'has'} a single test case: its recall (0 or 1) is the same in every "
            "resample, so the interval leaves out how uncertain it is.")


def _wilson_bounded(logits, labels, num_classes: int, names: Sequence[str], confidence: float) -> dict[str, Interval]:
    """Worst-class recall and G-mean at the ends of the per-class Wilson intervals, each at
    1 - (1 - confidence)/K so all classes hold at once; both rise with every recall."""
    logits = np.asarray(logits)
    y = _check_labels(labels, logits.shape[0], num_classes)
    support = np.bincount(y, minlength=num_classes)
    present = support > 0
    if not present.any():
        return {name: Interval(math.nan, math.nan, math.nan, "no test samples") for name in names}
    hits = np.bincount(y[logits.argmax(axis=1) == y], minlength=num_classes)[present]
    n = support[present]
    level = 1 - (1 - confidence) / n.size
    low, high = wilson_interval(hits, n, level)
    recall = hits / n
    funcs = {"worst_class_recall": np.min, "gmean": lambda r: float(np.exp(np.log(r).mean()))}
    method = f"per-class Wilson intervals at {level:.4g} (Bonferroni over {n.size} classes)"
    note = "" if n.min() >= 10 else (f"the rarest class has {int(n.min())} test case{'s' if n.min() != 1 else ''}: "
                                     "this number rests on very few cases")
    with np.errstate(divide="ignore"):  # log(0) = -inf: G-mean 0, as imblearn's
        return {name: Interval(float(funcs[name](recall)), float(funcs[name](low)), float(funcs[name](high)), method,
                               note) for name in names}


# --- proportions ----------------------------------------------------------------------------

def wilson_interval(
    successes: np.ndarray | int, trials: np.ndarray | int, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for k successes of n: unlike k/n +/- z se it stays inside
    [0, 1] and is not zero-width at 0 of 5, which is what a rare class's recall looks like.
    NaN where n = 0 (no samples, nothing to estimate)."""
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    if np.any(k < 0) or np.any(k > n):
        raise ValueError("successes must lie between 0 and trials")
    empty = n == 0
    low, high = proportion_confint(k, np.where(empty, 1.0, n), alpha=1 - confidence, method="wilson")
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def per_class_intervals(
    logits: np.ndarray, labels: np.ndarray, num_classes: int, confidence: float = 0.95
) -> pd.DataFrame:
    """Recall (TP of support) and precision (TP of predicted) of each class with Wilson
    intervals, one row per class index. Both are NaN when their count is 0, rather than
    the 0 sklearn reports, because nothing was measured."""
    logits = np.asarray(logits)
    if logits.ndim != 2 or logits.shape[1] != num_classes:
        raise ValueError(f"logits must have shape (n, {num_classes}), got {logits.shape}")
    y = _check_labels(labels, logits.shape[0], num_classes)
    pred = logits.argmax(axis=1)
    support = np.bincount(y, minlength=num_classes)
    predicted = np.bincount(pred, minlength=num_classes)
    tp = np.bincount(y[pred == y], minlength=num_classes)
    table = {"class_index": np.arange(num_classes), "support": support, "predicted": predicted}
    for name, n in (("recall", support), ("precision", predicted)):
        with np.errstate(invalid="ignore", divide="ignore"):
            table[name] = np.where(n > 0, tp / np.maximum(n, 1), np.nan)
        table[f"{name}_low"], table[f"{name}_high"] = wilson_interval(tp, n, confidence)
    return pd.DataFrame(table)


# --- several runs -----------------------------------------------------------------------------

def _t_bounds(mean, sd, n, confidence: float, bounds: tuple[float, float] | None = None):
    """mean -/+ t_{(1+c)/2, n-1} sd / sqrt(n), elementwise, cut at `bounds`; NaN where
    n < 2 or sd = 0 (zero spread: no interval can be estimated from the runs)."""
    n = np.asarray(n, dtype=np.float64)
    sd = np.asarray(sd, dtype=np.float64)
    valid = (n >= 2) & (sd > 0)
    df = np.where(valid, n - 1, 1.0)
    half = stats.t.ppf((1 + confidence) / 2, df) * sd / np.sqrt(np.where(valid, n, 1.0))
    half = np.where(valid, half, np.nan)
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = np.maximum(low, bounds[0]), np.minimum(high, bounds[1])
    return low, high


def _finite_values(values) -> np.ndarray:
    """Floats of `values` with None and NaN dropped (a run that did not record a metric)."""
    return np.array([float(v) for v in values if v is not None and not math.isnan(float(v))], dtype=np.float64)


def t_interval(
    values: Sequence[float | None] | np.ndarray,
    confidence: float = 0.95,
    bounds: tuple[float, float] | None = None,
) -> dict:
    """Mean of runs with the t-interval mean +/- t_{0.975, n-1} sd / sqrt(n), sd with
    ddof = 1, cut at `bounds` (the metric's range). None/NaN values are dropped; n counts
    the rest. n = 1: sd and ci are NaN; every run equal: ci is NaN and `note` says so."""
    v = _finite_values(values)
    n = v.size
    mean = float(v.mean()) if n else float("nan")
    sd = float(v.std(ddof=1)) if n >= 2 else float("nan")
    low, high = _t_bounds(mean, sd, n, confidence, bounds)
    note = ""
    if n >= 2 and sd == 0:
        note = f"all {n} runs gave exactly {mean:.4g}: zero spread, so no interval (it is not certainty)"
    return {"mean": mean, "sd": sd, "ci": [float(low), float(high)], "n": n, "note": note}


def summarize_runs(metrics_list: Sequence[Mapping[str, float | None]], keys: Sequence[str]) -> dict[str, dict]:
    """`t_interval` of each metric over several runs' flat metric dicts, cut at each
    metric's range; a run without the key (or with None/NaN) is skipped for that key."""
    return {key: t_interval([m.get(key) for m in metrics_list], bounds=_bounds_of(key)) for key in keys}


def _bounds_of(key: str) -> tuple[float, float] | None:
    info = metric_info_of(key)
    return info.bounds if info is not None else None


def pooled_per_class(
    tables: Sequence[pd.DataFrame], columns: Sequence[str] = ("recall", "precision", "f1"), confidence: float = 0.95
) -> pd.DataFrame:
    """Per-class numbers over runs: for each column its mean, sd (ddof = 1) and
    t-interval (`col`, `col_sd`, `col_low`, `col_high`) per class_index, `support` summed
    over runs, `count_train` averaged, `n_runs`, and `class` / `group` as in the first
    run; largest training class first. Takes `per_class_metrics` tables, one per run."""
    if not tables:
        raise ValueError("pooled_per_class needs at least one per-class table")
    runs = pd.concat(list(tables), ignore_index=True)
    grouped = runs.groupby("class_index", sort=True)
    out = pd.DataFrame({"class_index": grouped.size().index})
    for label in ("class", "group"):
        if label in runs:
            out[label] = grouped[label].first().to_numpy()
    out["count_train"] = grouped["count_train"].mean().to_numpy()
    out["support"] = grouped["support"].sum().to_numpy()
    out["n_runs"] = grouped.size().to_numpy()
    for col in columns:
        mean = grouped[col].mean().to_numpy()
        sd = grouped[col].std(ddof=1).to_numpy()
        out[col], out[f"{col}_sd"] = mean, sd
        out[f"{col}_low"], out[f"{col}_high"] = _t_bounds(mean, sd, grouped[col].count().to_numpy(), confidence,
                                                          (0.0, 1.0))
    out = out.sort_values(["count_train", "class_index"], ascending=[False, True])
    return out.reset_index(drop=True)

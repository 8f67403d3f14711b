"""How sure can we be of a multi-label run's numbers, and is run A's tail mAP really higher
than run B's?

- One run: a percentile bootstrap over the test cases, reported as `_uncertainty.Interval`
  records. Whole cases are resampled, so a case keeps its row of labels and the labels'
  co-occurrence is kept in every resample; no within-label stratification is possible
  when labels overlap. A label with no known positive in a resample has no AP there and
  is left out of that resample's means; a per-label AP interval is then over the resamples
  where it has one, and its note says how many had none. (scipy's bootstrap, behind
  `_uncertainty.bootstrap_intervals`, would turn those resamples into a NaN interval.)
- Two runs scored on the same test cases: a paired bootstrap of the metric's difference,
  both runs scored on the same resamples; p = 2 min(P*(D <= 0), P*(D >= 0)) and the
  interval are read from those same resamples (`_paired._OrderInterval`), so the verdict
  words (`_verdict.decide`) can never disagree with the interval or the p-value: the one
  procedure of `paired_bootstrap_test` for single-label runs, over cases instead of
  within classes.
- Runs over seeds or folds: their per-run numbers go through `compare_experiments` as for
  single-label runs (the multi-label metrics are registered with their range and
  direction in `core.analysis._metrics.MULTILABEL_METRICS`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.analysis._multilabel import MULTILABEL_SUMMARY, MultiLabelScorer
from core.analysis._paired import _BATCH_ELEMENTS, _Fixed, _OrderInterval
from core.analysis._uncertainty import Interval
from core.analysis._verdict import Comparison, PairedTest, decide, difference_bounds, metric_bounds

__all__ = ["compare_multilabel_runs", "multilabel_intervals", "paired_multilabel_bootstrap"]


def multilabel_intervals(
    scores: np.ndarray,
    targets,
    train_counts,
    *,
    metrics: Sequence[str] = MULTILABEL_SUMMARY,
    threshold: float | Sequence[float] = 0.5,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    many: int = 100,
    few: int = 20,
) -> tuple[dict[str, Interval], list[Interval]]:
    """An interval for each summary metric and for each label's AP, from one bootstrap over
    the test cases (percentile, B = `n_resamples`)."""
    scorer = MultiLabelScorer(scores, targets, train_counts, metrics=metrics, threshold=threshold, per_label=True,
                              many=many, few=few)
    rng = np.random.default_rng(seed)
    estimate = scorer(np.arange(scorer.n)[None, :])[:, 0]
    draws = _resample(scorer, rng, n_resamples)
    level = (1 - confidence) / 2
    out = []
    for i in range(scorer.outputs):
        finite = draws[i][np.isfinite(draws[i])]
        if not np.isfinite(estimate[i]) or finite.size < 2:
            out.append(Interval(float(estimate[i]), np.nan, np.nan, "bootstrap over cases",
                                "no value in enough resamples"))
            continue
        low, high = np.quantile(finite, [level, 1 - level])
        dropped = draws.shape[1] - finite.size
        note = f"undefined in {dropped} of {draws.shape[1]} resamples (no positive drawn)" if dropped else ""
        out.append(Interval(float(estimate[i]), float(low), float(high),
                            f"bootstrap over cases, percentile, B={n_resamples}", note))
    summary = dict(zip(scorer.metrics, out[:len(scorer.metrics)]))
    return summary, out[len(scorer.metrics):]


def _resample(scorer: MultiLabelScorer, rng: np.random.Generator, n_resamples: int) -> np.ndarray:
    """(outputs, B) values of the scorer on B resamples of whole cases, drawn in batches."""
    if n_resamples < 1:
        raise ValueError("n_resamples must be at least 1")
    batch = max(1, _BATCH_ELEMENTS // max(scorer.n * scorer.num_labels, 1))
    parts = []
    for start in range(0, n_resamples, batch):
        rows = min(batch, n_resamples - start)
        parts.append(scorer(rng.integers(0, scorer.n, size=(rows, scorer.n))))
    return np.concatenate(parts, axis=1)


def paired_multilabel_bootstrap(
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    targets,
    train_counts,
    metric: str = "map_tail",
    *,
    threshold: float | Sequence[float] = 0.5,
    n_resamples: int = 2000,
    seed: int = 0,
    many: int = 100,
    few: int = 20,
) -> PairedTest:
    """metric(a) - metric(b), both runs scored on the same resamples of whole test cases;
    p and the interval from those resamples (resamples where the metric is undefined for
    either run, e.g. no tail positive drawn, are left out and counted in the note)."""
    kwargs = dict(metrics=(metric,), threshold=threshold, many=many, few=few)
    scorer_a = MultiLabelScorer(scores_a, targets, train_counts, **kwargs)
    scorer_b = MultiLabelScorer(scores_b, targets, train_counts, **kwargs)
    if scorer_a.scores.shape != scorer_b.scores.shape:
        raise ValueError(f"the two runs score different shapes: {scorer_a.scores.shape} vs {scorer_b.scores.shape}")
    whole = np.arange(scorer_a.n)[None, :]
    estimate = float(scorer_a(whole)[0, 0] - scorer_b(whole)[0, 0])
    rng = np.random.default_rng(seed)
    batch = max(1, _BATCH_ELEMENTS // max(scorer_a.n * scorer_a.num_labels, 1))
    parts = []
    for start in range(0, n_resamples, batch):
        idx = rng.integers(0, scorer_a.n, size=(min(batch, n_resamples - start), scorer_a.n))
        parts.append(scorer_a(idx)[0] - scorer_b(idx)[0])
    diffs = np.concatenate(parts)
    diffs = np.sort(diffs[np.isfinite(diffs)])
    used = diffs.size
    test_name = f"paired bootstrap over cases (B={n_resamples})"
    limits = difference_bounds(metric_bounds(metric))
    if not np.isfinite(estimate) or used < 2:
        return PairedTest(estimate, np.nan, scorer_a.n, test_name, _Fixed(limits), unit="test cases",
                          degenerate=f"{metric} is undefined on this test set (no known positive in its labels)")
    below, above = np.count_nonzero(diffs <= 0), np.count_nonzero(diffs >= 0)
    p_value = min(1.0, 2 * min(below, above) / used)
    interval = _OrderInterval(diffs, diffs, used, limits, per=2.0)
    degenerate = ""
    if np.array_equal(scorer_a.scores, scorer_b.scores):
        degenerate = "the two runs give the same scores to every test case"
    elif np.ptp(diffs) == 0:
        degenerate = "every resample of the test cases gave the same difference"
    note = f"{n_resamples - used} of {n_resamples} resamples had no value and were left out" if used < n_resamples else ""
    return PairedTest(estimate, p_value, scorer_a.n, test_name, interval, unit="test cases", degenerate=degenerate,
                      note=note)


def compare_multilabel_runs(
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    targets,
    train_counts,
    metric: str = "map_tail",
    *,
    alpha: float = 0.05,
    **kwargs,
) -> Comparison:
    """Two multi-label runs on the same test cases, read through the one verdict rule."""
    test = paired_multilabel_bootstrap(scores_a, scores_b, targets, train_counts, metric, **kwargs)
    return decide(test, metric, alpha=alpha)

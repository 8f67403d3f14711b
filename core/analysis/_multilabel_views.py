"""One finding of a multi-label run read as its own yes/no question, for the pages made for
one class per case: its cases with a known entry, how well its probability is calibrated
(the single-label binning on the finding's own probability) with a bootstrap interval, and
every finding's calibration error beside its training frequency.

A finding's reliability asks "of the cases the model gave about 30 % for this finding, how
many carried it?": the bins run over the finding's probability p, and a bin's observed
share is the share of its cases with the finding present. ECE is the case-weighted mean
gap |share present - mean p| over equal-width bins of p (Guo et al. 2017's binning, as
`ece` for one class per case); unknown entries are left out."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.analysis import _calibration as cal
from core.analysis._multilabel import sigmoid
from core.analysis._prior import operating_point
from core.analysis._uncertainty import Interval, _stratified_bootstrap

__all__ = ["label_cases", "label_ece", "label_ece_interval", "label_reliability", "label_calibration_table",
           "label_operating_point", "missed_findings"]

DEFAULT_BINS = cal.DEFAULT_BINS


def label_cases(logits: np.ndarray, label_matrix: np.ndarray, label: int) -> tuple[np.ndarray, np.ndarray]:
    """(probability, present) of one finding on the cases whose entry for it is known."""
    targets = np.asarray(label_matrix, dtype=np.float64)[:, int(label)]
    known = np.isfinite(targets)
    return sigmoid(np.asarray(logits)[known, int(label)]), targets[known] == 1


def _check(probs: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, y = np.asarray(probs, dtype=np.float64), np.asarray(present).astype(np.float64)
    if p.ndim != 1 or y.shape != p.shape:
        raise ValueError(f"a finding's probabilities and entries must be two 1-D arrays of one length, got "
                         f"{p.shape} and {y.shape}")
    if p.size and (p.min() < 0 or p.max() > 1):
        raise ValueError("a finding's probabilities must lie between 0 and 1")
    return p, y


def label_reliability(probs: np.ndarray, present: np.ndarray, n_bins: int = DEFAULT_BINS) -> pd.DataFrame:
    """The table `reliability_diagram` draws (as `reliability_bins`): per equal-width bin of
    the finding's probability its range, cases, mean probability ("confidence") and share of
    cases with the finding ("accuracy")."""
    p, y = _check(probs, present)
    lower, upper, count, conf_sum, hit_sum = cal._bin_stats(p, y, n_bins, adaptive=False)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame({"bin_lower": lower, "bin_upper": upper, "count": count.astype(np.int64),
                             "confidence": conf_sum / count, "accuracy": hit_sum / count})


def label_ece(probs: np.ndarray, present: np.ndarray, n_bins: int = DEFAULT_BINS) -> float:
    """The finding's ECE: sum_m |B_m|/n |share present(B_m) - mean p(B_m)|; NaN with no case."""
    return cal._errors(*_check(probs, present), n_bins, adaptive=False)[0]


def _ece_rows(p: np.ndarray, y: np.ndarray, n_bins: int):
    """ECE of each row of case indices (rows, n) at once."""
    def statistic(idx: np.ndarray) -> np.ndarray:
        rows, n = idx.shape
        flat = (cal._equal_width_index(p[idx], n_bins) + n_bins * np.arange(rows)[:, None]).ravel()
        gap = np.bincount(flat, weights=(y[idx] - p[idx]).ravel(), minlength=rows * n_bins)
        return (np.abs(gap.reshape(rows, n_bins)).sum(axis=1) / max(n, 1))[None, :]
    return statistic


def label_ece_interval(probs: np.ndarray, present: np.ndarray, n_bins: int = DEFAULT_BINS, *,
                       n_resamples: int = 400, confidence: float = 0.95, seed: int = 0) -> Interval:
    """The finding's ECE with a percentile-bootstrap interval over its known cases, resampled
    within the cases with and without the finding (as `calibration_intervals`)."""
    p, y = _check(probs, present)
    estimate, low, high, method = _stratified_bootstrap(
        y.astype(np.int64), _ece_rows(p, y, n_bins), 1, n_resamples=n_resamples, confidence=confidence, seed=seed,
        per_row=max(p.size, 1))
    return Interval(float(estimate[0]), float(low[0]), float(high[0]), method)


def label_calibration_table(logits: np.ndarray, label_matrix: np.ndarray, per_label: pd.DataFrame,
                            n_bins: int = DEFAULT_BINS, *, n_resamples: int = 400, seed: int = 0) -> pd.DataFrame:
    """Every finding's ECE with its interval beside its training frequency, most to fewest
    training cases. `per_label`: the rows of the run's `metrics.json` `per_label` (label,
    train_count, group, in label order)."""
    rows = []
    for j, info in per_label.reset_index(drop=True).iterrows():
        p, y = label_cases(logits, label_matrix, j)
        found = label_ece_interval(p, y, n_bins, n_resamples=n_resamples, seed=seed)
        rows.append({"label": info["label"], "group": info["group"], "train_count": int(info["train_count"]),
                     "test_known": int(p.size), "test_positives": int(y.sum()), "ece": found.estimate,
                     "ece_low": found.low, "ece_high": found.high})
    table = pd.DataFrame(rows)
    return table.sort_values("train_count", ascending=False, kind="stable").reset_index(drop=True)


def label_operating_point(logits: np.ndarray, label_matrix: np.ndarray, label: int, threshold: float, *,
                          prevalence: float | None = None) -> dict:
    """`operating_point` of flagging the finding when its probability is at least `threshold`,
    on the cases whose entry for it is known: sensitivity and specificity with Wilson
    intervals, PPV and NPV at the deployment `prevalence` (a share, 0 to 1) by Bayes, or at
    the test cases' own share when it is None."""
    probs, present = label_cases(logits, label_matrix, label)
    return operating_point(probs, present, threshold, prevalence=prevalence)


def missed_findings(logits: np.ndarray, label_matrix: np.ndarray, thresholds, label: int) -> pd.DataFrame:
    """The test cases that carry the finding but were not flagged for it (its probability
    under its threshold), the most confidently missed first: each case's row, its chance for
    the finding, the other findings it carries and the other findings the model flagged
    (label indices). Cases whose entry is unknown are never counted as missed."""
    probs, targets = sigmoid(np.asarray(logits)), np.asarray(label_matrix, dtype=np.float64)
    cut = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    j = int(label)
    rows = np.flatnonzero((targets[:, j] == 1) & (probs[:, j] < cut[j]))
    rows = rows[np.argsort(probs[rows, j], kind="stable")]
    others = lambda mask: [tuple(int(k) for k in np.flatnonzero(m) if k != j) for m in mask]  # noqa: E731
    return pd.DataFrame({"row": rows.astype(np.int64), "chance": probs[rows, j],
                         "others_present": others(targets[rows] == 1), "others_flagged": others(probs[rows] >= cut)})

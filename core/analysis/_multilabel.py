"""Metrics of a multi-label run: per-label average precision and its mean (mAP), F1, AUROC,
head / medium / tail mAP by training frequency, subset accuracy and Hamming loss.

Targets are a label matrix (`core.data.as_label_matrix`: 1 present, 0 absent, NaN
unknown); scores are per-label probabilities (sigmoid of the logits). An unknown entry is
left out of every number for its label: it is neither a hit nor a miss, because reading
"not reported" as "absent" is the common mistake partial labels invite.

- Average precision (AP) of a label: sum over the distinct score thresholds, from the
  highest, of the recall gained there times the precision there; tied scores form one
  threshold. This is scikit-learn's `average_precision_score` (checked against it in
  tests/test_multilabel_metrics.py), computed here with sorts and cumulative sums so a
  thousand bootstrap resamples cost a few array operations. A label with no known positive
  has no AP (NaN) and is left out of every mean, as `summary_metrics` leaves out classes
  absent from a test set.
- mAP: the mean AP over labels (macro), the headline number of the multi-label long-tail
  papers (DB loss, Wu et al. 2020; PLT-MLC, 2023). Head / medium / tail mAP: the mean over
  the labels of each group, grouped by their *training* positive counts with the same rule
  as classes (`core.data.class_groups`).
- AUROC of a label: the Mann-Whitney form, (sum of the positives' mid-ranks - P(P+1)/2)/(P N),
  ranks among the known entries only; equal to `roc_auc_score` on the known entries.
- Thresholded numbers (decision: probability >= threshold, one per label or one for all):
  macro F1 (mean over labels with a known positive), micro F1 (true/false positives and
  misses summed over every known entry), subset accuracy (share of cases whose every known
  entry is right; cases with nothing known left out) and Hamming loss (share of known
  entries decided wrongly).
- Per-label thresholds (`tune_label_thresholds`): each label's threshold is the score that
  maximises its F1 on the *validation* cases' known entries, then used on the test cases;
  numbers scored that way are chosen on validation and measured on test, never tuned on
  test (REFERENCE.md, "Anything tuned ... is chosen on validation").
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from scipy import stats

from core.data import as_label_matrix, class_groups

__all__ = [
    "MULTILABEL_SUMMARY",
    "MultiLabelScorer",
    "average_precision_rows",
    "label_groups",
    "multilabel_summary",
    "per_label_average_precision",
    "per_label_auroc",
    "sigmoid",
    "tune_label_thresholds",
]

MULTILABEL_SUMMARY: tuple[str, ...] = (
    "map", "map_head", "map_medium", "map_tail", "f1_macro", "f1_micro", "roc_auc_macro", "subset_accuracy",
    "hamming_loss",
)
_GROUPS = ("head", "medium", "tail")


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Per-label probabilities from logits, without overflow for large |z|."""
    z = np.asarray(logits, dtype=np.float64)
    return np.where(z >= 0, 1.0 / (1.0 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1.0 + np.exp(-np.abs(z))))


def _check(scores: np.ndarray, targets) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"scores must be a 2-D array (cases x labels), got shape {s.shape}")
    y = as_label_matrix(targets, num_labels=s.shape[1])
    if y.shape[0] != s.shape[0]:
        raise ValueError(f"scores have {s.shape[0]} cases but targets {y.shape[0]}")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    return s, y


# --- average precision and AUROC over many rows at once -------------------------------------------

def average_precision_rows(scores: np.ndarray, positive: np.ndarray, known: np.ndarray) -> np.ndarray:
    """AP of each row of (R, n) arrays: `scores`, `positive` (bool) and `known` (bool; an
    unknown entry counts for nothing). NaN for a row with no known positive.

    Sorted by score, the precision of a tie group is taken at the group's end, where the
    threshold admits all of it: that is scikit-learn's step-wise AP with ties as one step."""
    s = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    order = np.argsort(-s, axis=1, kind="stable")
    s_sorted = np.take_along_axis(s, order, axis=1)
    k = np.take_along_axis(np.atleast_2d(known), order, axis=1)
    p = np.take_along_axis(np.atleast_2d(positive), order, axis=1) & k
    tp = np.cumsum(p, axis=1)
    seen = np.cumsum(k, axis=1)
    n = s.shape[1]
    boundary = np.ones_like(s_sorted, dtype=bool)
    boundary[:, :-1] = s_sorted[:, :-1] != s_sorted[:, 1:]
    end = np.where(boundary, np.arange(n), n)
    end = np.minimum.accumulate(end[:, ::-1], axis=1)[:, ::-1]
    tp_end = np.take_along_axis(tp, end, axis=1)
    seen_end = np.take_along_axis(seen, end, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(seen_end > 0, tp_end / np.maximum(seen_end, 1), 0.0)
        total = tp[:, -1] if n else np.zeros(s.shape[0])
        return np.where(total > 0, (precision * p).sum(axis=1) / np.maximum(total, 1), np.nan)


def _auroc_rows(scores: np.ndarray, positive: np.ndarray, known: np.ndarray) -> np.ndarray:
    """AUROC of each row from mid-ranks among the known entries (NaN without both kinds)."""
    s = np.where(known, np.asarray(scores, dtype=np.float64), np.nan)
    ranks = stats.rankdata(s, axis=1, nan_policy="omit")
    pos = positive & known
    n_pos = pos.sum(axis=1)
    n_neg = known.sum(axis=1) - n_pos
    rank_sum = np.where(pos, ranks, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def per_label_average_precision(scores: np.ndarray, targets) -> np.ndarray:
    """(L,) AP of each label over its known entries; NaN for a label with no known positive."""
    s, y = _check(scores, targets)
    known = ~np.isnan(y)
    return average_precision_rows(s.T, (y == 1).T, known.T)


def per_label_auroc(scores: np.ndarray, targets) -> np.ndarray:
    """(L,) AUROC of each label over its known entries; NaN without a known positive and negative."""
    s, y = _check(scores, targets)
    known = ~np.isnan(y)
    return _auroc_rows(s.T, (y == 1).T, known.T)


def label_groups(train_counts: Sequence[int] | np.ndarray, *, many: int = 100, few: int = 20) -> list[str]:
    """'head' / 'medium' / 'tail' of each label by its training positive count (the rule
    classes use: literature thresholds, terciles when those put every label in one group)."""
    return class_groups(np.asarray(train_counts), many=many, few=few)


def _nanmean_rows(values: np.ndarray, select: np.ndarray) -> np.ndarray:
    """Mean over the selected labels (axis 0) ignoring NaN; NaN when none has a value."""
    part = values[select]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(part, axis=0) if part.size else np.full(values.shape[1:], np.nan)


class MultiLabelScorer:
    """Scores a batch of resampled test sets: index rows (R, n) -> (outputs, R), the
    summary metrics asked for, then each label's AP when `per_label`. Used for one run's
    intervals (a plain bootstrap over cases) and for the paired comparison of two runs."""

    def __init__(self, scores: np.ndarray, targets, train_counts, *, metrics: Sequence[str] = MULTILABEL_SUMMARY,
                 threshold: float | Sequence[float] = 0.5, per_label: bool = False, many: int = 100, few: int = 20):
        s, y = _check(scores, targets)
        unknown = sorted(set(metrics) - set(MULTILABEL_SUMMARY))
        if unknown:
            raise ValueError(f"unknown multi-label metrics {unknown}; known: {', '.join(MULTILABEL_SUMMARY)}")
        counts = np.asarray(train_counts)
        if counts.shape != (s.shape[1],):
            raise ValueError(f"train_counts must have one count per label ({s.shape[1]}), got shape {counts.shape}")
        cut = np.broadcast_to(np.asarray(threshold, dtype=np.float64), (s.shape[1],))
        self.scores, self.known, self.positive = s, ~np.isnan(y), y == 1
        self.decision = s >= cut
        self.groups = np.asarray(label_groups(counts, many=many, few=few))
        self.metrics, self.per_label = tuple(metrics), per_label
        self.n, self.num_labels = s.shape

    @property
    def outputs(self) -> int:
        return len(self.metrics) + (self.num_labels if self.per_label else 0)

    def _gather(self, idx: np.ndarray, array: np.ndarray) -> np.ndarray:
        """(L, R, n): each label's column at the resampled cases."""
        return np.moveaxis(array[idx], 2, 0)

    def __call__(self, idx: np.ndarray) -> np.ndarray:
        idx = np.atleast_2d(idx)
        rows = idx.shape[0]
        s, k, p = (self._gather(idx, a) for a in (self.scores, self.known, self.positive))
        ap = np.stack([average_precision_rows(s[c], p[c], k[c]) for c in range(self.num_labels)])
        out = {"map": _nanmean_rows(ap, np.ones(self.num_labels, bool))}
        for group in _GROUPS:
            out[f"map_{group}"] = _nanmean_rows(ap, self.groups == group)
        if "roc_auc_macro" in self.metrics:
            auc = np.stack([_auroc_rows(s[c], p[c], k[c]) for c in range(self.num_labels)])
            out["roc_auc_macro"] = _nanmean_rows(auc, np.ones(self.num_labels, bool))
        out.update(self._thresholded(self._gather(idx, self.decision), p, k, rows))
        values = [out[m] for m in self.metrics] + (list(ap) if self.per_label else [])
        return np.stack([np.broadcast_to(v, (rows,)) for v in values]).astype(np.float64)

    def _thresholded(self, d: np.ndarray, p: np.ndarray, k: np.ndarray, rows: int) -> dict[str, np.ndarray]:
        tp = (d & p & k).sum(axis=2)  # (L, R)
        fp = (d & ~p & k).sum(axis=2)
        fn = (~d & p & k).sum(axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.where(tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
            has_positive = (p & k).any(axis=2)
            f1_macro = np.where(has_positive.any(axis=0),
                                (f1 * has_positive).sum(axis=0) / np.maximum(has_positive.sum(axis=0), 1), np.nan)
            tps, fps, fns = tp.sum(axis=0), fp.sum(axis=0), fn.sum(axis=0)
            f1_micro = np.where(2 * tps + fps + fns > 0, 2 * tps / np.maximum(2 * tps + fps + fns, 1), np.nan)
            wrong = ((d != p) & k)  # (L, R, n)
            known_entries = k.sum(axis=(0, 2))
            hamming = np.where(known_entries > 0, wrong.sum(axis=(0, 2)) / np.maximum(known_entries, 1), np.nan)
            case_known = k.any(axis=0)  # (R, n)
            case_right = ~wrong.any(axis=0) & case_known
            subset = np.where(case_known.sum(axis=1) > 0,
                              case_right.sum(axis=1) / np.maximum(case_known.sum(axis=1), 1), np.nan)
        return {"f1_macro": f1_macro, "f1_micro": f1_micro, "hamming_loss": hamming, "subset_accuracy": subset}


def multilabel_summary(scores: np.ndarray, targets, train_counts, *, threshold: float | Sequence[float] = 0.5,
                       many: int = 100, few: int = 20) -> dict[str, float]:
    """The headline numbers of a multi-label run, keyed as in `MULTILABEL_SUMMARY`
    (probabilities in `scores`; `train_counts`: each label's training positives)."""
    scorer = MultiLabelScorer(scores, targets, train_counts, threshold=threshold, many=many, few=few)
    values = scorer(np.arange(scorer.n)[None, :])[:, 0]
    return {m: float(v) for m, v in zip(scorer.metrics, values)}


def tune_label_thresholds(val_scores: np.ndarray, val_targets, *, default: float = 0.5) -> np.ndarray:
    """(L,) per-label thresholds: for each label, the validation score t whose decision
    "score >= t" gives the highest F1 over its known validation entries (ties: the highest
    such t, the most conservative). A label with no known validation positive keeps `default`."""
    s, y = _check(val_scores, val_targets)
    known, positive = (~np.isnan(y)).T, (y == 1).T
    scores = s.T
    order = np.argsort(-scores, axis=1, kind="stable")
    s_sorted = np.take_along_axis(scores, order, axis=1)
    k = np.take_along_axis(known, order, axis=1)
    p = np.take_along_axis(positive, order, axis=1) & k
    tp, seen = np.cumsum(p, axis=1), np.cumsum(k, axis=1)
    total = tp[:, -1] if s.shape[0] else np.zeros(s.shape[1])
    boundary = np.ones_like(s_sorted, dtype=bool)
    boundary[:, :-1] = s_sorted[:, :-1] != s_sorted[:, 1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(boundary & (seen > 0), 2 * tp / (seen + total[:, None]), -1.0)
    best = f1.argmax(axis=1)
    chosen = s_sorted[np.arange(s.shape[1]), best]
    return np.where(total > 0, chosen, default)

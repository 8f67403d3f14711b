"""Classification metrics that stay honest under class imbalance.

Plain accuracy rewards ignoring the tail, so every run is summarised by class-balanced
metrics as well (REFERENCE.md, "Metrics"). All functions are pure numpy / sklearn /
imbalanced-learn over stored arrays; names match sklearn's scorer names.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    matthews_corrcoef,
    precision_recall_curve,
    precision_recall_fscore_support,
    recall_score,
    roc_auc_score,
)

from core.data._groups import GROUP_ORDER, class_groups
from core.glossary import METRIC_WORDS

__all__ = ["ROBUST_METRICS", "MULTILABEL_METRICS",
    "METRICS",
    "MetricInfo",
    "balanced_accuracy",
    "class_recall",
    "f1_tuned_on_validation",
    "confusion",
    "group_metrics",
    "per_class_metrics",
    "softmax",
    "summary_metrics",
]


@dataclass(frozen=True)
class MetricInfo:
    """What a metric is called on screen, what it means, and which direction is better.

    `higher_is_better` is None for numbers with no better direction (pages then mark no
    best run in that column). `bounds`: the range the number can take (None: unbounded),
    which no interval of it may leave.
    """

    key: str
    display_name: str
    description: str
    higher_is_better: bool | None
    bounds: tuple[float, float] | None = (0.0, 1.0)


def metric_info(key: str, higher_is_better: bool | None,
                bounds: tuple[float, float] | None = (0.0, 1.0)) -> MetricInfo:
    """A metric with its name and meaning in words (core.glossary: words sit below the analysis)."""
    words = METRIC_WORDS[key]
    return MetricInfo(key, words.display, words.explanation, higher_is_better, bounds)


METRICS: dict[str, MetricInfo] = {
    m.key: m
    for m in (
        metric_info("accuracy", True),
        metric_info("balanced_accuracy", True),
        metric_info("f1_macro", True),
        metric_info("gmean", True),
        metric_info("worst_class_recall", True),
        metric_info("mcc", True, (-1.0, 1.0)),
        metric_info("cohen_kappa", True, (-1.0, 1.0)),
        metric_info("roc_auc_ovr_macro", True),
        metric_info("average_precision_macro", True),
    )
}


# Multi-label runs (`core.analysis._multilabel`): macro F1 keeps its key and meaning (over
# labels instead of classes); the rest are multi-label only.
MULTILABEL_METRICS: dict[str, MetricInfo] = {
    m.key: m
    for m in (
        metric_info("map", True),
        metric_info("map_head", True),
        metric_info("map_medium", True),
        metric_info("map_tail", True),
        metric_info("f1_macro", True),
        metric_info("f1_micro", True),
        metric_info("roc_auc_macro", True),
        metric_info("subset_accuracy", True),
        metric_info("hamming_loss", False),
    )
}


# Scored on the test cases' attacked copies when a run sets `evaluation.attack`
# (`core.analysis.robust_summary`); absent from runs without one.
ROBUST_METRICS: dict[str, MetricInfo] = {
    m.key: m
    for m in (
        metric_info("robust_balanced_accuracy", True),
        metric_info("robust_tail_accuracy", True),
        metric_info("robust_gap", False, (-1.0, 1.0)),  # head minus tail: lower spreads the cost evenly
    )
}


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax; the max is subtracted first so large logits do not overflow."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _predictions(logits_or_pred: np.ndarray) -> np.ndarray:
    """Predicted classes from (n, K) scores or (n,) integer predictions."""
    a = np.asarray(logits_or_pred)
    if a.ndim == 2:
        return a.argmax(axis=1)
    if a.ndim == 1:
        return a.astype(np.int64, copy=False)
    raise ValueError(f"expected (n, K) logits or (n,) predictions, got shape {a.shape}")


def balanced_accuracy(logits_or_pred: np.ndarray, labels: np.ndarray) -> float:
    """Mean recall over the classes present in `labels` (sklearn's balanced accuracy).

    Counted with `np.bincount` rather than through sklearn, whose input checks cost about a
    millisecond a call: lesson verdicts and post-hoc searches call this once per run and
    setting, hundreds of times a page. Input sklearn would refuse still goes to sklearn,
    for its error."""
    y, pred = np.asarray(labels), _predictions(logits_or_pred)
    if y.ndim != 1 or y.shape != pred.shape or y.size == 0 or y.dtype.kind not in "iub":
        return float(balanced_accuracy_score(y, pred))
    classes, index = np.unique(y, return_inverse=True)
    support = np.bincount(index, minlength=classes.size)
    hits = np.bincount(index[pred == y], minlength=classes.size)
    return float(np.mean(hits / support))


def class_recall(logits_or_pred: np.ndarray, labels: np.ndarray, classes: Sequence[int] | np.ndarray) -> float:
    """Mean recall over those of `classes` that have cases in `labels`; NaN when none has."""
    pred, y = _predictions(logits_or_pred), np.asarray(labels)
    values = [float((pred[y == c] == c).mean()) for c in classes if (y == c).any()]
    return float(np.mean(values)) if values else float("nan")


def f1_tuned_on_validation(val_scores: np.ndarray, val_positive: np.ndarray, scores: np.ndarray,
                           positive: np.ndarray) -> float:
    """F1 of one class against the rest on the test scores, at the threshold that gives the
    best F1 on the validation scores: a tuned threshold, chosen where it may be chosen.
    With no positive validation case, the default "score >= 0.5"."""
    val_positive = np.asarray(val_positive, dtype=bool)
    threshold = 0.5
    if val_positive.any():
        precision, recall, thresholds = precision_recall_curve(val_positive, np.asarray(val_scores))
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.nan_to_num(2 * precision * recall / (precision + recall))[:-1]
        threshold = float(thresholds[int(np.argmax(f1))])
    return float(f1_score(np.asarray(positive, dtype=bool), np.asarray(scores) >= threshold, zero_division=0))


def _check_labels(labels: np.ndarray, n: int, num_classes: int) -> np.ndarray:
    y = np.asarray(labels).astype(np.int64, copy=False)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"labels must have shape ({n},), got {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1}")
    return y


def summary_metrics(logits: np.ndarray, labels: np.ndarray, num_classes: int) -> dict[str, float]:
    """The headline numbers of a run, keyed as in `METRICS`.

    Classes absent from `labels` (tiny test splits) are left out of every per-class
    average rather than counted as zero recall; a metric that is still undefined (e.g.
    ROC-AUC with a single class present) is NaN instead of an error.
    """
    logits = np.asarray(logits)
    if logits.ndim != 2 or logits.shape[1] != num_classes:
        raise ValueError(f"logits must have shape (n, {num_classes}), got {logits.shape}")
    y = _check_labels(labels, logits.shape[0], num_classes)
    out = dict.fromkeys(METRICS, float("nan"))
    if y.size == 0:
        return out

    from imblearn.metrics import geometric_mean_score  # here, not at the top: importing imblearn costs 1-2 s

    probs = softmax(logits)
    pred = logits.argmax(axis=1)
    present = np.flatnonzero(np.bincount(y, minlength=num_classes))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined cases are reported as NaN, not warnings
        recalls = recall_score(y, pred, labels=present, average=None, zero_division=0)
        out["accuracy"] = accuracy_score(y, pred)
        out["balanced_accuracy"] = balanced_accuracy_score(y, pred)
        out["f1_macro"] = f1_score(y, pred, labels=present, average="macro", zero_division=0)
        out["gmean"] = geometric_mean_score(y, pred, labels=present, average="multiclass")
        out["worst_class_recall"] = recalls.min()
        out["mcc"] = matthews_corrcoef(y, pred)
        out["cohen_kappa"] = cohen_kappa_score(y, pred)
        if present.size >= 2:
            # One-vs-rest as a multilabel problem over the present columns: identical to
            # roc_auc_score(multi_class='ovr') when all classes are present.
            onehot = np.eye(num_classes, dtype=np.int64)[y][:, present]
            scores = probs[:, present]
            out["roc_auc_ovr_macro"] = roc_auc_score(onehot, scores, average="macro")
            out["average_precision_macro"] = average_precision_score(onehot, scores, average="macro")
    return {k: float(v) for k, v in out.items()}


def per_class_metrics(
    logits: np.ndarray,
    labels: np.ndarray,
    class_counts: Sequence[int] | np.ndarray,
    class_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per class, largest training class first, so head-to-tail trends read top-down.

    Columns: class, class_index, count_train, precision, recall, f1, support, group.
    A class with no test samples has support 0 and recall 0 (sklearn's zero_division=0).
    """
    counts = np.asarray(class_counts)
    k = counts.shape[0]
    pred = _predictions(logits)
    y = _check_labels(labels, pred.shape[0], k)
    names = [str(i) for i in range(k)] if class_names is None else [str(c) for c in class_names]
    if len(names) != k:
        raise ValueError(f"{len(names)} class names for {k} classes")
    if y.size:
        precision, recall, f1, support = precision_recall_fscore_support(
            y, pred, labels=np.arange(k), average=None, zero_division=0
        )
    else:  # sklearn refuses empty input; an empty test split simply has nothing to show
        precision = recall = f1 = np.zeros(k)
        support = np.zeros(k, dtype=np.int64)
    table = pd.DataFrame({
        "class": names,
        "class_index": np.arange(k),
        "count_train": counts.astype(np.int64),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": support.astype(np.int64),
        "group": class_groups(counts),
    })
    return table.sort_values("count_train", ascending=False, kind="stable").reset_index(drop=True)


def group_metrics(
    logits: np.ndarray,
    labels: np.ndarray,
    class_counts: Sequence[int] | np.ndarray,
    *,
    many: int = 100,
    few: int = 20,
) -> pd.DataFrame:
    """Head / medium / tail summary, the standard long-tail report (Liu et al. 2019).

    `accuracy` is the mean recall of the group's classes that have test samples (a
    class-balanced accuracy within the group, as reported in OLTR-style tables), not the
    pooled hit rate, so one big class cannot stand for its group. Columns: group,
    n_classes, n_train, n_test, accuracy; one row per group present, head first.
    """
    counts = np.asarray(class_counts)
    k = counts.shape[0]
    pred = _predictions(logits)
    y = _check_labels(labels, pred.shape[0], k)
    groups = np.asarray(class_groups(counts, many=many, few=few), dtype=object)
    n_test = np.bincount(y, minlength=k)
    hits = np.bincount(y[pred == y], minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = hits / n_test
    rows = []
    for name in GROUP_ORDER:
        members = groups == name
        if not members.any():
            continue
        tested = members & (n_test > 0)
        rows.append({
            "group": name,
            "n_classes": int(members.sum()),
            "n_train": int(counts[members].sum()),
            "n_test": int(n_test[members].sum()),
            "accuracy": float(recall[tested].mean()) if tested.any() else float("nan"),
        })
    return pd.DataFrame(rows, columns=["group", "n_classes", "n_train", "n_test", "accuracy"])


def confusion(
    logits_or_pred: np.ndarray, labels: np.ndarray, num_classes: int, normalize: bool = False
) -> np.ndarray:
    """K x K confusion matrix (rows true, columns predicted), fixed size even if classes are missing.

    With `normalize`, rows sum to 1 so the diagonal is per-class recall; a class without
    test samples gets a zero row.
    """
    pred = _predictions(logits_or_pred)
    y = _check_labels(labels, pred.shape[0], num_classes)
    if y.size == 0:
        return np.zeros((num_classes, num_classes), dtype=np.float64 if normalize else np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return confusion_matrix(
            y, pred, labels=np.arange(num_classes), normalize="true" if normalize else None
        )

"""Calibration: do the predicted probabilities mean what they say, for head and tail alike?

Long-tailed training tends to make models over-confident on rare classes, which a single
ECE hides, so besides the standard top-label metrics (Guo et al. 2017) this module gives
classwise-ECE (Kull et al. 2019), per-class ECE and the confidence gap per head/medium/
tail group (REFERENCE.md, "Calibration"). Everything is vectorised with searchsorted and
bincount: no Python loop runs over samples or classes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from core.analysis._metrics import METRICS, MULTILABEL_METRICS, ROBUST_METRICS, MetricInfo, metric_info, softmax
from core.data._groups import GROUP_ORDER, class_groups

__all__ = [
    "metric_info_of",
    "CALIBRATION_METRICS",
    "adaptive_ece",
    "brier",
    "calibration_gap_by_group",
    "calibration_summary",
    "calibration_table",
    "classwise_ece",
    "ece",
    "mce",
    "nll",
    "per_class_ece",
    "reliability_bins",
]

DEFAULT_BINS = 15

CALIBRATION_METRICS: dict[str, MetricInfo] = {
    m.key: m
    for m in (
        metric_info("ece", False),
        metric_info("mce", False),
        metric_info("adaptive_ece", False),
        metric_info("classwise_ece", False),
        metric_info("brier", False, (0.0, 2.0)),
        metric_info("nll", False, (0.0, math.inf)),
        metric_info("optimal_temperature", None, (0.0, math.inf)),  # no better direction
        metric_info("ece_after_temperature", False),
        metric_info("nll_after_temperature", False, (0.0, math.inf)),
    )
}


def metric_info_of(key: str) -> MetricInfo | None:
    """Any metric a run can report (headline, calibration, under attack) by its key, or None."""
    return (METRICS.get(key) or CALIBRATION_METRICS.get(key) or ROBUST_METRICS.get(key)
            or MULTILABEL_METRICS.get(key))


# --- binning -----------------------------------------------------------------------------

def _check(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64, copy=False)
    if p.ndim != 2:
        raise ValueError(f"probs must have shape (n, K), got {p.shape}")
    if y.shape != (p.shape[0],):
        raise ValueError(f"labels must have shape ({p.shape[0]},), got {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= p.shape[1]):
        raise ValueError(f"labels must lie in 0..{p.shape[1] - 1}")
    return p, y


def _top_label(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = p.argmax(axis=1)
    return p[np.arange(p.shape[0]), pred], (pred == y).astype(np.float64)


def _equal_width_index(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin of each value in [0, 1]; bins are (lower, upper] with 0 in the first (Guo et al.)."""
    inner_edges = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    return np.searchsorted(inner_edges, values, side="left")


def _bin_stats(conf: np.ndarray, correct: np.ndarray, n_bins: int, adaptive: bool):
    """Per bin: lower, upper, count, sum of confidence, sum of correctness."""
    if n_bins < 1:
        raise ValueError("n_bins must be at least 1")
    n = conf.shape[0]
    if adaptive:
        order = np.argsort(conf, kind="stable")
        idx = np.empty(n, dtype=np.int64)
        idx[order] = np.arange(n) * n_bins // max(n, 1)
        starts = -(-np.arange(n_bins + 1) * n // n_bins)  # first rank of each bin
        filled = starts[1:] > starts[:-1]
        sorted_conf = conf[order]
        lower = np.full(n_bins, np.nan)
        upper = np.full(n_bins, np.nan)
        lower[filled] = sorted_conf[starts[:-1][filled]]
        upper[filled] = sorted_conf[starts[1:][filled] - 1]
    else:
        idx = _equal_width_index(conf, n_bins)
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        lower, upper = edges[:-1], edges[1:]
    count = np.bincount(idx, minlength=n_bins)
    conf_sum = np.bincount(idx, weights=conf, minlength=n_bins)
    acc_sum = np.bincount(idx, weights=correct, minlength=n_bins)
    return lower, upper, count, conf_sum, acc_sum


def reliability_bins(
    probs: np.ndarray, labels: np.ndarray, n_bins: int = DEFAULT_BINS, adaptive: bool = False
) -> pd.DataFrame:
    """Data for a reliability diagram: per confidence bin, its range, size, mean confidence
    and accuracy.

    Equal-width bins keep empty rows (count 0, NaN means) so the axis stays complete;
    equal-mass (adaptive) bins are only empty when n < n_bins, and those rows are dropped.
    """
    p, y = _check(probs, labels)
    conf, correct = _top_label(p, y)
    lower, upper, count, conf_sum, acc_sum = _bin_stats(conf, correct, n_bins, adaptive)
    with np.errstate(invalid="ignore", divide="ignore"):
        table = pd.DataFrame({
            "bin_lower": lower,
            "bin_upper": upper,
            "count": count.astype(np.int64),
            "confidence": conf_sum / count,
            "accuracy": acc_sum / count,
        })
    if adaptive:
        table = table[table["count"] > 0].reset_index(drop=True)
    return table


def _errors(conf: np.ndarray, correct: np.ndarray, n_bins: int, adaptive: bool) -> tuple[float, float]:
    """(ECE, MCE) of top-label confidences: weighted mean and max of |acc - conf| per bin."""
    if conf.size == 0:
        return float("nan"), float("nan")
    _, _, count, conf_sum, acc_sum = _bin_stats(conf, correct, n_bins, adaptive)
    gap_sum = np.abs(acc_sum - conf_sum)
    filled = count > 0
    return float(gap_sum.sum() / conf.size), float(np.max(gap_sum[filled] / count[filled]))


# --- top-label metrics -------------------------------------------------------------------

def ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = DEFAULT_BINS) -> float:
    """Expected calibration error: sum_m |B_m|/n |acc(B_m) - conf(B_m)|, equal-width bins."""
    return _errors(*_top_label(*_check(probs, labels)), n_bins, adaptive=False)[0]


def adaptive_ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = DEFAULT_BINS) -> float:
    """ECE with equal-mass bins, which does not leave the low-confidence bins nearly empty."""
    return _errors(*_top_label(*_check(probs, labels)), n_bins, adaptive=True)[0]


def mce(probs: np.ndarray, labels: np.ndarray, n_bins: int = DEFAULT_BINS) -> float:
    """Maximum calibration error: the worst |acc - conf| over non-empty equal-width bins."""
    return _errors(*_top_label(*_check(probs, labels)), n_bins, adaptive=False)[1]


# --- class-level metrics -----------------------------------------------------------------

def classwise_ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = DEFAULT_BINS) -> float:
    """Classwise-ECE (Kull et al. 2019): the ECE of every class's own probability p_j,
    averaged over all K classes, so miscalibrated tail-class probabilities count even when
    they are never the top prediction.

    (1/K) sum_j sum_m |B_jm|/n |freq_j(B_jm) - mean p_j(B_jm)|, bins over p_j.
    """
    p, y = _check(probs, labels)
    n, k = p.shape
    if n == 0:
        return float("nan")
    flat_bin = _equal_width_index(p, n_bins) + n_bins * np.arange(k)  # (n, K): class j's bins
    residual = -p
    residual[np.arange(n), y] += 1.0  # 1[y = j] - p_j
    sums = np.bincount(flat_bin.ravel(), weights=residual.ravel(), minlength=k * n_bins)
    return float(np.abs(sums).sum() / (n * k))


def per_class_ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = DEFAULT_BINS) -> np.ndarray:
    """ECE of each class j computed only on the test samples whose true class is j.

    Definition: the ordinary top-label ECE (confidence = max probability, equal-width
    bins, correct = prediction is j) over {i : y_i = j}. Within one true class accuracy
    is that class's recall, so this shows how over-confident the model is on the cases of
    a (rare) class. Shape (K,); NaN for a class without test samples.
    """
    p, y = _check(probs, labels)
    k = p.shape[1]
    conf, correct = _top_label(p, y)
    flat_bin = y * n_bins + _equal_width_index(conf, n_bins)
    sums = np.bincount(flat_bin, weights=correct - conf, minlength=k * n_bins).reshape(k, n_bins)
    n_class = np.bincount(y, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_class > 0, np.abs(sums).sum(axis=1) / n_class, np.nan)


def calibration_gap_by_group(
    probs: np.ndarray, labels: np.ndarray, groups: Sequence[str]
) -> dict[str, float]:
    """Mean confidence minus accuracy over test samples whose true class is in each group.

    `groups` gives every class's group (as from `class_groups`); positive means
    over-confident. Keys are the groups present, head/medium/tail first; a group without
    test samples maps to NaN.
    """
    p, y = _check(probs, labels)
    group_of_class = np.asarray(groups, dtype=object)
    if group_of_class.shape != (p.shape[1],):
        raise ValueError(f"groups must name the group of each of the {p.shape[1]} classes")
    names = [g for g in GROUP_ORDER if g in set(group_of_class)]
    names += sorted(set(group_of_class) - set(names))
    code_of_class = np.array([names.index(g) for g in group_of_class], dtype=np.int64)
    conf, correct = _top_label(p, y)
    code = code_of_class[y]
    count = np.bincount(code, minlength=len(names))
    gap_sum = np.bincount(code, weights=conf - correct, minlength=len(names))
    return {
        name: float(gap_sum[i] / count[i]) if count[i] else float("nan") for i, name in enumerate(names)
    }


# --- proper scoring rules ----------------------------------------------------------------

def brier(probs: np.ndarray, labels: np.ndarray) -> float:
    """Multi-class Brier score (1/n) sum_i ||p_i - e_{y_i}||^2 (range 0..2, not halved)."""
    p, y = _check(probs, labels)
    if y.size == 0:
        return float("nan")
    p_true = p[np.arange(y.size), y]
    return float(np.mean((p * p).sum(axis=1) - 2.0 * p_true + 1.0))


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-probability of the true class (probabilities clipped at float eps,
    as sklearn's log_loss does, so one zero does not make it infinite)."""
    p, y = _check(probs, labels)
    if y.size == 0:
        return float("nan")
    p_true = np.clip(p[np.arange(y.size), y], np.finfo(np.float64).eps, 1.0)
    return float(-np.log(p_true).mean())


def _nll_from_logits(logits: np.ndarray, labels: np.ndarray) -> float:
    """NLL via log-sum-exp, exact even where softmax underflows to 0."""
    z = np.asarray(logits, dtype=np.float64)
    z_max = z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z - z_max).sum(axis=1)) + z_max[:, 0]
    return float(np.mean(log_norm - z[np.arange(z.shape[0]), labels]))


def calibration_summary(
    logits: np.ndarray,
    labels: np.ndarray,
    class_counts: Sequence[int] | np.ndarray,
    val_logits: np.ndarray | None = None,
    val_labels: np.ndarray | None = None,
    *,
    groups: Sequence[str] | None = None,
    n_bins: int = DEFAULT_BINS,
) -> dict:
    """Every calibration number of a run, from its stored logits.

    Keys: ece, mce, adaptive_ece, classwise_ece, brier, nll (floats); optimal_temperature
    (`core.methods._posthoc.fit_temperature` on the validation logits), ece_after_temperature and
    nll_after_temperature (test metrics at that temperature; all three NaN without
    validation data); gap ({group: confidence - accuracy} for the head/medium/tail groups:
    `groups`, the run's own, or by default those of `class_counts` at the usual thresholds).
    """
    z = np.asarray(logits, dtype=np.float64)
    probs, y = _check(softmax(z), labels)
    empty = y.size == 0
    conf, correct = _top_label(probs, y)  # binned once for ECE and MCE
    top_ece, top_mce = _errors(conf, correct, n_bins, adaptive=False)
    summary: dict = {
        "ece": top_ece,
        "mce": top_mce,
        "adaptive_ece": _errors(conf, correct, n_bins, adaptive=True)[0],
        "classwise_ece": classwise_ece(probs, y, n_bins),
        "brier": brier(probs, y),
        "nll": float("nan") if empty else _nll_from_logits(z, y),
        "optimal_temperature": float("nan"),
        "ece_after_temperature": float("nan"),
        "nll_after_temperature": float("nan"),
    }
    if val_logits is not None and val_labels is not None and len(val_labels) > 0:
        # Imported here: core.methods loads torch, which plain metric pages never need.
        from core.methods._posthoc import fit_temperature

        temperature = float(fit_temperature(np.asarray(val_logits), np.asarray(val_labels)))
        summary["optimal_temperature"] = temperature
        if not empty:
            summary["ece_after_temperature"] = ece(softmax(z / temperature), y, n_bins)
            summary["nll_after_temperature"] = _nll_from_logits(z / temperature, y)
    summary["gap"] = calibration_gap_by_group(probs, y, groups if groups is not None else class_groups(class_counts))
    return summary


def calibration_table(probs: np.ndarray, labels: np.ndarray, groups: Sequence[str],
                      class_names: Sequence[str] | None = None, n_bins: int = DEFAULT_BINS,
                      class_order: Sequence[int] | None = None) -> pd.DataFrame:
    """The calibration metrics restricted to the test cases of each class and each group.

    One row per head/medium/tail group present, then one per class (in `class_order`,
    default class index; pass head to tail), then "all". Columns: scope
    ("group", "class" or "all"), name, group, n, accuracy (the hit rate on those cases:
    recall for a class), confidence (mean top probability), gap (confidence - accuracy),
    ece, mce, adaptive_ece, brier, nll. A row without test cases holds NaN. The same
    functions as the whole-run numbers, on a subset, so the "all" row equals them.
    """
    p, y = _check(probs, labels)
    k = p.shape[1]
    group_of_class = np.asarray(groups, dtype=object)
    if group_of_class.shape != (k,):
        raise ValueError(f"groups must name the group of each of the {k} classes")
    names = list(class_names) if class_names is not None else [str(j) for j in range(k)]
    conf, correct = _top_label(p, y)
    scopes = [("group", g, g, group_of_class[y] == g) for g in GROUP_ORDER if g in set(group_of_class)]
    order = range(k) if class_order is None else class_order
    scopes += [("class", names[j], group_of_class[j], y == j) for j in order]
    scopes.append(("all", "all", "", np.ones_like(y, dtype=bool)))
    rows = []
    for scope, name, group, mask in scopes:
        n = int(mask.sum())
        row = {"scope": scope, "name": name, "group": group, "n": n}
        if n:
            pm, ym = p[mask], y[mask]
            row.update(accuracy=float(correct[mask].mean()), confidence=float(conf[mask].mean()),
                       ece=ece(pm, ym, n_bins), mce=mce(pm, ym, n_bins), adaptive_ece=adaptive_ece(pm, ym, n_bins),
                       brier=brier(pm, ym), nll=nll(pm, ym))
            row["gap"] = row["confidence"] - row["accuracy"]
        rows.append(row)
    columns = ["scope", "name", "group", "n", "accuracy", "confidence", "gap", "ece", "mce", "adaptive_ece",
               "brier", "nll"]
    return pd.DataFrame(rows).reindex(columns=columns)

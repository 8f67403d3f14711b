"""What a model's numbers become at another class mix, and where to set one class's threshold.

A test split has one class mix; a clinic has another. Recall of each class is a rate
within the class and does not depend on the mix, but accuracy, precision (PPV), NPV, F1
and ECE do. Weighting each test case of class c by pi_new(c) / (n_c / n) gives exactly
the numbers of a test set resampled to pi_new, without drawing one (REFERENCE.md,
"Priors and prevalence shift"). The model itself can also be moved to the new mix by the
Bayes correction logit + log(pi_new / pi_train) (Saerens et al. 2002); the mix of an
unlabelled batch is estimated in `_label_shift`. For one class against the rest: sensitivity,
specificity and predictive values at a threshold, with intervals, and the threshold of
least expected cost. Pure numpy / sklearn / statsmodels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, roc_curve

from core.analysis._calibration import DEFAULT_BINS, _equal_width_index
from core.analysis._metrics import _check_labels, softmax
from core.analysis._uncertainty import wilson_interval

__all__ = [
    "DEFAULT_SHIFT_RATIOS",
    "PRIOR_CHOICES",
    "adapt_to_prior",
    "least_cost_threshold",
    "metrics_at_prior",
    "operating_point",
    "prior_shift_curve",
    "prior_weights",
    "resolve_prior",
    "shifted_priors",
]

PRIOR_CHOICES: tuple[str, ...] = ("test", "balanced", "train")
# Forward long-tailed (most frequent training class first) through uniform to backward (SADE).
DEFAULT_SHIFT_RATIOS: tuple[float, ...] = (50, 20, 10, 5, 2, 1, 1 / 2, 1 / 5, 1 / 10, 1 / 20, 1 / 50)
CURVE_METRICS: tuple[str, ...] = ("accuracy", "balanced_accuracy", "f1_macro", "ece")


# --- choosing a prior --------------------------------------------------------------------

def _as_prior(values: Sequence[float] | np.ndarray, num_classes: int) -> np.ndarray:
    p = np.asarray(values, dtype=np.float64).ravel()
    if p.shape[0] != num_classes:
        raise ValueError(f"a prior needs {num_classes} numbers, one per class; got {p.shape[0]}")
    if not np.all(np.isfinite(p)):
        bad = int(np.flatnonzero(~np.isfinite(p))[0])
        what = "not a number" if np.isnan(p[bad]) else "too large to be a number here (at most about 1.8e308)"
        raise ValueError(f"a prior must be finite numbers; class {bad}'s share is {what}")
    if np.any(p < 0):
        raise ValueError(f"a prior cannot be negative (class {int(np.flatnonzero(p < 0)[0])} is)")
    if p.max() <= 0:
        raise ValueError("a prior cannot be all zeros")
    p = p / p.max()  # shares are relative: the largest scaled to 1 first, so 1e308,1e308 is 1:1, not an overflow
    return p / p.sum()


def _test_support(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.bincount(_check_labels(labels, np.asarray(labels).shape[0], num_classes), minlength=num_classes)


def resolve_prior(
    choice: str | Sequence[float] | np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    train_prior: Sequence[float] | np.ndarray | None = None,
) -> np.ndarray:
    """The class prior meant by a page's or the command line's choice, normalised to sum 1.

    "test" is the split's own mix, "balanced" uniform, "train" the prior the model trained
    under; anything else is K numbers (a sequence, or text such as "0.97,0.03"). A class
    with no test case cannot be scored at any prior, so the named choices leave such
    classes out (their share goes to the others) while entered numbers that give one a
    share are refused.
    """
    support = _test_support(labels, num_classes)
    if support.sum() == 0:
        raise ValueError("no test samples to re-weight")
    present = support > 0
    if isinstance(choice, str):
        key = choice.strip().lower()
        if key == "test":
            return support / support.sum()
        if key == "balanced":
            return present / present.sum()
        if key == "train":
            if train_prior is None:
                raise ValueError("the training prior of this run is not known")
            p = _as_prior(train_prior, num_classes) * present
            if p.sum() == 0:
                raise ValueError("no class of the training prior has test samples")
            return p / p.sum()
        try:
            choice = [float(part) for part in key.replace(";", ",").split(",") if part.strip()]
        except ValueError:
            raise ValueError(
                f"prior {choice!r} is not one of {', '.join(PRIOR_CHOICES)} or a list of numbers such as 0.97,0.03"
            ) from None
    p = _as_prior(choice, num_classes)
    missing = np.flatnonzero((p > 0) & ~present)
    if missing.size:
        raise ValueError(f"class {int(missing[0])} has no test samples, so it cannot be given a share of the prior")
    return p


def prior_weights(labels: np.ndarray, prior: Sequence[float] | np.ndarray) -> np.ndarray:
    """Per-case weight prior[y] / test_share[y], mean 1: weighted metrics are the metrics
    of the test set resampled to `prior`, in expectation and without the resampling noise."""
    p = np.asarray(prior, dtype=np.float64)
    return _class_weights(_test_support(labels, p.shape[0]), _as_prior(p, p.shape[0]))[np.asarray(labels)]


def _class_weights(support: np.ndarray, prior: np.ndarray) -> np.ndarray:
    missing = np.flatnonzero((prior > 0) & (support == 0))
    if missing.size:
        raise ValueError(f"class {int(missing[0])} has no test samples, so it cannot be given a share of the prior")
    n = support.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(support > 0, prior * n / np.maximum(support, 1), 0.0)
    return w / (w @ support / n)


def adapt_to_prior(
    logits: np.ndarray, train_prior: Sequence[float] | np.ndarray, new_prior: Sequence[float] | np.ndarray
) -> np.ndarray:
    """logits + log(new / train): the Bayes-optimal posterior after a label shift (Saerens
    et al. 2002). A class with prior 0 gets a tiny floor so logits stay finite; it is then
    all but never predicted."""
    z = np.asarray(logits, dtype=np.float64)
    k = z.shape[-1]
    floor = 1e-12
    train = np.maximum(_as_prior(train_prior, k), floor)
    new = np.maximum(_as_prior(new_prior, k), floor)
    return z + np.log(new / train)


# --- metrics at a prior ------------------------------------------------------------------

class _PriorCounts:
    """Everything the prior-dependent metrics need, counted once per class.

    Re-weighting scales all cases of a class alike, so the weighted confusion matrix is the
    plain one with row c times w_c, and a weighted ECE bin total is the per-class bin
    totals combined with the w_c. Moving the prior then costs O(K^2), not a pass over cases.
    """

    def __init__(self, logits: np.ndarray, labels: np.ndarray, n_bins: int = DEFAULT_BINS):
        z = np.asarray(logits, dtype=np.float64)
        if z.ndim != 2:
            raise ValueError(f"logits must have shape (n, K), got {z.shape}")
        self.k = z.shape[1]
        y = _check_labels(labels, z.shape[0], self.k)
        probs = softmax(z)
        pred = probs.argmax(axis=1)
        conf = probs[np.arange(y.size), pred]
        self.support = np.bincount(y, minlength=self.k)
        self.n = int(y.size)
        self.confusion = confusion_matrix(y, pred, labels=np.arange(self.k)).astype(np.float64)
        # Per true class and confidence bin: sum of (correct - confidence).
        flat = y * n_bins + _equal_width_index(conf, n_bins)
        self.gap = np.bincount(flat, weights=(pred == y) - conf, minlength=self.k * n_bins).reshape(self.k, n_bins)

    def scores(self, prior: np.ndarray) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        w = _class_weights(self.support, prior)
        cm = self.confusion * w[:, None]
        total = cm.sum()
        tp = np.diag(cm)
        fn = cm.sum(axis=1) - tp
        fp = cm.sum(axis=0) - tp
        tn = total - tp - fn - fp
        present = self.support > 0
        weighted = prior > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            recall = np.diag(self.confusion) / self.support
            precision = tp / (tp + fp)
            f1 = 2 * tp / (2 * tp + fp + fn)
            per_class = {
                "prevalence": prior,
                "recall": recall,
                "precision": precision,
                "f1": f1,
                "specificity": tn / (tn + fp),
                "ppv": precision,
                "npv": tn / (tn + fn),
            }
        overall = {
            "accuracy": float(tp.sum() / total),
            "balanced_accuracy": float(recall[present].mean()),
            "f1_macro": float(f1[present & weighted].mean()),
            "ece": float(np.abs(w @ self.gap).sum() / total),
        }
        return overall, per_class


def _prior_or_choice(prior, labels, num_classes, train_prior) -> np.ndarray:
    if isinstance(prior, str):
        return resolve_prior(prior, labels, num_classes, train_prior)
    return _as_prior(prior, num_classes)


def metrics_at_prior(
    logits: np.ndarray,
    labels: np.ndarray,
    prior: str | Sequence[float] | np.ndarray,
    *,
    train_prior: Sequence[float] | np.ndarray | None = None,
    adapt: bool = False,
) -> dict:
    """The run's metrics on a test set whose class mix is `prior` (an array, or a choice
    for `resolve_prior`).

    Cases are weighted by `prior_weights`; recall per class, and so balanced accuracy (the
    mean over classes with test cases), stay as they are unless `adapt` moves the model
    itself to the prior (`adapt_to_prior`, which needs `train_prior`). Macro F1 averages
    the classes that have test cases and a share of the prior. Per class, PPV is the
    precision at that prevalence (Bayes from sensitivity and specificity) and NPV its
    counterpart; a value with no cases behind it is NaN.
    """
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"logits must have shape (n, K), got {z.shape}")
    p = _prior_or_choice(prior, labels, z.shape[1], train_prior)
    if adapt:
        if train_prior is None:
            raise ValueError("adapting to a prior needs the prior the model trained under")
        z = adapt_to_prior(z, train_prior, p)
    overall, per_class = _PriorCounts(z, labels).scores(p)
    rows = [
        {"class": k, **{name: float(values[k]) for name, values in per_class.items()}}
        for k in range(z.shape[1])
    ]
    return {"prior": p.tolist(), "adapted": bool(adapt), **overall, "per_class": rows}


def shifted_priors(
    class_counts: Sequence[int] | np.ndarray, ratios: Sequence[float] = DEFAULT_SHIFT_RATIOS
) -> list[tuple[float, np.ndarray]]:
    """Test priors from forward long-tailed through uniform to backward (Zhang et al. 2022).

    The class at rank i of the training order (most frequent first, ties by index) gets a
    share proportional to r^(-i/(K-1)): r > 1 keeps the training order with max/min = r,
    r = 1 is uniform, r < 1 reverses the order with max/min = 1/r.
    """
    counts = np.asarray(class_counts, dtype=np.float64).ravel()
    k = counts.shape[0]
    if k == 0:
        raise ValueError("no classes")
    rank = np.empty(k, dtype=np.float64)
    rank[np.argsort(-counts, kind="stable")] = np.arange(k)
    out = []
    for r in ratios:
        r = float(r)
        if not np.isfinite(r) or r <= 0:
            raise ValueError(f"a shift ratio must be a positive number, got {r}")
        share = r ** (-rank / max(k - 1, 1))
        out.append((r, share / share.sum()))
    return out


def prior_shift_curve(
    logits: np.ndarray,
    labels: np.ndarray,
    class_counts: Sequence[int] | np.ndarray,
    *,
    ratios: Sequence[float] = DEFAULT_SHIFT_RATIOS,
    train_prior: Sequence[float] | np.ndarray | None = None,
    adapt: bool = False,
) -> pd.DataFrame:
    """Each metric as the test prior moves along `shifted_priors`: one row per ratio.

    Classes with no test case are left out of every prior (their share goes to the
    others). Without `adapt` the cases are counted once and every ratio is a re-weighting.
    """
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"logits must have shape (n, K), got {z.shape}")
    if adapt and train_prior is None:
        raise ValueError("adapting to a prior needs the prior the model trained under")
    present = _test_support(labels, z.shape[1]) > 0
    if not present.any():
        raise ValueError("no test samples to re-weight")
    counts = None if adapt else _PriorCounts(z, labels)
    rows = []
    for r, p in shifted_priors(class_counts, ratios):
        p = p * present / (p * present).sum()
        scorer = _PriorCounts(adapt_to_prior(z, train_prior, p), labels) if adapt else counts
        overall, _ = scorer.scores(p)
        rows.append({"ratio": r, **overall})
    return pd.DataFrame(rows, columns=["ratio", *CURVE_METRICS])


# --- one class against the rest ----------------------------------------------------------

def _check_binary(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    pos = np.asarray(positive).ravel()
    if pos.shape != s.shape:
        raise ValueError(f"scores and positive must have the same length, got {s.shape[0]} and {pos.shape[0]}")
    if np.any(np.isnan(s)):
        raise ValueError("scores must not be NaN")
    return s, pos.astype(bool)


def _check_prevalence(prevalence: float) -> float:
    value = float(prevalence)
    if not 0 <= value <= 1:
        raise ValueError(f"prevalence must lie between 0 and 1, got {value}")
    return value


def _ppv(sens, spec, prev):
    with np.errstate(divide="ignore", invalid="ignore"):
        return sens * prev / (sens * prev + (1 - spec) * (1 - prev))


def _npv(sens, spec, prev):
    with np.errstate(divide="ignore", invalid="ignore"):
        return spec * (1 - prev) / (spec * (1 - prev) + (1 - sens) * prev)


def _value(value, low, high) -> dict[str, float]:
    return {"value": float(value), "low": float(low), "high": float(high)}


def operating_point(
    scores: np.ndarray,
    positive: np.ndarray,
    threshold: float,
    *,
    prevalence: float | None = None,
    confidence: float = 0.95,
) -> dict:
    """The 2x2 table of calling a case positive when its score >= threshold, with
    sensitivity, specificity, PPV and NPV and their intervals.

    Sensitivity and specificity are proportions within the positives and the negatives, so
    Wilson intervals. At the sample's own prevalence PPV and NPV are proportions too
    (Wilson on the calls). At another prevalence they follow from Bayes; both rise with
    sensitivity and specificity, so their interval is the Bayes value at the ends of
    sensitivity's and specificity's Wilson intervals, each taken at 1 - alpha/2 so the
    pair holds jointly at `confidence`. NaN where no case stands behind a value.
    """
    s, pos = _check_binary(scores, positive)
    if not 0 < confidence < 1:
        raise ValueError("confidence must lie strictly between 0 and 1")
    called = s >= float(threshold)
    tp = int(np.count_nonzero(called & pos))
    fn = int(np.count_nonzero(pos)) - tp
    fp = int(np.count_nonzero(called)) - tp
    tn = s.size - tp - fn - fp
    with np.errstate(divide="ignore", invalid="ignore"):
        sens, spec = np.float64(tp) / (tp + fn), np.float64(tn) / (tn + fp)
    out = {"threshold": float(threshold), "tp": tp, "fp": fp, "fn": fn, "tn": tn}
    sens_ci = wilson_interval(tp, tp + fn, confidence)
    spec_ci = wilson_interval(tn, tn + fp, confidence)
    out["sensitivity"] = _value(sens, *sens_ci)
    out["specificity"] = _value(spec, *spec_ci)
    if prevalence is None:
        out["prevalence"] = float(np.float64(tp + fn) / s.size) if s.size else float("nan")
        with np.errstate(divide="ignore", invalid="ignore"):
            out["ppv"] = _value(np.float64(tp) / (tp + fp), *wilson_interval(tp, tp + fp, confidence))
            out["npv"] = _value(np.float64(tn) / (tn + fn), *wilson_interval(tn, tn + fn, confidence))
        return out
    prev = _check_prevalence(prevalence)
    joint = 1 - (1 - confidence) / 2
    (sens_lo, sens_hi), (spec_lo, spec_hi) = wilson_interval(tp, tp + fn, joint), wilson_interval(tn, tn + fp, joint)
    out["prevalence"] = prev
    out["ppv"] = _value(_ppv(sens, spec, prev), _ppv(sens_lo, spec_lo, prev), _ppv(sens_hi, spec_hi, prev))
    out["npv"] = _value(_npv(sens, spec, prev), _npv(sens_lo, spec_lo, prev), _npv(sens_hi, spec_hi, prev))
    return out


def least_cost_threshold(
    scores: np.ndarray,
    positive: np.ndarray,
    *,
    prevalence: float,
    cost_miss: float,
    cost_false_alarm: float = 1.0,
) -> dict:
    """The threshold of least expected cost per case,
    prevalence (1 - sens) cost_miss + (1 - prevalence) (1 - spec) cost_false_alarm,
    over every distinct score and "call nobody" (threshold inf), read off one ROC curve.
    Ties go to the highest threshold (fewest calls). Extra key: calls_nobody.
    """
    s, pos = _check_binary(scores, positive)
    prev = _check_prevalence(prevalence)
    if cost_miss < 0 or cost_false_alarm < 0:
        raise ValueError("costs cannot be negative")
    if not pos.any() or pos.all():
        raise ValueError("a threshold needs at least one positive and one negative case")
    fpr, tpr, thresholds = roc_curve(pos, s, drop_intermediate=False)
    cost = prev * (1 - tpr) * cost_miss + (1 - prev) * fpr * cost_false_alarm
    best = int(np.argmin(cost))
    return {
        "threshold": float(thresholds[best]),
        "expected_cost": float(cost[best]),
        "sensitivity": float(tpr[best]),
        "specificity": float(1 - fpr[best]),
        "calls_nobody": bool(best == 0),
    }

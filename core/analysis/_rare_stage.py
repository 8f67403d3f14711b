"""How well a run predicts the rarest, last stage of an ordered label (PRESTO's question):
the probability a model gives the last stage, scored against whether each test case reached it.

Scores, each with a 95 % percentile-bootstrap interval over the test cases, resampled within
cases that reached the last stage and cases that did not (so every replicate keeps the
test set's number of rare cases, as the other intervals of one run do):

- log loss and Brier score of that probability (lower is better);
- AUC: how well it ranks the cases that reached the stage above those that did not;
- calibration in the large: mean predicted probability minus the observed share (0 is
  calibrated; positive: the model expects the stage too often);
- calibration slope: the slope of a logistic regression of the outcome on the logit of the
  probability (1 is calibrated; below 1: too extreme, above 1: too timid).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import special, stats

from core.analysis._uncertainty import Interval

__all__ = ["RARE_STAGE_METRICS", "rare_stage_scores", "rare_stage_summary"]

_CLIP = 1e-12
RARE_STAGE_METRICS: Mapping[str, tuple[str, bool | None]] = {
    "log_loss": ("log loss of the last stage", False),
    "brier": ("Brier score of the last stage", False),
    "auc": ("AUC of the last stage", True),
    "calibration_in_the_large": ("mean predicted minus observed share of the last stage", None),
    "calibration_slope": ("calibration slope of the last stage", None),
}


def _auc(p: np.ndarray, hit: np.ndarray) -> float:
    positives, negatives = hit.sum(), len(hit) - hit.sum()
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = stats.rankdata(p)
    return float((ranks[hit].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _slope(p: np.ndarray, hit: np.ndarray, iterations: int = 25) -> float:
    """Slope b of logit P(hit) = a + b logit(p), by Newton steps (no penalty)."""
    if hit.all() or not hit.any():
        return float("nan")
    z = np.log(p / (1 - p))
    design = np.stack([np.ones_like(z), z], axis=1)
    coef = np.zeros(2)
    for _ in range(iterations):
        mu = special.expit(design @ coef)
        hessian = design.T @ (design * (mu * (1 - mu))[:, None]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, design.T @ (hit - mu))
        coef += step
        if np.abs(step).max() < 1e-10:
            break
    return float(coef[1])


def _scores(p: np.ndarray, hit: np.ndarray) -> np.ndarray:
    y = hit.astype(np.float64)
    return np.array([
        float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))),
        float(np.mean((p - y) ** 2)),
        _auc(p, hit),
        float(p.mean() - y.mean()),
        _slope(p, hit),
    ])


def rare_stage_scores(p_last: np.ndarray, reached: np.ndarray, *, n_resamples: int = 1000, confidence: float = 0.95,
                      seed: int = 0) -> dict[str, Interval]:
    """Each of `RARE_STAGE_METRICS` for the predicted probability of the last stage `p_last`
    and whether each case reached it (`reached`), with its bootstrap interval."""
    p = np.clip(np.asarray(p_last, np.float64), _CLIP, 1 - _CLIP)
    hit = np.asarray(reached, bool)
    estimate = _scores(p, hit)
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(hit), np.flatnonzero(~hit)
    draws = np.empty((n_resamples, len(estimate)))
    for b in range(n_resamples):
        rows = np.concatenate([rng.choice(pos, len(pos)) if len(pos) else pos, rng.choice(neg, len(neg)) if len(neg)
                               else neg])
        draws[b] = _scores(p[rows], hit[rows])
    alpha = (1 - confidence) / 2
    method = f"bootstrap within reached / not reached, percentile, B={n_resamples}"
    note = "" if len(pos) >= 10 else f"only {len(pos)} test cases reached the last stage: the intervals are rough"
    out = {}
    for i, name in enumerate(RARE_STAGE_METRICS):
        finite = draws[:, i][np.isfinite(draws[:, i])]
        low, high = (np.quantile(finite, [alpha, 1 - alpha]) if len(finite) else (np.nan, np.nan))
        out[name] = Interval(float(estimate[i]), float(low), float(high), method, note)
    return out


def rare_stage_summary(probs: np.ndarray, labels: np.ndarray, *, n_resamples: int = 1000,
                       seed: int = 0) -> dict[str, object]:
    """The last stage's scores for (n, K) stage probabilities and stage labels, as plain dicts
    (`metrics.json`'s `rare_stage`): its index, test count, and each score with its interval."""
    probs = np.asarray(probs, np.float64)
    last = probs.shape[1] - 1
    reached = np.asarray(labels) == last
    scores = rare_stage_scores(probs[:, last], reached, n_resamples=n_resamples, seed=seed)
    return {"stage": last, "test_cases": int(reached.sum()), **{k: v.to_dict() for k, v in scores.items()}}

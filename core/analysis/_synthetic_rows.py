"""Checks of synthetic rows before they are trusted (CTAB-GAN+'s evaluation, Zhao et al. 2022):

- distance to the closest record: does a made row copy a real one? As CTAB-GAN+'s code:
  duplicates dropped, each set standardised with its own scaler, Euclidean distance, and the
  5th percentile of the nearest distances for real -> made, real -> real (itself left out)
  and made -> made. The privacy question runs the other way (for each made row, its closest
  real row), so that is reported too, and a made row is flagged when it lies closer to a real
  row than 95 % of real rows lie to their own nearest neighbour: a near copy.
- utility: a model trained on the made rows, tested on real ones ("train synthetic, test
  real"), beside the same model trained on real rows, both scored on the same real test rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.analysis._metrics import balanced_accuracy
from core.analysis._paired import compare_single_runs

__all__ = ["closest_record_distances", "closest_record_check", "synthetic_utility", "synthetic_row_checks"]

_CHUNK = 1024  # rows of `a` per block of the distance matrix: memory stays O(chunk * len(b))


def _nearest(a: np.ndarray, b: np.ndarray, *, same: bool = False) -> np.ndarray:
    """For each row of a, the Euclidean distance to its nearest row of b (itself left out
    when a and b are the same set)."""
    if len(a) == 0 or len(b) == 0:
        return np.full(len(a), np.nan)
    out, b_sq = np.empty(len(a)), (b ** 2).sum(1)[None, :]
    for start in range(0, len(a), _CHUNK):
        block = a[start:start + _CHUNK]
        d = np.sqrt(np.maximum((block ** 2).sum(1)[:, None] + b_sq - 2 * block @ b.T, 0))
        if same:
            d[np.arange(len(block)), np.arange(start, start + len(block))] = np.inf
        out[start:start + len(block)] = d.min(axis=1)
    return out


def _standardised(x: np.ndarray) -> np.ndarray:
    spread = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(spread > 0, spread, 1.0)


def closest_record_distances(real: np.ndarray, synthetic: np.ndarray, *, scale: bool = True) -> dict[str, Any]:
    """Nearest distances and their 5th percentiles: real -> made, made -> real, real -> real
    and made -> made (CTAB-GAN+'s, with the privacy direction made -> real added)."""
    real = np.unique(np.asarray(real, np.float64).reshape(len(real), -1), axis=0)
    made = np.unique(np.asarray(synthetic, np.float64).reshape(len(synthetic), -1), axis=0)
    if scale:
        real, made = _standardised(real), _standardised(made)
    dists = {"real_to_synthetic": _nearest(real, made), "synthetic_to_real": _nearest(made, real),
             "real_to_real": _nearest(real, real, same=True), "synthetic_to_synthetic": _nearest(made, made, same=True)}
    out: dict[str, Any] = {f"p5_{k}": float(np.percentile(v[np.isfinite(v)], 5)) if np.isfinite(v).any() else None
                           for k, v in dists.items()}
    return {**out, "distances": dists}


def closest_record_check(real: np.ndarray, synthetic: np.ndarray) -> dict[str, Any]:
    """Each made row's distance to its closest real row (both on the real rows' scale), and a
    flag for the made rows closer to a real row than 95 % of real rows are to their nearest
    real neighbour; with the share flagged and the threshold used."""
    real = np.asarray(real, np.float64).reshape(len(real), -1)
    made = np.asarray(synthetic, np.float64).reshape(len(synthetic), -1)
    mean, spread = real.mean(axis=0), real.std(axis=0)
    spread = np.where(spread > 0, spread, 1.0)
    r, m = (real - mean) / spread, (made - mean) / spread
    threshold = float(np.percentile(_nearest(r, r, same=True), 5)) if len(r) > 1 else 0.0
    distance = _nearest(m, r)
    flagged = distance < threshold
    return {"distance": distance, "flagged": flagged, "threshold": threshold,
            "share_flagged": float(flagged.mean()) if len(flagged) else 0.0}


def synthetic_utility(x_real: np.ndarray, y_real: np.ndarray, x_synthetic: np.ndarray, y_synthetic: np.ndarray,
                      x_test: np.ndarray, y_test: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """Balanced accuracy on the real test rows of a logistic regression trained on the real
    rows, on the made rows alone, and on both (the usual use: real rows plus made rare ones);
    and `both_vs_real`, the paired comparison of the last two on the same test rows (the one
    procedure's difference, interval, p-value and verdict): do the made rows help beyond noise?"""
    from sklearn.linear_model import LogisticRegression

    def predict(x, y) -> np.ndarray | None:
        if len(np.unique(y)) < 2:
            return None
        return LogisticRegression(max_iter=2000, random_state=seed).fit(x, y).predict(x_test)

    def score(pred) -> float:
        return float("nan") if pred is None else balanced_accuracy(pred, y_test)

    flat = [np.asarray(a, np.float64).reshape(len(a), -1) for a in (x_real, x_synthetic, x_test)]
    x_real, x_synthetic, x_test = flat
    real, made = predict(x_real, y_real), predict(x_synthetic, y_synthetic)
    both = predict(np.concatenate([x_real, x_synthetic]), np.concatenate([y_real, y_synthetic]))
    out: dict[str, Any] = {"train_real": score(real), "train_synthetic": score(made), "train_both": score(both)}
    if real is not None and both is not None and len(y_test):
        k = int(max(np.max(y_real), np.max(y_test), np.max(real), np.max(both))) + 1
        one_hot = np.eye(k, dtype=np.float32)
        out["both_vs_real"] = compare_single_runs(one_hot[both], one_hot[real], np.asarray(y_test), k,
                                                  seed=seed).to_dict()
    return out


def synthetic_row_checks(x_real: np.ndarray, y_real: np.ndarray, x_made: np.ndarray, y_made: np.ndarray,
                         x_test: np.ndarray, y_test: np.ndarray, *, made: int | None = None,
                         seed: int = 0) -> dict[str, Any]:
    """Both checks of made rows in one record (what a run stores as `synthetic_checks` and the
    Train form previews): `made` rows in all (default: those given), how many were checked,
    how many and what share are near copies of a real row (`closest_record_check`), and the
    balanced accuracy on the real test rows of models trained on real, made and both
    (`synthetic_utility`)."""
    copies = closest_record_check(x_real, x_made)
    return {"made": int(len(x_made) if made is None else made), "checked": int(len(x_made)),
            "flagged": int(copies["flagged"].sum()), "share_flagged": copies["share_flagged"],
            "threshold": copies["threshold"],
            **synthetic_utility(x_real, y_real, x_made, y_made, x_test, y_test, seed)}

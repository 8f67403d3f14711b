"""The class mix of an unlabelled batch (label shift), from a run's scores.

Both estimators lean on held-out *source* cases whose labels, and so class mix, are known:
a run's validation and test splits, carved from the data before any imbalance profile,
sampler, prior-correcting loss or two-stage fix touched it (REFERENCE.md, "Priors and
prevalence shift"); "validation" below means these cases.

- EM (Saerens et al. 2002) needs posteriors that are true under a known source prior.
  Raw scores rarely are: a network is over- or under-confident, and a balanced-softmax,
  logit-adjusted, LDAM-DRW, cRT or tau-norm run encodes a (near-)uniform prior rather than
  the training mix. Bias-corrected temperature scaling (BCTS, Alexandari et al. 2020),
  p = softmax(z / T + b) fitted by NLL on the validation split, repairs both at once: the
  per-class biases absorb whatever log-prior the run put into its scores, so the calibrated
  posteriors refer to the validation mix whatever the run did. EM's source prior is then
  the mean calibrated validation posterior (Alexandari), which at the NLL optimum equals
  the validation label shares (the bias gradient is the sum of p - y).
- BBSE (Lipton et al. 2018) needs no calibration: the joint confusion matrix of a fixed
  classifier on the validation split (rows prediction, columns truth) and the batch's
  predicted-class shares give the class weights by one linear solve. Negative weights are
  clipped to 0 and the result renormalised. Its classifier here is the *balanced* argmax of
  the calibrated scores (z / T + b - log pi_s): it predicts every class about as often as
  the class is there, so no row of the matrix is nearly empty for a rare class, which the
  plain argmax of a long-tailed model seldom names (bench settings: rare-share error mean /
  worst 0.013 / 0.041 against 0.020 / 0.120 with the plain argmax on well-separated classes;
  on heavily overlapping ones the plain argmax did better, 0.031 / 0.104 against 0.037 / 0.215).

Why not re-weight the validation cases to the training mix before calibrating: EM needs
*a* known source prior, not the training one, and re-weighting only trades effective cases
away (the rare classes, already few, weigh even less under a long-tailed training mix).

Intervals: a percentile bootstrap that resamples the validation split within each class
(its class counts are fixed by the stratified split) and the batch, refitting BCTS and the
confusion matrix per replicate, since the calibration's own noise is a large part of the
error when the validation split holds few cases of a rare class. `bench/prior_shift.py`
measures the error and the coverage; its table chose the default estimator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.analysis._metrics import _check_labels, softmax
from core.analysis._prior import _as_prior

__all__ = [
    "DEFAULT_ESTIMATOR", "ESTIMATORS", "ESTIMATOR_LABELS", "Calibration", "ShiftReference", "bbse_prior",
    "estimate_label_shift", "estimate_prior_em", "estimate_prior_interval", "fit_bcts", "fit_shift_reference",
]

# What each estimator is (the command line's and the CSV's words), and its short label for tables.
ESTIMATORS: dict[str, str] = {
    "em": "EM after bias-corrected temperature scaling (Saerens 2002, Alexandari 2020)",
    "bbse": "BBSE, black-box shift estimation (Lipton 2018)",
}
ESTIMATOR_LABELS: dict[str, str] = {"em": "EM after BCTS", "bbse": "BBSE"}
DEFAULT_ESTIMATOR = "em"  # lower mean and worst error than BBSE in every setting of bench/prior_shift.py
# Bootstrap replicates stop at this change of the prior: far below any interval's width.
_BOOT_TOL = 1e-6
# Entries of each (cases x replicates [x classes]) array per bootstrap chunk: about 32 MB apiece.
_BOOT_ELEMENTS = 4_000_000
# 1/T in [0.01, 20] (T from 0.05 to 100); fit_bcts leaves a class with no case at the bias floor.
_SCALE_BOUNDS = (0.01, 20.0)
# Bootstrap replicates of the calibration: at most this many case x class x (class + 1) products, at least 50.
_FIT_WORK, _MIN_BOOT = 50_000_000, 50
_BIAS_BOUND = 30.0


# --- calibration -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Calibration:
    """Bias-corrected temperature scaling: probabilities softmax(z / T + b)."""

    temperature: float
    bias: np.ndarray  # (K,), centred (only differences between classes matter)

    def logits(self, logits: np.ndarray) -> np.ndarray:
        return np.asarray(logits, dtype=np.float64) / self.temperature + self.bias

    def probs(self, logits: np.ndarray) -> np.ndarray:
        return softmax(self.logits(logits))


def _check_logits(logits: np.ndarray, what: str) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] == 0 or z.shape[1] == 0:
        raise ValueError(f"{what} must have shape (n, K) with n >= 1, got {z.shape}")
    if not np.all(np.isfinite(z)):
        raise ValueError(f"{what} must be finite numbers")
    return z


def _bcts_parts(x: np.ndarray, z: np.ndarray, onehot: np.ndarray, w: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For B fits at once (x (B, K+1), w (B, n) summing to 1 per fit): the w-weighted NLL of
    softmax(x[0] z + x[1:]), its gradient and Hessian in x."""
    s = x[:, :1, None] * z + x[:, None, 1:]
    top = s.max(axis=2, keepdims=True)
    p = np.exp(s - top)
    total = p.sum(axis=2)
    p /= total[..., None]
    wp = p * w[..., None]
    pz = np.einsum("bnk,nk->bn", p, z)
    wz = np.einsum("bnk,nk->bk", wp, z)
    nll = -(w * (np.einsum("bnk,nk->bn", s, onehot) - top[..., 0] - np.log(total))).sum(axis=1)
    grad = np.concatenate([((w * pz).sum(axis=1) - w @ (z * onehot).sum(axis=1))[:, None],
                           wp.sum(axis=1) - w @ onehot], axis=1)
    b, k = x.shape[0], z.shape[1]
    hess = np.empty((b, k + 1, k + 1))
    hess[:, 0, 0] = (w * (np.einsum("bnk,nk->bn", p, z * z) - pz * pz)).sum(axis=1)
    hess[:, 0, 1:] = wz - np.einsum("bnk,bn->bk", wp, pz)
    hess[:, 1:, 0] = hess[:, 0, 1:]
    hess[:, 1:, 1:] = -np.matmul(p.transpose(0, 2, 1), wp)
    hess[:, np.arange(1, k + 1), np.arange(1, k + 1)] += wp.sum(axis=1)
    return nll, grad, hess


def _projected(scale: np.ndarray, grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The gradient with its 1/T part zeroed where 1/T sits at a bound it pushes against,
    and where that happens: 1/T is then held and only the biases move."""
    held = ((scale >= _SCALE_BOUNDS[1]) & (grad[:, 0] < 0)) | ((scale <= _SCALE_BOUNDS[0]) & (grad[:, 0] > 0))
    grad = grad.copy()
    grad[held, 0] = 0.0
    return grad, held


def _bcts_fit(z: np.ndarray, onehot: np.ndarray, w: np.ndarray, start: np.ndarray,
              max_steps: int = 100) -> np.ndarray:
    """(1/T, b) minimising the w-weighted NLL, for B case weightings at once (w (B, n),
    start (B, K+1)), by Newton's method with a backtracking line search.

    In (1/T, b) the scores are linear and the softmax NLL is convex in the scores, so the
    optimum is global; Newton reaches it in a handful of steps (from a nearby fit, as the
    bootstrap's, in two or three) where L-BFGS needs hundreds of evaluations. 1/T stays
    within its bounds (T from 0.05 to 100: separable data would drive it to infinity). The
    biases' common level is fixed by holding the first present class's bias; a class with
    no weight (in any fit) is held at the floor."""
    w = w / w.sum(axis=1, keepdims=True)
    x = np.array(start, dtype=np.float64)
    present = (w @ onehot > 0).all(axis=0)
    x[:, 1:][:, ~present] = -_BIAS_BOUND
    free = np.concatenate([[True], present])
    free[1 + int(np.argmax(present))] = False
    f, g, h = _bcts_parts(x, z, onehot, w)
    active = np.arange(x.shape[0])
    for _ in range(max_steps):
        if active.size == 0:
            break
        hf = h[active][:, free][:, :, free]
        gf, held = _projected(x[active, 0], g[active][:, free])
        hf[held, 0, :], hf[held, :, 0], hf[held, 0, 0] = 0.0, 0.0, 1.0  # a Newton step on the biases alone
        step = -np.linalg.solve(hf + 1e-12 * np.eye(hf.shape[1]), gf[..., None])[..., 0]
        slope = (gf * step).sum(axis=1)
        keep = slope < -1e-16  # no way down: at the optimum to rounding
        active, step, slope = active[keep], step[keep], slope[keep]
        t, todo = 1.0, np.arange(active.size)
        stepped, small = np.zeros(active.size, dtype=bool), np.zeros(active.size, dtype=bool)
        while todo.size and t > 1e-10:
            rows = active[todo]
            cand = x[rows]
            cand[:, free] += t * step[todo]
            cand[:, 0] = np.clip(cand[:, 0], *_SCALE_BOUNDS)
            fc, gc, hc = _bcts_parts(cand, z, onehot, w[rows])
            ok = fc <= f[rows] + 1e-4 * t * slope[todo]
            small[todo[ok]] = f[rows[ok]] - fc[ok] <= 1e-15 * np.maximum(1.0, np.abs(fc[ok]))
            stepped[todo[ok]] = True
            x[rows[ok]], f[rows[ok]], g[rows[ok]], h[rows[ok]] = cand[ok], fc[ok], gc[ok], hc[ok]
            todo, t = todo[~ok], t / 2
        flat = np.abs(_projected(x[active, 0], g[active][:, free])[0]).max(axis=1) < 1e-10
        active = active[stepped & ~small & ~flat]
    return x


def fit_bcts(logits: np.ndarray, labels: np.ndarray, *, weights: np.ndarray | None = None) -> Calibration:
    """BCTS (Alexandari et al. 2020) fitted by (optionally case-weighted) NLL on held-out
    source data, from T = 1, b = 0. The biases are centred; a class absent from `labels`
    ends at the bias floor (its probability all but 0), as nothing says how common it is."""
    z = _check_logits(logits, "logits")
    y = _check_labels(labels, z.shape[0], z.shape[1])
    w = np.ones(z.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (z.shape[0],) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("weights must be one non-negative number per case, not all zero")
    x = _bcts_fit(z, np.eye(z.shape[1])[y], w[None], np.concatenate([[1.0], np.zeros(z.shape[1])])[None])[0]
    return Calibration(float(1.0 / x[0]), x[1:] - x[1:].mean())


# --- BBSE ------------------------------------------------------------------------------------

def bbse_prior(confusion: np.ndarray, batch_shares: np.ndarray) -> dict:
    """BBSE (Lipton et al. 2018): solve C w = mu for the class weights w, with C the joint
    confusion matrix on source data (rows prediction, columns truth, summing to 1) and mu the
    batch's predicted-class shares; q = w * (source shares, C's column sums), negative
    weights clipped to 0, renormalised. A singular C is solved by its pseudo-inverse.
    Stacked inputs ((..., K, K) and (..., K)) are solved one by one. Keys: prior, weights."""
    c = np.asarray(confusion, dtype=np.float64)
    mu = np.asarray(batch_shares, dtype=np.float64)
    if c.ndim < 2 or c.shape[-1] != c.shape[-2] or mu.shape != c.shape[:-1]:
        raise ValueError(f"confusion must be (..., K, K) and batch_shares (..., K); got {c.shape} and {mu.shape}")
    w = (np.linalg.pinv(c) @ mu[..., None])[..., 0]
    source = c.sum(axis=-2)
    q = np.clip(w, 0.0, None) * source
    total = q.sum(axis=-1, keepdims=True)
    # every weight clipped (a batch unlike the source in every class): fall back to the source mix
    q = np.where(total > 0, q / np.where(total > 0, total, 1.0), source / source.sum(axis=-1, keepdims=True))
    return {"prior": q, "weights": w}


def _joint_confusion(pred: np.ndarray, onehot: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(R, K, K): the w-weighted share of cases with prediction i (rows) and truth j (columns)."""
    joint = np.einsum("rni,rn,nj->rij", np.eye(onehot.shape[1])[pred], w, onehot)
    return joint / w.sum(axis=1)[:, None, None]


# --- EM --------------------------------------------------------------------------------------

def _check_probs(probs: np.ndarray, train_prior) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"probs must have shape (n, K) with n >= 1, got {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError("probabilities must be finite and non-negative")
    rows = p.sum(axis=1, keepdims=True)
    if np.any(rows <= 0):
        raise ValueError("a case has all probabilities zero")
    train = np.maximum(_as_prior(train_prior, p.shape[1]), 1e-12)
    return p / rows, train / train.sum()


def estimate_prior_em(
    probs: np.ndarray, train_prior: Sequence[float] | np.ndarray, *, max_iter: int = 10_000, tol: float = 1e-8
) -> dict:
    """The class prior of an unlabelled batch by EM (Saerens et al. 2002): adjust the
    posteriors to the current prior, take their mean as the next prior, repeat.

    The fixed point is the maximum-likelihood prior, provided `probs` are calibrated under
    `train_prior` (`fit_bcts` on source data, whose mean calibrated posterior is then the
    prior to pass). `probs` in the result are the posteriors adjusted to the estimated
    prior; `converged` says whether the prior moved less than `tol` (max abs) within
    `max_iter` steps.
    """
    p, train = _check_probs(probs, train_prior)
    prior, iterations, converged = _em(p, train, train[:, None], max_iter, tol)
    prior = prior[:, 0]
    adjusted = p * (prior / train)
    adjusted /= adjusted.sum(axis=1, keepdims=True)
    return {"prior": prior, "probs": adjusted, "iterations": int(iterations), "converged": bool(converged)}


def _em(
    p: np.ndarray, train: np.ndarray, start: np.ndarray, max_iter: int, tol: float,
    case_weights: np.ndarray | None = None,
) -> tuple[np.ndarray, int, bool]:
    """EM for several problems at once: `start` (K, B) priors, `case_weights` (n, B) counts
    of each case in each problem (None: every case once). Each step is two matrix products
    over the cases; problems that have converged drop out."""
    if max_iter < 1:
        raise ValueError("max_iter must be at least 1")
    n = p.shape[0]
    prior = np.array(start, dtype=np.float64)
    active = np.arange(prior.shape[1])
    mass = n if case_weights is None else case_weights.sum(axis=0)
    for step in range(1, max_iter + 1):
        ratio = prior[:, active] / train[:, None]
        evidence = p @ ratio  # (n, B): sum_k p_ik pi_k / t_k
        share = 1.0 / evidence if case_weights is None else case_weights[:, active] / evidence
        m = mass if case_weights is None else mass[active]
        new = ratio * (p.T @ share) / m
        moved = np.abs(new - prior[:, active]).max(axis=0)
        prior[:, active] = new
        active = active[moved >= tol]
        if active.size == 0:
            return prior, step, True
    return prior, max_iter, False


def _em_stacked(p: np.ndarray, source: np.ndarray, start: np.ndarray, counts: np.ndarray,
                max_iter: int = 1000, tol: float = _BOOT_TOL) -> np.ndarray:
    """EM for B problems with their own posteriors: `p` (B, n, K) calibrated under `source`
    (B, K), `counts` (B, n) case weights, `start` (B, K). Converged problems drop out."""
    prior = np.array(start, dtype=np.float64)
    mass = counts.sum(axis=1)
    source = np.where(source > 0, source, 1.0)  # a class of source share 0 has prior 0: ratio 0
    active = np.arange(prior.shape[0])
    for _ in range(max_iter):
        ratio = prior[active] / source[active]
        pa = p[active]
        evidence = np.einsum("bnk,bk->bn", pa, ratio)
        new = ratio * np.einsum("bnk,bn->bk", pa, counts[active] / evidence) / mass[active, None]
        moved = np.abs(new - prior[active]).max(axis=1)
        prior[active] = new
        active = active[moved >= tol]
        if active.size == 0:
            break
    return prior


def estimate_prior_interval(
    probs: np.ndarray,
    train_prior: Sequence[float] | np.ndarray,
    *,
    n_boot: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict:
    """EM prior with a percentile bootstrap interval per class over the batch's cases only
    (the calibration taken as exact; `estimate_label_shift` also resamples its cases).

    A replicate is the batch with multinomial case counts, so all replicates run as one EM
    over a (cases x replicates) count matrix, each started from the full-batch estimate.
    Extra keys: iterations and converged of the point estimate, n_boot, confidence."""
    if n_boot < 1 or not 0 < confidence < 1:
        raise ValueError("n_boot must be at least 1 and confidence strictly between 0 and 1")
    p, train = _check_probs(probs, train_prior)
    point = estimate_prior_em(p, train)
    n = p.shape[0]
    rng = np.random.default_rng(seed)
    batch = max(1, _BOOT_ELEMENTS // n)
    replicates = []
    for start in range(0, n_boot, batch):
        b = min(batch, n_boot - start)
        counts = _multinomial_counts(rng, n, b).T
        begin = np.repeat(point["prior"][:, None], b, axis=1)
        est, _, _ = _em(p, train, begin, 1000, _BOOT_TOL, counts.astype(np.float64))
        replicates.append(est)
    low, high = _percentiles(np.concatenate(replicates, axis=1).T, confidence)
    return {
        "prior": point["prior"], "low": low, "high": high,
        "iterations": point["iterations"], "converged": point["converged"],
        "n_boot": int(n_boot), "confidence": float(confidence),
    }


def _multinomial_counts(rng: np.random.Generator, n: int, b: int) -> np.ndarray:
    """(b, n): how often each of n cases is drawn in each of b resamples of size n."""
    draws = rng.integers(0, n, (b, n)) + (np.arange(b) * n)[:, None]
    return np.bincount(draws.ravel(), minlength=b * n).reshape(b, n)


def _percentiles(boot: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    alpha = 1 - confidence
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2], axis=0)
    return low, high


# --- the reference: the validation split, fitted once per run --------------------------------

@dataclass(frozen=True)
class ShiftReference:
    """What the validation split says about a model's scores, fitted once per run and
    reused for every batch: BCTS, the source prior, BBSE's confusion matrix, and the same
    three for each bootstrap replicate of the split (`boot_*`, replicate first). A class
    with no case in the split has bias -inf: probability, source share and estimate 0."""

    calibration: Calibration
    source_prior: np.ndarray  # (K,) mean calibrated validation posterior
    confusion: np.ndarray  # (K, K) joint, rows = BBSE's prediction, columns = truth
    val_counts: np.ndarray  # (K,) validation cases per class
    boot_scale: np.ndarray  # (R,) 1 / T
    boot_bias: np.ndarray  # (R, K)
    boot_source: np.ndarray  # (R, K)
    boot_confusion: np.ndarray  # (R, K, K)

    @property
    def num_classes(self) -> int:
        return int(self.source_prior.shape[0])

    @property
    def n_boot(self) -> int:
        return int(self.boot_scale.shape[0])


def _balanced_predictions(scores: np.ndarray, source: np.ndarray) -> np.ndarray:
    """BBSE's classifier: the argmax of the calibrated scores with the source prior divided
    out; a class with no validation case (source share ~0) is never predicted."""
    with np.errstate(divide="ignore"):
        log_source = np.where(source > 1e-9, np.log(source), np.inf)
    return np.argmax(scores - log_source[..., None, :], axis=-1)


def fit_shift_reference(val_logits: np.ndarray, val_labels: np.ndarray, *, n_boot: int = 200,
                        seed: int = 0) -> ShiftReference:
    """Fit BCTS on held-out source cases with known labels (predict passes the validation
    and test splits together), and again on `n_boot` replicates resampled within each class
    (warm-started from the full fit), each with its source prior and BBSE confusion matrix.

    A replicate's Newton steps cost cases x K x (K + 1); a large run (many classes and cases)
    gets fewer replicates, never below 50, to keep the fit within seconds: `n_boot` of the
    reference (and of each estimate) says how many were drawn."""
    z = _check_logits(val_logits, "validation logits")
    k = z.shape[1]
    y = _check_labels(val_labels, z.shape[0], k)
    if n_boot < 1:
        raise ValueError("n_boot must be at least 1")
    n_boot = min(n_boot, max(_MIN_BOOT, _FIT_WORK // (len(y) * k * (k + 1))))
    onehot = np.eye(k)[y]
    ones = np.full((1, len(y)), 1.0 / len(y))
    point = _bcts_fit(z, onehot, ones, np.concatenate([[1.0], np.zeros(k)])[None])
    rng = np.random.default_rng(seed)
    weights = np.zeros((n_boot, len(y)))
    for idx in (np.flatnonzero(y == c) for c in range(k)):  # within each class: its count is fixed by the split
        if idx.size:
            draws = idx[rng.integers(0, idx.size, (n_boot, idx.size))] + (np.arange(n_boot) * len(y))[:, None]
            weights += np.bincount(draws.ravel(), minlength=n_boot * len(y)).reshape(n_boot, len(y))
    weights /= weights.sum(axis=1, keepdims=True)
    chunk = max(1, _BOOT_ELEMENTS // (len(y) * k))
    fits = np.vstack([point] + [_bcts_fit(z, onehot, weights[r:r + chunk], np.repeat(point, min(chunk, n_boot - r), 0))
                                for r in range(0, n_boot, chunk)])
    counts = np.bincount(y, minlength=k)
    seen = counts > 0
    scale, bias = fits[:, 0], fits[:, 1:]
    # a class with no case here gets probability exactly 0 (its share cannot be estimated)
    bias = np.where(seen, bias - bias[:, seen].mean(axis=1, keepdims=True), -np.inf)
    w_all = np.vstack([ones, weights])
    source, confusion = np.empty((n_boot + 1, k)), np.empty((n_boot + 1, k, k))
    for r in range(0, n_boot + 1, chunk):
        part = slice(r, min(r + chunk, n_boot + 1))
        scores = scale[part, None, None] * z[None] + bias[part, None, :]
        source[part] = np.einsum("rn,rnk->rk", w_all[part], softmax(scores))
        pred = _balanced_predictions(scores, source[part])
        confusion[part] = _joint_confusion(pred, onehot, w_all[part])
    return ShiftReference(
        calibration=Calibration(float(1.0 / scale[0]), bias[0]), source_prior=source[0], confusion=confusion[0],
        val_counts=counts, boot_scale=scale[1:], boot_bias=bias[1:], boot_source=source[1:],
        boot_confusion=confusion[1:])


# --- the estimate ----------------------------------------------------------------------------

def _both(z: np.ndarray, scale, bias, source, confusion, counts, start) -> tuple[np.ndarray, np.ndarray]:
    """EM and BBSE priors for B calibrations at once (leading axis B): `counts` (B, n)."""
    scores = scale[:, None, None] * z[None] + bias[:, None, :]
    p = softmax(scores)
    em = _em_stacked(p, source, start, counts)
    pred = _balanced_predictions(scores, source)
    k = z.shape[1]
    mu = np.stack([np.bincount(row, weights=c, minlength=k) for row, c in zip(pred, counts)])
    return em, bbse_prior(confusion, mu / mu.sum(axis=1, keepdims=True))["prior"]


def estimate_label_shift(reference: ShiftReference, batch_logits: np.ndarray, *, confidence: float = 0.95,
                         seed: int = 0, method: str = DEFAULT_ESTIMATOR) -> dict:
    """The class mix of a batch by EM after BCTS and by BBSE, each with a percentile
    bootstrap interval over the reference's validation replicates and the batch's cases
    resampled with them (replicate r pairs validation replicate r with a batch resample).

    Keys: method (the estimator whose numbers are "prior", "low", "high"), prior, low, high,
    estimates ({"em": ..., "bbse": ...}, each prior / low / high), probs (the batch's
    calibrated posteriors), adjusted (the same moved to `method`'s estimate), source_prior,
    temperature, bias, absent (classes the estimate puts at fewer than half a case),
    unseen (classes with no validation case: their share cannot be estimated),
    converged, iterations (of the point EM), n_cases, n_val, n_boot, confidence.
    An interval is widened to hold its point estimate where the bootstrap is lopsided.
    """
    if method not in ESTIMATORS:
        raise ValueError(f"unknown estimator {method!r}; choose one of {', '.join(ESTIMATORS)}")
    if not 0 < confidence < 1:
        raise ValueError("confidence must lie strictly between 0 and 1")
    z = _check_logits(batch_logits, "batch logits")
    k, n = reference.num_classes, z.shape[0]
    if z.shape[1] != k:
        raise ValueError(f"batch logits have {z.shape[1]} classes, the reference {k}")
    cal, source = reference.calibration, reference.source_prior
    probs = cal.probs(z)
    point_em = estimate_prior_em(probs, source)
    scores = cal.logits(z)
    mu = np.bincount(_balanced_predictions(scores, source), minlength=k) / n
    point = {"em": point_em["prior"], "bbse": bbse_prior(reference.confusion, mu)["prior"]}
    rng = np.random.default_rng(seed)
    boot: dict[str, list[np.ndarray]] = {"em": [], "bbse": []}
    chunk = max(1, _BOOT_ELEMENTS // (n * k))
    for start in range(0, reference.n_boot, chunk):
        r = slice(start, min(start + chunk, reference.n_boot))
        b = r.stop - r.start
        em, bb = _both(z, reference.boot_scale[r], reference.boot_bias[r], reference.boot_source[r],
                       reference.boot_confusion[r], _multinomial_counts(rng, n, b).astype(np.float64),
                       np.repeat(point["em"][None], b, axis=0))
        boot["em"].append(em)
        boot["bbse"].append(bb)
    estimates = {}
    for name, value in point.items():
        low, high = _percentiles(np.concatenate(boot[name]), confidence)
        estimates[name] = {"prior": value, "low": np.minimum(low, value), "high": np.maximum(high, value)}
    chosen = estimates[method]
    adjusted = probs * (chosen["prior"] / np.maximum(source, 1e-12))
    adjusted /= adjusted.sum(axis=1, keepdims=True)
    return {
        "method": method, **chosen, "estimates": estimates, "probs": probs, "adjusted": adjusted,
        "source_prior": source, "temperature": cal.temperature, "bias": cal.bias,
        "absent": chosen["prior"] * n < 0.5, "unseen": reference.val_counts == 0,
        "converged": point_em["converged"], "iterations": point_em["iterations"],
        "n_cases": int(n), "n_val": int(reference.val_counts.sum()), "n_boot": reference.n_boot,
        "confidence": float(confidence),
    }

"""Models for ordered stages whose last stage is rare (seen -> clicked -> bought; mild ->
severe -> fatal), following Faletto & Bien, "Predicting Rare Events by Shrinking Towards
Proportional Odds" (PRESTO, ICML 2023).

All three are cumulative-logit models for K stages in class-index order:
P(Y <= k | x) = sigmoid(alpha_k + x beta_k), k = 1..K-1, so the rarest, last stage has
P(Y = K | x) = 1 - sigmoid(alpha_{K-1} + x beta_{K-1}).

- proportional odds: one weight vector for every boundary (beta_k = beta), the classic
  ordinal model (statsmodels' OrderedModel fits the same with the opposite sign);
- separate logistic regressions: one unpenalised logistic regression per boundary,
  1{Y <= k} against x, each learning only from its own split of the stages;
- PRESTO: a weight vector per boundary, written beta_k = beta_1 + psi_2 + ... + psi_k, with
  an L1 penalty lambda x sum |psi| on the differences between adjacent boundaries. A large
  lambda sets every difference to zero (proportional odds); lambda = 0 leaves the boundaries
  free (the analogue of separate regressions); lambda is chosen by 5-fold cross-validation
  over 20 values from lambda_max down to 0.01 lambda_max, the largest with the lowest mean
  out-of-fold Brier score of the last stage, as the paper's code does. The paper's code also
  shrinks beta_1 with the same lambda (a large lambda then gives an intercept-only model);
  `penalise_first` does that, off by default so that the model moves between the two
  references the paper compares it with.

They fit on standardised inputs (the penalty treats every feature alike) with a proximal
gradient method (FISTA with backtracking), in numpy: these are table models of a few
thousand rows. Registered as table baselines with `ordinal=True`: they need data whose label
is marked ordinal (`data.ordinal`, or a built-in ordinal set).
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field

from core.models._baselines import BASELINE_FAMILY
from core.models._models import MODELS
from core.registry import Params

__all__ = ["OrdinalLogit", "SeparateLogits", "cumulative_probabilities", "fit_cumulative", "presto_penalty"]

CV_ITERATIONS = 100  # per lambda of a fold's warm-started path: enough to rank the lambdas
_FLOOR = 1e-12  # a stage probability the model gets (or crosses to) zero keeps a finite log


def cumulative_probabilities(alpha: np.ndarray, betas: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(n, K) stage probabilities: differences of sigmoid(alpha_k + x beta_k), k = 1..K-1.
    `betas` is (features, K-1). Boundaries that cross give negative differences; they are
    clipped at 0 and the rows renormalised (the last stage's probability is never affected
    by that clipping unless its own boundary crosses the one before it)."""
    cum = 1 / (1 + np.exp(-(alpha[None, :] + np.asarray(x, np.float64) @ betas)))
    edges = np.concatenate([np.zeros((len(cum), 1)), cum, np.ones((len(cum), 1))], axis=1)
    p = np.clip(np.diff(edges, axis=1), 0, None)
    return p / np.maximum(p.sum(axis=1, keepdims=True), _FLOOR)


def presto_penalty(betas: np.ndarray, lam: float, penalise_first: bool = True) -> float:
    """lambda x (sum |beta_1| + sum over k >= 2 of |beta_k - beta_{k-1}|), summed over features."""
    diffs = np.abs(np.diff(betas, axis=1)).sum()
    return float(lam * (diffs + (np.abs(betas[:, 0]).sum() if penalise_first else 0.0)))


def _nll(alpha, blocks, x, y) -> float:
    """Mean negative log-likelihood alone (the line search needs no gradient)."""
    m = len(alpha)
    cum = 1 / (1 + np.exp(-(alpha[None, :] + x @ np.cumsum(blocks, axis=1))))
    rows = np.arange(len(y))
    upper = np.where(y < m, cum[rows, np.minimum(y, m - 1)], 1.0)
    lower = np.where(y > 0, cum[rows, np.maximum(y - 1, 0)], 0.0)
    return float(-np.log(np.maximum(upper - lower, _FLOOR)).mean())


def _nll_and_gradient(alpha, blocks, x, y) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean negative log-likelihood and its gradient in (alpha, blocks), blocks[:, 0] = beta_1,
    blocks[:, j] = psi_{j+1}."""
    n, m = len(y), len(alpha)
    cum = 1 / (1 + np.exp(-(alpha[None, :] + x @ np.cumsum(blocks, axis=1))))
    upper = np.where(y < m, cum[np.arange(n), np.minimum(y, m - 1)], 1.0)
    lower = np.where(y > 0, cum[np.arange(n), np.maximum(y - 1, 0)], 0.0)
    p = np.maximum(upper - lower, _FLOOR)
    slope = cum * (1 - cum)
    g = np.zeros((n, m))
    rows = np.arange(n)
    up, low = y < m, y > 0
    g[rows[up], y[up]] -= slope[rows[up], y[up]] / p[up] / n
    g[rows[low], y[low] - 1] += slope[rows[low], y[low] - 1] / p[low] / n
    grad_beta = x.T @ g
    grad_blocks = np.cumsum(grad_beta[:, ::-1], axis=1)[:, ::-1]  # d/d psi_j: every beta_k with k >= j
    return float(-np.log(p).mean()), g.sum(axis=0), grad_blocks


def _prox(blocks: np.ndarray, threshold: float, penalised: np.ndarray) -> np.ndarray:
    """Soft-thresholding of the penalised columns; an infinite threshold keeps them at zero."""
    out = blocks.copy()
    cols = out[:, penalised]
    out[:, penalised] = 0.0 if math.isinf(threshold) else np.sign(cols) * np.maximum(np.abs(cols) - threshold, 0)
    return out


def fit_cumulative(x: np.ndarray, y: np.ndarray, stages: int, lam: float, *, penalise_first: bool = False,
                   start: tuple[np.ndarray, np.ndarray] | None = None, max_iter: int = 3000,
                   tol: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
    """(alpha, betas) minimising mean NLL + lam x penalty by FISTA with backtracking (momentum
    restarted when the objective rises), until no parameter moves by more than `tol` in a
    step. lam = inf fixes every difference at zero (proportional odds; with `penalise_first`,
    beta_1 too)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.int64)
    m, d = stages - 1, x.shape[1]
    penalised = np.zeros(m, bool)
    penalised[1:] = True
    penalised[0] = penalise_first
    if start is None:
        share = np.clip(np.cumsum(np.bincount(y, minlength=stages))[:m] / len(y), 1e-3, 1 - 1e-3)
        alpha, blocks = np.log(share / (1 - share)), np.zeros((d, m))
    else:
        alpha, betas = start
        blocks = np.concatenate([betas[:, :1], np.diff(betas, axis=1)], axis=1)
    blocks = _prox(blocks, math.inf, penalised) if math.isinf(lam) else blocks

    def penalty(b):
        return 0.0 if math.isinf(lam) else lam * np.abs(b[:, penalised]).sum()

    a_prev, b_prev, a_y, b_y, t, step = alpha, blocks, alpha, blocks, 1.0, 1.0
    last = _nll(alpha, blocks, x, y) + penalty(blocks)
    for _ in range(max_iter):
        f_y, g_a, g_b = _nll_and_gradient(a_y, b_y, x, y)
        while True:  # backtracking on the smooth part
            a_new = a_y - step * g_a
            b_new = _prox(b_y - step * g_b, step * lam, penalised)
            da, db = a_new - a_y, b_new - b_y
            f_new = _nll(a_new, b_new, x, y)
            if f_new <= f_y + g_a @ da + (g_b * db).sum() + ((da ** 2).sum() + (db ** 2).sum()) / (2 * step) + 1e-12 \
                    or step < 1e-10:
                break
            step *= 0.5
        moved = max(np.abs(a_new - a_prev).max(), np.abs(b_new - b_prev).max() if b_new.size else 0.0)
        t_next = (1 + math.sqrt(1 + 4 * t * t)) / 2
        a_y = a_new + (t - 1) / t_next * (a_new - a_prev)
        b_y = b_new + (t - 1) / t_next * (b_new - b_prev)
        a_prev, b_prev, t = a_new, b_new, t_next
        current = f_new + penalty(b_new)
        if current > last:  # restart the momentum when it overshoots
            a_y, b_y, t = a_new, b_new, 1.0
        last = current
        if moved <= tol:
            break
    return a_prev, np.cumsum(b_prev, axis=1)


def lambda_max(x: np.ndarray, y: np.ndarray, stages: int, penalise_first: bool = False) -> tuple[float, tuple]:
    """The smallest lambda at which every penalised coordinate stays zero (the largest
    absolute gradient there), and the fit at that lambda (a warm start for the path)."""
    fit = fit_cumulative(x, y, stages, math.inf, penalise_first=penalise_first)
    alpha, betas = fit
    blocks = np.concatenate([betas[:, :1], np.diff(betas, axis=1)], axis=1)
    grad = _nll_and_gradient(alpha, blocks, np.asarray(x, np.float64), np.asarray(y, np.int64))[2]
    penalised = grad[:, 1:] if not penalise_first else grad
    return float(np.abs(penalised).max()) if penalised.size else 0.0, fit


def rare_brier(p_last: np.ndarray, y: np.ndarray, stages: int) -> float:
    """Brier score of the last stage: mean (P(Y = K) - 1{Y = K})^2."""
    return float(np.mean((p_last - (np.asarray(y) == stages - 1)) ** 2))


def choose_penalty(x: np.ndarray, y: np.ndarray, stages: int, *, folds: int, n_lambdas: int, ratio: float,
                   penalise_first: bool, seed: int) -> tuple[float, np.ndarray, np.ndarray]:
    """(chosen lambda, the grid, mean out-of-fold Brier score of the last stage per lambda):
    K-fold cross-validation over a geometric grid from lambda_max down to ratio x lambda_max,
    each fold's path warm-started from the largest lambda; the largest lambda with the
    lowest mean score wins."""
    from sklearn.model_selection import StratifiedKFold

    top, _ = lambda_max(x, y, stages, penalise_first)
    grid = np.geomspace(max(top, 1e-8), max(top, 1e-8) * ratio, n_lambdas)
    present = np.bincount(y, minlength=stages)
    splits = min(folds, int(present[present > 0].min()))
    scores = np.zeros((max(splits, 1), n_lambdas))
    if splits < 2:  # a stage too rare to split: the largest lambda
        return float(grid[0]), grid, scores.mean(axis=0)
    for f, (fit_rows, held) in enumerate(StratifiedKFold(splits, shuffle=True, random_state=seed).split(x, y)):
        start = None
        for j, lam in enumerate(grid):
            start = fit_cumulative(x[fit_rows], y[fit_rows], stages, lam, penalise_first=penalise_first, start=start,
                                   max_iter=CV_ITERATIONS, tol=1e-6)
            scores[f, j] = rare_brier(cumulative_probabilities(*start, x[held])[:, -1], y[held], stages)
    mean = scores.mean(axis=0)
    best = int(np.flatnonzero(mean <= mean.min() + 1e-12)[0])  # the grid runs from largest to smallest
    return float(grid[best]), grid, mean


class _Standardised:
    """Inputs standardised with the fitted rows' mean and spread; classes are the stages seen."""

    def _scale(self, x: np.ndarray, fit: bool = False) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if fit:
            self.mean_, self.scale_ = x.mean(axis=0), np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
        return (x - self.mean_) / self.scale_

    def _stages(self, y: np.ndarray) -> np.ndarray:
        self.classes_ = np.unique(y)
        return np.searchsorted(self.classes_, y)


class OrdinalLogit(_Standardised):
    """Cumulative logit with a weight vector per boundary and an L1 penalty on their
    differences (PRESTO); `penalty=inf` is proportional odds, None chooses it by CV."""

    def __init__(self, *, penalty: float | None = None, penalise_first: bool = False, folds: int = 5,
                 n_lambdas: int = 20, ratio: float = 0.01, seed: int = 0):
        self.penalty, self.penalise_first, self.folds = penalty, penalise_first, folds
        self.n_lambdas, self.ratio, self.seed = n_lambdas, ratio, seed

    def fit(self, x: np.ndarray, y: np.ndarray) -> OrdinalLogit:
        z, stages = self._scale(x, fit=True), self._stages(y)
        k = len(self.classes_)
        if k < 2:
            raise ValueError("an ordinal model needs at least two stages in the training rows")
        self.cv_ = None
        lam = self.penalty
        if lam is None:
            lam, grid, scores = choose_penalty(z, stages, k, folds=self.folds, n_lambdas=self.n_lambdas,
                                               ratio=self.ratio, penalise_first=self.penalise_first, seed=self.seed)
            self.cv_ = {"lambdas": grid.tolist(), "brier": scores.tolist()}
        self.penalty_ = lam
        self.alpha_, self.betas_ = fit_cumulative(z, stages, k, lam, penalise_first=self.penalise_first)
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return cumulative_probabilities(self.alpha_, self.betas_, self._scale(x))


class SeparateLogits(_Standardised):
    """One unpenalised logistic regression of 1{Y <= k} per boundary; stage probabilities are
    the differences, clipped at zero where the boundaries cross and renormalised."""

    def __init__(self, *, max_iter: int = 2000, seed: int = 0):
        self.max_iter, self.seed = max_iter, seed

    def fit(self, x: np.ndarray, y: np.ndarray) -> SeparateLogits:
        from sklearn.linear_model import LogisticRegression

        z, stages = self._scale(x, fit=True), self._stages(y)
        models = [LogisticRegression(C=np.inf, max_iter=self.max_iter).fit(z, (stages <= k).astype(int))
                  for k in range(len(self.classes_) - 1)]
        self.alpha_ = np.array([m.intercept_[0] for m in models])
        self.betas_ = np.stack([m.coef_[0] for m in models], axis=1)
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return cumulative_probabilities(self.alpha_, self.betas_, self._scale(x))


class PrestoParams(Params):
    penalty: float | None = Field(None, ge=0, le=1e6, title="Penalty on boundary differences (lambda)",
                                  description="How strongly adjacent boundaries' weights are pulled together: large "
                                              "is proportional odds, 0 leaves every boundary free; empty: chosen by "
                                              "5-fold cross-validation on the last stage's Brier score.")
    penalise_first: bool = Field(False, title="Also shrink the first boundary's weights",
                                 description="As the paper's released code: the first boundary's weights take the "
                                             "same penalty, so a large one gives a model with no features.")
    n_lambdas: int = Field(20, ge=2, le=100, title="Penalties tried",
                           description="Values of lambda cross-validation compares, from the largest down to a "
                                       "hundredth of it.")


class SeparateParams(Params):
    max_iter: int = Field(2000, ge=10, le=100_000, title="Solver iterations",
                          description="Upper limit on each regression's fitting steps.")


_ORDINAL = {"modality": ("tabular",), "family": BASELINE_FAMILY, "ordinal": True}


@MODELS.register("proportional_odds", display="Proportional odds (ordinal)",
                 description="Ordered stages: one weight vector for every boundary between stages, so the common "
                             "early stages inform the rare last one.",
                 paper="McCullagh 1980, Regression Models for Ordinal Data (JRSS B)", **_ORDINAL)
def proportional_odds(*, seed: int = 0, **_) -> OrdinalLogit:
    return OrdinalLogit(penalty=math.inf, seed=seed)


@MODELS.register("presto", display="PRESTO (ordinal, rare last stage)",
                 description="Ordered stages: a weight vector per boundary, the differences between adjacent "
                             "boundaries shrunk towards zero (towards proportional odds) by a penalty chosen by "
                             "cross-validation.",
                 paper="Faletto & Bien, ICML 2023, Predicting Rare Events by Shrinking Towards Proportional Odds",
                 params=PrestoParams, **_ORDINAL)
def presto(*, penalty: float | None, penalise_first: bool, n_lambdas: int, seed: int = 0, **_) -> OrdinalLogit:
    return OrdinalLogit(penalty=penalty, penalise_first=penalise_first, n_lambdas=n_lambdas, seed=seed)


@MODELS.register("separate_logits", display="Separate logistic regressions (ordinal)",
                 description="Ordered stages: one logistic regression per boundary (stage k or earlier against "
                             "later), each learning only from its own split of the stages.",
                 paper="Faletto & Bien, ICML 2023 (the baseline PRESTO is compared with)",
                 params=SeparateParams, **_ORDINAL)
def separate_logits(*, max_iter: int, seed: int = 0, **_) -> SeparateLogits:
    return SeparateLogits(max_iter=max_iter, seed=seed)

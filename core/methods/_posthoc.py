"""Post-hoc adjustments of a finished run's logits (`POSTHOC`).

Each entry is a pure function ``adjust(artifacts, *, split="test", **params) -> logits``
of the stored :class:`~core.artifacts.EvalArtifacts`: numpy in, numpy out, no model and no
torch, so a page can re-score a run instantly. ``split="val"`` applies the same rule to
the validation logits, which is how parameters are chosen without touching the test set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field
from scipy.optimize import minimize_scalar

from core.artifacts import EvalArtifacts
from core.registry import Params, Registry

__all__ = [
    "POSTHOC", "apply_posthoc", "list_posthoc",
    "logit_adjustment", "prior_threshold", "tau_norm", "temperature",
    "select_tau_norm", "TauSweep", "fit_temperature", "TAU_NORM_GRID", "log_prior",
]

Split = Literal["test", "val"]
POSTHOC: Registry[Callable[..., np.ndarray]] = Registry("post-hoc adjustment")
TAU_NORM_GRID = np.linspace(0.0, 2.0, 21)
_T_MIN, _T_MAX = 0.05, 10.0


# ---------------------------------------------------------------------------- helpers

def _logits(artifacts: EvalArtifacts, split: Split) -> np.ndarray:
    if split == "test":
        z = artifacts.logits
    elif split == "val":
        z = artifacts.val_logits
    else:
        raise ValueError(f"split must be 'test' or 'val', got {split!r}")
    z = np.asarray(z)
    return z if np.issubdtype(z.dtype, np.floating) else z.astype(np.float64)


def _features(artifacts: EvalArtifacts, split: Split) -> np.ndarray:
    if split not in ("test", "val"):
        raise ValueError(f"split must be 'test' or 'val', got {split!r}")
    return np.asarray(artifacts.features if split == "test" else artifacts.val_features)


def log_prior(artifacts: EvalArtifacts) -> np.ndarray:
    """log pi_j of the prior the model trained under (after any sampler or resampler, so a
    balanced training is not corrected twice); an absent class counts as one sample so
    the shift stays finite."""
    floor = 1.0 / max(float(np.sum(artifacts.class_counts)), 1.0)
    prior = np.maximum(np.asarray(artifacts.trained_prior, dtype=np.float64), floor)
    return np.log(prior / prior.sum())


def _log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _balanced_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean recall over the classes present in ``labels``."""
    labels = np.asarray(labels)
    hit = np.argmax(logits, axis=1) == labels
    k = max(int(labels.max()) + 1, logits.shape[1])
    correct = np.bincount(labels, weights=hit, minlength=k)
    support = np.bincount(labels, minlength=k)
    present = support > 0
    return float((correct[present] / support[present]).mean())


# ---------------------------------------------------------------------------- params

class LogitAdjustmentParams(Params):
    tau: float = Field(1.0, ge=0.0, le=5.0,
                       title="Adjustment strength (tau)",
                       description="How much each class's training share is taken off its score; 1 targets "
                                   "balanced error, 0 changes nothing.")


class TauNormParams(Params):
    tau: float = Field(1.0, ge=0.0, le=5.0,
                       title="Normalisation strength (tau)",
                       description="Divide each class's classifier weights by their length to this power; 0 "
                                   "changes nothing.")


class TemperatureParams(Params):
    T: float | None = Field(None, ge=_T_MIN, le=_T_MAX,
                            title="Temperature (T)",
                            description="Scores are divided by T (above 1 softens, below 1 sharpens); empty fits "
                                        "it on validation data.")


# ---------------------------------------------------------------------------- entries

@POSTHOC.register(
    "logit_adjustment", display="Logit adjustment",
    description="Lowers each class's score by tau x log(its share in training), so rare classes need less evidence "
                "to win.",
    paper="Menon et al., ICLR 2021, Long-Tail Learning via Logit Adjustment",
    params=LogitAdjustmentParams, changes_prediction=True,
)
def logit_adjustment(artifacts: EvalArtifacts, *, split: Split = "test", tau: float = 1.0) -> np.ndarray:
    z = _logits(artifacts, split)
    return (z - tau * log_prior(artifacts)).astype(z.dtype, copy=False)


@POSTHOC.register(
    "prior_threshold", display="Prior thresholding",
    description="Divides each class's probability by its share in training, so common classes lose their "
                "built-in advantage.",
    paper="Buda et al., Neural Networks 2018, A systematic study of the class imbalance problem in "
          "convolutional neural networks",
    changes_prediction=True,
)
def prior_threshold(artifacts: EvalArtifacts, *, split: Split = "test") -> np.ndarray:
    z = _logits(artifacts, split)
    return (_log_softmax(z) - log_prior(artifacts)).astype(z.dtype, copy=False)


@POSTHOC.register(
    "tau_norm", display="Classifier normalisation (tau-norm)",
    description="Divides each class's classifier weights by their length to the power tau, undoing the "
                "classifier's bias toward common classes.",
    paper="Kang et al., ICLR 2020, Decoupling Representation and Classifier for Long-Tailed Recognition",
    params=TauNormParams, changes_prediction=True, needs_features=True,
)
def tau_norm(artifacts: EvalArtifacts, *, split: Split = "test", tau: float = 1.0) -> np.ndarray:
    """Logits recomputed as features @ W'^T + b with w'_j = w_j / ||w_j||^tau; the original
    bias is kept, as in the reference code."""
    features = _features(artifacts, split)
    w = np.asarray(artifacts.head_weight)
    norms = np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-12)
    w_scaled = (w / norms ** tau).astype(w.dtype, copy=False)
    return features @ w_scaled.T + np.asarray(artifacts.head_bias)


@POSTHOC.register(
    "temperature", display="Temperature scaling",
    description="Softens or sharpens all scores by one temperature fitted on validation data: fixes "
                "over-confidence, never changes a prediction.",
    paper="Guo et al., ICML 2017, On Calibration of Modern Neural Networks",
    params=TemperatureParams, changes_prediction=False,
)
def temperature(artifacts: EvalArtifacts, *, split: Split = "test", T: float | None = None) -> np.ndarray:
    z = _logits(artifacts, split)
    if T is None:
        T = fit_temperature(artifacts.val_logits, artifacts.val_labels)
    if not T > 0:
        raise ValueError(f"temperature must be positive, got {T}")
    return (z / T).astype(z.dtype, copy=False)


# ---------------------------------------------------------------------------- selection

@dataclass(frozen=True)
class TauSweep:
    """Validation balanced accuracy over the tau grid; ``best_tau`` is the first maximum."""

    best_tau: float
    taus: np.ndarray
    val_balanced_accuracy: np.ndarray


def select_tau_norm(artifacts: EvalArtifacts, taus: np.ndarray | None = None) -> TauSweep:
    """Kang et al.'s recipe: sweep tau over linspace(0, 2, 21), keep the best on validation."""
    taus = TAU_NORM_GRID if taus is None else np.asarray(taus, dtype=np.float64)
    labels = np.asarray(artifacts.val_labels)
    scores = np.array([_balanced_accuracy(tau_norm(artifacts, split="val", tau=float(t)), labels)
                       for t in taus])
    return TauSweep(float(taus[int(np.argmax(scores))]), taus, scores)


def _nll_at_inverse_temperature(z: np.ndarray, labels: np.ndarray, beta: float) -> float:
    scaled = beta * z
    m = scaled.max(axis=1)
    lse = m + np.log(np.exp(scaled - m[:, None]).sum(axis=1))
    return float((lse - scaled[np.arange(len(labels)), labels]).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """T in [0.05, 10] minimising the NLL of softmax(logits / T) (Guo et al. 2017).

    The NLL is convex in 1/T, so a bounded 1-D Brent search over 1/T finds the global
    minimiser that LBFGS-on-log-T or a grid approximates. A fine grid backs it up, and a
    degenerate input (no rows, non-finite logits) returns 1.0 rather than NaN.
    """
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64)
    if z.ndim != 2 or z.shape[0] == 0 or y.shape != (z.shape[0],) or not np.isfinite(z).all():
        return 1.0

    def nll(beta: float) -> float:
        return _nll_at_inverse_temperature(z, y, beta)

    best_t = float("nan")
    try:
        res = minimize_scalar(nll, bounds=(1.0 / _T_MAX, 1.0 / _T_MIN), method="bounded",
                              options={"xatol": 1e-6})
        if res.success and np.isfinite(res.fun) and res.x > 0:
            best_t = 1.0 / float(res.x)
    except (ValueError, FloatingPointError, ArithmeticError):
        pass
    if not np.isfinite(best_t):
        grid = np.geomspace(_T_MIN, _T_MAX, 400)
        values = np.array([nll(1.0 / t) for t in grid])
        finite = np.isfinite(values)
        best_t = float(grid[finite][np.argmin(values[finite])]) if finite.any() else 1.0
    return float(np.clip(best_t, _T_MIN, _T_MAX))


# ---------------------------------------------------------------------------- API

def apply_posthoc(name: str, artifacts: EvalArtifacts, params: dict | None = None, *,
                  split: Split = "test") -> np.ndarray:
    """Validated call of a registered adjustment: adjusted ``split`` logits."""
    return POSTHOC.create(name, params, artifacts=artifacts, split=split)


def list_posthoc() -> list[str]:
    return POSTHOC.names()

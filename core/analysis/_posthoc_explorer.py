"""Post-hoc explorer: re-score a finished run under any mix of post-hoc fixes, instantly.

The four adjustments of `core.methods.POSTHOC` act on stored arrays only, so a slider
move re-scores a run in milliseconds, without the model. They are composed in one fixed
order (the order matters only for what each step sees):

1. **tau-normalisation** (Kang et al. 2020): logits = features @ (w_j / ||w_j||^tau)^T + b,
   bias kept; tau = 0 keeps the stored logits exactly.
2. **logit adjustment** (Menon et al. 2021): z_j - tau * log pi_j.
3. **prior-correcting threshold** (Buda et al. 2018): p_j / pi_j, i.e. z_j - log pi_j up to
   a per-sample constant that no probability, prediction or metric sees. It is logit
   adjustment with tau = 1, so with both on the shifts add up.
4. **temperature** (Guo et al. 2017): z / T. Last, so it never changes a prediction, only
   how confident the model is.

All four steps together are one affine change of the linear head (``adjusted_head``),
which is how `core.jobs.save_derived_run` turns an exploration into a run every page can open.
The metrics are computed from one bincount confusion matrix and one softmax (no sklearn
on this path); tests check them against sklearn.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from core.analysis._calibration import (
    adaptive_ece, brier, calibration_gap_by_group, classwise_ece, ece, mce, reliability_bins,
)
from core.analysis._metrics import softmax
from core.artifacts import EvalArtifacts
from core.config import RunConfig
from core.data._groups import class_groups
from core.glossary import posthoc_words
from core.methods._posthoc import log_prior, logit_adjustment, tau_norm as tau_norm_logits, temperature as temperature_logits
from core.registry import plugin_label

__all__ = [
    "POSTHOC_DEFAULTS", "adjusted_logits", "adjusted_head", "check_posthoc_params", "describe_posthoc", "explore",
    "prior_correction_warning", "describe_prior", "derived_artifacts",
]

POSTHOC_DEFAULTS: dict[str, Any] = {"logit_tau": 0.0, "tau_norm": 0.0, "temperature": 1.0,
                                    "prior_threshold": False}


def check_posthoc_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The four adjustments with defaults filled in; unknown names and bad values are errors."""
    unknown = set(params) - set(POSTHOC_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown post-hoc parameter(s) {sorted(unknown)}; known: {sorted(POSTHOC_DEFAULTS)}")
    p = {**POSTHOC_DEFAULTS, **params}
    out = {"logit_tau": float(p["logit_tau"]), "tau_norm": float(p["tau_norm"]),
           "temperature": float(p["temperature"]), "prior_threshold": bool(p["prior_threshold"])}
    if not (math.isfinite(out["logit_tau"]) and math.isfinite(out["tau_norm"])):
        raise ValueError("logit_tau and tau_norm must be finite numbers")
    if not (math.isfinite(out["temperature"]) and out["temperature"] > 0):
        raise ValueError(f"temperature must be a positive number, got {out['temperature']}")
    return out


def _with_split(artifacts: EvalArtifacts, split: str, z: np.ndarray) -> EvalArtifacts:
    return artifacts.with_logits(z) if split == "test" else artifacts.with_logits(artifacts.logits, val_logits=z)


def adjusted_logits(artifacts: EvalArtifacts, *, split: str = "test", logit_tau: float = 0.0,
                    tau_norm: float = 0.0, temperature: float = 1.0, prior_threshold: bool = False) -> np.ndarray:
    """The ``split`` logits after the composed adjustments (module docstring for the order),
    each step the `POSTHOC` entry of the same name. Default parameters return the stored
    array itself."""
    p = check_posthoc_params({"logit_tau": logit_tau, "tau_norm": tau_norm, "temperature": temperature,
                       "prior_threshold": prior_threshold})
    z = artifacts.logits if split == "test" else artifacts.val_logits
    if p["tau_norm"] != 0.0:
        z = tau_norm_logits(artifacts, split=split, tau=p["tau_norm"])
    shift = p["logit_tau"] + (1.0 if p["prior_threshold"] else 0.0)
    if shift != 0.0:
        z = logit_adjustment(_with_split(artifacts, split, z), split=split, tau=shift)
    if p["temperature"] != 1.0:
        z = temperature_logits(_with_split(artifacts, split, z), split=split, T=p["temperature"])
    return z


def adjusted_head(artifacts: EvalArtifacts, **params: Any) -> tuple[np.ndarray, np.ndarray]:
    """(weight, bias) of the linear head that gives the adjusted logits directly:
    W' = (w_j / ||w_j||^tau_norm) / T and b' = (b - shift * log pi) / T."""
    p = check_posthoc_params(params)
    w = np.asarray(artifacts.head_weight, dtype=np.float64)
    b = np.asarray(artifacts.head_bias, dtype=np.float64)
    if p["tau_norm"] != 0.0:
        w = w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-12) ** p["tau_norm"]
    shift = p["logit_tau"] + (1.0 if p["prior_threshold"] else 0.0)
    b = b - shift * log_prior(artifacts)
    dtype = np.asarray(artifacts.head_weight).dtype
    return (w / p["temperature"]).astype(dtype), (b / p["temperature"]).astype(dtype)


def derived_artifacts(artifacts: EvalArtifacts, **params: Any) -> EvalArtifacts:
    """The run's arrays as the adjusted model would have produced them: test and
    validation logits and the head that gives them (features are unchanged)."""
    weight, bias = adjusted_head(artifacts, **params)
    return replace(artifacts.with_logits(adjusted_logits(artifacts, **params),
                                         adjusted_logits(artifacts, split="val", **params)),
                   head_weight=weight, head_bias=bias)


def _classification(pred: np.ndarray, y: np.ndarray, k: int) -> dict[str, Any]:
    """Confusion matrix and the metrics derived from it, matching sklearn's conventions:
    averages over the classes present in ``y`` and zero_division=0 for precision and F1."""
    cm = np.bincount(y * k + pred, minlength=k * k).reshape(k, k)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    present = support > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(present, tp / support, np.nan)
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        f1 = np.where(support + predicted > 0, 2 * tp / (support + predicted), 0.0)
    n = int(support.sum())
    nan = float("nan")
    return {
        "confusion": cm, "recall": recall, "precision": precision, "f1": f1, "support": support,
        "accuracy": float(tp.sum() / n) if n else nan,
        "balanced_accuracy": float(recall[present].mean()) if n else nan,
        "f1_macro": float(f1[present].mean()) if n else nan,
        "worst_class_recall": float(recall[present].min()) if n else nan,
    }


def _nll(z: np.ndarray, y: np.ndarray) -> float:
    z_max = z.max(axis=1)
    lse = z_max + np.log(np.exp(z - z_max[:, None]).sum(axis=1))
    return float(np.mean(lse - z[np.arange(y.size), y])) if y.size else float("nan")


def explore(artifacts: EvalArtifacts, *, logit_tau: float = 0.0, tau_norm: float = 0.0, temperature: float = 1.0,
            prior_threshold: bool = False, n_bins: int = 15, groups: Sequence[str] | None = None) -> dict[str, Any]:
    """Every number the Post-hoc explorer shows, for the test split under these adjustments.

    Keys: params; logits (adjusted, n x K); pred; confusion (K x K counts, rows true);
    recall (NaN for a class without test samples), precision, f1, support (per class, in
    class-index order); accuracy, balanced_accuracy, f1_macro, worst_class_recall;
    ece, mce, adaptive_ece, classwise_ece, nll, brier; gap ({group: confidence -
    accuracy}, by the run's `groups` or those of its class counts); reliability (equal-width
    bins, a DataFrame). Averages run over the classes
    present in the test labels, as `summary_metrics` does.
    """
    params = check_posthoc_params({"logit_tau": logit_tau, "tau_norm": tau_norm, "temperature": temperature,
                            "prior_threshold": prior_threshold})
    z_adj = adjusted_logits(artifacts, **params)
    z = np.asarray(z_adj, dtype=np.float64)
    y = np.asarray(artifacts.labels).astype(np.int64, copy=False)
    k = z.shape[1]
    pred = z.argmax(axis=1)
    probs = softmax(z)
    out: dict[str, Any] = {"params": params, "logits": z_adj, "pred": pred, **_classification(pred, y, k)}
    out.update({
        "ece": ece(probs, y, n_bins), "mce": mce(probs, y, n_bins), "adaptive_ece": adaptive_ece(probs, y, n_bins),
        "classwise_ece": classwise_ece(probs, y, n_bins), "nll": _nll(z, y), "brier": brier(probs, y),
        "gap": calibration_gap_by_group(probs, y, groups if groups is not None else class_groups(artifacts.class_counts)),
        "reliability": reliability_bins(probs, y, n_bins),
    })
    return out


def describe_posthoc(params: Mapping[str, Any]) -> str:
    """'logit adjustment tau=1.0, temperature T=1.5': the adjustments that change something."""
    return posthoc_words(check_posthoc_params(params))


def prior_correction_warning(config: RunConfig) -> str | None:
    """Why a prior correction (logit adjustment, prior threshold) would correct twice on
    this run, or None. The trained prior already absorbs samplers and resamplers; what it
    cannot absorb is a loss, a two-stage fix or an earlier post-hoc step that corrected."""
    from core.methods import LOSSES

    reasons = []
    if LOSSES.info(config.loss.name).capabilities.get("corrects_prior"):
        reasons.append(f"its loss ({plugin_label('loss', config.loss.name)}) already corrects for class frequency "
                       "while training")
    if config.loss.drw_epoch is not None:
        reasons.append("deferred re-weighting already weighted the rare classes up")
    if config.stage2 is not None and config.stage2.name != "tau_norm":
        reasons.append(f"its classifier was re-trained class-balanced ({plugin_label('stage2', config.stage2.name)})")
    if any(step.logit_tau or step.prior_threshold for step in config.posthoc):
        reasons.append("it is itself a saved post-hoc version with a prior correction")
    if not reasons:
        return None
    return ("This run is already re-balanced: " + "; ".join(reasons) + ". Logit adjustment or the prior threshold on "
            "top corrects twice and pushes predictions toward the rare classes; check the common classes' recall.")


def describe_prior(artifacts: EvalArtifacts, config: RunConfig) -> str:
    """Which class prior the prior corrections use, in words."""
    counts = np.asarray(artifacts.class_counts, dtype=np.float64)
    trained = np.asarray(artifacts.trained_prior, dtype=np.float64)
    raw = counts / max(counts.sum(), 1.0)
    how = []
    if config.sampler.name != "instance":
        how.append(f"the sampler ({plugin_label('sampler', config.sampler.name)})")
    if config.resampler is not None:
        how.append(f"the resampler ({plugin_label('resampler', config.resampler.name)})")
    if config.stage2 is not None and config.stage2.name != "tau_norm":
        how.append(f"the classifier re-trained by {plugin_label('stage2', config.stage2.name)}")
    ratio = trained.max() / max(trained.min(), 1e-12)
    shape = "uniform" if ratio < 1.05 else f"rarest : most common = 1 : {ratio:.0f}"
    if not how:
        return (f"The prior corrections use the class frequencies the model trained on ({shape}), the training "
                "split's own counts.")
    return (f"The prior corrections use the class frequencies the model actually trained under, after "
            f"{' and '.join(how)} ({shape}), not the raw counts (1 : {raw.max() / max(raw.min(), 1e-12):.0f}), so a "
            "balanced training is not corrected twice.")

"""Fitting the table baselines (scikit-learn) on a run's splits, stored like any run.

Their log-probabilities stand in for logits, so metrics, calibration and the post-hoc
explorer work on them unchanged; they have no learned features (empty feature arrays),
which pages read as "geometry and attributions do not apply".
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from core.artifacts import EvalArtifacts
from core.config import RunConfig
from core.data import Splits
from core.models import create_baseline
from core.train._trainer import TrainResult, fixed_train_subset

__all__ = ["fit_baseline"]

_LOG_FLOOR = 1e-12  # a class a forest never votes for keeps a finite log-probability


def _log_proba(estimator, x: np.ndarray, num_classes: int) -> np.ndarray:
    """(n, K) log-probabilities in class-index order, even for classes the fit never saw."""
    out = np.full((len(x), num_classes), _LOG_FLOOR)
    if len(x):
        out[:, estimator.classes_.astype(int)] = estimator.predict_proba(x)
    out = np.maximum(out, _LOG_FLOOR)
    return np.log(out / out.sum(axis=1, keepdims=True)).astype(np.float32)


def fit_baseline(config: RunConfig, splits: Splits, *, progress) -> TrainResult:
    """Fit on the training split (after the resampler, if any) and score val and test."""
    if splits.modality != "tabular":
        raise ValueError(f"{config.model.name} is a table baseline; this dataset is {splits.modality}")
    k, t = splits.num_classes, config.train
    x, y = splits.x_train, splits.y_train
    synthetic = 0
    if config.resampler is not None:
        from core.methods import resample

        out = resample(config.resampler.name, x, y, config.resampler.params, seed=t.seed)
        x, y, synthetic = out.x.astype(np.float32), out.y.astype(np.int64), int(out.synthetic.sum())
    started = time.perf_counter()
    progress({"stage": "train", "epoch": 0, "epochs": 1, "fraction": 0.0, "elapsed_s": 0.0, "eta_s": None})
    estimator = create_baseline(config.model.name, config.model.params, seed=t.seed).fit(x, y)
    seconds = time.perf_counter() - started
    progress({"stage": "evaluate", "epoch": 1, "epochs": 1, "fraction": 1.0, "elapsed_s": seconds, "eta_s": 0.0})
    val_logits = _log_proba(estimator, splits.x_val, k)
    test_logits = _log_proba(estimator, splits.x_test, k)
    subset = fixed_train_subset(splits.y_train, t.train_subset, config.data.seed)
    val_pred = val_logits.argmax(1)
    present = np.bincount(splits.y_val, minlength=k) > 0
    recall = np.bincount(splits.y_val[val_pred == splits.y_val], minlength=k) / np.maximum(
        np.bincount(splits.y_val, minlength=k), 1)
    history: list[dict[str, Any]] = [{
        "stage": "fit", "epoch": 1, "val_accuracy": float((val_pred == splits.y_val).mean()),
        "val_balanced_accuracy": float(recall[present].mean()),
        "val_recall": [float(r) if p else None for r, p in zip(recall, present, strict=True)],
        "seconds": seconds,
    }]
    empty = lambda n: np.zeros((n, 0), np.float32)  # noqa: E731
    artifacts = EvalArtifacts(
        logits=test_logits, labels=splits.y_test, features=empty(len(splits.y_test)),
        head_weight=np.zeros((k, 0), np.float32), head_bias=np.zeros(k, np.float32),
        train_features=empty(len(subset)), train_labels=splits.y_train[subset],
        class_counts=np.bincount(splits.y_train, minlength=k), val_logits=val_logits, val_labels=splits.y_val,
        val_features=empty(len(splits.y_val)), test_index=np.arange(len(splits.y_test)),
        trained_prior=_fitted_prior(config, y, k),
    )
    info = {"select": "last", "selected_epoch": 1, "epochs_run": 1, "stopped_early": False, "steps": 0,
            "passes_per_epoch": 1, "batches_per_pass": 0, "trained_prior": artifacts.trained_prior.tolist()}
    return TrainResult(None, history, artifacts, splits, "cpu", synthetic, info)


def _fitted_prior(config: RunConfig, y: np.ndarray, k: int) -> np.ndarray:
    """Class weighting or balanced bootstraps fit the model as if classes were equally
    common; without them the model learned the rows' own prior."""
    params = config.model.resolved_params()
    if params.get("class_weight", "balanced") == "balanced":  # the forest always balances its trees
        return np.full(k, 1.0 / k)
    counts = np.bincount(y, minlength=k).astype(np.float64)
    return counts / counts.sum()

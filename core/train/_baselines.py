"""The table-baseline stage: a scikit-learn model is fitted instead of a network, on the same
splits, and stored like any run.

Their log-probabilities stand in for logits, so metrics, calibration and the post-hoc
explorer work on them unchanged; they have no learned features (empty feature arrays),
which pages read as "geometry and attributions do not apply". Suspected label issues can
only be left out (a baseline fits its own objective, with no per-row weight).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from core.artifacts import EvalArtifacts
from core.config import RunConfig
from core.data import Splits
from core.models import MODELS, create_baseline, is_baseline
from core.train._common import RunHooks, Stage, TrainingRows, TrainResult
from core.train._data import fixed_train_subset

__all__ = ["fit_baseline", "TABLE_BASELINE"]

_LOG_FLOOR = 1e-12  # a class a forest never votes for keeps a finite log-probability


def _log_proba(estimator, x: np.ndarray, num_classes: int) -> np.ndarray:
    """(n, K) log-probabilities in class-index order, even for classes the fit never saw."""
    out = np.full((len(x), num_classes), _LOG_FLOOR)
    if len(x):
        out[:, estimator.classes_.astype(int)] = estimator.predict_proba(x)
    out = np.maximum(out, _LOG_FLOOR)
    return np.log(out / out.sum(axis=1, keepdims=True)).astype(np.float32)


class TableBaseline(Stage):
    name = "table baseline"

    def applies(self, config: RunConfig) -> bool:
        return is_baseline(config.model.name)

    def check(self, config: RunConfig) -> None:
        if config.pretrain is not None or config.semi is not None:
            raise ValueError(f"pre-training and semi-supervised training teach a network; {config.model.name!r} is "
                             "a table baseline. Choose a network model (e.g. mlp), or remove pretrain / semi")

    def rows(self, config: RunConfig, splits: Splits, rows: TrainingRows, run: RunHooks) -> TrainingRows:
        if splits.modality != "tabular":
            raise ValueError(f"{config.model.name} is a table baseline; this dataset is {splits.modality}")
        if MODELS.info(config.model.name).capabilities.get("ordinal") and not splits.ordinal:
            raise ValueError(f"{config.model.name} is for ordered stages; this label is not marked ordinal "
                             "(data.ordinal)")
        return rows

    def fit(self, config: RunConfig, splits: Splits, rows: TrainingRows, run: RunHooks) -> TrainResult:
        if rows.weight is not None:
            raise ValueError(f"{config.model.name} is a table baseline: suspected label issues can be dropped "
                             "(label_issues.action: drop), not down-weighted")
        result = fit_baseline(config, _kept(splits, rows.kept), rows, progress=run.progress)
        result.info.update(run.info)
        return result


TABLE_BASELINE = TableBaseline()


def _kept(splits: Splits, kept: np.ndarray | None) -> Splits:
    """The splits a baseline is fitted and described on: without the rows cleaning left out."""
    if kept is None:
        return splits
    update: dict[str, Any] = {"x_train": splits.x_train[kept], "y_train": splits.y_train[kept]}
    for name in ("y_train_clean", "ids_train"):
        if getattr(splits, name, None) is not None:
            update[name] = getattr(splits, name)[kept]
    return dataclasses.replace(splits, **update)


def fit_baseline(config: RunConfig, splits: Splits, rows: TrainingRows, *, progress) -> TrainResult:
    """Fit on the training rows (after cleaning and the resampler) and score val and test."""
    k, t = splits.num_classes, config.train
    x, y, synthetic = rows.x, rows.y, rows.synthetic
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
    return TrainResult(None, history, artifacts, splits, "cpu", synthetic, info, rows.made)


def _fitted_prior(config: RunConfig, y: np.ndarray, k: int) -> np.ndarray:
    """Class weighting or balanced bootstraps fit the model as if classes were equally
    common; without them the model learned the rows' own prior."""
    params = config.model.resolved_params()
    ordinal = MODELS.info(config.model.name).capabilities.get("ordinal")  # unweighted likelihoods
    if not ordinal and params.get("class_weight", "balanced") == "balanced":  # the forest always balances its trees
        return np.full(k, 1.0 / k)
    counts = np.bincount(y, minlength=k).astype(np.float64)
    return counts / counts.sum()

"""A multi-label table baseline fitted instead of a network, on the same multi-label splits, and
stored as a multi-label network run is (`MultiLabelArtifacts`): each label's probability
becomes a logit, log p - log(1 - p), so the sigmoid the metrics apply gives it back and every
ranking number (AP, mAP, AUROC) is the estimator's own. No learned features: empty arrays."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from core.artifacts import MultiLabelArtifacts
from core.config import RunConfig
from core.data import MultiLabelRunData, cooccurrence_counts
from core.models import create_baseline
from core.train._common import RunHooks, TrainResult
from core.train._multilabel import validation_map

__all__ = ["fit_multilabel_baseline", "probability_logits"]

_FLOOR = 1e-12  # a label predicted as certain keeps a finite logit


def probability_logits(proba: np.ndarray) -> np.ndarray:
    """(n, L) logits whose sigmoid is the probabilities (clipped to [1e-12, 1 - 1e-12])."""
    p = np.clip(np.asarray(proba, dtype=np.float64), _FLOOR, 1 - _FLOOR)
    return (np.log(p) - np.log1p(-p)).astype(np.float32)


def fit_multilabel_baseline(config: RunConfig, data: MultiLabelRunData, run: RunHooks) -> TrainResult:
    """Fit on the training label matrix (unknown entries as the estimator handles them) and
    score validation and test."""
    if data.modality != "tabular":
        raise ValueError(f"{config.model.name} is a table baseline; this data set holds {data.modality}s: choose a "
                         "network model (e.g. small_cnn)")
    started = time.perf_counter()
    run.progress({"stage": "train", "epoch": 0, "epochs": 1, "fraction": 0.0, "elapsed_s": 0.0, "eta_s": None})
    estimator = create_baseline(config.model.name, config.model.params, seed=config.train.seed)
    estimator.fit(data.x_train, data.y_train)
    seconds = time.perf_counter() - started
    run.progress({"stage": "evaluate", "epoch": 1, "epochs": 1, "fraction": 1.0, "elapsed_s": seconds, "eta_s": 0.0})
    val_logits = probability_logits(estimator.predict_proba(data.x_val))
    test_logits = probability_logits(estimator.predict_proba(data.x_test))
    history: list[dict[str, Any]] = [{"stage": "fit", "epoch": 1, "seconds": seconds,
                                      "val_map": validation_map(1 / (1 + np.exp(-val_logits.astype(np.float64))),
                                                                data.y_val)}]
    artifacts = MultiLabelArtifacts(
        logits=test_logits, label_matrix=data.y_test.astype(np.float64),
        features=np.zeros((len(data.y_test), 0), np.float32), val_logits=val_logits,
        val_label_matrix=data.y_val.astype(np.float64), label_counts=data.label_counts.astype(np.int64),
        train_cooccurrence=cooccurrence_counts(data.y_train), train_cases=np.array(len(data.y_train)),
        test_index=np.arange(len(data.y_test)))
    info = {"select": "last", "selected_epoch": 1, "epochs_run": 1, "stopped_early": False, "steps": 0,
            "hidden_entries": data.hidden_entries, "unknown_as_absent": config.data.unknown_as_absent,
            "cases_fitted": int(getattr(estimator, "cases_used_", len(data.y_train)))}
    return TrainResult(None, history, artifacts, data, "cpu", 0, info, None)

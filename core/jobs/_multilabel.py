"""What the worker computes around a multi-label training: the metrics file from the stored
arrays (`summarize_multilabel_run`) and the run's files written in the same order as a
single-label run's (`produce_multilabel_run`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from core.analysis import (
    MULTILABEL_SUMMARY, label_groups, multilabel_intervals, per_label_auroc, sigmoid, tune_label_thresholds,
)
from core.artifacts import MultiLabelArtifacts
from core.config import RunConfig
from core.data import MultiLabelRunData
from core.jobs._pipeline import _clean

__all__ = ["summarize_multilabel_run", "multilabel_dataset_info", "MULTILABEL_RESAMPLES"]

MULTILABEL_RESAMPLES = 1000  # bootstrap resamples of the test cases behind every interval


def multilabel_dataset_info(data: MultiLabelRunData, config: RunConfig) -> dict[str, Any]:
    """The `dataset` section: label names stand where class names stand for a single-label run."""
    counts = data.label_counts
    return _clean({
        "source": config.data.source, "modality": data.modality, "multilabel": True,
        "input_shape": list(data.input_shape), "class_names": list(data.label_names),
        "label_names": list(data.label_names),
        "feature_names": list(data.feature_names) if data.feature_names else None,
        "counts_before": data.counts_before.tolist(), "counts_train": counts.tolist(),
        "groups": label_groups(counts, many=config.data.many_shot, few=config.data.few_shot),
        "n_train": len(data.y_train), "n_val": len(data.y_val), "n_test": len(data.y_test),
        "hidden_share": data.hidden_share, "hidden_entries": data.hidden_entries,
        "unknown_as_absent": config.data.unknown_as_absent,
        "profile": data.profile.words(list(data.label_names)) if config.data.imbalance.profile != "none" else None,
    })


def summarize_multilabel_run(artifacts: MultiLabelArtifacts, data: MultiLabelRunData, config: RunConfig,
                             n_resamples: int = MULTILABEL_RESAMPLES) -> dict[str, Any]:
    """Everything `tailscope show` reports for a multi-label run: mAP, head / medium / tail mAP,
    macro and micro F1, AUROC, subset accuracy and Hamming loss, each with a bootstrap interval
    over the test cases, and per label its AP (with interval), AUROC and threshold. Decisions
    use per-label thresholds tuned on the validation cases (never on test)."""
    d = config.data
    scores = sigmoid(artifacts.logits)
    thresholds = tune_label_thresholds(sigmoid(artifacts.val_logits), artifacts.val_label_matrix)
    summary, per_label_ap = multilabel_intervals(scores, artifacts.label_matrix, artifacts.label_counts,
                                                 threshold=thresholds, n_resamples=n_resamples, seed=config.train.seed,
                                                 many=d.many_shot, few=d.few_shot)
    auroc = per_label_auroc(scores, artifacts.label_matrix)
    groups = label_groups(artifacts.label_counts, many=d.many_shot, few=d.few_shot)
    positives = np.nansum(artifacts.label_matrix == 1, axis=0)
    per_label = [{"label": name, "label_index": c, "train_count": int(artifacts.label_counts[c]),
                  "test_positives": int(positives[c]), "group": groups[c], "ap": interval.estimate,
                  "ap_low": interval.low, "ap_high": interval.high, "auroc": float(auroc[c]),
                  "threshold": float(thresholds[c])}
                 for c, (name, interval) in enumerate(zip(data.label_names, per_label_ap))]
    return _clean({
        "multilabel": True,
        **{key: summary[key].estimate for key in MULTILABEL_SUMMARY},
        "ci": {key: summary[key].to_dict() for key in MULTILABEL_SUMMARY},
        "per_label": per_label,
        "decision": "per-label thresholds tuned on the validation cases (best F1 each)",
        "dataset": multilabel_dataset_info(data, config),
    })

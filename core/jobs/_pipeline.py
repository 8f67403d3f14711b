"""What the worker computes around training: the metrics file, NC snapshots, embeddings."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from core.analysis import (
    derived_artifacts, bootstrap_intervals, calibration_summary, embed_cached, geometry_summary, group_metrics, neural_collapse,
    per_class_intervals, per_class_metrics, rare_stage_summary, robust_metrics, robust_predictions, softmax,
    summary_metrics, synthetic_row_checks,
)
from core.artifacts import EvalArtifacts, MadeRows, training_map_features
from core.config import RunConfig
from core.data import Splits, class_groups
from core.store import RunStore
from core.train import Snapshot, TrainResult

__all__ = ["summarize_run", "dataset_info", "nc_snapshot_metrics", "compute_embeddings", "apply_posthoc_steps",
           "with_attacked_predictions", "made_row_checks", "EMBEDDING_DEFAULTS"]

EMBEDDING_DEFAULTS = {"method": "umap", "n_components": 2, "n_neighbors": 15, "min_dist": 0.1, "seed": 0}


def _clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN kept (json writes NaN) but inf to None."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return None if math.isinf(value) else value
    return value


def dataset_info(splits: Splits, config: RunConfig) -> dict[str, Any]:
    counts = splits.class_counts
    return _clean({
        "source": config.data.source,
        "modality": splits.modality,
        "input_shape": list(splits.input_shape),
        "class_names": list(splits.class_names),
        "feature_names": list(splits.feature_names) if splits.feature_names else None,
        "counts_before": splits.counts_before.tolist(),
        "counts_train": counts.tolist(),
        "groups": class_groups(counts, many=config.data.many_shot, few=config.data.few_shot),
        "n_val": len(splits.y_val),
        "n_test": len(splits.y_test),
        "ordinal": splits.ordinal or None,
    })


def summarize_run(artifacts: EvalArtifacts, splits: Splits, config: RunConfig) -> dict[str, Any]:
    """Everything `tailscope show` reports: headline metrics, per class, groups,
    calibration and geometry, computed once from the stored arrays."""
    d = config.data
    counts = artifacts.class_counts
    groups = class_groups(counts, many=d.many_shot, few=d.few_shot)
    metrics = summary_metrics(artifacts.logits, artifacts.labels, artifacts.num_classes)
    per_class = per_class_metrics(artifacts.logits, artifacts.labels, counts, list(splits.class_names))
    per_class["group"] = [groups[i] for i in per_class["class_index"]]
    wilson = per_class_intervals(artifacts.logits, artifacts.labels, artifacts.num_classes)
    per_class = per_class.merge(wilson[["class_index", "predicted", "recall_low", "recall_high", "precision_low",
                                        "precision_high"]],
                                on="class_index", how="left")
    intervals = bootstrap_intervals(artifacts.logits, artifacts.labels, artifacts.num_classes)
    attacked: dict[str, Any] = {"ci": {}}
    if artifacts.attacked_predictions is not None:
        attacked = robust_metrics(artifacts.labels, artifacts.attacked_predictions, groups, list(splits.class_names),
                                  counts)
        attacked["attack"] = {"name": config.evaluation.attack.name, **config.evaluation.attack.resolved_params()}
    return _clean({
        **metrics,
        **attacked,
        "macro_f1": metrics["f1_macro"],
        "ci": {**{key: interval.to_dict() for key, interval in intervals.items()}, **attacked["ci"]},
        "per_class": per_class.to_dict(orient="records"),
        "groups": group_metrics(artifacts.logits, artifacts.labels, counts, many=d.many_shot,
                                few=d.few_shot).to_dict(orient="records"),
        "calibration": calibration_summary(artifacts.logits, artifacts.labels, counts,
                                           artifacts.val_logits, artifacts.val_labels, groups=groups),
        "geometry": geometry_summary(artifacts, groups) if artifacts.has_features else None,
        "dataset": dataset_info(splits, config),
        "rare_stage": rare_stage_summary(softmax(artifacts.logits), artifacts.labels, n_resamples=400)
        if splits.ordinal else None,
    })


def made_row_checks(made: MadeRows | None, splits: Splits, config: RunConfig) -> dict[str, Any] | None:
    """The closest-record and utility checks of the rows the run's resampler made (None when
    it made none): the kept made rows against the real training rows, and models trained on
    real, made and both rows scored on the real test rows."""
    if made is None or not len(made.y):
        return None
    return _clean(synthetic_row_checks(splits.x_train, splits.y_train, made.x, made.y, splits.x_test, splits.y_test,
                                       made=made.count, seed=config.train.seed))


def apply_posthoc_steps(result: TrainResult, config: RunConfig) -> EvalArtifacts:
    """The config's saved post-hoc adjustments applied to a fresh training, arrays and head
    alike, so re-running a derived run gives the adjusted model again."""
    artifacts = result.artifacts
    for step in config.posthoc:
        artifacts = derived_artifacts(artifacts, **step.model_dump())
    if config.posthoc and result.model is not None:
        import torch

        head = result.model.head
        with torch.no_grad():
            head.weight.copy_(torch.from_numpy(np.ascontiguousarray(artifacts.head_weight)))
            head.bias.copy_(torch.from_numpy(np.ascontiguousarray(artifacts.head_bias)))
    return artifacts


def with_attacked_predictions(artifacts: EvalArtifacts, result: TrainResult, splits: Splits,
                              config: RunConfig, progress=None) -> EvalArtifacts:
    """The arrays with each test case's prediction on its attacked copy, when the config asks
    for an evaluation attack (`evaluation.attack`); preflight refuses one for table baselines.
    `progress` hears {"stage": "attack", "fraction": ...} as the batches are attacked."""
    attack = config.evaluation.attack
    if attack is None or result.model is None:
        return artifacts
    params = attack.resolved_params()
    x = splits.x_test[np.asarray(artifacts.test_index, dtype=np.int64)]
    report = None if progress is None else (lambda done, total: progress(
        {"stage": "attack", "attack": attack.name, "fraction": done / total}))
    predicted = robust_predictions(result.model, x, artifacts.labels, attack=attack.name, params=params,
                                   epsilons=[params["epsilon"]], modality=splits.modality, device=result.device,
                                   progress=report)
    return replace(artifacts, attacked_predictions=predicted[float(params["epsilon"])])


def nc_snapshot_metrics(snapshot: Snapshot) -> dict[str, float]:
    """Neural-collapse numbers on the fixed train subset, for the run history."""
    return _clean(neural_collapse(snapshot.features, snapshot.labels, snapshot.head_weight, snapshot.predictions,
                                  num_classes=len(snapshot.class_counts)))


def compute_embeddings(store: RunStore, run_id: str, **params: Any) -> dict[str, np.ndarray]:
    """UMAP (or PCA) of the test features and the stored train subset (with the rows the
    run's resampler made, if any), cached per run and parameters under the run folder."""
    artifacts = store.artifacts(run_id)
    settings = {**EMBEDDING_DEFAULTS, **params}
    cache = store.run_dir(run_id) / "embeddings"
    train = training_map_features(artifacts, store.made_rows(run_id))  # the made rows placed beside the real ones
    return {
        split: embed_cached(features, cache, split, **settings)
        for split, features in (("test", artifacts.features), ("train", train))
    }

"""Derived runs: a finished run re-scored under post-hoc fixes, stored as a run of its own.

Lives with the pipeline because it writes a whole run (arrays, weights, history, metrics)
through the store, exactly as the worker does, so every page can open the result.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from core.analysis import check_posthoc_params, derived_artifacts, describe_posthoc
from core.config import RunConfig
from core.jobs._pipeline import summarize_run
from core.store import RunStore
from core.train import prepare_run_data

__all__ = ["save_derived_run"]


def _copy_weights(src: Path, dst: Path, weight: np.ndarray, bias: np.ndarray) -> None:
    """The parent's weights with the adjusted head, so the model itself gives the new logits."""
    if not src.exists():
        return
    tensors = load_file(str(src))
    for key, value in (("head.weight", weight), ("head.bias", bias)):
        if key in tensors and tensors[key].shape == value.shape:
            tensors[key] = value.astype(tensors[key].dtype)
    tmp = dst.with_suffix(".tmp")
    save_file(tensors, str(tmp))
    tmp.replace(dst)


def save_derived_run(store: RunStore, run_id: str, name: str, params: Mapping[str, Any]) -> str:
    """Store the adjusted run as a new finished run that every page can open; returns its id.

    The new run keeps the parent's config (renamed), history, features and embeddings;
    its test and validation logits, head (in `eval.npz` and in the weights) and metrics
    are the adjusted ones; its method label names the adjustments, its index row points
    to the parent, and ``metrics["posthoc"]`` records the parameters. It is created as
    running and marked done only once every file is written.
    """
    p = check_posthoc_params(params)
    name = name.strip()
    if not name:
        raise ValueError("a derived run needs a name")
    parent = store.get(run_id)
    if parent.status != "done":
        raise ValueError(f"run {run_id} is {parent.status}; only a finished run can be adjusted")
    artifacts = store.artifacts(run_id)
    # the config records the adjustment, so a re-run trains the parent's set-up and applies it again
    config = RunConfig.model_validate({**parent.config, "name": name,
                                       "posthoc": [*parent.config.get("posthoc", []), p]})
    derived = derived_artifacts(artifacts, **p)
    weight, bias = derived.head_weight, derived.head_bias
    new_id = store.create_run(config, status="running", parent=run_id,
                              method=f"{parent.method} + post-hoc {describe_posthoc(p)}")
    try:
        src, dst = store.run_dir(run_id), store.run_dir(new_id)
        store.write_artifacts(new_id, derived)
        _copy_weights(src / "model.safetensors", dst / "model.safetensors", weight, bias)
        store.write_history(new_id, store.history(run_id))
        if (src / "embeddings").is_dir():  # features are unchanged, so are their embeddings
            shutil.copytree(src / "embeddings", dst / "embeddings")
        if (src / "synthetic_rows.npz").exists():  # the same training rows, made by the same resampler
            shutil.copyfile(src / "synthetic_rows.npz", dst / "synthetic_rows.npz")
        parent_metrics = store.metrics(run_id)
        metrics = summarize_run(derived, prepare_run_data(config), config)
        metrics.update({k: parent_metrics[k] for k in ("device", "synthetic_rows", "synthetic_checks")
                        if k in parent_metrics})
        metrics["posthoc"] = {"parent": run_id, "parent_name": parent.name, **p,
                              "order": ["tau_norm", "logit_adjustment", "prior_threshold", "temperature"]}
        store.write_metrics(new_id, metrics)
        store.finish(new_id, {k: metrics[k] for k in ("accuracy", "balanced_accuracy", "f1_macro", "gmean")
                              if k in metrics})
    except Exception as exc:
        store.fail(new_id, f"saving the derived run failed: {type(exc).__name__}: {exc}")
        raise
    return new_id

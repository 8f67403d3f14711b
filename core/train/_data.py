"""A run's data as training prepares it: the seeded splits, and the fixed class-stratified
subset of training rows whose features are stored with the run (geometry, neighbours)."""

from __future__ import annotations

import numpy as np

from core.artifacts import EvalArtifacts
from core.config import RunConfig
from core.data import MultiLabelRunData, Splits, load_data, prepare_multilabel_run_data, split_data

__all__ = ["prepare_run_data", "fixed_train_subset", "train_subset_rows"]


def prepare_run_data(config: RunConfig, progress=None) -> Splits | MultiLabelRunData:
    """The run's splits; `progress` (a run's progress callback) hears how far encoding free text has got.
    A multi-label config gets its `MultiLabelRunData` instead."""
    if config.data.multilabel:
        return prepare_multilabel_run_data(config.data)

    tuning = config.data.text_encoder is not None and config.data.text_encoder.supervised

    def encoding(done: int, total: int) -> None:
        progress({"stage": "encode text", "epoch": done, "epochs": total, "fraction": done / max(total, 1),
                  "tuning": tuning})

    return split_data(load_data(config.data), config.data, encoding if progress is not None else None)


def fixed_train_subset(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """A class-stratified subset (every class kept whole when the total allows), sorted."""
    if len(labels) <= size:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    counts = np.bincount(labels)
    share = np.maximum(np.floor(counts / counts.sum() * size), np.minimum(counts, 10)).astype(int)
    picks = [rng.choice(np.flatnonzero(labels == j), size=min(n, counts[j]), replace=False)
             for j, n in enumerate(share) if counts[j]]
    return np.sort(np.concatenate(picks))


def train_subset_rows(y_train: np.ndarray, artifacts: EvalArtifacts, *, size: int, seed: int) -> np.ndarray | None:
    """Rows of the prepared training split that the stored training subset came from, so a
    neighbour can be shown as its input (a picture, a row in the file's units). The subset
    is re-derived the way training drew it; None if it does not match what was stored (a
    run from an older version, or data that changed since)."""
    y = np.asarray(y_train, dtype=np.int64)
    subset = fixed_train_subset(y, int(size), int(seed))
    stored = np.asarray(artifacts.train_labels, dtype=np.int64)
    if len(subset) != len(stored) or not np.array_equal(y[subset], stored):
        return None
    return subset

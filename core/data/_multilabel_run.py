"""A multi-label run's data as training sees it: the built-in loaded, test and validation held
out untouched, the imbalance profile and the hidden entries on training only
(`prepare_multilabel_splits`), and, when the config asks to measure the common mistake,
unknown training entries read as absent."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.config import DataConfig
from core.data._label_matrix import label_counts
from core.data._multilabel import load_multilabel_builtin
from core.data._multilabel_splits import LabelProfileResult, prepare_multilabel_splits

__all__ = ["MultiLabelRunData", "prepare_multilabel_run_data", "cooccurrence_counts"]


@dataclass(frozen=True)
class MultiLabelRunData:
    """Arrays of the three splits; `y_train` as training reads it (NaN: unknown, masked out of
    the loss), `y_val` and `y_test` as the data came."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    label_names: tuple[str, ...]
    modality: str
    feature_names: tuple[str, ...] | None
    profile: LabelProfileResult
    hidden_share: float
    counts_before: np.ndarray  # known positives per label in the whole data set

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def label_counts(self) -> np.ndarray:
        """Known positives per label among the training cases (what the losses are built with)."""
        return label_counts(self.y_train)

    @property
    def hidden_entries(self) -> int:
        return int(np.isnan(self.y_train).sum())


def cooccurrence_counts(y) -> np.ndarray:
    """(L, L) int: cases known to carry both labels (the diagonal: each label's known positives)."""
    positive = (np.nan_to_num(np.asarray(y, dtype=np.float64), nan=0.0) == 1).astype(np.int64)
    return positive.T @ positive


def prepare_multilabel_run_data(data: DataConfig) -> MultiLabelRunData:
    """The config's multi-label built-in, split and profiled by its seed."""
    dataset = load_multilabel_builtin(data.source, data.params)
    imbalance = data.imbalance
    splits = prepare_multilabel_splits(dataset.y, test_size=data.test_fraction, val_size=data.val_fraction,
                                       profile=imbalance.profile, ratio=imbalance.ratio, mu=imbalance.mu,
                                       hide_share=data.hide_labels, seed=data.seed)
    y_train = splits.y_train.copy()
    if data.unknown_as_absent:
        y_train[np.isnan(y_train)] = 0.0
    x = dataset.x
    return MultiLabelRunData(dataset.name, x[splits.train], y_train, x[splits.val], dataset.y[splits.val],
                             x[splits.test], dataset.y[splits.test], dataset.label_names, dataset.modality,
                             dataset.feature_names, splits.profile, data.hide_labels, dataset.label_counts)

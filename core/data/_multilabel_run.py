"""A multi-label run's data as training sees it: the built-in loaded, test and validation held
out untouched, the imbalance profile and the hidden entries on training only
(`prepare_multilabel_splits`), and, when the config asks to measure the common mistake,
unknown training entries read as absent."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.config import UPLOAD_PREFIX, DataConfig
from core.data._features import TableTransform, fit_table_transform
from core.data._label_matrix import label_counts
from core.data._multilabel import MultiLabelDataset, load_multilabel_builtin
from core.data._multilabel_uploads import load_multilabel_upload
from core.data._sources import source_label, upload_path
from core.data._multilabel_splits import LabelProfileResult, prepare_multilabel_splits

__all__ = ["MultiLabelRunData", "prepare_multilabel_run_data", "cooccurrence_counts", "load_multilabel_data"]


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
    transform: TableTransform | None = None  # an uploaded table's: gaps filled, standardised by the training split

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


def load_multilabel_data(data: DataConfig) -> MultiLabelDataset:
    """The config's multi-label built-in, or its upload read as `multilabel_upload` says."""
    spec = data.multilabel_upload
    if spec is None:
        return load_multilabel_builtin(data.source, data.params)
    if not data.source.startswith(UPLOAD_PREFIX):
        raise ValueError(f"{data.source}: store the file as an upload first (tailscope train does)")
    return load_multilabel_upload(upload_path(data.source).read_bytes(), source_label(data.source),
                                  separator=spec.separator, columns=spec.columns, label_column=data.label_column,
                                  roles=data.column_roles, missing=data.missing)


def prepare_multilabel_run_data(data: DataConfig) -> MultiLabelRunData:
    """The config's multi-label data, split and profiled by its seed; an uploaded table's
    gaps filled and its features standardised with the training split's statistics."""
    dataset = load_multilabel_data(data)
    imbalance = data.imbalance
    splits = prepare_multilabel_splits(dataset.y, test_size=data.test_fraction, val_size=data.val_fraction,
                                       profile=imbalance.profile, ratio=imbalance.ratio, mu=imbalance.mu,
                                       hide_share=data.hide_labels, seed=data.seed,
                                       fold=None if data.fold is None else (data.fold.k, data.fold.index))
    y_train = splits.y_train.copy()
    if data.unknown_as_absent:
        y_train[np.isnan(y_train)] = 0.0
    x_train, x_val, x_test = (dataset.x[s] for s in (splits.train, splits.val, splits.test))
    transform = None
    if data.multilabel_upload is not None and dataset.modality == "tabular":
        transform = fit_table_transform(x_train, dataset.columns, (x_val, x_test))
        x_train, x_val, x_test = (transform.apply(a).astype(np.float32) for a in (x_train, x_val, x_test))
    return MultiLabelRunData(dataset.name, x_train, y_train, x_val, dataset.y[splits.val],
                             x_test, dataset.y[splits.test], dataset.label_names, dataset.modality,
                             dataset.feature_names, splits.profile, data.hide_labels, dataset.label_counts, transform)

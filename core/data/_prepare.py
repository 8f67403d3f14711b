"""A run's data from its `DataConfig`: the one place that turns the config into arrays.

Every caller (trainer, pre-flight, pages, CLI) goes through these two functions, so a
run, its preview and its analysis pages always see the same rows.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from core.config import DataConfig
from core.data._dataset import Dataset
from core.data._features import TableTransform
from core.data._imbalance import Splits, _split_rows, prepare_splits, split_settings as _split_settings, table_transform
from core.data._noise import corrupt_labels
from core.data._ordinal import order_classes
from core.data._sources import load_source
from core.data._tables import RawTable, table_dataset
from core.data._unlabeled import UNKNOWN_LABEL, hidden_counts, hide_labels, load_unlabeled_upload

__all__ = ["load_data", "split_data", "run_table_transform", "source_problems", "labelled_train_counts",
           "labelled_train_labels", "encoded_splits"]

_UNLABELED_CHECKED: dict[str, str | None] = {}  # data config (JSON) -> why its unlabelled file cannot be read
_CHECKS_KEPT = 64


def load_data(data: DataConfig, raw: RawTable | None = None) -> Dataset:
    """The dataset a config names (built-in or stored upload), before any split, with the
    config's column roles and missing-value policy applied to an uploaded table. `raw` is
    that table already parsed (the Data page parses a file once and keeps it). With
`data.ordinal`, the classes are renumbered in that stage order."""
    if raw is not None:
        dataset = table_dataset(raw, data.label_column, data.column_roles, data.missing, merge_labels=data.merge_labels)
    else:
        dataset = load_source(data.source, data.params, data.label_column, data.column_roles, data.missing,
                              merge_labels=data.merge_labels)
    return dataset if data.ordinal is None else order_classes(dataset, data.ordinal)


def source_problems(data: DataConfig, dataset: Dataset | None = None) -> tuple[Dataset | None, list[str]]:
    """Every source-like field of `data` (`core.config.SOURCE_FIELDS`) read as the run will
    read it: (the dataset, None when `data.source` cannot be read; one line per field that
    cannot, named). Pre-flight calls this before anything is queued, so a file in any field
    is refused up front, never by the worker. `dataset` is `data.source` already loaded.

    The unlabelled file's answer is remembered per data config: uploads are named by the
    hash of their bytes, so the same config reads the same file (the Train page asks on
    every rerun)."""
    if dataset is None:
        try:
            dataset = load_data(data)
        except (ValueError, OSError) as exc:  # DataError and unknown names are ValueErrors
            return None, [f"data.source: {exc}"]
    if data.unlabeled is None or data.unlabeled.source is None:
        return dataset, []
    key = data.model_dump_json()
    if key not in _UNLABELED_CHECKED:
        try:
            load_unlabeled_upload(data.unlabeled.source, dataset, data, tuple(dataset.x.shape[1:]))
            problem = None
        except (ValueError, OSError) as exc:
            problem = f"data.unlabeled.source: {exc}"
        if len(_UNLABELED_CHECKED) >= _CHECKS_KEPT:
            _UNLABELED_CHECKED.pop(next(iter(_UNLABELED_CHECKED)))
        _UNLABELED_CHECKED[key] = problem
    problem = _UNLABELED_CHECKED[key]
    return dataset, [problem] if problem else []


def _labels_only_split(dataset: Dataset, data: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """(training labels, per-class counts before the imbalance profile) of the config's split,
    drawn on the labels alone: the inputs stand in as empty rows, so no feature is copied,
    scaled or encoded."""
    def empty(n: int) -> np.ndarray:
        return np.zeros((n,) + (0,) * (dataset.x.ndim - 1), dtype=np.float32)

    stand_in = replace(dataset, x=empty(len(dataset.y)), columns=(),
                       x_test=None if dataset.x_test is None else empty(len(dataset.x_test)))
    _, y_train, _, _, _, _, before, *_ = _split_rows(stand_in, **_split_settings(data))
    return y_train, before


def labelled_train_counts(dataset: Dataset, data: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """(training rows per class before the imbalance profile, rows per class that keep their
    label after the profile and hiding `data.unlabeled.fraction`): what a run learns each
    class from, at the cost of a split of the labels alone."""
    y_train, before = _labels_only_split(dataset, data)
    counts = np.bincount(y_train, minlength=dataset.num_classes)
    fraction = data.unlabeled.fraction if data.unlabeled is not None else 0.0
    return before, counts - hidden_counts(counts, fraction)


def labelled_train_labels(dataset: Dataset, data: DataConfig) -> np.ndarray | None:
    """The training split's labels exactly as `split_data` leaves them (long-tailed, the hidden
    share moved out), without preparing a feature: a page that only counts classes must not
    wait while free text is encoded. None when `data.label_noise` corrupts labels, since that
    may draw on the features (then only the full split answers)."""
    if data.label_noise is not None:
        return None
    y_train, _ = _labels_only_split(dataset, data)
    if data.unlabeled is not None:
        kept, _ = hide_labels(y_train, data.unlabeled.fraction, data.seed, dataset.num_classes)
        y_train = y_train[kept]
    return y_train


def split_data(dataset: Dataset, data: DataConfig, progress=None) -> Splits:
    """Train (made long-tailed), validation and test splits exactly as the config asks.

    Then, in this order: hide `data.unlabeled.fraction` of the training labels per class
    (those rows move to `x_unlabeled`, uploaded unlabelled rows after them), and corrupt
    the remaining training labels and the validation labels (`data.label_noise`; the clean
    training labels stay in `y_train_clean`). The test split is never changed. Tables are
    scaled, and free text encoded (`data.text_encoder`), with what the training split holds
    before hiding; an encoder that learns from labels (fine-tuned MiniLM) sees only the kept
    rows' labels, and is refused with label noise at config time. `progress(done, total)`
    hears of the encoding.
    """
    splits = encoded_splits(dataset, data, progress)
    if dataset.ordinal:
        splits = replace(splits, ordinal=True)
    if data.unlabeled is not None:
        splits = _with_unlabeled(splits, dataset, data)
    if data.label_noise is not None:
        splits = _with_label_noise(splits, data)
    return splits


def encoded_splits(dataset: Dataset, data: DataConfig, progress=None) -> Splits:
    """`prepare_splits` as the config asks, before labels are hidden or corrupted: a text
    encoder that learns from labels sees only those of the rows that keep theirs."""
    labelled = None
    if data.unlabeled is not None:
        fraction, seed = data.unlabeled.fraction, data.seed
        labelled = lambda y: hide_labels(y, fraction, seed, dataset.num_classes)[0]  # noqa: E731
    return prepare_splits(dataset, **_split_settings(data), text_encoder=data.text_encoder, labelled_rows=labelled,
                          progress=progress)


def _with_unlabeled(splits: Splits, dataset: Dataset, data: DataConfig) -> Splits:
    kept, hidden = hide_labels(splits.y_train, data.unlabeled.fraction, data.seed, splits.num_classes)
    x_extra, y_extra = [splits.x_train[hidden]], [splits.y_train[hidden]]
    if data.unlabeled.source is not None:
        rows = load_unlabeled_upload(data.unlabeled.source, dataset, data, splits.input_shape)
        x_extra.append(rows.astype(np.float32))
        y_extra.append(np.full(len(rows), UNKNOWN_LABEL, dtype=np.int64))
    return replace(splits, x_train=np.ascontiguousarray(splits.x_train[kept]), y_train=splits.y_train[kept],
                   ids_train=None if splits.ids_train is None else splits.ids_train[kept],
                   texts_train=None if splits.texts_train is None else splits.texts_train[kept],
                   x_unlabeled=np.ascontiguousarray(np.concatenate(x_extra)),
                   y_unlabeled_true=np.concatenate(y_extra).astype(np.int64))


def _with_label_noise(splits: Splits, data: DataConfig) -> Splits:
    spec, clean = data.label_noise, splits.y_train
    common = dict(num_classes=splits.num_classes, train_counts=np.bincount(clean, minlength=splits.num_classes),
                  many=data.many_shot, few=data.few_shot)
    y_train = corrupt_labels(spec, clean, x=splits.x_train, stream=0, **common)
    y_val = corrupt_labels(spec, splits.y_val, x=splits.x_val, stream=1, reference=(splits.x_train, clean), **common)
    return replace(splits, y_train=y_train, y_val=y_val, y_train_clean=clean.copy())


def run_table_transform(dataset: Dataset, data: DataConfig, new_rows) -> TableTransform:
    """The feature transform `split_data` applied to this table's splits, ready for
    `new_rows` (new cases as unscaled features, NaN in their gaps)."""
    return table_transform(dataset, new_rows, **_split_settings(data))

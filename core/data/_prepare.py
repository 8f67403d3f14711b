"""A run's data from its `DataConfig`: the one place that turns the config into arrays.

Every caller (trainer, pre-flight, pages, CLI) goes through these two functions, so a
run, its preview and its analysis pages always see the same rows.
"""

from __future__ import annotations

from core.config import DataConfig
from core.data._dataset import Dataset
from core.data._features import TableTransform
from core.data._imbalance import Splits, prepare_splits, table_transform
from core.data._sources import load_source
from core.data._tables import RawTable, table_dataset

__all__ = ["load_data", "split_data", "run_table_transform"]


def load_data(data: DataConfig, raw: RawTable | None = None) -> Dataset:
    """The dataset a config names (built-in or stored upload), before any split, with the
    config's column roles and missing-value policy applied to an uploaded table. `raw` is
    that table already parsed (the Data page parses a file once and keeps it)."""
    if raw is not None:
        return table_dataset(raw, data.label_column, data.column_roles, data.missing)
    return load_source(data.source, data.params, data.label_column, data.column_roles, data.missing)


def _split_settings(data: DataConfig) -> dict:
    im = data.imbalance
    fold = (data.fold.k, data.fold.index) if data.fold is not None else None
    return dict(profile=im.profile, ratio=im.ratio, mu=im.mu, class_order=im.class_order,
                test_fraction=data.test_fraction, val_fraction=data.val_fraction, seed=data.seed, fold=fold)


def split_data(dataset: Dataset, data: DataConfig) -> Splits:
    """Train (made long-tailed), validation and test splits exactly as the config asks."""
    return prepare_splits(dataset, **_split_settings(data))


def run_table_transform(dataset: Dataset, data: DataConfig, new_rows) -> TableTransform:
    """The feature transform `split_data` applied to this table's splits, ready for
    `new_rows` (new cases as unscaled features, NaN in their gaps)."""
    return table_transform(dataset, new_rows, **_split_settings(data))

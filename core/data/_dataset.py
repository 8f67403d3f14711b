"""The in-memory dataset record every source produces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["Dataset", "Modality", "FeatureBlock"]

Modality = Literal["tabular", "image"]


@dataclass(frozen=True)
class FeatureBlock:
    """Where one original table column lives in `x`: features start..stop. A categorical
    column is one-hot over `categories`; a date is days since 1970-01-01. Lets a fill use
    the column's most frequent category and a page show a row in the file's own units."""

    name: str
    role: Literal["numeric", "categorical", "date"]
    start: int
    stop: int
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dataset:
    """Features, integer labels 0..K-1 and class names; optionally a given test split.

    `x` is float32: (N, F) for tables, (N, C, H, W) for images in [0, 1]. Tables are
    stored unscaled; standardisation uses training statistics after the split. An uploaded
    table holds NaN where its missing-value policy is "fill"; the split fills them from
    training statistics. `columns` maps an uploaded table's features back to its columns.
    `label_variants` names labels the upload spelled several ways, as `data.merge_labels` left them.
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]
    modality: Modality
    feature_names: tuple[str, ...] | None = None
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    columns: tuple[FeatureBlock, ...] | None = None
    label_variants: tuple = ()  # LabelVariants: classes the file spells several ways (merged or kept apart)

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"{self.name}: {len(self.x)} samples but {len(self.y)} labels")
        expected_ndim = 2 if self.modality == "tabular" else 4
        if self.x.ndim != expected_ndim:
            raise ValueError(f"{self.name}: {self.modality} data must be {expected_ndim}-D, got shape {self.x.shape}")
        k = len(self.class_names)
        for labels in (self.y, self.y_test):
            if labels is not None and len(labels) and (labels.min() < 0 or labels.max() >= k):
                raise ValueError(f"{self.name}: labels must lie in 0..{k - 1}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

"""Which features matter for which class: attribution maps of a table model summed per class."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["class_feature_importance", "top_features"]


def class_feature_importance(attributions: np.ndarray, labels: np.ndarray | Sequence[int], num_classes: int) -> np.ndarray:
    """(K,F) mean absolute attribution of each feature over the samples of each class.

    Absolute, because a feature that pushes some samples up and others down still matters;
    a class without samples gets NaN (no evidence), not 0 (evidence of no importance).
    """
    values = np.asarray(attributions, dtype=np.float64)
    y = np.asarray(labels)
    if values.ndim != 2:
        raise ValueError(f"attributions must be (N,F); got shape {values.shape}")
    if y.shape != (values.shape[0],):
        raise ValueError(f"need one label per row: {values.shape[0]} rows, labels of shape {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes})")
    importance = np.full((num_classes, values.shape[1]), np.nan)
    for k in range(num_classes):
        rows = values[y == k]
        if len(rows):
            importance[k] = np.abs(rows).mean(axis=0)
    return importance


def top_features(
    importance: np.ndarray,
    feature_names: Sequence[str],
    *,
    k: int = 10,
    class_names: Sequence[str] | None = None,
):
    """The `k` features with the largest |value| as a tidy DataFrame (rank, feature,
    value; plus a class column when `importance` is (K,F)), ready for a table or a chart.
    NaN rows (classes without samples) are left out."""
    import pandas as pd

    values = np.asarray(importance, dtype=np.float64)
    if values.shape[-1] != len(feature_names):
        raise ValueError(f"{values.shape[-1]} values but {len(feature_names)} feature names")
    if values.ndim == 1:
        return pd.DataFrame(_ranked(values, feature_names, k), columns=["rank", "feature", "value"])
    if values.ndim != 2:
        raise ValueError(f"importance must be (F,) or (K,F); got shape {values.shape}")
    names = list(class_names) if class_names is not None else [str(i) for i in range(values.shape[0])]
    if len(names) != values.shape[0]:
        raise ValueError(f"{values.shape[0]} classes but {len(names)} class names")
    rows = [(name, *row) for name, class_values in zip(names, values) for row in _ranked(class_values, feature_names, k)]
    return pd.DataFrame(rows, columns=["class", "rank", "feature", "value"])


def _ranked(values: np.ndarray, feature_names: Sequence[str], k: int) -> list[tuple[int, str, float]]:
    finite = np.flatnonzero(np.isfinite(values))
    order = finite[np.argsort(-np.abs(values[finite]), kind="stable")][:k]
    return [(rank + 1, str(feature_names[i]), float(values[i])) for rank, i in enumerate(order)]

"""Table features after the split: fill gaps from the training rows, and show rows in the
file's own units.

Gaps are filled with statistics of the final training split only (scikit-learn's
SimpleImputer: median for numbers and dates, most frequent for categories), so nothing
about validation or test rows leaks into training. Pages show samples as the file wrote
them (mg/dl, the category's name, a date) by undoing the standardisation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer

from core.data._dataset import FeatureBlock

__all__ = ["fill_missing", "original_values", "in_original_units", "feature_table"]


def _blocks(columns: Sequence[FeatureBlock] | None, width: int) -> list[FeatureBlock]:
    if columns:
        return list(columns)
    return [FeatureBlock(f"f{i}", "numeric", i, i + 1) for i in range(width)]


def _median(filled: np.ndarray) -> float:
    """strategy="median" of SimpleImputer, computed per column on the filled cells instead of
    through a masked array (5x faster on 120,000 rows); 0 for a column empty in training."""
    return float(np.median(filled)) if len(filled) else 0.0


def fill_missing(x_train: np.ndarray, others: Sequence[np.ndarray],
                 columns: Sequence[FeatureBlock] | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """(x_train, others) with every NaN filled from `x_train`'s statistics; unchanged
    arrays when there is nothing to fill. A categorical block with a gap is all NaN in
    that row and gets the one-hot of the training split's most frequent category."""
    if not (np.isnan(x_train).any() or any(np.isnan(o).any() for o in others)):
        return x_train, list(others)
    arrays = [np.array(a, dtype=np.float32, copy=True) for a in (x_train, *others)]
    blocks = _blocks(columns, x_train.shape[1])
    gappy = np.zeros(x_train.shape[1], dtype=bool)
    for a in arrays:
        gappy |= np.isnan(a).any(axis=0)
    blocks = [b for b in blocks if gappy[b.start:b.stop].any()]  # only columns with a gap somewhere
    numeric = [b.start for b in blocks if b.role != "categorical"]
    if numeric:
        imputer = SimpleImputer(strategy=_median, keep_empty_features=True).fit(arrays[0][:, numeric])
        for a in arrays:
            a[:, numeric] = imputer.transform(a[:, numeric])
    for b in blocks:
        if b.role != "categorical":
            continue
        codes = [np.where(np.isnan(a[:, b.start]), np.nan, np.argmax(np.nan_to_num(a[:, b.start:b.stop]), axis=1))
                 for a in arrays]
        imputer = SimpleImputer(strategy="most_frequent", keep_empty_features=True).fit(codes[0][:, None])
        eye = np.eye(b.stop - b.start, dtype=np.float32)
        for a, c in zip(arrays, codes):
            a[:, b.start:b.stop] = eye[imputer.transform(c[:, None])[:, 0].astype(np.int64)]
    return arrays[0], arrays[1:]


def _significant(values: np.ndarray, digits: int = 6) -> list[float]:
    """Undo float32 noise for display: 236.99998 -> 237.0."""
    return [float(f"{v:.{digits}g}") if np.isfinite(v) else float("nan") for v in values]


def original_values(x: np.ndarray, mean: np.ndarray | None, std: np.ndarray | None,
                    feature_names: Sequence[str] | None = None,
                    columns: Sequence[FeatureBlock] | None = None) -> pd.DataFrame:
    """Standardised table rows back in the file's units: one column per original column
    (a category's name, a date as YYYY-MM-DD, numbers as written). Without `mean`/`std`
    the rows are shown as they are."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    raw = x * std + mean if mean is not None and std is not None else x
    names = list(feature_names) if feature_names is not None else [f"f{i}" for i in range(raw.shape[1])]
    if not columns:
        return pd.DataFrame({n: _significant(raw[:, i]) for i, n in enumerate(names)})
    out = {}
    for b in columns:
        if b.role == "categorical":
            block = raw[:, b.start:b.stop]
            picked = np.argmax(block, axis=1)
            out[b.name] = [b.categories[k] if block[i, k] > 0.5 else "" for i, k in enumerate(picked)]
        elif b.role == "date":
            days = np.round(raw[:, b.start])
            out[b.name] = [str((pd.Timestamp("1970-01-01") + pd.Timedelta(days=d)).date()) if np.isfinite(d) else ""
                           for d in days]
        else:
            out[b.name] = _significant(raw[:, b.start])
    return pd.DataFrame(out)


def in_original_units(splits, x: np.ndarray) -> pd.DataFrame:
    """`original_values` for rows of a `Splits` (e.g. `splits.x_test[rows]`)."""
    return original_values(x, splits.feature_mean, splits.feature_std, splits.feature_names, splits.columns)


def feature_table(splits, x: np.ndarray) -> pd.DataFrame:
    """One sample as the model's features, one row each: the value in the file's units (text:
    a number, a date, or yes / no for one category of a column) and the standardised value
    the model saw."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    mean, std = splits.feature_mean, splits.feature_std
    raw = x * std + mean if mean is not None and std is not None else x
    names = list(splits.feature_names) if splits.feature_names is not None else [f"f{i}" for i in range(len(x))]
    kind = ["numeric"] * len(x)
    for b in splits.columns or ():
        kind[b.start:b.stop] = [b.role] * (b.stop - b.start)

    def text(v: float, k: str) -> str:
        if not np.isfinite(v):
            return ""
        if k == "categorical":
            return "yes" if v > 0.5 else "no"
        if k == "date":
            return str((pd.Timestamp("1970-01-01") + pd.Timedelta(days=round(v))).date())
        return f"{v:.6g}"

    return pd.DataFrame({"feature": names, "value": [text(v, k) for v, k in zip(raw, kind)], "standardised": x})

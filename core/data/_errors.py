"""User-facing data problems: one exception type, short lists, and the label checks every
upload kind shares.

A message names the file (and row / column), says what to do, and stays short: at most a
few offending values and a count of the rest, never Python reprs such as `np.str_('x')`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["DataError", "MIN_SAMPLES_PER_CLASS", "MAX_CLASSES", "short_list", "quoted", "check_labels"]

MIN_SAMPLES_PER_CLASS = 3
MAX_CLASSES = 1000


class DataError(ValueError):
    """A user-facing problem with an uploaded file: the message says where and what to do."""


def quoted(value, width: int = 24) -> str:
    """A value as a person reads it: 'text' in quotes, numbers bare, long text cut short."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer() and abs(value) < 1e15:
        value = int(value)
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return f"{value:g}" if isinstance(value, (float, np.floating)) else str(int(value))
    text = str(value)
    if len(text) > width:
        text = text[: width - 1] + "…"
    return f"'{text}'"


def short_list(items: Sequence[str], shown: int = 3) -> str:
    """'a, b, c and 12 more': at most `shown` items, then a count of the rest."""
    items = [str(i) for i in items]
    if len(items) <= shown:
        return ", ".join(items[:-1]) + (" and " if len(items) > 1 else "") + (items[-1] if items else "")
    return f"{', '.join(items[:shown])} and {len(items) - shown:,} more"


def _class_names(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique names, inverse): numbers sort as numbers, text as stripped text."""
    if np.issubdtype(values.dtype, np.number):
        uniq, y = np.unique(values, return_inverse=True)
        names = np.asarray([str(int(v)) if float(v).is_integer() else f"{float(v):g}" for v in uniq], dtype=object)
        return names, y
    codes, names = pd.factorize(pd.Series(values, dtype=object).astype("str").str.strip(), sort=True)
    return np.asarray(names, dtype=object), codes


def check_labels(y_values: Sequence, filename: str, where: str, *, by_frequency: bool = True,
                 count_of: np.ndarray | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Integer labels 0..K-1 and class names, or a DataError saying what is wrong.

    Uploads number their classes from the most to the least frequent (ties by name), so
    "as is" means head to tail and every chart that says "most to fewest" is right.
    `count_of` (a boolean mask) says which values count for the order (e.g. the training
    part of an `.npz` with its own test split).
    """
    values = np.asarray(y_values)
    names, y = _class_names(values.reshape(-1))
    if len(names) > MAX_CLASSES:
        raise DataError(f"{filename}: {where} has {len(names):,} different values (e.g. "
                        f"{short_list([quoted(v) for v in names[:3]], 3)}), too many for classes; "
                        "choose a column that names a few classes.")
    if len(names) < 2:
        only = quoted(names[0]) if len(names) else "none"
        raise DataError(f"{filename}: {where} has only one class ({only}); a classifier needs at least two.")
    counts = np.bincount(y, minlength=len(names))
    small = np.flatnonzero(counts < MIN_SAMPLES_PER_CLASS)
    if len(names) > 20 and len(small) > len(names) / 2:
        raise DataError(f"{filename}: {where} has {len(names):,} different values, most of them in fewer than "
                        f"{MIN_SAMPLES_PER_CLASS} rows (e.g. {short_list([quoted(names[i]) for i in small[:2]], 2)}): "
                        "it looks like a measurement or an ID, not a class; choose the column that names the class.")
    if len(small):
        listed = [f"{quoted(names[i])} ({counts[i]})" for i in small]
        one = len(small) == 1
        raise DataError(f"{filename}: {where}: class{'' if one else 'es'} {short_list(listed)} "
                        f"ha{'s' if one else 've'} fewer than {MIN_SAMPLES_PER_CLASS} samples; add samples, merge "
                        f"{'it' if one else 'them'} into another class or remove those rows.")
    if by_frequency:
        freq = np.bincount(y[count_of.reshape(-1)] if count_of is not None else y, minlength=len(names))
        order = np.argsort(-freq, kind="stable")  # most frequent first, ties keep name order
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        y, names = rank[y], names[order]
    return y.astype(np.int64), tuple(str(n) for n in names)


def missing_labels(labels: pd.Series) -> np.ndarray:
    """Rows whose label is empty (NaN, None or blank text)."""
    empty = labels.isna().to_numpy().copy()
    if labels.dtype == object or pd.api.types.is_string_dtype(labels.dtype):
        empty |= labels.astype("string").str.strip().fillna("").eq("").to_numpy()
    return empty

"""Multi-label targets: one 0/1 row over the labels per case, unknown entries allowed.

A multi-label case (a chest X-ray with several findings, a record with several codes) has a
target row, not a class. Some entries are often simply unknown (the finding was not checked,
not reported): partial labels. Everything multi-label in the engine takes its targets through
`as_label_matrix`, which accepts 0/1 with unknown written as -1 or NaN and returns one form:
float64, 1.0 present, 0.0 absent, NaN unknown. Losses, samplers and metrics then leave the
NaN entries out (never read them as "absent"), so changing what an unknown entry holds
changes nothing downstream.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["UNKNOWN_ENTRY", "as_label_matrix", "known_mask", "label_counts", "label_frequencies"]

UNKNOWN_ENTRY = -1  # how an unknown entry may be written in an integer matrix (NaN in a float one)


def as_label_matrix(targets, *, num_labels: int | None = None, what: str = "targets") -> np.ndarray:
    """`targets` as an (n, L) float64 matrix: 1 present, 0 absent, NaN unknown.

    Accepts 0/1 entries with unknown as -1 or NaN (booleans too). Anything else (a 2, a 0.5,
    a 1-D vector of classes) fails with one line naming the first bad entry, so a
    single-label vector is never silently read as one label."""
    y = np.asarray(targets)
    if y.ndim != 2:
        raise ValueError(f"{what} must be a 2-D label matrix (cases x labels), got shape {y.shape}")
    if num_labels is not None and y.shape[1] != num_labels:
        raise ValueError(f"{what} must have {num_labels} label columns, got {y.shape[1]}")
    if y.dtype == bool:
        return y.astype(np.float64)
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        raise ValueError(f"{what} must hold numbers 0, 1 and -1 or NaN for unknown, got {y.dtype}")
    out = y.astype(np.float64)
    out[out == UNKNOWN_ENTRY] = np.nan
    bad = ~np.isnan(out) & (out != 0) & (out != 1)
    if bad.any():
        row, col = map(int, np.argwhere(bad)[0])
        raise ValueError(f"{what}: case {row}, label {col} holds {y[row, col].item()!r}; entries must be 0 (absent), "
                         f"1 (present) or -1 / NaN (unknown)")
    return out


def known_mask(matrix: np.ndarray) -> np.ndarray:
    """True where an entry is known (0 or 1), False where it is unknown."""
    return ~np.isnan(np.asarray(matrix, dtype=np.float64))


def label_counts(matrix: np.ndarray) -> np.ndarray:
    """Known positive entries per label (int64): n_c, the training frequency long-tail
    methods weigh by. Unknown entries count as neither positive nor negative."""
    y = as_label_matrix(matrix)
    return np.nansum(y, axis=0).astype(np.int64)


def label_frequencies(matrix: np.ndarray, names: Sequence[str] | None = None) -> dict[str, float]:
    """Share of cases carrying each label among the cases where it is known (NaN when the
    label is never known), keyed by label name or index."""
    y = as_label_matrix(matrix)
    known = known_mask(y).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(known > 0, np.nansum(y, axis=0) / np.maximum(known, 1), np.nan)
    keys = list(names) if names is not None else [str(i) for i in range(y.shape[1])]
    return {k: float(v) for k, v in zip(keys, share)}

"""Unlabelled training rows (`data.unlabeled`): labels hidden on purpose, or extra rows
uploaded without labels, for semi- and self-supervised methods.

Unlabelled data can help the tail or hurt it (Yang & Xu 2020): pseudo-labels lean towards
the head classes. Hiding labels of a labelled split keeps the truth aside, so a page can
measure how right the pseudo-labels were; the truth is never given to training.
"""

from __future__ import annotations

from pathlib import PurePosixPath

import numpy as np

from core.data._loaders import DataError

__all__ = ["hidden_counts", "hide_labels", "load_unlabeled_upload", "UNKNOWN_LABEL"]

UNKNOWN_LABEL = -1  # y_unlabeled_true of an uploaded row: its class is not known


def hidden_counts(class_counts: np.ndarray, fraction: float) -> np.ndarray:
    """Rows hidden per class: fraction x n_j rounded half up, but every class present keeps
    at least one labelled row (a class with no label left could not be learnt at all)."""
    counts = np.asarray(class_counts, dtype=np.int64)
    wanted = np.floor(fraction * counts + 0.5).astype(np.int64)
    return np.clip(np.minimum(wanted, counts - 1), 0, None)


def hide_labels(y: np.ndarray, fraction: float, seed: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept, hidden) sorted row indices: `hidden_counts` rows of each class drawn without
    replacement, seeded by `seed` (the data seed)."""
    if not 0 <= fraction < 1:
        raise ValueError(f"hidden-label fraction must lie in [0, 1), got {fraction}")
    rng = np.random.default_rng([seed, 2])  # its own stream: the split itself used `seed`
    n_hide = hidden_counts(np.bincount(y, minlength=num_classes), fraction)
    hidden = [rng.choice(np.flatnonzero(y == j), size=int(n), replace=False) for j, n in enumerate(n_hide) if n]
    hidden_idx = np.sort(np.concatenate(hidden)) if hidden else np.array([], dtype=np.int64)
    kept = np.setdiff1d(np.arange(len(y)), hidden_idx)
    return kept, hidden_idx


def load_unlabeled_upload(source: str, dataset, data_config, input_shape: tuple[int, ...]) -> np.ndarray:
    """Rows of an uploaded unlabelled file as model input, made exactly like the run's own:
    a table needs the same feature columns (a label column may be there and is ignored)
    and goes through the training split's gap fills and scaling; images (a ZIP of pictures,
    one picture, or an `.npz` with `x`) are resized and coloured as the training images."""
    from core.data._sources import source_label, upload_path
    from core.data._batch import read_image_batch, read_table_batch

    data = upload_path(source).read_bytes()
    filename = source_label(source)
    if dataset.modality == "tabular":
        profile = None
        if data_config.source.startswith("upload:") and PurePosixPath(filename).suffix.lower() != ".npz":
            from core.data._columns import profile_table
            from core.data._sources import read_stored_table

            raw = read_stored_table(data_config.source)
            profile = profile_table(raw.frame, raw.filename, data_config.label_column, data_config.column_roles,
                                    first_row=raw.first_row, notes=raw.notes)
        x, *_ = read_table_batch(data_config, dataset, profile, filename, data)
    elif dataset.modality == "image":
        x, _ = read_image_batch(tuple(input_shape), filename, data)
    else:
        raise DataError(f"{filename}: unlabelled rows are supported for tables and images only")
    if len(x) == 0:
        raise DataError(f"{filename}: no unlabelled rows in the file")
    return np.ascontiguousarray(x, dtype=np.float32)

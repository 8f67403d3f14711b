"""Attribution maps remembered on disk, per sample: a page revisiting the same errors pays
nothing twice. Plain `.npy` files, written atomically and read without pickles."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from core.analysis._attribution import (
    ATTRIBUTIONS, ProgressFn, _num_classes, _target_tensor, attribute, attribution_output_shape,
)

__all__ = ["attribute_cached"]


def attribute_cached(
    cache_dir: Path,
    run_id: str,
    model: nn.Module,
    inputs: np.ndarray | Tensor,
    sample_ids: Sequence[int | str],
    *,
    method: str,
    targets: Sequence[int] | int | np.ndarray | Tensor,
    params: dict | None = None,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """`attribute`, remembered on disk per (run, method, parameters, target, sample id):
    only samples without a stored result are computed, so browsing errors page by page
    pays for each map once.

    Parameters are keyed after validation, so `{}` and the explicit defaults share
    entries. Files are plain `.npy` written atomically (temp file + rename) and read with
    `allow_pickle=False`; an unreadable or wrongly shaped file is recomputed.
    Stochastic methods (gradient_shap, SmoothGrad) are seeded per batch, so a cached map
    may differ slightly from one computed in a different batch.
    """
    x = torch.as_tensor(np.asarray(inputs) if not isinstance(inputs, Tensor) else inputs).detach()
    n = x.shape[0]
    ids = list(sample_ids)
    if len(ids) != n:
        raise ValueError(f"need one sample id per input: {n} inputs, {len(ids)} ids")
    target_array = _target_tensor(targets, n, _num_classes(model)).numpy()
    validated = ATTRIBUTIONS.validate(method, params)
    params_key = hashlib.sha1(json.dumps(validated.model_dump(), sort_keys=True).encode()).hexdigest()[:12]
    folder = Path(cache_dir) / _safe_name(str(run_id)) / method / params_key
    sample_shape = attribution_output_shape(method, x.shape[1:])

    out = np.empty((n, *sample_shape), dtype=np.float32)
    paths = [folder / f"target_{int(t)}" / f"{_safe_name(_id_text(i))}.npy" for i, t in zip(ids, target_array)]
    first_row_of_path: dict[Path, int] = {}
    missing: list[int] = []
    for row, path in enumerate(paths):
        if path in first_row_of_path:
            continue  # a repeated (id, target) is computed once and copied below
        first_row_of_path[path] = row
        stored = _load_npy(path, sample_shape)
        if stored is None:
            missing.append(row)
        else:
            out[row] = stored

    if missing:
        computed = attribute(model, x[missing], method=method, targets=target_array[missing].tolist(),
                             params=validated.model_dump(), batch_size=batch_size, device=device, progress=progress)
        for row, values in zip(missing, computed):
            _save_npy_atomic(paths[row], values)
            out[row] = values
    for row, path in enumerate(paths):
        out[row] = out[first_row_of_path[path]]
    return out


_SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}")


def _id_text(sample_id: Any) -> str:
    return str(int(sample_id)) if isinstance(sample_id, (int, np.integer)) else str(sample_id)


def _safe_name(text: str) -> str:
    """The text itself when it is a harmless file name, otherwise a stable hash of it."""
    if _SAFE_NAME.fullmatch(text):
        return text
    return "h_" + hashlib.sha1(text.encode()).hexdigest()[:20]


def _load_npy(path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    try:
        values = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    return values if values.shape == shape else None


def _save_npy_atomic(path: Path, values: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, np.asarray(values, dtype=np.float32), allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

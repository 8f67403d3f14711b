"""Per-class weights from training counts, shared by the weighted losses and DRW.

One function so that ``weighted_ce``, ``cb_focal`` and the trainer's deferred
re-weighting cannot drift apart: all normalise so the weights sum to K, which keeps
the loss on the scale of plain cross-entropy when the classes are balanced.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor

__all__ = ["WeightScheme", "WEIGHT_SCHEMES", "class_weights"]

WeightScheme = Literal["inverse", "inverse_sqrt", "effective_number"]
WEIGHT_SCHEMES: tuple[str, ...] = ("inverse", "inverse_sqrt", "effective_number")


def class_weights(counts, scheme: WeightScheme = "effective_number", beta: float = 0.9999) -> Tensor:
    """Per-class weights (float32, sum K, on the counts' device) for ``counts``.

    - ``inverse``: w_j ∝ 1 / n_j
    - ``inverse_sqrt``: w_j ∝ 1 / sqrt(n_j)
    - ``effective_number`` (Cui et al. 2019): w_j ∝ (1 - beta) / (1 - beta^n_j);
      beta = 0 gives uniform weights and beta -> 1 approaches ``inverse``.

    A class with no training samples is treated as having one, so its weight stays
    finite (it never appears as a target anyway).
    """
    device = counts.device if isinstance(counts, Tensor) else torch.device("cpu")
    n = torch.as_tensor(np.asarray(counts)) if not isinstance(counts, Tensor) else counts.detach()
    n = n.to("cpu", torch.float64)
    if n.ndim != 1 or n.numel() == 0:
        raise ValueError("counts must be a non-empty 1-D vector of class counts")
    if bool((n < 0).any()):
        raise ValueError("class counts must be non-negative")
    n = n.clamp_min(1.0)
    if scheme == "inverse":
        w = 1.0 / n
    elif scheme == "inverse_sqrt":
        w = n.rsqrt()
    elif scheme == "effective_number":
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"effective_number needs 0 <= beta < 1, got {beta}")
        if beta == 0.0:
            w = torch.ones_like(n)
        else:
            # 1 - beta^n computed as -expm1(n log beta): exact even for beta near 1
            effective = -torch.expm1(n * np.log(beta)) / (1.0 - beta)
            w = 1.0 / effective
    else:
        raise ValueError(f"unknown weight scheme {scheme!r}; known: {', '.join(WEIGHT_SCHEMES)}")
    w = w * (n.numel() / w.sum())
    return w.to(device=device, dtype=torch.float32)

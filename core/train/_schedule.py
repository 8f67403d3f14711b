"""Learning-rate schedules as pure functions of training progress (nanoGPT's `get_lr` style)."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["lr_at"]


def lr_at(
    progress: float,
    *,
    base_lr: float,
    schedule: str = "cosine",
    warmup: float = 0.0,
    milestones: Sequence[float] = (0.8, 0.9),
    gamma: float = 0.1,
) -> float:
    """Learning rate at `progress` in [0, 1] (the fraction of training done).

    Progress rather than a step count, because samplers may draw a different number of
    indices per epoch (two-phase, undersampling). Linear warm-up over the first `warmup`
    fraction, then cosine decay to zero, step decay by `gamma` at each milestone, or
    constant.
    """
    if warmup > 0 and progress < warmup:
        return base_lr * max(progress / warmup, 1e-3)
    if schedule == "constant":
        return base_lr
    if schedule == "step":
        return base_lr * gamma ** sum(progress >= m for m in milestones)
    if schedule == "cosine":
        span = max(1.0 - warmup, 1e-12)
        done = min(max(progress - warmup, 0.0) / span, 1.0)
        return base_lr * 0.5 * (1 + math.cos(math.pi * done))
    raise ValueError(f"unknown schedule {schedule!r}; known: cosine, step, constant")

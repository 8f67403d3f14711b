"""Learning-rate schedules as pure functions of the step (nanoGPT's `get_lr` style)."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["lr_at"]


def lr_at(
    step: int,
    *,
    total_steps: int,
    base_lr: float,
    schedule: str = "cosine",
    warmup_steps: int = 0,
    milestones: Sequence[float] = (0.8, 0.9),
    gamma: float = 0.1,
) -> float:
    """Learning rate at optimiser step `step` (0-based) of `total_steps`.

    Linear warm-up, then cosine decay to zero, step decay by `gamma` at each milestone
    (fractions of training), or constant.
    """
    if warmup_steps and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if schedule == "constant":
        return base_lr
    if schedule == "step":
        passed = sum(step >= m * total_steps for m in milestones)
        return base_lr * gamma**passed
    if schedule == "cosine":
        span = max(total_steps - warmup_steps, 1)
        progress = min(max(step - warmup_steps, 0) / span, 1.0)
        return base_lr * 0.5 * (1 + math.cos(math.pi * progress))
    raise ValueError(f"unknown schedule {schedule!r}; known: cosine, step, constant")

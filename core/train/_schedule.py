"""Learning-rate schedules as pure functions of training progress (nanoGPT's `get_lr` style), and the
plan of optimiser steps per epoch."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["lr_at", "scheduled_lr", "step_plan"]


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


def scheduled_lr(t, progress: float) -> float:
    """The learning rate at `progress` (0..1) of training under a run's `train` settings."""
    return lr_at(progress, base_lr=t.lr, schedule=t.schedule, warmup=t.warmup_epochs / t.epochs,
                 milestones=t.step_milestones, gamma=t.step_gamma)


def step_plan(epoch_length: int, batch_size: int, epochs: int, min_steps: int) -> dict[str, int]:
    """How many times each epoch repeats the sampler's draw so training takes at least
    `min_steps` optimiser steps: small tables otherwise get a handful of steps (130 rows,
    batch 128, 20 epochs: 20 steps) and stop far from a fit. Epoch-based settings (DRW,
    warm-up, milestones, patience) keep their meaning because an epoch stays an epoch.
    The repeated draws are concatenated, so an epoch has ceil(passes x length / batch) steps."""
    epoch_length = max(int(epoch_length), 1)
    plain = max(math.ceil(epoch_length / batch_size), 1)
    wanted = math.ceil(min_steps / epochs) if min_steps else 0
    passes = 1 if plain >= wanted else math.ceil(wanted * batch_size / epoch_length)
    per_epoch = max(math.ceil(passes * epoch_length / batch_size), 1)
    return {"batches_per_pass": plain, "passes_per_epoch": passes, "batches_per_epoch": per_epoch,
            "steps": per_epoch * epochs}

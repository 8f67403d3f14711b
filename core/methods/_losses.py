"""Losses for imbalanced classification, one registry (`LOSSES`).

Every loss is an ``nn.Module`` called as ``loss(logits, target) -> scalar``. It is built
with the training class counts (so prior-aware losses need no extra plumbing) and honours
an optional per-class ``class_weight`` the way ``F.cross_entropy(weight=...)`` does, which
is how deferred re-weighting (DRW) switches any loss to class-balanced weights mid-run.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.registry import Registry

__all__ = ["LOSSES", "Loss", "create_loss", "list_losses", "weighted_mean"]

LOSSES: Registry[Loss] = Registry("loss")


class Loss(nn.Module):
    """Base: stores class counts and an optional per-class weight (set by DRW)."""

    def __init__(self, *, class_counts: Tensor | list[int]):
        super().__init__()
        counts = torch.as_tensor(class_counts, dtype=torch.float32)
        self.register_buffer("class_counts", counts)
        self.register_buffer("class_weight", None)

    @property
    def prior(self) -> Tensor:
        return self.class_counts / self.class_counts.sum()

    def set_class_weight(self, weight: Tensor | None) -> None:
        self.class_weight = None if weight is None else weight.to(self.class_counts)


def weighted_mean(per_sample: Tensor, target: Tensor, class_weight: Tensor | None) -> Tensor:
    """Mean of per-sample losses, weighted by the target's class weight when given
    (normalised by the sum of weights, as ``F.cross_entropy(weight=...)`` does)."""
    if class_weight is None:
        return per_sample.mean()
    w = class_weight[target]
    return (per_sample * w).sum() / w.sum()


@LOSSES.register("ce", description="Plain cross-entropy: the baseline every fix is measured against.",
                 paper="")
class CrossEntropy(Loss):
    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits.float(), target, weight=self.class_weight)


def create_loss(name: str, params: dict | None = None, *, class_counts) -> Loss:
    return LOSSES.create(name, params, class_counts=class_counts)


def list_losses() -> list[str]:
    return LOSSES.names()

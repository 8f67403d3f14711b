"""Samplers: which training indices an epoch visits, drawn on the device (`SAMPLERS`).

A sampler returns an index tensor; the trainer slices batches from the resident data
with it, so no DataLoader sits on the hot path.
"""

from __future__ import annotations

import torch
from torch import Tensor

from core.registry import Registry

__all__ = ["SAMPLERS", "Sampler", "create_sampler", "list_samplers", "class_counts_of"]

SAMPLERS: Registry[Sampler] = Registry("sampler")


def class_counts_of(labels: Tensor, num_classes: int) -> Tensor:
    return torch.bincount(labels, minlength=num_classes)


class Sampler:
    """Public `sample_indices` validates; subclasses implement `_sample_indices`."""

    def __init__(self, **params):
        for key, value in params.items():
            setattr(self, key, value)

    def sample_indices(
        self,
        labels: Tensor,
        *,
        num_classes: int,
        epoch: int,
        num_epochs: int,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        if labels.ndim != 1 or labels.numel() == 0:
            raise ValueError("labels must be a non-empty 1-D tensor")
        if not 0 <= epoch < num_epochs:
            raise ValueError(f"epoch {epoch} outside 0..{num_epochs - 1}")
        idx = self._sample_indices(labels, num_classes=num_classes, epoch=epoch,
                                   num_epochs=num_epochs, generator=generator)
        return idx.to(device=labels.device, dtype=torch.long)

    def _sample_indices(self, labels, *, num_classes, epoch, num_epochs, generator) -> Tensor:
        raise NotImplementedError


@SAMPLERS.register("instance", description="Every training sample once per epoch, in random order.",
                   paper="")
class InstanceSampler(Sampler):
    def _sample_indices(self, labels, *, num_classes, epoch, num_epochs, generator):
        return torch.randperm(labels.numel(), device=labels.device, generator=generator)


def create_sampler(name: str, params: dict | None = None) -> Sampler:
    return SAMPLERS.create(name, params)


def list_samplers() -> list[str]:
    return SAMPLERS.names()

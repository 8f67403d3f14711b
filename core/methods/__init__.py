"""Imbalance methods: losses, samplers, resamplers and post-hoc adjustments."""

from core.methods._losses import LOSSES, Loss, create_loss, list_losses, weighted_mean
from core.methods._samplers import SAMPLERS, Sampler, class_counts_of, create_sampler, list_samplers

__all__ = [
    "LOSSES", "Loss", "create_loss", "list_losses", "weighted_mean",
    "SAMPLERS", "Sampler", "class_counts_of", "create_sampler", "list_samplers",
]

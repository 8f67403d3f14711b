"""Samplers: which training indices an epoch visits, drawn on the device (`SAMPLERS`).

A sampler returns an index tensor; the trainer slices batches from the resident data
with it, so no DataLoader sits on the hot path.

Class-level samplers share one vectorised recipe: draw a class per slot with
``torch.multinomial`` over the target class distribution, then a sample uniformly within
that class (via the labels sorted by class), all on the labels' device. Each exposes
``class_distribution(class_counts, epoch, num_epochs)``, the expected class frequencies of
an epoch's indices, so pages can plot the schedule and tests can check it.
"""

from __future__ import annotations

import math

from typing import Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from core.registry import Params, Registry, Seed

__all__ = [
    "SAMPLERS", "Sampler", "create_sampler", "list_samplers", "class_counts_of",
    "InstanceSampler", "ClassLevelSampler", "ClassBalancedSampler", "SqrtSampler",
    "ProgressiveSampler", "TemperatureSampler", "OversampleSampler", "UndersampleSampler",
    "cooldown_temperature",
]

SAMPLERS: Registry[Sampler] = Registry("sampler")


def class_counts_of(labels: Tensor, num_classes: int) -> Tensor:
    return torch.bincount(labels, minlength=num_classes)


def _counts64(class_counts) -> Tensor:
    """Counts as a CPU float64 vector: distributions are tiny and exactness helps tests."""
    if isinstance(class_counts, Tensor):
        counts = class_counts.detach().to("cpu", torch.float64)
    else:
        counts = torch.as_tensor(np.asarray(class_counts), dtype=torch.float64)
    if counts.ndim != 1 or counts.numel() == 0 or bool((counts < 0).any()) or counts.sum() <= 0:
        raise ValueError("class_counts must be a 1-D vector of non-negative counts, not all zero")
    return counts


def _normalise_present(weights: Tensor, counts: Tensor) -> Tensor:
    """Zero the classes with no samples (they cannot be drawn) and renormalise."""
    weights = torch.where(counts > 0, weights, torch.zeros_like(weights))
    return weights / weights.sum()


def _check_schedule(epoch: int, num_epochs: int) -> None:
    if num_epochs < 1 or not 0 <= epoch < num_epochs:
        raise ValueError(f"epoch {epoch} outside 0..{num_epochs - 1}")


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
        passes: int = 1,
    ) -> Tensor:
        """One epoch's indices; with `passes`, that many draws one after another (what the
        trainer uses on small data), the same as `passes` calls in a row."""
        if labels.ndim != 1 or labels.numel() == 0:
            raise ValueError("labels must be a non-empty 1-D tensor")
        if not 0 <= epoch < num_epochs:
            raise ValueError(f"epoch {epoch} outside 0..{num_epochs - 1}")
        if passes < 1:
            raise ValueError(f"passes must be at least 1, got {passes}")
        idx = self._sample_passes(labels, num_classes=num_classes, epoch=epoch, num_epochs=num_epochs,
                                  generator=generator, passes=passes)
        return idx.to(device=labels.device, dtype=torch.long)

    def _sample_passes(self, labels, *, num_classes, epoch, num_epochs, generator, passes) -> Tensor:
        draws = [self._sample_indices(labels, num_classes=num_classes, epoch=epoch, num_epochs=num_epochs,
                                      generator=generator) for _ in range(passes)]
        return draws[0] if passes == 1 else torch.cat(draws)

    def _sample_indices(self, labels, *, num_classes, epoch, num_epochs, generator) -> Tensor:
        raise NotImplementedError

    def class_distribution(self, class_counts, epoch: int = 0, num_epochs: int = 1) -> Tensor:
        """Expected class frequencies of one epoch's indices (CPU float64, sums to 1)."""
        _check_schedule(epoch, num_epochs)
        return self._class_distribution(_counts64(class_counts), epoch, num_epochs)

    def _class_distribution(self, counts: Tensor, epoch: int, num_epochs: int) -> Tensor:
        raise NotImplementedError

    def expected_class_counts(self, class_counts, epoch: int = 0, num_epochs: int = 1) -> Tensor:
        """Expected draws of each class in one epoch (CPU float64): the distribution times
        the epoch's length, which is N unless the sampler says otherwise."""
        counts = _counts64(class_counts)
        return self.class_distribution(counts, epoch, num_epochs) * self._epoch_length(counts, epoch, num_epochs)

    def _epoch_length(self, counts: Tensor, epoch: int, num_epochs: int) -> float:
        return float(counts.sum())

    def trained_prior(self, class_counts, num_epochs: int) -> np.ndarray:
        """The class frequencies the loss sees over the whole training, epochs weighted by
        their length: the prior the model's scores are calibrated to, which post-hoc
        prior corrections and prior-aware losses must use (not the raw counts)."""
        total = sum(self.expected_class_counts(class_counts, e, num_epochs) for e in range(num_epochs))
        return (total / total.sum()).numpy()


class _ByClass:
    """Labels grouped by class on their device: draw uniformly within given classes."""

    def __init__(self, labels: Tensor, num_classes: int):
        self.order = torch.argsort(labels, stable=True)
        self.counts = torch.bincount(labels, minlength=num_classes)
        self.starts = torch.cumsum(self.counts, 0) - self.counts

    def draw(self, classes: Tensor, generator: torch.Generator | None) -> Tensor:
        """One uniformly random sample index of each class in ``classes`` (with replacement)."""
        return self.pick(classes, torch.rand(classes.shape, device=classes.device, generator=generator))

    def pick(self, classes: Tensor, u: Tensor) -> Tensor:
        """The sample at position floor(u * size) within each class of ``classes`` (u in [0, 1))."""
        size = self.counts[classes]
        # float rounding can make u * size == size; clamp back inside the class
        offset = torch.minimum((u * size).long(), size - 1)
        return self.order[self.starts[classes] + offset]


class ClassLevelSampler(Sampler):
    """Draws N indices whose classes follow ``class_distribution`` for the epoch."""

    def _sample_indices(self, labels, *, num_classes, epoch, num_epochs, generator):
        return self._sample_passes(labels, num_classes=num_classes, epoch=epoch, num_epochs=num_epochs,
                                   generator=generator, passes=1)

    def _sample_passes(self, labels, *, num_classes, epoch, num_epochs, generator, passes):
        """The class groups and the epoch's distribution once, then each pass's draws (the
        generator is used exactly as by `passes` separate calls)."""
        groups = _ByClass(labels, num_classes)
        q = self.class_distribution(groups.counts, epoch, num_epochs)
        q = q.to(device=labels.device, dtype=torch.float32)
        classes, u = [], []
        for _ in range(passes):  # per pass: the classes, then the position within each class
            classes.append(torch.multinomial(q, labels.numel(), replacement=True, generator=generator))
            u.append(torch.rand(classes[-1].shape, device=labels.device, generator=generator))
        return groups.pick(torch.cat(classes), torch.cat(u))


# ---------------------------------------------------------------------------- params

class TemperatureParams(Params):
    t0: float = Field(5.0, ge=0.1, le=100.0,
                      title="Starting temperature",
                      description="Classes are drawn in proportion to share^(1/T): a high T is close to "
                                  "class-balanced, T = 1 is natural.")
    t_end: float = Field(1.0, ge=0.1, le=100.0,
                         title="Final temperature",
                         description="Temperature reached at the last epoch when the cooldown is on.")
    cooldown: bool = Field(True, title="Cool down",
                           description="Lower the temperature from the start value to the final one during "
                                       "training; off keeps the start value throughout.")
    cooldown_start: float = Field(0.5, ge=0.0, le=1.0,
                                  title="Cooldown starts at",
                                  description="Share of training after which the cooldown begins.")
    cooldown_shape: Literal["linear", "step"] = Field(
        "linear", title="Cooldown shape",
        description="A steady ramp down to the final temperature, or equal steps.",
        json_schema_extra={"choice_labels": {"linear": "steady ramp",
                                             "step": "steps"}})
    cooldown_steps: int = Field(1, ge=1, le=100, title="Cooldown steps",
                                description="Number of steps of the 'steps' shape (1: straight to the final "
                                            "temperature).")


class OversampleParams(Params):
    ratio: float = Field(1.0, gt=0.0, le=1.0,
                         title="Target share of the largest class",
                         description="Raise every class to at least ratio x (largest class count); 1 fully "
                                     "balances, as Buda et al. recommend.")


class UndersampleParams(Params):
    ratio: float = Field(1.0, gt=0.0, le=1000.0,
                         title="Multiple of the smallest class",
                         description="Keep ratio x (smallest class count) samples per class, capped at "
                                     "each class's count; 1 fully balances.")


# ---------------------------------------------------------------------------- samplers

@SAMPLERS.register("instance", display="Natural (every example once)",
                   description="Every training example once per epoch, in random order: common classes are seen "
                               "most.",
                   paper="")
class InstanceSampler(Sampler):
    def _sample_indices(self, labels, *, num_classes, epoch, num_epochs, generator):
        return torch.randperm(labels.numel(), device=labels.device, generator=generator)

    def _class_distribution(self, counts, epoch, num_epochs):
        return counts / counts.sum()


@SAMPLERS.register(
    "class_balanced", display="Class-balanced",
    description="Pick a class at random, then an example of it: every class is seen equally often.",
    paper="Kang et al., ICLR 2020, Decoupling Representation and Classifier for Long-Tailed Recognition",
    needs_class_counts=True,
)
class ClassBalancedSampler(ClassLevelSampler):
    def _class_distribution(self, counts, epoch, num_epochs):
        return _normalise_present(torch.ones_like(counts), counts)


@SAMPLERS.register(
    "sqrt", display="Square-root",
    description="Classes are drawn in proportion to the square root of their size: half-way to balanced.",
    paper="Mahajan et al., ECCV 2018, Exploring the Limits of Weakly Supervised Pretraining",
    needs_class_counts=True,
)
class SqrtSampler(ClassLevelSampler):
    def _class_distribution(self, counts, epoch, num_epochs):
        return _normalise_present(counts.sqrt(), counts)


@SAMPLERS.register(
    "progressive", display="Progressive (natural to balanced)",
    description="Moves steadily from natural to class-balanced sampling over training.",
    paper="Kang et al., ICLR 2020, Decoupling Representation and Classifier for Long-Tailed Recognition",
    needs_class_counts=True,
)
class ProgressiveSampler(ClassLevelSampler):
    """q_j(t) = (1 - t/T) pi_j + (t/T) / K with t the epoch and T the number of epochs."""

    def _class_distribution(self, counts, epoch, num_epochs):
        frac = epoch / num_epochs
        k = counts.numel()
        q = (1.0 - frac) * counts / counts.sum() + frac / k
        return _normalise_present(q, counts)


def cooldown_temperature(epoch: int, num_epochs: int, *, t0: float = 5.0, t_end: float = 1.0,
                         cooldown: bool = True, cooldown_start: float = 0.5,
                         cooldown_shape: str = "linear", cooldown_steps: int = 1) -> float:
    """Sampling temperature at ``epoch``: t0 until ``cooldown_start`` of training, then a
    linear ramp (or ``cooldown_steps`` equal steps, the first at once) that reaches
    ``t_end`` at the last epoch."""
    _check_schedule(epoch, num_epochs)
    if not cooldown:
        return float(t0)
    progress = epoch / (num_epochs - 1) if num_epochs > 1 else 1.0
    if progress < cooldown_start:
        return float(t0)
    span = 1.0 - cooldown_start
    r = 1.0 if span <= 0 else min(1.0, (progress - cooldown_start) / span)
    if cooldown_shape == "step":
        r = (min(math.floor(r * cooldown_steps), cooldown_steps - 1) + 1) / cooldown_steps
    return float(t0 + r * (t_end - t0))


@SAMPLERS.register(
    "temperature", display="Temperature with cooldown",
    description="Draws classes in proportion to share^(1/T): rare classes heavily repeated early, easing back "
                "toward natural later.",
    paper="Li et al., NAACL 2025, Upsample or Upweight? Balanced Training on Heavily Imbalanced Datasets",
    params=TemperatureParams, needs_class_counts=True,
)
class TemperatureSampler(ClassLevelSampler):
    def __init__(self, *, t0: float = 5.0, t_end: float = 1.0, cooldown: bool = True,
                 cooldown_start: float = 0.5, cooldown_shape: str = "linear", cooldown_steps: int = 1):
        super().__init__(t0=t0, t_end=t_end, cooldown=cooldown, cooldown_start=cooldown_start,
                         cooldown_shape=cooldown_shape, cooldown_steps=cooldown_steps)

    def temperature_at(self, epoch: int, num_epochs: int) -> float:
        return cooldown_temperature(epoch, num_epochs, t0=self.t0, t_end=self.t_end,
                                    cooldown=self.cooldown, cooldown_start=self.cooldown_start,
                                    cooldown_shape=self.cooldown_shape, cooldown_steps=self.cooldown_steps)

    def _class_distribution(self, counts, epoch, num_epochs):
        t = self.temperature_at(epoch, num_epochs)
        prior = counts / counts.sum()
        # in log space so large 1/T (T < 1) cannot underflow every class to zero
        log_q = torch.where(counts > 0, prior.clamp_min(1e-300).log() / t,
                            torch.full_like(prior, -torch.inf))
        return torch.softmax(log_q, 0)


@SAMPLERS.register(
    "oversample", display="Random oversampling",
    description="Every example once, plus random repeats of rare-class examples until each class reaches ratio x "
                "the largest.",
    paper="Buda et al., Neural Networks 2018, A systematic study of the class imbalance problem in "
          "convolutional neural networks",
    params=OversampleParams, needs_class_counts=True,
)
class OversampleSampler(Sampler):
    """Each present class at max(n_j, ratio x n_max) indices per epoch (ratio 1: K x n_max),
    repeats drawn afresh."""

    def __init__(self, *, ratio: float = 1.0):
        super().__init__(ratio=ratio)

    def per_class(self, class_counts) -> Tensor:
        """Indices of each class in one epoch: max(n_j, round(ratio * n_max)), 0 if absent."""
        counts = torch.as_tensor(class_counts).long()
        target = int(round(self.ratio * int(counts.max())))
        return torch.where(counts > 0, torch.clamp(counts, min=target), counts)

    def _sample_indices(self, labels, *, num_classes, epoch, num_epochs, generator):
        groups = _ByClass(labels, num_classes)
        extra = self.per_class(groups.counts) - groups.counts
        classes = torch.repeat_interleave(torch.arange(num_classes, device=labels.device), extra)
        idx = torch.cat([torch.arange(labels.numel(), device=labels.device),
                         groups.draw(classes, generator)])
        return idx[torch.randperm(idx.numel(), device=labels.device, generator=generator)]

    def _class_distribution(self, counts, epoch, num_epochs):
        return _normalise_present(self.per_class(counts).to(torch.float64), counts)

    def _epoch_length(self, counts, epoch, num_epochs):
        return float(self.per_class(counts).sum())


@SAMPLERS.register(
    "undersample", display="Random undersampling",
    description="A fresh random subset each epoch: at most ratio x the smallest class's count from each class.",
    paper="Buda et al., Neural Networks 2018, A systematic study of the class imbalance problem in "
          "convolutional neural networks",
    params=UndersampleParams, needs_class_counts=True,
)
class UndersampleSampler(Sampler):
    def __init__(self, *, ratio: float = 1.0):
        super().__init__(ratio=ratio)

    def kept_per_class(self, class_counts) -> Tensor:
        """How many samples of each class one epoch keeps: min(n_j, ratio * n_min)."""
        counts = torch.as_tensor(class_counts).long()
        n_min = counts[counts > 0].min()
        target = max(1, int(round(self.ratio * int(n_min))))
        return torch.clamp(counts, max=target)

    def _sample_indices(self, labels, *, num_classes, epoch, num_epochs, generator):
        n = labels.numel()
        counts = torch.bincount(labels, minlength=num_classes)
        keep = self.kept_per_class(counts)
        # random order within each class: shuffle, then stable-sort by class
        perm = torch.randperm(n, device=labels.device, generator=generator)
        by_class = perm[torch.argsort(labels[perm], stable=True)]
        sorted_labels = labels[by_class]
        starts = torch.cumsum(counts, 0) - counts
        rank = torch.arange(n, device=labels.device) - starts[sorted_labels]
        kept = by_class[rank < keep[sorted_labels]]
        return kept[torch.randperm(kept.numel(), device=labels.device, generator=generator)]

    def _class_distribution(self, counts, epoch, num_epochs):
        keep = self.kept_per_class(counts).to(torch.float64)
        return keep / keep.sum()

    def _epoch_length(self, counts, epoch, num_epochs):
        return float(self.kept_per_class(counts).sum())


class TwoPhaseParams(Params):
    switch: float = Field(0.5, gt=0, lt=1, title="Balanced phase length",
                          description="Share of training spent on the fixed balanced subset before all data is "
                                      "used.")
    ratio: float = Field(1.0, ge=1.0, le=1000.0,
                         title="Subset size (x smallest class)",
                         description="The balanced subset keeps this many times the smallest class's count from "
                                     "each class.")
    subset_seed: Seed = Field(0, title="Subset seed",
                             description="Random seed that picks the balanced subset.")


@SAMPLERS.register(
    "two_phase", display="Two-phase (balanced, then all)",
    description="Two-phase training: pre-train on one fixed balanced subset, then fine-tune on all data.",
    paper="Lee, Park & Kim, ICIP 2016, Plankton classification on imbalanced large scale database via "
          "convolutional neural networks with transfer learning (as studied by Buda et al. 2018)",
    params=TwoPhaseParams,
    needs_class_counts=True,
)
class TwoPhaseSampler(Sampler):
    def __init__(self, *, switch: float = 0.5, ratio: float = 1.0, subset_seed: int = 0):
        super().__init__(switch=switch, ratio=ratio, subset_seed=subset_seed)
        self._balanced = UndersampleSampler(ratio=ratio)

    def in_first_phase(self, epoch: int, num_epochs: int) -> bool:
        return epoch < max(1, int(round(self.switch * num_epochs)))

    def _sample_indices(self, labels, *, num_classes, epoch, num_epochs, generator):
        if not self.in_first_phase(epoch, num_epochs):
            return torch.randperm(labels.numel(), device=labels.device, generator=generator)
        # the same subset every phase-1 epoch (its own seed), visited in a fresh order
        fixed = torch.Generator(device=labels.device).manual_seed(self.subset_seed)
        subset = self._balanced._sample_indices(labels, num_classes=num_classes, epoch=0, num_epochs=1,
                                                generator=fixed)
        return subset[torch.randperm(subset.numel(), device=labels.device, generator=generator)]

    def _class_distribution(self, counts, epoch, num_epochs):
        if self.in_first_phase(epoch, num_epochs):
            return self._balanced._class_distribution(counts, epoch, num_epochs)
        return counts.to(torch.float64) / counts.sum()

    def _epoch_length(self, counts, epoch, num_epochs):
        if self.in_first_phase(epoch, num_epochs):
            return self._balanced._epoch_length(counts, epoch, num_epochs)
        return float(counts.sum())


def create_sampler(name: str, params: dict | None = None) -> Sampler:
    return SAMPLERS.create(name, params)


def list_samplers() -> list[str]:
    return SAMPLERS.names()

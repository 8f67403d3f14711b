"""Sharpness-aware training: each optimiser step takes the gradient at the worst nearby point
of the weights rather than at the weights themselves, so training settles in a flat minimum.

Two entries in `SHARPNESS`. SAM (Foret et al. 2021) moves the weights by
epsilon = rho x g / ||g|| (the norm over all parameters together), takes the loss's gradient
there, moves back and steps with it. ImbSAM (Zhou et al. 2023) does so for the rare classes
only: the common classes' gradient is taken at the weights as they are, the rare classes'
at the point their own gradient says is worst, and one step uses the sum.

Both act through the loop's two hooks (`Network.batch_loss`, `Network.before_step`): the
batch loss moves the weights and returns the loss at the moved point, so the loop's
backward pass gives the gradient there; `before_step` moves the weights back (and for
ImbSAM adds the common classes' gradient) before the optimiser steps. SAM wraps any batch
loss a stage set before it (robust training), so the two combine.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from core.config import RunConfig
from core.data import Splits
from core.models import Classifier
from core.registry import Params, Registry
from core.train._common import BatchLoss, Criterion, Network, RunHooks, Stage

__all__ = ["SHARPNESS", "SHARPNESS_AWARE", "SharpnessObjective", "sam_perturbation", "tail_classes"]

SHARPNESS: Registry[SharpnessObjective] = Registry("sharpness-aware training")
NORM_EPS = 1e-16  # as the reference SAM code: the perturbation of a zero gradient is zero


class SamParams(Params):
    rho: float = Field(0.05, gt=0, le=5, title="Neighbourhood radius (rho)",
                       description="How far the weights are moved towards the worst nearby point before the "
                                   "gradient is taken (0.05 in the paper's CIFAR runs; it tunes 0.01 to 0.5).")


class ImbSamParams(SamParams):
    tail_below: int | None = Field(None, ge=1, le=1_000_000, title="Rare classes: fewer training samples than",
                                   description="Classes with fewer training samples than this get the sharpness-aware "
                                               "step; empty: the data's tail bound (data.few_shot).")
    tail_weight: float = Field(2.0, gt=0, le=100, title="Weight of the rare classes' loss",
                               description="The rare classes' part of the loss is multiplied by this (2 in the "
                                           "paper's code).")


def sam_perturbation(grads: Sequence[Tensor | None], rho: float) -> list[Tensor | None]:
    """epsilon = rho x g / ||g||, the norm taken jointly over every parameter's gradient."""
    squares = [(g.float() ** 2).sum() for g in grads if g is not None]
    norm = torch.stack(squares).sum().sqrt() if squares else 0.0
    return [None if g is None else rho * g / (norm + NORM_EPS) for g in grads]


def tail_classes(class_counts: np.ndarray, below: int) -> np.ndarray:
    """Which classes are rare: fewer than `below` training samples."""
    return np.asarray(class_counts) < below


def _plain(forward, criterion: Criterion, x: Tensor, y: Tensor) -> Tensor:
    return criterion(forward(x))


class SharpnessObjective:
    """The loss of one batch at the moved weights, and the step back before the optimiser."""

    def __init__(self, *, rho: float, model: Classifier, class_counts: np.ndarray, inner: BatchLoss | None,
                 few_shot: int, **params):
        self.rho, self.model = rho, model
        self.inner = inner or _plain
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.moved: list[Tensor | None] = []
        self.extra: list[Tensor | None] = []  # a gradient to add before the step (ImbSAM: the common classes')

    def _move(self, grads: Sequence[Tensor | None]) -> None:
        self.moved = sam_perturbation(grads, self.rho)
        with torch.no_grad():
            for p, e in zip(self.params, self.moved):
                if e is not None:
                    p.add_(e.to(p.dtype))

    def before_step(self) -> None:
        """Back to the weights the step starts from, with the stored gradient added."""
        with torch.no_grad():
            for p, e in zip(self.params, self.moved):
                if e is not None:
                    p.sub_(e.to(p.dtype))
            for p, g in zip(self.params, self.extra):
                if g is not None:
                    p.grad = g.clone() if p.grad is None else p.grad + g
        self.moved, self.extra = [], []

    def __call__(self, forward, criterion: Criterion, x: Tensor, y: Tensor) -> Tensor:
        raise NotImplementedError


@SHARPNESS.register(
    "sam", display="Sharpness-aware minimisation (SAM)",
    description="Each step takes the gradient at the worst point within a small radius of the weights, so training "
                "ends in a flat minimum; about twice the cost of a plain step.",
    paper="Foret et al. 2021, Sharpness-Aware Minimization for Efficiently Improving Generalization (ICLR)",
    params=SamParams, class_aware=False)
class SharpnessAware(SharpnessObjective):
    def __call__(self, forward, criterion, x, y):
        loss = self.inner(forward, criterion, x, y)
        self._move(torch.autograd.grad(loss, self.params, allow_unused=True))
        return self.inner(forward, criterion, x, y)


@SHARPNESS.register(
    "imbsam", display="Class-aware SAM for rare classes (ImbSAM)",
    description="The sharpness-aware step for the rare classes only: the common classes' gradient is taken where the "
                "weights are, the rare classes' at their worst nearby point, so flatness is spent where data is thin.",
    paper="Zhou et al. 2023, ImbSAM: A Closer Look at Sharpness-Aware Minimization in Class-Imbalanced Recognition "
          "(ICCV); both parts of the loss divided by the whole batch and the rare part doubled, as the paper's code",
    params=ImbSamParams, class_aware=True)
class ClassAwareSharpness(SharpnessObjective):
    def __init__(self, *, tail_below: int | None, tail_weight: float, class_counts: np.ndarray, few_shot: int,
                 **common):
        super().__init__(class_counts=class_counts, few_shot=few_shot, **common)
        self.tail = torch.from_numpy(tail_classes(class_counts, tail_below or few_shot))
        self.tail_weight = tail_weight

    def _part(self, logits: Tensor, criterion: Criterion, rows: Tensor) -> Tensor:
        """The loss of `rows` divided by the whole batch's size (zero without such rows)."""
        if not rows.any():
            return logits.float().sum() * 0
        if rows.all():
            return criterion(logits)
        return criterion(logits, rows.float()) * (rows.sum() / len(rows))

    def __call__(self, forward, criterion, x, y):
        rare = self.tail.to(y.device)[y]
        out = forward(x)
        head = self._part(out, criterion, ~rare)
        tail = self.tail_weight * self._part(out, criterion, rare)
        self.extra = list(torch.autograd.grad(head, self.params, retain_graph=True, allow_unused=True))
        self._move(torch.autograd.grad(tail, self.params, allow_unused=True))
        return self.tail_weight * self._part(forward(x), criterion, rare) + head.detach()


class SharpnessAwareTraining(Stage):
    """Sharpness-aware training: the loop's batch loss and the step back before each
    optimiser step become the objective's."""

    name = "sharpness-aware training"

    def applies(self, config: RunConfig) -> bool:
        return config.sharpness is not None

    def check(self, config: RunConfig) -> None:
        if config.robust is not None and SHARPNESS.info(config.sharpness.name).capabilities["class_aware"]:
            raise ValueError("sharpness: ImbSAM splits each batch's plain loss by class and cannot wrap robust "
                             "training's loss; choose SAM with robust training, or remove robust")

    def before_loop(self, config: RunConfig, splits: Splits, net: Network, run: RunHooks) -> None:
        spec = config.sharpness
        objective = SHARPNESS.create(spec.name, spec.params, model=net.model, class_counts=net.class_counts,
                                     inner=net.batch_loss, few_shot=config.data.few_shot)
        net.batch_loss, net.before_step = objective, objective.before_step
        run.info["sharpness"] = {"name": spec.name, "params": spec.resolved_params()}


SHARPNESS_AWARE = SharpnessAwareTraining()

"""Adversarial attacks: the smallest change to an input, within a budget, that most hurts the
model's answer.

Every entry wraps captum's `captum.robust` FGSM or PGD (the maths is captum's) and is registered
in `ATTACKS` with its plain words, paper and typed parameters (epsilon, steps, step size). The
budget epsilon is in the inputs' own units: pictures lie in [0, 1], so 0.03 is 3 % of the
brightness range; tables are standardised, so 0.1 is a tenth of a standard deviation of each
feature. Robustness evaluation (`core.analysis`) and robust training (`core.train`) both attack
through `Attack.perturb`.

Two settings of captum are changed on purpose: its FGSM leaves a value alone where the
gradient is below 1e-6, which makes the step differ from epsilon x sign(gradient); here it is
exactly that. Its random start for the L2 ball draws radii on the CPU, which fails on a GPU;
here it is drawn on the inputs' device.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import torch
from pydantic import Field
from torch import Tensor, nn

from core.registry import Params, Registry, Seed

__all__ = ["ATTACKS", "Attack", "AttackParams", "PGDParams", "create_attack", "list_attacks", "input_bounds",
           "per_sample_cross_entropy"]

ATTACKS: Registry[Attack] = Registry("attack")

Forward = Callable[[Tensor], Tensor]
LossFn = Callable[[Tensor, Any], Tensor]


def input_bounds(modality: str) -> tuple[float, float]:
    """The valid range of an input value: pictures lie in [0, 1], standardised tables are unbounded."""
    return (0.0, 1.0) if modality == "image" else (-math.inf, math.inf)


def per_sample_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """The attacks' default loss, one value per input (captum sums them: each input's gradient
    does not depend on the rest of the batch)."""
    return nn.functional.cross_entropy(logits.float(), target, reduction="none")


# ---------------------------------------------------------------- parameter schemas


class AttackParams(Params):
    epsilon: float = Field(0.03, ge=0, le=100, title="Perturbation size (epsilon)",
                           description="How far each input may be moved: in brightness units for pictures (which lie "
                                       "in [0, 1]), in standard deviations for tables. 0 is no attack.")


class PGDParams(AttackParams):
    steps: int = Field(10, ge=1, le=1000, title="Steps",
                       description="Gradient steps of the attack; more finds stronger perturbations, and is slower.")
    step_size: float | None = Field(None, gt=0, le=100, title="Step size",
                                    description="How far one step moves the input; unset: 2.5 x epsilon / steps "
                                                "(Madry et al.), so the budget can be crossed in fewer steps.")
    random_start: bool = Field(True, title="Random start",
                               description="Start from a random point inside the budget instead of the input itself.")
    seed: Seed = Field(0, title="Random seed", description="Seed of the random start, so a rerun gives the same "
                                                           "result.")


# ---------------------------------------------------------------- attacks


class Attack:
    """An attack with its budget; `perturb` checks its inputs, `_perturb` works."""

    norm = "linf"

    def __init__(self, *, epsilon: float, **params: Any):
        self.epsilon = float(epsilon)

    def perturb(self, forward: Forward, x: Tensor, target: Any, *, bounds: tuple[float, float] = (-math.inf, math.inf),
                loss: LossFn | None = None, seed: int | None = None) -> Tensor:
        """Adversarial copies of `x` (same shape, detached) against `forward`'s `loss` (one value
        per input; default: cross-entropy with the labels `target`), inside the epsilon ball and `bounds`.
        Parameters receive no gradient; the model's mode (train or eval) is the caller's."""
        if not torch.is_floating_point(x):
            raise ValueError(f"inputs must be floating point, got {x.dtype}")
        if not bounds[0] < bounds[1]:
            raise ValueError(f"bounds must be (low, high) with low < high, got {bounds}")
        if loss is None and (not isinstance(target, Tensor) or target.shape[:1] != x.shape[:1]):
            raise ValueError("need one label per input")
        with torch.enable_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Input Tensor 0 did not already require gradients")
            out = self._perturb(forward, x.detach().clone().requires_grad_(), target, bounds, loss, seed)
        return out.detach()

    def _perturb(self, forward, x, target, bounds, loss, seed) -> Tensor:
        raise NotImplementedError


@ATTACKS.register(
    "fgsm", display="FGSM (one step)",
    description="One step of size epsilon in the direction that raises the loss fastest, on every input value at "
                "once: quick, and a weak test of robustness.",
    paper="Goodfellow et al. 2015, Explaining and Harnessing Adversarial Examples (ICLR)",
    params=AttackParams, norm="linf", iterative=False)
class FGSMAttack(Attack):
    def _perturb(self, forward, x, target, bounds, loss, seed) -> Tensor:
        from captum.robust import FGSM

        fgsm = FGSM(forward, loss or per_sample_cross_entropy, lower_bound=bounds[0], upper_bound=bounds[1])
        fgsm.zero_thresh = 0.0  # exactly epsilon x sign(gradient)
        return fgsm.perturb(x, self.epsilon, target)


class _PGDAttack(Attack):
    start = "uniform"  # "gaussian": TRADES' and MTARD's start, x + 0.001 N(0, 1)

    def __init__(self, *, epsilon: float, steps: int, step_size: float | None, random_start: bool, seed: int,
                 **params: Any):
        super().__init__(epsilon=epsilon)
        self.steps, self.random_start, self.seed = steps, random_start, seed
        self.step_size = step_size if step_size is not None else 2.5 * self.epsilon / steps

    def _perturb(self, forward, x, target, bounds, loss, seed) -> Tensor:
        pgd = _captum_pgd(self.start)(forward, loss or per_sample_cross_entropy, lower_bound=bounds[0],
                                      upper_bound=bounds[1])
        pgd.fgsm.zero_thresh = 0.0
        with _seeded(self.seed if seed is None else seed, x.device):
            adv = pgd.perturb(x, self.epsilon, self.step_size, self.steps, target, random_start=self.random_start,
                              norm="Linf" if self.norm == "linf" else "L2")
        if loss is not None:
            return adv
        # keep, per input, the worse of the clean point and the attacked one: the attack never helps the model
        with torch.no_grad():
            worse = per_sample_cross_entropy(forward(adv), target) >= per_sample_cross_entropy(forward(x), target)
        return torch.where(worse.view(-1, *([1] * (x.ndim - 1))), adv, x)


@ATTACKS.register(
    "pgd", display="PGD (several steps, largest change)",
    description="Several small steps that raise the loss, each pulled back so that no input value moves by more than "
                "epsilon: the standard test of robustness.",
    paper="Madry et al. 2018, Towards Deep Learning Models Resistant to Adversarial Attacks (ICLR)",
    params=PGDParams, norm="linf", iterative=True)
class PGDAttack(_PGDAttack):
    norm = "linf"


@ATTACKS.register(
    "pgd_l2", display="PGD (several steps, total change)",
    description="Several small steps that raise the loss, each pulled back so that the total size of the change "
                "(its Euclidean length) stays within epsilon: a few values may move a lot.",
    paper="Madry et al. 2018, Towards Deep Learning Models Resistant to Adversarial Attacks (ICLR); captum's PGD "
          "takes sign steps and projects onto the L2 ball",
    params=PGDParams, norm="l2", iterative=True)
class PGDL2Attack(_PGDAttack):
    norm = "l2"


def create_attack(name: str, params: dict | None = None) -> Attack:
    return ATTACKS.create(name, params)


def list_attacks() -> list[str]:
    return ATTACKS.names()


# ---------------------------------------------------------------- helpers


_PGD_CLASSES: dict[str, type] = {}


def _captum_pgd(start: str) -> type:
    """captum's PGD with a random start drawn on the inputs' device (uniform in the ball, or
    TRADES' small Gaussian), imported on first use: captum loads matplotlib (2-3 s)."""
    if start not in _PGD_CLASSES:
        from captum.robust import PGD

        class DevicePGD(PGD):
            def _random_point(self, center: Tensor, radius: float, norm: str, mask: Any) -> Tensor:
                if start == "gaussian":
                    return center + 0.001 * torch.randn_like(center) * mask
                if norm == "L2":
                    u = torch.randn_like(center).flatten(1)
                    unit = nn.functional.normalize(u, dim=1)
                    r = torch.rand(len(u), 1, device=center.device) ** (1.0 / u.shape[1]) * radius
                    return center + (r * unit).view_as(center) * mask
                return super()._random_point(center, radius, norm, mask)

        _PGD_CLASSES[start] = DevicePGD
    return _PGD_CLASSES[start]


@contextmanager
def _seeded(seed: int, device: torch.device):
    """Seed torch's generators for one attack without disturbing the caller's stream."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield

"""Robust training: the network learns from attacked copies of its training batches, so that
small changes to an input no longer change its answer.

Each objective in `ROBUST` makes adversarial copies of a batch with PGD (`core.methods.ATTACKS`,
the network in eval mode while it is attacked, as TRADES' code does) and returns the batch's
loss; the loop calls it in place of its plain loss (`Network.batch_loss`) and knows nothing
else. The config's loss, its DRW schedule and the per-row weights of cleaning stay in force
through `criterion` wherever the paper trains with a classification loss (PGD-AT, TRADES'
natural term, SRAT); MTARD learns from its teachers instead and takes plain cross-entropy.
Samplers combine with all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn

from core.config import RunConfig
from core.data import Splits
from core.methods import ATTACKS, class_weights, input_bounds, per_sample_cross_entropy
from core.models import Classifier
from core.registry import Params, Registry
from core.train._common import Criterion, Network, RunHooks, Stage, TrainResult

__all__ = ["ROBUST", "ROBUST_TRAINING", "RobustObjective", "trades_loss", "mtard_weights", "kl_elements",
           "separation_loss"]

ROBUST: Registry[RobustObjective] = Registry("robust training")
Forward = Callable[[Tensor], Tensor]


# ---------------------------------------------------------------- parameter schemas


class RobustParams(Params):
    epsilon: float = Field(0.03, gt=0, le=10, title="Training budget (epsilon)",
                           description="How far the attack may move each training input: brightness units for "
                                       "pictures (in [0, 1]), standard deviations for tables.")
    steps: int = Field(5, ge=1, le=100, title="Attack steps",
                       description="Gradient steps of the attack on each batch; each costs about one more pass.")
    step_size: float | None = Field(None, gt=0, le=10, title="Attack step size",
                                    description="How far one attack step moves the input; unset: 2.5 x epsilon / "
                                                "steps.")
    norm: Literal["linf", "l2"] = Field("linf", title="Budget shape",
                                        description="linf: no single value moves by more than epsilon; l2: the "
                                                    "total length of the change is at most epsilon.")


class TradesParams(RobustParams):
    beta: float = Field(6.0, gt=0, le=100, title="Robustness weight (beta)",
                        description="Weight of keeping the answer on the attacked copy close to the clean one, "
                                    "against accuracy on clean inputs (6 in the paper's CIFAR runs).")


class SratParams(RobustParams):
    weights: Literal["inverse", "inverse_sqrt", "effective_number"] = Field(
        "effective_number", title="Class weights",
        description="How a class's weight in the adversarial loss follows its training count.",
        json_schema_extra={"choice_labels": {"inverse": "1 / count", "inverse_sqrt": "1 / sqrt(count)",
                                             "effective_number": "effective number of samples"}})
    beta: float = Field(0.9999, ge=0.0, le=0.99999, title="Effective-number beta",
                        description="Only for effective-number weights: 0 weights all classes the same, values "
                                    "near 1 approach 1/count.")
    separation: float = Field(0.1, ge=0, le=10, title="Separation weight",
                              description="Weight of the term that pulls each attacked example's features towards "
                                          "its class and away from the nearest other class (0: re-weighting only).")
    margin: float = Field(0.5, gt=0, le=4, title="Separation margin",
                          description="How much closer to its own class than to any other an example's (unit "
                                      "length) features must be before the term stops pulling.")


class MtardParams(RobustParams):
    rate: float = Field(0.025, gt=0, lt=1, title="Weight update rate",
                        description="How fast the balance between the clean and the robust teacher follows which "
                                    "one the student lags behind more.")


# ---------------------------------------------------------------- formulas


def trades_loss(clean_logits: Tensor, adv_logits: Tensor, natural: Tensor, beta: float) -> Tensor:
    """TRADES (Zhang et al. 2019): the natural loss plus beta x KL(p(x) || p(x')) summed over
    the batch and divided by its size; the clean distribution is not detached."""
    kl = nn.functional.kl_div(nn.functional.log_softmax(adv_logits.float(), 1),
                              nn.functional.softmax(clean_logits.float(), 1), reduction="sum")
    return natural + beta * kl / len(clean_logits)


def kl_elements(student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """p_teacher (log p_teacher - log p_student) per element (MTARD's KL, temperature 1)."""
    return nn.functional.kl_div(nn.functional.log_softmax(student_logits.float(), 1),
                                nn.functional.softmax(teacher_logits.float(), 1), reduction="none")


def mtard_weights(w_nat: float, loss_adv: float, loss_nat: float, init_adv: float, init_nat: float,
                  rate: float, power: float = 1.0) -> tuple[float, float]:
    """MTARD's adaptive balance: r = (L / L_first)^power for each teacher's loss, then w_nat
    moves by `rate` towards r_nat / (r_adv + r_nat); w_adv = 1 - w_nat. Plain numbers: the
    weights carry no gradient."""
    r_adv, r_nat = (loss_adv / init_adv) ** power, (loss_nat / init_nat) ** power
    w_nat = w_nat - rate * (w_nat - r_nat / (r_adv + r_nat))
    return w_nat, 1.0 - w_nat


def separation_loss(features: Tensor, labels: Tensor, margin: float) -> Tensor:
    """Unit-length features must lie closer (squared distance) to their class's mean in the
    batch than to any other class's mean, by `margin`; 0 for a batch of one class."""
    f = nn.functional.normalize(features.float(), dim=1)
    classes, index = labels.unique(return_inverse=True)
    if len(classes) < 2:
        return f.new_zeros(())
    centres = torch.zeros(len(classes), f.shape[1], device=f.device).index_add_(0, index, f)
    centres = centres / torch.bincount(index, minlength=len(classes)).unsqueeze(1)
    dist = torch.cdist(f, centres) ** 2
    own = dist.gather(1, index.unsqueeze(1)).squeeze(1)
    other = dist.scatter(1, index.unsqueeze(1), float("inf")).amin(1)
    return nn.functional.relu(margin + own - other).mean()


# ---------------------------------------------------------------- objectives


class RobustObjective:
    """Adversarial copies of each batch and the loss the network learns from."""

    start = "uniform"  # PGD's random start; "gaussian": x + 0.001 N(0, 1) as TRADES and MTARD

    def __init__(self, *, epsilon: float, steps: int, step_size: float | None, norm: str, model: Classifier,
                 bounds: tuple[float, float], seed: int, class_counts: np.ndarray,
                 teachers: tuple[Classifier, ...] = (), **params: Any):
        self.attack = ATTACKS.create("pgd" if norm == "linf" else "pgd_l2",
                                     {"epsilon": epsilon, "steps": steps, "step_size": step_size})
        self.attack.start = self.start
        self.model, self.bounds, self.teachers = model, bounds, teachers
        self.generator = torch.Generator().manual_seed(seed)

    def adversarial(self, forward: Forward, x: Tensor, target: Any, loss=per_sample_cross_entropy) -> Tensor:
        seed = int(torch.randint(2**31 - 1, (1,), generator=self.generator))
        was_training = self.model.training
        self.model.eval()
        try:
            return self.attack.perturb(forward, x, target, bounds=self.bounds, loss=loss, seed=seed)
        finally:
            self.model.train(was_training)

    def __call__(self, forward: Forward, criterion: Criterion, x: Tensor, y: Tensor) -> Tensor:
        raise NotImplementedError


@ROBUST.register(
    "pgd_at", display="Adversarial training (PGD)",
    description="The network learns only from attacked copies of its training inputs, each moved within the budget "
                "to where the current network is most wrong.",
    paper="Madry et al. 2018, Towards Deep Learning Models Resistant to Adversarial Attacks (ICLR)",
    params=RobustParams, teachers=False)
class PGDAdversarialTraining(RobustObjective):
    def __call__(self, forward, criterion, x, y):
        return criterion(forward(self.adversarial(forward, x, y)))


@ROBUST.register(
    "trades", display="TRADES (accuracy plus stability)",
    description="The network learns from clean inputs and is also penalised when an attacked copy gets a different "
                "answer, trading some clean accuracy for stability.",
    paper="Zhang et al. 2019, Theoretically Principled Trade-off between Robustness and Accuracy (ICML)",
    params=TradesParams, teachers=False)
class Trades(RobustObjective):
    start = "gaussian"

    def __init__(self, *, beta: float, **common: Any):
        super().__init__(**common)
        self.beta = beta

    def __call__(self, forward, criterion, x, y):
        self.model.eval()
        with torch.no_grad():
            clean_p = nn.functional.softmax(forward(x).float(), 1)
        self.model.train()
        adv = self.adversarial(forward, x, clean_p,
                               loss=lambda out, p: nn.functional.kl_div(
                                   nn.functional.log_softmax(out.float(), 1), p, reduction="none").sum(1))
        clean, attacked = forward(x), forward(adv)  # two passes, as the paper's code: batch norm sees each apart
        return trades_loss(clean, attacked, criterion(clean), self.beta)


@ROBUST.register(
    "srat", display="Re-weighted adversarial training (SRAT)",
    description="Adversarial training in which rare classes weigh more, plus a term that keeps the classes' features "
                "apart, so that up-weighting the rare classes costs the common ones less.",
    paper="Wang et al. 2022, Imbalanced Adversarial Training with Reweighting (ICDM; arXiv 2107.13639). Only the "
          "abstract was read: the separation term here is one reading of it (features pulled to their class's "
          "centre, pushed from the nearest other one by a margin)",
    params=SratParams, teachers=False)
class SeparableReweighted(RobustObjective):
    def __init__(self, *, weights: str, beta: float, separation: float, margin: float, class_counts: np.ndarray,
                 **common: Any):
        super().__init__(class_counts=class_counts, **common)
        self.class_weight = class_weights(np.asarray(class_counts), weights, beta=beta)
        self.separation, self.margin = separation, margin

    def __call__(self, forward, criterion, x, y):
        adv = self.adversarial(forward, x, y)
        features = self.model.forward_features(adv)
        loss = criterion(self.model.head(features), self.class_weight.to(y.device)[y])
        if self.separation > 0:
            loss = loss + self.separation * separation_loss(features, y, self.margin)
        return loss


@ROBUST.register(
    "mtard", display="Two-teacher distillation (MTARD)",
    description="Two teachers are trained first, one on clean inputs and one robustly (TRADES); the network then "
                "learns to answer clean inputs like the first and attacked ones like the second.",
    paper="Zhao et al. 2022, Enhanced Accuracy and Robustness via Multi-Teacher Adversarial Distillation (ECCV); "
          "teachers here share the student's architecture, and the update rate does not decay",
    params=MtardParams, teachers=True)
class MultiTeacherDistillation(RobustObjective):
    start = "gaussian"

    def __init__(self, *, rate: float, **common: Any):
        super().__init__(**common)
        if len(self.teachers) != 2:
            raise ValueError("MTARD needs a clean and a robust teacher")
        self.rate, self.w_nat, self.first = rate, 0.5, None

    def __call__(self, forward, criterion, x, y):
        adv = self.adversarial(forward, x, y)
        clean_teacher, robust_teacher = self.teachers
        with torch.no_grad():
            teacher_nat, teacher_adv = clean_teacher(x), robust_teacher(adv)
        loss_nat = kl_elements(forward(x), teacher_nat).mean()
        loss_adv = kl_elements(forward(adv), teacher_adv).mean()
        values = float(loss_adv.detach()), float(loss_nat.detach())
        self.first = self.first or tuple(max(v, 1e-12) for v in values)
        self.w_nat, w_adv = mtard_weights(self.w_nat, *values, *self.first, rate=self.rate)
        return w_adv * loss_adv + self.w_nat * loss_nat


# ---------------------------------------------------------------- the stage


class RobustTraining(Stage):
    """Robust training: the loop's loss on each batch becomes the objective's; MTARD first
    trains its two teachers through the same training (`around`)."""

    name = "robust training"

    def applies(self, config: RunConfig) -> bool:
        return config.robust is not None

    def check(self, config: RunConfig) -> None:
        if config.robust.name == "mtard" and (config.loss.name != "ce" or config.loss.drw_epoch is not None):
            raise ValueError("robust: MTARD learns from its teachers' answers, not from a loss on the labels; "
                             "choose loss ce without DRW")

    def around(self, config: RunConfig, splits: Splits, run: RunHooks, inner) -> TrainResult:
        if config.robust is None or not ROBUST.info(config.robust.name).capabilities["teachers"]:
            return inner(config, splits, run)
        settings = {k: v for k, v in config.robust.resolved_params().items() if k in RobustParams.model_fields}
        teachers, info = [], {}
        for role, robust in (("clean", None), ("robust", {"name": "trades", **settings})):
            teacher_config = RunConfig.model_validate({**config.model_dump(exclude_none=True), "robust": robust})
            result = inner(teacher_config, splits, run.replace(teachers=()))
            teachers.append(result.model.eval().requires_grad_(False))
            info[role] = {"selected_epoch": result.info.get("selected_epoch"),
                          "val_balanced_accuracy": max((r.get("val_balanced_accuracy") or 0.0)
                                                       for r in result.history) if result.history else None}
        result = inner(config, splits, run.replace(teachers=tuple(teachers)))
        result.info.setdefault("robust", {})["teachers"] = info
        return result

    def before_loop(self, config: RunConfig, splits: Splits, net: Network, run: RunHooks) -> None:
        if config.robust is None:  # a teacher trained on clean inputs
            return
        spec = config.robust
        objective = ROBUST.create(spec.name, spec.params, model=net.model, bounds=input_bounds(splits.modality),
                                  seed=config.train.seed, class_counts=net.class_counts,
                                  teachers=tuple(t.to(net.device) for t in run.teachers))
        net.batch_loss = objective
        run.info["robust"] = {"name": spec.name, "params": spec.resolved_params()}


ROBUST_TRAINING = RobustTraining()

"""PLT-MLC's losses for long tails with missing labels (COMIC: correction, modification,
balance), registered in `MULTILABEL_LOSSES`.

Read in the authors' release, wannature/COMIC (loss/PriorFocalModifierLoss.py,
loss/ReflectiveLabelCorrectorLoss.py, loss/HeadTailBalancerLoss.py); the paper's equations
were not read. Built here:

- **modification** (`plt_modifier`, the prior focal modifier): ASL-style with gamma- 3,
  gamma+ 0, margin 0.05; the class weight w_c = (1 - log(n_c / n_max))^(1/3) multiplies the
  log-likelihood and is added to gamma-; a present entry's probability is scaled by
  (1 - a_c), a the mean of the column-normalised co-occurrence rows of the case's present
  labels, renormalised to sum 1; an absent entry of a co-occurring label (a_c > 0) has its
  clipped probability of absence multiplied by 1.2 (capped at 1). The focusing weight is
  computed without gradient, as the release's `disable_torch_grad_focal_loss=True`.
- **correction** (`plt_corrector`, the reflective label corrector): positive logits lose a
  margin of 1 before the sigmoid; from the correction epoch on (1 by default) an absent
  entry becomes present when its probability exceeds tau = 0.7 and the batch's mean
  probability of that label; the loss is ASL-style (gamma- 3 + w_c, gamma+ 0, margin 0.05)
  with w_c = (1 - log(n_c / n_max))^(1/6), the counts raised by the entries corrected so far
  in the epoch.

Departures, each because the loss stands alone here rather than as one term of COMIC's
three-branch network: the release's corrector returns 0 before its epoch (it is added to
other terms), here it is the same loss without corrections; its B / #positives scale is
replaced by this registry's mean over known entries. Unknown entries stay outside both
losses (an entry is corrected only where it is known absent: a run that reads unknown as
absent, PLT-MLC's setting, gives the corrector those entries to correct).

The **balance** step, three networks fed by three samplers, is a multi-label training scheme
(`plt_balance`, core/train/_three_branch.py) built from these two losses. Not built: its
head-tail balancer term, commented out of the release's training loop.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from core.methods._multilabel_losses import MULTILABEL_LOSSES, MultiLabelLoss
from core.registry import Params

__all__ = ["PriorFocalModifier", "ReflectiveLabelCorrector", "plt_class_weight"]


def plt_class_weight(counts: Tensor, exponent: float) -> Tensor:
    """w_c = (1 - log(n_c / n_max))^exponent: 1 for the most common label, more for rarer ones
    (a label with no count is treated as having one)."""
    prob = counts.clamp_min(1.0)
    prob = prob / prob.max()
    return (1 - prob.log()).pow(exponent)


def _asl_style(p_pos: Tensor, p_neg: Tensor, y: Tensor, weight: Tensor, gamma_neg: Tensor | float,
               eps: float = 1e-8) -> Tensor:
    """-(w log-likelihood) times the focusing weight (1 - p_t)^(gamma+ y + gamma- (1-y)), gamma+ = 0,
    the focusing weight without gradient."""
    log_lik = y * torch.log(p_pos.clamp(min=eps)) + (1 - y) * torch.log(p_neg.clamp(min=eps))
    with torch.no_grad():
        pt = p_pos * y + p_neg * (1 - y)
        focus = torch.pow(1 - pt, gamma_neg * (1 - y))
    return -(log_lik * weight) * focus


class ModifierParams(Params):
    gamma_neg: float = Field(3.0, ge=0.0, le=10.0, title="Focusing on absent findings (gamma-)",
                             description="Base discount of easy absent entries; each finding adds its class weight.")
    clip: float = Field(0.05, ge=0.0, le=0.5, title="Probability margin (m)",
                        description="Absent entries with a probability below this margin cost nothing.")
    co_occurring_push: float = Field(1.2, ge=1.0, le=3.0, title="Push on co-occurring absent findings",
                                     description="Factor on the probability of absence of findings that usually "
                                                 "come with the case's findings (1: none).")


@MULTILABEL_LOSSES.register(
    "plt_modifier", display="PLT-MLC prior focal modifier",
    description="Asymmetric loss whose focus and weights follow each finding's rarity and what it usually "
                "occurs with (the modification step of PLT-MLC).",
    paper="Zhang et al. 2023, Learning in Imperfect Environment: Multi-Label Classification with Long-Tailed "
          "Distribution and Partial Labels (PLT-MLC / COMIC), ICCV",
    params=ModifierParams,
)
class PriorFocalModifier(MultiLabelLoss):
    def __init__(self, *, gamma_neg: float = 3.0, clip: float = 0.05, co_occurring_push: float = 1.2, **context):
        super().__init__(**context)
        self.gamma_neg, self.clip, self.push = gamma_neg, clip, co_occurring_push
        self.register_buffer("weight", plt_class_weight(self.label_counts, 1 / 3))
        num = self.label_counts.numel()
        co = self.cooccurrence if self.cooccurrence is not None and self.cooccurrence.numel() else torch.diag(
            self.label_counts.clamp_min(1.0))
        if co.shape != (num, num):
            raise ValueError(f"the co-occurrence matrix must be {num} x {num} (labels x labels), got {tuple(co.shape)}")
        self.register_buffer("co_normalised", co / co.sum(dim=0).clamp_min(1e-12))

    def attention(self, y: Tensor) -> Tensor:
        """(n, L): mean co-occurrence row of each case's present labels, summing to 1 (0 without any)."""
        rows = y @ self.co_normalised / y.sum(dim=1, keepdim=True).clamp_min(1.0)
        total = rows.sum(dim=1, keepdim=True)
        return torch.where(total > 0, rows / total.clamp_min(1e-12), torch.zeros_like(rows))

    def elementwise(self, z, y, known):
        a = self.attention(y)
        p = torch.sigmoid(z)
        p_pos = p * (1 - a)
        p_neg = (1 - p + self.clip).clamp(max=1) if self.clip > 0 else 1 - p
        p_neg = torch.where(a == 0, p_neg, (p_neg * self.push).clamp(max=1))
        return _asl_style(p_pos, p_neg, y, self.weight, self.gamma_neg + self.weight)


class CorrectorParams(Params):
    tau: float = Field(0.7, ge=0.5, le=1.0, title="Confidence to correct (tau)",
                       description="An absent finding is read as present when the model gives it more than this.")
    margin: float = Field(1.0, ge=0.0, le=5.0, title="Margin on present findings",
                          description="Subtracted from the score of present findings before the probability.")
    correct_from_epoch: int = Field(1, ge=0, le=1000, title="Correct from epoch",
                                    description="First epoch (counted from 0) in which absent findings may be "
                                                "corrected.")


@MULTILABEL_LOSSES.register(
    "plt_corrector", display="PLT-MLC label corrector",
    description="Asymmetric loss that, after the first epoch, reads confidently predicted absent findings as "
                "present (the correction step of PLT-MLC).",
    paper="Zhang et al. 2023, Learning in Imperfect Environment: Multi-Label Classification with Long-Tailed "
          "Distribution and Partial Labels (PLT-MLC / COMIC), ICCV",
    params=CorrectorParams,
)
class ReflectiveLabelCorrector(MultiLabelLoss):
    def __init__(self, *, tau: float = 0.7, margin: float = 1.0, correct_from_epoch: int = 1, **context):
        super().__init__(**context)
        self.tau, self.margin, self.correct_from = tau, margin, correct_from_epoch
        self.gamma_neg, self.clip, self.epoch = 3.0, 0.05, 0
        self.register_buffer("corrected", torch.zeros_like(self.label_counts))

    def set_epoch(self, epoch: int) -> None:
        """Called by the trainer at each epoch's start: corrections count within an epoch."""
        if epoch != self.epoch:
            self.corrected.zero_()
        self.epoch = epoch

    def correct(self, z: Tensor, y: Tensor, known: Tensor) -> Tensor:
        """The targets after correction (known absent entries only; no gradient)."""
        with torch.no_grad():
            p = torch.sigmoid(torch.where(y == 1, z - self.margin, z))
            mean = (p * known).sum(dim=0) / known.sum(dim=0).clamp_min(1)
            flip = known & (y == 0) & (p > self.tau) & (p > mean)
        return torch.where(flip, torch.ones_like(y), y)

    def elementwise(self, z, y, known):
        if self.epoch >= self.correct_from:
            corrected = self.correct(z, y, known)
            self.corrected += (corrected - y).sum(dim=0).detach()
            y = corrected
        weight = plt_class_weight(self.label_counts + self.corrected, 1 / 6)
        p = torch.sigmoid(torch.where(y == 1, z - self.margin, z))
        p_neg = (1 - p + self.clip).clamp(max=1)
        return _asl_style(p, p_neg, y, weight, self.gamma_neg + weight)

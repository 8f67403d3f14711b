"""Losses for multi-label long tails, one registry (`MULTILABEL_LOSSES`).

Why a registry of their own rather than entries of `LOSSES` flagged multi-label: a
single-label loss is called as ``loss(logits, class_index)`` and a multi-label one as
``loss(logits, label_matrix)`` with unknown entries; they are not interchangeable, so a
Train form, a sweep or a config that offered one where the other is needed would fail
mid-run. As their own kind each gets its own contract checks (tests/test_contracts.py:
finite, deterministic, and unknown entries provably outside the loss), and no single-label
picker ever lists them.

Every entry is an ``nn.Module`` called as ``loss(logits, targets) -> scalar`` with
``targets`` an (n, L) float tensor: 1 present, 0 absent, NaN or -1 unknown. Built with the
training label counts (``label_counts``: known positives per label), the number of training
cases (``num_cases``) and, optionally, the training co-occurrence matrix (``cooccurrence``,
L x L counts of cases carrying both labels), which only the hybrid loss reads.

Shared conventions:

- logits are cast to float32;
- **unknown entries are outside the loss**: their logit is replaced by 0 and their target by
  0 before anything is computed, and their per-entry term is dropped, so what an unknown
  entry holds, and the logit the model gives it, change neither the loss nor any gradient;
- the loss is the mean of the per-entry terms over the known entries (ASL's official code
  sums instead: a constant factor, batch size x labels, that the learning rate absorbs; one
  scale for every entry keeps them swappable without retuning).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from core.methods._weights import class_weights
from core.registry import Params, Registry

__all__ = [
    "MULTILABEL_LOSSES", "MultiLabelLoss", "create_multilabel_loss", "list_multilabel_losses", "split_targets",
    "MultiLabelBCE", "MultiLabelFocal", "ClassBalancedBCE", "AsymmetricLoss", "DistributionBalancedLoss",
    "HybridLoss",
]

MULTILABEL_LOSSES: Registry[MultiLabelLoss] = Registry("multilabel_loss")


def split_targets(targets: Tensor, like: Tensor) -> tuple[Tensor, Tensor]:
    """(y, known): 0/1 targets with unknown entries set to 0, and the mask of known ones."""
    t = targets.to(device=like.device, dtype=torch.float32)
    if t.shape != like.shape:
        raise ValueError(f"targets must have the logits' shape {tuple(like.shape)}, got {tuple(t.shape)}")
    known = ~torch.isnan(t) & (t != -1)
    return torch.where(known, t, torch.zeros_like(t)), known


class MultiLabelLoss(nn.Module):
    """Base: label counts, training size, co-occurrence; masking and the mean over known entries."""

    def __init__(self, *, label_counts, num_cases: int, cooccurrence=None):
        super().__init__()
        counts = torch.as_tensor(label_counts, dtype=torch.float32).flatten()
        if counts.numel() == 0 or bool((counts < 0).any()):
            raise ValueError("label_counts must be a non-empty vector of non-negative counts")
        if num_cases < 1:
            raise ValueError("num_cases must be at least 1")
        self.register_buffer("label_counts", counts)
        self.num_cases = int(num_cases)
        co = None if cooccurrence is None else torch.as_tensor(cooccurrence, dtype=torch.float32)
        self.register_buffer("cooccurrence", co)

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        z = logits.float()
        y, known = split_targets(targets, z)
        z = torch.where(known, z, torch.zeros_like(z))
        per_entry = torch.where(known, self.elementwise(z, y, known), torch.zeros_like(z))
        return per_entry.sum() / known.sum().clamp_min(1) + self.batch_term(z, y, known)

    def elementwise(self, z: Tensor, y: Tensor, known: Tensor) -> Tensor:
        """(n, L) loss of each entry (unknown entries are dropped afterwards)."""
        raise NotImplementedError

    def batch_term(self, z: Tensor, y: Tensor, known: Tensor) -> Tensor:
        """A term over the whole batch (none by default)."""
        return z.new_zeros(())


# ---------------------------------------------------------------------------- entries

@MULTILABEL_LOSSES.register(
    "bce", display="Binary cross-entropy (plain)",
    description="One yes/no cross-entropy per finding, every finding and case weighted the same.",
    paper="The standard multi-label baseline (as in Wu et al. 2020, Distribution-Balanced Loss, ECCV)",
)
class MultiLabelBCE(MultiLabelLoss):
    def elementwise(self, z, y, known):
        return F.binary_cross_entropy_with_logits(z, y, reduction="none")


class FocalBCEParams(Params):
    gamma: float = Field(2.0, ge=0.0, le=10.0, title="Focusing strength (gamma)",
                         description="How much entries the model already gets right are discounted; 0 is plain "
                                     "binary cross-entropy.")


@MULTILABEL_LOSSES.register(
    "focal_bce", display="Focal loss (per finding)",
    description="Binary cross-entropy per finding times (1 - p_t)^gamma, so easy entries count less.",
    paper="Lin et al. 2017, Focal Loss for Dense Object Detection, ICCV (sigmoid form, without alpha)",
    params=FocalBCEParams,
)
class MultiLabelFocal(MultiLabelLoss):
    def __init__(self, *, gamma: float = 2.0, **context):
        super().__init__(**context)
        self.gamma = gamma

    def elementwise(self, z, y, known):
        bce = F.binary_cross_entropy_with_logits(z, y, reduction="none")
        p_t = torch.exp(-bce)  # sigmoid(z) for a present entry, 1 - sigmoid(z) for an absent one
        return (1 - p_t).pow(self.gamma) * bce


class CBParams(Params):
    beta: float = Field(0.9999, ge=0.0, le=0.99999, title="Effective-number beta",
                        description="0 weights every finding the same; values near 1 approach 1 / (training count).")


@MULTILABEL_LOSSES.register(
    "cb_bce", display="Class-balanced binary cross-entropy",
    description="Binary cross-entropy with each finding's column weighted by its effective number of examples.",
    paper="Cui et al. 2019, Class-Balanced Loss Based on Effective Number of Samples, CVPR (weights by finding, the "
          "by-class mode of the Distribution-Balanced Loss code)",
    params=CBParams,
)
class ClassBalancedBCE(MultiLabelLoss):
    """w_c = (1 - beta) / (1 - beta^n_c), normalised to sum L, multiplies both the present and
    the absent term of column c. Multi-label CB has no canonical form; this is the DB repo's
    `by_class` mode (its default `average_w` gives each case the mean weight of its labels)."""

    def __init__(self, *, beta: float = 0.9999, **context):
        super().__init__(**context)
        self.register_buffer("weight", class_weights(self.label_counts, "effective_number", beta))

    def elementwise(self, z, y, known):
        return self.weight * F.binary_cross_entropy_with_logits(z, y, reduction="none")


class ASLParams(Params):
    gamma_neg: float = Field(4.0, ge=0.0, le=10.0, title="Focusing on absent findings (gamma-)",
                             description="How much easy absent entries are discounted (the paper's training: 4).")
    gamma_pos: float = Field(0.0, ge=0.0, le=10.0, title="Focusing on present findings (gamma+)",
                             description="How much easy present entries are discounted (the paper's training: 0).")
    clip: float = Field(0.05, ge=0.0, le=0.5, title="Probability margin (m)",
                        description="Absent entries with a probability below this margin cost nothing.")


@MULTILABEL_LOSSES.register(
    "asl", display="Asymmetric loss (ASL)",
    description="Focal-style loss with a stronger discount and a probability margin for absent findings.",
    paper="Ridnik et al. 2021, Asymmetric Loss for Multi-Label Classification, ICCV",
    params=ASLParams,
)
class AsymmetricLoss(MultiLabelLoss):
    """As `AsymmetricLoss` in Alibaba-MIIL/ASL src/loss_functions/losses.py (read for this
    module): p_m = max(p - m, 0) for absent entries (`xs_neg = min(1 - p + m, 1)`),
    L+ = -(1 - p)^gamma+ log p, L- = -p_m^gamma- log(1 - p_m), logs clamped at eps = 1e-8,
    and the focusing weight kept in the graph (its detaching lines are commented out there).
    Defaults are the paper's training setting (gamma- 4, gamma+ 0, m 0.05), not the class's
    constructor default gamma+ = 1. Mean over known entries instead of the sum."""

    def __init__(self, *, gamma_neg: float = 4.0, gamma_pos: float = 0.0, clip: float = 0.05, **context):
        super().__init__(**context)
        self.gamma_neg, self.gamma_pos, self.clip, self.eps = gamma_neg, gamma_pos, clip, 1e-8

    def elementwise(self, z, y, known):
        p = torch.sigmoid(z)
        xs_neg = (1 - p + self.clip).clamp(max=1) if self.clip > 0 else 1 - p
        log_lik = y * torch.log(p.clamp(min=self.eps)) + (1 - y) * torch.log(xs_neg.clamp(min=self.eps))
        pt = p * y + xs_neg * (1 - y)
        weight = torch.pow(1 - pt, self.gamma_pos * y + self.gamma_neg * (1 - y))
        return -log_lik * weight


class DBParams(Params):
    alpha: float = Field(0.1, ge=0.0, le=10.0, title="Weight floor (alpha)",
                         description="Smallest weight an entry can get from the re-balancing.")
    beta: float = Field(10.0, ge=0.0, le=100.0, title="Weight steepness (beta)",
                        description="How sharply the re-balanced weight rises around mu.")
    mu: float = Field(0.2, ge=0.0, le=1.0, title="Weight midpoint (mu)",
                      description="Re-balancing ratio at which the weight is halfway up (0.2 COCO, 0.3 VOC).")
    kappa: float = Field(0.05, ge=0.0, le=1.0, title="Prior shift (kappa)",
                         description="How far rare findings' scores are shifted by their training frequency.")
    lam: float = Field(2.0, gt=0.0, le=20.0, title="Tolerance to absent findings (lambda)",
                       description="Scale of the absent entries' term: larger forgives rare findings' negatives "
                                   "more (2 COCO, 5 VOC).")
    gamma: float = Field(2.0, ge=0.0, le=10.0, title="Focusing strength (gamma)",
                         description="Focal discount of easy entries; 0 turns the focal part off.")


@MULTILABEL_LOSSES.register(
    "db", display="Distribution-balanced loss (DB)",
    description="Re-balanced weights that undo the double counting of co-occurring findings, plus a "
                "tolerance for the many absent entries of rare findings.",
    paper="Wu et al. 2020, Distribution-Balanced Loss for Multi-Label Classification in Long-Tailed Datasets, ECCV",
    params=DBParams,
)
class DistributionBalancedLoss(MultiLabelLoss):
    """As `ResampleLoss` of wutong16/DistributionBalancedLoss mllt/models/losses/resample_loss.py
    (read for this module) with the DB-Focal settings of configs/coco/LT_resnet50_pfc_DB.py:

    - re-balanced weight r_k = (1/n_k) / sum_{j present} (1/n_j), smoothed
      r^ = alpha + sigmoid(beta (r - mu)); the same r^ on the present and the absent term;
      a case with no known positive gets r = inf, r^ = alpha + 1, as the code's division gives;
    - negative-tolerant regularisation: z~ = z + kappa b_k with b_k = -log(N/n_k - 1) (the
      prior's logit, n_k clamped to [0.5, N - 0.5] so it stays finite), absent entries
      scored as (1/lambda) log(1 + exp(lambda z~)). That file divides kappa b by lambda; the
      author called this a bug (issue #8), so it is not done here;
    - focal: 2 (1 - p_t)^gamma times the weighted term, p_t from the regularised, scaled logit
      (not detached), the factor 2 being the configs' `balance_param`.
    The prior of an entry is n_k / N over the training cases."""

    def __init__(self, *, alpha=0.1, beta=10.0, mu=0.2, kappa=0.05, lam=2.0, gamma=2.0, **context):
        super().__init__(**context)
        self.alpha, self.beta, self.mu, self.kappa, self.lam, self.gamma = alpha, beta, mu, kappa, lam, gamma
        n = self.label_counts.clamp(0.5, self.num_cases - 0.5) if self.num_cases > 1 else self.label_counts.clamp_min(
            0.5)
        bias = -torch.log(torch.clamp(self.num_cases / n - 1, min=1e-6))
        self.register_buffer("bias", bias)
        self.register_buffer("inverse_count", 1.0 / self.label_counts.clamp_min(1.0))

    def rebalanced_weight(self, y: Tensor) -> Tensor:
        repeat = (y * self.inverse_count).sum(dim=1, keepdim=True)
        r = self.inverse_count / repeat.clamp_min(1e-12)
        smooth = self.alpha + torch.sigmoid(self.beta * (r - self.mu))
        return torch.where(repeat > 0, smooth, torch.full_like(smooth, self.alpha + 1.0))

    def elementwise(self, z, y, known):
        weight = self.rebalanced_weight(y)
        shifted = z + self.kappa * self.bias
        scaled = shifted * y + self.lam * shifted * (1 - y)
        term = F.binary_cross_entropy_with_logits(scaled, y, reduction="none")
        weight = weight * y + weight / self.lam * (1 - y)
        if self.gamma == 0:
            return weight * term
        p_t = torch.exp(-term)
        return 2.0 * (1 - p_t).pow(self.gamma) * weight * term


class HybridParams(Params):
    weight_class: float = Field(1.0, ge=0.0, le=10.0, title="Class-weighting share (unverified)",
                                description="Weight of the class-weighted cross-entropy part; the paper's value was "
                                            "not available.")
    weight_correlation: float = Field(0.1, ge=0.0, le=10.0, title="Label-correlation share (unverified)",
                                      description="Weight of the part that keeps findings that co-occur in training "
                                                  "close in probability.")
    weight_contrastive: float = Field(0.1, ge=0.0, le=10.0, title="Contrastive share (unverified)",
                                      description="Weight of the part that makes cases with similar findings score "
                                                  "alike and others apart.")
    beta: float = Field(0.9999, ge=0.0, le=0.99999, title="Effective-number beta",
                        description="Class weights of the first part: 0 all equal; near 1 close to 1 / count.")


@MULTILABEL_LOSSES.register(
    "hybrid", display="Hybrid loss (class weights, label correlation, contrast)",
    description="Class-weighted cross-entropy plus a label-correlation term and a contrastive term between cases; "
                "the form of the last two is this workbench's reading of the paper.",
    paper="Aslam et al. 2024, Improving Arabic Multi-Label Emotion Classification using Stacked Embeddings and "
          "Hybrid Loss Function (arXiv 2410.03979; only the abstract was read)",
    params=HybridParams,
)
class HybridLoss(ClassBalancedBCE):
    """What the abstract states it combines: class weighting, a label-correlation matrix and
    contrastive learning. The exact terms and their weights were not available, so:

    - class weighting: `cb_bce` (effective-number weights by column), times `weight_class`;
    - label correlation: with A the training co-occurrence turned into symmetric conditional
      probabilities (A_ij = (P(j|i) + P(i|j)) / 2, diagonal 0), the mean over known pairs of
      A_ij (p_i - p_j)^2 / mean A: findings that go together are pushed to similar
      probabilities (a graph smoothness term); zero without a co-occurrence matrix;
    - contrast: over pairs of cases in the batch, (cos(p_a, p_b) - J(y_a, y_b))^2 averaged,
      J the Jaccard similarity of their present findings, both over the entries known in
      both cases: cases with the same findings are pulled together, others pushed apart.
    """

    def __init__(self, *, weight_class=1.0, weight_correlation=0.1, weight_contrastive=0.1, beta=0.9999,
                 **context):
        super().__init__(beta=beta, **context)
        self.shares = (weight_class, weight_correlation, weight_contrastive)
        adjacency = torch.zeros(0)
        if self.cooccurrence is not None and self.cooccurrence.numel():
            co = self.cooccurrence
            diag = co.diagonal().clamp_min(1.0)
            conditional = co / diag[:, None]  # P(j | i)
            adjacency = (conditional + conditional.T) / 2
            adjacency = adjacency - torch.diag(adjacency.diagonal())
        self.register_buffer("adjacency", adjacency)

    def elementwise(self, z, y, known):
        return self.shares[0] * super().elementwise(z, y, known)

    def batch_term(self, z, y, known):
        p = torch.sigmoid(z) * known
        total = z.new_zeros(())
        if self.shares[1] and self.adjacency.numel():
            both = known[:, :, None] & known[:, None, :]  # (n, L, L)
            gap = (p[:, :, None] - p[:, None, :]).pow(2) * self.adjacency * both
            scale = self.adjacency.mean().clamp_min(1e-12)
            total = total + self.shares[1] * gap.sum() / both.sum().clamp_min(1) / scale
        if self.shares[2] and z.shape[0] > 1:
            total = total + self.shares[2] * _pairwise_alignment(p, y, known)
        return total


def _pairwise_alignment(p: Tensor, y: Tensor, known: Tensor) -> Tensor:
    """Mean over pairs of cases of (cosine of their probabilities - Jaccard of their present
    findings)^2, both over the entries known in both."""
    shared = known.float() @ known.float().T  # entries known in both (n, n)
    kf = known.float()
    dot = (p * kf) @ (p * kf).T  # p is already 0 where unknown; restrict to shared entries below
    norm_a = (p.pow(2)) @ kf.T  # sum over entries known in b of p_a^2
    cosine = dot / (norm_a.clamp_min(1e-12).sqrt() * norm_a.T.clamp_min(1e-12).sqrt())
    yk = y * kf
    inter = yk @ yk.T
    union = yk @ kf.T + kf @ yk.T - inter
    jaccard = torch.where(union > 0, inter / union.clamp_min(1e-12), torch.ones_like(union))
    off = ~torch.eye(p.shape[0], dtype=torch.bool, device=p.device) & (shared > 0)
    if not bool(off.any()):
        return p.new_zeros(())
    return (cosine - jaccard)[off].pow(2).mean()


def create_multilabel_loss(name: str, params: dict | None = None, **context) -> MultiLabelLoss:
    return MULTILABEL_LOSSES.create(name, params, **context)


def list_multilabel_losses() -> list[str]:
    return MULTILABEL_LOSSES.names()


"""Losses for imbalanced classification, one registry (`LOSSES`).

Every loss is an ``nn.Module`` called as ``loss(logits, target) -> scalar``. It is built
with the class counts its batches follow (so prior-aware losses need no extra plumbing):
the trainer passes the prior after any sampler or resampler times the training size, so
a balanced sampler plus a prior-correcting loss does not correct twice; LDAM
(capability ``counts="samples"``) keeps the real sample counts, whose margins bound the
generalisation error per class. Each loss honours
an optional per-class ``class_weight`` the way ``F.cross_entropy(weight=...)`` does, which
is how deferred re-weighting (DRW) switches any loss to class-balanced weights mid-run.

Shared conventions, so losses can be swapped without retuning the trainer:

- logits are cast to float32 first (bf16 autocast would otherwise lose the small
  probabilities the imbalance losses care about);
- a loss's own per-class weights (``weighted_ce``, focal ``alpha``, ``cb_focal``) multiply
  ``class_weight``, and per-sample losses are reduced by :func:`weighted_mean`, i.e.
  normalised by the batch's sum of weights like ``F.cross_entropy(weight=...)``;
- batch-level losses (``dice``, ``anyloss``) average their per-class terms, weighted by
  ``class_weight`` when set;
- every loss stays finite, with finite gradients, for logits as large as ±1e4.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from core.methods._weights import class_weights
from core.registry import Params, Registry

__all__ = [
    "LOSSES", "Loss", "create_loss", "list_losses", "weighted_mean",
    "CrossEntropy", "WeightedCrossEntropy", "FocalLoss", "ClassBalancedFocalLoss", "LDAMLoss",
    "BalancedSoftmaxLoss", "LogitAdjustedLoss", "LabelSmoothingLoss", "DiceLoss", "AnyLoss",
    "ZLoss", "ldam_margins",
]

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

    @property
    def log_prior(self) -> Tensor:
        """log pi_j, with an absent class counted as one sample so it stays finite."""
        counts = self.class_counts.clamp_min(1.0)
        return (counts / counts.sum()).log()

    def set_class_weight(self, weight: Tensor | None) -> None:
        self.class_weight = None if weight is None else weight.to(self.class_counts)

    def _combined_weight(self, own: Tensor | None) -> Tensor | None:
        """The loss's own per-class weight times ``class_weight`` (either may be None)."""
        if own is None:
            return self.class_weight
        if self.class_weight is None:
            return own
        return own * self.class_weight


def weighted_mean(per_sample: Tensor, target: Tensor, class_weight: Tensor | None) -> Tensor:
    """Mean of per-sample losses, weighted by the target's class weight when given
    (normalised by the sum of weights, as ``F.cross_entropy(weight=...)`` does)."""
    if class_weight is None:
        return per_sample.mean()
    w = class_weight[target]
    return (per_sample * w).sum() / w.sum()


def _weighted_class_mean(per_class: Tensor, class_weight: Tensor | None) -> Tensor:
    """Average of per-class terms of a batch-level loss, weighted when a weight is set."""
    if class_weight is None:
        return per_class.mean()
    return (per_class * class_weight).sum() / class_weight.sum()


# ---------------------------------------------------------------------------- params

class WeightedCEParams(Params):
    weights: Literal["inverse", "inverse_sqrt", "effective_number"] = Field(
        "inverse", title="Class weights",
        description="How the weight of a class follows its count: 1/count, 1/sqrt(count) or the effective number "
                    "of samples (Cui et al. 2019).",
        json_schema_extra={"choice_labels": {"inverse": "1 / count",
                                             "inverse_sqrt": "1 / sqrt(count)",
                                             "effective_number": "effective number of samples"}})
    beta: float = Field(0.9999, ge=0.0, le=0.99999,
                        title="Effective-number beta",
                        description="Only for effective-number weights: 0 weights all classes the same, values "
                                    "near 1 approach 1/count.")


class FocalParams(Params):
    gamma: float = Field(2.0, ge=0.0, le=10.0,
                         title="Focusing strength (gamma)",
                         description="How much examples the model already gets right are discounted; 0 is plain "
                                     "cross-entropy.")
    alpha: Literal["none", "inverse", "inverse_sqrt", "effective_number"] = Field(
        "none", title="Class weights (alpha)",
        description="Optional extra weight per class; 'none' keeps all classes equal.",
        json_schema_extra={"choice_labels": {"none": "none",
                                             "inverse": "1 / count",
                                             "inverse_sqrt": "1 / sqrt(count)",
                                             "effective_number": "effective number of samples"}})
    beta: float = Field(0.9999, ge=0.0, le=0.99999,
                        title="Effective-number beta",
                        description="Only for effective-number weights: 0 weights all classes the same, values "
                                    "near 1 approach 1/count.")


class CBFocalParams(Params):
    beta: float = Field(0.9999, ge=0.0, le=0.99999,
                        title="Effective-number beta",
                        description="0 weights all classes the same; values near 1 approach 1/count.")
    gamma: float = Field(2.0, ge=0.0, le=10.0,
                         title="Focusing strength (gamma)",
                         description="How much examples the model already gets right are discounted; 0 gives "
                                     "class-balanced cross-entropy.")


class LDAMParams(Params):
    max_margin: float = Field(0.5, ge=0.0, le=5.0,
                              title="Largest margin",
                              description="Margin asked of the rarest class; other classes get C / n^(1/4).")
    s: float = Field(1.0, gt=0.0, le=100.0,
                     title="Score scale (s)",
                     description="Scores are multiplied by s after the margin is taken off. The paper's 30 is for "
                                 "a classifier on normalised features; on this workbench's plain linear "
                                 "classifiers 1 trains best.")


class LogitAdjustedParams(Params):
    tau: float = Field(1.0, ge=0.0, le=5.0,
                       title="Adjustment strength (tau)",
                       description="How strongly class shares shift the scores; 0 is plain cross-entropy, 1 is "
                                   "optimal for balanced error.")


class LabelSmoothingParams(Params):
    eps: float = Field(0.1, ge=0.0, lt=1.0,
                       title="Smoothing (eps)",
                       description="Share of the target probability spread evenly over all classes.")


class DiceParams(Params):
    alpha: float = Field(0.1, ge=0.0, le=2.0,
                         title="Easy-example discount (alpha)",
                         description="Weights each probability p by (1 - p)^alpha so easy examples count less; 0 "
                                     "is plain soft Dice.")
    smooth: float = Field(1e-4, ge=0.0, le=10.0,
                          title="Smoothing constant",
                          description="Added above and below the fraction so classes absent from a batch stay "
                                      "defined.")


class AnyLossParams(Params):
    metric: Literal["f1", "balanced_accuracy", "gmean"] = Field(
        "f1", title="Metric to optimise",
        description="The score the loss approximates (loss = 1 - score).",
        json_schema_extra={"choice_labels": {"f1": "F1 (F-beta)",
                                             "balanced_accuracy": "Balanced accuracy",
                                             "gmean": "G-mean"}})
    L: float = Field(50.0, ge=1.0, le=100.0,
                     title="Sharpness (L)",
                     description="How steeply probabilities are pushed toward 0 or 1 before counting hits and "
                                 "misses.")
    beta: float = Field(1.0, gt=0.0, le=10.0,
                        title="F-beta weight (beta)",
                        description="For F1 only: beta > 1 favours finding cases, beta < 1 favours being right "
                                    "when claiming; 1 is F1.")
    threshold: float | None = Field(
        None, gt=0.0, lt=1.0,
        title="Decision threshold",
        description="Probability at which a case counts as claimed; empty: 0.5 for two classes (the paper), 1/K "
                    "for K classes.")


class ZLossParams(Params):
    a: float = Field(1.0, gt=0.0, le=100.0,
                     title="Sharpness (a)",
                     description="How sharply the loss turns off once the true class stands out enough.")
    b: float = Field(1.0, ge=-10.0, le=10.0,
                     title="Target gap (b)",
                     description="How far, in standard deviations, the true class's score should stand above the "
                                 "average score.")


# ---------------------------------------------------------------------------- losses

@LOSSES.register("ce", display="Cross-entropy (plain)",
                 description="The standard loss: every training example counts the same. The baseline every fix is "
                             "measured against.",
                 paper="")
class CrossEntropy(Loss):
    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits.float(), target, weight=self.class_weight)


@LOSSES.register(
    "weighted_ce", display="Class-weighted cross-entropy",
    description="The standard loss with mistakes on rare classes counting more (by 1/count, 1/sqrt(count) or the "
                "effective number of samples).",
    paper="Cui et al., CVPR 2019, Class-Balanced Loss Based on Effective Number of Samples",
    params=WeightedCEParams, needs_class_counts=True, corrects_prior=True,
)
class WeightedCrossEntropy(Loss):
    def __init__(self, *, class_counts, weights: str = "inverse", beta: float = 0.9999):
        super().__init__(class_counts=class_counts)
        self.register_buffer("scheme_weight", class_weights(self.class_counts, weights, beta))

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits.float(), target, weight=self._combined_weight(self.scheme_weight))


def _focal_per_sample(logits: Tensor, target: Tensor, gamma: float) -> Tensor:
    log_p = F.log_softmax(logits, dim=-1).gather(1, target[:, None]).squeeze(1)
    # 1 - p from expm1 is exact near p = 1; the clamp keeps (1-p)^gamma differentiable
    # for gamma < 1 when p rounds to exactly 1.
    one_minus_p = (-torch.expm1(log_p)).clamp_min(1e-12)
    return -(one_minus_p ** gamma) * log_p


@LOSSES.register(
    "focal", display="Focal loss",
    description="Counts examples the model already gets right less, so the hard ones drive the learning.",
    paper="Lin et al., ICCV 2017, Focal Loss for Dense Object Detection",
    params=FocalParams,
)
class FocalLoss(Loss):
    def __init__(self, *, class_counts, gamma: float = 2.0, alpha: str = "none", beta: float = 0.9999):
        super().__init__(class_counts=class_counts)
        self.gamma = gamma
        alpha_w = None if alpha == "none" else class_weights(self.class_counts, alpha, beta)
        self.register_buffer("alpha", alpha_w)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        per_sample = _focal_per_sample(logits.float(), target, self.gamma)
        return weighted_mean(per_sample, target, self._combined_weight(self.alpha))


@LOSSES.register(
    "cb_focal", display="Class-balanced focal loss",
    description="Focal loss in which rare classes count more, weighted by their effective number of samples.",
    paper="Cui et al., CVPR 2019, Class-Balanced Loss Based on Effective Number of Samples",
    params=CBFocalParams, needs_class_counts=True, corrects_prior=True,
)
class ClassBalancedFocalLoss(FocalLoss):
    def __init__(self, *, class_counts, beta: float = 0.9999, gamma: float = 2.0):
        super().__init__(class_counts=class_counts, gamma=gamma, alpha="effective_number", beta=beta)


def ldam_margins(class_counts, max_margin: float = 0.5) -> Tensor:
    """Delta_j = C / n_j^(1/4) with C chosen so the largest margin is ``max_margin``."""
    counts = torch.as_tensor(class_counts, dtype=torch.float32).clamp_min(1.0)
    raw = counts.pow(-0.25)
    return raw * (max_margin / raw.max())


@LOSSES.register(
    "ldam", display="LDAM margin loss",
    description="Label-distribution-aware margin: the model must win by a wider margin on rare classes (C / "
                "n^(1/4)), keeping the boundary away from them.",
    paper="Cao et al., NeurIPS 2019, Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss",
    params=LDAMParams, needs_class_counts=True, corrects_prior=True, counts="samples",
)
class LDAMLoss(Loss):
    """Applied to plain logits with scale ``s`` as given. The paper's s=30 multiplies
    cosine logits in [-1, 1]; on the unbounded logits of a linear head it multiplies the
    effective learning rate by 30 and training falls apart (digits exp-100, 30 epochs:
    LDAM-DRW balanced accuracy 0.51 at s=30 against 0.71 at s=1, CE 0.66), so s defaults to 1."""

    def __init__(self, *, class_counts, max_margin: float = 0.5, s: float = 1.0):
        super().__init__(class_counts=class_counts)
        self.s = s
        self.register_buffer("margins", ldam_margins(self.class_counts, max_margin))

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        z = logits.float()
        shifted = z - F.one_hot(target, z.shape[1]).to(z) * self.margins[target][:, None]
        return F.cross_entropy(self.s * shifted, target, weight=self.class_weight)


@LOSSES.register(
    "balanced_softmax", display="Balanced softmax",
    description="Shifts each class's score by how common the class is in training, so the model learns as if the "
                "classes were balanced.",
    paper="Ren et al., NeurIPS 2020, Balanced Meta-Softmax for Long-Tailed Visual Recognition",
    needs_class_counts=True, corrects_prior=True,
)
class BalancedSoftmaxLoss(Loss):
    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits.float() + self.log_prior, target, weight=self.class_weight)


@LOSSES.register(
    "logit_adjusted", display="Logit-adjusted loss",
    description="Adds tau x log(class share) to the scores while training, so common classes must earn their wins: "
                "aims at balanced error.",
    paper="Menon et al., ICLR 2021, Long-Tail Learning via Logit Adjustment",
    params=LogitAdjustedParams, needs_class_counts=True, corrects_prior=True,
)
class LogitAdjustedLoss(Loss):
    def __init__(self, *, class_counts, tau: float = 1.0):
        super().__init__(class_counts=class_counts)
        self.tau = tau

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits.float() + self.tau * self.log_prior, target,
                               weight=self.class_weight)


@LOSSES.register(
    "label_smoothing", display="Label smoothing",
    description="Trains toward a softened answer (a little probability on every class), which tempers "
                "over-confidence.",
    paper="Szegedy et al., CVPR 2016, Rethinking the Inception Architecture for Computer Vision",
    params=LabelSmoothingParams,
)
class LabelSmoothingLoss(Loss):
    def __init__(self, *, class_counts, eps: float = 0.1):
        super().__init__(class_counts=class_counts)
        self.eps = eps

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits.float(), target, weight=self.class_weight, label_smoothing=self.eps)


def _softmax_and_complement(z: Tensor) -> tuple[Tensor, Tensor]:
    """(p, 1 - p) with 1 - p accurate when p rounds to 1 in float32 (a logit gap of ~17 or
    more): the top class's complement is the mass of the other classes, summed directly,
    and every other class's is s - e_j, which still holds the top class's 1."""
    e = torch.exp(z - z.max(dim=1, keepdim=True).values)
    s = e.sum(dim=1, keepdim=True)
    top = F.one_hot(e.argmax(dim=1), z.shape[1]).bool()
    rest = e.masked_fill(top, 0.0).sum(dim=1, keepdim=True)
    return e / s, torch.where(top, rest, s - e) / s


@LOSSES.register(
    "dice", display="Self-adjusting Dice loss",
    description="Scores the overlap between predictions and truth per class over each batch, counting easy "
                "examples less.",
    paper="Li et al., ACL 2020, Dice Loss for Data-imbalanced NLP Tasks",
    params=DiceParams, batch_level=True,
)
class DiceLoss(Loss):
    """Per class j over the batch, with p~ = (1 - p)^alpha p:
    loss_j = 1 - (2 sum p~_j y_j + smooth) / (sum p~_j + sum y_j + smooth), averaged over
    the K classes. The issue's ``gamma`` has no counterpart: the authors' self-adjusting
    factor is the single exponent ``alpha`` (their code also has no gamma)."""

    def __init__(self, *, class_counts, alpha: float = 0.1, smooth: float = 1e-4):
        super().__init__(class_counts=class_counts)
        self.alpha = alpha
        self.smooth = smooth

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        p, one_minus_p = _softmax_and_complement(logits.float())
        p_adj = one_minus_p.clamp_min(torch.finfo(p.dtype).tiny) ** self.alpha * p
        y = F.one_hot(target, p.shape[1]).to(p)
        numer = 2.0 * (p_adj * y).sum(0) + self.smooth
        denom = p_adj.sum(0) + y.sum(0) + self.smooth
        per_class = 1.0 - numer / denom.clamp_min(1e-12)
        return _weighted_class_mean(per_class, self.class_weight)


@LOSSES.register(
    "anyloss", display="AnyLoss (metric as loss)",
    description="Turns a confusion-matrix metric (F1, balanced accuracy, G-mean) into a differentiable loss; "
                "its gradients are small, so train it with adamw.",
    paper="Han, Moniz & Chawla, KDD 2024, AnyLoss: Transforming Classification Metrics into Loss Functions",
    params=AnyLossParams, batch_level=True,
)
class AnyLoss(Loss):
    """One-vs-rest per class on softmax probabilities, A = sigmoid(L (p - c)), soft
    confusion entries summed over the batch, loss = 1 - macro-average of the metric.
    A class absent from the batch has zero recall by construction (constant term).

    The paper is binary, with c = 0.5. With K softmax outputs an untrained model predicts
    p ~ 1/K, where sigmoid(L (1/K - 0.5)) is saturated (about 2e-9 for K = 10, L = 50) and
    no gradient flows: training never starts. So c defaults to 1/K for K > 2.
    """

    eps = 1e-5

    def __init__(self, *, class_counts, metric: str = "f1", L: float = 50.0, beta: float = 1.0,
                 threshold: float | None = None):
        super().__init__(class_counts=class_counts)
        self.metric = metric
        self.L = L
        self.beta = beta
        k = len(self.class_counts)
        self.threshold = threshold if threshold is not None else (0.5 if k <= 2 else 1.0 / k)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        p = F.softmax(logits.float(), dim=-1)
        a = torch.sigmoid(self.L * (p - self.threshold))
        y = F.one_hot(target, p.shape[1]).to(p)
        n = float(p.shape[0])
        tp = (y * a).sum(0)
        sum_a, sum_y = a.sum(0), y.sum(0)
        fp, fn = sum_a - tp, sum_y - tp
        tn = n - sum_y - sum_a + tp
        eps = self.eps
        if self.metric == "f1":
            b2 = self.beta ** 2
            score = (1 + b2) * tp / ((1 + b2) * tp + b2 * fn + fp + eps)
        elif self.metric == "balanced_accuracy":
            score = 0.5 * (tp / (tp + fn + eps) + tn / (tn + fp + eps))
        else:  # gmean; the clamp keeps sqrt's gradient finite when recall is exactly 0
            score = ((tp / (tp + fn + eps)) * (tn / (tn + fp + eps))).clamp_min(1e-12).sqrt()
        return _weighted_class_mean(1.0 - score, self.class_weight)


@LOSSES.register(
    "zloss", display="Z-loss",
    description="Asks the true class's score to stand out from the others after the scores are standardised "
                "(unaffected by shifting or scaling them); train it with adamw.",
    paper="de Brébisson & Vincent, arXiv 2016, The Z-loss: a shift and scale invariant classification "
          "loss belonging to the Spherical Family",
    params=ZLossParams, min_classes=3,
)
class ZLoss(Loss):
    """z' = (z - mean z) / std z per sample, loss = softplus(a (b - z'_y)) / a.
    Not PaLM's log^2 Z regulariser, which shares the name only. With two classes the
    standardised logits are always +1 and -1, so the loss is flat and never trains
    (measured: balanced accuracy 0.500 on every fold of a binary table): `min_classes=3`."""

    def __init__(self, *, class_counts, a: float = 1.0, b: float = 1.0):
        super().__init__(class_counts=class_counts)
        self.a = a
        self.b = b

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        z = logits.float()
        centred = z - z.mean(dim=1, keepdim=True)
        std = (centred.pow(2).mean(dim=1, keepdim=True) + 1e-12).sqrt()
        z_true = (centred / std).gather(1, target[:, None]).squeeze(1)
        per_sample = F.softplus(self.a * (self.b - z_true)) / self.a
        return weighted_mean(per_sample, target, self.class_weight)


def create_loss(name: str, params: dict | None = None, *, class_counts) -> Loss:
    return LOSSES.create(name, params, class_counts=class_counts)


def list_losses() -> list[str]:
    return LOSSES.names()

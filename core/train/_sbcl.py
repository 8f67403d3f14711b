"""Subclass-balancing contrastive pre-training (SBCL; Hou et al., ICCV 2023, "Subclass-balancing
Contrastive Learning for Long-tailed Recognition"), registered in `PRETRAIN` beside contrastive
and masked pre-training, and followed by the usual training (and any two-stage fix).

Head classes are split into subclasses of about the tail's size by clustering their current
features: class c gets K_c = max(1, floor(n_c / max(n_min, M))) subclasses (M = 10), found by
k-means on unit-length features (cosine distance), redone every few epochs; subclass ids are
unique across classes. The loss, over two random views of each input (the paper's code,
`SupConLoss_rank`), adds

- a subclass term: supervised contrastive loss whose positives are the anchor's subclass,
  temperature tau, scaled by tau / 0.07, and
- a class term, weight gamma: positives are the anchor's class outside its subclass plus its
  own other view; the anchor's subclass is left out of the denominator, and the temperature is
  the anchor class's own: tau_c = tau x d_c / mean(d), d_c the class's mean distance to its
  centre over log(n_c + 10), clipped to the 20th-80th percentile (tau for one-subclass classes).

Every class counts as one subclass during the first `warmup` epochs (plain supervised
contrastive learning, as the paper starts). Departures: cheap random views (shift, blanked
entries, noise) instead of the paper's image augmentations; plain k-means, not its
balanced variant; a few dozen epochs, not 1,000.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn

from core.models import Classifier
from core.train._device import predict
from core.train._pretrain import PRETRAIN, PretrainParams, _Objective, random_view

__all__ = ["subclass_counts", "assign_subclasses", "class_temperatures", "sbcl_loss"]

BASE_TEMPERATURE = 0.07


def subclass_counts(class_counts: np.ndarray, size: int = 10) -> np.ndarray:
    """K_c = max(1, floor(n_c / max(n_min, size))) for each class (0 for a class with no rows)."""
    counts = np.asarray(class_counts, np.int64)
    smallest = counts[counts > 0].min() if (counts > 0).any() else 1
    return np.where(counts > 0, np.maximum(1, counts // max(int(smallest), size)), 0)


def assign_subclasses(features: np.ndarray, labels: np.ndarray, per_class: np.ndarray, seed: int) -> np.ndarray:
    """Each row's subclass id, unique across classes: k-means with K_c clusters on the unit-
    length features of class c (one subclass where K_c is 1)."""
    from sklearn.cluster import KMeans

    f = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    out, offset = np.zeros(len(labels), np.int64), 0
    for c, k in enumerate(per_class):
        rows = np.flatnonzero(labels == c)
        k = int(min(k, len(rows)))
        if k <= 1:
            out[rows] = offset
        else:
            out[rows] = offset + KMeans(k, n_init=1, random_state=seed).fit_predict(f[rows])
        offset += max(k, 1)
    return out


def class_temperatures(features: np.ndarray, labels: np.ndarray, per_class: np.ndarray, tau: float) -> np.ndarray:
    """tau_c = tau x d_c / mean(d), d_c = mean distance of class c's unit-length features to
    their centre over log(n_c + 10), clipped to the 20th-80th percentile of d; tau for a class
    with one subclass."""
    f = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    k = len(per_class)
    spread = np.full(k, np.nan)
    for c in range(k):
        rows = f[labels == c]
        if len(rows):
            spread[c] = np.linalg.norm(rows - rows.mean(0), axis=1).mean() / math.log(len(rows) + 10)
    present = np.isfinite(spread)
    low, high = np.percentile(spread[present], [20, 80])
    clipped = np.clip(spread, low, high)
    mean = clipped[present].mean()
    out = np.where(present & (np.asarray(per_class) > 1), tau * clipped / max(mean, 1e-12), tau)
    return out.astype(np.float32)


def _log_softmax_over(logits: Tensor, allowed: Tensor) -> Tensor:
    """log exp(l_ij) / sum over allowed k of exp(l_ik), row by row."""
    masked = logits.masked_fill(~allowed, float("-inf"))
    return logits - torch.logsumexp(masked, dim=1, keepdim=True)


def sbcl_loss(z: Tensor, labels: Tensor, subclasses: Tensor, *, tau: float, class_tau: Tensor, gamma: float) -> Tensor:
    """SBCL's loss on 2B unit-length embeddings (all first views, then all second views) of B
    inputs with their classes and subclasses; `class_tau` holds each class's temperature."""
    n = len(z)
    b = n // 2
    y, s = labels.repeat(2), subclasses.repeat(2)
    sim = z.float() @ z.float().T
    eye = torch.eye(n, dtype=torch.bool, device=z.device)
    other_view = torch.roll(eye, b, dims=1)
    same_sub, same_class = s[:, None] == s[None, :], y[:, None] == y[None, :]

    pos_sub = same_sub & ~eye  # always holds the own other view
    log_prob = _log_softmax_over(sim / tau, ~eye)
    sub_term = (log_prob * pos_sub).sum(1) / pos_sub.sum(1)

    allowed = (~same_sub) | other_view
    pos_class = (same_class & ~same_sub) | other_view
    log_prob_class = _log_softmax_over(sim / class_tau[y][:, None], allowed)
    class_term = (log_prob_class.masked_fill(~pos_class, 0.0)).sum(1) / pos_class.sum(1)
    return (-(tau / BASE_TEMPERATURE) * sub_term - gamma * class_term).mean()


class SbclParams(PretrainParams):
    temperature: float = Field(0.1, gt=0, le=10, title="Temperature (tau)",
                               description="Softmax temperature of the subclass term (0.1 in the paper).")
    gamma: float = Field(0.25, ge=0, le=10, title="Class term weight (gamma)",
                         description="Weight of the term that keeps a class's subclasses together (0.25 in the "
                                     "paper).")
    subclass_size: int = Field(10, ge=1, le=100_000, title="Smallest subclass (M)",
                               description="Head classes are split into subclasses of about the rarest class's size, "
                                           "but never smaller than this.")
    recluster_every: int = Field(5, ge=1, le=1000, title="Re-cluster every (epochs)",
                                 description="How often the subclasses are found again from the current features.")
    warmup: int = Field(5, ge=0, le=1000, title="Epochs before subclasses",
                        description="Epochs of plain supervised contrastive learning (each class one subclass) "
                                    "before the first clustering.")
    noise: float = Field(0.1, ge=0, le=5, title="Noise",
                         description="Spread of the random noise added to each view, in the inputs' units.")
    drop: float = Field(0.2, ge=0, lt=1, title="Blanked share",
                        description="Share of features (tables) or pixels (images) blanked in each view.")
    projection_dim: int = Field(64, ge=2, le=4096, title="Projection size",
                                description="Size of the throw-away layer whose outputs the loss compares.")


@PRETRAIN.register(
    "sbcl", display="Subclass-balanced contrastive (SBCL)",
    description="Head classes are split into subclasses of about the rare classes' size by clustering, and the "
                "network learns to pull each input towards its subclass and, more weakly, its class, so every "
                "subclass weighs alike. Uses the labels.",
    paper="Hou et al., ICCV 2023, Subclass-balancing Contrastive Learning for Long-tailed Recognition; cheap random "
          "views, plain k-means and a few dozen epochs here",
    params=SbclParams, labels=True)
class SubclassBalancedContrastive(_Objective):
    uses_labels = True

    def __init__(self, *, temperature: float, gamma: float, subclass_size: int, recluster_every: int, warmup: int,
                 noise: float, drop: float, projection_dim: int, feature_dim: int, input_shape: tuple[int, ...],
                 image: bool, **common: Any):
        super().__init__(**common)
        self.tau, self.gamma, self.size = temperature, gamma, subclass_size
        self.recluster_every, self.warmup = recluster_every, warmup
        self.noise, self.drop, self.image = noise, drop, image
        self.projection = nn.Sequential(nn.Linear(feature_dim, feature_dim), nn.ReLU(),
                                        nn.Linear(feature_dim, projection_dim))
        self.targets: Tensor | None = None
        self.class_tau: Tensor | None = None
        self.subclasses_found = 0

    def start_epoch(self, model: Classifier, x: Tensor, y: Tensor, epoch: int) -> Tensor:
        """Rows' (class, subclass) pairs: every class one subclass before `warmup`, then
        clusters of the current features, found again every `recluster_every` epochs."""
        labels = y.cpu().numpy()
        k = int(labels.max()) + 1
        if epoch < self.warmup:
            subclasses, per_class = labels, np.ones(k, np.int64)
            self.class_tau = torch.full((k,), self.tau, device=x.device)
        elif (epoch - self.warmup) % self.recluster_every == 0:
            features = predict(model, x)[1].cpu().numpy()
            per_class = subclass_counts(np.bincount(labels, minlength=k), self.size)
            subclasses = assign_subclasses(features, labels, per_class, seed=epoch)
            self.class_tau = torch.from_numpy(class_temperatures(features, labels, per_class, self.tau)).to(x.device)
        else:
            return self.targets
        self.subclasses_found = int(len(np.unique(subclasses)))
        self.targets = torch.stack([y, torch.from_numpy(np.asarray(subclasses, np.int64)).to(y.device)], 1)
        return self.targets

    def forward(self, model: Classifier, x: Tensor, generator: torch.Generator, y: Tensor | None = None) -> Tensor:
        both = torch.cat([random_view(x, generator, image=self.image, drop=self.drop, noise=self.noise)
                          for _ in range(2)])
        z = nn.functional.normalize(self.projection(model.forward_features(both).float()), dim=1)
        return sbcl_loss(z, y[:, 0], y[:, 1], tau=self.tau, class_tau=self.class_tau, gamma=self.gamma)

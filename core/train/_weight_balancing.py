"""Weight balancing (Alshammari et al. 2022, "Long-Tailed Recognition via Weight Balancing"):
the second of its two stages, registered in `STAGE2` beside cRT, LWS and tau-norm.

Stage one is the run itself: plain cross-entropy with a tuned, larger weight decay (the
paper's CIFAR-100-LT demo: 5e-3), which keeps the classifier rows of the common classes from
growing much longer than the rare ones'. Stage two, here, freezes the features and re-trains
the classifier with a class-balanced loss and a strong weight decay, projecting every
classifier row back inside a ball after each step (MaxNorm). The radius is set once from the
stage-one rows: tau = min ||w_c|| + t x (max ||w_c|| - min ||w_c||). The bias is not
projected, as in the paper's code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from core.methods import class_weights
from core.registry import Params
from core.train._head import STAGE2, head_features, train_head

__all__ = ["maxnorm_radius", "maxnorm_project"]


class WeightBalancingParams(Params):
    epochs: int = Field(10, ge=1, le=1000, title="Epochs",
                        description="Passes over the training data while the classifier is retrained on frozen "
                                    "features (10 in the paper).")
    lr: float = Field(0.01, gt=0, le=10, title="Learning rate",
                      description="Step size of the classifier training (SGD with momentum 0.9, cosine schedule).")
    weight_decay: float = Field(0.1, ge=0, le=1, title="Weight decay",
                                description="Pull of the classifier weights toward zero in this stage (0.1 in the "
                                            "paper).")
    beta: float = Field(0.9999, ge=0, le=0.99999, title="Class-balanced beta",
                        description="Effective-number class weights of the loss: 0 weighs every class the same, "
                                    "values near 1 approach 1 / count.")
    threshold: float = Field(0.1, ge=0, le=1, title="MaxNorm threshold (t)",
                             description="Where the bound on each classifier row's length lies between the shortest "
                                         "(0) and the longest (1) row of the first stage.")


def maxnorm_radius(weight: Tensor, threshold: float) -> float:
    """min_c ||w_c|| + t x (max_c ||w_c|| - min_c ||w_c||) of the classifier rows."""
    norms = weight.detach().float().norm(dim=1)
    return float(norms.min() + threshold * (norms.max() - norms.min()))


@torch.no_grad()
def maxnorm_project(weight: Tensor, radius: float) -> None:
    """Rows longer than `radius` are scaled back to it, in place; shorter rows stay."""
    norms = weight.norm(dim=1, keepdim=True)
    weight.mul_(torch.where(norms > radius, radius / norms.clamp(min=1e-12), torch.ones_like(norms)))


@STAGE2.register("weight_balancing", display="Weight balancing (MaxNorm)",
                 description="Keeps the features and retrains the classifier with a class-balanced loss and strong "
                             "weight decay, with no class's classifier row allowed to grow past a common bound. "
                             "Pair it with a larger weight decay in training (the paper: 5e-3).",
                 paper="Alshammari et al., CVPR 2022, Long-Tailed Recognition via Weight Balancing",
                 params=WeightBalancingParams)
def weight_balancing(*, epochs, lr, weight_decay, beta, threshold, model, x_train, y_train, x_val, y_val,
                     class_counts, seed, batch_size, progress, should_stop, first_epoch, info) -> list[dict[str, Any]]:
    feats, val_feats = head_features(model, x_train), head_features(model, x_val)
    radius = maxnorm_radius(model.head.weight, threshold)
    weight = class_weights(np.asarray(class_counts), "effective_number", beta=beta).to(feats.device)
    info["maxnorm_radius"] = radius
    return train_head(name="weight_balancing", head=model.head, params=list(model.head.parameters()), feats=feats,
                      labels=y_train, val_feats=val_feats, y_val=y_val, num_classes=len(class_counts), epochs=epochs,
                      lr=lr, weight_decay=weight_decay, sampler_name="instance", batch_size=batch_size, seed=seed,
                      first_epoch=first_epoch, progress=progress, should_stop=should_stop, info=info,
                      class_weight=weight, after_step=lambda: maxnorm_project(model.head.weight, radius))

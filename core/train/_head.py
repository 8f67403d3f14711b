"""What every stage-2 method shares: the `STAGE2` registry, the frozen features of a trained
model, and the loop that re-trains a classifier on them (cross-entropy, any sampler, SGD
with momentum and a cosine schedule)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from core.methods import create_sampler
from core.models import Classifier
from core.registry import Registry
from core.train._common import Cancelled
from core.train._device import balanced_accuracy_t, predict
from core.train._schedule import lr_at

__all__ = ["STAGE2", "head_features", "train_head"]

STAGE2: Registry[Callable[..., list[dict[str, Any]]]] = Registry("stage 2 method")


def head_features(model: Classifier, x: Tensor) -> Tensor:
    return predict(model, x)[1]


def train_head(
    *, name: str, head: Callable[[Tensor], Tensor], params: list[Tensor], feats: Tensor, labels: Tensor,
    val_feats: Tensor, y_val: Tensor, num_classes: int, epochs: int, lr: float, weight_decay: float,
    sampler_name: str, batch_size: int, seed: int, first_epoch: int, progress, should_stop, info: dict,
    class_weight: Tensor | None = None, after_step: Callable[[], None] | None = None,
) -> list[dict[str, Any]]:
    """Train `params` of `head` with cross-entropy (weighted per class by `class_weight` when
    given) on fixed features: the shared stage-2 loop. `after_step` runs after every optimiser
    step (weight balancing's MaxNorm projection). Records in `info["head_prior"]` the class
    prior the head was re-trained under."""
    sampler = create_sampler(sampler_name)
    info["head_prior"] = sampler.trained_prior(torch.bincount(labels, minlength=num_classes).cpu(), epochs)
    optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    generator = torch.Generator(device=feats.device).manual_seed(seed)
    rows = []
    for epoch in range(epochs):
        idx = sampler.sample_indices(labels, num_classes=num_classes, epoch=epoch, num_epochs=epochs, generator=generator)
        total, seen = 0.0, 0
        n_batches = math.ceil(len(idx) / batch_size)
        for b in range(n_batches):
            for group in optimizer.param_groups:
                group["lr"] = lr_at((epoch + b / n_batches) / epochs, base_lr=lr)
            batch = idx[b * batch_size : (b + 1) * batch_size]
            loss = nn.functional.cross_entropy(head(feats[batch]), labels[batch], weight=class_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if after_step is not None:
                after_step()
            total += float(loss.detach()) * len(batch)
            seen += len(batch)
        if should_stop():
            raise Cancelled(f"cancelled in {name}, epoch {epoch + 1}")
        with torch.no_grad():
            val_logits = head(val_feats)
        pred = val_logits.argmax(1)
        bal, recall = balanced_accuracy_t(pred, y_val, num_classes)
        rows.append({
            "stage": name, "epoch": first_epoch + epoch + 1, "train_loss": total / max(seen, 1),
            "val_loss": float(nn.functional.cross_entropy(val_logits, y_val)),
            "val_accuracy": float((pred == y_val).float().mean()), "val_balanced_accuracy": bal,
            "val_recall": [None if math.isnan(r) else float(r) for r in recall.tolist()],
        })
        progress({"stage": name, "epoch": epoch + 1, "epochs": epochs, "fraction": 1.0, "eta_s": 0.0})
    return rows

"""The optimisation loop of one network, and nothing else (cifar10-airbench's `main` is the
model): everything it needs is built before it starts (`Loop`), the data already sits on the
device, each epoch's batches are index-gathers of one sampler draw, and the epoch ends with a
validation record. Stages never appear here: they act before and after it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from core.config import RunConfig
from core.methods import weighted_batch_loss
from core.models import Classifier
from core.train._common import (
    BatchLoss, Criterion, Diverged, RunHooks, Snapshot, between_batches,
)
from core.train._device import augment_batch, predict
from core.train._schedule import scheduled_lr

__all__ = ["Loop", "BestEpoch", "train_epochs", "validation_numbers"]


@dataclass
class Loop:
    """Everything the loop needs, built before it starts."""

    model: Classifier
    forward: Callable[[Tensor], Tensor]  # the model, compiled on CUDA when asked
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    sampler: Any
    generator: torch.Generator
    x_train: Tensor
    y_train: Tensor
    row_weight: Tensor | None  # per-row loss weights, None: plain mean loss
    x_val: Tensor
    y_val: Tensor
    x_subset: Tensor  # the fixed training subset for epoch snapshots
    subset_labels: np.ndarray
    class_counts: np.ndarray
    drw_weights: Tensor
    crop: bool
    flip: bool
    amp: bool
    passes_per_epoch: int
    batch_loss: BatchLoss | None = None  # a stage's loss of one batch in place of the plain one (robust training)
    before_step: Callable[[], None] | None = None  # a stage's change to the weights or gradients before each step


class BestEpoch:
    """The epoch with the best validation balanced accuracy (ties: the lower validation
    loss), its weights kept in memory so they can be restored at the end."""

    def __init__(self) -> None:
        self.epoch, self.score, self.state = 0, (-math.inf, -math.inf), None

    def offer(self, epoch: int, balanced_accuracy: float, val_loss: float, model: nn.Module, *, keep: bool) -> bool:
        score = (balanced_accuracy, -val_loss if math.isfinite(val_loss) else -math.inf)
        if score <= self.score:
            return False
        self.epoch, self.score = epoch, score
        if keep:  # copied into the same buffers each time: no allocation after the first
            state = model.state_dict()
            if self.state is None:
                self.state = {k: v.detach().clone() for k, v in state.items()}
            else:
                for key, value in state.items():
                    self.state[key].copy_(value.detach())
        return True

    def restore(self, model: nn.Module) -> None:
        if self.state is not None:
            model.load_state_dict(self.state)


def train_epochs(config: RunConfig, loop: Loop, run: RunHooks) -> tuple[list[dict[str, Any]], BestEpoch]:
    """Train for `config.train.epochs` (fewer when patience runs out); returns the history rows
    and the best epoch (its weights kept when `train.select` is "best")."""
    t, k = config.train, len(loop.class_counts)
    model, optimizer = loop.model, loop.optimizer
    history: list[dict[str, Any]] = []
    best = BestEpoch()
    first_loss: float | None = None
    started = time.perf_counter()
    model.train()  # validation and snapshots hand the model back in training mode

    for epoch in range(t.epochs):
        # --- epoch set-up: DRW switch and this epoch's indices ------------------------------
        if config.loss.drw_epoch is not None:
            loop.loss_fn.set_class_weight(loop.drw_weights if epoch >= config.loss.drw_epoch else None)
        epoch_start = time.perf_counter()  # sampling counts: the DataLoader baseline pays for it too
        idx = loop.sampler.sample_indices(loop.y_train, num_classes=k, epoch=epoch, num_epochs=t.epochs,
                                          generator=loop.generator, passes=loop.passes_per_epoch)
        n_batches = max(math.ceil(len(idx) / t.batch_size), 1)
        loss_sum = torch.zeros((), device=loop.x_train.device)
        seen = 0
        for b in range(n_batches):
            batch = idx[b * t.batch_size : (b + 1) * t.batch_size]
            if len(batch) < 2:  # batch norm cannot train on one sample
                continue
            # --- forward / backward / step --------------------------------------------------
            for group in optimizer.param_groups:
                group["lr"] = scheduled_lr(t, (epoch + b / n_batches) / t.epochs)
            xb, yb = loop.x_train[batch], loop.y_train[batch]
            if loop.crop or loop.flip:
                xb = augment_batch(xb, crop=loop.crop, flip=loop.flip, generator=loop.generator)
            criterion = _criterion(loop.loss_fn, yb, None if loop.row_weight is None else loop.row_weight[batch])
            with torch.autocast(xb.device.type, dtype=torch.bfloat16, enabled=loop.amp):
                out = loop.forward(xb) if loop.batch_loss is None else loop.batch_loss(loop.forward, criterion, xb, yb)
            loss = criterion(out) if loop.batch_loss is None else out  # the plain loss in float32, outside autocast
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if loop.before_step is not None:  # sharpness-aware training: back to the unmoved weights
                loop.before_step()
            optimizer.step()
            loss_sum += loss.detach() * len(batch)
            seen += len(batch)
            # --- progress and cancellation ---------------------------------------------------
            between_batches(run, epoch, b, n_batches, t.epochs, started)

        train_loss = float(loss_sum) / max(seen, 1)  # also waits for the device
        train_seconds = time.perf_counter() - epoch_start
        first_loss = train_loss if first_loss is None else first_loss
        check_divergence(train_loss, first_loss, epoch + 1, config)

        # --- end of epoch: validation, model selection and (every few epochs) geometry -------
        row = _epoch_record(config, loop, epoch, n_batches, train_loss, train_seconds, epoch_start)
        if run.snapshot_metrics and t.nc_every and ((epoch + 1) % t.nc_every == 0 or epoch + 1 == t.epochs):
            row.update(run.snapshot_metrics(_snapshot(loop, epoch)))
        run.record(row, history)
        improved = best.offer(epoch + 1, row["val_balanced_accuracy"], row["val_loss"], model, keep=t.select == "best")
        if not improved and t.patience is not None and epoch + 1 - best.epoch >= t.patience:
            break
    return history, best


def _criterion(loss_fn: nn.Module, target: Tensor, row_weight: Tensor | None) -> Criterion:
    """The batch's loss as a function of its logits (in float32), with the rows' weights and
    any extra per-row weight a stage gives (a class weight, say)."""

    def criterion(logits: Tensor, weight: Tensor | None = None) -> Tensor:
        if row_weight is not None:
            weight = row_weight if weight is None else row_weight * weight
        logits = logits.float()
        return loss_fn(logits, target) if weight is None else weighted_batch_loss(loss_fn, logits, target, weight)

    return criterion


def _epoch_record(config: RunConfig, loop: Loop, epoch: int, n_batches: int, train_loss: float,
                  train_seconds: float, epoch_start: float) -> dict[str, Any]:
    """One history row: the epoch's training loss and the validation split's loss, accuracy,
    balanced accuracy and per-class recall."""
    t = config.train
    val_logits, _ = predict(loop.model, loop.x_val)
    val_loss, accuracy, bal, *recall = validation_numbers(val_logits, loop.y_val, len(loop.class_counts)).tolist()
    return {
        "stage": "train",
        "epoch": epoch + 1,
        "train_loss": train_loss,
        "val_loss": val_loss,
        "val_accuracy": accuracy,
        "val_balanced_accuracy": bal,
        "val_recall": [None if math.isnan(r) else r for r in recall],
        "lr": scheduled_lr(t, (epoch + 1 - 1 / n_batches) / t.epochs),
        "steps": n_batches,
        "train_seconds": train_seconds,
        "seconds": time.perf_counter() - epoch_start,
    }


def validation_numbers(logits: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """[cross-entropy, accuracy, balanced accuracy, recall of each class (NaN where a class has
    no rows)] as one float tensor on the logits' device, so the epoch's record costs one
    transfer to the host; the same float32 arithmetic as `balanced_accuracy_t`."""
    pred = logits.argmax(1)
    right = pred == labels
    support = torch.bincount(labels, minlength=num_classes).float()
    hits = torch.bincount(torch.where(right, labels, num_classes), minlength=num_classes + 1)[:num_classes].float()
    recall = torch.where(support > 0, hits / support.clamp(min=1), torch.full_like(support, float("nan")))
    return torch.cat([nn.functional.cross_entropy(logits, labels).reshape(1), right.float().mean().reshape(1),
                      recall[support > 0].mean().reshape(1), recall])


def _snapshot(loop: Loop, epoch: int) -> Snapshot:
    sub_logits, sub_feats = predict(loop.model, loop.x_subset)
    return Snapshot(epoch + 1, sub_feats.cpu().numpy(), loop.subset_labels, sub_logits.argmax(1).cpu().numpy(),
                    loop.model.head.weight.detach().float().cpu().numpy(), loop.class_counts)


def check_divergence(train_loss: float, first_loss: float, epoch: int, config: RunConfig) -> None:
    """Stop at the first epoch whose loss is not finite or 100 times its first value."""
    if math.isfinite(train_loss) and train_loss <= 100 * max(first_loss, 1e-3):
        return
    what = "is not a number" if not math.isfinite(train_loss) else f"grew from {first_loss:.3g} to {train_loss:.3g}"
    raise Diverged(f"training diverged at epoch {epoch}: the loss {what}. Try a lower learning rate "
                   f"(now {config.train.lr:g}), and check the data for extreme or missing values.")

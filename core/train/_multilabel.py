"""Training one network on multi-label targets: L sigmoid outputs, a multi-label loss with
unknown entries masked out of it, a multi-label sampler, the corrector's `set_epoch` every
epoch, and the epoch kept by validation mAP.

It follows the single-label loop's shape (`_loop.train_epochs`: one sampler draw per epoch,
index-gathers on the device, the schedule `lr_at`, bf16 autocast on CUDA, cancel checks,
`check_divergence`, `BestEpoch`) but is its own function: the single-label loop's sampler
call, per-class validation record, DRW switch and stage hooks all assume one class per case,
and the stages that would need them are refused for multi-label runs at config time.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from sklearn.metrics import average_precision_score
from torch import Tensor

from core.artifacts import MultiLabelArtifacts
from core.config import RunConfig
from core.data import MultiLabelRunData, cooccurrence_counts
from core.methods import create_multilabel_loss, create_multilabel_sampler
from core.models import create_model
from core.train._common import RunHooks, TrainResult, between_batches
from core.train._device import augment_batch, predict, recalibrate_batchnorm, resolve_device, seed_everything
from core.train._loop import BestEpoch, check_divergence
from core.train._network import _optimizer
from core.train._schedule import scheduled_lr, step_plan

__all__ = ["fit_multilabel", "validation_map", "training_tensors", "loss_context", "close_epoch",
           "epoch_record", "finish_multilabel"]


def validation_map(scores: np.ndarray, targets: np.ndarray) -> float:
    """Mean over labels of scikit-learn's average precision on each label's known entries
    (labels without a known positive left out); NaN when no label has one."""
    values = []
    for c in range(targets.shape[1]):
        known = ~np.isnan(targets[:, c])
        if known.any() and (targets[known, c] == 1).any():
            values.append(average_precision_score(targets[known, c], scores[known, c]))
    return float(np.mean(values)) if values else math.nan


def training_tensors(data: MultiLabelRunData, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """The training cases, their label matrix (float32, NaN unknown) and the validation cases, on the device."""
    return tuple(torch.from_numpy(np.ascontiguousarray(a)).to(device)
                 for a in (data.x_train, data.y_train.astype(np.float32), data.x_val))


def loss_context(data: MultiLabelRunData) -> dict[str, Any]:
    """What every multi-label loss is built with: the training label counts and co-occurrence."""
    return {"label_counts": data.label_counts, "num_cases": len(data.y_train),
            "cooccurrence": cooccurrence_counts(data.y_train)}


def fit_multilabel(config: RunConfig, data: MultiLabelRunData, run: RunHooks) -> TrainResult:
    """Train the config's network on the multi-label training split and evaluate it."""
    t = config.train
    seed_everything(t.seed)
    device = resolve_device(t.device)
    x_train, y_train, x_val = training_tensors(data, device)
    model = create_model(config.model.name, config.model.params, input_shape=data.input_shape,
                         num_classes=data.num_labels).to(device)
    loss_fn = create_multilabel_loss(config.loss.name, config.loss.params, **loss_context(data)).to(device)
    sampler = create_multilabel_sampler(config.sampler.name, config.sampler.params)
    epoch_length = int(round(float(sampler.expected_visits(data.y_train).sum())))
    plan = step_plan(epoch_length, t.batch_size, t.epochs, t.min_steps)
    optimizer = _optimizer(config, model.parameters())
    generator = torch.Generator(device=device).manual_seed(t.seed)
    augment = data.modality == "image" and t.augment in ("crop", "crop_flip")
    history: list[dict[str, Any]] = []
    best = BestEpoch()
    first_loss: float | None = None
    started = time.perf_counter()
    model.train()
    for epoch in range(t.epochs):
        # --- epoch set-up: the corrector's epoch, this epoch's indices --------------------------
        if hasattr(loss_fn, "set_epoch"):
            loss_fn.set_epoch(epoch)
        epoch_start = time.perf_counter()
        idx = torch.cat([sampler.sample_indices(y_train, epoch=epoch, num_epochs=t.epochs, generator=generator)
                         for _ in range(plan["passes_per_epoch"])])
        n_batches = max(math.ceil(len(idx) / t.batch_size), 1)
        loss_sum, seen = torch.zeros((), device=device), 0
        for b in range(n_batches):
            batch = idx[b * t.batch_size:(b + 1) * t.batch_size]
            if len(batch) < 2:  # batch norm cannot train on one sample
                continue
            # --- forward / backward / step ------------------------------------------------------
            for group in optimizer.param_groups:
                group["lr"] = scheduled_lr(t, (epoch + b / n_batches) / t.epochs)
            xb = x_train[batch]
            if augment:
                xb = augment_batch(xb, crop=True, flip=t.augment == "crop_flip", generator=generator)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                out = model(xb)
            loss = loss_fn(out.float(), y_train[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(batch)
            seen += len(batch)
            between_batches(run, epoch, b, n_batches, t.epochs, started)
        train_loss = float(loss_sum) / max(seen, 1)
        first_loss = train_loss if first_loss is None else first_loss
        check_divergence(train_loss, first_loss, epoch + 1, config)
        row = epoch_record(model, loss_fn, x_val, data.y_val, epoch, train_loss, t, n_batches, epoch_start)
        if close_epoch(row, history, best, model, t, run):
            break
    return finish_multilabel(config, data, run, model, x_train, history, best, plan, started, device)


def close_epoch(row: dict[str, Any], history: list[dict[str, Any]], best: BestEpoch, model, t, run: RunHooks) -> bool:
    """End of an epoch: record its row, offer `model` to model selection by validation mAP;
    True when patience has run out."""
    run.record(row, history)
    score = row["val_map"] if math.isfinite(row["val_map"]) else -math.inf
    improved = best.offer(row["epoch"], score, row["val_loss"], model, keep=t.select == "best")
    return not improved and t.patience is not None and row["epoch"] - best.epoch >= t.patience


def finish_multilabel(config: RunConfig, data: MultiLabelRunData, run: RunHooks, model, x_train: Tensor, history,
                      best: BestEpoch, plan: dict[str, int], started: float, device: torch.device,
                      **extra: Any) -> TrainResult:
    """After the last epoch: the selected epoch's weights, batch-norm statistics on the training
    cases, the test and validation scores, and the run's info (`extra` added to it)."""
    t = config.train
    if t.select == "best":
        best.restore(model)
    recalibrate_batchnorm(model, x_train)
    run.progress({"stage": "evaluate", "epoch": len(history), "epochs": t.epochs, "fraction": 1.0,
                  "elapsed_s": time.perf_counter() - started, "eta_s": 0.0})
    info = {"select": t.select, "selected_epoch": best.epoch if t.select == "best" else len(history),
            "selected_by": "validation mAP", "epochs_run": len(history), "stopped_early": len(history) < t.epochs,
            **plan, "hidden_entries": data.hidden_entries, "unknown_as_absent": config.data.unknown_as_absent, **extra}
    return TrainResult(model, history, _evaluate(model, data, device), data, str(device), 0, info, None)


def epoch_record(model, loss_fn, x_val: Tensor, y_val: np.ndarray, epoch: int, train_loss: float, t,
                  n_batches: int, epoch_start: float) -> dict[str, Any]:
    """One history row: training loss, the validation loss and validation mAP."""
    logits, _ = predict(model, x_val)
    val_loss = float(loss_fn(logits, torch.from_numpy(y_val.astype(np.float32)).to(logits.device)))
    scores = torch.sigmoid(logits).cpu().numpy()
    return {"stage": "train", "epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss,
            "val_map": validation_map(scores, y_val), "lr": scheduled_lr(t, (epoch + 1 - 1 / n_batches) / t.epochs),
            "steps": n_batches, "seconds": time.perf_counter() - epoch_start}


def _evaluate(model, data: MultiLabelRunData, device: torch.device) -> MultiLabelArtifacts:
    test_logits, test_features = predict(model, torch.from_numpy(data.x_test).to(device))
    val_logits, _ = predict(model, torch.from_numpy(data.x_val).to(device))
    return MultiLabelArtifacts(
        logits=test_logits.cpu().numpy(), label_matrix=data.y_test.astype(np.float64),
        features=test_features.cpu().numpy(), val_logits=val_logits.cpu().numpy(),
        val_label_matrix=data.y_val.astype(np.float64), label_counts=data.label_counts.astype(np.int64),
        train_cooccurrence=cooccurrence_counts(data.y_train), train_cases=np.array(len(data.y_train)),
        test_index=np.arange(len(data.y_test)))

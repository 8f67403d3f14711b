"""The training engine: one device-resident loop.

Data that fits on the device is moved there once; every epoch the sampler returns an
index tensor, batches are index-gathers on the device and augmentation runs batched
there too, so no DataLoader sits on the hot path (cifar10-airbench style).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from core.artifacts import EvalArtifacts
from core.config import RunConfig
from core.data import Splits, load_source, prepare_splits
from core.methods import create_loss, create_sampler
from core.methods._weights import class_weights
from core.models import Classifier, create_model
from core.train._device import augment_batch, recalibrate_batchnorm, balanced_accuracy_t, predict, resolve_device, seed_everything
from core.train._schedule import lr_at

__all__ = ["train_run", "prepare_run_data", "TrainResult", "Cancelled", "Snapshot", "fixed_train_subset"]

ProgressFn = Callable[[dict[str, Any]], None]
CHECK_EVERY_BATCHES = 4


class Cancelled(Exception):
    """Raised inside the loop when `should_stop()` says so."""


@dataclass(frozen=True)
class Snapshot:
    """What an epoch hook sees: features of the fixed train subset, head and predictions."""

    epoch: int
    features: np.ndarray
    labels: np.ndarray
    predictions: np.ndarray
    head_weight: np.ndarray
    class_counts: np.ndarray


@dataclass
class TrainResult:
    model: Classifier
    history: list[dict[str, Any]]
    artifacts: EvalArtifacts
    splits: Splits
    device: str
    synthetic_count: int = 0


def prepare_run_data(config: RunConfig) -> Splits:
    d = config.data
    dataset = load_source(d.source, d.params, d.label_column)
    im = d.imbalance
    return prepare_splits(dataset, profile=im.profile, ratio=im.ratio, mu=im.mu, class_order=im.class_order,
                          test_fraction=d.test_fraction, val_fraction=d.val_fraction, seed=d.seed)


def fixed_train_subset(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """A class-stratified subset (every class kept whole when the total allows), sorted."""
    if len(labels) <= size:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    counts = np.bincount(labels)
    share = np.maximum(np.floor(counts / counts.sum() * size), np.minimum(counts, 10)).astype(int)
    picks = [rng.choice(np.flatnonzero(labels == j), size=min(n, counts[j]), replace=False)
             for j, n in enumerate(share) if counts[j]]
    return np.sort(np.concatenate(picks))


def _augment_mode(config: RunConfig, splits: Splits) -> tuple[bool, bool]:
    mode = config.train.augment
    if mode == "auto":
        mode = "crop_flip" if splits.modality == "image" and splits.input_shape[-1] >= 32 else "none"
    if splits.modality != "image":
        return False, False
    return mode in ("crop", "crop_flip"), mode == "crop_flip"


def _optimizer(config: RunConfig, params) -> torch.optim.Optimizer:
    t = config.train
    if t.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
    return torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay, nesterov=t.momentum > 0)


def train_run(
    config: RunConfig,
    *,
    splits: Splits | None = None,
    progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    snapshot_metrics: Callable[[Snapshot], dict[str, float]] | None = None,
) -> TrainResult:
    """Train one run to the end and evaluate it.

    `progress` gets a dict every few batches; `should_stop` is polled as often and
    cancels with :class:`Cancelled`; `on_epoch` gets each history row as it is made;
    `snapshot_metrics` turns a :class:`Snapshot` into extra history numbers every
    `train.nc_every` epochs (the jobs layer plugs neural-collapse metrics in here).
    """
    t = config.train
    device = resolve_device(t.device)
    seed_everything(t.seed)
    splits = splits or prepare_run_data(config)
    k = splits.num_classes
    progress = progress or (lambda info: None)
    should_stop = should_stop or (lambda: False)

    # --- data on the device -------------------------------------------------------------
    x_np, y_np, synthetic = splits.x_train, splits.y_train, 0
    if config.resampler is not None:
        from core.methods import resample

        if splits.modality != "tabular":
            raise ValueError(f"resampler {config.resampler.name!r} works on tables; for images use a "
                             "sampler, or cRT with a feature-space resampler (stage2.resampler)")
        out = resample(config.resampler.name, x_np, y_np, config.resampler.params, seed=t.seed)
        x_np, y_np, synthetic = out.x.astype(np.float32), out.y.astype(np.int64), int(out.synthetic.sum())
    counts_np = np.bincount(splits.y_train, minlength=k)  # the imbalance the user chose
    x_train = torch.from_numpy(x_np).to(device)
    y_train = torch.from_numpy(y_np).to(device)
    x_val = torch.from_numpy(splits.x_val).to(device)
    y_val = torch.from_numpy(splits.y_val).to(device)
    is_image = splits.modality == "image"
    if device.type == "cuda" and is_image:
        x_train, x_val = (a.contiguous(memory_format=torch.channels_last) for a in (x_train, x_val))
    subset = fixed_train_subset(splits.y_train, t.train_subset, config.data.seed)
    x_subset = torch.from_numpy(splits.x_train[subset]).to(device)

    # --- model, loss, sampler, optimiser --------------------------------------------------
    model = create_model(config.model.name, config.model.params, input_shape=splits.input_shape, num_classes=k).to(device)
    if device.type == "cuda" and is_image:
        model = model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if (t.compile and device.type == "cuda") else model
    loss_fn = create_loss(config.loss.name, config.loss.params, class_counts=counts_np.tolist()).to(device)
    sampler = create_sampler(config.sampler.name, config.sampler.params)
    optimizer = _optimizer(config, model.parameters())
    generator = torch.Generator(device=device).manual_seed(t.seed)
    crop, flip = _augment_mode(config, splits)
    amp = device.type == "cuda"
    drw_weights = class_weights(torch.as_tensor(counts_np), "effective_number", beta=config.loss.drw_beta).to(device)

    warmup = t.warmup_epochs / t.epochs

    def lr_now(progress: float) -> float:
        return lr_at(progress, base_lr=t.lr, schedule=t.schedule, warmup=warmup,
                     milestones=t.step_milestones, gamma=t.step_gamma)

    history: list[dict[str, Any]] = []
    started = time.perf_counter()

    for epoch in range(t.epochs):
        # --- epoch set-up: DRW switch and this epoch's indices ------------------------------
        if config.loss.drw_epoch is not None:
            loss_fn.set_class_weight(drw_weights if epoch >= config.loss.drw_epoch else None)
        model.train()
        epoch_start = time.perf_counter()  # sampling counts: the DataLoader baseline pays for it too
        idx = sampler.sample_indices(y_train, num_classes=k, epoch=epoch, num_epochs=t.epochs, generator=generator)
        n_batches = max(math.ceil(len(idx) / t.batch_size), 1)
        loss_sum = torch.zeros((), device=device)
        seen = 0
        for b in range(n_batches):
            batch = idx[b * t.batch_size : (b + 1) * t.batch_size]
            if len(batch) < 2:  # batch norm cannot train on one sample
                continue
            # --- forward / backward / step --------------------------------------------------
            lr = lr_now((epoch + b / n_batches) / t.epochs)
            for group in optimizer.param_groups:
                group["lr"] = lr
            xb, yb = x_train[batch], y_train[batch]
            if crop or flip:
                xb = augment_batch(xb, crop=crop, flip=flip, generator=generator)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                logits = forward(xb)
            loss = loss_fn(logits.float(), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(batch)
            seen += len(batch)
            # --- progress and cancellation ---------------------------------------------------
            if b % CHECK_EVERY_BATCHES == 0 or b == n_batches - 1:
                if should_stop():
                    raise Cancelled(f"cancelled at epoch {epoch + 1}, batch {b + 1}")
                done = epoch + (b + 1) / n_batches
                elapsed = time.perf_counter() - started
                progress({"stage": "train", "epoch": epoch + 1, "epochs": t.epochs, "batch": b + 1,
                          "batches": n_batches, "fraction": done / t.epochs, "elapsed_s": elapsed,
                          "eta_s": elapsed / done * (t.epochs - done)})

        train_loss = float(loss_sum) / max(seen, 1)  # also waits for the device
        train_seconds = time.perf_counter() - epoch_start

        # --- end of epoch: validation and (every few epochs) geometry -----------------------
        val_logits, _ = predict(model, x_val)
        val_pred = val_logits.argmax(1)
        bal, recall = balanced_accuracy_t(val_pred, y_val, k)
        row: dict[str, Any] = {
            "stage": "train",
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "val_loss": float(nn.functional.cross_entropy(val_logits, y_val)),
            "val_accuracy": float((val_pred == y_val).float().mean()),
            "val_balanced_accuracy": bal,
            "val_recall": [None if math.isnan(r) else float(r) for r in recall.tolist()],
            "lr": lr_now((epoch + 1 - 1 / n_batches) / t.epochs),
            "train_seconds": train_seconds,
            "seconds": time.perf_counter() - epoch_start,
        }
        if snapshot_metrics and t.nc_every and ((epoch + 1) % t.nc_every == 0 or epoch + 1 == t.epochs):
            sub_logits, sub_feats = predict(model, x_subset)
            row.update(snapshot_metrics(Snapshot(
                epoch + 1, sub_feats.cpu().numpy(), splits.y_train[subset], sub_logits.argmax(1).cpu().numpy(),
                model.head.weight.detach().float().cpu().numpy(), counts_np)))
        history.append(row)
        if on_epoch:
            on_epoch(row)

    recalibrate_batchnorm(model, x_train)

    # --- stage 2: re-balance the classifier on frozen features ------------------------------
    if config.stage2 is not None:
        from core.train._stage2 import run_stage2

        stage_rows = run_stage2(config.stage2.name, config.stage2.params, model=model, x_train=x_train, y_train=y_train,
                                x_val=x_val, y_val=y_val, class_counts=counts_np, seed=t.seed,
                                batch_size=t.batch_size, progress=progress, should_stop=should_stop,
                                first_epoch=t.epochs)
        for row in stage_rows:
            history.append(row)
            if on_epoch:
                on_epoch(row)

    # --- final evaluation pass -----------------------------------------------------------
    progress({"stage": "evaluate", "epoch": t.epochs, "epochs": t.epochs, "fraction": 1.0,
              "elapsed_s": time.perf_counter() - started, "eta_s": 0.0})
    artifacts = evaluate(model, splits, subset, device)
    return TrainResult(model, history, artifacts, splits, str(device), synthetic)


def evaluate(model: Classifier, splits: Splits, subset: np.ndarray, device: torch.device) -> EvalArtifacts:
    """Test and validation logits and features, head, and the fixed train-feature subset."""

    def run(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, feats = predict(model, torch.from_numpy(x).to(device))
        return logits.cpu().numpy(), feats.cpu().numpy()

    test_logits, test_feats = run(splits.x_test)
    val_logits, val_feats = run(splits.x_val)
    _, train_feats = run(splits.x_train[subset])
    return EvalArtifacts(
        logits=test_logits, labels=splits.y_test, features=test_feats,
        head_weight=model.head.weight.detach().float().cpu().numpy(),
        head_bias=model.head.bias.detach().float().cpu().numpy(),
        train_features=train_feats, train_labels=splits.y_train[subset],
        class_counts=np.bincount(splits.y_train, minlength=splits.num_classes),
        val_logits=val_logits, val_labels=splits.y_val, val_features=val_feats,
        test_index=np.arange(len(splits.y_test)),
    )



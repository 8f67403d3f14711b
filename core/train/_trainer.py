"""The training engine: one device-resident loop.

Data that fits on the device is moved there once; every epoch the sampler returns an
index tensor, batches are index-gathers on the device and augmentation runs batched
there too, so no DataLoader sits on the hot path (cifar10-airbench style).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from core.artifacts import EvalArtifacts
from core.config import RunConfig
from core.data import Splits, load_data, split_data
from core.methods import LOSSES, class_weights, create_loss, create_sampler, weighted_batch_loss
from core.models import Classifier, create_model, is_baseline
from core.train._device import augment_batch, recalibrate_batchnorm, balanced_accuracy_t, predict, resolve_device, seed_everything
from core.train._schedule import lr_at

__all__ = ["train_run", "prepare_run_data", "TrainResult", "Cancelled", "Diverged", "Snapshot", "fixed_train_subset",
           "step_plan", "deterministic_algorithms"]

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
    model: Classifier | None  # None for table baselines (nothing to store as weights)
    history: list[dict[str, Any]]
    artifacts: EvalArtifacts
    splits: Splits
    device: str
    synthetic_count: int = 0
    info: dict[str, Any] = field(default_factory=dict)  # selected epoch, steps, trained prior


def prepare_run_data(config: RunConfig) -> Splits:
    return split_data(load_data(config.data), config.data)


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


class Diverged(ValueError):
    """Training stopped because the loss blew up; the message names the likely cause."""


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
    Table baselines (scikit-learn) are fitted instead, on the same splits.
    """
    splits = splits or prepare_run_data(config)
    if is_baseline(config.model.name):
        if config.pretrain is not None or config.semi is not None:
            raise ValueError(f"pre-training and semi-supervised training teach a network; {config.model.name!r} is "
                             "a table baseline. Choose a network model (e.g. mlp), or remove pretrain / semi")
        from core.train._baselines import fit_baseline
        from core.train._cleaning import drop_for_baseline

        fit_splits, cleaned = drop_for_baseline(config, splits, progress)
        result = fit_baseline(config, fit_splits, progress=progress or (lambda info: None))
        if cleaned:
            result.info["label_issues"] = cleaned
        return result
    progress, should_stop = progress or (lambda info: None), should_stop or (lambda: False)
    with deterministic_algorithms(config.train.deterministic):
        if config.semi is not None:  # two trainings: a first model labels the unlabelled rows for the second
            from core.train._semi import run_semi

            return run_semi(config, splits, train=_train_network, progress=progress, should_stop=should_stop,
                            on_epoch=on_epoch, snapshot_metrics=snapshot_metrics)
        return _train_network(config, splits, progress, should_stop, on_epoch, snapshot_metrics)


def step_plan(epoch_length: int, batch_size: int, epochs: int, min_steps: int) -> dict[str, int]:
    """How many times each epoch repeats the sampler's draw so training takes at least
    `min_steps` optimiser steps: small tables otherwise get a handful of steps (130 rows,
    batch 128, 20 epochs: 20 steps) and stop far from a fit. Epoch-based settings (DRW,
    warm-up, milestones, patience) keep their meaning because an epoch stays an epoch.
    The repeated draws are concatenated, so an epoch has ceil(passes x length / batch) steps."""
    epoch_length = max(int(epoch_length), 1)
    plain = max(math.ceil(epoch_length / batch_size), 1)
    wanted = math.ceil(min_steps / epochs) if min_steps else 0
    passes = 1 if plain >= wanted else math.ceil(wanted * batch_size / epoch_length)
    per_epoch = max(math.ceil(passes * epoch_length / batch_size), 1)
    return {"batches_per_pass": plain, "passes_per_epoch": passes, "batches_per_epoch": per_epoch,
            "steps": per_epoch * epochs}


def _train_network(config: RunConfig, splits: Splits, progress: ProgressFn, should_stop: Callable[[], bool],
                   on_epoch, snapshot_metrics) -> TrainResult:
    t = config.train
    device = resolve_device(t.device)
    seed_everything(t.seed)
    k = splits.num_classes

    # --- data on the device -------------------------------------------------------------
    x_np, y_np, synthetic = splits.x_train, splits.y_train, 0
    row_weight, cleaning = None, None  # label_issues: suspected rows dropped, or a weight below 1 in the loss
    if config.label_issues is not None:
        from core.train._cleaning import clean_training_rows

        cleaning = clean_training_rows(config, splits, progress=progress, should_stop=should_stop)
        keep = cleaning.weights > 0
        x_np, y_np = x_np[keep], y_np[keep]
        if (cleaning.weights[keep] < 1).any():
            if config.resampler is not None:
                raise ValueError("label_issues with action 'downweight' does not combine with a resampler; "
                                 "use action 'drop'")
            row_weight = torch.from_numpy(cleaning.weights[keep].astype(np.float32)).to(device)
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

    # --- the prior training shows the loss: after the resampler and the sampler ------------
    sampler = create_sampler(config.sampler.name, config.sampler.params)
    rows_counts = np.bincount(y_np, minlength=k)
    trained_prior = sampler.trained_prior(rows_counts, t.epochs)
    loss_counts = counts_np if LOSSES.info(config.loss.name).capabilities.get("counts") == "samples" \
        else trained_prior * len(y_np)

    # --- model, loss, optimiser -----------------------------------------------------------
    model = create_model(config.model.name, config.model.params, input_shape=splits.input_shape, num_classes=k).to(device)
    if device.type == "cuda" and is_image:
        model = model.to(memory_format=torch.channels_last)
    pretrained = None
    if config.pretrain is not None:  # self-supervised start: the backbone learns from every training input
        from core.train import _pretrain

        pretrained = _pretrain.run_pretrain(config.pretrain, model, _pretrain.pretrain_inputs(splits), device=device,
                                            seed=t.seed, progress=progress, should_stop=should_stop)
    forward = torch.compile(model) if (t.compile and device.type == "cuda") else model
    loss_fn = create_loss(config.loss.name, config.loss.params, class_counts=loss_counts.tolist()).to(device)
    optimizer = _optimizer(config, model.parameters())
    generator = torch.Generator(device=device).manual_seed(t.seed)
    crop, flip = _augment_mode(config, splits)
    amp = device.type == "cuda"
    drw_weights = class_weights(torch.as_tensor(trained_prior * len(y_np)), "effective_number",
                                beta=config.loss.drw_beta).to(device)
    epoch_length = int(sampler.expected_class_counts(rows_counts, 0, t.epochs).sum().round())
    plan = step_plan(epoch_length, t.batch_size, t.epochs, t.min_steps)

    warmup = t.warmup_epochs / t.epochs

    def lr_now(progress: float) -> float:
        return lr_at(progress, base_lr=t.lr, schedule=t.schedule, warmup=warmup,
                     milestones=t.step_milestones, gamma=t.step_gamma)

    history: list[dict[str, Any]] = []
    best = _BestEpoch()
    first_loss: float | None = None
    started = time.perf_counter()

    for epoch in range(t.epochs):
        # --- epoch set-up: DRW switch and this epoch's indices ------------------------------
        if config.loss.drw_epoch is not None:
            loss_fn.set_class_weight(drw_weights if epoch >= config.loss.drw_epoch else None)
        model.train()
        epoch_start = time.perf_counter()  # sampling counts: the DataLoader baseline pays for it too
        idx = torch.cat([sampler.sample_indices(y_train, num_classes=k, epoch=epoch, num_epochs=t.epochs,
                                                generator=generator) for _ in range(plan["passes_per_epoch"])])
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
            loss = loss_fn(logits.float(), yb) if row_weight is None else \
                weighted_batch_loss(loss_fn, logits.float(), yb, row_weight[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(batch)
            seen += len(batch)
            # --- progress and cancellation ---------------------------------------------------
            if b % CHECK_EVERY_BATCHES == 0 or b == n_batches - 1:
                if should_stop():
                    raise Cancelled(f"cancelled at epoch {epoch + 1}, batch {b + 1}")
                progress(loop_progress("train", epoch, b, n_batches, t.epochs, started))

        train_loss = float(loss_sum) / max(seen, 1)  # also waits for the device
        train_seconds = time.perf_counter() - epoch_start
        first_loss = train_loss if first_loss is None else first_loss
        _check_divergence(train_loss, first_loss, epoch + 1, config)

        # --- end of epoch: validation, model selection and (every few epochs) geometry -------
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
            "steps": n_batches,
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
        improved = best.offer(epoch + 1, bal, row["val_loss"], model, keep=t.select == "best")
        if not improved and t.patience is not None and epoch + 1 - best.epoch >= t.patience:
            break

    stopped_early = len(history) < t.epochs
    if t.select == "best":
        best.restore(model)
    selected = best.epoch if t.select == "best" else len(history)
    recalibrate_batchnorm(model, x_train)

    # --- stage 2: re-balance the classifier on frozen features ------------------------------
    if config.stage2 is not None:
        from core.train._stage2 import run_stage2

        stage_info: dict[str, Any] = {}
        stage_rows = run_stage2(config.stage2.name, config.stage2.params, model=model, x_train=x_train, y_train=y_train,
                                x_val=x_val, y_val=y_val, class_counts=counts_np, seed=t.seed,
                                batch_size=t.batch_size, progress=progress, should_stop=should_stop,
                                first_epoch=len(history), info=stage_info)
        for row in stage_rows:
            history.append(row)
            if on_epoch:
                on_epoch(row)
        trained_prior = stage_info.get("head_prior", trained_prior)  # a re-trained head learned another prior

    # --- final evaluation pass -----------------------------------------------------------
    progress({"stage": "evaluate", "epoch": len(history), "epochs": t.epochs, "fraction": 1.0,
              "elapsed_s": time.perf_counter() - started, "eta_s": 0.0})
    artifacts = evaluate(model, splits, subset, device, trained_prior)
    info = {"select": t.select, "selected_epoch": selected, "epochs_run": sum(r["stage"] == "train" for r in history),
            "stopped_early": stopped_early, **plan, "trained_prior": trained_prior.tolist()}
    if cleaning is not None:
        info["label_issues"] = cleaning.info
    if pretrained is not None:
        info["pretrain"] = pretrained
    return TrainResult(model, history, artifacts, splits, str(device), synthetic, info)


class _BestEpoch:
    """The epoch with the best validation balanced accuracy (ties: the lower validation
    loss), its weights kept in memory so they can be restored at the end."""

    def __init__(self) -> None:
        self.epoch, self.score, self.state = 0, (-math.inf, -math.inf), None

    def offer(self, epoch: int, balanced_accuracy: float, val_loss: float, model: nn.Module, *, keep: bool) -> bool:
        score = (balanced_accuracy, -val_loss if math.isfinite(val_loss) else -math.inf)
        if score <= self.score:
            return False
        self.epoch, self.score = epoch, score
        if keep:
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return True

    def restore(self, model: nn.Module) -> None:
        if self.state is not None:
            model.load_state_dict(self.state)


def loop_progress(stage: str, epoch: int, batch: int, n_batches: int, epochs: int, started: float) -> dict[str, Any]:
    """What a training loop reports after `batch` of `epoch` (both from 0): where it is, the
    share done and the time left at the pace so far."""
    done = epoch + (batch + 1) / n_batches
    elapsed = time.perf_counter() - started
    return {"stage": stage, "epoch": epoch + 1, "epochs": epochs, "batch": batch + 1, "batches": n_batches,
            "fraction": done / epochs, "elapsed_s": elapsed, "eta_s": elapsed / done * (epochs - done)}


def _check_divergence(train_loss: float, first_loss: float, epoch: int, config: RunConfig) -> None:
    """Stop at the first epoch whose loss is not finite or 100 times its first value."""
    if math.isfinite(train_loss) and train_loss <= 100 * max(first_loss, 1e-3):
        return
    what = "is not a number" if not math.isfinite(train_loss) else f"grew from {first_loss:.3g} to {train_loss:.3g}"
    raise Diverged(f"training diverged at epoch {epoch}: the loss {what}. Try a lower learning rate "
                   f"(now {config.train.lr:g}), and check the data for extreme or missing values.")


@contextmanager
def deterministic_algorithms(enabled: bool):
    """torch's deterministic kernels for the run (restored afterwards): with the same config,
    seed, device and thread count the results are bit-identical."""
    if not enabled:
        yield
        return
    previous = torch.are_deterministic_algorithms_enabled()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    cudnn = torch.backends.cudnn
    saved = cudnn.deterministic, cudnn.benchmark
    cudnn.deterministic, cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)
        cudnn.deterministic, cudnn.benchmark = saved


def evaluate(model: Classifier, splits: Splits, subset: np.ndarray, device: torch.device,
             trained_prior: np.ndarray | None = None) -> EvalArtifacts:
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
        test_index=np.arange(len(splits.y_test)), trained_prior=trained_prior,
        train_clean_labels=None if splits.y_train_clean is None else splits.y_train_clean[subset],
    )



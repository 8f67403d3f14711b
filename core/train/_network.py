"""Training one network: the set-up before the loop (rows on the device, the prior the loss
sees, model, loss, optimiser), the stages' hooks around it, model selection, and the final
evaluation pass.

Data that fits on the device is moved there once; every epoch the sampler returns an index
tensor, batches are index-gathers on the device and augmentation runs batched there too, so
no DataLoader sits on the hot path (cifar10-airbench style).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import numpy as np
import torch

from core.artifacts import EvalArtifacts
from core.config import RunConfig
from core.data import Splits
from core.methods import LOSSES, class_weights, create_loss, create_sampler
from core.models import Classifier, create_model
from core.train._common import Network, RunHooks, Stage, TrainingRows, TrainResult
from core.train._data import fixed_train_subset
from core.train._device import predict, recalibrate_batchnorm, resolve_device
from core.train._loop import Loop, train_epochs
from core.train._schedule import step_plan
from core.train._stage_one import stage_one_key

__all__ = ["fit_network", "evaluate"]


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


def fit_network(config: RunConfig, splits: Splits, rows: TrainingRows, stages: Sequence[Stage],
                run: RunHooks) -> TrainResult:
    """Train the config's network on `rows`, with each stage's `before_loop` and `after_loop`."""
    t = config.train
    device = resolve_device(t.device)
    k = splits.num_classes

    # --- data on the device -------------------------------------------------------------
    counts_np = np.bincount(splits.y_train, minlength=k)  # the imbalance the user chose
    x_train, y_train = torch.from_numpy(rows.x).to(device), torch.from_numpy(rows.y).to(device)
    x_val, y_val = torch.from_numpy(splits.x_val).to(device), torch.from_numpy(splits.y_val).to(device)
    is_image = splits.modality == "image"
    if device.type == "cuda" and is_image:
        x_train, x_val = (a.contiguous(memory_format=torch.channels_last) for a in (x_train, x_val))
    row_weight = None if rows.weight is None else torch.from_numpy(rows.weight.astype(np.float32)).to(device)
    subset = fixed_train_subset(splits.y_train, t.train_subset, config.data.seed)

    # --- the prior training shows the loss: after the resampler and the sampler ------------
    sampler = create_sampler(config.sampler.name, config.sampler.params)
    rows_counts = np.bincount(rows.y, minlength=k)
    trained_prior = sampler.trained_prior(rows_counts, t.epochs)
    loss_counts = counts_np if LOSSES.info(config.loss.name).capabilities.get("counts") == "samples" \
        else trained_prior * len(rows.y)

    # --- model, the stages that change it first, loss, optimiser --------------------------
    model = create_model(config.model.name, config.model.params, input_shape=splits.input_shape, num_classes=k).to(device)
    if device.type == "cuda" and is_image:
        model = model.to(memory_format=torch.channels_last)
    net = Network(model, device, x_train, y_train, x_val, y_val, counts_np, trained_prior)
    for stage in stages:
        stage.before_loop(config, splits, net, run)
    crop, flip = _augment_mode(config, splits)
    epoch_length = int(sampler.expected_class_counts(rows_counts, 0, t.epochs).sum().round())
    plan = step_plan(epoch_length, t.batch_size, t.epochs, t.min_steps)
    loop = Loop(
        model=model, forward=torch.compile(model) if (t.compile and device.type == "cuda") else model,
        loss_fn=create_loss(config.loss.name, config.loss.params, class_counts=loss_counts.tolist()).to(device),
        optimizer=_optimizer(config, model.parameters()), sampler=sampler,
        generator=torch.Generator(device=device).manual_seed(t.seed), x_train=x_train, y_train=y_train,
        row_weight=row_weight, x_val=x_val, y_val=y_val, x_subset=torch.from_numpy(splits.x_train[subset]).to(device),
        subset_labels=splits.y_train[subset], class_counts=counts_np,
        drw_weights=class_weights(torch.as_tensor(trained_prior * len(rows.y)), "effective_number",
                                  beta=config.loss.drw_beta).to(device),
        crop=crop, flip=flip, amp=device.type == "cuda", passes_per_epoch=plan["passes_per_epoch"],
        batch_loss=net.batch_loss, before_step=net.before_step)

    # --- the loop (or the same loop kept by an earlier run), the selected epoch's weights, ---
    # --- then the stages after it --------------------------------------------------------
    started = time.perf_counter()
    kept, key = None, None
    if run.stage_one is not None:
        teachers = [w for teacher in run.teachers for w in teacher.state_dict().values()]  # MTARD's guide the loss
        key = stage_one_key(config, model, [x_train, y_train, row_weight, x_val, y_val, *teachers])
        kept = run.stage_one.load(key, model) if config.stage2 is not None else None
    if kept is None:
        net.history, selected = _first_stage(config, loop, run, x_train)
        if key is not None:
            run.stage_one.save(key, model, net.history, selected)
    else:  # a two-stage run on the settings of a run already trained in this pool
        history, selected = kept
        for row in history:
            run.record(row, net.history)
        run.info["stage_one_reused"] = True
    stopped_early = len(net.history) < t.epochs
    for stage in stages:
        stage.after_loop(config, net, run)

    # --- final evaluation pass -----------------------------------------------------------
    run.progress({"stage": "evaluate", "epoch": len(net.history), "epochs": t.epochs, "fraction": 1.0,
                  "elapsed_s": time.perf_counter() - started, "eta_s": 0.0})
    artifacts = evaluate(model, splits, subset, device, net.trained_prior)
    info = {"select": t.select, "selected_epoch": selected,
            "epochs_run": sum(r["stage"] == "train" for r in net.history), "stopped_early": stopped_early, **plan,
            "trained_prior": net.trained_prior.tolist(), **run.info}
    made = rows.made
    if made is not None and len(made.y):  # the made rows in the trained feature space, for Geometry
        made = dataclasses.replace(made, features=predict(model, torch.from_numpy(made.x).to(device))[1].cpu().numpy())
    return TrainResult(model, net.history, artifacts, splits, str(device), rows.synthetic, info, made)


def _first_stage(config: RunConfig, loop: Loop, run: RunHooks, x_train: torch.Tensor) -> tuple[list, int]:
    """The loop, then the selected epoch's weights with batch-norm statistics re-estimated."""
    history, best = train_epochs(config, loop, run)
    if config.train.select == "best":
        best.restore(loop.model)
    recalibrate_batchnorm(loop.model, x_train)
    return history, best.epoch if config.train.select == "best" else len(history)


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

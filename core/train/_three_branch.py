"""PLT-MLC's three branches (COMIC: correction, modification, balance) for multi-label runs.

Read in the authors' release, wannature/COMIC (models/BalancedlNetwork.py's training loop,
utils/dataloader.py's samplers, config/coco/resnet50_plt.yaml); the paper's equations were
not read. Three networks of the run's model, each with its own sampler's cases every step:

- **head** branch: every case once, in a fresh order (`instance`);
- **tail** branch: reverse sampling (`reverse_class`: a finding with probability
  proportional to n_max / n_c, then a case carrying it);
- **balanced** branch: class-aware sampling (`class_aware`: a finding uniformly, then a
  case carrying it).

Losses, as the release's loop: head = PFM + w RLC, tail likewise, balanced = PFM + mean of
the three branches' PFM + w RLC (PFM the prior focal modifier `plt_modifier`, RLC the
reflective label corrector `plt_corrector`, one corrector per branch, w = 0.2). The release
steps three optimisers after three backward passes in which each branch's parameters
collect the gradient of its own loss plus the balanced loss's share; one backward pass of
the three losses' sum and one optimiser over the three networks' parameters give the same
gradients and updates. The head-tail balancer term is commented out of the release's loop
and is not built. Predictions, validation (model selection by mAP) and everything stored
come from the balanced branch alone, as in the release's evaluation. Unknown entries stay
out of every loss (the losses mask them).

Release bugs not copied: `batch_forward` feeds the balanced network the plain-order images
and the head network the reverse-sampled ones while the losses pair them with the other
branches' labels, and the dataset's `__getitem__` calls `get_item()` without its index;
here each branch trains on its own sampler's cases and their labels, the evident intent.
Departures: the causal-norm classifiers (CausalNorm / HeadNorm / TailNorm with moving
means of the embeddings) and the per-network learning rates are not reproduced: each
branch is the run's own network under the run's training settings.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from core.config import RunConfig
from core.data import MultiLabelRunData
from core.methods import MultiLabelLoss, MultiLabelSampler, create_multilabel_loss, create_multilabel_sampler
from core.models import create_model
from core.train._common import RunHooks, TrainResult, between_batches
from core.train._device import augment_batch, resolve_device, seed_everything
from core.train._loop import BestEpoch, check_divergence
from core.train._multilabel import close_epoch, epoch_record, finish_multilabel, loss_context, training_tensors
from core.train._network import _optimizer
from core.train._schedule import scheduled_lr, step_plan

__all__ = ["BRANCHES", "Branch", "fit_three_branch", "three_branch_loss"]

# (branch, the multi-label sampler its cases come from); the last one is kept and stored
BRANCHES: tuple[tuple[str, str], ...] = (("head", "instance"), ("tail", "reverse_class"), ("balanced", "class_aware"))


@dataclass
class Branch:
    name: str
    model: nn.Module
    sampler: MultiLabelSampler
    corrector: MultiLabelLoss


def three_branch_loss(modifier: MultiLabelLoss, branches: Sequence[Branch], logits: Sequence[Tensor],
                      targets: Sequence[Tensor], corrector_weight: float) -> tuple[Tensor, Tensor]:
    """(the sum of the three branches' losses, to step on; the balanced branch's loss, to report).
    `logits[i]` and `targets[i]` are branch i's cases, in `BRANCHES` order."""
    pfm = [modifier(z, y) for z, y in zip(logits, targets)]
    rlc = [b.corrector(z, y) for b, z, y in zip(branches, logits, targets)]
    head, tail = pfm[0] + corrector_weight * rlc[0], pfm[1] + corrector_weight * rlc[1]
    balanced = pfm[2] + torch.stack(pfm).mean() + corrector_weight * rlc[2]
    return head + tail + balanced, balanced


def _branches(config: RunConfig, data: MultiLabelRunData, params: dict[str, Any], device) -> list[Branch]:
    context = loss_context(data)
    corrector = {"tau": params["tau"], "correct_from_epoch": params["correct_from_epoch"]}
    return [Branch(name, create_model(config.model.name, config.model.params, input_shape=data.input_shape,
                                      num_classes=data.num_labels).to(device),
                   create_multilabel_sampler(sampler), create_multilabel_loss("plt_corrector", corrector,
                                                                              **context).to(device))
            for name, sampler in BRANCHES]


def fit_three_branch(config: RunConfig, data: MultiLabelRunData, run: RunHooks, params: dict[str, Any]) -> TrainResult:
    """Train the three branches together on the multi-label training split; evaluate the balanced one."""
    t = config.train
    seed_everything(t.seed)
    device = resolve_device(t.device)
    x_train, y_train, x_val = training_tensors(data, device)
    branches = _branches(config, data, params, device)
    modifier = create_multilabel_loss("plt_modifier", None, **loss_context(data)).to(device)
    balanced = branches[-1].model
    plan = step_plan(len(data.y_train), t.batch_size, t.epochs, t.min_steps)  # each sampler draws n cases a pass
    optimizer = _optimizer(config, [p for b in branches for p in b.model.parameters()])
    generator = torch.Generator(device=device).manual_seed(t.seed)
    augment = data.modality == "image" and t.augment in ("crop", "crop_flip")
    history: list[dict[str, Any]] = []
    best, first_loss, started = BestEpoch(), None, time.perf_counter()
    for b in branches:
        b.model.train()
    for epoch in range(t.epochs):
        epoch_start = time.perf_counter()
        for b in branches:
            b.corrector.set_epoch(epoch)
        idx = [torch.cat([b.sampler.sample_indices(y_train, epoch=epoch, num_epochs=t.epochs, generator=generator)
                          for _ in range(plan["passes_per_epoch"])]) for b in branches]
        n_batches = max(math.ceil(len(idx[0]) / t.batch_size), 1)
        loss_sum, seen = torch.zeros((), device=device), 0
        for step in range(n_batches):
            batches = [i[step * t.batch_size:(step + 1) * t.batch_size] for i in idx]
            if min(len(batch) for batch in batches) < 2:  # batch norm cannot train on one sample
                continue
            for group in optimizer.param_groups:
                group["lr"] = scheduled_lr(t, (epoch + step / n_batches) / t.epochs)
            logits = []
            for branch, batch in zip(branches, batches):
                xb = x_train[batch]
                if augment:
                    xb = augment_batch(xb, crop=True, flip=t.augment == "crop_flip", generator=generator)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                    logits.append(branch.model(xb).float())
            total, balanced_loss = three_branch_loss(modifier, branches, logits, [y_train[b] for b in batches],
                                                     params["corrector_weight"])
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            loss_sum += balanced_loss.detach() * len(batches[-1])
            seen += len(batches[-1])
            between_batches(run, epoch, step, n_batches, t.epochs, started)
        train_loss = float(loss_sum) / max(seen, 1)
        first_loss = train_loss if first_loss is None else first_loss
        check_divergence(train_loss, first_loss, epoch + 1, config)
        row = epoch_record(balanced, modifier, x_val, data.y_val, epoch, train_loss, t, n_batches, epoch_start)
        if close_epoch(row, history, best, balanced, t, run):
            break
    return finish_multilabel(config, data, run, balanced, x_train, history, best, plan, started, device,
                             branches=len(branches), kept_branch="balanced")

"""Pre-training of the backbone before the usual training (Yang & Xu, NeurIPS 2020:
self-supervised pre-training on the same data helps the tail classes most; SBCL in
`_sbcl.py` is a supervised objective registered here too, declared with `labels=True`).

An objective trains `model.forward_features` on every training input, labelled or not,
through a small head of its own that is thrown away afterwards; the model's classifier is
left as it was. Inputs are the training rows and the unlabelled rows, never validation or
test rows: :func:`pretrain_inputs` is the only way the trainer gathers them (an objective
that uses labels learns from the labelled training rows alone).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn

from core.config import PretrainSpec, RunConfig
from core.data import Splits
from core.models import Classifier
from core.registry import Params, Registry
from core.train._common import CHECK_EVERY_BATCHES, Cancelled, Network, RunHooks, Stage, loop_progress
from core.train._device import augment_batch

__all__ = ["PRETRAIN", "PRETRAINING", "pretrain_inputs", "run_pretrain", "nt_xent", "PretrainParams", "random_view"]

PRETRAIN: Registry[nn.Module] = Registry("pre-training objective")


def pretrain_inputs(splits: Splits) -> np.ndarray:
    """Every training input: the labelled training rows and the unlabelled rows."""
    unlabeled = getattr(splits, "x_unlabeled", None)
    if unlabeled is None or len(unlabeled) == 0:
        return splits.x_train
    return np.concatenate([splits.x_train, unlabeled.astype(splits.x_train.dtype, copy=False)])


def nt_xent(a: Tensor, b: Tensor, temperature: float) -> Tensor:
    """SimCLR's normalised-temperature cross-entropy: row i of `a` must pick row i of `b`
    (and vice versa) among the 2n - 1 other embeddings of the batch."""
    z = nn.functional.normalize(torch.cat([a, b]).float(), dim=1)
    n = len(a)
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return nn.functional.cross_entropy(sim, target)


class PretrainParams(Params):
    epochs: int = Field(30, ge=1, le=10_000, title="Pre-training epochs",
                        description="passes over every training input, labelled or not")
    lr: float = Field(3e-3, gt=0, le=1, title="Pre-training learning rate", description="step size of the optimiser "
                      "(AdamW) during pre-training")
    batch_size: int = Field(128, ge=4, le=65_536, title="Pre-training batch size",
                            description="inputs per step (the contrastive loss compares each with the rest of its "
                                        "batch)")


class ContrastiveParams(PretrainParams):
    temperature: float = Field(0.5, gt=0, le=10, title="Temperature",
                               description="softmax temperature of the contrastive loss: lower punishes near misses "
                                           "harder")
    noise: float = Field(0.1, ge=0, le=5, title="Noise",
                         description="spread of the random noise added to each copy, in the inputs' units (tables are "
                                     "standardised: 0.1 is a tenth of a standard deviation)")
    drop: float = Field(0.2, ge=0, lt=1, title="Blanked share",
                        description="share of features (tables) or pixels (images) blanked in each copy")
    projection_dim: int = Field(64, ge=2, le=4096, title="Projection size",
                                description="size of the throw-away layer whose outputs the loss compares")


class MaskedParams(PretrainParams):
    mask_rate: float = Field(0.3, gt=0, lt=1, title="Hidden share",
                             description="share of features (or pixels) hidden for the network to fill back in")


class _Objective(nn.Module):
    """A pre-training loss on a batch of inputs; its own layers are dropped after pre-training.
    An objective that `uses_labels` learns from the labelled training rows only, gets each
    batch's targets: the labels, or what `start_epoch` makes of all of them at the start of every
epoch (SBCL: each row's class and subclass)."""

    uses_labels = False

    def __init__(self, *, epochs: int, lr: float, batch_size: int):
        super().__init__()
        self.epochs, self.lr, self.batch_size = epochs, lr, batch_size

    def start_epoch(self, model: Classifier, x: Tensor, y: Tensor, epoch: int) -> Tensor:
        """The per-row targets this epoch's batches carry (by default the labels)."""
        return y

    def forward(self, model: Classifier, x: Tensor, generator: torch.Generator, y: Tensor | None = None) -> Tensor:
        raise NotImplementedError


def _blank(x: Tensor, rate: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """(x with a random share `rate` of its entries set to 0, the mask of blanked entries)."""
    mask = torch.rand(x.shape, device=x.device, generator=generator) < rate
    return x.masked_fill(mask, 0.0), mask


def random_view(x: Tensor, generator: torch.Generator, *, image: bool, drop: float, noise: float) -> Tensor:
    """One cheap random view of a batch: a shift of up to an eighth of the side (images),
    blanked entries and Gaussian noise."""
    if image:
        x = augment_batch(x, crop=True, flip=False, generator=generator)
    x = _blank(x, drop, generator)[0]
    return x + noise * torch.randn(x.shape, device=x.device, generator=generator)


@PRETRAIN.register(
    "contrastive", display="Contrastive (SimCLR)",
    description="The network learns to tell two randomly disturbed copies of the same input apart from every "
                "other input, without using any label.",
    paper="Chen et al. 2020, A Simple Framework for Contrastive Learning (SimCLR); Yang & Xu 2020, Rethinking "
          "the Value of Labels for Improving Class-Imbalanced Learning (NeurIPS)",
    params=ContrastiveParams)
class Contrastive(_Objective):
    def __init__(self, *, temperature: float, noise: float, drop: float, projection_dim: int, feature_dim: int,
                 input_shape: tuple[int, ...], image: bool, **common: Any):
        super().__init__(**common)
        self.temperature, self.noise, self.drop, self.image = temperature, noise, drop, image
        self.projection = nn.Sequential(nn.Linear(feature_dim, feature_dim), nn.ReLU(),
                                        nn.Linear(feature_dim, projection_dim))

    def view(self, x: Tensor, generator: torch.Generator) -> Tensor:
        return random_view(x, generator, image=self.image, drop=self.drop, noise=self.noise)

    def forward(self, model: Classifier, x: Tensor, generator: torch.Generator, y: Tensor | None = None) -> Tensor:
        both = torch.cat([self.view(x, generator), self.view(x, generator)])  # one pass: batch norm sees both views
        z = self.projection(model.forward_features(both).float())
        return nt_xent(z[: len(x)], z[len(x):], self.temperature)


@PRETRAIN.register(
    "masked", display="Fill in hidden features",
    description="Part of each input is hidden and the network learns to fill it back in, without using any label.",
    paper="Vincent et al. 2008, denoising autoencoders; He et al. 2022, Masked Autoencoders; Yang & Xu 2020 (NeurIPS)",
    params=MaskedParams)
class Masked(_Objective):
    def __init__(self, *, mask_rate: float, feature_dim: int, input_shape: tuple[int, ...], image: bool,
                 **common: Any):
        super().__init__(**common)
        self.mask_rate = mask_rate
        self.decoder = nn.Sequential(nn.Linear(feature_dim, feature_dim), nn.ReLU(),
                                     nn.Linear(feature_dim, math.prod(input_shape)))

    def forward(self, model: Classifier, x: Tensor, generator: torch.Generator, y: Tensor | None = None) -> Tensor:
        hidden, mask = _blank(x, self.mask_rate, generator)
        guess = self.decoder(model.forward_features(hidden).float()).view(x.shape)
        return ((guess - x.float()) ** 2 * mask).sum() / mask.sum().clamp(min=1)


def run_pretrain(
    spec: PretrainSpec, model: Classifier, inputs: np.ndarray, *, device: torch.device, seed: int,
    progress: Callable[[dict[str, Any]], None], should_stop: Callable[[], bool], labels: np.ndarray | None = None,
) -> dict[str, Any]:
    """Train `model`'s backbone on `inputs` with `spec`'s objective, in place; returns what
    the run stores: the objective, its settings and its loss per epoch. An objective that
    uses labels needs `labels`, one per input."""
    if len(inputs) < 2:
        raise ValueError("pre-training needs at least two training inputs")
    x_all = torch.from_numpy(np.ascontiguousarray(inputs)).to(device)
    objective = PRETRAIN.create(spec.name, spec.params, feature_dim=model.feature_dim,
                                input_shape=tuple(inputs.shape[1:]), image=inputs.ndim == 4).to(device)
    if objective.uses_labels and (labels is None or len(labels) != len(inputs)):
        raise ValueError(f"pre-training {spec.name!r} learns from labels: give one per input")
    y_all = None if labels is None else torch.from_numpy(np.asarray(labels, np.int64)).to(device)
    backbone = [p for name, p in model.named_parameters() if not name.startswith("head.")]
    optimizer = torch.optim.AdamW([*backbone, *objective.parameters()], lr=objective.lr, weight_decay=1e-4)
    generator = torch.Generator(device=device).manual_seed(seed)
    amp = device.type == "cuda"
    n, size = len(x_all), min(objective.batch_size, len(x_all))
    n_batches = max(n // size, 1)  # full batches only: the contrastive loss depends on the batch size
    losses, started = [], time.perf_counter()
    model.train()
    for epoch in range(objective.epochs):
        targets = objective.start_epoch(model, x_all, y_all, epoch) if objective.uses_labels else None
        order = torch.randperm(n, device=device, generator=generator)
        total = torch.zeros((), device=device)
        for b in range(n_batches):
            rows = order[b * size : (b + 1) * size]
            xb, yb = x_all[rows], None if targets is None else targets[rows]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss = objective(model, xb, generator, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach()
            if b % CHECK_EVERY_BATCHES == 0 or b == n_batches - 1:
                if should_stop():
                    raise Cancelled(f"cancelled in pre-training, epoch {epoch + 1}")
                progress({**loop_progress("pretrain", epoch, b, n_batches, objective.epochs, started),
                          "labels": objective.uses_labels})
        losses.append(float(total) / n_batches)
        if not math.isfinite(losses[-1]):
            raise ValueError(f"pre-training diverged at epoch {epoch + 1} (loss is not a number); "
                             f"try a lower pretrain lr (now {objective.lr:g})")
    model.zero_grad(set_to_none=True)
    return {"name": spec.name, "params": spec.resolved_params(), "inputs": n, "batch_size": size,
            "loss": losses, "seconds": time.perf_counter() - started}


class Pretraining(Stage):
    """The fresh network's backbone learns from every training input before the loop."""

    name = "pre-training"

    def applies(self, config: RunConfig) -> bool:
        return config.pretrain is not None

    def before_loop(self, config: RunConfig, splits: Splits, net: Network, run: RunHooks) -> None:
        labelled = PRETRAIN.info(config.pretrain.name).capabilities.get("labels", False)
        inputs = net.x_train.cpu().numpy() if labelled else pretrain_inputs(splits)  # labelled: after resampling
        run.info["pretrain"] = run_pretrain(config.pretrain, net.model, inputs, device=net.device,
                                            seed=config.train.seed, progress=run.progress,
                                            should_stop=run.should_stop,
                                            labels=net.y_train.cpu().numpy() if labelled else None)


PRETRAINING = Pretraining()

"""Device placement, seeding and deterministic kernels, and on-device batch helpers (augmentation,
inference, balanced accuracy, batch-norm re-estimation)."""

from __future__ import annotations

import os
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["recalibrate_batchnorm", "resolve_device", "augment_batch", "predict", "seed_everything", "balanced_accuracy_t",
           "deterministic_algorithms"]


def resolve_device(choice: str = "auto") -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but no CUDA GPU is visible; use 'auto' or 'cpu'")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(choice)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


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


def augment_batch(x: Tensor, *, crop: bool, flip: bool, generator: torch.Generator | None) -> Tensor:
    """Random crop (pad by size/8, reflect) and horizontal flip, batched on x's device."""
    n, _, h, w = x.shape
    if crop:
        pad = max(h // 8, 1)
        padded = nn.functional.pad(x, (pad, pad, pad, pad), mode="reflect")
        dy = torch.randint(0, 2 * pad + 1, (n,), device=x.device, generator=generator)
        dx = torch.randint(0, 2 * pad + 1, (n,), device=x.device, generator=generator)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]  # n,h,1
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]  # n,1,w
        batch = torch.arange(n, device=x.device)[:, None, None]
        x = padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)
    if flip:
        mask = torch.rand(n, device=x.device, generator=generator) < 0.5
        x = torch.where(mask[:, None, None, None], x.flip(3), x)
    return x.contiguous(memory_format=torch.channels_last) if x.is_cuda else x.contiguous()


@torch.no_grad()
def predict(model: nn.Module, x: Tensor, batch_size: int = 1024) -> tuple[Tensor, Tensor]:
    """(logits, penultimate features) in eval mode, float32, on x's device."""
    was_training = model.training
    model.eval()
    logits, feats = [], []
    amp = x.is_cuda
    for start in range(0, len(x), batch_size):
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
            z = model.forward_features(x[start : start + batch_size])
            out = model.head(z)
        feats.append(z.float())
        logits.append(out.float())
    model.train(was_training)
    if not logits:
        return torch.empty(0), torch.empty(0)
    return torch.cat(logits), torch.cat(feats)


def balanced_accuracy_t(pred: Tensor, labels: Tensor, num_classes: int) -> tuple[float, Tensor]:
    """(mean recall over classes present, per-class recall with NaN for absent classes)."""
    support = torch.bincount(labels, minlength=num_classes).float()
    hits = torch.bincount(labels[pred == labels], minlength=num_classes).float()
    recall = torch.where(support > 0, hits / support.clamp(min=1), torch.full_like(support, float("nan")))
    return float(recall[support > 0].mean()), recall


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, x: Tensor, batch_size: int = 512) -> None:
    """Re-estimate batch-norm statistics with one pass over `x` (as SWA's `update_bn`).

    Short runs leave the running averages far from the final weights' statistics, which
    makes evaluation collapse to one class; a cumulative pass fixes that for any length.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms or len(x) < 2:
        return
    was_training = model.training
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the pass
    model.train()
    for start in range(0, len(x), batch_size):
        chunk = x[start : start + batch_size]
        if len(chunk) > 1:
            with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=x.is_cuda):
                model(chunk)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.train(was_training)

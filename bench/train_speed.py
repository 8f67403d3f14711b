"""Seconds per training epoch, three ways, in one process (ratios, not absolute times).

1. engine      - Tailscope's device-resident loop (core.train.train_run), class-balanced sampler
2. dataloader  - the idiomatic loop: DataLoader(TensorDataset) + WeightedRandomSampler
3. bound       - compute only: forward/backward/step on batches already sliced on the device

Same model, data, epochs, batch size, optimiser and sampling weights; no augmentation.
Usage: python bench/train_speed.py [--epochs 4] [--device cpu|cuda] [--synthetic cifar-lt] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

from core.config import RunConfig
from core.data import Dataset, prepare_splits
from core.models import create_model
from core.train import prepare_run_data, train_run

CASES = {
    "mlp/breast_cancer": {"source": "breast_cancer", "model": "mlp", "batch_size": 64},
    "mlp/gaussian_hd": {"source": "gaussian_hd", "model": "mlp", "batch_size": 128},
    "small_cnn/digits": {"source": "digits", "model": "small_cnn", "batch_size": 128},
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _config(source: str, model: str, batch_size: int, epochs: int, device: str) -> RunConfig:
    return RunConfig.model_validate({
        "data": {"source": source, "imbalance": {"profile": "exp", "ratio": 10}},
        "model": {"name": model}, "sampler": {"name": "class_balanced"},
        "train": {"epochs": epochs, "batch_size": batch_size, "lr": 0.01, "device": device, "augment": "none",
                  "nc_every": 0, "schedule": "constant"},
    })


def _step(model, optimizer, xb, yb, amp: bool) -> None:
    with torch.autocast(xb.device.type, dtype=torch.bfloat16, enabled=amp):
        logits = model(xb)
    loss = torch.nn.functional.cross_entropy(logits.float(), yb)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _fresh(config: RunConfig, splits, device):
    torch.manual_seed(0)
    model = create_model(config.model.name, input_shape=splits.input_shape, num_classes=splits.num_classes).to(device)
    if device.type == "cuda" and splits.modality == "image":
        model = model.to(memory_format=torch.channels_last)
    t = config.train
    return model, torch.optim.SGD(model.parameters(), lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay,
                                  nesterov=True)


def time_engine(config: RunConfig, splits) -> float:
    result = train_run(config, splits=splits)
    return statistics.median(r["train_seconds"] for r in result.history[1:] or result.history)


def time_dataloader(config: RunConfig, splits, device: torch.device) -> float:
    model, optimizer = _fresh(config, splits, device)
    x, y = torch.from_numpy(splits.x_train), torch.from_numpy(splits.y_train)
    weights = (1.0 / torch.bincount(y).float())[y]
    loader = DataLoader(TensorDataset(x, y), batch_size=config.train.batch_size,
                        sampler=WeightedRandomSampler(weights, num_samples=len(y), replacement=True),
                        pin_memory=device.type == "cuda")
    times = []
    for _ in range(config.train.epochs):
        start = time.perf_counter()
        for xb, yb in loader:
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            if device.type == "cuda" and xb.ndim == 4:
                xb = xb.contiguous(memory_format=torch.channels_last)
            if len(yb) > 1:
                _step(model, optimizer, xb, yb, device.type == "cuda")
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:] or times)


def time_bound(config: RunConfig, splits, device: torch.device) -> float:
    model, optimizer = _fresh(config, splits, device)
    x = torch.from_numpy(splits.x_train).to(device)
    if device.type == "cuda" and x.ndim == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.from_numpy(splits.y_train).to(device)
    bs = config.train.batch_size
    batches = [(x[i : i + bs], y[i : i + bs]) for i in range(0, len(y), bs) if len(y[i : i + bs]) > 1]
    times = []
    for _ in range(config.train.epochs):
        _sync(device)
        start = time.perf_counter()
        for xb, yb in batches:
            _step(model, optimizer, xb, yb, device.type == "cuda")
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:] or times)


def synthetic_cifar_lt(seed: int = 0) -> Dataset:
    """CIFAR-shaped (3x32x32) mixture; with the exp profile (ratio 100) its training split
    has CIFAR-10-LT's 12,406 images."""
    rng = np.random.default_rng(seed)
    per_class = 6250  # 80 % of it (the train share below) is CIFAR-10's 5,000 per class
    y = np.repeat(np.arange(10), per_class)
    means = rng.uniform(0.2, 0.8, (10, 3, 1, 1)).astype(np.float32)
    x = np.clip(means[y] + 0.2 * rng.standard_normal((len(y), 3, 32, 32), dtype=np.float32), 0, 1)
    return Dataset("cifar-lt", x, y, tuple(str(i) for i in range(10)), "image")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--synthetic", choices=["cifar-lt"], help="add resnet32 on a CIFAR-10-LT-shaped set")
    parser.add_argument("--only", help="run only the cases whose name contains this")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    cases = {name: (_config(c["source"], c["model"], c["batch_size"], args.epochs, args.device), None)
             for name, c in CASES.items()}
    if args.synthetic:
        config = _config("digits", "resnet32", 128, args.epochs, args.device)
        splits = prepare_splits(synthetic_cifar_lt(), profile="exp", ratio=100, test_fraction=0.15,
                                val_fraction=0.05, seed=0)
        assert len(splits.y_train) == 12_406, len(splits.y_train)  # CIFAR-10-LT, rho = 100
        cases["resnet32/cifar-lt"] = (config, splits)
    results = {}
    for name, (config, splits) in cases.items():
        if args.only and args.only not in name:
            continue
        splits = splits or prepare_run_data(config)
        engine = time_engine(config, splits)
        loader = time_dataloader(config, splits, device)
        bound = time_bound(config, splits, device)
        results[name] = {"engine_s": engine, "dataloader_s": loader, "bound_s": bound, "n_train": len(splits.y_train)}
        if not args.json:
            print(f"{name:<20} n={len(splits.y_train):>6}  engine {engine:8.4f}s  dataloader {loader:8.4f}s  "
                  f"bound {bound:8.4f}s   dataloader/engine {loader / engine:5.2f}x   engine/bound {engine / bound:5.2f}x")
    if args.json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

"""Seconds per training epoch at equal optimiser steps, three ways, and a whole run, in one
process (ratios against the bound measured in the same run, never absolute promises).

1. engine      - Tailscope's device-resident loop (core.train.train_run), class-balanced sampler;
                 an epoch is everything between two history rows: the sampler's draw, the steps,
                 the validation pass, the history row and the best-epoch bookkeeping
2. dataloader  - the idiomatic loop: DataLoader(TensorDataset) + WeightedRandomSampler
3. bound       - compute only: forward/backward/step on batches already sliced on the device

All three take the engine's number of steps per epoch (small tables repeat the sampler's draw
up to `train.min_steps` steps per run, so an epoch is many passes): same model, data, batch
size, optimiser and sampling weights; no augmentation. "whole run" is a queued run from its
config to its stored files (data preparation, training, evaluation, metrics, weights; no 2-D
map), against the bound for all of its steps.

Usage: python bench/train_speed.py [--epochs 10] [--device cpu|cuda] [--synthetic cifar-lt] [--threads N]
       [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import tempfile
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

from core.config import RunConfig
from core.data import Dataset, prepare_splits
from core.models import create_model
from core.train import prepare_run_data, train_run

CASES = {
    "mlp/wine": {"source": "wine", "model": "mlp", "batch_size": 64},
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


def time_engine(config: RunConfig, splits) -> tuple[float, int]:
    """(median seconds from one history row to the next, steps per epoch)."""
    stamps: list[float] = []
    result = train_run(config, splits=splits, on_epoch=lambda row: stamps.append(time.perf_counter()))
    gaps = np.diff(stamps)
    return float(statistics.median(gaps)), int(result.info["batches_per_epoch"])


def time_dataloader(config: RunConfig, splits, device: torch.device, steps: int) -> float:
    model, optimizer = _fresh(config, splits, device)
    x, y = torch.from_numpy(splits.x_train), torch.from_numpy(splits.y_train)
    weights = (1.0 / torch.bincount(y).float())[y]
    loader = DataLoader(TensorDataset(x, y), batch_size=config.train.batch_size,
                        sampler=WeightedRandomSampler(weights, num_samples=len(y), replacement=True),
                        pin_memory=device.type == "cuda")
    times = []
    for _ in range(config.train.epochs):
        start, done = time.perf_counter(), 0
        while done < steps:
            for xb, yb in loader:
                xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
                if device.type == "cuda" and xb.ndim == 4:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                if len(yb) > 1:
                    _step(model, optimizer, xb, yb, device.type == "cuda")
                done += 1
                if done == steps:
                    break
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:] or times)


def time_bound(config: RunConfig, splits, device: torch.device, steps: int) -> float:
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
        for s in range(steps):
            _step(model, optimizer, *batches[s % len(batches)], device.type == "cuda")
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:] or times)


def time_whole_run(config: RunConfig) -> float:
    """Seconds from a queued config to a finished run with its files, through the worker's path."""
    from core.jobs import execute_run
    from core.store import RunStore

    with tempfile.TemporaryDirectory() as home:
        store = RunStore(home)
        run_id = store.create_run(config)
        start = time.perf_counter()
        state = execute_run(store, store.claim(run_id, os.getpid()), embeddings=False)
        seconds = time.perf_counter() - start
    assert state == "done", state
    return seconds


def synthetic_cifar_lt(seed: int = 0) -> Dataset:
    """CIFAR-shaped (3x32x32) mixture; with the exp profile (ratio 100) its training split
    has CIFAR-10-LT's 12,406 images."""
    rng = np.random.default_rng(seed)
    per_class = 6250  # 80 % of it (the train share below) is CIFAR-10's 5,000 per class
    y = np.repeat(np.arange(10), per_class)
    means = rng.uniform(0.2, 0.8, (10, 3, 1, 1)).astype(np.float32)
    x = np.clip(means[y] + 0.2 * rng.standard_normal((len(y), 3, 32, 32), dtype=np.float32), 0, 1)
    return Dataset("cifar-lt", x, y, tuple(str(i) for i in range(10)), "image")


def measure(config: RunConfig, splits, device: torch.device, *, queued: bool, repeats: int) -> dict[str, float]:
    """Each way timed once per round, the rounds interleaved so a busy machine slows all of them
    alike; times are medians over rounds, ratios the medians of each round's own ratio."""
    rounds = []
    for _ in range(repeats):
        engine, steps = time_engine(config, splits)
        loader = time_dataloader(config, splits, device, steps)
        bound = time_bound(config, splits, device, steps)
        whole = time_whole_run(config) if queued else math.nan  # a run the worker can prepare from its config
        rounds.append({"engine_s": engine, "dataloader_s": loader, "bound_s": bound, "whole_run_s": whole,
                       "engine_over_bound": engine / bound, "dataloader_over_bound": loader / bound,
                       "run_over_bound": whole / (bound * config.train.epochs)})
    out = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    out.update({"n_train": len(splits.y_train), "steps_per_epoch": steps,
                "run_bound_s": out["bound_s"] * config.train.epochs})
    if not queued:
        out.update({"whole_run_s": None, "run_over_bound": None})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--synthetic", choices=["cifar-lt"], help="add resnet32 on a CIFAR-10-LT-shaped set")
    parser.add_argument("--only", help="run only the cases whose name contains this")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice); on a shared "
                                                    "machine 1 keeps busy neighbours from stalling every step")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds; medians are reported")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
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
    if not args.json:
        print(f"{'case':<20} {'n':>6} {'steps':>5} | per epoch: {'engine':>8} {'loader':>8} {'bound':>8} "
              f"{'eng/bnd':>7} {'ldr/bnd':>7} | whole run: {'wall':>7} {'bound':>7} {'run/bnd':>7}")
    for name, (config, splits) in cases.items():
        if args.only and args.only not in name:
            continue
        r = results[name] = measure(config, splits or prepare_run_data(config), device, queued=splits is None,
                                    repeats=args.repeats)
        if not args.json:
            run = (f"{r['whole_run_s']:7.3f} {r['run_bound_s']:7.3f} {r['run_over_bound']:6.2f}x"
                   if r["whole_run_s"] is not None else f"{'-':>7} {r['run_bound_s']:7.3f} {'-':>7}")
            print(f"{name:<20} {r['n_train']:>6} {r['steps_per_epoch']:>5} | per epoch: {r['engine_s']:8.4f} "
                  f"{r['dataloader_s']:8.4f} {r['bound_s']:8.4f} {r['engine_over_bound']:6.2f}x "
                  f"{r['dataloader_over_bound']:6.2f}x | whole run: {run}")
    if args.json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

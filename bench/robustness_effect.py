"""Who pays for robustness, and does re-weighting spread the cost? Digits, long-tailed
(exponential, ratio 10 and 100), 3 seeds.

Methods on the same splits, seeds and network (small CNN, few epochs): plain cross-entropy,
PGD adversarial training (`robust: pgd_at`), re-weighted adversarial training (`srat`) and
two-teacher distillation (`mtard`, which trains its own clean and TRADES teachers first). Each
model is attacked with PGD (L-inf, 10 steps) at --eps on the test split. Prints clean and
robust balanced accuracy and the tail group's robust accuracy (mean and 95 % t-interval over
seeds), and the training wall time against plain training on the same seed (the ratio; MTARD's
includes its teachers). With 3 seeds no paired test can reach p < 0.05: read the intervals.
No timing asserts; the default takes about 10 min on 2 idle cores.
Usage: python bench/robustness_effect.py [--epochs 10] [--seeds 0 1 2] [--ratios 10 100] [--eps 0.1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from core.analysis import robust_predictions, robustness_table, t_interval
from core.config import RunConfig
from core.train import train_run

METHODS: dict[str, dict | None] = {"ce": None, "pgd-at": {"name": "pgd_at"}, "re-weighted (srat)": {"name": "srat"},
                                   "mtard": {"name": "mtard"}}


def make_config(robust: dict | None, *, seed: int, epochs: int, ratio: float, eps: float, steps: int) -> RunConfig:
    raw = {"data": {"source": "digits", "imbalance": {"profile": "exp", "ratio": ratio}, "seed": seed,
                    "many_shot": 60, "few_shot": 20},
           "model": {"name": "small_cnn"},
           "train": {"epochs": epochs, "batch_size": 64, "lr": 0.05, "seed": seed, "nc_every": 0, "min_steps": 0,
                     "train_subset": 64}}
    if robust is not None:
        raw["robust"] = {**robust, "epsilon": eps, "steps": steps}
    return RunConfig.model_validate(raw)


def evaluate(result, eps: float) -> dict[str, float]:
    splits, art = result.splits, result.artifacts
    x = splits.x_test[art.test_index]
    groups = _groups(art.class_counts)
    preds = robust_predictions(result.model, x, art.labels, attack="pgd", params={"steps": 10}, epsilons=[0.0, eps],
                               modality=splits.modality)
    table = robustness_table(art.labels, preds, groups, list(splits.class_names), art.class_counts, n_resamples=200)
    pooled = table[table["scope"] != "class"].set_index(["epsilon", "name"])["accuracy"]
    return {"clean balanced": pooled[(0.0, "all classes")], "robust balanced": pooled[(eps, "all classes")],
            "robust tail": pooled.get((eps, "tail"), np.nan), "robust gap": pooled.get((eps, "head - tail"), np.nan)}


def _groups(counts) -> list[str]:
    from core.data import class_groups

    return class_groups(counts, many=60, few=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--ratios", type=float, nargs="+", default=[10, 100])
    parser.add_argument("--eps", type=float, default=0.1, help="budget of training and of the test attack")
    parser.add_argument("--steps", type=int, default=3, help="attack steps during training")
    args = parser.parse_args()
    torch.set_num_threads(1)  # beside other work on two cores
    keys = ("clean balanced", "robust balanced", "robust tail", "robust gap")
    for ratio in args.ratios:
        rows: dict[str, dict[str, list[float]]] = {m: {k: [] for k in (*keys, "seconds", "time ratio")}
                                                   for m in METHODS}
        for seed in args.seeds:
            plain_seconds = None
            for method, robust in METHODS.items():
                config = make_config(robust, seed=seed, epochs=args.epochs, ratio=ratio, eps=args.eps,
                                     steps=args.steps)
                started = time.perf_counter()
                result = train_run(config)
                seconds = time.perf_counter() - started
                plain_seconds = plain_seconds or seconds
                numbers = evaluate(result, args.eps)
                for k in keys:
                    rows[method][k].append(numbers[k])
                rows[method]["seconds"].append(seconds)
                rows[method]["time ratio"].append(seconds / plain_seconds)
                print(f"  ratio {ratio:g} seed {seed} {method}: " + ", ".join(f"{k} {numbers[k]:.3f}" for k in keys)
                      + f", {seconds:.1f} s", flush=True)
        print(f"\nDigits LT ratio {ratio:g}, test attack PGD-10 L-inf epsilon {args.eps:g}, {len(args.seeds)} seeds "
              "(mean [95 % t-interval])")
        print(f"| method | {' | '.join(keys)} | train time vs plain |")
        print("|" + " --- |" * (len(keys) + 2))
        for method, values in rows.items():
            cells = [_cell(values[k], (-1.0, 1.0) if k == "robust gap" else (0.0, 1.0)) for k in keys]
            print(f"| {method} | {' | '.join(cells)} | {np.mean(values['time ratio']):.1f}x |")
        print()


def _cell(values: list[float], bounds: tuple[float, float]) -> str:
    s = t_interval(values, bounds=bounds)
    low, high = s["ci"]
    return f"{s['mean']:.3f} [{low:.3f}, {high:.3f}]"


if __name__ == "__main__":
    main()

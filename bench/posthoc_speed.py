"""Time per slider move of the Post-hoc explorer, against a naive sklearn recomputation.

Synthetic long-tailed run: K = 10 classes, n = 10,000 test samples, 128-d features.
For each slider setting it times `explore` (bincount metrics, one softmax) and the naive
path a page would otherwise take (the POSTHOC registry's calls, then
`summary_metrics` / `per_class_metrics` / `confusion` / `calibration_summary`, which use
sklearn and imbalanced-learn). Prints milliseconds and the ratio; asserts nothing.

    .venv/bin/python bench/posthoc_speed.py [--n 10000] [--k 10] [--repeats 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from core.analysis import calibration_summary, confusion, per_class_metrics, summary_metrics
from core.analysis._posthoc_explorer import explore
from core.artifacts import EvalArtifacts
from core.methods import apply_posthoc


def synthetic_run(n: int, k: int, d: int = 128, seed: int = 0) -> EvalArtifacts:
    rng = np.random.default_rng(seed)
    counts = np.floor(1000 * 100.0 ** (-np.arange(k) / (k - 1))).astype(np.int64)
    means = rng.normal(size=(k, d)).astype(np.float32)
    weight = (means * np.sqrt(counts / counts.max())[:, None]).astype(np.float32)
    bias = np.zeros(k, dtype=np.float32)

    def split(m: int):
        y = rng.integers(0, k, size=m)
        x = (means[y] + 1.5 * rng.normal(size=(m, d))).astype(np.float32)
        return x, y, x @ weight.T + bias

    x, y, z = split(n)
    xv, yv, zv = split(max(n // 5, k))
    return EvalArtifacts(logits=z, labels=y, features=x, head_weight=weight, head_bias=bias,
                         train_features=x[:100], train_labels=y[:100], class_counts=counts, val_logits=zv,
                         val_labels=yv, val_features=xv, test_index=np.arange(n))


def naive(artifacts: EvalArtifacts, *, logit_tau, tau_norm, temperature, prior_threshold) -> dict:
    """The same adjustments through the registry (validated calls), the metrics through sklearn."""
    z = apply_posthoc("tau_norm", artifacts, {"tau": tau_norm}) if tau_norm else artifacts.logits
    if logit_tau:
        z = apply_posthoc("logit_adjustment", artifacts.with_logits(z), {"tau": logit_tau})
    if prior_threshold:
        z = apply_posthoc("prior_threshold", artifacts.with_logits(z))
    z = apply_posthoc("temperature", artifacts.with_logits(z), {"T": temperature})
    k = artifacts.num_classes
    return {"summary": summary_metrics(z, artifacts.labels, k),
            "per_class": per_class_metrics(z, artifacts.labels, artifacts.class_counts),
            "confusion": confusion(z, artifacts.labels, k),
            "calibration": calibration_summary(z, artifacts.labels, artifacts.class_counts)}


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    artifacts = synthetic_run(args.n, args.k)
    moves = [
        {"logit_tau": 0.0, "tau_norm": 0.0, "temperature": 1.0, "prior_threshold": False},
        {"logit_tau": 1.0, "tau_norm": 0.0, "temperature": 1.0, "prior_threshold": False},
        {"logit_tau": 0.0, "tau_norm": 1.0, "temperature": 1.0, "prior_threshold": False},
        {"logit_tau": 0.5, "tau_norm": 0.5, "temperature": 1.5, "prior_threshold": True},
    ]
    explore(artifacts), naive(artifacts, **moves[0])  # warm-up (imports, caches)
    print(f"K = {args.k}, n = {args.n}, median of {args.repeats} runs per setting")
    print(f"{'slider setting':<52} {'explore ms':>10} {'naive ms':>9} {'ratio':>6}")
    ratios = []
    for move in moves:
        fast = median_time(lambda: explore(artifacts, **move), args.repeats)
        slow = median_time(lambda: naive(artifacts, **move), max(3, args.repeats // 4))
        ratios.append(slow / fast)
        label = (f"logit tau {move['logit_tau']}, tau-norm {move['tau_norm']}, T {move['temperature']}, "
                 f"prior {'on' if move['prior_threshold'] else 'off'}")
        print(f"{label:<52} {fast * 1e3:>10.2f} {slow * 1e3:>9.1f} {slow / fast:>5.1f}x")
    print(f"naive / explore (geometric mean): {float(np.exp(np.mean(np.log(ratios)))):.1f}x")


if __name__ == "__main__":
    main()

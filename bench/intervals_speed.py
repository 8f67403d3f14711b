"""Time of `bootstrap_intervals` (five metrics, B resamples) against a naive per-replicate loop.

Synthetic long-tailed test set: n samples over K classes (test counts fall by a factor of
100 from head to tail, so the tail has a handful of cases). The naive loop resamples
within each class with numpy and scores every replicate with sklearn / imbalanced-learn
and the project's `ece`; it runs fewer replicates and its time is scaled to B. Prints
seconds and the ratio; asserts nothing.

    .venv/bin/python bench/intervals_speed.py [--n 10000] [--k 10 200] [--b 1000] [--naive-b 50]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from imblearn.metrics import geometric_mean_score
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from core.analysis import bootstrap_intervals, ece, softmax


def synthetic_run(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    prior = 100.0 ** (-np.arange(k) / (k - 1))
    counts = np.maximum(1, np.round(n * prior / prior.sum())).astype(int)
    counts[0] += n - counts.sum()
    labels = rng.permutation(np.repeat(np.arange(k), counts))
    logits = rng.normal(size=(n, k)) * 2.0
    logits[np.arange(n), labels] += 3.0
    return logits, labels


def naive_intervals(logits: np.ndarray, labels: np.ndarray, n_resamples: int, seed: int = 0) -> np.ndarray:
    """The obvious implementation: resample per class, call the library metrics per replicate."""
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    present = np.unique(labels)
    probs = softmax(logits)
    pred = logits.argmax(axis=1)
    values = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(n_resamples):
            idx = np.concatenate([rng.choice(g, size=g.size, replace=True) for g in groups])
            y, p = labels[idx], pred[idx]
            values.append([
                accuracy_score(y, p),
                balanced_accuracy_score(y, p),
                f1_score(y, p, labels=present, average="macro", zero_division=0),
                geometric_mean_score(y, p, labels=present, average="multiclass"),
                ece(probs[idx], y),
            ])
    return np.percentile(np.array(values), [2.5, 97.5], axis=0)


def best_time(fn, repeats: int) -> tuple[float, float]:
    """Best wall-clock and best CPU seconds (the CPU figure is steadier on a busy machine)."""
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return min(wall), min(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--k", type=int, nargs="+", default=[10, 200])
    parser.add_argument("--b", type=int, default=1000, help="resamples of bootstrap_intervals")
    parser.add_argument("--naive-b", type=int, default=50, help="replicates actually run by the naive loop")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"n = {args.n}, B = {args.b}; five metrics; best of {args.repeats} runs, naive loop scaled from "
          f"{args.naive_b} replicates")
    print(f"{'K':>5} {'ours s':>8} {'(cpu s)':>8} {'naive s':>9} {'(cpu s)':>8} {'ratio':>7}")
    scale = args.b / args.naive_b
    for k in args.k:
        logits, labels = synthetic_run(args.n, k)
        bootstrap_intervals(logits, labels, k, n_resamples=20)  # warm-up (imports, caches)
        ours, ours_cpu = best_time(lambda: bootstrap_intervals(logits, labels, k, n_resamples=args.b), args.repeats)
        naive, naive_cpu = best_time(lambda: naive_intervals(logits, labels, args.naive_b), 1)
        naive, naive_cpu = naive * scale, naive_cpu * scale
        print(f"{k:>5} {ours:>8.3f} {ours_cpu:>8.3f} {naive:>9.1f} {naive_cpu:>8.1f} {naive / ours:>6.0f}x")


if __name__ == "__main__":
    main()

"""Time of the triage numbers a page recomputes when a person moves a control, against naive
versions measured in the same run.

Synthetic long-tailed test set of n cases over K classes. A prior move is
`metrics_at_prior` + `prior_shift_curve`; its naive version resamples the test set to each
prior (as large as the test set) and scores it with sklearn and the project's `ece`. A
threshold move is `operating_point`; naive: a Python loop over cases. `least_cost_threshold`
against a loop over every distinct score. EM with its 200-replicate bootstrap against one EM
per replicate on an index-resampled batch (run on fewer replicates, scaled). Prints seconds
and ratios; asserts nothing.

    .venv/bin/python bench/triage_speed.py [--n 10000] [--k 10 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from core.analysis import (
    ece,
    estimate_prior_em,
    estimate_prior_interval,
    least_cost_threshold,
    metrics_at_prior,
    operating_point,
    prior_shift_curve,
    shifted_priors,
    softmax,
)


def synthetic(n: int, k: int, seed: int = 0):
    """Training prior falling 100x head to tail; test cases drawn from the reversed prior;
    calibrated posteriors (1-D Gaussians 3 apart) so EM has something true to find."""
    rng = np.random.default_rng(seed)
    train = 100.0 ** (-np.arange(k) / max(k - 1, 1))
    train /= train.sum()
    labels = rng.choice(k, size=n, p=train[::-1])
    means = 3.0 * np.arange(k)
    x = rng.normal(means[labels], 1.0)
    logits = -0.5 * (x[:, None] - means) ** 2 + np.log(train)
    return logits, labels, train


def best_time(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def naive_prior_move(logits, labels, counts, prior, seed=0):
    rng = np.random.default_rng(seed)
    pred, probs = logits.argmax(axis=1), softmax(logits)
    groups = [np.flatnonzero(labels == c) for c in range(logits.shape[1])]
    present = np.flatnonzero(counts > 0)
    for _, p in [(None, prior), *shifted_priors(counts)]:
        size = np.round(p * labels.size).astype(int)
        idx = np.concatenate([rng.choice(g, size=s) for g, s in zip(groups, size) if g.size and s])
        y, z = labels[idx], pred[idx]
        accuracy_score(y, z), balanced_accuracy_score(y, z)
        f1_score(y, z, labels=present, average="macro", zero_division=0)
        ece(probs[idx], y)


def naive_operating_point(scores, positive, threshold):
    tp = fp = fn = tn = 0
    for s, pos in zip(scores.tolist(), positive.tolist()):
        called = s >= threshold
        tp += called and pos
        fp += called and not pos
        fn += (not called) and pos
        tn += (not called) and not pos
    return tp, fp, fn, tn


def naive_least_cost(scores, positive, prevalence, cost_miss):
    best = (np.inf, None)
    for t in np.unique(scores):
        called = scores >= t
        sens, spec = called[positive].mean(), (~called[~positive]).mean()
        best = min(best, (prevalence * (1 - sens) * cost_miss + (1 - prevalence) * (1 - spec), t))
    return best


def naive_bootstrap(probs, train, n_boot, seed=0):
    rng = np.random.default_rng(seed)
    return [estimate_prior_em(probs[rng.integers(0, len(probs), len(probs))], train, tol=1e-6)["prior"]
            for _ in range(n_boot)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--k", type=int, nargs="+", default=[10, 2])
    parser.add_argument("--naive-boot", type=int, default=20, help="replicates the naive bootstrap actually runs")
    args = parser.parse_args()
    print(f"n = {args.n}; best of 3 (naive: 1); naive bootstrap scaled from {args.naive_boot} replicates")
    print(f"{'K':>3} {'step':<38} {'ours s':>8} {'naive s':>9} {'ratio':>7}")
    for k in args.k:
        logits, labels, train = synthetic(args.n, k)
        counts = np.round(train * 5000).astype(int)
        prior = np.full(k, 1.0 / k)
        probs = softmax(logits)
        rare = k - 1 if k > 2 else 1
        scores, positive = probs[:, rare], labels == rare
        rows = [
            ("prior move (metrics + shift curve)",
             lambda: (metrics_at_prior(logits, labels, prior), prior_shift_curve(logits, labels, counts)),
             lambda: naive_prior_move(logits, labels, counts, prior), 1),
            ("prior move, adapted",
             lambda: (metrics_at_prior(logits, labels, prior, train_prior=train, adapt=True),
                      prior_shift_curve(logits, labels, counts, train_prior=train, adapt=True)),
             None, 1),
            ("threshold move (operating_point)",
             lambda: operating_point(scores, positive, 0.5, prevalence=0.03),
             lambda: naive_operating_point(scores, positive, 0.5), 1),
            ("least_cost_threshold",
             lambda: least_cost_threshold(scores, positive, prevalence=0.03, cost_miss=20),
             lambda: naive_least_cost(scores, positive, 0.03, 20), 1),
            ("EM + 200-replicate bootstrap",
             lambda: estimate_prior_interval(probs, train, n_boot=200),
             lambda: naive_bootstrap(probs, train, args.naive_boot), 200 / args.naive_boot),
        ]
        for name, ours, naive, scale in rows:
            t = best_time(ours)
            if naive is None:
                print(f"{k:>3} {name:<38} {t:>8.4f} {'':>9} {'':>7}")
                continue
            tn = best_time(naive, repeats=1) * scale
            print(f"{k:>3} {name:<38} {t:>8.4f} {tn:>9.3f} {tn / t:>6.0f}x")
        em = estimate_prior_interval(probs, train, n_boot=200)
        print(f"    EM: {em['iterations']} iterations; prior {np.round(em['prior'], 3)}; "
              f"true test mix {np.round(np.bincount(labels, minlength=k) / labels.size, 3)}")


if __name__ == "__main__":
    main()

"""Do the words always agree with the interval and the p-value printed beside them?

Draws random paired cases of every kind a person can compare (seeds: 2-30 pairs, with ties,
zero spread and identical runs; folds: 2-10 folds x 1-3 repeats; two single runs on 20-300
test cases; families of 2-8 comparisons adjusted by Holm or Benjamini-Hochberg), reads each
verdict, and counts every case where "beyond noise" and an interval holding 0 (or a p above
0.05) meet (`core.analysis.consistency_problem`). A share of the cases also goes through
`tailscope compare --json` on a store of made-up experiments, so the command line is held
to the same rule. Prints the counts; the test suite runs a smaller draw of the same cases.

    python bench/verdict_agreement.py [--cases 10000] [--cli 300] [--seed 0]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from core.analysis import adjust_family, compare_experiments, compare_single_runs, consistency_problem

METRICS = ("balanced_accuracy", "accuracy", "ece", "mcc")


def _values(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Paired values in [0, 1]: a random effect, noise, some ties, some degenerate cases."""
    kind = rng.choice(["normal", "ties", "zero spread", "identical"], p=[0.7, 0.2, 0.05, 0.05])
    b = np.clip(rng.uniform(0.3, 0.8) + rng.normal(0, 0.05, n), 0, 1)
    if kind == "identical":
        return b.copy(), b
    if kind == "zero spread":
        return np.clip(b + rng.uniform(-0.2, 0.2), 0, 1), b
    a = np.clip(b + rng.normal(rng.choice([0.0, 0.02, 0.1]), rng.uniform(0.005, 0.08), n), 0, 1)
    if kind == "ties":
        a, b = np.round(a, 2), np.round(b, 2)
    return a, b


def seed_case(rng: np.random.Generator):
    a, b = _values(rng, int(rng.integers(2, 31)))
    return compare_experiments(a, b, metric=str(rng.choice(METRICS)), design="seeds")


def fold_case(rng: np.random.Generator):
    k, r = int(rng.integers(2, 11)), int(rng.integers(1, 4))
    a, b = _values(rng, k * r)
    n_test = int(rng.integers(20, 400))
    return compare_experiments(a, b, metric=str(rng.choice(METRICS)), design="folds", folds=k, repeats=r,
                               n_test=n_test, n_train=n_test * (k - 1))


def run_case(rng: np.random.Generator, n_resamples: int = 500):
    n, k = int(rng.integers(20, 301)), int(rng.integers(2, 6))
    labels = rng.integers(0, k, n)
    labels[:k] = np.arange(k)  # every class present
    skill_b = rng.uniform(0, 2)
    logits_b = rng.normal(size=(n, k))
    logits_b[np.arange(n), labels] += skill_b
    logits_a = logits_b + rng.normal(0, rng.choice([0.0, 0.3, 1.0]), size=(n, k))
    logits_a[np.arange(n), labels] += rng.choice([0.0, 0.5])
    metric = str(rng.choice(["balanced_accuracy", "accuracy", "f1_macro", "gmean", "worst_class_recall", "ece"]))
    return compare_single_runs(logits_a, logits_b, labels, k, metric, n_resamples=n_resamples,
                               seed=int(rng.integers(0, 1000)))


def family_case(rng: np.random.Generator):
    members = [(seed_case if rng.random() < 0.6 else fold_case)(rng) for _ in range(int(rng.integers(2, 9)))]
    return adjust_family(members, str(rng.choice(["holm", "fdr_bh"])))


def check_functions(cases: int, seed: int = 0, run_share: float = 0.05, family_share: float = 0.1) -> dict:
    """Counts of cases, of each status, and of disagreements (with the first few examples)."""
    rng = np.random.default_rng(seed)
    counts: Counter = Counter()
    problems: list[str] = []
    done = 0
    while done < cases:
        draw = rng.random()
        if draw < run_share:
            found = [run_case(rng)]
        elif draw < run_share + family_share:
            found = family_case(rng)
        else:
            found = [(seed_case if rng.random() < 0.5 else fold_case)(rng)]
        for comparison in found:
            counts[comparison.status] += 1
            problem = consistency_problem(comparison)
            if problem:
                problems.append(problem)
        done += len(found)
    return {"cases": done, "statuses": dict(counts), "disagreements": len(problems), "examples": problems[:5]}


def _store_pair(store, rng: np.random.Generator, metric: str) -> tuple[str, str]:
    """Two experiments of made-up finished runs (same data, paired seeds or folds)."""
    from core.config import RunConfig

    folds = int(rng.choice([1, 1, 3, 5]))
    n = int(rng.integers(2, 13)) if folds == 1 else int(rng.integers(1, 3))
    evaluation = {"seeds": list(range(n))} if folds == 1 else {"folds": folds, "seeds": list(range(n))}
    a, b = _values(rng, len(RunConfig.model_validate({"evaluation": evaluation}).experiment_runs()))
    ids = []
    for name, values in (("a", a), ("b", b)):
        config = RunConfig.model_validate({"name": name, "evaluation": evaluation,
                                           "loss": {"name": "ce" if name == "b" else "focal"}})
        exp_id = store.create_experiment(config)
        for run, value in zip(store.get_experiment(exp_id).runs, values, strict=True):
            store.write_metrics(run.id, {metric: float(value), "calibration": {"ece": float(value)},
                                         "dataset": {"n_test": 120, "class_names": ["0", "1"], "groups": []}})
            store.finish(run.id, {})
        ids.append(exp_id)
    return ids[0], ids[1]


def check_cli(cases: int, seed: int = 0) -> dict:
    """The same rule through `tailscope compare A B --metric M --json`."""
    import os

    from core.analysis import Comparison
    from core.cli import main
    from core.store import RunStore

    rng = np.random.default_rng(seed)
    problems, statuses = [], Counter()
    with tempfile.TemporaryDirectory() as home:
        os.environ["TAILSCOPE_HOME"] = home
        store = RunStore(Path(home))
        for _ in range(cases):
            metric = str(rng.choice(["balanced_accuracy", "accuracy", "ece", "mcc"]))
            a, b = _store_pair(store, rng, metric)
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                code = main(["compare", a, b, "--metric", metric, "--json"])
            if code != 0:
                problems.append(f"exit {code} for {a} {b}")
                continue
            d = json.loads(out.getvalue())
            ci = tuple(float("nan") if v is None else v for v in d["ci"])
            p = float("nan") if d["p_value"] is None else d["p_value"]
            c = Comparison(d["metric"], d["difference"], ci, p, d["test"], d["verdict"], d["status"], d["n"],
                           higher_is_better=metric != "ece")
            statuses[d["status"]] += 1
            problem = consistency_problem(c)
            if problem:
                problems.append(problem)
    return {"cases": cases, "statuses": dict(statuses), "disagreements": len(problems), "examples": problems[:5]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--cli", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    functions = check_functions(args.cases, args.seed)
    print(f"functions: {functions['cases']} comparisons in {time.perf_counter() - start:.0f} s, "
          f"{functions['disagreements']} disagreements; statuses {functions['statuses']}")
    for example in functions["examples"]:
        print(f"  {example}")
    start = time.perf_counter()
    cli = check_cli(args.cli, args.seed)
    print(f"tailscope compare --json: {cli['cases']} comparisons in {time.perf_counter() - start:.0f} s, "
          f"{cli['disagreements']} disagreements; statuses {cli['statuses']}")
    for example in cli["examples"]:
        print(f"  {example}")
    sys.exit(1 if functions["disagreements"] or cli["disagreements"] else 0)


if __name__ == "__main__":
    main()

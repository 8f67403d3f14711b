"""Does a deep imbalance fix beat the classic answer on tables? 5-fold cross-validation.

Every loss, sampler and resampler with its defaults (an MLP, the workbench's default
training), and the three table baselines (class-weighted logistic regression, balanced
random forest, class-weighted gradient boosting), on the same stratified folds of: the
built-in wine and breast-cancer tables, and two generated tables loaded through the
upload path (a binary table with a 3 % class and a 5-class table with a 43 : 1 ratio),
all with profile `none` (the data's own imbalance). Prints balanced accuracy, mean and
95 % t-interval over the folds, and per table the best method minus the best baseline
with the corrected resampled t-test (Nadeau & Bengio), so a win within noise reads as one.
Usage: python bench/tables_cv.py [--folds 5] [--tables wine,binary3] [--only smote] [--markdown]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification

from core.analysis import compare_experiments, summary_metrics, t_interval
from core.config import RunConfig
from core.methods import LOSSES, RESAMPLERS, SAMPLERS
from core.models import MODELS, is_baseline
from core.train import run_problems, train_run

BASELINES = [n for n in MODELS.names() if is_baseline(n)]


def methods() -> dict[str, dict]:
    """name -> the config sections that differ from plain CE on an MLP."""
    out = {f"loss {n}": {"loss": {"name": n}} for n in LOSSES.names()}
    out.update({f"sampler {n}": {"sampler": {"name": n}} for n in SAMPLERS.names() if n != "instance"})
    out.update({f"resampler {n}": {"resampler": {"name": n}} for n in RESAMPLERS.names()})
    out.update({f"baseline {n}": {"model": {"name": n}} for n in BASELINES})
    for name in ("loss anyloss", "loss zloss"):  # their descriptions: train them with adamw
        out[name]["train"] = {"optimizer": "adamw", "lr": 1e-3}
    return out


def generated_tables(folder: Path) -> dict[str, str]:
    """Two tables written as CSV and stored as uploads, as a user would bring them."""
    from core.data import save_upload

    x, y = make_classification(n_samples=2000, n_features=12, n_informative=6, weights=[0.97, 0.03], flip_y=0.01,
                               class_sep=0.9, random_state=0)
    binary = pd.DataFrame(x, columns=[f"x{i}" for i in range(12)]).assign(label=np.where(y == 1, "rare", "common"))
    x, y = make_classification(n_samples=1500, n_features=16, n_informative=8, n_classes=5, n_clusters_per_class=1,
                               weights=[0.52, 0.25, 0.13, 0.088, 0.012], flip_y=0.01, random_state=1)
    multi = pd.DataFrame(x, columns=[f"f{i}" for i in range(16)]).assign(label=[f"class {c}" for c in y])
    sources = {}
    for name, frame in (("binary3", binary), ("multi5", multi)):
        path = folder / f"{name}.csv"
        frame.to_csv(path, index=False)
        sources[name] = save_upload(path.read_bytes(), path.name)
    return sources


def run_method(source: str, method: dict, folds: int) -> tuple[list[float], dict] | str:
    raw = {"name": "bench", "data": {"source": source, "label_column": "label" if source.startswith("upload:") else None},
           "model": {"name": "mlp"}, "evaluation": {"folds": folds}}
    for section, value in method.items():
        raw[section] = {**raw.get(section, {}), **value} if section == "train" else value
    raw["data"] = {k: v for k, v in raw["data"].items() if v is not None}
    config = RunConfig.model_validate(raw)
    problems = run_problems(config)
    if problems:
        return f"refused: {problems[0]}"
    scores, sizes = [], {"n_train": [], "n_test": []}
    for run in config.experiment_runs():
        try:
            result = train_run(run)
        except ValueError as exc:  # e.g. ADASYN finding no majority neighbours on one fold
            return f"failed on fold {run.data.fold.index + 1}: {exc}"
        art = result.artifacts
        scores.append(summary_metrics(art.logits, art.labels, art.num_classes)["balanced_accuracy"])
        sizes["n_train"].append(len(result.splits.y_train))
        sizes["n_test"].append(len(result.splits.y_test))
    return scores, {k: int(np.mean(v)) for k, v in sizes.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--tables", default="wine,breast_cancer,binary3,multi5")
    parser.add_argument("--only", help="run only methods whose name contains this")
    parser.add_argument("--markdown", action="store_true", help="print the summary as a Markdown table")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="tables-cv-"))
    os.environ["TAILSCOPE_HOME"] = str(home)
    sources = {"wine": "wine", "breast_cancer": "breast_cancer", **generated_tables(home)}
    summary = []
    for table in args.tables.split(","):
        print(f"\n== {table} ({args.folds}-fold, balanced accuracy: mean [95% t-interval]) ==", flush=True)
        results: dict[str, tuple[list[float], dict]] = {}
        for name, method in methods().items():
            if args.only and args.only not in name and not name.startswith("baseline"):
                continue
            start = time.perf_counter()
            out = run_method(sources[table], method, args.folds)
            if isinstance(out, str):
                print(f"  {name:<34} {out[:110]}", flush=True)
                continue
            results[name] = out
            s = t_interval(out[0])
            print(f"  {name:<34} {s['mean']:.3f} [{s['ci'][0]:.3f}, {s['ci'][1]:.3f}]  "
                  f"{(time.perf_counter() - start) / args.folds:5.1f} s/fold", flush=True)
        means = {n: np.mean(r[0]) for n, r in results.items()}
        best_method = max((n for n in means if not n.startswith("baseline")), key=means.get)
        best_baseline = max((n for n in means if n.startswith("baseline")), key=means.get)
        n_test = results[best_method][1]["n_test"]  # the fold design: each test fold against the other k - 1
        comparison = compare_experiments(results[best_method][0], results[best_baseline][0],
                                         metric="balanced_accuracy", design="folds", folds=args.folds, repeats=1,
                                         n_test=n_test, n_train=n_test * (args.folds - 1))
        print(f"  best method {best_method} minus best baseline {best_baseline} (both picked as the best of their "
              f"family after seeing the results, so the difference flatters the winner): {comparison.difference:+.3f} "
              f"[{comparison.ci[0]:+.3f}, {comparison.ci[1]:+.3f}], {comparison.verdict}")
        summary.append((table, best_method, means[best_method], best_baseline, means[best_baseline], comparison))
    if args.markdown:
        print("\nBest method and best baseline are each chosen after the fact (the best of their family on these "
              "folds), so the differences below are optimistic.")
        print("\n| table | best method | bal. acc | best baseline | bal. acc | difference [95% CI] | verdict |")
        print("|---|---|---|---|---|---|---|")
        for table, method, m, baseline, b, c in summary:
            print(f"| {table} | {method} | {m:.3f} | {baseline.removeprefix('baseline ')} | {b:.3f} | "
                  f"{c.difference:+.3f} [{c.ci[0]:+.3f}, {c.ci[1]:+.3f}] | {c.verdict} |")


if __name__ == "__main__":
    main()

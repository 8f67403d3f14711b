"""Do the label-noise fixes help on long-tailed data? Digits (exp, ratio 50) with 0, 20 and
40 % symmetric label noise, 3 seeds.

Methods on the same splits, seeds and network (an MLP, few epochs): plain cross-entropy,
cRT (retrain the classifier class-balanced on frozen features), RCAL (robust class
Gaussians, tail classes calibrated from head classes, synthetic features) and retraining
without suspected label issues (confident learning, `label_issues: drop`). Prints balanced
accuracy and tail-group recall (mean and 95 % t-interval over seeds), the paired difference
to CE on the same seeds with its t-interval, and how well the label-issue finder caught the
injected noise (precision, recall). A second table: 10 % of the labels (data.unlabeled.
fraction 0.9) on a milder tail (ratio --semi-ratio, so every class keeps a label), CE on the
labelled rows alone vs pseudo-labels (`semi`) and self-supervised pre-training (`pretrain`),
with CE on every label as the ceiling. With 3 seeds no paired test can reach p < 0.05: read
the intervals. No timing asserts; the default takes about 10 min on 2 idle cores.
Usage: python bench/labels_effect.py [--epochs 20] [--seeds 0 1 2] [--noise 0 0.2 0.4] [--no-semi] [--only rcal]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from core.analysis import compare_experiments, per_class_metrics, summary_metrics, t_interval
from core.config import RunConfig
from core.text import interval_text
from core.train import prepare_run_data, train_run

NOISE_METHODS: dict[str, dict] = {
    "ce": {},
    "crt": {"stage2": {"name": "crt"}},
    "rcal": {"stage2": {"name": "rcal"}},
    "ce without issues": {"label_issues": {"name": "confident_learning", "action": "drop"}},
}
SEMI_METHODS: dict[str, dict] = {
    "ce, every label": {"data": {"unlabeled": None}},
    "ce, 10 % labels": {},
    "pseudo-labels": {"semi": {"name": "pseudo_label"}},
    "contrastive pre-training": {"pretrain": {"name": "contrastive"}},
    "masked pre-training": {"pretrain": {"name": "masked"}},
}


def make_config(method: dict, *, seed: int, epochs: int, ratio: float, noise: float = 0.0,
                unlabeled: float | None = None, min_steps: int = 0) -> RunConfig:
    data = {"source": "digits", "imbalance": {"profile": "exp", "ratio": ratio}, "seed": seed}
    if noise:
        data["label_noise"] = {"name": "symmetric", "rate": noise, "seed": seed}
    if unlabeled:
        data["unlabeled"] = {"fraction": unlabeled}
    raw = {"data": data, "model": {"name": "mlp"},
           "train": {"epochs": epochs, "batch_size": 32, "lr": 0.05, "seed": seed, "nc_every": 0, "min_steps": min_steps,
                     "train_subset": 64}}
    for section, value in method.items():
        raw[section] = {**raw[section], **value} if section == "data" else value
    raw["data"] = {k: v for k, v in raw["data"].items() if v is not None}
    return RunConfig.model_validate(raw)


def evaluate(config: RunConfig) -> dict[str, float]:
    splits = prepare_run_data(config)
    result = train_run(config, splits=splits)
    art = result.artifacts
    table = per_class_metrics(art.logits, art.labels, art.class_counts)
    out = {"balanced_accuracy": summary_metrics(art.logits, art.labels, art.num_classes)["balanced_accuracy"],
           "tail_recall": float(table[table["group"] == "tail"]["recall"].mean())}
    issues = result.info.get("label_issues") or {}
    for key in ("precision", "recall", "suspected"):
        if issues.get(key) is not None:
            out[f"issues_{key}"] = float(issues[key])
    semi = result.info.get("semi") or {}
    if semi:  # how many unlabelled rows got a pseudo-label, and how many of those were right
        out["pseudo_n"] = float(semi["n_pseudo"])
        out["pseudo_precision"] = float(semi["precision"]) if semi.get("precision") is not None else np.nan
    return out


def cell(values) -> str:
    s = t_interval(values, bounds=(0.0, 1.0))
    return interval_text(s["mean"], s["ci"])


def paired(a, b) -> str:
    """The seeds' sign-flip test and its own interval; with fewer than 6 seeds it says so."""
    c = compare_experiments(a, b, metric="m", design="seeds", higher_is_better=True, bounds=(0.0, 1.0))
    if c.status in ("too few", "cannot tell"):
        return f"{c.difference:+.3f} ({c.status})"
    return f"{interval_text(c.difference, c.ci, signed=True)} {c.status}"


def run_table(title: str, methods: dict[str, dict], reference: str, configs, seeds, only) -> None:
    print(f"\n{title}")
    print(f"{'method':<26}{'balanced accuracy':>24}{'vs ' + reference:>26}{'tail recall':>24}"
          f"{'vs ' + reference:>26}{'issues found (prec. / recall) or pseudo-labels':>48}{'s/run':>7}")
    rows: dict[str, dict[str, list[float]]] = {}
    for name, method in methods.items():
        if only and only not in name and name != reference:
            continue
        start = time.perf_counter()
        per_seed = [evaluate(configs(method, s)) for s in seeds]
        seconds = (time.perf_counter() - start) / len(seeds)
        rows[name] = {k: [r.get(k, np.nan) for r in per_seed] for k in per_seed[0]}
        r, ref = rows[name], rows.get(reference)
        vs_bal = paired(r["balanced_accuracy"], ref["balanced_accuracy"]) if ref and name != reference else ""
        vs_tail = paired(r["tail_recall"], ref["tail_recall"]) if ref and name != reference else ""
        found = (f"{np.nanmean(r['issues_precision']):.2f} / {np.nanmean(r['issues_recall']):.2f}"
                 if "issues_recall" in r else "")
        if "pseudo_n" in r:
            right = np.nanmean(r["pseudo_precision"]) if not np.isnan(r["pseudo_precision"]).all() else np.nan
            found = f"{np.mean(r['pseudo_n']):.0f} pseudo-labels, {right:.0%} right"
        print(f"{name:<26}{cell(r['balanced_accuracy']):>24}{vs_bal:>26}{cell(r['tail_recall']):>24}{vs_tail:>26}"
              f"{found:>48}{seconds:>7.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--ratio", type=float, default=50)
    parser.add_argument("--semi-ratio", type=float, default=10)
    parser.add_argument("--semi-steps", type=int, default=300,
                        help="optimiser steps of the 10 %-labels runs (about 40 rows: without a step budget the first "
                             "model takes a few dozen steps, is never confident, and no row gets a pseudo-label)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--noise", type=float, nargs="*", default=[0.0, 0.2, 0.4], help="noise rates (none: skip the noise tables)")
    parser.add_argument("--no-semi", action="store_true", help="skip the 10 %-labels table")
    parser.add_argument("--only", help="run only methods whose name contains this (and the reference)")
    args = parser.parse_args()
    counts = np.bincount(prepare_run_data(make_config({}, seed=args.seeds[0], epochs=args.epochs,
                                                      ratio=args.ratio)).y_train)
    print(f"digits, exp ratio {args.ratio:g}: train counts {counts.tolist()}; MLP, {args.epochs} epochs, "
          f"seeds {args.seeds}; mean [95 % t-interval]; differences paired by seed")
    for noise in args.noise:
        run_table(f"{noise:.0%} symmetric label noise", NOISE_METHODS, "ce",
                  lambda m, s, noise=noise: make_config(m, seed=s, epochs=args.epochs, ratio=args.ratio, noise=noise),
                  args.seeds, args.only)
    if not args.no_semi:
        run_table(f"10 % of the labels (ratio {args.semi_ratio:g}, no noise, {args.semi_steps} steps)", SEMI_METHODS, "ce, 10 % labels",
                  lambda m, s: make_config(m, seed=s, epochs=args.epochs, ratio=args.semi_ratio, unlabeled=0.9,
                                           min_steps=args.semi_steps),
                  args.seeds, args.only)


if __name__ == "__main__":
    main()

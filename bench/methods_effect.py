"""Do the imbalance methods work? Digits made long-tailed (exp, ratio 100), 3 seeds.

Same model (small_cnn), epochs and optimiser for every method (AnyLoss and Z-loss with
AdamW, as their descriptions say); prints balanced accuracy, tail-group recall and macro
F1 (mean ± sample sd over seeds), the paired difference to `ce` on the same seeds and
splits with its 95 % t-interval, and the geometry signature (Spearman of head-weight norm
and class-mean norm vs log count). With 3 seeds no paired test can reach p < 0.05 (the
smallest exact p is 0.25), so read the interval: one that excludes 0 is a clear effect.
With --geometry, a second table: end-of-training neural-collapse metrics (test features)
and minority-collapse cosines per method.
With --tables, the table benches instead: ordered stages (the rare-last-stage lesson's data,
2,000 rows, 2 % in the last stage) with separate regressions, proportional odds and PRESTO,
scored by the last stage's Brier score and log loss against separate regressions; and the
breast-cancer table (malignant made rare, ratio 20, MLP) with no resampling, SMOTE and the
tabular GAN, scored by balanced accuracy against plain CE; each over 3 data seeds.
Usage: python bench/methods_effect.py [--epochs 30] [--seeds 0 1 2] [--only ldam sam] [--geometry] [--tables] [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from dataclasses import replace

import numpy as np

from core.analysis import (
    adjusted_head, adjusted_logits, geometry_summary, per_class_metrics, softmax, summary_metrics, t_interval,
)
from core.config import RunConfig
from core.data import class_groups
from core.train import prepare_run_data, train_run

# name -> config sections that differ from plain CE
METHODS: dict[str, dict] = {
    "ce": {},
    "weighted_ce (inverse)": {"loss": {"name": "weighted_ce", "weights": "inverse"}},
    "weighted_ce (effective number)": {"loss": {"name": "weighted_ce", "weights": "effective_number"}},
    "focal": {"loss": {"name": "focal"}},
    "cb_focal": {"loss": {"name": "cb_focal"}},
    "ldam": {"loss": {"name": "ldam"}},
    "ldam + drw": {"loss": {"name": "ldam", "drw_epoch": "80%"}},
    "balanced_softmax": {"loss": {"name": "balanced_softmax"}},
    "logit_adjusted": {"loss": {"name": "logit_adjusted"}},
    "label_smoothing": {"loss": {"name": "label_smoothing"}},
    "dice": {"loss": {"name": "dice"}},
    "anyloss (balanced accuracy), adamw": {"loss": {"name": "anyloss", "metric": "balanced_accuracy"},
                                           "train": {"optimizer": "adamw", "lr": 1e-3}},
    "zloss, adamw": {"loss": {"name": "zloss"}, "train": {"optimizer": "adamw", "lr": 1e-3}},
    "ce + drw": {"loss": {"name": "ce", "drw_epoch": "80%"}},
    "class_balanced sampler": {"sampler": {"name": "class_balanced"}},
    "sqrt sampler": {"sampler": {"name": "sqrt"}},
    "progressive sampler": {"sampler": {"name": "progressive"}},
    "temperature + cooldown": {"sampler": {"name": "temperature"}},
    "oversample": {"sampler": {"name": "oversample"}},
    "undersample": {"sampler": {"name": "undersample"}},
    "two_phase": {"sampler": {"name": "two_phase"}},
    "ce + post-hoc logit adjustment": {"posthoc": {"logit_tau": 1.0}},
    "ce + post-hoc tau-norm (tau=1)": {"posthoc": {"tau_norm": 1.0}},
    "crt": {"stage2": {"name": "crt"}},
    "crt + random_over (feature space)": {"stage2": {"name": "crt", "resampler": "random_over"}},
    "lws": {"stage2": {"name": "lws"}},
    "tau_norm": {"stage2": {"name": "tau_norm"}},
    "weight balancing (wd 5e-3, MaxNorm stage 2)": {"train": {"weight_decay": 5e-3},
                                                    "stage2": {"name": "weight_balancing"}},
    "sam": {"sharpness": {"name": "sam"}},
    "imbsam": {"sharpness": {"name": "imbsam"}},
    "sbcl pre-training": {"pretrain": {"name": "sbcl"}},
}

# the table benches: (data, model of the reference, the methods as config patches, the measure)
ORDINAL_DATA = {"source": "ordinal_stages", "params": {"samples": 2000, "last_share": 0.02, "noise_features": 20}}
ORDINAL_METHODS = {"separate_logits": {}, "proportional_odds": {"model": {"name": "proportional_odds"}},
                   "presto": {"model": {"name": "presto"}}}
GAN_DATA = {"source": "breast_cancer", "imbalance": {"profile": "exp", "ratio": 20, "class_order": [1, 0]}}
GAN_METHODS = {"ce": {}, "smote": {"resampler": {"name": "smote"}}, "tabular_gan": {"resampler": {"name": "tabular_gan"}}}


GEOMETRY_KEYS = ("nc1", "nc2_equinorm_means", "nc2_equinorm_weights", "nc2_equiangular_means",
                 "nc2_equiangular_weights", "nc3", "nc4", "tail_weight_cosine", "head_weight_cosine")


def make_config(method: dict, seed: int, epochs: int, ratio: float) -> RunConfig:
    raw = {
        "data": {"source": "digits", "imbalance": {"profile": "exp", "ratio": ratio}, "seed": seed},
        "model": {"name": "small_cnn"}, "loss": {"name": "ce"}, "sampler": {"name": "instance"},
        "train": {"epochs": epochs, "batch_size": 32, "lr": 0.05, "seed": seed, "nc_every": 0},
    }
    for section, value in method.items():
        if section == "posthoc":  # applied to the trained run's stored arrays, see evaluate()
            continue
        value = dict(value)
        if value.get("drw_epoch") == "80%":
            value["drw_epoch"] = int(0.8 * epochs)
        raw[section] = {**raw[section], **value} if section == "train" else value
    return RunConfig.model_validate(raw)


def evaluate(config: RunConfig, splits, posthoc: dict | None = None) -> dict[str, float]:
    result = train_run(config, splits=splits)
    art = result.artifacts
    if posthoc:  # the explorer's adjustment, head included, so geometry sees the new head too
        weight, bias = adjusted_head(art, **posthoc)
        art = replace(art.with_logits(adjusted_logits(art, **posthoc)), head_weight=weight, head_bias=bias)
    groups = class_groups(art.class_counts)
    table = per_class_metrics(art.logits, art.labels, art.class_counts)
    tail = table[table["group"] == "tail"]["recall"]
    metrics = summary_metrics(art.logits, art.labels, art.num_classes)
    geometry = geometry_summary(art, groups)
    return {"balanced_accuracy": metrics["balanced_accuracy"], "tail_recall": float(tail.mean()),
            "f1_macro": metrics["f1_macro"], "accuracy": metrics["accuracy"],
            **{k: geometry[k] for k in ("weight_norm_count_spearman", "mean_norm_count_spearman", *GEOMETRY_KEYS)}}


def paired_t(a: list[float], b: list[float], higher_is_better: bool = True) -> tuple[float, float, float, str]:
    """Mean of a - b over the seeds with its 95 % t-interval, and in words: better or worse when
    the interval excludes 0, within noise otherwise (3 seeds: no exact paired test reaches p < 0.05)."""
    result = t_interval(np.asarray(a) - np.asarray(b))
    low, high = result["ci"]
    if not np.isfinite(low) or low <= 0 <= high:
        words = "within noise"
    else:
        words = "better" if (low > 0) == higher_is_better else "worse"
    return result["mean"], low, high, words


def table_run(data: dict, method: dict, seed: int, reference_model: dict) -> dict[str, float]:
    """One table run: the last stage's scores for an ordinal label, balanced accuracy else."""
    raw = {"data": {**data, "seed": seed}, "model": reference_model,
           "train": {"epochs": 30, "batch_size": 32, "seed": seed, "nc_every": 0}, **method}
    art = train_run(RunConfig.model_validate(raw)).artifacts
    probs = softmax(art.logits)
    last = probs[:, -1].clip(1e-12, 1 - 1e-12)
    hit = art.labels == art.num_classes - 1
    return {"balanced_accuracy": summary_metrics(art.logits, art.labels, art.num_classes)["balanced_accuracy"],
            "last_stage_brier": float(np.mean((last - hit) ** 2)),
            "last_stage_log_loss": float(-np.mean(np.where(hit, np.log(last), np.log(1 - last))))}


def table_benches(seeds: list[int]) -> dict[str, dict[str, dict[str, list[float]]]]:
    """Both table benches, printed as they finish; the paired difference to each bench's
    reference (separate regressions, plain CE) with its 95 % t-interval over the seeds."""
    out: dict[str, dict[str, dict[str, list[float]]]] = {}
    benches = (("ordered stages", ORDINAL_DATA, ORDINAL_METHODS, {"name": "separate_logits"},
                ("last_stage_brier", "last_stage_log_loss"), False),
               ("breast cancer, malignant rare", GAN_DATA, GAN_METHODS, {"name": "mlp", "hidden": 32},
                ("balanced_accuracy",), True))
    for title, data, methods, model, measures, higher in benches:
        print(f"\n{title} ({len(seeds)} data seeds): mean ± sd, and minus {next(iter(methods))} [95% CI]")
        rows = out.setdefault(title, {})
        for name, method in methods.items():
            start = time.perf_counter()
            per_seed = [table_run(data, method, s, model) for s in seeds]
            rows[name] = {k: [r[k] for r in per_seed] for k in measures}
            cells = []
            for k in measures:
                cell = f"{k} {np.mean(rows[name][k]):.4f} ± {np.std(rows[name][k], ddof=1):.4f}"
                reference = next(iter(rows.values()))[k]
                if rows[name] is not next(iter(rows.values())):
                    mean, low, high, words = paired_t(rows[name][k], reference, higher)
                    rows[name][f"{k}_vs_reference"] = [mean, low, high]
                    cell += f" {mean:+.4f} [{low:+.4f}, {high:+.4f}] {words}"
                cells.append(cell)
            print(f"  {name:<20}" + "   ".join(cells) + f"   {(time.perf_counter() - start) / len(seeds):.1f} s/run",
                  flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--ratio", type=float, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", nargs="+", help="run only methods whose name holds one of these words (and ce, "
                                                  "which every row is paired with)")
    parser.add_argument("--geometry", action="store_true", help="also print the neural-collapse table")
    parser.add_argument("--tables", action="store_true", help="the table benches (PRESTO, the tabular GAN)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.tables:
        result = table_benches(args.seeds)
        if args.json:
            print(json.dumps(result, indent=1))
        return
    rows: dict[str, dict[str, list[float]]] = {}
    splits = {s: prepare_run_data(make_config({}, s, args.epochs, args.ratio)) for s in args.seeds}
    counts = np.bincount(splits[args.seeds[0]].y_train)
    if not args.json:
        print(f"digits, exp ratio {args.ratio:g}: train counts {counts.tolist()}, groups {class_groups(counts)}")
        print(f"{'method':<36}{'bal. acc':>15}{'vs ce [95% CI]':>24}{'tail recall':>15}{'macro F1':>15}"
              f"{'accuracy':>15}{'rho(w,n)':>10}{'rho(mu,n)':>10}{'s/run':>7}")
    for name, method in METHODS.items():
        if args.only and not any(re.search(rf"\b{re.escape(part)}\b", name) for part in args.only) and name != "ce":
            continue
        start = time.perf_counter()
        per_seed = [evaluate(make_config(method, s, args.epochs, args.ratio), splits[s], method.get("posthoc"))
                    for s in args.seeds]
        seconds = (time.perf_counter() - start) / len(args.seeds)
        rows[name] = {k: [r[k] for r in per_seed] for k in per_seed[0]}
        vs_ce = ""
        if "ce" in rows and name != "ce":  # paired by seed: same split, same initial weights
            mean, low, high, words = paired_t(rows[name]["balanced_accuracy"], rows["ce"]["balanced_accuracy"])
            rows[name]["vs_ce"] = [mean, low, high]
            vs_ce = f"{mean:+.3f} [{low:+.3f}, {high:+.3f}] {words}"
        if not args.json:
            cell = lambda k: f"{np.mean(rows[name][k]):.3f} ± {np.std(rows[name][k], ddof=1):.3f}"  # noqa: E731
            print(f"{name:<36}{cell('balanced_accuracy'):>15}{vs_ce:>24}{cell('tail_recall'):>15}"
                  f"{cell('f1_macro'):>15}{cell('accuracy'):>15}"
                  f"{np.mean(rows[name]['weight_norm_count_spearman']):>10.2f}"
                  f"{np.mean(rows[name]['mean_norm_count_spearman']):>10.2f}{seconds:>7.1f}", flush=True)
    if args.geometry and not args.json:
        short = [k.replace("nc2_", "").replace("equiangular", "eqang").replace("equinorm", "eqnorm")
                 .replace("_weight_cosine", " cos(w)") for k in GEOMETRY_KEYS]
        print("\nend-of-training geometry on test features (mean over seeds; n/a: a group with < 2 classes)")
        print(f"{'method':<34}" + "".join(f"{k:>17}" for k in short))
        for name, row in rows.items():
            cells = [np.asarray(row[k], dtype=float) for k in GEOMETRY_KEYS]
            print(f"{name:<34}" + "".join(f"{c[~np.isnan(c)].mean():>17.3f}" if (~np.isnan(c)).any()
                                          else f"{'n/a':>17}" for c in cells))
    if args.json:
        print(json.dumps({n: {k: {"mean": statistics.fmean(v), "sd": float(np.std(v, ddof=1))} if k != "vs_ce" else
                              dict(zip(("mean", "low", "high"), v, strict=True)) for k, v in r.items()}
                          for n, r in rows.items()}, indent=1))


if __name__ == "__main__":
    main()

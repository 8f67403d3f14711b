"""Do the multi-label long-tail methods help the rare findings? BCE against focal BCE,
class-balanced BCE, ASL, DB loss and repeat-factor sampling on both multi-label built-ins,
and what partial labels cost when unknown entries are masked or read as absent.

Every run: the built-in as shipped (long-tailed, head-to-tail ratio 30; the table 3,000 rows
with 10 findings and an MLP, the pictures 2,000 with 10 digits and the small CNN), split by
the seed (test and validation untouched), the same epochs and optimiser for every method;
scored on the test cases with per-label thresholds tuned on validation. Rare (tail) findings:
fewer than 100 training cases; common (head): more than 400. Printed per method:
rare-finding (tail) mAP and macro F1, mean over seeds with a 95 % t-interval (what each method
scored), and the difference to BCE on the same seeds and splits with the interval and verdict
of the workbench's one rule (`compare_experiments`, the exact sign-flip test over seeds: with
3 seeds its interval spans everything and its verdict is "too few seeds to tell"; 8 seeds or
more let it decide). Differences are never judged by another interval than the rule's own.
With --hidden: 0 / 30 / 60 % of each label's training entries hidden, masked out of the loss
or read as absent, BCE on the table; the absent-minus-masked difference per share.
With --plt: PLT-MLC's three branches (`scheme: plt_balance`) against BCE, against its prior
focal modifier alone (`plt_modifier`, one network) and against its balanced branch alone (the
modifier with class-aware sampling, one network), on the same seeds and splits, each
difference through the same rule; --plt-hidden 0.3 hides that share of training entries.
Usage: python bench/multilabel_effect.py [--epochs 15] [--seeds 0 1 2] [--data table digits] [--hidden]
       [--plt [--plt-hidden 0.3] --no-methods] [--json]
"""

from __future__ import annotations

import argparse
import json
import time


from core.analysis import compare_experiments, multilabel_summary, sigmoid, t_interval, tune_label_thresholds
from core.config import RunConfig
from core.train import train_run

METHODS: dict[str, dict] = {
    "BCE": {},
    "focal BCE": {"loss": {"name": "focal_bce"}},
    "class-balanced BCE": {"loss": {"name": "cb_bce"}},
    "ASL": {"loss": {"name": "asl"}},
    "DB loss": {"loss": {"name": "db"}},
    "BCE + repeat-factor sampling": {"sampler": {"name": "repeat_factor"}},
}
DATA = {
    "table": ({"source": "multilabel_table", "params": {"n_samples": 3000, "n_labels": 10}}, {"name": "mlp"}),
    "digits": ({"source": "multilabel_digits", "params": {"n_samples": 2000}}, {"name": "small_cnn"}),
}
MEASURES = ("map_tail", "f1_macro")


def make_config(data: str, method: dict, seed: int, epochs: int, *, hide: float = 0.0,
                absent: bool = False) -> RunConfig:
    source, model = DATA[data]
    raw = {"data": {**source, "seed": seed, "hide_labels": hide, "unknown_as_absent": absent,
                    "many_shot": 400, "few_shot": 100},
           "model": model, "train": {"epochs": epochs, "batch_size": 64, "lr": 0.05, "seed": seed, "device": "cpu"},
           **method}
    return RunConfig.model_validate(raw)


def score(config: RunConfig) -> dict[str, float]:
    """Tail mAP and macro F1 on the test cases (thresholds tuned on validation)."""
    art = train_run(config).artifacts
    thresholds = tune_label_thresholds(sigmoid(art.val_logits), art.val_label_matrix)
    summary = multilabel_summary(sigmoid(art.logits), art.label_matrix, art.label_counts, threshold=thresholds,
                                 many=config.data.many_shot, few=config.data.few_shot)
    return {m: summary[m] for m in (*MEASURES, "map")}


def against(values: list[float], reference: list[float], metric: str) -> dict:
    """The paired difference over seeds from the one rule (`compare_experiments`): its estimate,
    interval and verdict come from the same test, so the words never contradict the interval."""
    verdict = compare_experiments(values, reference, metric=metric, design="seeds")
    return {"difference": verdict.difference, "ci": list(verdict.ci), "status": verdict.status,
            "verdict": verdict.verdict, "test": verdict.test}


def methods_table(args) -> dict:
    out = {}
    for data in args.data:
        rows = {}
        for name, method in METHODS.items():
            started = time.perf_counter()
            runs = [score(make_config(data, method, seed, args.epochs)) for seed in args.seeds]
            rows[name] = {m: [r[m] for r in runs] for m in (*MEASURES, "map")}
            rows[name]["seconds"] = (time.perf_counter() - started) / len(args.seeds)
        for name, row in rows.items():
            row["summary"] = {m: t_interval(row[m]) for m in (*MEASURES, "map")}
            if name != "BCE":
                row["vs_bce"] = {m: against(row[m], rows["BCE"][m], m) for m in MEASURES}
        out[data] = rows
    return out


PLT_METHODS: dict[str, dict] = {
    "BCE": {},
    "PLT-MLC modifier alone": {"loss": {"name": "plt_modifier"}},
    # the balanced branch's loss and sampler in one network, without the other two branches
    "modifier + class-aware sampling": {"loss": {"name": "plt_modifier"}, "sampler": {"name": "class_aware"}},
    "PLT-MLC three branches": {"scheme": {"name": "plt_balance"}},
}


def plt_table(args) -> dict:
    """The three branches against BCE and against the modifier alone, per data set."""
    out = {}
    for data in args.data:
        rows = {}
        for name, method in PLT_METHODS.items():
            started = time.perf_counter()
            runs = [score(make_config(data, method, seed, args.epochs, hide=args.plt_hidden)) for seed in args.seeds]
            rows[name] = {m: [r[m] for r in runs] for m in (*MEASURES, "map")}
            rows[name]["seconds"] = (time.perf_counter() - started) / len(args.seeds)
        three = rows["PLT-MLC three branches"]
        for name, row in rows.items():
            row["summary"] = {m: t_interval(row[m]) for m in (*MEASURES, "map")}
        three["vs_bce"] = {m: against(three[m], rows["BCE"][m], m) for m in MEASURES}
        three["vs_modifier"] = {m: against(three[m], rows["PLT-MLC modifier alone"][m], m) for m in MEASURES}
        three["vs_one_branch"] = {m: against(three[m], rows["modifier + class-aware sampling"][m], m) for m in MEASURES}
        rows["PLT-MLC modifier alone"]["vs_bce"] = {m: against(rows["PLT-MLC modifier alone"][m], rows["BCE"][m], m)
                                                    for m in MEASURES}
        out[data] = rows
    return out


def hidden_table(args) -> dict:
    out = {}
    for share in (0.0, 0.3, 0.6):
        masked = [score(make_config("table", {}, s, args.epochs, hide=share)) for s in args.seeds]
        absent = masked if share == 0 else [score(make_config("table", {}, s, args.epochs, hide=share, absent=True))
                                            for s in args.seeds]
        entry = {"masked": {m: [r[m] for r in masked] for m in MEASURES},
                 "absent": {m: [r[m] for r in absent] for m in MEASURES}}
        if share:
            entry["absent_vs_masked"] = {m: against(entry["absent"][m], entry["masked"][m], m) for m in MEASURES}
        out[f"{share:.0%}"] = entry
    return out


def _fmt(values: list[float]) -> str:
    s = t_interval(values)
    return f"{s['mean']:.3f} [{s['ci'][0]:.3f}, {s['ci'][1]:.3f}]"


def _print(result: dict) -> None:
    for data, rows in [*result.get("methods", {}).items(), *((f"{d} (PLT-MLC)", r) for d, r in
                                                            result.get("plt", {}).items())]:
        print(f"\n{data}: tail mAP and macro F1, mean [95% t-interval] over seeds; vs BCE: difference [95% CI], verdict")
        for name, row in rows.items():
            line = f"  {name:<30} tail mAP {_fmt(row['map_tail'])}  macro F1 {_fmt(row['f1_macro'])}"
            for against_what in ("vs_bce", "vs_modifier", "vs_one_branch"):
                for m, c in (row.get(against_what) or {}).items():
                    line += (f"  | {against_what} {m} {c['difference']:+.3f} [{c['ci'][0]:+.3f}, {c['ci'][1]:+.3f}] "
                             f"{c['status']}")
            print(line + f"  ({row['seconds']:.0f} s a run)")
    for share, entry in result.get("hidden", {}).items():
        line = f"  hidden {share}: masked tail mAP {_fmt(entry['masked']['map_tail'])}, absent {_fmt(entry['absent']['map_tail'])}"
        for m, c in (entry.get("absent_vs_masked") or {}).items():
            line += f" | absent - masked {m} {c['difference']:+.3f} [{c['ci'][0]:+.3f}, {c['ci'][1]:+.3f}] {c['status']}"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--data", nargs="+", choices=list(DATA), default=list(DATA))
    parser.add_argument("--hidden", action="store_true", help="also the 0/30/60 %% hidden-label table")
    parser.add_argument("--no-methods", action="store_true", help="only the hidden-label table")
    parser.add_argument("--plt", action="store_true", help="PLT-MLC's three branches vs BCE and vs its modifier")
    parser.add_argument("--plt-hidden", type=float, default=0.0, help="share of training entries hidden for --plt")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = {}
    if not args.no_methods:
        result["methods"] = methods_table(args)
    if args.hidden:
        result["hidden"] = hidden_table(args)
    if args.plt:
        result["plt"] = plt_table(args)
    print(json.dumps(result, indent=1, default=float) if args.json else "", end="")
    if not args.json:
        _print(result)


if __name__ == "__main__":
    main()

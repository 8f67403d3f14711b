"""`tailscope robustness`: a finished run attacked at several budgets, accuracy per class and
per group with intervals."""

from __future__ import annotations

import argparse
import json
import math
import sys

from core.cli._common import fail, json_safe


def cmd_robustness(args: argparse.Namespace) -> int:
    """Clean and robust accuracy of a run per class, per group and balanced, with intervals."""
    from core.store import RunFileDamaged

    try:
        return _robustness(args)
    except RunFileDamaged as exc:
        return fail(str(exc), 1)


def _epsilons(text: str) -> list[float]:
    values = [float(v) for v in text.split(",") if v.strip()]
    if not values or any(not math.isfinite(v) or v < 0 for v in values):
        raise ValueError(f"--eps takes comma-separated budgets of 0 or more, e.g. 0.01,0.03,0.1; got {text!r}")
    return sorted({0.0, *values})  # 0 first: the clean accuracy every budget is read against


def _robustness(args: argparse.Namespace) -> int:
    from core.analysis import ATTACK_WORDS, load_run_model, robust_predictions, robustness_summary, robustness_table
    from core.config import RunConfig
    from core.methods import ATTACKS
    from core.store import RunNotFound, RunStore
    from core.train import prepare_run_data, resolve_device

    store = RunStore()
    try:
        record = store.get(args.run)
    except RunNotFound as exc:
        return fail(str(exc))
    if record.status != "done":
        return fail(f"run {args.run} is {record.status}; only finished runs can be attacked")
    if args.attack not in ATTACKS:
        return fail(f"unknown attack {args.attack!r}; known: {', '.join(ATTACKS.names())}")
    try:
        epsilons = _epsilons(args.eps)
        params = {"steps": args.steps} if args.steps is not None and ATTACKS.info(args.attack).capabilities[
            "iterative"] else {}
        ATTACKS.validate(args.attack, {**params, "epsilon": max(epsilons)})
    except ValueError as exc:
        return fail(str(exc))
    try:
        model = load_run_model(store, args.run)
    except FileNotFoundError:
        return fail(f"run {args.run} has no network to attack (a table baseline has no gradient)")
    dataset = store.metrics(args.run)["dataset"]
    artifacts = store.artifacts(args.run)
    splits = prepare_run_data(RunConfig.model_validate(record.config))
    x, y = splits.x_test[artifacts.test_index], artifacts.labels

    def progress(done: int, total: int) -> None:
        print(f"\rattacking ({args.attack}): batch {done} of {total}", end="", file=sys.stderr, flush=True)

    predictions = robust_predictions(model, x, y, attack=args.attack, params=params, epsilons=epsilons,
                                     modality=dataset["modality"], device=str(resolve_device(args.device)),
                                     progress=progress)
    print(file=sys.stderr)
    table = robustness_table(y, predictions, dataset["groups"], dataset["class_names"], artifacts.class_counts)
    if args.json:
        payload = {"run": args.run, "attack": args.attack, "params": params, "modality": dataset["modality"],
                   "units": ATTACK_WORDS[dataset["modality"]], "epsilons": epsilons,
                   "results": robustness_summary(table)}
        print(json.dumps(json_safe(payload), indent=1, allow_nan=False, default=float))
        return 0
    _print_table(table, record.name, args.attack, dataset["modality"])
    return 0


def _cell(acc: float, low: float, high: float) -> str:
    if not math.isfinite(acc):
        return f"{'-':>19}"
    interval = f"[{low:.2f},{high:.2f}]" if math.isfinite(low) else "[no interval]"
    return f"{acc:5.3f} {interval:>13}"


def _print_table(table, name: str, attack: str, modality: str) -> None:
    from core.analysis import ATTACK_WORDS

    eps = sorted(table["epsilon"].unique())
    print(f"{name}: accuracy under {attack} (95 % intervals); epsilon in {ATTACK_WORDS[modality]}")
    print(f"{'':<24}" + "".join(f"{f'eps {e:g}':>20}" for e in eps))
    for scope in ("balanced", "group", "gap", "class"):
        part = table[table["scope"] == scope]
        for label, rows in part.groupby("name", sort=False):
            tag = f"{label} ({rows['group'].iloc[0]}, n={int(rows['n_test'].iloc[0])})" if scope == "class" else label
            print(f"{tag[:23]:<24}" + "".join(_cell(r.accuracy, r.low, r.high).rjust(20) for r in rows.itertuples()))


def add_robustness(sub) -> None:
    p = sub.add_parser("robustness", help="clean and robust accuracy of a run per class and group, with intervals")
    p.add_argument("run")
    p.add_argument("--attack", default="pgd", help="attack (`tailscope methods` lists them): fgsm, pgd, pgd_l2")
    p.add_argument("--eps", default="0.01,0.03,0.1",
                   help="comma-separated budgets; 0 (clean) is always added. Pictures: brightness units in [0, 1]; "
                        "tables: standard deviations")
    p.add_argument("--steps", type=int, default=None, help="steps of an iterative attack (default: the attack's)")
    p.add_argument("--json", action="store_true", help="strict JSON: per budget, pooled rows and per-class rows")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.set_defaults(func=cmd_robustness)

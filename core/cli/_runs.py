"""Reading runs back: the list, one run or experiment, another class mix, and A against B."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from core.cli._common import fail, json_safe


def print_experiment_summary(store, exp_id: str) -> None:
    from core.analysis import experiment_summary

    result = experiment_summary(store, exp_id)
    print(f"{result['name']}: {result['n_done']} of {result['n_runs']} runs done", file=sys.stderr)
    for key in ("balanced_accuracy", "accuracy", "f1_macro", "gmean", "ece"):
        s = result["summary"].get(key) or {}
        if s.get("mean") is not None and math.isfinite(s["mean"]):
            low, high = s["ci"]
            interval = f"  95% CI [{low:.3f}, {high:.3f}]" if low is not None and math.isfinite(low) else ""
            print(f"  {key:<20} {s['mean']:.3f} (sd {s['sd']:.3f}, n {s['n']}){interval}", file=sys.stderr)


def cmd_runs(args: argparse.Namespace) -> int:
    from core.store import RunStore

    store = RunStore()
    store.reap_dead()  # a job whose worker died shows as failed, not running forever
    runs = [r.to_dict() for r in store.list_runs()]
    if args.json:
        print(json.dumps(json_safe(runs), indent=1, allow_nan=False))
        return 0
    if not runs:
        print("no runs yet: `tailscope train CONFIG.yaml` or the app's Train page starts one")
        return 0
    print(f"{'id':<23} {'status':<9} {'bal.acc':>7}  name / method")
    for r in runs:
        bal = (r["summary"] or {}).get("balanced_accuracy")
        print(f"{r['id']:<23} {r['status']:<9} {'' if bal is None else f'{bal:.3f}':>7}  {r['name']} / {r['method']}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from core.store import RunFileDamaged

    try:
        return _show(args)
    except RunFileDamaged as exc:
        return fail(str(exc), 1)


def _show(args: argparse.Namespace) -> int:
    from core.store import EXPERIMENT_PREFIX, RunNotFound, RunStore

    if args.adapt and args.prior is None:
        return fail("--adapt needs --prior (the class mix to adapt to)")
    store = RunStore()
    store.reap_dead()
    if args.run.startswith(EXPERIMENT_PREFIX):
        if args.prior is not None:
            return fail("--prior applies to one run; show one of the experiment's runs")
        from core.analysis import experiment_summary  # torch and the analysis stack: a lone run needs neither

        try:
            payload = experiment_summary(store, args.run)
        except RunNotFound as exc:
            return fail(str(exc))
        if args.json:
            print(json.dumps(json_safe(payload), indent=1, allow_nan=False))
        else:
            print_experiment_summary(store, args.run)
        return 0
    try:
        record = store.get(args.run)
    except RunNotFound as exc:
        return fail(str(exc))
    metrics = store.metrics(args.run)
    payload = {
        **record.to_dict(),
        "config": record.config,
        "metrics": {k: v for k, v in metrics.items() if k not in ("calibration", "geometry", "dataset", "ci")},
        "ci": metrics.get("ci"),
        "calibration": metrics.get("calibration"),
        "geometry": metrics.get("geometry"),
        "dataset": metrics.get("dataset"),
        "synthetic_checks": metrics.get("synthetic_checks"),  # rows a resampler made: near copies, utility
        "history": store.history(args.run),
    }
    if args.prior is not None:
        try:
            payload["at_prior"] = _metrics_at_prior(store, args.run, args.prior, args.adapt)
        except (ValueError, FileNotFoundError) as exc:
            return fail(str(exc))
    if args.json:
        print(json.dumps(json_safe(payload), indent=1, allow_nan=False))
        return 0
    print(f"{record.name}  [{record.status}]  {record.method}  on {record.dataset}")
    if record.error:
        print(f"  {record.error}")
    intervals = metrics.get("ci") or {}
    for key in ("accuracy", "balanced_accuracy", "f1_macro", "gmean", "worst_class_recall", "mcc"):
        if key in metrics and metrics[key] is not None:
            ci = intervals.get(key)
            extra = f"  95% CI [{ci['low']:.3f}, {ci['high']:.3f}]" if ci else ""
            print(f"  {key:<20} {metrics[key]:.4f}{extra}")
    for row in metrics.get("per_class", []):
        print(f"    {row['class']:<16} n_train {row['count_train']:>6}  recall {row['recall']:.3f}  f1 {row['f1']:.3f}")
    _print_rare_stage(metrics.get("rare_stage"), (metrics.get("dataset") or {}).get("class_names") or [])
    _print_made_rows(metrics.get("synthetic_checks"))
    if "at_prior" in payload:
        _print_at_prior(payload["at_prior"])
    return 0


def _print_made_rows(checks: dict[str, Any] | None) -> None:
    """The rows the run's resampler made: how many are near copies of a real row, and the
    balanced accuracy on the real test rows of models trained on real, made and both rows."""
    if not checks:
        return
    print(f"  rows made by the resampler: {checks['made']}; near copies of a real row: {checks['flagged']} of "
          f"{checks['checked']} checked ({checks['share_flagged']:.0%})")
    scores = {k: checks.get(k) for k in ("train_real", "train_synthetic", "train_both")}
    print("    balanced accuracy on real test rows, trained on: " + ", ".join(
        f"{k.removeprefix('train_')} {'n/a' if v is None or v != v else f'{v:.3f}'}" for k, v in scores.items()))


def _print_rare_stage(rare: dict[str, Any] | None, names: list[str]) -> None:
    """An ordinal run's scores of its last stage's probability, with their intervals."""
    if not rare:
        return
    stage = names[rare["stage"]] if rare["stage"] < len(names) else rare["stage"]
    print(f"  last stage {stage!r} ({rare['test_cases']} test cases reached it):")
    for key in ("log_loss", "brier", "auc", "calibration_in_the_large", "calibration_slope"):
        score = rare.get(key) or {}
        if score.get("estimate") is not None:
            low, high = score.get("low"), score.get("high")
            extra = f"  95% CI [{low:.3f}, {high:.3f}]" if low is not None and high is not None else ""
            print(f"    {key:<26} {score['estimate']:.4f}{extra}")


def _metrics_at_prior(store, run_id: str, choice: str, adapt: bool) -> dict[str, Any]:
    """`metrics_at_prior` of a finished run, with class names, and the note pages show."""
    from core.analysis import metrics_at_prior, resolve_prior

    artifacts = store.artifacts(run_id)
    k = artifacts.num_classes
    prior = resolve_prior(choice, artifacts.labels, k, artifacts.prior)
    result = metrics_at_prior(artifacts.logits, artifacts.labels, prior, train_prior=artifacts.prior, adapt=adapt)
    names = (store.metrics(run_id).get("dataset") or {}).get("class_names") or [str(i) for i in range(k)]
    for row in result["per_class"]:
        row["name"] = str(names[row["class"]]) if row["class"] < len(names) else str(row["class"])
    result["choice"] = choice
    result["note"] = (
        "adapted: decisions moved to this prior (logit + log(prior / trained prior)), so recall changes too"
        if adapt else
        "recall per class (and balanced accuracy) does not change with the prior; --adapt moves the decisions to it"
    )
    return result


def _print_at_prior(result: dict[str, Any]) -> None:
    shares = ", ".join(f"{p:.3g}" for p in result["prior"])
    print(f"  at prior {result['choice']} ({shares}){'  adapted' if result['adapted'] else ''}")
    for key in ("accuracy", "balanced_accuracy", "f1_macro", "ece"):
        print(f"  {key:<20} {result[key]:.4f}")

    def fmt(value: float) -> str:
        return f"{value:.3f}" if math.isfinite(value) else "  -  "

    for row in result["per_class"]:
        print(f"    {row['name']:<16} prevalence {fmt(row['prevalence'])}  recall {fmt(row['recall'])}  "
              f"PPV {fmt(row['ppv'])}  NPV {fmt(row['npv'])}  f1 {fmt(row['f1'])}")
    print(f"  {result['note']}")


def cmd_compare(args: argparse.Namespace) -> int:
    from core.analysis import compare_ids
    from core.store import RunFileDamaged, RunNotFound, RunStore

    try:
        result = compare_ids(RunStore(), args.a, args.b, args.metric)
    except (RunNotFound, RunFileDamaged, ValueError) as exc:
        return fail(str(exc))
    if args.json:
        print(json.dumps(json_safe(result), indent=1, allow_nan=False))
        return 0
    from core.text import interval_text

    level = f"{result['confidence']:.0%}"
    shown = (interval_text(result["difference"], result["ci"], digits=4, signed=True)
             if all(math.isfinite(v) for v in result["ci"]) else f"{result['difference']:+.4f} (no interval)")
    print(f"{result['metric']}: {result['a']['name']} minus {result['b']['name']} = {shown}"
          f"  ({level} interval, n {result['n']})")
    print(f"  {result['verdict']}  [{result['test']}]")
    if result["note"]:
        print(f"  {result['note']}")
    return 0


def add_runs(sub) -> None:
    p = sub.add_parser("runs", help="list runs, newest first")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)



def add_compare(sub) -> None:
    p = sub.add_parser("compare", help="is A better than B beyond noise? (two runs or two experiments)")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--metric", default="balanced_accuracy")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_compare)



def add_show(sub) -> None:
    p = sub.add_parser("show", help="one run's (or experiment's) config, status, metrics and intervals")
    p.add_argument("run")
    p.add_argument("--json", action="store_true")
    p.add_argument("--prior", default=None,
                   help="score at another class mix: test, balanced, train, or one share per class (0.97,0.03)")
    p.add_argument("--adapt", action="store_true", help="with --prior: also move the model's decisions to that prior")
    p.set_defaults(func=cmd_show)


"""`tailscope`: the command line over the same API the pages use."""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["main"]


def _json_safe(value: Any) -> Any:
    """NaN and infinities as null: strict JSON (jq, JavaScript) has no NaN."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _fail(message: str, code: int = 2) -> int:
    print(f"tailscope: {message}", file=sys.stderr)
    return code


def _progress_line(info: dict[str, Any]) -> None:
    stage = info.get("stage")
    if stage == "start":
        print(f"running {info['run']} ({info['name']})", file=sys.stderr)
        return
    fraction = float(info.get("fraction", 0.0))
    bar = "#" * int(fraction * 30)
    eta = info.get("eta_s")
    eta_text = f" eta {eta:5.0f}s" if isinstance(eta, (int, float)) and math.isfinite(eta) else ""
    where = f"epoch {info.get('epoch', '?')}/{info.get('epochs', '?')}" if "epochs" in info else ""
    print(f"\r{stage:<9} {where:<14} [{bar:<30}] {fraction:4.0%}{eta_text}", end="", file=sys.stderr, flush=True)
    if stage in ("evaluate", "done"):
        print(file=sys.stderr)


def cmd_train(args: argparse.Namespace) -> int:
    from core.config import ConfigError, load_config
    from core.jobs import ensure_worker, execute_run
    from core.store import RunStore

    from core.train import run_problems

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return _fail(str(exc))
    problems = run_problems(config)
    if problems:
        return _fail(f"{args.config}: " + "; ".join(problems))
    store = RunStore()
    run_id = store.create_run(config)
    print(run_id)
    if not args.wait:
        if not args.no_worker:
            ensure_worker(store)
        return 0
    record = store.claim(run_id, os.getpid())
    if record is None:  # a background worker took it first: follow it there
        state = _follow(store, run_id)
    else:
        state = execute_run(store, record, embeddings=not args.no_embeddings, echo=_progress_line)
    if state != "done":
        return _fail(f"run {run_id} {state}: {store.get(run_id).error}", 1)
    summary = store.get(run_id).summary or {}
    print(", ".join(f"{k} {v:.3f}" for k, v in summary.items()), file=sys.stderr)
    return 0


def _follow(store, run_id: str, poll_s: float = 0.5) -> str:
    """Print another worker's progress on `run_id` until it ends; returns its final status."""
    import time

    while (record := store.get(run_id)).status in ("queued", "running"):
        if record.progress:
            _progress_line(record.progress)
        time.sleep(poll_s)
    print(file=sys.stderr)
    return record.status


def cmd_runs(args: argparse.Namespace) -> int:
    from core.store import RunStore

    store = RunStore()
    store.reap_dead()  # a job whose worker died shows as failed, not running forever
    runs = [r.to_dict() for r in store.list_runs()]
    if args.json:
        print(json.dumps(_json_safe(runs), indent=1, allow_nan=False))
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
    from core.store import RunNotFound, RunStore

    store = RunStore()
    store.reap_dead()
    try:
        record = store.get(args.run)
    except RunNotFound as exc:
        return _fail(str(exc))
    metrics = store.metrics(args.run)
    payload = {
        **record.to_dict(),
        "config": record.config,
        "metrics": {k: v for k, v in metrics.items() if k not in ("calibration", "geometry", "dataset")},
        "calibration": metrics.get("calibration"),
        "geometry": metrics.get("geometry"),
        "dataset": metrics.get("dataset"),
        "history": store.history(args.run),
    }
    if args.json:
        print(json.dumps(_json_safe(payload), indent=1, allow_nan=False))
        return 0
    print(f"{record.name}  [{record.status}]  {record.method}  on {record.dataset}")
    if record.error:
        print(f"  {record.error}")
    for key in ("accuracy", "balanced_accuracy", "f1_macro", "gmean", "worst_class_recall", "mcc"):
        if key in metrics and metrics[key] is not None:
            print(f"  {key:<20} {metrics[key]:.4f}")
    for row in metrics.get("per_class", []):
        print(f"    {row['class']:<16} n_train {row['count_train']:>6}  recall {row['recall']:.3f}  f1 {row['f1']:.3f}")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from core.jobs import worker_loop
    from core.store import RunStore

    ran = worker_loop(RunStore(), idle_exit_s=0 if args.once else None, echo=_progress_line)
    if ran < 0:
        return _fail("a worker is already running for this TAILSCOPE_HOME", 1)
    print(f"worker ran {ran} job(s)", file=sys.stderr)
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    from core.registry_index import listing as all_methods

    listing = all_methods()
    if args.json:
        print(json.dumps(listing, indent=1, default=str))
        return 0
    for kind, entries in listing.items():
        print(f"\n{kind}")
        for e in entries:
            params = ", ".join(f"{p['name']}={p['default']}" for p in e["params"])
            print(f"  {e['name']:<20} {e['description']}" + (f"  [{params}]" if params else ""))
            if e["paper"]:
                print(f"  {'':<20} {e['paper']}")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    """Attribution maps of a run's errors, written as one self-contained HTML report."""
    from core.analysis import (
        ATTRIBUTIONS, build_report_cases, case_attributions, error_cases, list_attributions, load_run_model,
        resolve_classes,
    )
    from core.config import RunConfig
    from core.store import RunNotFound, RunStore
    from core.train import prepare_run_data, resolve_device
    from core.viz import error_report_html

    store = RunStore()
    try:
        record = store.get(args.run)
    except RunNotFound as exc:
        return _fail(str(exc))
    if record.status != "done":
        return _fail(f"run {args.run} is {record.status}; only finished runs can be explained")
    if args.method not in ATTRIBUTIONS:
        return _fail(f"unknown attribution method {args.method!r}; known: {', '.join(ATTRIBUTIONS.names())}")
    dataset = store.metrics(args.run)["dataset"]
    names, groups, modality = dataset["class_names"], dataset["groups"], dataset["modality"]
    model = load_run_model(store, args.run)
    usable = list_attributions(modality, model=model)
    if args.method not in usable:
        return _fail(f"{args.method} does not apply to this {modality} run; choose one of: {', '.join(usable)}")
    try:
        classes = resolve_classes(args.classes, names, groups)
    except ValueError as exc:
        return _fail(str(exc))
    if args.n < 1:
        return _fail(f"--n must be at least 1, got {args.n}")

    artifacts = store.artifacts(args.run)
    cases = error_cases(artifacts, groups, true_classes=classes, correctness="wrong" if args.wrong else "all").head(args.n)
    inputs = prepare_run_data(RunConfig.model_validate(record.config)).x_test[artifacts.test_index][cases["row"].to_numpy()]
    device = resolve_device(args.device)
    if cases.empty:
        print("no test samples match; the report says so", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        print(f"\rattribution maps ({args.method}) {done}/{total}", end="", file=sys.stderr, flush=True)

    maps = case_attributions(store.run_dir(args.run), model, inputs, cases["sample_id"].tolist(), method=args.method,
                             targets={"true": cases["true"], "pred": cases["pred"]}, device=str(device), progress=progress)
    print(file=sys.stderr)
    report = error_report_html(
        build_report_cases(cases, artifacts, inputs, maps["true"], maps["pred"], modality=modality,
                           feature_names=dataset.get("feature_names")),
        title=f"Error gallery: {record.name}", run_name=record.name, method=args.method, class_names=names,
        notes=f"Cases: {'misclassified' if args.wrong else 'all'} test samples of "
              f"{'every class' if classes is None else ', '.join(names[c] for c in classes)}, "
              f"the most confident predictions first ({len(cases)} shown).",
    )
    out = Path(args.out or f"{args.run}-{args.method}.html")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report, encoding="utf-8")
    print(out)
    return 0


def cmd_app(args: argparse.Namespace) -> int:
    root = Path(__file__).resolve().parent.parent
    cmd = [sys.executable, "-m", "streamlit", "run", str(root / "app" / "main.py"),
           "--server.address", args.address, "--server.port", str(args.port)]
    return subprocess.call(cmd, cwd=root)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tailscope", description="Explore what class imbalance does to a classifier.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="queue a run from a YAML/JSON config (and run it with --wait)")
    p.add_argument("config")
    p.add_argument("--wait", action="store_true", help="run it here to the end, printing progress")
    p.add_argument("--no-worker", action="store_true", help="only queue; do not start a background worker")
    p.add_argument("--no-embeddings", action="store_true", help="skip the UMAP computed after training")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("runs", help="list runs, newest first")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)
    p = sub.add_parser("show", help="one run's config, status and metrics")
    p.add_argument("run")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)
    p = sub.add_parser("worker", help="run queued jobs")
    p.add_argument("--once", action="store_true", help="exit when the queue is empty")
    p.set_defaults(func=cmd_worker)
    p = sub.add_parser("methods", help="every registered dataset, model, loss, sampler, resampler, stage-2 and post-hoc method")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_methods)
    p = sub.add_parser("explain", help="attribution maps of a run's errors as a self-contained HTML report")
    p.add_argument("run")
    p.add_argument("--method", default="integrated_gradients", help="attribution method (`tailscope methods` lists them)")
    p.add_argument("--classes", default="tail", help="true classes to show: tail, medium, head, all, or comma-separated names")
    p.add_argument("--wrong", action="store_true", help="keep only misclassified samples")
    p.add_argument("--n", type=int, default=16, help="how many cases, most confident first")
    p.add_argument("--out", default=None, help="report file (default: RUN-METHOD.html)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.set_defaults(func=cmd_explain)
    p = sub.add_parser("app", help="open the workbench in a browser")
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8501)
    p.set_defaults(func=cmd_app)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

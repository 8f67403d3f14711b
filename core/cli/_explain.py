"""`tailscope explain`: attribution maps of a run's errors as one self-contained HTML report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.cli._common import fail, multilabel_refusal


def cmd_explain(args: argparse.Namespace) -> int:
    """Attribution maps of a run's errors, written as one self-contained HTML report."""
    from core.store import RunFileDamaged

    try:
        return _explain(args)
    except RunFileDamaged as exc:
        return fail(str(exc), 1)


def _explain(args: argparse.Namespace) -> int:
    """What can refuse the call is checked first, reading only the store, so a failed run or a
    damaged file is answered in a fraction of a second rather than after the torch import."""
    from core.store import RunNotFound, RunStore

    store = RunStore()
    try:
        record = store.get(args.run)
    except RunNotFound as exc:
        return fail(str(exc))
    if record.status != "done":
        return fail(f"run {args.run} is {record.status}; only finished runs can be explained")
    if why := multilabel_refusal(record.config, "explain"):
        return fail(why)
    if args.n < 1:
        return fail(f"--n must be at least 1, got {args.n}")
    dataset = store.metrics(args.run)["dataset"]
    return _report(args, store, record, dataset, store.artifacts(args.run))


def _report(args: argparse.Namespace, store, record, dataset: dict, artifacts) -> int:
    from core.analysis import (
        ATTRIBUTIONS, build_report_cases, case_attributions, error_cases, list_attributions, load_run_model,
        report_annotations, resolve_classes, reviews_table,
    )
    from core.config import RunConfig
    from core.data import feature_table
    from core.train import prepare_run_data, resolve_device
    from core.viz import error_report_html

    if args.method not in ATTRIBUTIONS:
        return fail(f"unknown attribution method {args.method!r}; known: {', '.join(ATTRIBUTIONS.names())}")
    names, groups, modality = dataset["class_names"], dataset["groups"], dataset["modality"]
    model = load_run_model(store, args.run)
    usable = list_attributions(modality, model=model)
    if args.method not in usable:
        return fail(f"{args.method} does not apply to this {modality} run; choose one of: {', '.join(usable)}")
    try:
        classes = resolve_classes(args.classes, names, groups)
    except ValueError as exc:
        return fail(str(exc))

    cases = error_cases(artifacts, groups, true_classes=classes, correctness="wrong" if args.wrong else "all").head(args.n)
    splits = prepare_run_data(RunConfig.model_validate(record.config))
    inputs = splits.x_test[artifacts.test_index][cases["row"].to_numpy()]
    device = resolve_device(args.device)
    if cases.empty:
        print("no test samples match; the report says so", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        print(f"\rattribution maps ({args.method}) {done}/{total}", end="", file=sys.stderr, flush=True)

    maps = case_attributions(store.run_dir(args.run), model, inputs, cases["sample_id"].tolist(), method=args.method,
                             targets={"true": cases["true"], "pred": cases["pred"]}, device=str(device), progress=progress)
    print(file=sys.stderr)
    saved = report_annotations(store, args.run)
    for line in saved["damaged"]:
        print(f"tailscope: note: left out of the report: {line}", file=sys.stderr)
    report = error_report_html(
        build_report_cases(cases, artifacts, inputs, maps["true"], maps["pred"], modality=modality,
                           feature_names=dataset.get("feature_names"),
                           value_tables=None if modality == "image" else [feature_table(splits, row) for row in inputs]),
        title=f"Error gallery: {record.name}", run_name=record.name, method=args.method, class_names=names,
        notes=f"Cases: {'misclassified' if args.wrong else 'all'} test samples of "
              f"{'every class' if classes is None else ', '.join(names[c] for c in classes)}, "
              f"the most confident predictions first ({len(cases)} shown).",
        reviews=reviews_table(saved["reviews"], artifacts, names), operating_point=saved["operating_point"],
        damaged=saved["damaged"],
    )
    out = Path(args.out or f"{args.run}-{args.method}.html")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report, encoding="utf-8")
    print(out)
    return 0


def add_explain(sub) -> None:
    p = sub.add_parser("explain", help="attribution maps of a run's errors as a self-contained HTML report")
    p.add_argument("run")
    p.add_argument("--method", default="integrated_gradients", help="attribution method (`tailscope methods` lists them)")
    p.add_argument("--classes", default="tail", help="true classes to show: tail, medium, head, all, or comma-separated names")
    p.add_argument("--wrong", action="store_true", help="keep only misclassified samples")
    p.add_argument("--n", type=int, default=16, help="how many cases, most confident first")
    p.add_argument("--out", default=None, help="report file (default: RUN-METHOD.html)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.set_defaults(func=cmd_explain)


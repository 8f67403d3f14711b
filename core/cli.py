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
    phase = f"  ({info['phase'].split(':')[0]})" if info.get("phase") else ""  # semi-supervised rounds
    print(f"\r{stage:<9} {where:<14} [{bar:<30}] {fraction:4.0%}{eta_text}{phase}", end="", file=sys.stderr,
          flush=True)
    if stage in ("evaluate", "done"):
        print(file=sys.stderr)


def _evaluation_override(config, args: argparse.Namespace):
    """--folds / --seeds on the command line replace the config's evaluation section."""
    if args.folds is None and args.seeds is None:
        return config
    from core.config import ConfigError, RunConfig, format_validation_error
    from pydantic import ValidationError

    evaluation = config.evaluation.model_dump()
    if args.folds is not None:
        evaluation["folds"] = args.folds
    if args.seeds is not None:
        text = args.seeds.strip()
        try:
            evaluation["seeds"] = ([int(x) for x in text.split(",")] if "," in text
                                   else list(range(config.train.seed, config.train.seed + int(text))))
        except ValueError:
            raise ConfigError(f"--seeds: {text!r} is neither a count (3) nor a list of seeds (0,1,2)") from None
    try:
        return RunConfig.model_validate({**json.loads(config.to_json()), "evaluation": evaluation})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None


def _file_sources(config, config_path: str, fresh: list[str]):
    """Every source-like field (`core.config.SOURCE_FIELDS`) that names a file (relative to
    the config's folder, then the current one) is stored as an upload and the config points
    to it; the pre-flight then reads each as the run would. Uploads stored here for the
    first time are appended to `fresh`, so a refused run leaves none of them behind."""
    from core.config import ConfigError, RunConfig, source_values
    from core.data import DATASETS, UPLOAD_PREFIX, DataError, save_upload, upload_path, upload_source

    raw = json.loads(config.to_json())
    for field, source in source_values(config):
        if source.startswith(UPLOAD_PREFIX) or source in DATASETS:
            continue
        candidates = [Path(config_path).resolve().parent / source, Path.cwd() / source]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            what = (f"unknown dataset {source!r} and no file of that name" if field == "data.source"
                    else f"no file of that name ({source!r})")
            raise ConfigError(f"{field}: {what} (looked in {candidates[0].parent} and {candidates[1].parent})"
                              + (f"; built-in: {', '.join(DATASETS.names())}" if field == "data.source" else ""))
        try:
            data = path.read_bytes()
            try:
                upload_path(upload_source(data, path.name))
            except DataError:
                fresh.append(upload_source(data, path.name))
            stored = save_upload(data, path.name)
        except (DataError, OSError) as exc:
            raise ConfigError(f"{field}: {exc}") from None
        *parents, last = field.split(".")
        section = raw
        for part in parents:
            section = section[part]
        section[last] = stored
    return RunConfig.model_validate(raw)


def cmd_train(args: argparse.Namespace) -> int:
    from core.config import ConfigError, load_config
    from core.jobs import ensure_worker, execute_run
    from core.store import RunStore
    from core.data import load_data, remove_upload
    from core.train import run_problems, run_warnings

    fresh: list[str] = []  # files stored as uploads by this command: removed again if the run is refused
    try:
        config = _file_sources(_evaluation_override(load_config(args.config), args), args.config, fresh)
        problems = run_problems(config)
        if problems:
            raise ConfigError(f"{args.config}: " + "; ".join(problems))
        warnings = run_warnings(config, load_data(config.data))
    except BaseException as exc:
        for source in fresh:
            remove_upload(source)
        if isinstance(exc, ConfigError):
            return _fail(str(exc))
        raise
    for warning in warnings:
        print(f"tailscope: note: {warning}", file=sys.stderr)
    store = RunStore()
    if config.evaluation.is_experiment:
        exp_id = store.create_experiment(config)
        run_ids = [r.id for r in store.get_experiment(exp_id).runs]
    else:
        exp_id, run_ids = None, [store.create_run(config)]
    print(exp_id or run_ids[0])
    if not args.wait:
        if not args.no_worker:
            ensure_worker(store)
        return 0
    failed = []
    for n, run_id in enumerate(run_ids, 1):
        if len(run_ids) > 1:
            print(f"run {n} of {len(run_ids)}: {store.get(run_id).name}", file=sys.stderr)
        record = store.claim(run_id, os.getpid())
        if record is None:  # a background worker took it first: follow it there
            state = _follow(store, run_id)
        else:
            state = execute_run(store, record, embeddings=not args.no_embeddings, echo=_progress_line)
        if state != "done":
            failed.append(f"run {run_id} {state}: {store.get(run_id).error}")
    if exp_id:
        _print_experiment_summary(store, exp_id)
    else:
        summary = store.get(run_ids[0]).summary or {}
        print(", ".join(f"{k} {v:.3f}" for k, v in summary.items()), file=sys.stderr)
    if failed:
        return _fail("; ".join(failed), 1)
    return 0


def _print_experiment_summary(store, exp_id: str) -> None:
    from core.analysis import experiment_summary

    result = experiment_summary(store, exp_id)
    print(f"{result['name']}: {result['n_done']} of {result['n_runs']} runs done", file=sys.stderr)
    for key in ("balanced_accuracy", "accuracy", "f1_macro", "gmean", "ece"):
        s = result["summary"].get(key) or {}
        if s.get("mean") is not None and math.isfinite(s["mean"]):
            low, high = s["ci"]
            interval = f"  95% CI [{low:.3f}, {high:.3f}]" if low is not None and math.isfinite(low) else ""
            print(f"  {key:<20} {s['mean']:.3f} (sd {s['sd']:.3f}, n {s['n']}){interval}", file=sys.stderr)


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
    from core.store import RunFileDamaged

    try:
        return _show(args)
    except RunFileDamaged as exc:
        return _fail(str(exc), 1)


def _show(args: argparse.Namespace) -> int:
    from core.store import EXPERIMENT_PREFIX, RunNotFound, RunStore

    if args.adapt and args.prior is None:
        return _fail("--adapt needs --prior (the class mix to adapt to)")
    store = RunStore()
    store.reap_dead()
    if args.run.startswith(EXPERIMENT_PREFIX):
        if args.prior is not None:
            return _fail("--prior applies to one run; show one of the experiment's runs")
        from core.analysis import experiment_summary  # torch and the analysis stack: a lone run needs neither

        try:
            payload = experiment_summary(store, args.run)
        except RunNotFound as exc:
            return _fail(str(exc))
        if args.json:
            print(json.dumps(_json_safe(payload), indent=1, allow_nan=False))
        else:
            _print_experiment_summary(store, args.run)
        return 0
    try:
        record = store.get(args.run)
    except RunNotFound as exc:
        return _fail(str(exc))
    metrics = store.metrics(args.run)
    payload = {
        **record.to_dict(),
        "config": record.config,
        "metrics": {k: v for k, v in metrics.items() if k not in ("calibration", "geometry", "dataset", "ci")},
        "ci": metrics.get("ci"),
        "calibration": metrics.get("calibration"),
        "geometry": metrics.get("geometry"),
        "dataset": metrics.get("dataset"),
        "history": store.history(args.run),
    }
    if args.prior is not None:
        try:
            payload["at_prior"] = _metrics_at_prior(store, args.run, args.prior, args.adapt)
        except (ValueError, FileNotFoundError) as exc:
            return _fail(str(exc))
    if args.json:
        print(json.dumps(_json_safe(payload), indent=1, allow_nan=False))
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
    if "at_prior" in payload:
        _print_at_prior(payload["at_prior"])
    return 0


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
        return _fail(str(exc))
    if args.json:
        print(json.dumps(_json_safe(result), indent=1, allow_nan=False))
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


def cmd_sweep(args: argparse.Namespace) -> int:
    """Validate a sweep file (every problem at once), create or resume it, and drive it."""
    from core.config import ConfigError
    from core.jobs import SweepRefused, ensure_sweep_driver, load_sweep, start_sweep
    from core.store import RunStore

    if args.backend == "ray":  # say it here, not in the log of a background driver
        from core.jobs._ray import import_ray

        try:
            import_ray()
        except ImportError as exc:
            return _fail(str(exc))
    try:
        spec = load_sweep(args.sweep)
        store = RunStore()
        sweep_id, to_run, done = start_sweep(store, spec, args.backend)
    except SweepRefused as exc:
        print(f"tailscope: {args.sweep}: {len(exc.problems)} cell(s) cannot run:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    except (ConfigError, ValueError) as exc:
        return _fail(f"{args.sweep}: {exc}")
    print(sweep_id)
    print(f"{to_run} run(s) to train, {done} already done", file=sys.stderr)
    if not args.wait:
        ensure_sweep_driver(store, sweep_id, args.backend, args.workers, args.ray_address)
        return 0
    return _drive(store, sweep_id, args)


def cmd_sweep_resume(args: argparse.Namespace) -> int:
    from core.store import RunNotFound, RunStore

    store = RunStore()
    try:
        store.get_sweep(args.sweep)
    except RunNotFound as exc:
        return _fail(str(exc))
    return _drive(store, args.sweep, args)


def _drive(store, sweep_id: str, args: argparse.Namespace) -> int:
    """Run the sweep's queued runs here through the chosen executor."""
    from core.jobs import drive_sweep

    return drive_sweep(store, sweep_id, args.backend, args.workers, getattr(args, "ray_address", None))


def cmd_sweep_show(args: argparse.Namespace) -> int:
    from core.analysis import sweep_summary
    from core.store import RunNotFound, RunStore

    store = RunStore()
    store.reap_dead()
    try:
        summary = sweep_summary(store, args.sweep, args.metric)
    except RunNotFound as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(_json_safe(summary), indent=1, allow_nan=False, default=str))
        return 0
    p = summary["progress"]
    eta = f", about {p['eta_s']:.0f} s left" if p.get("eta_s") else ""
    print(f"{summary['name']}  [{summary['status']}]  {p['done']} of {p['total']} runs done{eta}")
    for cell in summary["cells"]:
        s = cell["summary"].get(args.metric) or {}
        value = f"{s['mean']:.3f}" if s.get("mean") is not None else "  -  "
        versus = cell["vs_reference"]["verdict"] if cell["vs_reference"] else ""
        settings = ", ".join(f"{k}={v}" for k, v in (cell["settings"] or {}).items())
        print(f"  {settings:<50} {value}  ({cell['n_done']}/{cell['n_runs']})  {versus}")
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
    from core.registry import listing as all_methods

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
    from core.store import RunFileDamaged

    try:
        return _explain(args)
    except RunFileDamaged as exc:
        return _fail(str(exc), 1)


def _explain(args: argparse.Namespace) -> int:
    from core.analysis import (
        ATTRIBUTIONS, build_report_cases, case_attributions, error_cases, list_attributions, load_run_model,
        report_annotations, resolve_classes, reviews_table,
    )
    from core.config import RunConfig
    from core.data import feature_table
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


def cmd_uploads(args: argparse.Namespace) -> int:
    from core.data import list_uploads, remove_upload, sources_of
    from core.store import RunStore, read_json

    store = RunStore()
    users: dict[str, list[str]] = {}
    for record in store.list_runs():
        for source in sources_of(record.config):
            users.setdefault(source, []).append(record.id)
    try:  # the Data page's saved choice counts as a user: removing it would break the page
        chosen = read_json(store.home / "ui" / "data_config.json").get("source")
    except (ValueError, OSError, AttributeError):
        chosen = None
    uploads = [{"source": u.source, "file": u.name, "bytes": u.size, "stored": u.modified,
                "runs": users.get(u.source, []), "data_page_choice": u.source == chosen} for u in list_uploads()]
    unused = [u for u in uploads if not u["runs"] and not u["data_page_choice"]]
    removed = [u["source"] for u in unused if remove_upload(u["source"])] if args.remove_unused else []
    if args.json:
        print(json.dumps({"uploads": uploads, "removed": removed}, indent=1))
        return 0
    if not uploads:
        print("no stored uploads")
        return 0
    print(f"{'stored file':<44} {'size':>9}  used by")
    for u in uploads:
        used = (", ".join(u["runs"][:3]) + (f" +{len(u['runs']) - 3} more" if len(u["runs"]) > 3 else "")
                if u["runs"] else "the Data page's choice" if u["data_page_choice"] else "nothing")
        gone = "  (removed)" if u["source"] in removed else ""
        print(f"{u['source'].removeprefix('upload:')[:44]:<44} {u['bytes'] / 1024**2:7.2f}MB  {used}{gone}")
    if args.remove_unused:
        print(f"removed {len(removed)} unused upload(s), {sum(u['bytes'] for u in unused) / 1024**2:.2f} MB",
              file=sys.stderr)
    elif unused:
        print(f"{len(unused)} upload(s) no run uses: `tailscope uploads --remove-unused` deletes them",
              file=sys.stderr)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from core.data import DataError
    from core.store import RunFileDamaged, RunNotFound, RunStore

    data_path = Path(args.file)
    try:
        data = data_path.read_bytes()
    except OSError as exc:
        return _fail(f"{args.file}: cannot be read ({exc.strerror or exc}).")
    from core.predict import predict_new_cases

    try:
        cases = predict_new_cases(RunStore(), args.run, data_path.name, data)
    except (DataError, RunNotFound, RunFileDamaged, FileNotFoundError, ValueError) as exc:
        return _fail(str(exc))
    if args.out:
        try:
            Path(args.out).write_bytes(cases.to_csv())
        except OSError as exc:
            return _fail(f"{args.out}: cannot be written ({exc.strerror or exc}).")
    from core.analysis import ESTIMATOR_LABELS, ESTIMATORS

    table = cases.prior_table()
    first, second = cases.estimator, cases.second_estimator
    if args.json:
        payload = {
            "run": args.run, "file": data_path.name, "cases": len(cases.frame), "temperature": cases.temperature,
            "calibration": {"method": "bias-corrected temperature scaling", "temperature": cases.temperature,
                            "bias": [float(v) for v in cases.bias], "cases": cases.reference_cases,
                            "splits": cases.reference_splits},
            "estimator": {"name": first, "label": ESTIMATOR_LABELS[first], "description": ESTIMATORS[first]},
            "second_estimator": {"name": second, "label": ESTIMATOR_LABELS[second],
                                 "description": ESTIMATORS[second]},
            "confidence": cases.prior.get("confidence"), "operating_point": cases.operating_point or None,
            "classes": table.to_dict(orient="records"), "warnings": cases.warnings, "csv": args.out,
        }
        print(json.dumps(_json_safe(payload), indent=1, allow_nan=False))
        return 0
    level = cases.prior.get("confidence", 0.95)
    print(f"{len(cases.frame):,} new cases from {data_path.name}; probabilities calibrated on the run's "
          f"{cases.reference_cases:,} {cases.reference_splits} cases (bias-corrected temperature scaling, "
          f"temperature {cases.temperature:.3g})")
    print(f"class mix estimated by {ESTIMATORS[first]}; {ESTIMATOR_LABELS[second]} beside it as a check")
    width = max([len("class"), *(len(c) for c in table["class"])])
    interval_head = f"{level:.0%} interval"
    print(f"  {'class':<{width}}  {'trained':>7}  {'estimated prior':>15}  {interval_head:>17}"
          f"  {ESTIMATOR_LABELS[second]:>8}  {'predicted':>9}  {'at prior':>8}")
    for row in table.to_dict(orient="records"):
        interval = f"[{row['low']:.3f}, {row['high']:.3f}]"
        print(f"  {row['class']:<{width}}  {row['training prior']:>7.3f}  {row['estimated prior']:>15.3f}  "
              f"{interval:>17}  {row['second estimate']:>8.3f}  {row['predicted']:>9}  "
              f"{row['predicted at estimated prior']:>8}")
    for row in table.to_dict(orient="records"):
        if row["note"]:
            print(f"  note: {row['class']}: {row['note']}")
    for warning in cases.warnings:
        print(f"  note: {warning}")
    if args.out:
        print(f"predictions written to {args.out}")
    return 0


def cmd_label_issues(args: argparse.Namespace) -> int:
    """Suspected label issues of a run's training split (computed once, then read back)."""
    from core.analysis import label_issue_counts, label_issue_table, read_label_issues
    from core.jobs import compute_run_label_issues
    from core.store import RunFileDamaged, RunNotFound, RunStore

    store = RunStore()
    try:
        record = store.get(args.run)
        report = None if args.recompute else read_label_issues(store, args.run)
        if report is None:
            print(f"finding label issues of {record.name or args.run} ({args.folds or 'default'} folds)…", file=sys.stderr)
            report = compute_run_label_issues(store, args.run, folds=args.folds)
    except (RunNotFound, RunFileDamaged, ValueError) as exc:
        return _fail(str(exc))
    names = (store.metrics(args.run).get("dataset") or {}).get("class_names")
    table = label_issue_table(report, names)
    counts = label_issue_counts(report, names)
    payload = {"run": args.run, "settings": report.settings, "computed": report.computed,
               "rows": len(report.given), "suspected": report.num_flagged, "detection": report.detection(),
               "per_class": counts.to_dict(orient="records"), "issues": table.to_dict(orient="records")}
    if args.json:
        print(json.dumps(_json_safe(payload), indent=1, allow_nan=False, default=_json_default))
        return 0
    print(f"{record.name}: {report.num_flagged} of {len(report.given)} training rows suspected "
          f"({report.settings.get('model')}, {report.settings.get('folds')} folds, {report.settings.get('filter_by')})")
    detection = report.detection()
    if detection and detection["precision"] is not None and detection["recall"] is not None:
        print(f"  against the injected noise ({detection['noisy_rows']} wrong labels): precision "
              f"{detection['precision']:.3f}, recall {detection['recall']:.3f} (random flags: precision "
              f"{detection['base_rate']:.3f})")
    for row in counts.itertuples(index=False):
        print(f"    {row[1]:<16} rows {row.rows:>6}  suspected {row.suspected:>5}  ({row.share:.0%})")
    for row in table.head(args.top).itertuples(index=False):
        print(f"  row {row.train_row:>6}  given {row.given:<12} suggested {row.suggested:<12} score {row.score:.3f}")
    return 0


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON: {type(value).__name__}")


def cmd_lesson(args: argparse.Namespace) -> int:
    """A published claim tested on real runs: list the lessons, run one (--prerun), show its verdict."""
    import time

    from core.jobs import LocalExecutor
    from core.lessons import create_lesson, lesson_json, lesson_state, lesson_verdict, list_lessons, run_lesson
    from core.registry import UnknownPluginError
    from core.store import RunStore

    store = RunStore()
    store.reap_dead()
    names = [args.name] if args.name else list_lessons()
    try:
        lessons = [create_lesson(name, args.size) for name in names]
    except UnknownPluginError as exc:
        return _fail(str(exc))
    if not args.name and not args.prerun:
        listing = [{**lesson_json(lesson), "state": lesson_state(store, lesson)} for lesson in lessons]
        if args.json:
            print(json.dumps(_json_safe([{k: v for k, v in e.items() if k != "sweep"} for e in listing]), indent=1))
            return 0
        for e in listing:
            state = e["state"]
            print(f"{e['name']:<22} {state['status']:<9} {state['done']:>3}/{state['total']:<3} {e['display']}")
        print("`tailscope lesson NAME` shows one; `--prerun` trains it before class", file=sys.stderr)
        return 0
    payload, failed = [], 0
    for lesson in lessons:
        seconds = None
        if args.prerun:
            started = time.perf_counter()
            try:
                counts = run_lesson(store, lesson, LocalExecutor(args.workers),
                                    echo=lambda line: print(line, file=sys.stderr))
            except KeyboardInterrupt:
                return _fail(f"stopped; `tailscope lesson {lesson.name} --prerun` resumes it", 130)
            except ValueError as exc:
                return _fail(f"{lesson.name}: {exc}")
            seconds = time.perf_counter() - started
            failed += counts["failed"]
        state = lesson_state(store, lesson)
        verdict = lesson_verdict(store, lesson) if state["done"] else None
        payload.append({"lesson": {k: v for k, v in lesson_json(lesson).items() if k != "sweep"}, "state": state,
                        "seconds": seconds, "verdict": None if verdict is None else verdict.to_dict()})
        if not args.json:
            _print_lesson(lesson, state, verdict, seconds)
    if args.json:
        print(json.dumps(_json_safe(payload if len(payload) > 1 else payload[0]), indent=1, allow_nan=False))
    return 1 if failed else 0


def _print_lesson(lesson, state: dict[str, Any], verdict, seconds: float | None) -> None:
    print(f"{lesson.display}  [{state['status']}, {state['done']}/{state['total']} runs]"
          + (f"  trained in {seconds:.0f} s" if seconds is not None else ""))
    print(f"  claim: {lesson.claim}")
    print(f"  paper: {lesson.paper}")
    print(f"  set-up: {lesson.setup}")
    if verdict is None:
        print(f"  not run yet: `tailscope lesson {lesson.name} --prerun` trains its {state['total']} runs")
    else:
        for finding in verdict.findings:
            p = f", p = {finding.p_value:.2g}" if math.isfinite(finding.p_value) else ""
            if finding.p_adjusted is not None and finding.comparison.adjustment:
                p += f", {finding.comparison.adjustment}: adjusted p = {finding.p_adjusted:.2g}"
            print(f"  {finding.label} ({finding.measure}): {finding.text}  (n {finding.n}{p})")
        print(f"  {verdict.caption}")
    for n, question in enumerate(lesson.questions, 1):
        print(f"  Q{n}. {question}")
    print(f"  on a GPU: {lesson.gpu_note}")


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
    p.add_argument("--folds", type=int, default=None, help="run as an experiment over K stratified folds")
    p.add_argument("--seeds", default=None, help="run as an experiment over N seeds (a count, or a list: 0,1,2)")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("runs", help="list runs, newest first")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)
    p = sub.add_parser("compare", help="is A better than B beyond noise? (two runs or two experiments)")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--metric", default="balanced_accuracy")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_compare)
    p = sub.add_parser("show", help="one run's (or experiment's) config, status, metrics and intervals")
    p.add_argument("run")
    p.add_argument("--json", action="store_true")
    p.add_argument("--prior", default=None,
                   help="score at another class mix: test, balanced, train, or one share per class (0.97,0.03)")
    p.add_argument("--adapt", action="store_true", help="with --prior: also move the model's decisions to that prior")
    p.set_defaults(func=cmd_show)
    p = sub.add_parser("sweep", help="a grid of settings x seeds/folds, on a local pool or a Ray cluster")
    p.add_argument("sweep", help="a run config plus `grid:` (dotted keys to lists of values)")
    p.add_argument("--backend", choices=("local", "ray"), default="local")
    p.add_argument("--workers", type=int, default=None, help="local: processes (default: one per core)")
    p.add_argument("--ray-address", default=None, help="an existing Ray cluster (default: $RAY_ADDRESS, else local)")
    p.add_argument("--wait", action="store_true", help="drive it here until it ends (Ctrl-C stops it)")
    p.set_defaults(func=cmd_sweep)
    p = sub.add_parser("sweep-resume", help="drive a stopped sweep's remaining runs")
    p.add_argument("sweep")
    p.add_argument("--backend", choices=("local", "ray"), default="local")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--ray-address", default=None)
    p.set_defaults(func=cmd_sweep_resume)
    p = sub.add_parser("sweep-show", help="a sweep's progress and every grid cell's numbers")
    p.add_argument("sweep")
    p.add_argument("--metric", default="balanced_accuracy")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sweep_show)
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
    p = sub.add_parser("uploads", help="stored uploads and the runs that use them (--remove-unused deletes the rest)")
    p.add_argument("--remove-unused", action="store_true", help="delete uploads that no run and no saved choice uses")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_uploads)
    p = sub.add_parser("predict", help="score unlabelled new cases with a run: predictions, calibrated "
                                       "probabilities and the batch's class prior (EM after bias-corrected "
                                       "temperature scaling, BBSE beside it)")
    p.add_argument("run")
    p.add_argument("file", help="a table with the run's feature columns, pictures (.zip or one), or .npz with 'x'")
    p.add_argument("--out", default=None, help="write every case's predictions and probabilities to this CSV")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)
    p = sub.add_parser("label-issues", help="training rows whose label is probably wrong (confident learning on "
                                            "out-of-fold predictions), computed once and kept with the run")
    p.add_argument("run")
    p.add_argument("--folds", type=int, default=None, help="folds of the training split (default: 5)")
    p.add_argument("--top", type=int, default=20, help="how many suspected rows to print, least likely label first")
    p.add_argument("--recompute", action="store_true", help="compute again even when saved")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_label_issues)
    p = sub.add_parser("lesson", help="a published claim about imbalance, tested on real runs (no NAME: list them)")
    p.add_argument("name", nargs="?", help="the lesson (no name: list them; with --prerun: train them all)")
    p.add_argument("--prerun", action="store_true", help="train it now (resuming), so it opens at once in class")
    p.add_argument("--size", choices=("full", "tiny"), default="full",
                   help="full: the class-ready lesson (about 3 minutes); tiny: 2 seeds, 2 epochs, a first look")
    p.add_argument("--workers", type=int, default=None, help="processes for --prerun (default: one per core)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_lesson)
    p = sub.add_parser("app", help="open the workbench in a browser")
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8501)
    p.set_defaults(func=cmd_app)
    return parser


def main(argv: list[str] | None = None) -> int:
    import signal

    if hasattr(signal, "SIGPIPE"):  # `tailscope runs --json | head` ends quietly, as other Unix tools do
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception:  # last resort: one line here, the traceback in a log file
        import traceback

        from core.paths import tailscope_home

        log = tailscope_home() / "cli-errors.log"
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("a", encoding="utf-8") as out:
                out.write(traceback.format_exc() + "\n")
            where = f"; the details are in {log.name} in the data folder"
        except OSError:
            where = ""
        return _fail(f"something went wrong that was not expected{where}. Please report it with the command you "
                     "ran.", 1)


if __name__ == "__main__":
    sys.exit(main())

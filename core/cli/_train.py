"""Queue or run one run (or an experiment's runs) from a config file, and the local worker."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from core.cli._common import fail, progress_line
from core.cli._runs import print_experiment_summary


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
    from core.data import DATASETS, MULTILABEL_DATASETS, UPLOAD_PREFIX, DataError, save_upload, upload_path, upload_source

    raw = json.loads(config.to_json())
    for field, source in source_values(config):
        if source.startswith(UPLOAD_PREFIX) or source in DATASETS or source in MULTILABEL_DATASETS:
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
        warnings = run_warnings(config, None if config.data.multilabel else load_data(config.data))
    except BaseException as exc:
        for source in fresh:
            remove_upload(source)
        if isinstance(exc, ConfigError):
            return fail(str(exc))
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
            state = execute_run(store, record, embeddings=not args.no_embeddings, echo=progress_line)
        if state != "done":
            failed.append(f"run {run_id} {state}: {store.get(run_id).error}")
    if exp_id:
        print_experiment_summary(store, exp_id)
    else:
        summary = store.get(run_ids[0]).summary or {}
        print(", ".join(f"{k} {v:.3f}" for k, v in summary.items()), file=sys.stderr)
    if failed:
        return fail("; ".join(failed), 1)
    return 0


def _follow(store, run_id: str, poll_s: float = 0.5) -> str:
    """Print another worker's progress on `run_id` until it ends; returns its final status."""
    import time

    while (record := store.get(run_id)).status in ("queued", "running"):
        if record.progress:
            progress_line(record.progress)
        time.sleep(poll_s)
    print(file=sys.stderr)
    return record.status


def cmd_worker(args: argparse.Namespace) -> int:
    from core.jobs import worker_loop
    from core.store import RunStore

    ran = worker_loop(RunStore(), idle_exit_s=0 if args.once else None, echo=progress_line)
    if ran < 0:
        return fail("a worker is already running for this TAILSCOPE_HOME", 1)
    print(f"worker ran {ran} job(s)", file=sys.stderr)
    return 0


def add_train(sub) -> None:
    p = sub.add_parser("train", help="queue a run from a YAML/JSON config (and run it with --wait)")
    p.add_argument("config")
    p.add_argument("--wait", action="store_true", help="run it here to the end, printing progress")
    p.add_argument("--no-worker", action="store_true", help="only queue; do not start a background worker")
    p.add_argument("--no-embeddings", action="store_true", help="skip the UMAP computed after training")
    p.add_argument("--folds", type=int, default=None, help="run as an experiment over K stratified folds")
    p.add_argument("--seeds", default=None, help="run as an experiment over N seeds (a count, or a list: 0,1,2)")
    p.set_defaults(func=cmd_train)



def add_worker(sub) -> None:
    p = sub.add_parser("worker", help="run queued jobs")
    p.add_argument("--once", action="store_true", help="exit when the queue is empty")
    p.set_defaults(func=cmd_worker)


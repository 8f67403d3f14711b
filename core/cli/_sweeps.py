"""Sweeps: validate and start a grid, drive a stopped one, and read its cells."""

from __future__ import annotations

import argparse
import json
import sys

from core.cli._common import fail, json_safe


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
            return fail(str(exc))
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
        return fail(f"{args.sweep}: {exc}")
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
        return fail(str(exc))
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
        return fail(str(exc))
    if args.json:
        print(json.dumps(json_safe(summary), indent=1, allow_nan=False, default=str))
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


def add_sweep(sub) -> None:
    p = sub.add_parser("sweep", help="a grid of settings x seeds/folds, on a local pool or a Ray cluster")
    p.add_argument("sweep", help="a run config plus `grid:` (dotted keys to lists of values)")
    p.add_argument("--backend", choices=("local", "ray"), default="local")
    p.add_argument("--workers", type=int, default=None, help="local: processes (default: one per core)")
    p.add_argument("--ray-address", default=None, help="an existing Ray cluster (default: $RAY_ADDRESS, else local)")
    p.add_argument("--wait", action="store_true", help="drive it here until it ends (Ctrl-C stops it)")
    p.set_defaults(func=cmd_sweep)



def add_sweep_resume(sub) -> None:
    p = sub.add_parser("sweep-resume", help="drive a stopped sweep's remaining runs")
    p.add_argument("sweep")
    p.add_argument("--backend", choices=("local", "ray"), default="local")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--ray-address", default=None)
    p.set_defaults(func=cmd_sweep_resume)



def add_sweep_show(sub) -> None:
    p = sub.add_parser("sweep-show", help="a sweep's progress and every grid cell's numbers")
    p.add_argument("sweep")
    p.add_argument("--metric", default="balanced_accuracy")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sweep_show)


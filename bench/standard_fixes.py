""""Try the standard fixes" as the Train page's button starts it with the page's defaults
(digits made long-tailed exp-50, the small CNN, 20 epochs, 6 matched seeds): wall time from
the first queued run to the last stored one, through the local pool the page's sweep driver
uses, and what the sweep found.

The sweep is created by `standard_fixes_spec` (the button's own spec) in a fresh store and
driven in this process by `drive_sweep`, as the driver process `python -m core.jobs drive`
does. Reported: the wall time, the training seconds of the runs (their own clocks: the sum
over runs, what one core would need), and the ratio of wall time to that sum over the
workers (1.0 would be perfect sharing with no fixed cost). Then each fix against plain
cross-entropy on balanced accuracy: the paired difference over the matched seeds with its
95 % interval and the verdict the Sweeps page prints (Benjamini-Hochberg over the five).
Asserts nothing.

    .venv/bin/python bench/standard_fixes.py [--workers 2] [--epochs 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="tailscope-fixes-"))
    os.environ["TAILSCOPE_HOME"] = str(home)
    try:
        from app.services import DEFAULT_DATA
        from core.analysis import sweep_summary
        from core.config import RunConfig
        from core.jobs import drive_sweep, standard_fixes_spec, start_sweep
        from core.store import RunStore

        config = RunConfig.model_validate({"data": DEFAULT_DATA, "model": {"name": "small_cnn"},
                                           "train": {"epochs": args.epochs}})
        store = RunStore(home)
        sweep_id, to_run, _ = start_sweep(store, standard_fixes_spec(config, "image"), "local")
        started = time.perf_counter()
        code = drive_sweep(store, sweep_id, "local", workers=args.workers, echo=lambda line: None)
        wall = time.perf_counter() - started
        runs = store.get_sweep(sweep_id).runs
        trained = sum((r.finished or 0) - (r.started or 0) for r in runs if r.status == "done")
        print(f"{to_run} runs, {sum(r.status == 'done' for r in runs)} done (exit {code}), {args.workers} workers, "
              f"{args.epochs} epochs: {wall:.0f} s wall; the runs' own clocks sum to {trained:.0f} s, "
              f"wall / (sum / workers) = {wall / (trained / args.workers):.2f}")
        by_method: dict[str, list[float]] = {}
        for r in runs:
            if r.status == "done":
                by_method.setdefault(store.get_experiment(r.experiment).cell.get("method", "?"), []).append(
                    (r.finished or 0) - (r.started or 0))
        print("seconds per run (mean of its seeds): " + ", ".join(f"{m} {sum(s) / len(s):.1f}" for m, s in by_method.items()))
        summary = sweep_summary(store, sweep_id, "balanced_accuracy")
        print("\n| method | balanced accuracy, mean | vs cross-entropy [95 % CI] | verdict |\n|---|---|---|---|")
        for cell in summary["cells"]:
            mean = cell["summary"].get("balanced_accuracy", {}).get("mean")
            versus = cell["vs_reference"]
            gain = "" if versus is None else f"{versus['difference']:+.3f} [{versus['ci'][0]:+.3f}, {versus['ci'][1]:+.3f}]"
            words = "" if versus is None else versus["verdict"]
            print(f"| {cell['settings'].get('method')} | {mean:.3f} | {gain} | {words} |")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()

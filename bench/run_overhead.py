"""Where a small run's time goes besides training: the fixed costs of a run, measured apart
from its compute, as ratios to the compute bound measured in the same process.

For each case, one run goes through the worker's own path (`produce_run`, then the 2-D map
the worker draws after it) with a timer around every phase:

  data        prepare_run_data: load, make long-tailed, split, scale
  train loop  train_run: the loop with its validation passes, history and best-epoch copies
  bound       compute only: the same number of optimiser steps on batches already sliced
              (bench/train_speed.py's bound), so "loop - bound" is the loop's own overhead
  evaluate    post-hoc steps and attacked predictions (when configured)
  summarise   metrics with intervals, made-row checks, library versions
  write       history, arrays, weights, made rows and metrics files
  map         the UMAP map of the test features (the worker's last step; a page can also ask)

and, apart, the start of a worker process (`python -m core.jobs` to its first poll: the
interpreter, torch and the engine imported) and a queued run end to end through a real worker
process (queued -> done, no map), against bound + loop overhead + process start.

Usage: python bench/run_overhead.py [--epochs 10] [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import torch  # noqa: E402

import train_speed  # noqa: E402
from core.jobs import _worker  # noqa: E402
from core.store import RunFolder, RunStore  # noqa: E402

CASES = {"mlp/wine": ("wine", "mlp", 64), "small_cnn/digits": ("digits", "small_cnn", 128)}
PHASES = {  # phase -> names in core.jobs._worker that produce_run calls
    "data": ("prepare_run_data",),
    "train loop": ("train_run",),
    "evaluate": ("apply_posthoc_steps", "with_attacked_predictions"),
    "summarise": ("summarize_run", "made_row_checks", "environment", "dataset_info"),
}
WRITES = ("write_metrics", "write_history", "write_artifacts", "write_weights", "write_made_rows")


@contextlib.contextmanager
def timed_phases(seconds: dict[str, float]):
    """Wrap the worker's calls and the run folder's writes so each adds its time to `seconds`."""
    saved = []

    def wrap(owner, name: str, phase: str) -> None:
        inner = getattr(owner, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                seconds[phase] += time.perf_counter() - start

        saved.append((owner, name, inner))
        setattr(owner, name, timed)

    for phase, names in PHASES.items():
        for name in names:
            wrap(_worker, name, phase)
    for name in WRITES:
        wrap(RunFolder, name, "write")
    try:
        yield
    finally:
        for owner, name, inner in reversed(saved):
            setattr(owner, name, inner)


def phases_of_one_run(config) -> dict[str, float]:
    """Seconds per phase of one run through the worker's path, its map included."""
    from core.jobs._pipeline import compute_embeddings

    seconds: dict[str, float] = defaultdict(float)
    with tempfile.TemporaryDirectory() as home:
        store = RunStore(home)
        run_id = store.create_run(config)
        start = time.perf_counter()
        with timed_phases(seconds):
            _worker.produce_run(config, store.folder(run_id))
        seconds["run"] = time.perf_counter() - start
        store.finish(run_id, {}, progress={"stage": "embedding", "fraction": 1.0})
        start = time.perf_counter()
        compute_embeddings(store, run_id)
        seconds["map"] = time.perf_counter() - start
    seconds["other"] = seconds["run"] - sum(seconds[p] for p in (*PHASES, "write"))
    return dict(seconds)


def worker_start_seconds() -> float:
    """A worker process from its start to its first look at an empty queue (it then exits)."""
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "TAILSCOPE_HOME": home, "PYTHONPATH": str(ROOT)}
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "core.jobs", "worker", "--home", home, "--idle-exit", "0"], env=env,
                       check=True, capture_output=True, timeout=300)
        return time.perf_counter() - start


def queued_to_done_seconds(config) -> float:
    """A run queued in a fresh store, a real worker process started for it as the app does,
    until the run is done (the worker draws its map after that: timed above, not here)."""
    with tempfile.TemporaryDirectory() as home:
        store = RunStore(home)
        env = {**os.environ, "TAILSCOPE_HOME": home, "PYTHONPATH": str(ROOT)}
        start = time.perf_counter()
        run_id = store.create_run(config)
        proc = subprocess.Popen([sys.executable, "-m", "core.jobs", "worker", "--home", home, "--idle-exit", "0"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        while store.get(run_id).status not in ("done", "failed", "cancelled"):
            if proc.poll() is not None and store.get(run_id).status not in ("done", "failed", "cancelled"):
                raise RuntimeError(f"the worker ended early: {proc.stderr.read().decode()[-500:]}")
            time.sleep(0.01)
        seconds = time.perf_counter() - start
        proc.kill()  # its map is not part of this figure
        proc.wait(timeout=60)
        assert store.get(run_id).status == "done", store.get(run_id).error
        return seconds


def measure(name: str, epochs: int, repeats: int) -> dict[str, float]:
    source, model, batch = CASES[name]
    config = train_speed._config(source, model, batch, epochs, "cpu")
    from core.train import prepare_run_data

    splits = prepare_run_data(config)
    rounds = []
    for _ in range(repeats):  # interleaved, so a busy machine slows every part alike
        phases = phases_of_one_run(config)
        _, steps = train_speed.time_engine(config, splits)
        bound = train_speed.time_bound(config, splits, torch.device("cpu"), steps) * epochs
        start = worker_start_seconds()
        whole = queued_to_done_seconds(config)
        rounds.append({**phases, "bound": bound, "process start": start, "queued to done": whole,
                       "loop over bound": phases["train loop"] / bound,
                       "fixed costs over bound": (phases["run"] - phases["train loop"]) / bound,
                       "queued to done over bound + start": whole / (bound + start)})
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", help="run only the cases whose name contains this")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)  # a worker on a shared machine; the bound gets the same
    results = {name: measure(name, args.epochs, args.repeats) for name in CASES
               if not args.only or args.only in name}
    if args.json:
        print(json.dumps(results, indent=2))
        return
    order = ["data", "train loop", "bound", "evaluate", "summarise", "write", "other", "run", "map", "process start",
             "queued to done"]
    print(f"seconds per phase, median of {args.repeats} ({args.epochs} epochs, CPU, 1 thread)")
    print(f"{'phase':<34}" + "".join(f"{name:>18}" for name in results))
    for key in order:
        print(f"{key:<34}" + "".join(f"{r[key]:>18.3f}" for r in results.values()))
    for key in ("loop over bound", "fixed costs over bound", "queued to done over bound + start"):
        print(f"{key:<34}" + "".join(f"{r[key]:>17.2f}x" for r in results.values()))


if __name__ == "__main__":
    main()

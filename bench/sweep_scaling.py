"""Sweep throughput: the same 16 small runs through 1 local worker, 2 local workers and a
2-node Ray cluster, all in this process.

The sweep: digits made long-tailed (exp, ratio 10), an MLP of 64 units, 10 epochs of at
least 2,000 steps (1-2 s of training on one core), 4 losses x 4 seeds. Each executor gets a
fresh store and trains the sweep through `run_sweep`, exactly as `tailscope sweep --wait`
does. Reported per executor:

The baseline is 1 worker with 1 torch thread (the per-core rate); `--workers 1` gives its one
process every core as threads, shown on the second line (small models gain little from
threads, and lose on a busy machine). Columns:

- start-up: creating the executor (for Ray: connecting to the cluster; starting the 2-node
  cluster itself is shown apart) plus one small warm-up run per worker, which pays for the
  worker processes and their imports (torch, the project);
- wall: the 16 runs after start-up, and the speed-up against 1 worker (same process, same
  load), both for the runs alone and with start-up included;
- overhead per run: workers x wall / runs minus the mean training time the tasks report
  (`run_task`'s `seconds`): what each run costs beyond its own training (submitting,
  shipping files back, committing them to the store, waiting for a free worker at the end).

On a 2-core machine the driver (commits, polling) and Ray's own processes share the cores
with the 2 workers, so 2 workers cannot quite double the throughput of 1; nor can they on a
virtual machine whose cores slow each other down, so the last line measures that ceiling
(two plain torch processes against one, no Tailscope). Asserts nothing.

    .venv/bin/python bench/sweep_scaling.py [--epochs 10] [--min-steps 2000] [--no-ray]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

LOSSES = ["ce", "focal", "weighted_ce", "balanced_softmax"]
WARM_UP = {"data": {"source": "wine", "imbalance": {"profile": "exp", "ratio": 5}}, "model": {"name": "mlp", "hidden": 8},
           "train": {"epochs": 2, "min_steps": 0, "nc_every": 0}}


def sweep_spec(epochs: int, min_steps: int, name: str) -> dict[str, Any]:
    return {"name": name, "data": {"source": "digits", "imbalance": {"profile": "exp", "ratio": 10}},
            "model": {"name": "mlp", "hidden": 64},
            "train": {"epochs": epochs, "min_steps": min_steps, "nc_every": 0},
            "grid": {"loss.name": LOSSES, "train.seed": [0, 1, 2, 3]}}


class Timed:
    """The executor, with the training seconds of every task that came back."""

    def __init__(self, inner):
        self.inner, self.name, self.workers = inner, inner.name, inner.workers
        self.seconds: list[float] = []

    def submit(self, config_json, uploads=None):
        return self.inner.submit(config_json, uploads)

    def finished(self, handles, timeout):
        out = self.inner.finished(handles, timeout)
        self.seconds += [r.get("seconds", 0.0) for _, r in out if "files" in r]
        return out

    def cancel(self, handle):
        self.inner.cancel(handle)

    def shutdown(self):
        self.inner.shutdown()


def warm_up(executor) -> None:
    """One small run per worker, so worker processes start and import before the clock runs."""
    from core.config import RunConfig

    config = RunConfig.model_validate(WARM_UP).model_dump_json()
    pending = [executor.submit(config) for _ in range(executor.workers)]
    while pending:
        for handle, result in executor.finished(pending, timeout=1.0):
            pending.remove(handle)
            if "files" not in result:
                raise RuntimeError(f"warm-up run failed: {result.get('error')}")


def measure(label: str, make_executor, args, home: Path) -> dict[str, Any]:
    from core.jobs import run_sweep, start_sweep
    from core.store import RunStore
    from core.jobs import load_sweep

    os.environ["TAILSCOPE_HOME"] = str(home)
    store = RunStore(home)
    sweep_id, n, _ = start_sweep(store, load_sweep(sweep_spec(args.epochs, args.min_steps, label)))
    load = os.getloadavg()[0]
    started = time.perf_counter()
    executor = Timed(make_executor())
    warm_up(executor)
    executor.seconds.clear()
    ready = time.perf_counter()
    counts = run_sweep(store, sweep_id, executor, poll_s=0.1)
    wall = time.perf_counter() - ready
    if counts["done"] != n:
        raise RuntimeError(f"{label}: {counts}")
    train = sum(executor.seconds) / len(executor.seconds)
    return {"label": label, "workers": executor.workers, "startup": ready - started, "wall": wall,
            "train": train, "overhead": executor.workers * wall / n - train, "runs": n, "load": load}


LOOP = """
import torch
torch.set_num_threads(1)
x, y = torch.randn(512, 64), torch.randint(0, 10, (512,))
m = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
opt = torch.optim.SGD(m.parameters(), lr=0.01)
for i in range(4000):
    b = slice((i * 64) % 512, (i * 64) % 512 + 64)
    opt.zero_grad(); torch.nn.functional.cross_entropy(m(x[b]), y[b]).backward(); opt.step()
"""


def machine_ceiling(repeats: int = 3) -> float:
    """What this machine itself allows: the same plain torch loop as 1 process, then as 2 at
    once (no Tailscope, no pool): throughput ratio, median of `repeats` alternations. On a
    shared or throttled machine it is well below 2, and no executor can beat it."""
    import statistics
    import subprocess
    import sys

    def wall(n: int) -> float:
        t = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", LOOP]) for _ in range(n)]
        for p in procs:
            p.wait()
        return time.perf_counter() - t

    return statistics.median(2 * wall(1) / wall(2) for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--min-steps", type=int, default=2000)
    parser.add_argument("--no-ray", action="store_true", help="only the local pool")
    args = parser.parse_args()

    from core.jobs import LocalExecutor

    scratch = Path(tempfile.mkdtemp(prefix="tailscope-sweep-bench-"))
    rows, cluster_s, cluster = [], None, None
    try:
        rows.append(measure("local, 1 worker", lambda: LocalExecutor(1, threads=1), args, scratch / "one"))
        if (os.cpu_count() or 1) > 1:  # what `--workers 1` gives: the one process has every core
            rows.append(measure(f"local, 1 w. {os.cpu_count()} thr.", lambda: LocalExecutor(1), args,
                                scratch / "threads"))
        rows.append(measure("local, 2 workers", lambda: LocalExecutor(2), args, scratch / "two"))
        try:
            from core.jobs._ray import import_ray

            import_ray()
        except ImportError as exc:
            print(f"(no Ray row: {exc})")
            args.no_ray = True
        if not args.no_ray:
            from ray.cluster_utils import Cluster

            from core.jobs._ray import RayExecutor

            t = time.perf_counter()
            cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
            cluster.add_node(num_cpus=1)
            cluster_s = time.perf_counter() - t
            rows.append(measure("ray, 2 nodes x 1 CPU", lambda: RayExecutor(address=cluster.address), args,
                                scratch / "ray"))
    finally:
        if cluster is not None:
            session = cluster.head_node.get_session_dir_path()
            cluster.shutdown()
            shutil.rmtree(session, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)

    ceiling = machine_ceiling()
    base = rows[0]
    print(f"{base['runs']} runs: digits MLP-64, {args.epochs} epochs, >= {args.min_steps} steps; {os.cpu_count()} cores")
    print(f"{'executor':<22} {'start-up s':>10} {'wall s':>7} {'speed-up':>8} {'(with start-up)':>15} "
          f"{'train s/run':>11} {'overhead s/run':>14} {'load':>5}")
    for r in rows:
        ratio = base["wall"] / r["wall"]
        cold = (base["wall"] + base["startup"]) / (r["wall"] + r["startup"])
        print(f"{r['label']:<22} {r['startup']:>10.1f} {r['wall']:>7.1f} {ratio:>7.2f}x {cold:>14.2f}x "
              f"{r['train']:>11.2f} {r['overhead']:>14.2f} {r['load']:>5.1f}")
    print(f"(this machine's own ceiling, 2 plain torch processes against 1, same loop: {ceiling:.2f}x)")
    if cluster_s is not None:
        print(f"(starting the local 2-node Ray cluster itself: {cluster_s:.1f} s, not counted above)")


if __name__ == "__main__":
    main()

"""Kill a sweep's driver at random moments and check that nothing is lost and nothing is left.

A fresh TAILSCOPE_HOME; a sweep of small runs (wine MLP, a second or so each) on the local
pool with 2 workers, started in the background the way the app and `tailscope sweep` start
it (`ensure_sweep_driver`, i.e. `python -m core.jobs drive SWEEP`). The driver is SIGKILLed
while starting, once its pool is up, while runs train, and once results are coming in (in
turn, plus a random delay; one sweep per kill, `--kills` in all, seeded), then the sweep is
resumed the way a person would (`tailscope sweep-resume`) to its end.

Checked after each kill, before the resume: every process the driver had started (its pool
workers and the multiprocessing resource tracker) is gone within a few seconds. Checked at
the end: the sweep finished with every run done (0 lost, 0 failed because their driver
died), no process of any driver is alive, no temp file is left in a run folder, and SQLite's
`PRAGMA integrity_check` is ok.

Usage: python bench/driver_kills.py [--kills 20] [--seed 0] [--runs 4]
Exits 1 on a lost run, an orphan process or a failed check. `bench/fault_injection.py
--driver-kills N` runs it after the worker kills; `tests/test_faults.py` a small version.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

CONFIG = {"data": {"source": "wine", "imbalance": {"profile": "exp", "ratio": 5}}, "model": {"name": "mlp", "hidden": 16},
          "loss": {"name": "ce"}, "train": {"epochs": 30, "batch_size": 32, "lr": 0.05, "min_steps": 0, "nc_every": 0}}


def children(pid: int) -> set[int]:
    """Every living descendant of `pid`, from /proc (parent links)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    out = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":  # a zombie is dead, waiting only to be reaped by its (new) parent
            out.add(pid)
    return out


def wait_gone(pids: set[int], timeout_s: float = 15.0) -> set[int]:
    deadline = time.monotonic() + timeout_s
    while (left := alive(pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def _reap_child(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _sweep(store, k: int, runs: int, backend: str) -> str:
    from core.jobs import load_sweep, start_sweep

    spec = load_sweep({"name": f"driver kill {k} ({backend})", **CONFIG, "evaluation": {"seeds": list(range(runs))},
                       "grid": {"loss.name": ["ce"]}})
    return start_sweep(store, spec, backend)[0]


MOMENTS = ("starting", "pool up", "training", "committing")


def _reached(store, sweep_id: str, driver: int, moment: str, started_at: float) -> bool:
    runs = store.get_sweep(sweep_id).runs
    if moment == "starting":
        return True
    if moment == "pool up":
        return len(children(driver)) >= 2
    if moment == "training":
        return any(r.status == "running" for r in runs)
    return any(r.status == "done" for r in runs)  # "committing": some results are in, more coming


def kill_once(store, sweep_id: str, moment: str, rng: random.Random, backend: str = "local",
              timeout_s: float = 120.0) -> dict:
    """Start the sweep's driver as the app does, SIGKILL it at `moment` (plus a random bit),
    and report which of the processes it had started are still alive a few seconds later."""
    from core.jobs import ensure_sweep_driver
    from core.store import pid_alive

    ensure_sweep_driver(store, sweep_id, backend, workers=2)
    driver = store.get_sweep(sweep_id).driver_pid
    begin = time.monotonic()
    started: set[int] = set()
    while pid_alive(driver) and not _reached(store, sweep_id, driver, moment, begin) \
            and time.monotonic() - begin < timeout_s:
        started |= children(driver)
        time.sleep(0.05)
    extra = time.monotonic() + rng.uniform(0.0, 3.0 if moment == "starting" else 1.5)
    while pid_alive(driver) and time.monotonic() < extra:
        started |= children(driver)
        time.sleep(0.05)
    done = sum(r.status == "done" for r in store.get_sweep(sweep_id).runs)
    if pid_alive(driver):
        started |= children(driver)
        os.kill(driver, signal.SIGKILL)
    _reap_child(driver)
    left = wait_gone(started)
    for pid in left:  # do not let one failure poison the kills that follow
        os.kill(pid, signal.SIGKILL)
    return {"moment": moment, "after_s": round(time.monotonic() - begin, 2), "done_before": done,
            "processes": len(started), "left": sorted(left)}


def resume(home: Path, sweep_id: str, backend: str = "local") -> int:
    """`tailscope sweep-resume SWEEP`, as a person would type it after the crash."""
    import subprocess

    env = {**os.environ, "TAILSCOPE_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "core.cli", "sweep-resume", sweep_id, "--workers", "2",
                           "--backend", backend], env=env,
                          capture_output=True, text=True, timeout=900).returncode


def run(kills: int = 20, seed: int = 0, runs: int = 4, home: Path | None = None, echo=print,
        backend: str = "local") -> dict:
    """`kills` sweeps, each killed once at a random moment and then resumed to its end."""
    from core.store import RunStore

    rng = random.Random(seed)
    home = Path(home or tempfile.mkdtemp(prefix="tailscope-driver-kills-"))
    os.environ["TAILSCOPE_HOME"] = str(home)
    store = RunStore(home)
    report = {"kills": [], "orphans": [], "lost": [], "failed": [], "completed": 0, "temp_files": [],
              "integrity": "", "home": str(home)}
    for k in range(kills):
        sweep_id = _sweep(store, k, runs, backend)
        kill = kill_once(store, sweep_id, MOMENTS[k % len(MOMENTS)], rng, backend)
        code = resume(home, sweep_id, backend)
        statuses = [r.status for r in store.get_sweep(sweep_id).runs]
        report["kills"].append({**kill, "resume_exit": code})
        report["orphans"] += kill["left"]
        report["failed"] += [f"{r.id}: {r.error}" for r in store.get_sweep(sweep_id).runs if r.status == "failed"]
        report["lost"] += [f"{r.id}: {r.status}" for r in store.get_sweep(sweep_id).runs
                           if r.status not in ("done", "failed")]
        report["completed"] += all(s == "done" for s in statuses)
        echo(f"kill {k + 1}/{kills} ({kill['moment']}): after {kill['after_s']:.1f} s, {kill['done_before']} of {runs} runs done, "
             f"{kill['processes']} processes started, {len(kill['left'])} left alive; resumed: "
             f"{statuses.count('done')} of {runs} done")
    report["temp_files"] = [str(p) for p in (home / "runs").rglob("*.tmp*")]
    with sqlite3.connect(home / "tailscope.db") as db:
        report["integrity"] = db.execute("PRAGMA integrity_check").fetchone()[0]
    report["ok"] = not (report["orphans"] or report["lost"] or report["failed"] or report["temp_files"]) \
        and report["integrity"] == "ok" and report["completed"] == kills
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=int, default=4, help="runs per sweep")
    parser.add_argument("--backend", default="local", choices=("local", "ray"))
    args = parser.parse_args()
    started = time.perf_counter()
    report = run(args.kills, args.seed, args.runs, backend=args.backend)
    print(f"\n{len(report['kills'])} driver kills in {time.perf_counter() - started:.0f} s: "
          f"{report['completed']} sweeps completed on resume, {len(report['lost'])} runs lost, "
          f"{len(report['failed'])} failed, {len(report['orphans'])} orphan processes, "
          f"{len(report['temp_files'])} temp files, integrity {report['integrity']}")
    for line in report["lost"] + report["failed"]:
        print(f"  {line}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

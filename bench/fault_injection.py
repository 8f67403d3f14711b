"""Fault injection: kill the background worker at random points, damage run files, and
count what is lost and what a person would see.

1. Kills. A fresh TAILSCOPE_HOME; small runs (wine MLP, digits small CNN: a second or two
   each) are queued and a background worker is started the way the app starts one
   (`ensure_worker`). The worker is SIGKILLed `--kills` times (seeded order): right after it
   claims a run, during training, while it evaluates and writes a run's files, during the
   embedding step, while idle, and at random moments from its start; the next submission
   starts a new one, as in the app.
2. Checks. The last worker drains the queue. Every queued run must be in the index in a
   final state (done, or failed with a reason that names the killed worker); every done
   run's config, metrics, history, arrays and weights read back and its progress no longer
   says it is busy; no temp file is left in a run folder; `PRAGMA integrity_check` is ok;
   the killed runs, queued again, finish.
3. Damage. One file of each of a few finished runs is truncated, overwritten with garbage,
   or (JSON) given another type or a section of another shape: every file kind once, every
   way at least once (`--full-damage`: every file every way). Then every run (the damaged
   ones, an untouched one, a failed one) is opened with `tailscope show`, `show --json`,
   `explain --n 2` and `runs --json` (subprocesses; the test suite's small version calls
   the same `main` in its own process) and the Results, Geometry, Calibration,
   Post-hoc and Gallery pages (Streamlit AppTest, the app's friendly-error mode on). A
   traceback, a Python exception or warning name, or a server path in what a person sees
   counts as a traceback shown; so does a page's generic "something went wrong" notice or
   an error that is not a damaged-file notice. A reader of a damaged file that does not
   name it counts as "damage not reported".

Usage: python bench/fault_injection.py [--kills 20] [--seed 0] [--full-damage] [--keep]
Exits 1 when a run is lost, a traceback is shown, a folder is half-written or the database
fails its integrity check. `tests/test_faults.py` runs a small version of the same.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MAIN = ROOT / "app" / "main.py"
POINTS = ("claimed", "training", "writing", "embedding", "idle", "random")
PAGES = ("results", "geometry", "calibration", "posthoc", "gallery")
# what can be done to each file kind; "embeddings" is the UMAP cache the worker writes
DAMAGE = {
    "eval.npz": ("truncate", "garbage"),
    "model.safetensors": ("truncate", "garbage"),
    "metrics.json": ("truncate", "garbage", "wrong-shape", "wrong-fields"),
    "history.json": ("truncate", "garbage", "wrong-shape", "wrong-fields"),
    "config.json": ("truncate", "garbage", "wrong-shape", "wrong-fields"),
    "embeddings": ("truncate", "garbage"),
}
# who must report each damaged file: CLI commands and pages that read it
READERS = {
    "eval.npz": ({"explain"}, set(PAGES)),
    "model.safetensors": ({"explain"}, {"gallery"}),
    "metrics.json": ({"show", "show --json", "explain"}, set(PAGES)),
    "history.json": ({"show", "show --json"}, set(PAGES)),
    "config.json": (set(), set()),  # the index row holds the config; the file is the archive copy
    "embeddings": (set(), set()),  # a cache: recomputed or reported, never a traceback
}
CONFIGS = (  # taken in turn; a second or two of training each
    {"data": {"source": "digits", "imbalance": {"profile": "exp", "ratio": 10}}, "model": {"name": "small_cnn", "width": 8},
     "loss": {"name": "ce"}, "train": {"epochs": 2, "batch_size": 64, "lr": 0.05, "min_steps": 0, "nc_every": 0}},
    {"data": {"source": "wine", "imbalance": {"profile": "exp", "ratio": 5}}, "model": {"name": "mlp", "hidden": 16},
     "loss": {"name": "ce"}, "train": {"epochs": 40, "batch_size": 32, "lr": 0.05, "min_steps": 0, "nc_every": 0}},
)
GENERIC_NOTICE = "Something went wrong on this page"
_EXCEPTION_NAME = re.compile(r"Traceback|File \"|\b[A-Z]\w*(?:Error|Exception|Warning)\b|BadZipFile|zlib\.error|"
                             r"SafetensorError|<module>|site-packages")


@dataclass
class Report:
    kills: list[dict[str, Any]] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    killed_pids: set[int] = field(default_factory=set)
    statuses: dict[str, str] = field(default_factory=dict)
    failed_reasons: Counter = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)  # "run: why"
    half_written: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # a finished run that still looks busy
    integrity: str = "not checked"
    requeued_done: int = 0
    damaged: list[dict[str, Any]] = field(default_factory=list)
    checks: int = 0  # CLI calls and page renders made after the damage
    shown: list[str] = field(default_factory=list)  # tracebacks / internals / non-friendly errors
    unreported: list[str] = field(default_factory=list)  # a damaged file a reader did not name
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (not (self.lost or self.shown or self.half_written or self.stale or self.unreported)
                and self.integrity == "ok")

    def lines(self) -> list[str]:
        points = Counter(k["point"] for k in self.kills)
        hit = Counter(k["hit"] for k in self.kills)
        done = sum(s == "done" for s in self.statuses.values())
        failed = sum(s == "failed" for s in self.statuses.values())
        out = [
            f"kills: {len(self.kills)} ({', '.join(f'{p} {n}' for p, n in sorted(points.items()))})",
            f"  the worker was: {', '.join(f'{h} {n}' for h, n in hit.most_common())}",
            f"runs queued: {len(self.queued)} (+{len(self.requeued)} re-queued after a kill)",
            f"  done {done}, failed {failed}, other {len(self.statuses) - done - failed}",
        ]
        out += [f"  failed {n}x: {reason}" for reason, n in self.failed_reasons.most_common()]
        out += [
            f"re-queued runs done: {self.requeued_done} of {len(self.requeued)}",
            f"lost: {len(self.lost)}" + "".join(f"\n  {x}" for x in self.lost),
            f"half-written folders: {len(self.half_written)}" + "".join(f"\n  {x}" for x in self.half_written),
            f"runs left looking busy: {len(self.stale)}" + "".join(f"\n  {x}" for x in self.stale),
            f"integrity_check: {self.integrity}",
            "damaged files: {} ({})".format(len(self.damaged), ", ".join(f"{d['file']} {d['mode']}" for d in self.damaged)),
            f"checks after damage: {self.checks} (CLI calls and page renders)",
            f"tracebacks shown: {len(self.shown)}" + "".join(f"\n  {x}" for x in self.shown),
            f"damage not reported: {len(self.unreported)}" + "".join(f"\n  {x}" for x in self.unreported),
            "time: " + ", ".join(f"{k} {v:.0f} s" for k, v in self.seconds.items()),
        ]
        return out


# --- phase 1: kills ------------------------------------------------------------------------
class Harness:
    def __init__(self, home: Path, rng: random.Random, report: Report, idle_exit_s: float = 60.0):
        from core.store import RunStore

        self.home, self.rng, self.report, self.idle_exit_s = home, rng, report, idle_exit_s
        self.store = RunStore(home)

    def queue(self, n: int = 1) -> None:
        from core.config import RunConfig

        for _ in range(n):
            i = len(self.report.queued)
            raw = {**CONFIGS[i % len(CONFIGS)], "name": f"fault {i}"}
            raw["train"] = {**raw["train"], "seed": i}
            self.report.queued.append(self.store.create_run(RunConfig.model_validate(raw)))

    def start_worker(self) -> int | None:
        """What the app does after queueing: start a worker unless one is alive."""
        from core.jobs import ensure_worker

        ensure_worker(self.store, idle_exit_s=self.idle_exit_s)
        try:
            return int((self.home / "worker.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def doing(self, pid: int) -> tuple[str | None, str]:
        """(run id, what) the worker `pid` is doing: claimed / train / evaluate / embedding /
        idle / starting."""
        for record in self.store.list_runs(("running", "done")):
            if record.worker_pid != pid:
                continue
            stage = (record.progress or {}).get("stage")
            if record.status == "running":
                return record.id, "claimed" if stage is None else stage
            if stage == "embedding":
                return record.id, "embedding"
        return None, "idle" if pid in self.store.live_workers() else "starting"

    def reached(self, point: str, pid: int) -> tuple[str | None, str] | None:
        run, what = self.doing(pid)
        wanted = {"claimed": "claimed", "training": "train", "writing": "evaluate", "embedding": "embedding",
                  "idle": "idle"}[point]
        if what != wanted:
            return None
        if point == "idle" and self.store.list_runs(("queued", "running")):
            return None
        return run, what

    def kill_once(self, point: str, timeout_s: float = 120.0) -> None:
        from core.store import pid_alive

        if point == "idle":
            self.wait_drained(timeout_s)
        elif not self.store.list_runs("queued"):
            self.queue(1)  # one at a time: the queue runs dry soon, so idle comes cheap
        pid = self.start_worker()
        if pid is None or not pid_alive(pid):
            self.report.kills.append({"point": point, "hit": "no worker started", "run": None})
            return
        started = time.monotonic()
        delay = self.rng.uniform(0.0, 8.0) if point == "random" else None
        extra = {"training": 0.1, "writing": 0.2}.get(point, 0.0)  # a little way into the stage
        timed_out = False
        while True:
            if delay is not None:
                if time.monotonic() - started >= delay:
                    break
            elif self.reached(point, pid):
                time.sleep(self.rng.uniform(0.0, extra))
                break
            if point not in ("idle", "random") and not self.store.list_runs("queued"):
                self.queue(1)  # the stage was missed on the last queued run: try the next one
            if time.monotonic() - started > timeout_s:
                timed_out = True
                break
            time.sleep(0.02)
        run, what = self.doing(pid)
        os.kill(pid, signal.SIGKILL)
        _reap(pid)
        self.report.killed_pids.add(pid)
        self.report.kills.append({"point": point, "hit": what + (" (timed out)" if timed_out else ""), "run": run,
                                  "pid": pid, "after_s": round(time.monotonic() - started, 2)})

    def wait_drained(self, timeout_s: float = 600.0) -> bool:
        """Until no run is queued or running (a dead worker's job is reaped by the next one)."""
        from core.store import pid_alive

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.store.list_runs(("queued", "running")):
                return True
            if not pid_alive(self.worker_pid()):
                self.start_worker()  # as a page's next submission would, when the worker died
            time.sleep(0.2)
        return False

    def wait_worker_exit(self, timeout_s: float = 120.0) -> None:
        from core.store import pid_alive

        deadline = time.monotonic() + timeout_s
        pid = self.worker_pid()
        while pid and pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid and pid_alive(pid):  # not expected: an idle worker exits by itself
            os.kill(pid, signal.SIGTERM)
            _reap(pid)
        _reap(pid)

    def worker_pid(self) -> int | None:
        try:
            return int((self.home / "worker.pid").read_text().strip())
        except (OSError, ValueError):
            return None


def _reap(pid: int | None, timeout_s: float = 10.0) -> None:
    """Wait for a killed child to end (it is ours: ensure_worker started it from here)."""
    from core.store import pid_alive

    if not pid:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:  # not our child, or already reaped
            if not pid_alive(pid):
                return
        time.sleep(0.01)


def kill_plan(rng: random.Random, kills: int, points: tuple[str, ...] | None = None) -> list[str]:
    """`points`, or `kills` moments of every kind in turn, in a random order where "idle"
    never follows "random" (whose run is still queued: idle would first take a whole run)."""
    plan = list(points) if points else [POINTS[i % len(POINTS)] for i in range(kills)]
    rng.shuffle(plan)
    rest = [p for p in plan if p != "idle"]
    for _ in range(len(plan) - len(rest)):
        rest.insert(rng.choice([k for k in range(len(rest) + 1) if k == 0 or rest[k - 1] != "random"]), "idle")
    return rest


# --- phase 2: checks -----------------------------------------------------------------------
def drain(h: Harness, when: str, exit: bool = True) -> None:
    """Let a worker run the queue dry (and exit); a run still queued or running then is lost."""
    if not h.wait_drained():
        h.report.lost += [f"{r.id}: still {r.status} {when}" for r in h.store.list_runs(("queued", "running"))]
    if exit:
        h.wait_worker_exit()


def requeue_killed(h: Harness, extra: int = 0) -> None:
    """Queue the runs a kill failed again (as the Runs page's re-run does), and `extra` new
    runs when the damage phase needs more finished ones; let them finish."""
    from core.config import RunConfig

    report, store = h.report, h.store
    for record in store.list_runs("failed"):
        if record.id in report.queued:
            raw = {**record.config, "name": f"{record.name} (re-run)"}
            report.requeued.append(store.create_run(RunConfig.model_validate(raw)))
    h.queue(extra)
    h.start_worker()  # unless the last one still runs
    drain(h, "after the re-runs")
    report.requeued_done = sum(store.get(i).status == "done" for i in report.requeued)


def check_store(h: Harness) -> None:
    """Every run is in the index in a final state (a re-run: done); done runs read back;
    nothing is half-written or left looking busy; the database is intact."""
    from safetensors.numpy import load_file

    from core.artifacts import EvalArtifacts
    from core.store import RunNotFound

    report, store = h.report, h.store
    for run_id in report.queued + report.requeued:
        try:
            record = store.get(run_id)
        except RunNotFound:
            report.lost.append(f"{run_id}: missing from the index")
            continue
        if run_id in report.queued:
            report.statuses[run_id] = record.status
        if record.status in ("queued", "running"):
            report.lost.append(f"{run_id}: stuck in {record.status}")
        elif record.status == "failed" and run_id in report.requeued:
            report.lost.append(f"{run_id}: a re-queued run failed: {record.error}")
        elif record.status == "failed":
            reason = re.sub(r"\(\d+\)", "(PID)", record.error or "no reason")
            named = any(f"({pid})" in (record.error or "") for pid in report.killed_pids)
            report.failed_reasons[reason if named else f"NOT A KILLED WORKER: {reason}"] += 1
            if not named:
                report.lost.append(f"{run_id}: failed without naming a killed worker: {record.error}")
        elif record.status == "done":
            folder = store.run_dir(run_id)
            if (record.progress or {}).get("stage") != "done":
                report.stale.append(f"{run_id}: done, but its progress still says {record.progress}")
            try:
                assert store.config_of(run_id) and store.metrics(run_id).get("accuracy") is not None
                assert store.history(run_id), "empty history"
                EvalArtifacts.load(folder / "eval.npz")
                assert load_file(str(folder / "model.safetensors")), "no tensors"
                assert record.summary, "no summary in the index"
            except Exception as exc:  # noqa: BLE001 - anything unreadable is a half-written run
                report.half_written.append(f"{run_id} (done): {type(exc).__name__}: {exc}"[:300])
        else:
            report.lost.append(f"{run_id}: {record.status}, which no one asked for")
    for temp in sorted(p for p in store.runs_dir.rglob("*") if ".tmp" in p.name):
        report.half_written.append(f"leftover temp file {temp.relative_to(store.runs_dir)}")
    with sqlite3.connect(store.db_path) as db:
        report.integrity = ", ".join(row[0] for row in db.execute("PRAGMA integrity_check"))


def complete_runs(store) -> list[str]:
    """Finished runs with their map computed: the damage phase's material."""
    return [r.id for r in store.list_runs("done")
            if (r.progress or {}).get("stage") == "done" and list((store.run_dir(r.id) / "embeddings").glob("*.npy"))]


# --- phase 3: damage -----------------------------------------------------------------------
def damage_plan(rng: random.Random, full: bool = False,
                files: tuple[str, ...] = tuple(DAMAGE)) -> list[tuple[str, str]]:
    """Every file kind once, each way at least once on a file that something reads; `full`: every pair."""
    if full:
        return [(f, m) for f in files for m in DAMAGE[f]]
    while True:
        plan = [(f, rng.choice(DAMAGE[f])) for f in files]
        read = [m for f, m in plan if READERS[f] != (set(), set())]  # each way once on a file someone reads
        if set(read) == {m for f in files for m in DAMAGE[f]}:
            return plan


def damage(folder: Path, file: str, mode: str, rng: random.Random) -> str:
    """Damage one file of a run folder; returns the file's name as readers report it."""
    if file == "embeddings":
        path = sorted((folder / "embeddings").glob("*.npy"))[0]
    else:
        path = folder / file
    data = path.read_bytes()
    if mode == "truncate":
        path.write_bytes(data[: len(data) // 3])
    elif mode == "garbage":
        path.write_bytes(rng.randbytes(max(len(data), 64)))
    elif mode == "wrong-shape":  # valid JSON, another type than the file holds
        path.write_text('{"not": "a list"}' if file == "history.json" else '[1, 2, 3]')
    elif mode == "wrong-fields":  # the right type, with a section missing or of another type
        value = json.loads(data)
        if file == "history.json":
            value = list(range(len(value)))
        elif file == "metrics.json":
            key = rng.choice(["dataset", "per_class", "accuracy"])
            value = {k: v for k, v in value.items() if k != key} if key == "dataset" else {**value, key: "n/a"}
        else:
            value = {**value, "data": 5}
        path.write_text(json.dumps(value))
    return path.name


def scan(text: str, home: Path, allowed: tuple[str, ...] = ()) -> list[str]:
    """Signs of internals in what a person sees: tracebacks, exception names, server paths."""
    for a in allowed:
        text = text.replace(a, "")
    hits = [m.group(0) for m in _EXCEPTION_NAME.finditer(text)]
    for path in {str(ROOT), str(home), sys.prefix, "/usr/lib/python"}:
        if path and path in text:
            hits.append(f"path {path}")
    return hits


def _cli(args: list[str], home: Path, cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("tailscope")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "core.cli"]
    env = {k: v for k, v in os.environ.items() if k != "TAILSCOPE_RAISE_ERRORS"}
    env["TAILSCOPE_HOME"] = str(home)
    return subprocess.run(cmd + args, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def _cli_here(args: list[str], home: Path, cwd: Path) -> subprocess.CompletedProcess:
    """The same call through `core.cli.main` in this process, its output captured as a
    subprocess's would be (a traceback that escapes, or one logged, lands in stderr): what a
    person reads is the same, without an interpreter and torch to start for each call."""
    from core.cli import main

    out, err = io.StringIO(), io.StringIO()
    logged = logging.StreamHandler(err)
    logging.getLogger().addHandler(logged)
    here = os.getcwd()
    os.chdir(cwd)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(args)
            except SystemExit as exc:  # argparse's own exit
                code = exc.code if isinstance(exc.code, int) else 1
            except Exception:  # noqa: BLE001 - what escapes main is a traceback a person would see
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(here)
        logging.getLogger().removeHandler(logged)
    return subprocess.CompletedProcess(["tailscope", *args], code, out.getvalue(), err.getvalue())


def _done(call, *args) -> Future:
    future: Future = Future()
    future.set_result(call(*args))
    return future


def check_cli(h: Harness, cases: dict[str, tuple[str, str] | None], out_dir: Path, pool) -> list:
    """Start every CLI call on `pool` (None: call each in this process, now); returns what
    `judge_cli` needs once they have ended."""
    submit = pool.submit if pool is not None else lambda _call, *args: _done(_cli_here, *args)
    jobs = [("runs --json", None, None, None, submit(_cli, ["runs", "--json"], h.home, out_dir))]
    for run_id, case in cases.items():
        status = h.store.get(run_id).status
        for name, args in (("show", ["show", run_id]), ("show --json", ["show", run_id, "--json"]),
                           ("explain", ["explain", run_id, "--n", "2", "--out", str(out_dir / f"{run_id}.html")])):
            jobs.append((name, run_id, case, status, submit(_cli, args, h.home, out_dir)))
    return jobs


def judge_cli(h: Harness, jobs: list, out_dir: Path) -> None:
    """A call succeeds, or says in one line which file of which run is damaged, or (explain
    of a failed run) that only finished runs can be explained; never a traceback."""
    report, home = h.report, h.home
    for name, run_id, case, status, future in jobs:
        proc = future.result()
        report.checks += 1
        what = name if run_id is None else f"{name} {run_id} ({'untouched' if case is None else ' '.join(case)}, {status})"
        for hit in scan(proc.stdout + proc.stderr, home, allowed=(str(out_dir / f"{run_id}.html"),)):
            report.shown.append(f"{what}: {hit}")
        err = proc.stderr.strip()
        if name == "runs --json":
            try:
                listed = {r["id"] for r in json.loads(proc.stdout)}
            except ValueError:
                listed = set()
            if proc.returncode != 0 or not set(report.queued + report.requeued) <= listed:
                report.shown.append(f"{what}: exit {proc.returncode}, {len(listed)} runs listed: {err[-300:]!r}")
            continue
        must_report = case is not None and name in READERS[case[0]][0]
        if proc.returncode == 0:
            if must_report:
                report.unreported.append(f"{what}: exit 0")
            if name == "show --json":
                try:
                    json.loads(proc.stdout)
                except ValueError:
                    report.shown.append(f"{what}: exit 0 with an incomplete JSON document")
        elif name == "explain" and status != "done" and err.count("\n") == 0 and "only finished runs" in err:
            pass  # a failed run cannot be explained: one line says so
        elif not (err.count("\n") == 0 and "damaged" in err and "re-run" in err):
            report.shown.append(f"{what}: exit {proc.returncode} without a one-line reason: {err[-300:]!r}")
        elif case is None or case[0] not in err:
            report.shown.append(f"{what}: names the wrong file: {err!r}")


def check_pages(h: Harness, cases: dict[str, tuple[str, str] | None]) -> None:
    from streamlit.testing.v1 import AppTest

    from app import state

    report, home = h.report, h.home
    for run_id, case in cases.items():
        status = h.store.get(run_id).status
        at = AppTest.from_file(str(MAIN), default_timeout=300)
        at.session_state[state.RUN_ID] = run_id
        at.run()
        for page in PAGES:
            what = f"page {page} {run_id} ({'untouched' if case is None else ' '.join(case)}, {status})"
            try:
                at.switch_page(f"../pages/{page}.py")
                at.run()
            except Exception as exc:  # noqa: BLE001 - AppTest's own timeout or a script crash
                report.shown.append(f"{what}: {type(exc).__name__}: {exc}"[:300])
                at = AppTest.from_file(str(MAIN), default_timeout=300)
                at.session_state[state.RUN_ID] = run_id
                continue
            report.checks += 1
            for e in at.exception:
                report.shown.append(f"{what}: exception shown: {e.value}"[:300])
            errors = [e.value for e in at.error]
            for text in errors + [w.value for w in at.warning]:
                for hit in scan(str(text), home):
                    report.shown.append(f"{what}: {hit} in {str(text)[:120]!r}")
            for text in errors:  # the one error a page may show: which file is damaged
                if GENERIC_NOTICE in text:
                    report.shown.append(f"{what}: the generic error notice (an unexpected exception)")
                elif "damaged" not in text:
                    report.shown.append(f"{what}: an error that is not a damaged-file notice: {text[:200]!r}")
            named = [_shown(t) for t in errors if "damaged" in t]
            must_report = case is not None and page in READERS[case[0]][1]
            if must_report:
                if not any(case[0] in t for t in named):
                    report.unreported.append(f"{what}: no 'damaged' notice naming {case[0]} (errors: {errors})")
                elif case[0] != "model.safetensors" and not {"damaged.rerun", "damaged.delete"} <= {
                        b.key for b in at.button}:  # the model is the gallery's own read: a notice
                    report.unreported.append(f"{what}: no re-run / delete buttons")
            elif named:
                report.shown.append(f"{what}: a damaged-file notice for a file this page does not read: {named}"[:300])


def _shown(markdown: str) -> str:
    """What a reader sees of escaped markdown: backslash escapes resolved, word joiners dropped."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


def run_damage(h: Harness, full: bool = False, files: tuple[str, ...] = tuple(DAMAGE), cli_here: bool = False) -> None:
    """Damage files of finished runs and open every run every way a person can (`cli_here`:
    the CLI calls in this process, after the pages, rather than as subprocesses beside them)."""
    report, store, rng = h.report, h.store, h.rng
    complete = complete_runs(store)
    plan = damage_plan(rng, full, files)
    if len(complete) < len(plan) + 1:
        raise SystemExit(f"only {len(complete)} finished runs with embeddings; {len(plan) + 1} needed")
    rng.shuffle(complete)
    cases: dict[str, tuple[str, str] | None] = {}
    for run_id, (file, mode) in zip(complete, plan):
        named = damage(store.run_dir(run_id), file, mode, rng)
        report.damaged.append({"run": run_id, "file": file, "mode": mode, "path": named})
        cases[run_id] = (file, mode)
    cases[complete[len(plan)]] = None  # an untouched finished run
    failed = [r.id for r in store.list_runs("failed")]
    if failed:
        cases[failed[0]] = None  # and a run a kill failed
    t = time.monotonic()
    # the CLI calls (subprocesses, two at a time) run while the pages render here
    with tempfile.TemporaryDirectory(prefix="tailscope-fault-out-") as out, ThreadPoolExecutor(2) as pool:
        jobs = [] if cli_here else check_cli(h, cases, Path(out), pool)
        check_pages(h, cases)
        report.seconds["pages"] = time.monotonic() - t
        if cli_here:
            jobs = check_cli(h, cases, Path(out), None)
        judge_cli(h, jobs, Path(out))
    report.seconds["pages and CLI"] = time.monotonic() - t


# --- driver --------------------------------------------------------------------------------
def run(kills: int = 20, seed: int = 0, home: Path | None = None, points: tuple[str, ...] | None = None,
        full_damage: bool = False, files: tuple[str, ...] | None = tuple(DAMAGE), log=print,
        cli_here: bool = False) -> Report:
    """The whole experiment in `home` (a fresh folder); returns the report. `points`: the
    kill moments (default: `kills` of them, every kind in turn, shuffled); `files`: the file
    kinds to damage (None: no damage phase); `cli_here`: see `run_damage`."""
    saved = {k: os.environ.get(k) for k in ("TAILSCOPE_RAISE_ERRORS", "TAILSCOPE_HOME")}
    os.environ.pop("TAILSCOPE_RAISE_ERRORS", None)  # the app's friendly-error path, as users see it
    home = Path(home or tempfile.mkdtemp(prefix="tailscope-faults-"))
    os.environ["TAILSCOPE_HOME"] = str(home)
    rng = random.Random(seed)
    report = Report()
    h = Harness(home, rng, report)
    start = time.monotonic()
    try:
        plan = kill_plan(rng, kills, points)
        for i, point in enumerate(plan, 1):
            h.kill_once(point)
            k = report.kills[-1]
            log(f"kill {i:>2}/{len(plan)}: {point:<9} -> worker {k.get('pid')} was {k['hit']} "
                f"{k['run'] or ''} after {k.get('after_s', 0):.1f} s")
        report.seconds["kills"] = time.monotonic() - start
        t = time.monotonic()
        h.idle_exit_s = 3.0
        drain(h, "after the kills", exit=False)  # the re-runs go to the same, warm worker
        need = len(damage_plan(random.Random(0), full_damage, files)) + 1 if files else 0
        have = len(complete_runs(h.store)) + len(h.store.list_runs("failed"))  # a re-run makes one more
        requeue_killed(h, extra=max(0, need - have))
        check_store(h)
        report.seconds["drain and checks"] = time.monotonic() - t
        if files:
            run_damage(h, full_damage, files, cli_here)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        pid = h.worker_pid()
        if pid:
            from core.store import pid_alive

            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
            _reap(pid)
    report.seconds["total"] = time.monotonic() - start
    report.half_written = sorted(set(report.half_written))
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--full-damage", action="store_true", help="every (file, way) pair, not every file once")
    parser.add_argument("--keep", action="store_true", help="keep the TAILSCOPE_HOME it made (printed)")
    parser.add_argument("--driver-kills", type=int, default=0,
                        help="then kill this many sweep drivers (bench/driver_kills.py) and resume their sweeps")
    args = parser.parse_args()
    logging.basicConfig(format="%(name)s: %(message)s")  # the app's own error log stays visible
    import streamlit.runtime.scriptrunner_utils.script_run_context as bare  # its logger, set up on import

    logging.getLogger(bare.__name__).addFilter(lambda r: "ScriptRunContext" not in r.msg)  # bare-mode chatter
    home = Path(tempfile.mkdtemp(prefix="tailscope-faults-"))
    try:
        report = run(args.kills, args.seed, home, full_damage=args.full_damage)
        print()
        print("\n".join(report.lines()))
        print("OK: nothing lost, no traceback shown" if report.ok else "FAILED: see above")
        if args.driver_kills:
            sys.path.insert(0, str(ROOT / "bench"))
            from driver_kills import run as kill_drivers

            drivers = kill_drivers(args.driver_kills, args.seed, home=home / "drivers")
            print(f"driver kills: {len(drivers['kills'])}, sweeps completed on resume {drivers['completed']}, runs "
                  f"lost {len(drivers['lost'])}, failed {len(drivers['failed'])}, orphan processes "
                  f"{len(drivers['orphans'])}, integrity {drivers['integrity']}")
            report_ok = report.ok and drivers["ok"]
        else:
            report_ok = report.ok
    finally:
        if args.keep:
            print(f"store kept at {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
    return 0 if report_ok else 1


if __name__ == "__main__":
    sys.exit(main())

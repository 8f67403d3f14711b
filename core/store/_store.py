"""The run store: a SQLite index (WAL) plus one append-only folder per run.

`runs/<id>/` holds `config.json`, `history.json`, `eval.npz` (no pickle), `model.safetensors`
and `metrics.json`. Files are written atomically and the database row is updated last,
so a crash never leaves a run that looks finished but is half-written. The same table is
the job queue: queued -> running -> done | failed | cancelled.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import time
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.artifacts import EvalArtifacts
from core.paths import tailscope_home
from core.store._annotations import ANNOTATIONS, AnnotationDamaged, annotation_file, annotation_problem
from core.store._files import RunFileDamaged, RunFolder, read_json, write_json_atomic

__all__ = ["ANNOTATIONS", "AnnotationDamaged", "RunStore", "RunRecord", "ExperimentRecord", "SweepRecord", "RunNotFound", "RunFileDamaged", "STATUSES",
           "FINISHED", "EXPERIMENT_PREFIX", "SWEEP_PREFIX", "pid_alive"]

STATUSES = ("queued", "running", "done", "failed", "cancelled")
FINISHED = ("done", "failed", "cancelled")
HEARTBEAT_STALE_S = 120.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    started REAL,
    finished REAL,
    dataset TEXT NOT NULL,
    method TEXT NOT NULL,
    config TEXT NOT NULL,
    progress TEXT,
    summary TEXT,
    error TEXT,
    parent TEXT,
    worker_pid INTEGER,
    heartbeat REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_status ON runs(status, created);
CREATE TABLE IF NOT EXISTS workers (pid INTEGER PRIMARY KEY, started REAL NOT NULL, heartbeat REAL NOT NULL);
CREATE TABLE IF NOT EXISTS experiments (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created REAL NOT NULL,
    dataset TEXT NOT NULL,
    method TEXT NOT NULL,
    config TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sweeps (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created REAL NOT NULL,
    spec TEXT NOT NULL,
    spec_hash TEXT NOT NULL,
    driver_pid INTEGER,
    backend TEXT
);
"""
_MIGRATIONS = (
    ("runs", "experiment", "ALTER TABLE runs ADD COLUMN experiment TEXT"),
    ("runs", "queue", "ALTER TABLE runs ADD COLUMN queue TEXT"),  # NULL: the background worker's; else a sweep's
    ("runs", "config_hash", "ALTER TABLE runs ADD COLUMN config_hash TEXT"),
    ("experiments", "sweep", "ALTER TABLE experiments ADD COLUMN sweep TEXT"),
    ("experiments", "cell", "ALTER TABLE experiments ADD COLUMN cell TEXT"),  # the grid settings (JSON)
)
EXPERIMENT_PREFIX = "exp-"
SWEEP_PREFIX = "sweep-"


_DAMAGE = (ValueError, KeyError, EOFError, OSError, zipfile.BadZipFile, zlib.error)


class RunNotFound(KeyError):
    def __str__(self) -> str:
        key = str(self.args[0])
        what = "experiment" if key.startswith(EXPERIMENT_PREFIX) else "sweep" if key.startswith(SWEEP_PREFIX) else "run"
        return f"no {what} {self.args[0]!r}; `tailscope runs` lists them"


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped) is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


@dataclass(frozen=True)
class RunRecord:
    id: str
    name: str
    status: str
    created: float
    updated: float
    started: float | None
    finished: float | None
    dataset: str
    method: str
    config: dict[str, Any]
    progress: dict[str, Any] | None
    summary: dict[str, Any] | None
    error: str | None
    parent: str | None
    worker_pid: int | None
    experiment: str | None = None  # the experiment this run belongs to (None: a lone run)
    queue: str | None = None  # who runs it: None, the background worker; a sweep id, that sweep's driver

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "status": self.status, "created": _iso(self.created),
            "started": _iso(self.started), "finished": _iso(self.finished), "dataset": self.dataset,
            "method": self.method, "error": self.error, "parent": self.parent, "experiment": self.experiment,
            "progress": self.progress, "summary": self.summary,
        }


@dataclass(frozen=True)
class ExperimentRecord:
    """A config repeated over folds and/or seeds: its runs are normal runs that point here."""

    id: str
    name: str
    created: float
    dataset: str
    method: str
    config: dict[str, Any]
    runs: tuple[RunRecord, ...]
    sweep: str | None = None  # the sweep this experiment is a grid cell of
    cell: dict[str, str] | None = None  # that cell's settings: axis -> value

    @property
    def status(self) -> str:
        """done when every run is; failed or cancelled when one is and none still runs."""
        statuses = {r.status for r in self.runs}
        for state in ("running", "queued", "failed", "cancelled"):
            if state in statuses:
                return state
        return "done" if statuses else "queued"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "status": self.status, "created": _iso(self.created),
                "dataset": self.dataset, "method": self.method, "evaluation": self.config.get("evaluation"),
                "sweep": self.sweep, "cell": self.cell, "runs": [r.id for r in self.runs]}


@dataclass(frozen=True)
class SweepRecord:
    """A base config crossed with a grid: one experiment per cell."""

    id: str
    name: str
    created: float
    spec: dict[str, Any]
    spec_hash: str
    driver_pid: int | None
    backend: str | None
    experiments: tuple[ExperimentRecord, ...]

    @property
    def runs(self) -> tuple[RunRecord, ...]:
        return tuple(r for e in self.experiments for r in e.runs)

    @property
    def status(self) -> str:
        """running while its driver lives and runs wait; "stopped" when they wait for a driver
        that is gone (resume it); otherwise as its experiments."""
        statuses = {r.status for r in self.runs}
        if statuses & {"queued", "running"}:
            return "running" if pid_alive(self.driver_pid) else "stopped"
        for state in ("failed", "cancelled"):
            if state in statuses:
                return state
        return "done" if statuses else "queued"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "status": self.status, "created": _iso(self.created),
                "backend": self.backend, "grid": self.spec.get("grid"),
                "experiments": [e.id for e in self.experiments], "runs": [r.id for r in self.runs]}


def _iso(ts: float | None) -> str | None:
    return None if ts is None else time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(ts))


def _new_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def code_version() -> str | None:
    """The git commit of the code that produced a run, when it runs from a checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


class RunStore:
    def __init__(self, home: Path | str | None = None):
        self.home = Path(home).resolve() if home else tailscope_home()
        self.home.mkdir(parents=True, exist_ok=True)
        self.runs_dir = self.home / "runs"
        self.runs_dir.mkdir(exist_ok=True)
        self.db_path = self.home / "tailscope.db"
        with self._connect() as db:
            db.executescript(_SCHEMA)
            for table, column, statement in _MIGRATIONS:  # stores made by earlier versions
                if column not in {row["name"] for row in db.execute(f"PRAGMA table_info({table})")}:
                    db.execute(statement)

    # --- connection ------------------------------------------------------------------------
    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.row_factory = sqlite3.Row
            yield db
        finally:
            db.close()

    def _update(self, run_id: str, **fields: Any) -> None:
        fields["updated"] = time.time()
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self._connect() as db:
            cur = db.execute(f"UPDATE runs SET {cols} WHERE id = ?", (*fields.values(), run_id))
            if cur.rowcount == 0:
                raise RunNotFound(run_id)

    @staticmethod
    def _record(row: sqlite3.Row) -> RunRecord:
        load = lambda s: json.loads(s) if s else None  # noqa: E731
        return RunRecord(
            row["id"], row["name"], row["status"], row["created"], row["updated"], row["started"],
            row["finished"], row["dataset"], row["method"], json.loads(row["config"]), load(row["progress"]),
            load(row["summary"]), row["error"], row["parent"], row["worker_pid"], row["experiment"],
            row["queue"],
        )

    # --- runs ------------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        if not run_id or "/" in run_id or "\\" in run_id or run_id.startswith("."):
            raise RunNotFound(run_id)
        return self.runs_dir / run_id

    def create_run(self, config, *, status: str = "queued", parent: str | None = None,
                   method: str | None = None, experiment: str | None = None, queue: str | None = None) -> str:
        """Write the run folder's config first, then the index row (the row is the commit)."""
        from core.config import config_hash  # here: core.config builds every registry, and readers stay light

        run_id = _new_id()
        folder = self.run_dir(run_id)
        folder.mkdir(parents=True)
        payload = json.loads(config.to_json())
        write_json_atomic(folder / "config.json", payload)
        write_json_atomic(folder / "meta.json", {"code_version": code_version(), "created": _iso(time.time())})
        now = time.time()
        # a run created as running (a derived run being saved) belongs to this process, so a
        # reap elsewhere meanwhile does not take it for one whose worker died
        owner, heartbeat = (os.getpid(), now) if status == "running" else (None, None)
        with self._connect() as db:
            db.execute(
                "INSERT INTO runs (id, name, status, created, updated, dataset, method, config, parent, experiment,"
                " worker_pid, heartbeat, queue, config_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, config.name or run_id, status, now, now, config.data.source,
                 method or config.method_label, json.dumps(payload), parent, experiment, owner, heartbeat, queue,
                 config_hash(payload)),
            )
        return run_id

    # --- experiments -----------------------------------------------------------------------
    def create_experiment(self, config, *, sweep: str | None = None, cell: dict[str, str] | None = None) -> str:
        """Queue every run of `config.experiment_runs()` under one new experiment id (a sweep's
        runs wait for that sweep's driver, not for the background worker)."""
        exp_id = EXPERIMENT_PREFIX + _new_id()
        payload = json.loads(config.to_json())
        with self._connect() as db:
            db.execute("INSERT INTO experiments (id, name, created, dataset, method, config, sweep, cell)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (exp_id, config.name or exp_id, time.time(), config.data.source, config.method_label,
                        json.dumps(payload), sweep, None if cell is None else json.dumps(cell)))
        for run_config in config.experiment_runs():
            self.create_run(run_config, experiment=exp_id, queue=sweep)
        return exp_id

    def _experiments(self, where: str, args: tuple) -> list[ExperimentRecord]:
        """Experiments matching `where`, with their runs, in two queries."""
        with self._connect() as db:
            rows = db.execute(f"SELECT * FROM experiments WHERE {where} ORDER BY created DESC, id DESC", args).fetchall()
            marks = ", ".join("?" * len(rows))
            runs = db.execute(f"SELECT * FROM runs WHERE experiment IN ({marks}) ORDER BY created, rowid",
                              [r["id"] for r in rows]).fetchall() if rows else []
        by_experiment: dict[str, list[RunRecord]] = {}
        for run in runs:
            by_experiment.setdefault(run["experiment"], []).append(self._record(run))
        return [ExperimentRecord(r["id"], r["name"], r["created"], r["dataset"], r["method"], json.loads(r["config"]),
                                 tuple(by_experiment.get(r["id"], ())), r["sweep"],
                                 json.loads(r["cell"]) if r["cell"] else None) for r in rows]

    def get_experiment(self, exp_id: str) -> ExperimentRecord:
        found = self._experiments("id = ?", (exp_id,))
        if not found:
            raise RunNotFound(exp_id)
        return found[0]

    def list_experiments(self) -> list[ExperimentRecord]:
        """Newest first."""
        return self._experiments("1 = 1", ())

    # --- sweeps ----------------------------------------------------------------------------
    def create_sweep(self, name: str, spec: dict[str, Any], spec_hash: str, backend: str | None = None) -> str:
        sweep_id = SWEEP_PREFIX + _new_id()
        with self._connect() as db:
            db.execute("INSERT INTO sweeps (id, name, created, spec, spec_hash, backend) VALUES (?, ?, ?, ?, ?, ?)",
                       (sweep_id, name, time.time(), json.dumps(spec), spec_hash, backend))
        return sweep_id

    def find_sweep(self, spec_hash: str) -> str | None:
        """The newest sweep of this exact spec: running the same file again resumes it."""
        with self._connect() as db:
            row = db.execute("SELECT id FROM sweeps WHERE spec_hash = ? ORDER BY created DESC LIMIT 1",
                             (spec_hash,)).fetchone()
        return row["id"] if row else None

    def get_sweep(self, sweep_id: str) -> SweepRecord:
        with self._connect() as db:
            row = db.execute("SELECT * FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
        if row is None:
            raise RunNotFound(sweep_id)
        experiments = sorted(self._experiments("sweep = ?", (sweep_id,)), key=lambda e: (e.created, e.id))
        return SweepRecord(row["id"], row["name"], row["created"], json.loads(row["spec"]), row["spec_hash"],
                           row["driver_pid"], row["backend"], tuple(experiments))

    def list_sweeps(self) -> list[SweepRecord]:
        """Newest first."""
        with self._connect() as db:
            ids = [r["id"] for r in db.execute("SELECT id FROM sweeps ORDER BY created DESC, id DESC")]
        return [self.get_sweep(i) for i in ids]

    def set_sweep_driver(self, sweep_id: str, pid: int | None, backend: str | None = None) -> None:
        with self._connect() as db:
            db.execute("UPDATE sweeps SET driver_pid = ?, backend = COALESCE(?, backend) WHERE id = ?",
                       (pid, backend, sweep_id))

    def requeue(self, run_id: str) -> None:
        """A failed or cancelled run back to queued (a resumed sweep trains it again)."""
        with self._connect() as db:
            db.execute("UPDATE runs SET status = 'queued', error = NULL, progress = NULL, started = NULL, "
                       "finished = NULL, worker_pid = NULL, heartbeat = NULL, cancel_requested = 0, updated = ? "
                       "WHERE id = ? AND status IN ('failed', 'cancelled', 'running')", (time.time(), run_id))

    def delete_experiment(self, exp_id: str) -> None:
        """The experiment and its runs (refused while one of them runs)."""
        experiment = self.get_experiment(exp_id)
        if any(r.status == "running" for r in experiment.runs):
            raise ValueError(f"experiment {exp_id} has a running run; cancel it first")
        for run in experiment.runs:
            self.delete(run.id)
        with self._connect() as db:
            db.execute("DELETE FROM experiments WHERE id = ?", (exp_id,))

    def get(self, run_id: str) -> RunRecord:
        with self._connect() as db:
            row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(run_id)
        return self._record(row)

    def list_runs(self, status: str | tuple[str, ...] | None = None) -> list[RunRecord]:
        """Newest first."""
        query, args = "SELECT * FROM runs", ()
        if status:
            statuses = (status,) if isinstance(status, str) else tuple(status)
            query += f" WHERE status IN ({', '.join('?' * len(statuses))})"
            args = statuses
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY created DESC, id DESC", args).fetchall()
        return [self._record(r) for r in rows]

    def rename(self, run_id: str, name: str) -> None:
        name = name.strip()
        if not name:
            raise ValueError("a run name cannot be empty")
        self._update(run_id, name=name[:200])

    def delete(self, run_id: str) -> None:
        record = self.get(run_id)
        if record.status == "running":
            raise ValueError(f"run {run_id} is running; cancel it first")
        with self._connect() as db:
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        shutil.rmtree(self.run_dir(run_id), ignore_errors=True)

    # --- queue -----------------------------------------------------------------------------
    def claim_next(self, worker_pid: int) -> RunRecord | None:
        """Atomically move the oldest queued run to running for this worker."""
        return self.claim(None, worker_pid)

    def claim(self, run_id: str | None, worker_pid: int) -> RunRecord | None:
        """Atomically move `run_id` (or the oldest queued run) from queued to running."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            if run_id is None:
                row = db.execute("SELECT id FROM runs WHERE status = 'queued' AND queue IS NULL"
                                 " ORDER BY created, id LIMIT 1").fetchone()
            else:
                row = db.execute("SELECT id FROM runs WHERE status = 'queued' AND id = ?", (run_id,)).fetchone()
            if row is None:
                db.execute("COMMIT")
                return None
            now = time.time()
            db.execute("UPDATE runs SET status = 'running', started = ?, updated = ?, worker_pid = ?, heartbeat = ?"
                       " WHERE id = ?", (now, now, worker_pid, now, row["id"]))
            db.execute("COMMIT")
        return self.get(row["id"])

    def touch(self, run_ids: list[str]) -> None:
        """A heartbeat for runs a sweep driver is waiting on, so nobody reaps them as dead."""
        if run_ids:
            with self._connect() as db:
                db.execute(f"UPDATE runs SET heartbeat = ? WHERE id IN ({', '.join('?' * len(run_ids))})",
                           (time.time(), *run_ids))

    def set_progress(self, run_id: str, progress: dict[str, Any]) -> None:
        self._update(run_id, progress=json.dumps(progress), heartbeat=time.time())

    def finish(self, run_id: str, summary: dict[str, Any], progress: dict[str, Any] | None = None) -> None:
        """Mark the run done; `progress` (the step that follows, if any) is set in the same
        update, so a worker killed right after this never leaves a done run saying "evaluate"."""
        extra = {} if progress is None else {"progress": json.dumps(progress)}
        self._update(run_id, status="done", finished=time.time(), summary=json.dumps(summary), error=None, **extra)

    def fail(self, run_id: str, reason: str) -> None:
        self._update(run_id, status="failed", finished=time.time(), error=reason[:2000])

    def mark_cancelled(self, run_id: str, reason: str = "cancelled by the user") -> None:
        self._update(run_id, status="cancelled", finished=time.time(), error=reason)

    def request_cancel(self, run_id: str) -> str:
        """Queued runs are cancelled at once; running ones at the worker's next check."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                db.execute("ROLLBACK")
                raise RunNotFound(run_id)
            now = time.time()
            if row["status"] == "queued":
                db.execute("UPDATE runs SET status = 'cancelled', finished = ?, updated = ?, error = ? WHERE id = ?",
                           (now, now, "cancelled before it started", run_id))
            elif row["status"] == "running":
                db.execute("UPDATE runs SET cancel_requested = 1, updated = ? WHERE id = ?", (now, run_id))
            db.execute("COMMIT")
        return self.get(run_id).status

    def cancel_requested(self, run_id: str) -> bool:
        with self._connect() as db:
            row = db.execute("SELECT cancel_requested FROM runs WHERE id = ?", (run_id,)).fetchone()
        return bool(row and row["cancel_requested"])

    def reap_dead(self) -> list[str]:
        """Mark running jobs whose worker is gone as failed, with the reason; a sweep's run whose
        driver is gone goes back to its sweep's queue instead, so resuming the sweep trains it
        again (it did nothing wrong: its driver died). A finished run
        whose worker died while mapping its features (the step after `finish`) stays done;
        its progress stops saying "embedding", so pages compute the map on demand instead of
        waiting for a worker that is gone."""
        reaped = []
        for record in self.list_runs("running"):
            with self._connect() as db:
                hb = db.execute("SELECT heartbeat FROM runs WHERE id = ?", (record.id,)).fetchone()["heartbeat"]
            stale = hb is not None and time.time() - hb > HEARTBEAT_STALE_S
            if not pid_alive(record.worker_pid) or stale:
                if record.queue is not None:  # a sweep's run whose driver died: back in the sweep's queue
                    self.requeue(record.id)
                else:
                    self.fail(record.id, f"the worker process ({record.worker_pid}) stopped while running this job "
                              "(killed, crashed or out of memory); re-run it from the Runs page")
                reaped.append(record.id)
                if record.worker_pid is not None:  # its writer is gone: what it left half-written goes too
                    self._remove_temp_files(record.id)
        with self._connect() as db:
            embedding = db.execute("SELECT id, worker_pid, progress FROM runs WHERE status = 'done'"
                                   " AND progress LIKE '%embedding%'").fetchall()
        for row in embedding:
            progress = json.loads(row["progress"])
            if progress.get("stage") == "embedding" and not pid_alive(row["worker_pid"]):
                self._update(row["id"], progress=json.dumps({**progress, "stage": "done", "embedding": "interrupted"}))
                self._remove_temp_files(row["id"])  # the map it was writing, half-written
        return reaped

    def _remove_temp_files(self, run_id: str) -> None:
        for temp in self.run_dir(run_id).rglob("*.tmp*"):
            temp.unlink(missing_ok=True)

    # --- workers ---------------------------------------------------------------------------
    def worker_heartbeat(self, pid: int) -> None:
        now = time.time()
        with self._connect() as db:
            db.execute("INSERT INTO workers (pid, started, heartbeat) VALUES (?, ?, ?) "
                       "ON CONFLICT(pid) DO UPDATE SET heartbeat = excluded.heartbeat", (pid, now, now))

    def worker_gone(self, pid: int) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM workers WHERE pid = ?", (pid,))

    def live_workers(self) -> list[int]:
        with self._connect() as db:
            rows = db.execute("SELECT pid, heartbeat FROM workers").fetchall()
        alive = [r["pid"] for r in rows if pid_alive(r["pid"]) and time.time() - r["heartbeat"] < HEARTBEAT_STALE_S]
        for r in rows:
            if r["pid"] not in alive:
                self.worker_gone(r["pid"])
        return alive

    # --- artefacts -------------------------------------------------------------------------
    def _read_json(self, run_id: str, name: str, default: Any, kind: type) -> Any:
        """A run's JSON file; missing: `default`; unreadable or of the wrong shape: RunFileDamaged."""
        try:
            value = read_json(self.run_dir(run_id) / name, default=default)
        except _DAMAGE as exc:
            raise RunFileDamaged(run_id, name, _reason(exc)) from None
        if not isinstance(value, kind):
            raise RunFileDamaged(run_id, name, f"expected a JSON {kind.__name__}")
        return value

    def config_of(self, run_id: str) -> dict[str, Any]:
        return self._read_json(run_id, "config.json", None, dict)

    def history(self, run_id: str) -> list[dict[str, Any]]:
        rows = self._read_json(run_id, "history.json", [], list)
        bad = next((i for i, row in enumerate(rows) if not isinstance(row, dict)), None)
        if bad is not None:
            raise RunFileDamaged(run_id, "history.json", f"entry {bad + 1} is not an object")
        return rows

    def folder(self, run_id: str) -> RunFolder:
        """The run's folder as a writer of its training files."""
        return RunFolder(self.run_dir(run_id))

    def write_history(self, run_id: str, rows: list[dict[str, Any]]) -> None:
        self.folder(run_id).write_history(rows)

    def metrics(self, run_id: str) -> dict[str, Any]:
        metrics = self._read_json(run_id, "metrics.json", {}, dict)
        problem = _metrics_problem(metrics)
        if problem:
            raise RunFileDamaged(run_id, "metrics.json", problem)
        return metrics

    def write_metrics(self, run_id: str, metrics: dict[str, Any]) -> None:
        self.folder(run_id).write_metrics(metrics)

    def annotation(self, run_id: str, name: str) -> dict[str, Any]:
        """What a person saved with a run (`name` in ANNOTATIONS: the operating point, case
        reviews, label issues); {} when nothing is. Kept apart from training's files, which a
        re-run or a sweep commit rewrites. Checked on every read (`annotation_problem`, class
        numbers against the run's classes): AnnotationDamaged names the file, its path and
        what to do."""
        path = self.run_dir(run_id) / annotation_file(name)
        try:
            value = self._read_json(run_id, path.name, {}, dict)
        except RunFileDamaged as exc:
            raise AnnotationDamaged(run_id, name, exc.reason, path) from None
        problem = annotation_problem(name, value, self._num_classes(run_id)) if value else None
        if problem:
            raise AnnotationDamaged(run_id, name, problem, path)
        return value

    def write_annotation(self, run_id: str, name: str, value: dict[str, Any]) -> None:
        """Save an annotation; ValueError for a value its check refuses (nothing is written)."""
        self.get(run_id)  # RunNotFound for a run that is gone
        problem = annotation_problem(name, value, self._num_classes(run_id))
        if problem:
            raise ValueError(f"not saved: {problem} (in the {ANNOTATIONS[name].what})")
        write_json_atomic(self.run_dir(run_id) / annotation_file(name), value)

    def set_aside_annotation(self, run_id: str, name: str) -> Path | None:
        """Rename an annotation file (a damaged one, so the run starts afresh without it) to
        `<name>.json.damaged-<time>` beside it; nothing is deleted. The new path, or None
        when there was no file."""
        path = self.run_dir(run_id) / annotation_file(name)
        aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            path.rename(aside)
        except FileNotFoundError:
            return None
        return aside

    def _num_classes(self, run_id: str) -> int | None:
        """The run's class count from its metrics, None while unknown (not finished, damaged)."""
        try:
            names = (self.metrics(run_id).get("dataset") or {}).get("class_names")
        except RunFileDamaged:
            return None
        return len(names) if isinstance(names, list) else None

    def artifacts(self, run_id: str) -> EvalArtifacts:
        path = self.run_dir(run_id) / "eval.npz"
        if not path.exists():
            raise FileNotFoundError(f"run {run_id} has no evaluation arrays (status {self.get(run_id).status})")
        try:
            return EvalArtifacts.load(path)
        except _DAMAGE as exc:
            raise RunFileDamaged(run_id, "eval.npz", _reason(exc)) from None

    def write_artifacts(self, run_id: str, artifacts: EvalArtifacts) -> None:
        self.folder(run_id).write_artifacts(artifacts)

    def write_weights(self, run_id: str, model) -> None:
        self.folder(run_id).write_weights(model)

    def load_weights(self, run_id: str, model) -> None:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = self.run_dir(run_id) / "model.safetensors"
        if not path.exists():
            raise FileNotFoundError(f"run {run_id} has no stored model weights")
        try:
            model.load_state_dict(load_file(str(path)))
        except (*_DAMAGE, RuntimeError, SafetensorError) as exc:
            raise RunFileDamaged(run_id, "model.safetensors", _reason(exc)) from None


# The parts of metrics.json that readers index into, checked on every read: a file that parses
# but has another shape is damaged too (named as such), not a KeyError deep inside a page.
_METRICS_FIELDS: dict[str, type | tuple[type, ...]] = {
    "dataset": dict, "per_class": list, "groups": list, "ci": dict, "calibration": (dict, type(None)),
    "geometry": (dict, type(None)), "training": dict, "environment": dict, "posthoc": dict,
}
_METRICS_NUMBERS = ("accuracy", "balanced_accuracy", "f1_macro", "macro_f1", "gmean", "worst_class_recall", "mcc",
                    "cohen_kappa", "ece")


def _metrics_problem(metrics: dict[str, Any]) -> str | None:
    """Why `metrics` (read from metrics.json) cannot be what a run wrote, or None."""
    if not metrics:
        return None  # none written yet
    dataset = metrics.get("dataset")
    if not isinstance(dataset, dict):
        return "it has no 'dataset' section"
    for key in ("class_names", "groups"):
        if not isinstance(dataset.get(key), list):
            return f"'dataset.{key}' is not a list"
    if not isinstance(dataset.get("modality", ""), str):
        return "'dataset.modality' is not text"
    for key, kind in _METRICS_FIELDS.items():
        if key in metrics and not isinstance(metrics[key], kind):
            return f"'{key}' has the wrong type"
    for key in _METRICS_NUMBERS:
        if key in metrics and not isinstance(metrics[key], (int, float, type(None))):
            return f"'{key}' is not a number"
    for key in ("per_class", "groups"):
        if any(not isinstance(row, dict) for row in metrics.get(key, [])):
            return f"an entry of '{key}' is not an object"
    return None


def _reason(exc: BaseException) -> str:
    """A short cause without the library's internals: "truncated or not a valid archive"."""
    if isinstance(exc, (zipfile.BadZipFile, EOFError, zlib.error)):
        return "truncated or not a valid archive"
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON at line {exc.lineno}"
    if isinstance(exc, KeyError):
        return f"the array {exc.args[0]!r} is missing"
    if isinstance(exc, UnicodeDecodeError):
        return "not text"
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__

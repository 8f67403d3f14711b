"""The SQLite index (WAL) under a store's home: the schema and its migrations, one
connection per operation, and the run table's rows read back as records. Every part of the
store (queue, run files, annotations, experiments and sweeps) builds on this one class."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.paths import tailscope_home
from core.store._records import RunNotFound, RunRecord

__all__ = ["StoreIndex", "code_version"]

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


def code_version() -> str | None:
    """The git commit of the code that produced a run, when it runs from a checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


class StoreIndex:
    """A home folder with `runs/` and `tailscope.db`: the connection and the run table."""

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

    # --- the run table ---------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        if not run_id or "/" in run_id or "\\" in run_id or run_id.startswith("."):
            raise RunNotFound(run_id)
        return self.runs_dir / run_id

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

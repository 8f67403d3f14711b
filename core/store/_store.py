"""The run store: a SQLite index (WAL) plus one folder per run.

`runs/<id>/` holds `config.json` and `meta.json` (written here, before the index row),
then training's `history.json`, `metrics.json`, `eval.npz` (no pickle) and
`model.safetensors`, and the annotations people save (`operating_point.json`,
`reviews.json`, `label_issues.json`). Files are written atomically and the database row is
updated last, so a crash never leaves a run that looks finished but is half-written.

`RunStore` is one object with one API, assembled from its parts: the index (`_index`), the
job queue (`_queue`), the run files (`_run_files`) and the annotations (`_annotations`);
creating and deleting runs, experiments and sweeps lives here.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from typing import Any

from core.store._annotations import AnnotationsMixin
from core.store._files import write_json_atomic
from core.store._index import code_version
from core.store._queue import QueueMixin
from core.store._records import (
    EXPERIMENT_PREFIX, SWEEP_PREFIX, ExperimentRecord, RunNotFound, RunRecord, SweepRecord, iso_time, new_id,
)

__all__ = ["RunStore"]


class RunStore(QueueMixin, AnnotationsMixin):
    """Runs, experiments and sweeps under one home folder (`TAILSCOPE_HOME` by default)."""

    # --- runs ------------------------------------------------------------------------------
    def create_run(self, config, *, status: str = "queued", parent: str | None = None,
                   method: str | None = None, experiment: str | None = None, queue: str | None = None) -> str:
        """Write the run folder's config first, then the index row (the row is the commit)."""
        from core.config import config_hash  # here: core.config builds every registry, and readers stay light

        run_id = new_id()
        folder = self.run_dir(run_id)
        folder.mkdir(parents=True)
        payload = json.loads(config.to_json())
        write_json_atomic(folder / "config.json", payload)
        write_json_atomic(folder / "meta.json", {"code_version": code_version(), "created": iso_time(time.time())})
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

    # --- experiments -----------------------------------------------------------------------
    def create_experiment(self, config, *, sweep: str | None = None, cell: dict[str, str] | None = None) -> str:
        """Queue every run of `config.experiment_runs()` under one new experiment id (a sweep's
        runs wait for that sweep's driver, not for the background worker)."""
        exp_id = EXPERIMENT_PREFIX + new_id()
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

    def delete_experiment(self, exp_id: str) -> None:
        """The experiment and its runs (refused while one of them runs)."""
        experiment = self.get_experiment(exp_id)
        if any(r.status == "running" for r in experiment.runs):
            raise ValueError(f"experiment {exp_id} has a running run; cancel it first")
        for run in experiment.runs:
            self.delete(run.id)
        with self._connect() as db:
            db.execute("DELETE FROM experiments WHERE id = ?", (exp_id,))

    # --- sweeps ----------------------------------------------------------------------------
    def create_sweep(self, name: str, spec: dict[str, Any], spec_hash: str, backend: str | None = None) -> str:
        sweep_id = SWEEP_PREFIX + new_id()
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

"""The run table as a job queue: queued -> running -> done | failed | cancelled.

A run with `queue` NULL waits for the local background worker (`python -m core.jobs worker`);
a sweep's run carries the sweep's id and is taken only by that sweep's driver. Workers and
drivers beat a heartbeat; `reap_dead` fails a run whose worker is gone and puts a sweep's run
whose driver is gone back in its sweep's queue."""

from __future__ import annotations

import json
import time
from typing import Any

from core.store._index import StoreIndex
from core.store._records import RunNotFound, RunRecord, pid_alive

__all__ = ["QueueMixin", "HEARTBEAT_STALE_S"]

HEARTBEAT_STALE_S = 120.0


class QueueMixin(StoreIndex):
    """Claiming, progress, finishing and cancelling runs; recovery of dead workers."""

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

    def requeue(self, run_id: str) -> None:
        """A failed or cancelled run back to queued (a resumed sweep trains it again)."""
        with self._connect() as db:
            db.execute("UPDATE runs SET status = 'queued', error = NULL, progress = NULL, started = NULL, "
                       "finished = NULL, worker_pid = NULL, heartbeat = NULL, cancel_requested = 0, updated = ? "
                       "WHERE id = ? AND status IN ('failed', 'cancelled', 'running')", (time.time(), run_id))

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

"""The local worker: takes queued runs from the store and executes them one at a time.

One worker per `TAILSCOPE_HOME` (a file lock); the app starts one when it queues a run
and none is alive, and `tailscope worker` starts one by hand.
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.config import RunConfig
from core.jobs._pipeline import (
    apply_posthoc_steps, compute_embeddings, dataset_info, made_row_checks, nc_snapshot_metrics, summarize_run,
    with_attacked_predictions,
)
from core.jobs._multilabel import multilabel_dataset_info, summarize_multilabel_run
from core.jobs._scratch import scratch_folder
from core.store import RunFolder, RunNotFound, RunRecord, RunStore, pid_alive
from core.train import Cancelled, Diverged, StageOneStore, prepare_run_data, train_run

__all__ = ["execute_run", "produce_run", "headline", "failure_reason", "environment", "worker_loop", "ensure_worker",
           "worker_running"]

log = logging.getLogger("tailscope.worker")
PROGRESS_EVERY_S = 0.5  # progress and the growing history reach the store at most this often
CANCEL_EVERY_S = 0.2  # how often the loop's cancel check asks the store (a query each time)
LOCK_PATIENCE_S = 2.0  # how long a starting worker waits for the lock before leaving it to another worker


def environment(device: str, config: RunConfig) -> dict[str, Any]:
    """What else decides a run's exact numbers: library versions, device and threads."""
    import platform

    import numpy
    import sklearn
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
            "scikit_learn": sklearn.__version__, "device": device, "threads": torch.get_num_threads(),
            "deterministic": config.train.deterministic}


def produce_run(config: RunConfig, folder: RunFolder, *, progress=None, should_stop=None,
                stage_one: StageOneStore | None = None) -> dict[str, Any]:
    """Train one run and write its files (history as it goes, then arrays, weights and the
    metrics last) into `folder`; returns the metrics. No store needed, so a process-pool or
    Ray task can run it in a scratch folder and ship the files back. `stage_one`: where the
    processes of one pool keep first stages for the two-stage runs among them."""
    splits = prepare_run_data(config)
    multilabel = config.data.multilabel
    folder.write_metrics({"dataset": multilabel_dataset_info(splits, config) if multilabel
                          else dataset_info(splits, config)})
    history: list[dict[str, Any]] = []
    written = [-math.inf]

    def on_epoch(row: dict[str, Any]) -> None:  # the live view's rows; a tiny epoch does not rewrite the file
        history.append(row)
        if time.monotonic() - written[0] >= PROGRESS_EVERY_S:
            written[0] = time.monotonic()
            folder.write_history(history)

    result = train_run(config, splits=splits, progress=progress, on_epoch=on_epoch, should_stop=should_stop,
                       snapshot_metrics=nc_snapshot_metrics, stage_one=stage_one)
    folder.write_history(history or result.history)  # every row; table baselines record their single fit here
    if multilabel:  # the config refuses post-hoc steps, attacks and resamplers for these
        folder.write_artifacts(result.artifacts)
        if result.model is not None:  # a multi-label baseline has no weights to store
            folder.write_weights(result.model)
        folder.write_made_rows(None)
        metrics = summarize_multilabel_run(result.artifacts, splits, config)
        metrics.update({"device": result.device, "training": result.info,
                        "environment": environment(result.device, config)})
        folder.write_metrics(metrics)
        return metrics
    artifacts = with_attacked_predictions(apply_posthoc_steps(result, config), result, splits, config, progress)
    if getattr(splits, "ids_test", None) is not None:  # each test case keeps its identifier (patient_id, file, row)
        artifacts = artifacts.with_case_ids(splits.ids_test, splits.id_name)
    folder.write_artifacts(artifacts)
    if result.model is not None:  # table baselines have no weights to store
        folder.write_weights(result.model)
    folder.write_made_rows(result.made_rows)
    metrics = summarize_run(artifacts, splits, config)
    metrics.update({"device": result.device, "synthetic_rows": result.synthetic_count, "training": result.info,
                    "synthetic_checks": made_row_checks(result.made_rows, splits, config),
                    "environment": environment(result.device, config)})
    folder.write_metrics(metrics)
    return metrics


def headline(metrics: dict[str, Any]) -> dict[str, float]:
    """The numbers the run index keeps for listings."""
    return {k: metrics[k] for k in ("accuracy", "balanced_accuracy", "f1_macro", "gmean", "map", "map_tail")
            if k in metrics}


def failure_reason(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, Diverged) else f"{type(exc).__name__}: {exc}"


def _every(seconds: float, ask: Callable[[], bool]) -> Callable[[], bool]:
    """`ask`, asked at most every `seconds` (its last answer in between): the loop checks for a
    cancel every few batches, and a tiny batch must not wait on a database query each time."""
    last = [-math.inf, False]

    def answer() -> bool:
        now = time.monotonic()
        if now - last[0] >= seconds:
            last[0], last[1] = now, ask()
        return last[1]

    return answer


def _maps_eagerly(store: RunStore, record: RunRecord) -> bool:
    """Whether the worker draws the run's 2-D map as it finishes, so Geometry opens on it at
    once: a lone run, and the first run of an experiment. Its other seeds and folds differ by
    chance alone; the page draws one of those on request (PCA meanwhile). On small runs the
    map costs as much as the training (0.1-2.5 s of UMAP), so each further seed finishes
    that much sooner. (Baselines, whose metrics carry no geometry, have nothing to map.)"""
    if record.experiment is None:
        return True
    try:
        return store.get_experiment(record.experiment).runs[0].id == record.id
    except RunNotFound:  # deleted meanwhile: nothing will look at it
        return False


def execute_run(store: RunStore, record: RunRecord, *, embeddings: bool = True,
                echo=None, stage_one: StageOneStore | None = None) -> str:
    """Run one claimed job to a final state; returns that state. Never raises for job errors.
    `stage_one`: first stages kept by the worker's earlier runs, for a two-stage run to start from."""
    run_id = record.id
    last = [0.0]

    def progress(info: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_S or info.get("stage") == "evaluate":
            last[0] = now
            store.set_progress(run_id, info)
            if echo:
                echo(info)

    try:
        config = RunConfig.model_validate(record.config)
        metrics = produce_run(config, store.folder(run_id), progress=progress,
                              should_stop=_every(CANCEL_EVERY_S, lambda: store.cancel_requested(run_id)),
                              stage_one=stage_one)
        mapping = embeddings and bool(metrics.get("geometry")) and _maps_eagerly(store, record)
        store.finish(run_id, headline(metrics), progress={"stage": "embedding" if mapping else "done", "fraction": 1.0})
    except Cancelled as exc:
        store.mark_cancelled(run_id, str(exc))
        return "cancelled"
    except Exception as exc:  # a failed job must never take the worker down
        log.exception("run %s failed", run_id)
        store.fail(run_id, failure_reason(exc))
        (store.run_dir(run_id) / "error.log").write_text(traceback.format_exc())
        return "failed"
    if mapping:  # `finish` said "embedding"; a kill from here on is reaped as an interrupted map
        try:
            compute_embeddings(store, run_id)
        except Exception:  # the run itself is done; the page can compute it on demand
            log.exception("embedding for %s failed", run_id)
        finally:
            store.set_progress(run_id, {"stage": "done", "fraction": 1.0})
    return "done"


class _Lock:
    """An exclusive, non-blocking lock file: held while a worker lives."""

    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None

    def acquire(self, blocking: bool = False, patience_s: float = 0.0) -> bool:
        """Take the lock; without `blocking`, keep trying for `patience_s` seconds (a probe
        holds it for microseconds, a live worker for good)."""
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + patience_s
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(self.fd)
                    self.fd = None
                    return False
                time.sleep(0.05)

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def worker_running(store: RunStore) -> bool:
    """Whether a worker holds this store's worker lock (probed by taking it for a moment)."""
    lock = _Lock(store.home / "worker.lock")
    if lock.acquire():
        lock.release()
        return False
    return True


def worker_loop(store: RunStore, *, idle_exit_s: float | None = None, poll_s: float = 0.5,
                max_jobs: int | None = None, embeddings: bool = True, echo=None) -> int:
    """Run queued jobs until idle for `idle_exit_s` (forever when None). Returns jobs run,
    or -1 when another worker already serves this store.

    Two races with `ensure_worker` are closed: a starting worker that finds the lock taken
    waits a moment, since a probe (`worker_running`) holds it only that long; and an idle
    worker retires under the spawn lock, taking a job queued meanwhile or else giving up its
    lock and pid file before any submission can probe again, so no job is left queued with
    a worker that was about to exit. First stages are kept while the worker lives, so cRT
    queued after plain training on the same settings starts from its network."""
    lock = _Lock(store.home / "worker.lock")
    if not lock.acquire(patience_s=LOCK_PATIENCE_S):
        return -1
    pid = os.getpid()
    done = 0
    idle_since = time.monotonic()
    kept = scratch_folder("stage-one")
    try:
        store.reap_dead()
        while max_jobs is None or done < max_jobs:
            store.worker_heartbeat(pid)
            record = store.claim_next(pid)
            if record is None and idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
                record = _retire_unless_queued(store, lock, pid)
                if record is None:
                    break
            if record is None:
                time.sleep(poll_s)
                continue
            if echo:
                echo({"stage": "start", "run": record.id, "name": record.name})
            execute_run(store, record, embeddings=embeddings, echo=echo, stage_one=StageOneStore(kept))
            done += 1
            idle_since = time.monotonic()
    finally:
        store.worker_gone(pid)
        lock.release()
        shutil.rmtree(kept, ignore_errors=True)
    return done


def _retire_unless_queued(store: RunStore, lock: _Lock, pid: int) -> RunRecord | None:
    """The idle worker's last look, under the spawn lock `ensure_worker` probes under: a job
    queued meanwhile is taken; otherwise the pid file (if it names this worker) and the
    worker lock are given up before the spawn lock is, so the next submission starts a new
    worker instead of trusting this one."""
    spawn = _Lock(store.home / "spawn.lock")
    spawn.acquire(blocking=True)
    try:
        record = store.claim_next(pid)
        if record is None:
            pid_file = store.home / "worker.pid"
            try:
                if int(pid_file.read_text().strip()) == pid:
                    pid_file.unlink()
            except (OSError, ValueError):
                pass
            store.worker_gone(pid)
            lock.release()
        return record
    finally:
        spawn.release()


def ensure_worker(store: RunStore, idle_exit_s: float = 600) -> bool:
    """Start a background worker unless one is alive or starting; True when one was started.

    Checking and spawning happen under one lock, and the spawned pid is recorded, so ten
    quick submissions (from pages or the CLI) start one process, not ten that race for the
    worker lock while the first is still importing torch."""
    store.reap_dead()
    spawn = _Lock(store.home / "spawn.lock")
    spawn.acquire(blocking=True)
    try:
        pid_file = store.home / "worker.pid"
        try:
            starting = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            starting = None
        if worker_running(store) or pid_alive(starting):
            return False
        log_path = store.home / "worker.log"
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "core.jobs", "worker", "--home", str(store.home), "--idle-exit", str(idle_exit_s)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                env={**os.environ, "TAILSCOPE_HOME": str(store.home)},
            )
        pid_file.write_text(str(proc.pid))
        return True
    finally:
        spawn.release()

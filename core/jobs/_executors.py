"""Executors: where a sweep's runs are trained. One interface, two engines.

A task trains one run in a scratch folder (`run_task`) and returns its files as bytes, so
no task ever opens the SQLite store: the driver commits what each task returns. `local`
is a pool of processes on this machine; `ray` (an optional extra) sends one task per run
to a Ray cluster. Nothing else knows which one ran.
"""

from __future__ import annotations

import os
import tempfile
import time
import traceback
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Protocol

__all__ = ["Executor", "LocalExecutor", "run_task", "create_executor", "BACKENDS"]

BACKENDS = ("local", "ray")


def run_task(config_json: str, uploads: dict[str, bytes] | None = None) -> dict[str, Any]:
    """Train one run from its config JSON in a scratch folder; returns {"files": {name:
    bytes}, "seconds": ...} or, when the run itself fails, {"error": reason} (an error of the
    run is an answer, not a crash: retrying it would fail the same way). `uploads` carries the
    uploaded data files a remote machine does not have."""
    from core.config import RunConfig
    from core.jobs._worker import failure_reason, produce_run
    from core.store import RunFolder

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tailscope-task-") as scratch:
        previous = os.environ.get("TAILSCOPE_HOME")
        if uploads:  # this machine may not share the driver's disk: bring the data along
            folder = Path(scratch) / "home" / "uploads"
            folder.mkdir(parents=True)
            for name, data in uploads.items():
                (folder / name).write_bytes(data)
            os.environ["TAILSCOPE_HOME"] = str(folder.parent)
        try:
            run = RunFolder(Path(scratch) / "run")
            produce_run(RunConfig.model_validate_json(config_json), run)
            return {"files": run.read_files(), "seconds": time.perf_counter() - started}
        except Exception as exc:
            return {"error": failure_reason(exc), "traceback": traceback.format_exc(),
                    "seconds": time.perf_counter() - started}
        finally:
            if uploads:
                if previous is None:
                    os.environ.pop("TAILSCOPE_HOME", None)
                else:
                    os.environ["TAILSCOPE_HOME"] = previous


class Executor(Protocol):
    """Submit tasks, collect the finished ones, cancel; `name` is stored with the sweep."""

    name: str
    workers: int

    def submit(self, config_json: str, uploads: dict[str, bytes] | None = None) -> Any: ...

    def finished(self, handles: Iterable[Any], timeout: float) -> list[tuple[Any, dict[str, Any]]]: ...

    def cancel(self, handle: Any) -> None: ...

    def shutdown(self) -> None: ...


def _limit_threads(threads: int) -> None:
    """Each pool process gets its share of the cores, so N processes do not fight over all of
    them: torch's own pools and the BLAS/OpenMP pools numpy and scikit-learn use (already
    loaded by the time this runs, so limited through threadpoolctl, not the environment)."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # already fixed by earlier parallel work in this process
        pass
    os.environ["OMP_NUM_THREADS"] = str(threads)
    global _THREAD_LIMITS
    _THREAD_LIMITS = threadpool_limits(threads)  # kept for the life of the process


_THREAD_LIMITS = None


class LocalExecutor:
    """A pool of worker processes on this machine (default: one per core), each with its
    share of the cores as torch threads unless `threads` says otherwise."""

    name = "local"

    def __init__(self, workers: int | None = None, threads: int | None = None):
        cores = os.cpu_count() or 1
        self.workers = max(1, workers or cores)
        self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=get_context("spawn"),
                                         initializer=_limit_threads,
                                         initargs=(max(1, threads or cores // self.workers),))

    def submit(self, config_json: str, uploads: dict[str, bytes] | None = None) -> Future:
        return self._pool.submit(run_task, config_json)  # same disk: the uploads are already here

    def finished(self, handles: Iterable[Future], timeout: float) -> list[tuple[Future, dict[str, Any]]]:
        done, _ = wait(list(handles), timeout=timeout, return_when=FIRST_COMPLETED)
        out = []
        for future in done:
            try:
                out.append((future, future.result()))
            except Exception as exc:  # the process died (killed, out of memory)
                out.append((future, {"error": f"the worker process stopped ({type(exc).__name__}); run it again"}))
        return out

    def cancel(self, handle: Future) -> None:
        handle.cancel()  # a task already running finishes; its result is then ignored

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def create_executor(backend: str, workers: int | None = None, ray_address: str | None = None) -> Executor:
    if backend == "local":
        return LocalExecutor(workers)
    if backend == "ray":
        from core.jobs._ray import RayExecutor

        return RayExecutor(address=ray_address, workers=workers)
    raise ValueError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")

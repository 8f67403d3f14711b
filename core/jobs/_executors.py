"""Executors: where a sweep's runs are trained. One interface, two engines.

A task trains one run in a scratch folder (`core.jobs._task.run_task`) and returns its files
as bytes, so no task ever opens the SQLite store: the driver commits what each task returns. `local`
is a pool of processes on this machine; `ray` (an optional extra) sends one task per run
to a Ray cluster. Nothing else knows which one ran.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import Any, Protocol

from core.child_process import pool_initializer
from core.jobs._scratch import scratch_folder
from core.jobs._task import run_task

__all__ = ["Executor", "LocalExecutor", "create_executor", "BACKENDS"]

BACKENDS = ("local", "ray")


class Executor(Protocol):
    """Submit tasks, collect the finished ones, cancel; `name` is stored with the sweep."""

    name: str
    workers: int

    def submit(self, config_json: str, uploads: dict[str, bytes] | None = None) -> Any: ...

    def finished(self, handles: Iterable[Any], timeout: float) -> list[tuple[Any, dict[str, Any]]]: ...

    def cancel(self, handle: Any) -> None: ...

    def shutdown(self) -> None: ...


class LocalExecutor:
    """A pool of worker processes on this machine (default: one per core), each with its
    share of the cores as torch threads unless `threads` says otherwise.

    Each task gets a stop file in the executor's own folder: `cancel` creates it and the
    task stops between batches (a Future cannot stop a task that has started), so its
    worker process is free for the next run at once; `shutdown` removes the folder, which
    stops every task still running. The folder also keeps each network's first stage for
    the pool's two-stage runs on the same settings (`core.train.StageOneStore`): cRT beside
    plain cross-entropy on the same seed reads the trained network instead of training it again."""

    name = "local"

    def __init__(self, workers: int | None = None, threads: int | None = None):
        cores = os.cpu_count() or 1
        self.workers = max(1, workers or cores)
        self._stops = scratch_folder("stop")
        self._stop_files: dict[Future, str] = {}
        self._numbers = itertools.count()
        self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=get_context("spawn"),
                                         initializer=pool_initializer,
                                         initargs=(max(1, threads or cores // self.workers), os.getpid()))

    def submit(self, config_json: str, uploads: dict[str, bytes] | None = None) -> Future:
        stop_file = os.path.join(self._stops, f"{next(self._numbers)}.stop")
        future = self._pool.submit(run_task, config_json, None, stop_file,  # same disk: the uploads are here
                                   os.path.join(self._stops, "stage-one"))
        self._stop_files[future] = stop_file
        future.add_done_callback(lambda done: self._stop_files.pop(done, None))
        return future

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
        if not handle.cancel():  # already running: ask it to stop; its result is then ignored
            stop_file = self._stop_files.get(handle)
            if stop_file is not None:
                try:
                    open(stop_file, "w").close()
                except OSError:  # shut down already: the task has been told to stop
                    pass

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        shutil.rmtree(self._stops, ignore_errors=True)  # tasks still running see their folder gone and stop


def create_executor(backend: str, workers: int | None = None, ray_address: str | None = None) -> Executor:
    if backend == "local":
        return LocalExecutor(workers)
    if backend == "ray":
        from core.jobs._ray import RayExecutor

        return RayExecutor(address=ray_address, workers=workers)
    raise ValueError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")

"""The Ray executor: one Ray task per run, on this machine or on an existing cluster.

Ray is an optional extra (`pip install "tailscope[ray]"`); nothing imports this module
unless a sweep asks for `--backend ray`. Each task runs `run_task` (train one run in a
scratch folder, return its files as bytes), so the cluster never touches the store: the
driver on this machine commits what comes back.

- Where: `address` (`--ray-address`), else `$RAY_ADDRESS`, else a fresh local Ray started
  here (`address="local"`, never a cluster some other program left running; pass "auto" for
  the one `ray start` made on this machine). A Ray already initialised in this process is
  reused as it is.
- Resources: one CPU per task; one GPU as well when the cluster has GPUs and the run asks
  for `train.device: cuda` or `auto` (so an `auto` run on a GPU cluster waits for a GPU
  rather than training on a CPU). `workers` is the cluster's CPU count unless given; given,
  it sizes a local Ray this executor starts (an existing cluster places tasks on its free CPUs).
- Failures: a task whose worker process or node dies is retried (`max_retries`); a run that
  fails inside (`run_task` returns {"error": ...}) is an answer and is not retried.
- Uploads: each uploaded file goes into the object store once (`ray.put`) and travels with
  every task that reads it, so the nodes need no shared disk.
- The code: every node needs the same Tailscope and environment (e.g. `pip install .[ray]`
  there), or pass `runtime_env={"working_dir": ...}` to ship the code with the job.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

from core.jobs._task import limit_threads, run_task

__all__ = ["RayExecutor", "INSTALL_HINT", "import_ray"]

INSTALL_HINT = 'the ray backend needs Ray: pip install "tailscope[ray]" (or pip install ray==2.60.0)'
MAX_RETRIES = 3  # a task whose worker or node died is tried this many more times


def import_ray():
    """Ray, quiet (no usage reporting), or ImportError saying how to install it."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # read when ray is imported and started
    try:
        import ray
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    return ray


def _in_worker(task: Callable[..., dict[str, Any]], config_json: str, names: list[str], *blobs: bytes) -> dict[str, Any]:
    """What runs on a Ray worker: one run, with as many torch threads as the task has CPUs
    (Ray resolved each upload's object reference into its bytes)."""
    import ray

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    limit_threads(max(1, int(cpus)))
    return task(config_json, dict(zip(names, blobs, strict=True)) or None)


class RayExecutor:
    """Executor protocol on Ray: `submit` returns an ObjectRef, `finished` waits on them."""

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None, *, max_retries: int = MAX_RETRIES,
                 runtime_env: dict[str, Any] | None = None, task: Callable[..., dict[str, Any]] = run_task):
        ray = import_ray()
        self._ray = ray
        address = address or os.environ.get("RAY_ADDRESS") or None
        self._started = False  # connected (or started a local Ray) here: shutdown() undoes exactly that
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {
                "address": address or "local", "include_dashboard": False, "log_to_driver": False,
                "configure_logging": True, "logging_level": logging.WARNING, "runtime_env": runtime_env}
            if address is None and workers:
                kwargs["num_cpus"] = workers
            try:
                ray.init(**kwargs)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise ConnectionError(f"cannot reach the Ray cluster at {address or 'this machine'}: {exc}") from None
            self._started = True
        resources = ray.cluster_resources()
        self.workers = max(1, workers or int(resources.get("CPU", 1)))
        self._gpus = resources.get("GPU", 0) > 0
        self._task = task
        self._remote = ray.remote(num_cpus=1, max_retries=max_retries, retry_exceptions=False)(_in_worker)
        self._puts: dict[str, tuple[bytes, Any]] = {}  # upload name -> (its bytes, their object ref)
        self._pending: set[Any] = set()

    def _wants_gpu(self, config_json: str) -> bool:
        if not self._gpus:
            return False
        return json.loads(config_json).get("train", {}).get("device", "auto") in ("auto", "cuda")

    def _ref(self, name: str, data: bytes) -> Any:
        """The object reference of an upload, put into the object store once."""
        known = self._puts.get(name)
        if known is None or (known[0] is not data and known[0] != data):
            known = (data, self._ray.put(data))
            self._puts[name] = known
        return known[1]

    def submit(self, config_json: str, uploads: dict[str, bytes] | None = None) -> Any:
        names = sorted(uploads or {})
        refs = [self._ref(n, uploads[n]) for n in names]
        remote = self._remote.options(num_gpus=1) if self._wants_gpu(config_json) else self._remote
        ref = remote.remote(self._task, config_json, names, *refs)
        self._pending.add(ref)
        return ref

    def finished(self, handles: Iterable[Any], timeout: float) -> list[tuple[Any, dict[str, Any]]]:
        ray = self._ray
        refs = list(handles)
        if not refs:
            return []
        ready, _ = ray.wait(refs, num_returns=1, timeout=timeout)
        if not ready:
            return []
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)  # every one that is ready by now
        out = []
        for ref in ready:
            self._pending.discard(ref)
            try:
                out.append((ref, ray.get(ref)))
            except ray.exceptions.TaskCancelledError:
                out.append((ref, {"error": "cancelled"}))
            except ray.exceptions.RayError as exc:  # its worker or node died more often than retried
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                out.append((ref, {"error": f"the Ray task stopped ({type(exc).__name__}"
                                           f"{': ' + reason[:300] if reason else ''}); run the sweep again"}))
        return out

    def cancel(self, handle: Any) -> None:
        self._pending.discard(handle)
        try:
            self._ray.cancel(handle, force=True)  # kills the worker: a run stops mid-epoch, and is not retried
        except Exception:  # already finished, or the cluster is gone: nothing left to stop
            pass

    def shutdown(self) -> None:
        """Stop what still runs; disconnect from a cluster the user gave (it keeps running)
        and stop a local Ray this executor started. A Ray initialised before is left alone."""
        for ref in list(self._pending):
            self.cancel(ref)
        self._puts.clear()
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
            self._started = False

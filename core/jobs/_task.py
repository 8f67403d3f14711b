"""One task: train one run in a scratch folder and hand back its files. What every executor
runs in its worker processes, and each such process's share of the cores.

Both executors import this module and nothing of each other, so a new executor needs no
change to the existing ones.
"""

from __future__ import annotations

import os
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

__all__ = ["run_task", "limit_threads"]

_THREAD_LIMITS = None


def run_task(config_json: str, uploads: dict[str, bytes] | None = None,
             stop_file: str | None = None, stage_one: str | None = None) -> dict[str, Any]:
    """Train one run from its config JSON in a scratch folder; returns {"files": {name:
    bytes}, "seconds": ...} or, when the run itself fails, {"error": reason} (an error of the
    run is an answer, not a crash: retrying it would fail the same way). `uploads` carries the
    uploaded data files a remote machine does not have. Training stops between batches once
    `stop_file` exists or its folder is gone (a cancel, or the executor shut down): how a
    local pool's task is cancelled while it runs. `stage_one`: a folder the pool's processes
    share, where each network's first stage is kept for the two-stage runs on the same
    settings (a plain run and its cRT train the network once)."""
    from core.config import RunConfig
    from core.jobs._worker import failure_reason, produce_run
    from core.store import RunFolder
    from core.train import StageOneStore

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
            produce_run(RunConfig.model_validate_json(config_json), run, should_stop=_stop_check(stop_file),
                        stage_one=None if stage_one is None else StageOneStore(stage_one))
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


def _stop_check(stop_file: str | None):
    if stop_file is None:
        return None
    path = Path(stop_file)
    return lambda: path.exists() or not path.parent.is_dir()


def limit_threads(threads: int) -> None:
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

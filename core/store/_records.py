"""What the store hands out: a run, an experiment (one config over folds/seeds), a sweep (a
grid of experiments) and their states; RunNotFound says in one line which id is unknown."""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["STATUSES", "FINISHED", "EXPERIMENT_PREFIX", "SWEEP_PREFIX", "RunNotFound", "pid_alive", "RunRecord",
           "ExperimentRecord", "SweepRecord", "iso_time", "new_id"]

STATUSES = ("queued", "running", "done", "failed", "cancelled")
FINISHED = ("done", "failed", "cancelled")
EXPERIMENT_PREFIX = "exp-"
SWEEP_PREFIX = "sweep-"


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
            "id": self.id, "name": self.name, "status": self.status, "created": iso_time(self.created),
            "started": iso_time(self.started), "finished": iso_time(self.finished), "dataset": self.dataset,
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
        return {"id": self.id, "name": self.name, "status": self.status, "created": iso_time(self.created),
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
        return {"id": self.id, "name": self.name, "status": self.status, "created": iso_time(self.created),
                "backend": self.backend, "grid": self.spec.get("grid"),
                "experiments": [e.id for e in self.experiments], "runs": [r.id for r in self.runs]}


def iso_time(ts: float | None) -> str | None:
    return None if ts is None else time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(ts))


def new_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)

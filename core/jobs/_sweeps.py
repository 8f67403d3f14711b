"""Sweeps: a base config crossed with a grid of settings, each grid cell an experiment; and
how one is started, resumed and driven through an executor.

A sweep file is a run config plus `grid:`. Each grid axis is a dotted key with a list of
values (`loss.name: [ce, ldam]`, `data.imbalance.ratio: [10, 100]`), or a named set of
variants, each a mapping of dotted keys (`method: {ce: {}, crt: {stage2.name: crt}}`), for
settings that change together. Cells cross every axis; the base config's `evaluation`
(folds, seeds) repeats every cell.

The driver (`python -m core.jobs drive SWEEP`) owns the store: it claims the sweep's runs,
hands their configs to the executor and commits the files each task returns. A sweep's runs
wait in their own queue (the background worker never takes them), and a re-run of the same
sweep file resumes it: runs already done are kept, failed or interrupted ones are trained
again. What a finished sweep says is read by `core.analysis.sweep_summary`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from core.config import ConfigError, LossSpec, RunConfig, format_validation_error, read_config_file
from core.data import UPLOAD_PREFIX, load_data
from core.jobs._executors import Executor
from core.jobs._worker import headline
from core.registry import kind_of_setting
from core.run_words import sweep_cell_name
from core.store import RunStore, pid_alive
from core.train import run_problems

__all__ = ["SweepSpec", "SweepCell", "load_sweep", "expand_sweep", "sweep_size", "MAX_CELLS", "SweepRefused", "plan_sweep",
           "start_sweep", "run_sweep", "drive_sweep", "ensure_sweep_driver"]

HEARTBEAT_EVERY_S = 5.0


# --- the sweep file ---------------------------------------------------------------------------

MAX_CELLS = 500  # a sweep is a question, not a search: more cells than this is a mistake
_OWN_FIELDS = {"loss": set(LossSpec.model_fields) - {"name"}}  # DRW settings survive a change of loss


@dataclass(frozen=True)
class SweepSpec:
    name: str
    base: dict[str, Any]  # the run config without `grid`
    grid: dict[str, Any]  # axis -> list of values, or mapping label -> {dotted key: value}

    @property
    def spec_hash(self) -> str:
        """Same base and grid, same sweep: re-running it resumes instead of starting over."""
        text = json.dumps({"base": self.base, "grid": self.grid}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.base, "grid": self.grid}


@dataclass(frozen=True)
class SweepCell:
    settings: dict[str, str]  # axis -> the value's label, e.g. {"loss.name": "ldam", "data.imbalance.ratio": "100"}
    config: RunConfig

    @property
    def label(self) -> str:
        return ", ".join(f"{axis}={value}" for axis, value in self.settings.items())


def load_sweep(source: str | Path | Mapping) -> SweepSpec:
    """From a YAML/JSON file or a mapping; ConfigError with one readable line."""
    raw = dict(source) if isinstance(source, Mapping) else \
        read_config_file(source, "a run config with a `grid:` section")
    grid = raw.pop("grid", None)
    if not isinstance(grid, dict) or not grid:
        raise ConfigError("grid: a sweep needs a `grid:` mapping of settings to lists of values, e.g. "
                          "{loss.name: [ce, ldam], data.imbalance.ratio: [10, 100]}")
    for axis, values in grid.items():
        if isinstance(values, Mapping):
            if not values or not all(isinstance(v, Mapping) for v in values.values()):
                raise ConfigError(f"grid.{axis}: a set of variants maps each name to its settings, e.g. "
                                  "{crt: {stage2.name: crt}}")
        elif not isinstance(values, list) or not values:
            raise ConfigError(f"grid.{axis}: expected a non-empty list of values")
        elif len({json.dumps(v, sort_keys=True, default=str) for v in values}) != len(values):
            raise ConfigError(f"grid.{axis}: a value is listed twice")
    cells = 1
    for values in grid.values():
        cells *= len(values)
    if cells > MAX_CELLS:
        raise ConfigError(f"grid: {cells} cells is more than {MAX_CELLS}; sweep fewer values at a time")
    return SweepSpec(str(raw.get("name") or "sweep"), raw, grid)


def _label(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _set(raw: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `a.b.c` in a nested config dict. Setting a plug-in's name starts that section
    afresh (another loss takes other parameters), keeping the section's own settings."""
    *parents, last = dotted.split(".")
    node = raw
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    if len(parents) == 1 and last == "name" and kind_of_setting(dotted) is not None:
        keep = _OWN_FIELDS.get(parents[0], set())
        for key in [k for k in node if k not in keep]:
            del node[key]
    node[last] = value


def expand_sweep(spec: SweepSpec) -> tuple[list[SweepCell], list[str]]:
    """Every cell's validated config, and every problem found (all of them, not the first),
    each naming its cell."""
    axes = list(spec.grid)
    choices = [list(v.items()) if isinstance(v, Mapping) else [(_label(x), {axis: x}) for x in v]
               for axis, v in spec.grid.items()]
    cells, problems = [], []
    for combo in itertools.product(*choices):
        raw = json.loads(json.dumps(spec.base))
        settings = {}
        for axis, (label, patch) in zip(axes, combo, strict=True):
            settings[axis] = str(label)
            for dotted, value in patch.items():
                _set(raw, dotted, value)
        where = ", ".join(f"{a}={v}" for a, v in settings.items())
        try:
            config = RunConfig.model_validate(raw)
            config = config.model_copy(update={"name": sweep_cell_name(spec.name, spec.grid, settings, config)[:200]})
            cells.append(SweepCell(settings, config))
        except ValidationError as exc:
            problems.append(f"{where}: {format_validation_error(exc)}")
    return cells, problems


def sweep_size(spec: SweepSpec) -> tuple[int, int]:
    """(cells, trainings) of a sweep: a cell with folds or seeds is several trainings."""
    cells, _ = expand_sweep(spec)
    return len(cells), sum(len(c.config.experiment_runs()) for c in cells)


# --- starting and driving ---------------------------------------------------------------------


class SweepRefused(ValueError):
    """A sweep with invalid cells; `problems` lists every one, each naming its cell."""

    def __init__(self, problems: list[str]):
        super().__init__(f"{len(problems)} problem(s): " + "; ".join(problems))
        self.problems = problems


def plan_sweep(spec: SweepSpec) -> list[SweepCell]:
    """Every cell's config, checked against its data before anything runs; SweepRefused
    lists all problems at once."""
    cells, problems = expand_sweep(spec)
    datasets: dict[str, Any] = {}
    for cell in cells:
        key = cell.config.data.model_dump_json()
        if key not in datasets:
            try:  # a multi-label built-in is checked by its config and `run_problems` alone
                datasets[key] = None if cell.config.data.multilabel else load_data(cell.config.data)
            except (ValueError, OSError) as exc:
                datasets[key] = exc
        data = datasets[key]
        found = [f"data.source: {data}"] if isinstance(data, Exception) else run_problems(cell.config, data)
        problems += [f"{cell.label}: {p}" for p in found]
    if problems:
        raise SweepRefused(problems)
    return cells


def start_sweep(store: RunStore, spec: SweepSpec, backend: str | None = None) -> tuple[str, int, int]:
    """Create the sweep (or resume the one made from this exact spec): (sweep id, runs to
    train, runs already done)."""
    cells = plan_sweep(spec)
    sweep_id = store.find_sweep(spec.spec_hash)
    if sweep_id is None:
        sweep_id = store.create_sweep(spec.name, spec.to_dict(), spec.spec_hash, backend)
    elif pid_alive(store.get_sweep(sweep_id).driver_pid):
        raise ValueError(f"sweep {sweep_id} of this file is running already; follow it with "
                         f"`tailscope sweep-show {sweep_id}` or on the Sweeps page")
    store.reap_dead()  # runs of a driver that died are failed now, and trained again below
    existing = {json.dumps(e.cell, sort_keys=True): e for e in store.get_sweep(sweep_id).experiments}
    to_run = done = 0
    for cell in cells:
        experiment = existing.get(json.dumps(cell.settings, sort_keys=True))
        if experiment is None:
            store.create_experiment(cell.config, sweep=sweep_id, cell=cell.settings)
            to_run += len(cell.config.experiment_runs())
            continue
        for run in experiment.runs:
            if run.status == "done":
                done += 1
            else:
                if run.status in ("failed", "cancelled"):
                    store.requeue(run.id)
                to_run += 1
    return sweep_id, to_run, done


def _uploads(configs: list[RunConfig]) -> dict[str, dict[str, bytes]]:
    """The uploaded files the runs read, for executors whose machines do not share this disk."""
    from core.paths import tailscope_home

    out = {}
    for config in configs:
        source = config.data.source
        if source.startswith(UPLOAD_PREFIX) and source not in out:
            name = source.removeprefix(UPLOAD_PREFIX)
            out[source] = {name: (tailscope_home() / "uploads" / name).read_bytes()}
    return out


def run_sweep(store: RunStore, sweep_id: str, executor: Executor, *, echo: Callable[[str], None] | None = None,
              poll_s: float = 0.5, stop: Callable[[], bool] | None = None) -> dict[str, int]:
    """Train every queued run of the sweep through `executor` and commit each result; cancel
    requests (the page) and Ctrl-C stop what waits and mark what runs cancelled."""
    pid = os.getpid()
    store.set_sweep_driver(sweep_id, pid, executor.name)
    queued = [r for r in store.get_sweep(sweep_id).runs if r.status == "queued"]
    configs = {r.id: RunConfig.model_validate(r.config) for r in queued}
    uploads = _uploads(list(configs.values())) if executor.name != "local" else {}
    handles: dict[Any, str] = {}
    counts = {"done": 0, "failed": 0, "cancelled": 0}
    waiting = list(queued)

    def submit_more() -> None:
        """Keep every worker busy and no more: a run is claimed (running, its clock started)
        only when a worker can take it, so the others stay queued and a cancel or Ctrl-C
        leaves them queued for a resume."""
        while waiting and len(handles) < executor.workers:
            run = waiting.pop(0)
            if store.claim(run.id, pid) is None:  # cancelled meanwhile
                continue
            store.set_progress(run.id, {"stage": "submitted", "fraction": 0.0})
            config = configs[run.id]
            handles[executor.submit(config.model_dump_json(), uploads.get(config.data.source))] = run.id

    try:
        submit_more()
        beat = 0.0
        while handles:
            for handle, result in executor.finished(list(handles), timeout=poll_s):
                run_id = handles.pop(handle)
                state = _commit(store, run_id, result)
                counts[state] += 1
                if echo:
                    echo(f"{sum(counts.values())}/{len(queued)} runs finished ({store.get(run_id).name}: {state})")
            if time.monotonic() - beat > HEARTBEAT_EVERY_S:
                beat = time.monotonic()
                store.touch(list(handles.values()))
            for handle, run_id in list(handles.items()):
                if store.cancel_requested(run_id) or (stop and stop()):
                    executor.cancel(handle)
                    store.mark_cancelled(run_id, "cancelled by the user")
                    handles.pop(handle)
                    counts["cancelled"] += 1
            if stop and stop():
                break
            submit_more()
    except KeyboardInterrupt:
        for handle, run_id in handles.items():
            executor.cancel(handle)
            store.mark_cancelled(run_id, "the sweep was stopped (Ctrl-C); run the sweep again to resume")
            counts["cancelled"] += 1
        raise
    finally:
        store.set_sweep_driver(sweep_id, None)
        executor.shutdown()
    return counts


def _commit(store: RunStore, run_id: str, result: dict[str, Any]) -> str:
    """Write a task's files into the run's folder, then mark it done (or failed, with why)."""
    record = store.get(run_id)
    if record.status != "running":  # cancelled while it trained: its result is not wanted
        return "cancelled"
    if "files" not in result:
        store.fail(run_id, result.get("error", "the task returned nothing"))
        if result.get("traceback"):
            (store.run_dir(run_id) / "error.log").write_text(result["traceback"])
        return "failed"
    store.folder(run_id).write_files(result["files"])
    store.finish(run_id, headline(store.metrics(run_id)), progress={"stage": "done", "fraction": 1.0})
    return "done"


def drive_sweep(store: RunStore, sweep_id: str, backend: str = "local", workers: int | None = None,
                ray_address: str | None = None, echo: Callable[[str], None] | None = None) -> int:
    """Train the sweep's queued runs here through the chosen executor, as the driver; an exit
    code: 0 all done, 1 some failed, 2 the executor could not start, 130 interrupted. Runs
    a dead driver left half-done are queued again first (`RunStore.reap_dead`)."""
    from core.jobs import _executors

    say = echo or (lambda line: print(line, file=sys.stderr))
    store.reap_dead()
    try:
        executor = _executors.create_executor(backend, workers, ray_address)
    except (ImportError, ValueError, ConnectionError, RuntimeError) as exc:
        say(f"tailscope: {exc}")
        return 2
    say(f"training with the {executor.name} executor ({executor.workers} worker(s))")
    try:
        counts = run_sweep(store, sweep_id, executor, echo=say)
    except KeyboardInterrupt:
        say(f"tailscope: stopped; `tailscope sweep-resume {sweep_id}` (or the same sweep file) resumes it")
        return 130
    say(", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0 if counts["failed"] == 0 else 1


def ensure_sweep_driver(store: RunStore, sweep_id: str, backend: str = "local", workers: int | None = None,
                        ray_address: str | None = None) -> bool:
    """Start a background driver for the sweep unless one is alive (the app uses this)."""
    if pid_alive(store.get_sweep(sweep_id).driver_pid):
        return False
    cmd = [sys.executable, "-m", "core.jobs", "drive", sweep_id, "--home", str(store.home), "--backend", backend]
    if workers:
        cmd += ["--workers", str(workers)]
    if ray_address:
        cmd += ["--ray-address", ray_address]
    with open(store.home / f"{sweep_id}.log", "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env={**os.environ, "TAILSCOPE_HOME": str(store.home)})
    store.set_sweep_driver(sweep_id, proc.pid, backend)
    return True



"""Sweeps in the store: start or resume one, drive its runs through an executor, summarise it.

The driver owns the store: it claims the sweep's runs, hands their configs to the executor
and commits the files each task returns. A sweep's runs wait in their own queue (the
background worker never takes them), and a re-run of the same sweep file resumes it: runs
already done are kept, failed or interrupted ones are trained again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from core.analysis import adjust_family, t_interval
from core.config import RunConfig
from core.data import UPLOAD_PREFIX, load_data
from core.jobs._executors import Executor
from core.jobs._experiments import EXPERIMENT_KEYS, comparison_dict, experiment_summary, paired_comparison
from core.jobs._worker import headline
from core.store import RunFileDamaged, RunStore, pid_alive
from core.sweep import SweepCell, SweepSpec, expand_sweep
from core.train import run_problems

__all__ = ["SweepRefused", "plan_sweep", "start_sweep", "run_sweep", "ensure_sweep_driver", "sweep_summary",
           "sweep_table", "reference_of"]

HEARTBEAT_EVERY_S = 5.0


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
            try:
                datasets[key] = load_data(cell.config.data)
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


def ensure_sweep_driver(store: RunStore, sweep_id: str, backend: str = "local", workers: int | None = None,
                        ray_address: str | None = None) -> bool:
    """Start a background driver for the sweep unless one is alive (the app uses this)."""
    if pid_alive(store.get_sweep(sweep_id).driver_pid):
        return False
    cmd = [sys.executable, "-m", "core.cli", "sweep-resume", sweep_id, "--backend", backend]
    if workers:
        cmd += ["--workers", str(workers)]
    if ray_address:
        cmd += ["--ray-address", ray_address]
    with open(store.home / f"{sweep_id}.log", "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env={**os.environ, "TAILSCOPE_HOME": str(store.home)})
    store.set_sweep_driver(sweep_id, proc.pid, backend)
    return True


def reference_of(axes: dict[str, list[str]]) -> tuple[str, str] | None:
    """The cell every other is compared with: plain cross-entropy when an axis has it
    ("ce", the baseline every fix is measured against), else the first value of the first axis."""
    for axis, labels in axes.items():
        if "ce" in labels:
            return axis, "ce"
    axis = next(iter(axes), None)
    return None if axis is None else (axis, axes[axis][0])


def _axis_labels(grid: dict[str, Any]) -> dict[str, list[str]]:
    return {axis: [str(k) for k in values] if isinstance(values, dict) else
            [v if isinstance(v, str) else json.dumps(v, sort_keys=True) for v in values]
            for axis, values in grid.items()}


def _group_recalls(store: RunStore, run_ids: list[str]) -> dict[str, dict]:
    """Head and tail recall per run (group mean recall), summarised over the runs."""
    values: dict[str, list[float]] = {"head": [], "tail": []}
    for run_id in run_ids:
        try:
            groups = {g["group"]: g["accuracy"] for g in store.metrics(run_id).get("groups", [])}
        except RunFileDamaged:
            continue
        for group in values:
            if groups.get(group) is not None:
                values[group].append(groups[group])
    return {group: t_interval(v, bounds=(0.0, 1.0)) for group, v in values.items()}


def sweep_summary(store: RunStore, sweep_id: str, metric: str = "balanced_accuracy") -> dict[str, Any]:
    """Status, progress with an ETA, and one entry per grid cell: its settings, experiment,
    the mean and interval of every metric, head and tail recall, and its paired comparison
    with the reference cell (same values on the other axes). The comparisons are one family,
    adjusted together for the false discovery rate (Benjamini-Hochberg): a map of many cells
    is a screen, and without adjusting one in twenty null cells would light up."""
    sweep = store.get_sweep(sweep_id)
    axes = _axis_labels(sweep.spec.get("grid", {}))
    runs = sweep.runs
    by_status = {s: sum(r.status == s for r in runs) for s in ("queued", "running", "done", "failed", "cancelled")}
    started = [r.started for r in runs if r.started]
    finished = [r for r in runs if r.status in ("done", "failed") and r.finished]
    eta = None
    if finished and started and by_status["queued"] + by_status["running"]:
        rate = len(finished) / max(max(r.finished for r in finished) - min(started), 1e-9)
        eta = (by_status["queued"] + by_status["running"]) / rate
    reference = reference_of(axes)
    cells, versus = [], {}
    by_settings = {json.dumps(e.cell, sort_keys=True): e for e in sweep.experiments}
    for exp in sweep.experiments:
        done = [r.id for r in exp.runs if r.status == "done"]
        summary = experiment_summary(store, exp.id)["summary"] if done else {}
        cell = {"settings": exp.cell, "experiment": exp.id, "status": exp.status, "n_done": len(done),
                "n_runs": len(exp.runs), "runs": [r.id for r in exp.runs], "summary": summary,
                "recall_groups": _group_recalls(store, done) if done else {}, "vs_reference": None}
        if reference and exp.cell and exp.cell.get(reference[0]) != reference[1] and done:
            ref = by_settings.get(json.dumps({**exp.cell, reference[0]: reference[1]}, sort_keys=True))
            found = _versus(store, exp, ref, metric)
            if found is not None:
                versus[len(cells)] = found
        cells.append(cell)
    adjusted = adjust_family([c for c, _ in versus.values()], "fdr_bh")
    for (index, (_, extra)), comparison in zip(versus.items(), adjusted, strict=True):
        cells[index]["vs_reference"] = comparison_dict(comparison, extra)
    return {**sweep.to_dict(), "axes": axes, "reference": list(reference) if reference else None, "metric": metric,
            "progress": {**by_status, "total": len(runs), "eta_s": eta}, "cells": cells}


def _versus(store: RunStore, exp, ref, metric: str):
    """The cell against the reference cell, paired (same seeds and folds): a comparison and
    what goes beside it (`paired_comparison`), or None."""
    if ref is None:
        return None
    ref_done = [r.id for r in ref.runs if r.status == "done"]
    exp_done = [r.id for r in exp.runs if r.status == "done"]
    try:
        if len(exp.runs) == 1 and len(ref.runs) == 1 and exp_done and ref_done:
            return paired_comparison(store, exp_done[0], ref_done[0], metric)
        if len(exp_done) >= 2 and len(ref_done) >= 2:
            return paired_comparison(store, exp.id, ref.id, metric)
    except (ValueError, RunFileDamaged):
        return None
    return None


def sweep_table(summary: dict[str, Any]) -> pd.DataFrame:
    """One row per cell: the axes' values, experiment, status, every metric's mean and
    interval, head and tail recall, and the verdict against the reference (for charts and CSV)."""
    rows = []
    for cell in summary["cells"]:
        row: dict[str, Any] = {axis: (cell["settings"] or {}).get(axis) for axis in summary["axes"]}
        row.update({"experiment": cell["experiment"], "status": cell["status"], "runs done": cell["n_done"],
                    "runs": cell["n_runs"]})
        for key in EXPERIMENT_KEYS:
            s = cell["summary"].get(key) or {}
            low, high = s.get("ci") or (None, None)
            row.update({key: s.get("mean"), f"{key}_low": low, f"{key}_high": high})
        for group in ("head", "tail"):
            s = cell["recall_groups"].get(group) or {}
            low, high = s.get("ci") or (None, None)
            row.update({f"{group}_recall": s.get("mean"), f"{group}_recall_low": low, f"{group}_recall_high": high})
        versus = cell["vs_reference"]
        row["difference_vs_reference"] = versus["difference"] if versus else None
        row["verdict_vs_reference"] = versus["verdict"] if versus else None
        row["status_vs_reference"] = versus["status"] if versus else None
        row["p_vs_reference"] = versus["p_value"] if versus else None
        row["adjusted_p_vs_reference"] = versus["p_adjusted"] if versus else None
        row["better_beyond_noise"] = versus["status"] == "better" if versus else None
        rows.append(row)
    frame = pd.DataFrame(rows)
    return frame.replace({np.nan: None}) if not frame.empty else frame

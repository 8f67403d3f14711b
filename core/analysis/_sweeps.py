"""A sweep read back from the store: progress with an ETA, and every grid cell's numbers and
its comparison with the reference cell, the comparisons adjusted together.

Like `_experiments`, this only reads what the sweep's runs left behind; the sweep itself is
started and driven by `core.jobs`.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from core.analysis._experiments import EXPERIMENT_KEYS, ROBUST_KEYS, comparison_dict, experiment_summary, paired_comparison
from core.analysis._uncertainty import t_interval
from core.analysis._verdict import adjust_family
from core.store import RunFileDamaged, RunStore

__all__ = ["sweep_summary", "sweep_table", "reference_of"]


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


def measured_robust_keys(summary: dict[str, Any]) -> tuple[str, ...]:
    """The measures under attack some cell of the sweep has (its runs set `evaluation.attack`)."""
    return tuple(k for k in ROBUST_KEYS if any((c["summary"].get(k) or {}).get("mean") is not None
                                               for c in summary["cells"]))


def sweep_table(summary: dict[str, Any]) -> pd.DataFrame:
    """One row per cell: the axes' values, experiment, status, every metric's mean and
    interval, head and tail recall, and the verdict against the reference (for charts and CSV)."""
    rows = []
    for cell in summary["cells"]:
        row: dict[str, Any] = {axis: (cell["settings"] or {}).get(axis) for axis in summary["axes"]}
        row.update({"experiment": cell["experiment"], "status": cell["status"], "runs done": cell["n_done"],
                    "runs": cell["n_runs"]})
        for key in (*EXPERIMENT_KEYS, *measured_robust_keys(summary)):
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

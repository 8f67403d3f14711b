"""Where a person starts after making something: the run to open and the pair to compare
after a training, an experiment or a sweep (the best fix against plain cross-entropy), the
run picker's runs grouped by sweep and experiment, and the latest work in one line per
sweep, experiment or repeated set-up. Pure reads of store records and sweep summaries."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.analysis._compare import run_labels, setup_key
from core.glossary import setting_value
from core.store import ExperimentRecord, RunRecord, SweepRecord

__all__ = ["StartingPoint", "best_against_reference", "sweep_starting_point", "experiment_starting_point",
           "run_starting_point", "grouped_run_labels", "latest_work", "cell_words",
           "experiment_labels"]



@dataclass(frozen=True)
class StartingPoint:
    """What to open: `run` on the analysis pages; `compare_runs` / `compare_experiments` as
    Compare's pair (best first, its reference second); `finished`: nothing will change it."""

    run: str | None
    compare_runs: list[str] = field(default_factory=list)
    compare_experiments: list[str] = field(default_factory=list)
    finished: bool = False


def cell_words(cell: Mapping[str, str] | None) -> str:
    """A sweep cell's settings in words: "Balanced softmax, 10"."""
    return ", ".join(setting_value(axis, value) for axis, value in (cell or {}).items())


def best_against_reference(summary: Mapping[str, Any], higher_is_better: bool = True
                           ) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    """(best cell, its reference cell) of a sweep summary (`core.analysis.sweep_summary`):
    the finished cell that is not a reference with the best mean of the summary's metric,
    and the reference cell with the same other settings (plain cross-entropy when the sweep
    has it). Without a reference axis, the best cell and None; None when nothing finished."""
    metric, reference = summary["metric"], summary.get("reference")
    cells = [c for c in summary["cells"] if c["n_done"] and _mean(c, metric) is not None]
    if not cells:
        return None
    others = [c for c in cells if not reference or (c["settings"] or {}).get(reference[0]) != reference[1]] or cells
    sign = 1 if higher_is_better else -1
    best = max(others, key=lambda c: sign * _mean(c, metric))
    if not reference or best in [c for c in cells if (c["settings"] or {}).get(reference[0]) == reference[1]]:
        return best, None
    wanted = {**(best["settings"] or {}), reference[0]: reference[1]}
    ref = next((c for c in summary["cells"] if c["settings"] == wanted and c["n_done"]), None)
    return best, ref


def _mean(cell: Mapping[str, Any], metric: str) -> float | None:
    value = (cell.get("summary", {}).get(metric) or {}).get("mean")
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def sweep_starting_point(summary: Mapping[str, Any], sweep: SweepRecord, higher_is_better: bool = True
                         ) -> StartingPoint:
    """The best cell's first finished run (paired with the reference's run of the same seed
    and fold) and the two cells' experiments; before any run finishes, a running one (its
    page says how far it is); finished once the sweep has stopped."""
    finished = sweep.status not in ("queued", "running")
    found = best_against_reference(summary, higher_is_better)
    if found is None:  # nothing finished yet: its first training run, whose page says how far it is
        training = [r.id for r in sweep.runs if r.status == "running"] or [r.id for r in sweep.runs[:1]]
        return StartingPoint(training[0] if training else None, finished=finished)
    best, ref = found
    statuses = {r.id: r.status for r in sweep.runs}
    best_done = [r for r in best["runs"] if statuses.get(r) == "done"]
    pair = [best_done[0]]
    if ref is not None:
        both = [(b, r) for b, r in zip(best["runs"], ref["runs"], strict=False)
                if statuses.get(b) == "done" and statuses.get(r) == "done"]
        pair = list(both[0]) if both else pair
    # experiments of one run each say nothing a pair of runs does not: Compare stays on runs
    experiments = [best["experiment"], ref["experiment"]] if ref is not None and len(best["runs"]) > 1 else []
    return StartingPoint(pair[0], pair if len(pair) == 2 else [], experiments, finished)


def experiment_starting_point(experiment: ExperimentRecord) -> StartingPoint:
    """The experiment's first finished run (its first run until one finishes)."""
    done = [r.id for r in experiment.runs if r.status == "done"]
    first = done[0] if done else (experiment.runs[0].id if experiment.runs else None)
    return StartingPoint(first, finished=experiment.status not in ("queued", "running"))


def run_starting_point(run: RunRecord) -> StartingPoint:
    return StartingPoint(run.id, finished=run.status not in ("queued", "running"))


def _repeat_part(run: RunRecord, experiment: ExperimentRecord | None) -> str:
    """"seed 2", "fold 1/5 · seed 0": what tells a run from the others of its experiment."""
    if experiment is None:
        return ""
    return run.name.removeprefix(experiment.name).strip(" ·")


def grouped_run_labels(runs: Sequence[RunRecord], experiments: Sequence[ExperimentRecord],
                       sweeps: Sequence[SweepRecord], title: Any = None) -> list[tuple[str, str]]:
    """(run id, label) for the run picker, newest group first and a group's runs together:
    "standard fixes on wine › Balanced softmax › seed 1", "my experiment › seed 0", or the
    lone run's title (`title(run)`, default its name). Typing in the picker filters these
    labels, so a group's name finds all of its runs."""
    title = title or (lambda r: r.name)
    by_exp = {e.id: e for e in experiments}
    sweep_names = {s.id: s.name for s in sweeps}
    groups: dict[str, list[tuple[str, str]]] = {}
    for run in runs:
        exp = by_exp.get(run.experiment) if run.experiment else None
        if exp is not None and exp.sweep in sweep_names:
            parts, group = [sweep_names[exp.sweep], cell_words(exp.cell), _repeat_part(run, exp)], exp.sweep
            label = " › ".join(p for p in parts if p)
        elif exp is not None:
            label, group = " › ".join(p for p in (exp.name, _repeat_part(run, exp)) if p), exp.id
        else:
            label, group = title(run), run.id
        groups.setdefault(group, []).append((run.id, label))
    return [item for members in groups.values() for item in members]


def latest_work(runs: Sequence[RunRecord], experiments: Sequence[ExperimentRecord],
                sweeps: Sequence[SweepRecord], limit: int = 5) -> list[dict[str, Any]]:
    """The latest work, newest first, one entry per sweep, experiment or set-up repeated with
    other seeds: {"kind": "sweep" | "experiment" | "runs", "id", "name", "runs": [RunRecord]}."""
    by_exp = {e.id: e for e in experiments}
    by_sweep = {s.id: s for s in sweeps}
    out: dict[str, dict[str, Any]] = {}
    for run in runs:
        exp = by_exp.get(run.experiment) if run.experiment else None
        if exp is not None and exp.sweep in by_sweep:
            key, kind, item_id, name = exp.sweep, "sweep", exp.sweep, by_sweep[exp.sweep].name
        elif exp is not None:
            key, kind, item_id, name = exp.id, "experiment", exp.id, exp.name
        else:
            key, kind, item_id, name = setup_key(run.config or {}), "runs", run.id, run.name
        if key not in out:
            if len(out) == limit:
                continue
            out[key] = {"kind": kind, "id": item_id, "name": name, "runs": []}
        out[key]["runs"].append(run)
    return list(out.values())


def experiment_labels(experiments: Sequence[ExperimentRecord], sweeps: Sequence[SweepRecord]) -> dict[str, str]:
    """id -> what Compare's experiment picker says: "standard fixes on wine › Balanced softmax ·
    6 runs" (a sweep's cell in words) or "my experiment · 5 runs", one label per experiment
    (the id's tail added where two would read the same), so the option taken is the one read."""
    sweep_names = {s.id: s.name for s in sweeps}
    names = []
    for e in experiments:
        base = f"{sweep_names[e.sweep]} › {cell_words(e.cell)}" if e.sweep in sweep_names and e.cell else e.name
        names.append((f"{base} · {len(e.runs)} run{'s' * (len(e.runs) != 1)}", e.id))
    return dict(zip([e.id for e in experiments], run_labels(names), strict=True))

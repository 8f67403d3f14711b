"""A lesson's sweep in the store: find it, run it (or resume it), read its finished runs.

A lesson is an ordinary sweep whose spec the lesson fixes, so its spec hash finds it again:
a lesson run before class opens at once, and a lesson stopped half-way resumes.
"""

from __future__ import annotations

from collections.abc import Callable

from typing import Any

from core.config import UPLOAD_PREFIX, DataConfig, RunConfig
from core.data import list_uploads, source_label
from core.jobs import LocalExecutor, run_sweep, start_sweep
from core.jobs._executors import Executor
from core.lessons._base import Lesson, LessonRun, Verdict
from core.lessons._common import own_data_problem
from core.store import RunFileDamaged, RunStore, SweepRecord

__all__ = ["lesson_sweep", "lesson_state", "state_of", "lesson_runs", "run_lesson", "lesson_verdict",
           "own_data_choices"]


def lesson_sweep(store: RunStore, lesson: Lesson) -> SweepRecord | None:
    sweep_id = store.find_sweep(lesson.spec.spec_hash)
    return None if sweep_id is None else store.get_sweep(sweep_id)


def lesson_state(store: RunStore, lesson: Lesson) -> dict:
    """{"status": "not run" | the sweep's status, "done": n, "total": n, "sweep": id or None}."""
    return state_of(lesson, lesson_sweep(store, lesson))


def state_of(lesson: Lesson, record: SweepRecord | None) -> dict:
    """`lesson_state` from one read of the lesson's sweep: a page that draws its progress,
    time left and verdict from the same record is never in two states at once."""
    if record is None:
        return {"status": "not run", "done": 0, "total": lesson.n_runs, "sweep": None}
    runs = record.runs
    return {"status": record.status, "done": sum(r.status == "done" for r in runs), "total": len(runs),
            "sweep": record.id}


def lesson_runs(store: RunStore, lesson: Lesson, record: SweepRecord | None = None) -> list[LessonRun]:
    """Every finished run of the lesson with its cell and stored arrays (damaged ones left
    out); of `record` (the lesson's sweep as already read) when given."""
    record = record or lesson_sweep(store, lesson)
    if record is None:
        return []
    out = []
    for experiment in record.experiments:
        for run in experiment.runs:
            if run.status != "done":
                continue
            try:
                artifacts = store.artifacts(run.id)
            except (RunFileDamaged, FileNotFoundError):
                continue
            out.append(LessonRun(dict(experiment.cell or {}), RunConfig.model_validate(run.config), artifacts,
                                 run.id))
    return out


def run_lesson(store: RunStore, lesson: Lesson, executor: Executor | None = None,
               echo: Callable[[str], None] | None = None) -> dict[str, int]:
    """Train what the lesson still lacks, here (runs already done are kept)."""
    sweep_id, to_run, done = start_sweep(store, lesson.spec, "local")
    if echo:
        echo(f"{lesson.display}: {to_run} run(s) to train, {done} already done")
    if not to_run:
        return {"done": 0, "failed": 0, "cancelled": 0}
    return run_sweep(store, sweep_id, executor or LocalExecutor(), echo=echo)


def lesson_verdict(store: RunStore, lesson: Lesson, record: SweepRecord | None = None) -> Verdict:
    return lesson.analyse(lesson_runs(store, lesson, record))


def own_data_choices(store: RunStore, name: str, saved: dict[str, Any] | None = None
                     ) -> tuple[list[DataConfig], list[str]]:
    """The stored uploads a lesson that takes own data can run on, and why each other one
    cannot, in plain words. An upload's label and stage order are read where a person set
    them: the Data page's saved choice (`saved`), then the runs that used the upload; an
    upload neither names is explained too."""
    found: dict[str, DataConfig] = {}
    for raw in [saved or {}, *(r.config.get("data") or {} for r in store.list_runs())]:
        if not str(raw.get("source", "")).startswith(UPLOAD_PREFIX):
            continue
        try:
            config = DataConfig.model_validate({k: v for k, v in raw.items() if k not in ("fold", "label_noise",
                                                                                          "unlabeled")})
        except ValueError:
            continue
        found.setdefault(config.model_dump_json(), config)
    usable: list[DataConfig] = []
    reasons: dict[str, str] = {}
    for config in found.values():
        problem = own_data_problem(name, config)
        if problem is None:
            usable.append(config)
        else:
            reasons.setdefault(config.source, problem)
    have = {c.source for c in usable}
    for upload in list_uploads():
        if upload.source not in have and upload.source not in reasons:
            reasons[upload.source] = (f"{upload.name}: no saved choice or run says which column is its label and "
                                      "that its values are ordered stages; open it on the Data page and mark them")
    return usable, [reason for source, reason in reasons.items() if source not in have]

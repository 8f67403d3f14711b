"""Annotations: what a person saves with a run (an operating point, case reviews, the label
issues found on request), one JSON file each, and the check each file passes on every read
and every write.

A hand-edited or half-copied annotation (`{"class": 999, "threshold": "NaN"}`, a file of
non-text bytes) is a damaged file of that run: named with its path, why it cannot be used
and what to do, never an IndexError deep inside a page. It is not made by training, so
"re-run it" is no answer; and it never blocks the run's other files or pages.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.store._files import RunFileDamaged, write_json_atomic
from core.store._run_files import RunFilesMixin

__all__ = ["ANNOTATIONS", "AnnotationDamaged", "AnnotationsMixin", "REVIEW_MARKS", "TRAIN_REVIEW_MARKS",
           "annotation_file", "annotation_problem"]

REVIEW_MARKS = ("label looks wrong", "ambiguous", "model error")  # a verdict on a test case
TRAIN_REVIEW_MARKS = ("suspected label issue", "label is right", "ambiguous")  # on a training row


@dataclass(frozen=True)
class _Kind:
    what: str  # the annotation in words
    todo: str  # how a person gets past a damaged one ({run}: the run's id)


ANNOTATIONS: dict[str, _Kind] = {
    "operating_point": _Kind("operating point", "save the operating point again on the Rare-class triage page "
                                                "(that replaces the file), or set the file aside"),
    "reviews": _Kind("case reviews", "set the file aside (it is renamed, not deleted) to start the reviews afresh, "
                                     "or mend it by hand"),
    "label_issues": _Kind("suspected label issues", "find them again (Error gallery page, or tailscope label-issues "
                                                    "{run} --recompute), which replaces the file"),
}


def annotation_file(name: str) -> str:
    if name not in ANNOTATIONS:
        raise ValueError(f"unknown annotation {name!r}; one of {', '.join(ANNOTATIONS)}")
    return f"{name}.json"


class AnnotationDamaged(RunFileDamaged):
    """A damaged annotation: which one, where it is and what to do, in one line."""

    def __init__(self, run_id: str, name: str, reason: str, path: Path):
        super().__init__(run_id, annotation_file(name), reason)
        self.name, self.path = name, Path(path)
        self.what, self.todo = ANNOTATIONS[name].what, ANNOTATIONS[name].todo.format(run=run_id)

    def __str__(self) -> str:
        return (f"run {self.run_id}: its saved {self.what} ({self.file}) cannot be used: {self.reason}; {self.todo}. "
                f"The file is {self.path}; the run's other files and pages are not affected")


# --- the checks -------------------------------------------------------------------------------

def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _class_problem(value: Any, where: str, num_classes: int | None) -> str | None:
    if not _is_int(value) or value < 0:
        return f"{where} is {value!r}, not a class number"
    if num_classes is not None and value >= num_classes:
        return f"{where} is class {value}, and the run has {num_classes} classes (0 to {num_classes - 1})"
    return None


def _operating_point_problem(point: dict[str, Any], num_classes: int | None) -> str | None:
    if not point:
        return None  # none saved
    unknown = sorted(set(point) - {"class", "threshold", "prevalence", "cost_miss"})
    if unknown:
        return f"it has the unknown field {unknown[0]!r}"
    if "class" not in point or "threshold" not in point:
        return "it needs a class and a threshold"
    problem = _class_problem(point["class"], "'class'", num_classes)
    if problem:
        return problem
    if not _is_number(point["threshold"]) or not 0 <= point["threshold"] <= 1:
        return f"'threshold' is {point['threshold']!r}, not a number from 0 to 1"
    prevalence = point.get("prevalence")
    if prevalence is not None and (not _is_number(prevalence) or not 0 < prevalence < 1):
        return f"'prevalence' is {prevalence!r}, not a share between 0 and 1"
    cost = point.get("cost_miss")
    if cost is not None and (not _is_number(cost) or cost < 0):
        return f"'cost_miss' is {cost!r}, not a number of 0 or more"
    return None


def _reviews_problem(reviews: dict[str, Any], num_classes: int | None) -> str | None:
    sections = {"cases": REVIEW_MARKS, "training": TRAIN_REVIEW_MARKS}
    unknown = sorted(set(reviews) - set(sections))
    if unknown:
        return f"it has the unknown section {unknown[0]!r}"
    for section, marks in sections.items():
        entries = reviews.get(section, {})
        if not isinstance(entries, dict):
            return f"'{section}' is not a mapping of rows to reviews"
        for row, entry in entries.items():
            where = f"'{section}' row {row!r}"
            if not row.isdigit():
                return f"{where} is not a row number"
            if not isinstance(entry, dict) or entry.get("mark") not in marks:
                return f"{where} has no known mark (one of {', '.join(marks)})"
            if not isinstance(entry.get("note", ""), str) or not isinstance(entry.get("updated", ""), str):
                return f"{where} has a note or time that is not text"
            if section == "training":
                for key in ("given", "suggested"):
                    problem = _class_problem(entry.get(key), f"{where} '{key}'", num_classes)
                    if problem:
                        return problem
    return None


def _label_issues_problem(raw: dict[str, Any], num_classes: int | None) -> str | None:
    if not raw:
        return None  # not found yet
    if raw.get("version") != 1:
        return f"'version' is {raw.get('version')!r}; this version reads 1"
    k = raw.get("num_classes")
    if not _is_int(k) or k < 1 or (num_classes is not None and k != num_classes):
        return f"'num_classes' is {k!r}, and the run has {num_classes} classes"
    columns = ("given", "suggested", "score", "flag", "fold") + (("clean",) if raw.get("clean") is not None else ())
    if any(not isinstance(raw.get(c), list) for c in columns):
        return "a per-row list (given, suggested, score, flag, fold) is missing"
    if len({len(raw[c]) for c in columns}) > 1:
        return "its per-row lists have different lengths"
    for column in ("given", "suggested", *columns[5:]):
        bad = [v for v in raw[column] if not _is_int(v) or not 0 <= v < k]
        if bad:
            return f"'{column}' holds {bad[0]!r}, not a class number from 0 to {k - 1}"
    if any(not _is_number(s) or not 0 <= s <= 1 for s in raw["score"]):
        return "'score' holds a value that is not a probability from 0 to 1"
    if any(not _is_int(f) or f not in (0, 1) for f in raw["flag"]):
        return "'flag' holds a value that is not 0 or 1"
    if any(not _is_int(f) or f < 0 for f in raw["fold"]):
        return "'fold' holds a value that is not a fold number"
    return None


_CHECKS = {"operating_point": _operating_point_problem, "reviews": _reviews_problem,
           "label_issues": _label_issues_problem}


def annotation_problem(name: str, value: Any, num_classes: int | None) -> str | None:
    """Why `value` cannot be the run's annotation `name` (its schema, its ranges, class
    numbers within the run's `num_classes` when known), or None when it can."""
    annotation_file(name)
    if not isinstance(value, dict):
        return "it is not a JSON object"
    return _CHECKS[name](value, num_classes)


class AnnotationsMixin(RunFilesMixin):
    """Reading, saving and setting aside a run's annotations, each checked against the run."""

    def annotation(self, run_id: str, name: str) -> dict[str, Any]:
        """What a person saved with a run (`name` in ANNOTATIONS: the operating point, case
        reviews, label issues); {} when nothing is. Kept apart from training's files, which a
        re-run or a sweep commit rewrites. Checked on every read (`annotation_problem`, class
        numbers against the run's classes): AnnotationDamaged names the file, its path and
        what to do."""
        path = self.run_dir(run_id) / annotation_file(name)
        try:
            value = self._read_json(run_id, path.name, {}, dict)
        except RunFileDamaged as exc:
            raise AnnotationDamaged(run_id, name, exc.reason, path) from None
        problem = annotation_problem(name, value, self._num_classes(run_id)) if value else None
        if problem:
            raise AnnotationDamaged(run_id, name, problem, path)
        return value

    def write_annotation(self, run_id: str, name: str, value: dict[str, Any]) -> None:
        """Save an annotation; ValueError for a value its check refuses (nothing is written)."""
        self.get(run_id)  # RunNotFound for a run that is gone
        problem = annotation_problem(name, value, self._num_classes(run_id))
        if problem:
            raise ValueError(f"not saved: {problem} (in the {ANNOTATIONS[name].what})")
        write_json_atomic(self.run_dir(run_id) / annotation_file(name), value)

    def set_aside_annotation(self, run_id: str, name: str) -> Path | None:
        """Rename an annotation file (a damaged one, so the run starts afresh without it) to
        `<name>.json.damaged-<time>` beside it; nothing is deleted. The new path, or None
        when there was no file."""
        path = self.run_dir(run_id) / annotation_file(name)
        aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            path.rename(aside)
        except FileNotFoundError:
            return None
        return aside

    def _num_classes(self, run_id: str) -> int | None:
        """The run's class count from its metrics, None while unknown (not finished, damaged)."""
        try:
            names = (self.metrics(run_id).get("dataset") or {}).get("class_names")
        except RunFileDamaged:
            return None
        return len(names) if isinstance(names, list) else None

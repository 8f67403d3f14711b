"""Suspected label issues of a run's training split (confident learning), kept with the run.

For a clinician a wrong label on a rare diagnosis is exactly the case to find: a tail class
with ten examples and two of them mislabelled teaches the model a fifth of the wrong thing.
Every training row is scored by a model that never saw it (K stratified folds of the
training split), cleanlab flags the rows whose given label those models confidently
contradict, and the result (score, flag, suggested class per row) is saved as the run's
"label_issues" file, so the gallery, the CLI and a report read the same record. When the
noise was injected on purpose (`data.label_noise`) the true labels are known and the
flags are scored against them (precision and recall).

The out-of-fold probabilities come from training (`core.train.fold_probabilities`); the jobs
layer joins the two (`core.jobs.find_run_label_issues`), so analysis never trains.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.config import RunConfig
from core.data import Splits
from core.methods import FILTERS, confident_learning

__all__ = [
    "LabelIssueReport", "label_issue_report", "noise_detection", "label_issue_table", "label_issue_counts",
    "save_label_issues", "read_label_issues", "label_issue_settings",
]

ANNOTATION = "label_issues"
ISSUE_COLUMNS = ["train_row", "given", "suggested", "score", "suspected", "truly_wrong"]


@dataclass(frozen=True)
class LabelIssueReport:
    """Per training row (the prepared training split's order): given label, suggested class,
    label-quality score (out-of-fold probability of the given label), flag, fold."""

    given: np.ndarray
    suggested: np.ndarray
    score: np.ndarray
    flag: np.ndarray
    fold: np.ndarray
    num_classes: int
    settings: dict[str, Any]  # folds, model, filter_by, epochs
    clean: np.ndarray | None = None  # true labels when the noise was injected on purpose
    computed: str = ""

    @property
    def num_flagged(self) -> int:
        return int(self.flag.sum())

    def per_class(self) -> np.ndarray:
        return np.bincount(self.given[self.flag], minlength=self.num_classes)

    def detection(self) -> dict[str, Any] | None:
        return None if self.clean is None else noise_detection(self.flag, self.given, self.clean)

    def to_json(self) -> dict[str, Any]:
        return {"version": 1, "num_classes": self.num_classes, "settings": self.settings, "computed": self.computed,
                "given": self.given.tolist(), "suggested": self.suggested.tolist(),
                "score": [round(float(s), 6) for s in self.score], "flag": self.flag.astype(int).tolist(),
                "fold": self.fold.tolist(), "clean": None if self.clean is None else self.clean.tolist(),
                "suspected": self.num_flagged, "suspected_per_class": self.per_class().tolist(),
                "detection": self.detection()}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> LabelIssueReport:
        arrays = {k: np.asarray(raw[k]) for k in ("given", "suggested", "score", "flag", "fold")}
        n = len(arrays["given"])
        if any(len(a) != n for a in arrays.values()) or raw.get("version") != 1:
            raise ValueError("the saved label issues are damaged (arrays of different lengths or unknown version)")
        clean = raw.get("clean")
        return cls(given=arrays["given"].astype(np.int64), suggested=arrays["suggested"].astype(np.int64),
                   score=arrays["score"].astype(np.float64), flag=arrays["flag"].astype(bool),
                   fold=arrays["fold"].astype(np.int64), num_classes=int(raw["num_classes"]),
                   settings=dict(raw.get("settings") or {}),
                   clean=None if clean is None else np.asarray(clean, dtype=np.int64),
                   computed=str(raw.get("computed", "")))


def noise_detection(flag: np.ndarray, given: np.ndarray, clean: np.ndarray) -> dict[str, Any]:
    """How well the flags find the rows whose label was changed: precision (share of flagged
    rows truly wrong), recall (share of wrong rows flagged) and the base rate a random flag
    would reach as precision (sklearn's precision_score / recall_score)."""
    from sklearn.metrics import precision_score, recall_score

    wrong = np.asarray(given) != np.asarray(clean)
    flag = np.asarray(flag, bool)
    return {"noisy_rows": int(wrong.sum()), "flagged": int(flag.sum()), "caught": int((wrong & flag).sum()),
            "base_rate": float(wrong.mean()) if len(wrong) else 0.0,
            "precision": float(precision_score(wrong, flag, zero_division=0)) if flag.any() else None,
            "recall": float(recall_score(wrong, flag, zero_division=0)) if wrong.any() else None}


def label_issue_settings(config: RunConfig, **overrides: Any) -> dict[str, Any]:
    """Folds, model, epochs and filter: the run's own `label_issues` section when it has one,
    else the cleaner's defaults; `overrides` (not None) win."""
    from core.methods import CLEANERS

    spec = config.label_issues
    params = spec.resolved_params() if spec is not None else CLEANERS.validate("confident_learning").model_dump()
    out = {k: params[k] for k in ("folds", "model", "epochs", "filter_by")}
    out.update({k: v for k, v in overrides.items() if v is not None})
    if out["filter_by"] not in FILTERS:
        raise ValueError(f"unknown filter_by {out['filter_by']!r}; one of {', '.join(FILTERS)}")
    return out


def label_issue_report(splits: Splits, probs: np.ndarray, fold: np.ndarray, settings: dict[str, Any]
                       ) -> LabelIssueReport:
    """Confident learning on out-of-fold probabilities of the run's training split (`settings`
    as `label_issue_settings` gives them, with the model that produced the probabilities)."""
    flags = confident_learning(splits.y_train, probs, filter_by=settings["filter_by"])
    clean = getattr(splits, "y_train_clean", None)
    return LabelIssueReport(
        given=flags.given, suggested=flags.suggested, score=flags.score, flag=flags.flag, fold=np.asarray(fold),
        num_classes=splits.num_classes, settings=dict(settings),
        clean=None if clean is None else np.asarray(clean, dtype=np.int64),
        computed=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def label_issue_table(report: LabelIssueReport, class_names: Sequence[str] | None = None, *,
                      only_suspected: bool = True, ids: Sequence[str] | None = None,
                      id_name: str = "case") -> pd.DataFrame:
    """One row per training row (`ISSUE_COLUMNS`), the least likely labels first: given and
    suggested class (names when given), score, flag, and whether the label is known wrong
    (None when the true labels are unknown). With `ids` (the training rows' identifiers,
    `Splits.ids_train`), a column named `id_name` (e.g. "patient_id") after `train_row`
    names each row as a person finds it."""
    name = (lambda c: str(class_names[c])) if class_names is not None else int
    rows = np.flatnonzero(report.flag) if only_suspected else np.arange(len(report.given))
    rows = rows[np.lexsort((rows, report.score[rows]))]
    wrong = (report.clean[rows] != report.given[rows]) if report.clean is not None else [None] * len(rows)
    table = pd.DataFrame({
        "train_row": rows.astype(int), "given": [name(int(c)) for c in report.given[rows]],
        "suggested": [name(int(c)) for c in report.suggested[rows]], "score": report.score[rows],
        "suspected": report.flag[rows], "truly_wrong": list(wrong)}, columns=ISSUE_COLUMNS)
    if ids is not None and len(ids) == len(report.given):
        table.insert(1, id_name, np.asarray(ids, dtype=str)[rows] if len(rows) else np.zeros(0, dtype=str))
    return table


def label_issue_counts(report: LabelIssueReport, class_names: Sequence[str] | None = None,
                       groups: Sequence[str] | None = None) -> pd.DataFrame:
    """Per given class: rows, suspected issues, their share, and (when the true labels are
    known) how many of its rows are truly wrong and how many of those were caught."""
    k = report.num_classes
    rows = np.bincount(report.given, minlength=k)
    suspected = report.per_class()
    frame = pd.DataFrame({
        "class_index": np.arange(k),
        "class": [str(class_names[c]) if class_names is not None else str(c) for c in range(k)],
        "group": list(groups) if groups is not None else [""] * k,
        "rows": rows, "suspected": suspected, "share": suspected / np.maximum(rows, 1)})
    if report.clean is not None:
        wrong = report.clean != report.given
        frame["truly_wrong"] = np.bincount(report.given[wrong], minlength=k)
        frame["caught"] = np.bincount(report.given[wrong & report.flag], minlength=k)
    return frame


def save_label_issues(store: Any, run_id: str, report: LabelIssueReport) -> None:
    store.write_annotation(run_id, ANNOTATION, report.to_json())


def read_label_issues(store: Any, run_id: str) -> LabelIssueReport | None:
    """The run's saved label issues; None when not computed yet. A damaged file raises the
    store's AnnotationDamaged (which names it and says to compute them again)."""
    raw = store.annotation(run_id, ANNOTATION)
    return LabelIssueReport.from_json(raw) if raw else None

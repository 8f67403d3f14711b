"""Suspected label issues of a stored run: out-of-fold probabilities from training, confident
learning and the per-run record from analysis. Lives with the pipeline because it is the one
place that may use both (analysis never trains)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.analysis import LabelIssueReport, label_issue_report, label_issue_settings, save_label_issues
from core.config import RunConfig
from core.data import Splits
from core.store import RunStore
from core.train import fold_probabilities, prepare_run_data

__all__ = ["find_run_label_issues", "compute_run_label_issues"]


def find_run_label_issues(config: RunConfig, splits: Splits, *, progress: Callable[[int, int], None] | None = None,
                          **overrides: Any) -> LabelIssueReport:
    """Confident learning on out-of-fold probabilities of the run's training split."""
    settings = label_issue_settings(config, **overrides)
    oof = fold_probabilities(config, splits, folds=settings["folds"], model=settings["model"],
                             epochs=settings["epochs"], progress=progress)
    return label_issue_report(splits, oof.probs, oof.fold, {**settings, "model": oof.model})


def compute_run_label_issues(store: RunStore, run_id: str, *, progress: Callable[[int, int], None] | None = None,
                             **overrides: Any) -> LabelIssueReport:
    """Compute a finished run's label issues on its exact training split and save them."""
    config = RunConfig.model_validate(store.get(run_id).config)
    report = find_run_label_issues(config, prepare_run_data(config), progress=progress, **overrides)
    save_label_issues(store, run_id, report)
    return report

"""The lessons in teaching order, from what a score hides to what fixes it.

Each lesson lives in its own module and declares itself there (`core.lessons._common.declare`);
importing them here fills the registry.
"""

from __future__ import annotations

import json
from typing import Any

from core.lessons import (  # noqa: F401  (each module registers its lesson)
    _accuracy, _calibration, _collapse, _decoupling, _f1, _margins, _robustness, _sampling, _smote, _stages,
    _multilabel_tail, _text_dice, _upsample,
)
from core.lessons._base import Lesson
from core.lessons._common import LESSONS, LessonParams, create_lesson, own_data_problem, takes_own_data

__all__ = ["LESSONS", "LessonParams", "TEACHING_ORDER", "create_lesson", "list_lessons", "lesson_json",
           "own_data_problem", "takes_own_data"]

TEACHING_ORDER = ("accuracy_hides_tail", "over_under_threshold", "upsample_or_upweight", "margins_and_priors",
                  "decoupling", "minority_collapse", "calibration", "smote_vs_random", "f1_directly",
                  "robustness_costs_tail", "rare_last_stage", "dice_on_text", "multilabel_tail_loss")


def list_lessons() -> list[str]:
    """In teaching order, not alphabetical."""
    return [name for name in TEACHING_ORDER if name in LESSONS]


def lesson_json(lesson: Lesson) -> dict[str, Any]:
    """The lesson's description for `--json` (no functions, no arrays)."""
    return {"name": lesson.name, "display": lesson.display, "claim": lesson.claim, "paper": lesson.paper,
            "questions": list(lesson.questions), "gpu_note": lesson.gpu_note, "setup": lesson.setup,
            "size": lesson.size, "runs": lesson.n_runs, "spec_hash": lesson.spec.spec_hash,
            "sweep": json.loads(json.dumps(lesson.spec.to_dict(), default=str))}

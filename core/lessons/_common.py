"""What every lesson shares: the registry, the one way a lesson is declared, the built-in
set-ups (data, model, seeds, epochs), and the measures read from a run's stored arrays.

A lesson is declared once (`declare`): its name, words and paper go to the registry and to
the `Lesson` alike. Full size is class-ready on a two-core laptop; `size="tiny"` keeps the
same cells with two seeds (or folds) and two epochs, for trying the commands and for the
tests. Seeded lessons run 8 seeds at full size: the sign-flip test needs 6 to reach
p < 0.05 at all, and a lesson's findings are adjusted as a family (Holm), whose first step
asks for p < 0.05 / 4 with four findings (8 seeds reach 0.008).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from core.analysis import balanced_accuracy, class_recall
from core.config import DataConfig
from core.data import source_label
from core.lessons._base import Finding, Lesson, LessonRun, Size, Verdict
from core.registry import Params, Registry
from core.jobs import load_sweep

__all__ = ["LESSONS", "LessonParams", "LessonSpec", "declare", "create_lesson", "takes_own_data", "own_data_problem", "train", "seeds", "digits", "MLP",
           "table_base", "bal", "recall_of", "pct", "mean_of", "sentence", "frame", "FULL_SEEDS"]

LESSONS: Registry[Lesson] = Registry("lesson")
FULL_SEEDS = 8


class LessonParams(Params):
    size: Size = Field("full", description="full: the class-ready run (about a minute on two cores); "
                                           "tiny: two seeds and two epochs, seconds, for a first look")
    data: dict[str, Any] | None = Field(None, description="another dataset (a data config, e.g. an upload) for a "
                                                          "lesson that can run on one; empty: its built-in set")


@dataclass(frozen=True)
class LessonSpec:
    """Everything a lesson says and runs; `base` and `grid` take the size."""

    name: str
    display: str
    description: str
    claim: str
    paper: str
    questions: tuple[str, ...]
    gpu_note: str
    setup: str
    base: Callable[[str], dict[str, Any]]
    grid: Callable[[str], dict[str, Any]]
    analyse: Callable[[Sequence[LessonRun]], Verdict]
    # a lesson that can also run on a person's own data: why a data config cannot be used
    # (None: it can), and the set-up in words on that data
    data_problem: Callable[[DataConfig], str | None] | None = None
    data_setup: Callable[[DataConfig, str], str] | None = None


_SPECS: dict[str, LessonSpec] = {}


def takes_own_data(name: str) -> bool:
    """Whether the lesson can run on a person's data (an upload) as well as its built-in set."""
    return _SPECS[name].data_problem is not None


def own_data_problem(name: str, data: DataConfig | dict[str, Any]) -> str | None:
    """Why the lesson cannot run on `data`, in plain words; None when it can."""
    spec = _SPECS[name]
    if spec.data_problem is None:
        return f"the lesson '{spec.display}' runs only on its built-in data"
    return spec.data_problem(data if isinstance(data, DataConfig) else DataConfig.model_validate(data))


def declare(spec: LessonSpec) -> LessonSpec:
    """Register the lesson under its name, with its words and paper taken from `spec`."""

    def build(*, size: str, data: dict[str, Any] | None = None) -> Lesson:
        base = spec.base(size)
        setup = spec.setup
        if data is not None:  # the person's own data in place of the built-in set, checked first
            config = DataConfig.model_validate(data)
            problem = own_data_problem(spec.name, config)
            if problem:
                raise ValueError(problem)
            base = {**base, "data": config.model_dump(mode="json", exclude={"fold", "label_noise", "unlabeled"},
                                                      exclude_none=True)}
            setup = spec.data_setup(config, size) if spec.data_setup else setup
        suffix = (f" on {source_label(data['source'])}" if data is not None else "") + (" (tiny)" if size == "tiny" else "")
        sweep = load_sweep({"name": f"lesson: {spec.display}{suffix}", **base, "grid": spec.grid(size)})
        if size == "tiny":
            setup += (" This is the tiny version (2 seeds or folds, 2 epochs): a first look at the machinery, "
                      "not numbers to teach from.")
        return Lesson(name=spec.name, display=spec.display, claim=spec.claim, paper=spec.paper,
                      questions=spec.questions, gpu_note=spec.gpu_note, size=size, spec=sweep, analyse=spec.analyse,
                      setup=setup)

    LESSONS.register(spec.name, display=spec.display, description=spec.description, paper=spec.paper,
                     params=LessonParams)(build)
    _SPECS[spec.name] = spec
    return spec


def create_lesson(name: str, size: str = "full", data: DataConfig | dict[str, Any] | None = None) -> Lesson:
    """The lesson at `size`, on its built-in set or on `data` (a lesson that takes own data;
    ValueError in plain words when it cannot use that data)."""
    if isinstance(data, DataConfig):
        data = data.model_dump(mode="json")
    return LESSONS.create(name, {"size": size, **({"data": data} if data is not None else {})})


# --- set-ups ----------------------------------------------------------------------------------

MLP = {"name": "mlp", "hidden": 64}


def train(size: str, epochs: int, **extra: Any) -> dict[str, Any]:
    if size == "tiny":
        return {"epochs": 2, "min_steps": 0, "nc_every": 0, "batch_size": 64, **extra}
    return {"epochs": epochs, "nc_every": 0, "batch_size": 64, **extra}


def seeds(size: str, n: int = FULL_SEEDS) -> dict[str, Any]:
    return {"seeds": [0, 1] if size == "tiny" else list(range(n))}


def digits(profile: str = "exp", ratio: float = 50, **extra: Any) -> dict[str, Any]:
    return {"source": "digits", "imbalance": {"profile": profile, "ratio": ratio, **extra}}


def table_base(size: str, model: dict | None = None, **train_extra: Any) -> dict[str, Any]:
    """The breast-cancer table with the malignant class made rare (ratio 20), over folds."""
    return {"data": {"source": "breast_cancer", "imbalance": {"profile": "exp", "ratio": 20, "class_order": [1, 0]}},
            "model": model or {"name": "mlp", "hidden": 32}, "train": train(size, 30, **train_extra),
            "evaluation": {"folds": 2 if size == "tiny" else 5}}


# --- measures and words -----------------------------------------------------------------------

def bal(r: LessonRun) -> float:
    return balanced_accuracy(r.artifacts.logits, r.artifacts.labels)


def recall_of(logits: np.ndarray, labels: np.ndarray, classes: np.ndarray) -> float:
    return class_recall(logits, labels, classes)


def pct(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:.0%}"


def mean_of(runs: Sequence[LessonRun], value) -> float:
    values = [value(r) for r in runs]
    values = [v for v in values if np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def sentence(finding: Finding, holds: str, fails: str, noise: str) -> str:
    """The caption's verdict sentence, picked by the measured status; when no verdict can be
    read, the reason (too few runs, degenerate runs)."""
    if finding.status in ("too few runs", "cannot tell"):
        return f"No verdict on the first claim: {finding.reason}."
    return {"holds": holds, "does not hold": fails}.get(finding.status, noise)


def frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["x", "series", "y", "low", "high", "sd", "n"])

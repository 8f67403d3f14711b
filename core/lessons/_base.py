"""What a lesson is, how its runs are read back, and how a claim becomes a verdict.

A lesson is a published claim about imbalance plus a small sweep that tests it on built-in
data. Its `analyse` is a pure function of the finished runs' stored arrays: every number,
interval, verdict and caption a page or the command line shows is computed from them, so a
lesson that happens not to hold on this data says so.

Verdicts rest on the 95 % t-interval of the paired differences (same seed, same split)
from `core.analysis.compare_experiments`: "holds here" when the interval lies on the side
the paper claims, "does not hold here" when it lies on the other side, "within noise" when
it covers zero. With three to five seeds no exact test can reach p < 0.05, so the interval,
not the p-value, decides; the p-value is still reported.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from core.analysis import compare_experiments, t_interval
from core.artifacts import EvalArtifacts
from core.config import RunConfig
from core.sweep import SweepSpec

__all__ = ["Lesson", "LessonRun", "Finding", "Chart", "Verdict", "paired_finding", "cell_runs", "cell_interval",
           "interval_rows", "format_interval", "SIZES", "Size", "rare_classes", "train_logits"]

Size = Literal["full", "tiny"]
SIZES: tuple[str, ...] = ("full", "tiny")
Expect = Literal["higher", "lower", "different"]


@dataclass(frozen=True)
class LessonRun:
    """One finished run of a lesson: its grid cell, its config and its stored arrays."""

    cell: dict[str, str]
    config: RunConfig
    artifacts: EvalArtifacts
    run_id: str = ""

    @property
    def pair(self) -> tuple:
        """Same split and seed: what pairs two runs of different cells."""
        c = self.config
        return c.data.seed, None if c.data.fold is None else c.data.fold.index, c.train.seed


@dataclass(frozen=True)
class Finding:
    """One measured difference a - b with its interval and what it says about the claim."""

    label: str  # what is compared, in words
    measure: str  # the number, in words ("balanced accuracy")
    estimate: float
    ci: tuple[float, float]
    status: str  # "holds" | "does not hold" | "within noise" | "not enough runs"
    p_value: float = float("nan")
    test: str = ""
    n: int = 0

    @property
    def text(self) -> str:
        """"holds here: +0.14 [+0.09, +0.19]" and its kin."""
        if self.status == "not enough runs":
            return "not enough finished runs to tell"
        return f"{self.status} here: {format_interval(self.estimate, self.ci)}"

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "measure": self.measure, "estimate": self.estimate, "ci": list(self.ci),
                "status": self.status, "text": self.text, "p_value": self.p_value, "test": self.test, "n": self.n}


@dataclass(frozen=True)
class Chart:
    """Tidy data for one figure: columns x, y, low, high, series (see core.viz.lesson_figure)."""

    kind: Literal["bars", "lines", "scatter"]
    title: str
    frame: pd.DataFrame
    x_title: str
    y_title: str
    log_x: bool = False
    reference: float | None = None  # a dashed line across (e.g. the simplex value)
    reference_label: str = ""
    bounds: tuple[float, float] | None = (0.0, 1.0)  # what the measure can take (None: unbounded)


@dataclass(frozen=True)
class Verdict:
    """What the lesson's runs say: the headline finding first, then the others."""

    findings: tuple[Finding, ...]
    caption: str
    charts: tuple[Chart, ...] = ()
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    n_runs: int = 0

    @property
    def status(self) -> str:
        return self.findings[0].status if self.findings else "not enough runs"

    @property
    def headline(self) -> str:
        return self.findings[0].text if self.findings else "not enough finished runs to tell"

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "headline": self.headline, "caption": self.caption, "n_runs": self.n_runs,
                "findings": [f.to_dict() for f in self.findings],
                "table": self.table.replace({np.nan: None}).to_dict(orient="records")}


@dataclass(frozen=True)
class Lesson:
    """A claim, its paper, the sweep that tests it, and the pure analysis of that sweep."""

    name: str
    display: str
    claim: str
    paper: str
    questions: tuple[str, ...]
    gpu_note: str
    size: str
    spec: SweepSpec
    analyse: Callable[[Sequence[LessonRun]], Verdict]
    setup: str  # the sweep in words: data, model, epochs, seeds

    @property
    def n_runs(self) -> int:
        from core.sweep import expand_sweep

        cells, _ = expand_sweep(self.spec)
        return sum(len(c.config.experiment_runs()) for c in cells)


# --- reading runs ---------------------------------------------------------------------------

def cell_runs(runs: Sequence[LessonRun], **settings: str) -> list[LessonRun]:
    """The runs whose cell has these settings (axis names with dots written as `__`)."""
    want = {k.replace("__", "."): str(v) for k, v in settings.items()}
    return [r for r in runs if all(r.cell.get(k) == v for k, v in want.items())]


def rare_classes(counts: np.ndarray) -> np.ndarray:
    """The third of the classes with the fewest training samples (at least one): the
    "rare classes" a lesson speaks of, the same rule on any data."""
    counts = np.asarray(counts)
    k = max(1, len(counts) // 3)
    return np.argsort(counts, kind="stable")[:k]


def train_logits(artifacts: EvalArtifacts) -> np.ndarray:
    """Logits of the stored training subset, from its features and the classifier (the
    model's last layer is linear, so these are exactly what the model would output)."""
    return np.asarray(artifacts.train_features, dtype=np.float64) @ np.asarray(artifacts.head_weight).T \
        + np.asarray(artifacts.head_bias)


# --- numbers into verdicts ------------------------------------------------------------------

def format_interval(estimate: float, ci: Sequence[float], signed: bool = True) -> str:
    fmt = "{:+.2f}" if signed else "{:.2f}"
    if not all(math.isfinite(v) for v in (estimate, *ci)):
        return fmt.format(estimate) if math.isfinite(estimate) else "n/a"
    return f"{fmt.format(estimate)} [{fmt.format(ci[0])}, {fmt.format(ci[1])}]"


def _status(ci: tuple[float, float], expect: Expect) -> str:
    low, high = ci
    if not (math.isfinite(low) and math.isfinite(high)):
        return "within noise"
    if expect == "different":
        return "holds" if low > 0 or high < 0 else "within noise"
    on_claim = low > 0 if expect == "higher" else high < 0
    against = high < 0 if expect == "higher" else low > 0
    return "holds" if on_claim else "does not hold" if against else "within noise"


def paired_finding(
    runs_a: Sequence[LessonRun],
    runs_b: Sequence[LessonRun],
    value: Callable[[LessonRun], float],
    *,
    label: str,
    measure: str,
    expect: Expect,
    value_b: Callable[[LessonRun], float] | None = None,
) -> Finding:
    """value(a) - value(b) over runs paired by seed and split, through
    `core.analysis.compare_experiments` (sign-flip test over seeds, corrected resampled
    t-test over folds); `value_b` scores the b side when it differs (e.g. the same run
    before and after a post-hoc step: pass the same runs twice)."""
    value_b = value_b or value
    by_pair = {r.pair: r for r in runs_b}
    pairs = [(a, by_pair[a.pair]) for a in runs_a if a.pair in by_pair]
    a = np.array([value(x) for x, _ in pairs], dtype=np.float64)
    b = np.array([value_b(y) for _, y in pairs], dtype=np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if a.size < 2:
        return Finding(label, measure, float(np.mean(a - b)) if a.size else float("nan"), (math.nan, math.nan),
                       "not enough runs", n=int(a.size))
    folds = pairs[0][0].config.data.fold
    higher = True  # the status below reads the interval; compare_experiments' own words are not used
    if folds is not None:
        k = folds.k
        counts = [p[0].artifacts.class_counts.sum() for p in pairs]
        n_test = [p[0].artifacts.labels.size for p in pairs]
        repeats = a.size // k
        if repeats >= 1 and a.size == k * repeats:
            result = compare_experiments(a, b, metric=measure, design="folds", n_train=int(np.mean(counts)),
                                         n_test=int(np.mean(n_test)), folds=k, repeats=repeats,
                                         higher_is_better=higher)
        else:
            result = compare_experiments(a, b, metric=measure, design="seeds", higher_is_better=higher)
    else:
        result = compare_experiments(a, b, metric=measure, design="seeds", higher_is_better=higher)
    ci = (float(result.ci[0]), float(result.ci[1]))
    return Finding(label, measure, float(result.difference), ci, _status(ci, expect), float(result.p_value),
                   result.test, int(result.n))


def cell_interval(runs: Sequence[LessonRun], value: Callable[[LessonRun], float]) -> dict[str, Any]:
    """Mean, sd and 95 % t-interval of one number over a cell's runs."""
    return t_interval([value(r) for r in runs])


def interval_rows(x: Any, series: str, runs: Sequence[LessonRun], value: Callable[[LessonRun], float]) -> dict:
    """One row of a chart's tidy frame: the cell's mean and interval."""
    s = cell_interval(runs, value)
    low, high = s["ci"]
    return {"x": x, "series": series, "y": s["mean"], "low": low, "high": high, "sd": s["sd"], "n": s["n"]}

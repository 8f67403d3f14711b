"""What a lesson is, how its runs are read back, and how a claim becomes a verdict.

A lesson is a published claim about imbalance plus a small sweep that tests it on built-in
data. Its `analyse` is a pure function of the finished runs' stored arrays: every number,
interval, verdict and caption a page or the command line shows is computed from them, so a
lesson that happens not to hold on this data says so.

Each finding is one paired comparison (same seed, same split) through
`core.analysis.compare_experiments`, the procedure `compare` and the Compare page use: the
sign-flip test over seeds, the corrected resampled t-test over folds. A lesson's findings
are one family, adjusted together (Holm, `core.analysis.adjust_family`), and the words are
read from the adjusted comparison: "holds here" when its interval lies on the side the
paper claims (so its adjusted p is below 0.05), "does not hold here" on the other side,
"within noise" when it covers zero, "too few runs to tell" when the runs cannot reach the
level, and "cannot tell" with the reason when the runs are degenerate (every run predicts
one class, zero spread).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from core.analysis import Comparison, adjust_family, compare_experiments, one_class_reason, t_interval
from core.artifacts import EvalArtifacts
from core.config import RunConfig
from core.jobs import SweepSpec, expand_sweep
from core.text import interval_text

__all__ = ["Lesson", "LessonRun", "Finding", "Chart", "Verdict", "paired_finding", "family", "cell_runs",
           "cell_interval", "interval_rows", "format_interval", "SIZES", "Size", "rare_classes", "train_logits"]

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
    """One measured difference a - b with its interval and what it says about the claim.

    `status`: "holds" | "does not hold" | "within noise" | "too few runs" | "cannot tell" |
    "not enough runs"; `comparison` is the test it was read from (None with fewer than two
    paired runs)."""

    label: str  # what is compared, in words
    measure: str  # the number, in words ("balanced accuracy")
    estimate: float
    ci: tuple[float, float]
    status: str
    p_value: float = float("nan")
    test: str = ""
    n: int = 0
    expect: str = "higher"
    comparison: Comparison | None = field(default=None, compare=False, repr=False)

    @property
    def p_adjusted(self) -> float | None:
        return None if self.comparison is None else self.comparison.p_adjusted

    @property
    def reason(self) -> str:
        """Why no verdict can be read ("too few seeds to tell (...)", "cannot tell: ..."), or ""."""
        if self.comparison is None or self.status not in ("too few runs", "cannot tell"):
            return ""
        return self.comparison.verdict

    @property
    def text(self) -> str:
        """"holds here: +0.14 [+0.09, +0.19]" and its kin."""
        if self.status == "not enough runs":
            return "not enough finished runs to tell"
        if self.status in ("too few runs", "cannot tell"):
            return f"{self.reason}: {format_interval(self.estimate, (math.nan, math.nan))}"
        return f"{self.status} here: {format_interval(self.estimate, self.ci)}"

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "measure": self.measure, "estimate": self.estimate, "ci": list(self.ci),
                "status": self.status, "text": self.text, "p_value": self.p_value, "p_adjusted": self.p_adjusted,
                "adjustment": "" if self.comparison is None else self.comparison.adjustment,
                "confidence": 0.95 if self.comparison is None else self.comparison.confidence,
                "test": self.test, "n": self.n}


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
    """"+0.14 [+0.09, +0.19]"; ends near 0 keep their sign visible (`core.text.number`)."""
    return interval_text(estimate, ci, digits=2, signed=signed)


def _status(comparison: Comparison, expect: Expect) -> str:
    """The claim's words from the comparison's own status (read from its interval)."""
    if comparison.status == "too few":
        return "too few runs"
    if comparison.status == "cannot tell":
        return "cannot tell"
    if not comparison.beyond_noise:
        return "within noise"
    if expect == "different":
        return "holds"
    on_claim = comparison.ci[0] > 0 if expect == "higher" else comparison.ci[1] < 0
    return "holds" if on_claim else "does not hold"


def _finding(label: str, measure: str, expect: Expect, comparison: Comparison) -> Finding:
    return Finding(label, measure, float(comparison.difference), (float(comparison.ci[0]), float(comparison.ci[1])),
                   _status(comparison, expect), float(comparison.p_value), comparison.test, int(comparison.n),
                   expect, comparison)


def _one_class(runs: Sequence[LessonRun]) -> str:
    """The reason when every run given predicts a single class for every test case (a
    multi-label run decides each finding on its own, so it has no single class to predict)."""
    if not runs or getattr(runs[0].artifacts, "multilabel", False):
        return ""
    reason = one_class_reason(*(np.asarray(r.artifacts.logits).argmax(axis=1) for r in runs))
    return reason.replace("both predict", "every run predicts") if reason else ""


def paired_finding(
    runs_a: Sequence[LessonRun],
    runs_b: Sequence[LessonRun],
    value: Callable[[LessonRun], float],
    *,
    label: str,
    measure: str,
    expect: Expect,
    value_b: Callable[[LessonRun], float] | None = None,
    bounds: tuple[float, float] | None = (0.0, 1.0),
) -> Finding:
    """value(a) - value(b) over runs paired by seed and split, through
    `core.analysis.compare_experiments` (sign-flip test over seeds, corrected resampled
    t-test over folds); `value_b` scores the b side when it differs (e.g. the same run
    before and after a post-hoc step: pass the same runs twice). `bounds`: the range of the
    measure (None: unbounded). Runs that all predict one class give "cannot tell"."""
    value_b = value_b or value
    by_pair = {r.pair: r for r in runs_b}
    pairs = [(a, by_pair[a.pair]) for a in runs_a if a.pair in by_pair]
    a = np.array([value(x) for x, _ in pairs], dtype=np.float64)
    b = np.array([value_b(y) for _, y in pairs], dtype=np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if a.size < 2:
        return Finding(label, measure, float(np.mean(a - b)) if a.size else float("nan"), (math.nan, math.nan),
                       "not enough runs", n=int(a.size), expect=expect)
    kept = [p for p, k in zip(pairs, keep, strict=True) if k]
    degenerate = _one_class([x for x, _ in kept] + [y for _, y in kept])
    folds = kept[0][0].config.data.fold
    common = {"metric": measure, "higher_is_better": True, "bounds": bounds, "degenerate": degenerate}
    if folds is not None and a.size % folds.k == 0:
        first = kept[0][0].artifacts
        result = compare_experiments(a, b, design="folds", n_test=int(first.labels.size),
                                     n_train=int(first.labels.size) * (folds.k - 1), folds=folds.k,
                                     repeats=a.size // folds.k, **common)
    else:
        result = compare_experiments(a, b, design="seeds", **common)
    return _finding(label, measure, expect, result)


def family(*findings: Finding) -> tuple[Finding, ...]:
    """A lesson's findings adjusted together (Holm): each keeps its raw p and gains the
    adjusted one, and its words are re-read from the adjusted comparison."""
    tested = [f for f in findings if f.comparison is not None]
    adjusted = iter(adjust_family([f.comparison for f in tested], "holm"))
    out = []
    for f in findings:
        out.append(_finding(f.label, f.measure, f.expect, next(adjusted)) if f.comparison is not None else f)
    return tuple(out)


def cell_interval(runs: Sequence[LessonRun], value: Callable[[LessonRun], float],
                  bounds: tuple[float, float] | None = (0.0, 1.0)) -> dict[str, Any]:
    """Mean, sd and 95 % t-interval (cut at the measure's range) of one number over a cell's runs."""
    return t_interval([value(r) for r in runs], bounds=bounds)


def interval_rows(x: Any, series: str, runs: Sequence[LessonRun], value: Callable[[LessonRun], float],
                  bounds: tuple[float, float] | None = (0.0, 1.0)) -> dict:
    """One row of a chart's tidy frame: the cell's mean and interval."""
    s = cell_interval(runs, value, bounds)
    low, high = s["ci"]
    return {"x": x, "series": series, "y": s["mean"], "low": low, "high": high, "sd": s["sd"], "n": s["n"]}

"""How a comparison becomes words: one procedure, one decision.

Each comparison is a `PairedTest`: one procedure that gives the difference a - b, its
p-value and its interval at *any* confidence level, all from the same computation (a test
and its own inversion; `core.analysis._paired` builds them). The words are read from the
interval at the level in force, so "beyond noise" holds exactly when that interval excludes
0, which is exactly when p <= alpha: the words, the interval and the p-value printed beside
them cannot disagree (REFERENCE.md, "Uncertainty and comparisons").

Several comparisons shown together are adjusted as a family (`adjust_family`): Holm for the
family-wise error (`holm_adjust`: the step-down written out, as `multipletests` computes it
but without the full garbage collection statsmodels runs on every Holm call, a fifth of a
second or more in a process holding torch and Streamlit), Benjamini-Hochberg for the false discovery
rate through `statsmodels.stats.multitest.multipletests`. The interval printed is then the one at the
level that makes it agree with the adjusted decision: with R of m rejected, Holm rejects
exactly the p-values <= alpha / (m - R) and BH exactly those <= R alpha / m (alpha / m when
none), so the intervals at 1 - alpha / (m - R), resp. 1 - R alpha / m (the false coverage
rate intervals of Benjamini & Yekutieli 2005), exclude 0 exactly for the rejected ones.

Where no test can decide (too few pairs for the test to reach the level, zero spread,
models that predict one class for every case) the words say why and claim nothing: no
p-value, and an interval that excludes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from statsmodels.stats.multitest import multipletests

from core.analysis._calibration import metric_info_of

__all__ = ["Comparison", "PairedTest", "adjust_family", "consistency_problem", "decide", "difference_bounds", "format_p",
           "holm_adjust", "metric_bounds", "DECISIVE", "FAMILY_METHODS"]

DECISIVE = ("better", "worse", "different")  # statuses that claim a difference beyond noise
FAMILY_METHODS = {"holm": "Holm (family-wise error)", "fdr_bh": "Benjamini-Hochberg (false discovery rate)"}
_NOT_TESTED = ("too few", "cannot tell")


@dataclass(frozen=True)
class PairedTest:
    """What one paired procedure measured.

    `interval(confidence)` gives the interval at any level from the same computation as
    `p_value`, so that p <= 1 - confidence exactly when it excludes 0. `too_few` names why
    this test cannot reach the level however large the difference (then p is the smallest
    it could give); `degenerate` names why no test applies at all.
    """

    estimate: float
    p_value: float
    n: int
    test: str
    interval: Callable[[float], tuple[float, float]] = field(repr=False)
    unit: str = "pairs"  # what n counts, in words: "seeds", "folds", "test cases"
    min_p: float = 0.0  # the smallest p-value this test can give at this n
    too_few: str = ""
    degenerate: str = ""
    note: str = ""


@dataclass(frozen=True)
class Comparison:
    """The difference a - b of one metric, its interval, p-value, the test behind both, and
    the verdict read from them. `status`: better | worse | different (beyond noise),
    within noise, too few (the test cannot decide at this n), cannot tell (degenerate)."""

    metric: str
    difference: float
    ci: tuple[float, float]
    p_value: float
    test: str
    verdict: str
    status: str
    n: int
    note: str = ""
    confidence: float = 0.95
    p_adjusted: float | None = None
    adjustment: str = ""
    evidence: PairedTest | None = field(default=None, compare=False, repr=False)
    higher_is_better: bool | None = True

    @property
    def beyond_noise(self) -> bool:
        return self.status in DECISIVE

    def to_dict(self) -> dict:
        return {"metric": self.metric, "difference": self.difference, "ci": [self.ci[0], self.ci[1]],
                "confidence": self.confidence, "p_value": self.p_value, "p_adjusted": self.p_adjusted,
                "adjustment": self.adjustment, "test": self.test, "verdict": self.verdict, "status": self.status,
                "beyond_noise": self.beyond_noise, "n": self.n, "note": self.note}


# --- ranges -----------------------------------------------------------------------------------

def metric_bounds(metric: str) -> tuple[float, float] | None:
    """The range a registered metric can take, or None (unknown or unbounded)."""
    info = metric_info_of(metric)
    return None if info is None else info.bounds


def difference_bounds(bounds: tuple[float, float] | None) -> tuple[float, float]:
    """The range of a difference of two values in `bounds`: no interval needs to go beyond it."""
    if bounds is None:
        return -math.inf, math.inf
    low, high = bounds
    return low - high, high - low


# --- one comparison ---------------------------------------------------------------------------

def format_p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def _direction(metric: str, higher_is_better: bool | None, explicit: bool) -> bool | None:
    if explicit:
        return higher_is_better
    info = metric_info_of(metric)
    if info is None:
        raise ValueError(f"unknown metric {metric!r}: pass higher_is_better")
    return info.higher_is_better


def _status_from(ci: tuple[float, float], estimate: float, higher_is_better: bool | None) -> str:
    low, high = ci
    if not (low > 0 or high < 0):
        return "within noise"
    if higher_is_better is None:
        return "different"
    return "better" if (low > 0) == higher_is_better else "worse"


def _words(status: str, test: PairedTest, p_text: str) -> str:
    if status == "cannot tell":
        return f"cannot tell: {test.degenerate}"
    if status == "too few":
        return f"too few {test.unit} to tell ({test.too_few})"
    if status == "different":
        return f"different beyond noise ({p_text})"
    if status in ("better", "worse"):
        return f"{status} beyond noise ({p_text})"
    return f"within noise ({p_text})"


def decide(
    test: PairedTest,
    metric: str,
    *,
    higher_is_better: bool | None = None,
    alpha: float = 0.05,
    explicit_direction: bool = False,
) -> Comparison:
    """The comparison's words, read from `test`'s own interval at 1 - alpha. For a
    lower-is-better metric (ECE) a negative difference is "better". `higher_is_better`
    is looked up from the metric registry unless `explicit_direction` (None: no better
    direction, a clear gap is "different")."""
    if not 0 < alpha < 1:
        raise ValueError("alpha must lie strictly between 0 and 1")
    direction = _direction(metric, higher_is_better, explicit_direction or higher_is_better is not None)
    ci = tuple(float(v) for v in test.interval(1 - alpha))
    if test.degenerate:
        status, p, ci = "cannot tell", math.nan, (math.nan, math.nan)
    elif test.too_few or test.min_p > alpha:
        if not test.too_few:
            test = replace(test, too_few=f"with {test.n} {test.unit} no p below {test.min_p:.2g} is possible")
        status, p = "too few", test.p_value
    else:
        status, p = _status_from(ci, test.estimate, direction), test.p_value
    return Comparison(metric=metric, difference=float(test.estimate), ci=ci, p_value=float(p), test=test.test,
                      verdict=_words(status, test, format_p(p) if math.isfinite(p) else ""), status=status,
                      n=int(test.n), note=test.note, confidence=1 - alpha, evidence=test,
                      higher_is_better=direction)


# --- several comparisons at once --------------------------------------------------------------

def holm_adjust(p_values: Sequence[float], alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Holm's step-down (Holm 1979): (rejected, adjusted p) in the input's order. Sorted
    ascending, the j-th smallest p (from 0) is multiplied by m - j, a running maximum keeps
    the adjusted values in order, and 1 caps them; a p is rejected exactly when its adjusted
    p is <= alpha."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(np.maximum.accumulate(p[order] * np.arange(p.size, 0, -1)), 1.0)
    return adjusted <= alpha, adjusted


def _family_level(method: str, rejected: np.ndarray, alpha: float) -> float:
    """The per-comparison level whose intervals exclude 0 exactly for the rejected ones."""
    m, r = rejected.size, int(rejected.sum())
    if method == "holm":
        return alpha / (m - r) if r < m else alpha
    return r * alpha / m if r else alpha / m


def adjust_family(comparisons: Sequence[Comparison], method: str = "holm", alpha: float = 0.05) -> list[Comparison]:
    """The comparisons of one view, adjusted for being looked at together.

    Only comparisons with a p-value take part (too few / cannot tell claim nothing and stay
    as they are); with one such comparison nothing changes but the label. Each keeps its raw
    p, gains the adjusted p and `adjustment` ("Holm over 4 comparisons"), and its interval
    and words are re-read at the family's level (see the module docstring), so they agree
    with the adjusted p at `alpha`."""
    if method not in FAMILY_METHODS:
        raise ValueError(f"method must be one of {', '.join(FAMILY_METHODS)}, got {method!r}")
    tested = [i for i, c in enumerate(comparisons) if c.status not in _NOT_TESTED and math.isfinite(c.p_value)]
    out = list(comparisons)
    if not tested:
        return out
    p = np.array([comparisons[i].p_value for i in tested])
    if len(tested) == 1:
        rejected, adjusted = p <= alpha, p
    else:
        rejected, adjusted = (holm_adjust(p, alpha) if method == "holm"
                              else multipletests(p, alpha=alpha, method=method)[:2])
    level = _family_level(method, rejected, alpha) if len(tested) > 1 else alpha
    name = "Holm" if method == "holm" else "Benjamini-Hochberg"
    label = f"{name} over {len(tested)} comparisons" if len(tested) > 1 else ""
    for i, p_adj in zip(tested, adjusted, strict=True):
        c = comparisons[i]
        ci = tuple(float(v) for v in c.evidence.interval(1 - level)) if c.evidence is not None else c.ci
        status = _status_from(ci, c.difference, c.higher_is_better)
        p_text = format_p(c.p_value) + (f"; {name}-adjusted {format_p(float(p_adj))}" if label else "")
        words = _words(status, c.evidence, p_text) if c.evidence is not None else c.verdict
        if status == "within noise" and c.evidence is not None and c.evidence.min_p > level:
            status = "too few"  # no p this test can give would pass the family's level
            words = (f"too few {c.evidence.unit} to tell with {len(tested)} comparisons at once (with {c.n} "
                     f"{c.evidence.unit} no p below {c.evidence.min_p:.2g} is possible; the family needs "
                     f"{level:.2g})")
        out[i] = replace(c, ci=ci, status=status, verdict=words, confidence=1 - level, p_adjusted=float(p_adj),
                         adjustment=label)
    return out


def consistency_problem(comparison: Comparison, alpha: float = 0.05) -> str:
    """What disagrees between a comparison's words, interval and p-value, or "" when they
    agree: "beyond noise" exactly when the interval excludes 0 and the (adjusted) p is at
    most alpha; "within noise" and "too few" with an interval that holds 0 and p above
    alpha; "cannot tell" with neither p nor interval. A guard for the tests and the bench."""
    c = comparison
    low, high = c.ci
    p = c.p_adjusted if c.p_adjusted is not None else c.p_value
    excludes = low > 0 or high < 0
    first = c.verdict.split(" ")[0]
    if c.status == "cannot tell":
        ok = math.isnan(p) and math.isnan(low) and math.isnan(high) and c.verdict.startswith("cannot tell")
        return "" if ok else f"cannot tell with p {p} and interval {c.ci}"
    if c.status in DECISIVE:
        if not excludes:
            return f"{c.status} beyond noise but the interval {c.ci} holds 0"
        if not p <= alpha:
            return f"{c.status} beyond noise but p = {p} > {alpha}"
        if c.higher_is_better is not None and (low > 0) != ((c.status == "better") == c.higher_is_better):
            return f"{c.status} but the interval {c.ci} lies on the other side"
        return "" if first == c.status else f"status {c.status} but words {c.verdict!r}"
    if excludes:
        return f"{c.status} but the interval {c.ci} excludes 0"
    if math.isfinite(p) and p <= alpha:
        return f"{c.status} but p = {p} <= {alpha}"
    expected = "within" if c.status == "within noise" else "too"
    return "" if first == expected else f"status {c.status} but words {c.verdict!r}"

"""The one decision rule: for every kind of comparison the words agree with the interval and
the p-value printed beside them, through the functions and through `tailscope compare --json`."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from core.analysis import Comparison, compare_experiments, consistency_problem, decide

ROOT = Path(__file__).resolve().parent.parent


def _bench():
    spec = importlib.util.spec_from_file_location("verdict_agreement", ROOT / "bench" / "verdict_agreement.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_random_paired_cases_never_disagree():
    """A draw of the bench's cases (the bench runs 10,000): seeds, folds, single runs, families."""
    result = _bench().check_functions(500, seed=11, run_share=0.05, family_share=0.08)
    assert result["disagreements"] == 0, result["examples"]
    assert {"better", "within noise", "too few", "cannot tell"} <= set(result["statuses"])  # every branch drawn


def test_the_command_line_follows_the_same_rule(monkeypatch):
    result = _bench().check_cli(6, seed=3)
    assert result["cases"] == 6 and result["disagreements"] == 0, result["examples"]


def test_the_guard_catches_each_kind_of_disagreement():
    """consistency_problem is what the property test relies on: it must see every mismatch."""
    good = compare_experiments([0.9, 0.8, 0.85, 0.95, 0.9, 0.88], [0.5] * 6, metric="accuracy", design="seeds")
    assert good.status == "better" and consistency_problem(good) == ""
    from dataclasses import replace

    assert "holds 0" in consistency_problem(replace(good, ci=(-0.1, 0.3)))
    assert "p = 0.2" in consistency_problem(replace(good, p_value=0.2))
    assert "excludes 0" in consistency_problem(replace(good, status="within noise", verdict="within noise (p = 0.03)"))
    assert "other side" in consistency_problem(replace(good, status="worse", verdict="worse beyond noise"))
    broken = Comparison("accuracy", 0.3, (math.nan, math.nan), 0.01, "t", "cannot tell: x", "cannot tell", 4)
    assert consistency_problem(broken)


@pytest.mark.parametrize("seeds", [2, 3, 4, 5])
def test_five_seeds_or_fewer_never_claim_a_difference_whatever_the_numbers(seeds):
    a = np.linspace(0.9, 0.95, seeds)
    result = compare_experiments(a, np.full(seeds, 0.1), metric="balanced_accuracy", design="seeds")
    assert result.status == "too few" and result.ci[0] <= 0 <= result.ci[1]


def test_decide_reads_the_interval_at_the_level_in_force():
    from core.analysis import sign_flip_test

    test = sign_flip_test(np.array([0.02, 0.05, 0.01, 0.04, 0.03, 0.06, -0.01, 0.05]))
    for alpha in (0.01, 0.05, 0.2):
        c = decide(test, "accuracy", alpha=alpha)
        assert c.confidence == pytest.approx(1 - alpha) and consistency_problem(c, alpha) == ""
        assert c.beyond_noise == (test.p_value <= alpha)

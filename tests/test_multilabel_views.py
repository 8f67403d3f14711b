"""One finding of a multi-label run as its own yes/no question: calibration and operating point."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import calibration_curve


def _independent_ece(p: np.ndarray, y: np.ndarray, n_bins: int) -> float:
    """ECE from scikit-learn's reliability curve (its bins: (lo, hi], 0 in the first), weighted by a
    hand count of each bin's cases."""
    share, mean_p = calibration_curve(y, p, n_bins=n_bins, strategy="uniform")
    edges = np.linspace(0, 1, n_bins + 1)
    counts = [np.count_nonzero((p > lo) & (p <= hi)) + (np.count_nonzero(p == 0) if i == 0 else 0)
              for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:]))]
    counts = np.array([c for c in counts if c])
    return float(np.sum(counts / p.size * np.abs(share - mean_p)))


def test_a_findings_ece_matches_an_independent_computation_and_unknown_entries_are_left_out():
    from core.analysis import label_cases, label_ece, label_reliability

    rng = np.random.default_rng(3)
    logits = rng.normal(-1.5, 2.0, size=(400, 3))
    truth = (rng.random((400, 3)) < 1 / (1 + np.exp(-logits * 0.6))).astype(float)
    truth[rng.random((400, 3)) < 0.2] = np.nan  # unknown entries
    p, y = label_cases(logits, truth, 1)
    known = np.isfinite(truth[:, 1])
    assert p.size == known.sum() and np.allclose(p, 1 / (1 + np.exp(-logits[known, 1])))
    assert np.array_equal(y, truth[known, 1] == 1)
    assert label_ece(p, y, 10) == pytest.approx(_independent_ece(p, y.astype(int), 10), abs=1e-12)
    table = label_reliability(p, y, 10)
    filled = table[table["count"] > 0]
    share, mean_p = calibration_curve(y.astype(int), p, n_bins=10)
    assert np.allclose(filled["accuracy"], share) and np.allclose(filled["confidence"], mean_p)
    assert table["count"].sum() == p.size


def test_a_findings_ece_interval_holds_its_estimate_and_a_perfect_model_scores_zero():
    from core.analysis import label_ece, label_ece_interval

    rng = np.random.default_rng(0)
    p = rng.random(300)
    y = rng.random(300) < p
    found = label_ece_interval(p, y, 10, n_resamples=200)
    assert found.estimate == pytest.approx(label_ece(p, y, 10))
    assert found.low <= found.estimate <= found.high and found.high - found.low > 0
    exact = np.repeat([0.0, 1.0], 20)
    assert label_ece(exact, exact == 1) == 0.0
    with pytest.raises(ValueError, match="between 0 and 1"):
        label_ece(np.array([1.5]), np.array([True]))


def test_the_calibration_table_lists_every_finding_most_trained_first():
    from core.analysis import label_calibration_table, label_ece, label_cases

    rng = np.random.default_rng(1)
    logits, truth = rng.normal(size=(120, 3)), (rng.random((120, 3)) < 0.3).astype(float)
    truth[:5, 2] = np.nan
    per_label = pd.DataFrame({"label": ["a", "b", "c"], "train_count": [5, 50, 20], "group": ["tail", "head", "medium"]})
    table = label_calibration_table(logits, truth, per_label, 10, n_resamples=50)
    assert table["label"].tolist() == ["b", "c", "a"]
    assert table["test_known"].tolist() == [120, 115, 120]
    assert table.loc[2, "ece"] == pytest.approx(label_ece(*label_cases(logits, truth, 0), 10))


def test_a_findings_ppv_at_a_deployment_prevalence_is_the_hand_worked_bayes_value():
    from core.analysis import label_operating_point

    # 10 cases with the finding (8 flagged), 20 without (2 flagged), 6 unknown (all flagged, left out)
    chance = np.r_[np.full(8, 0.9), np.full(2, 0.1), np.full(2, 0.8), np.full(18, 0.2), np.full(6, 0.95)]
    truth = np.r_[np.ones(10), np.zeros(20), np.full(6, np.nan)]
    logits = np.column_stack([np.log(chance / (1 - chance)), np.zeros(36)])
    matrix = np.column_stack([truth, np.ones(36)])
    point = label_operating_point(logits, matrix, 0, 0.5, prevalence=0.02)
    assert (point["tp"], point["fn"], point["fp"], point["tn"]) == (8, 2, 2, 18)
    assert point["sensitivity"]["value"] == pytest.approx(0.8) and point["specificity"]["value"] == pytest.approx(0.9)
    # Bayes by hand: 0.8 * 0.02 / (0.8 * 0.02 + 0.1 * 0.98) = 0.016 / 0.114
    assert point["ppv"]["value"] == pytest.approx(0.016 / 0.114)
    # NPV: 0.9 * 0.98 / (0.9 * 0.98 + 0.2 * 0.02) = 0.882 / 0.886
    assert point["npv"]["value"] == pytest.approx(0.882 / 0.886)
    assert point["ppv"]["low"] < point["ppv"]["value"] < point["ppv"]["high"]
    own = label_operating_point(logits, matrix, 0, 0.5)
    assert own["ppv"]["value"] == pytest.approx(8 / 10) and own["prevalence"] == pytest.approx(10 / 30)


def test_missed_findings_are_the_unflagged_cases_that_carry_it_most_confident_miss_first():
    from core.analysis import missed_findings

    chance = np.array([[0.2, 0.9, 0.1], [0.05, 0.1, 0.7], [0.6, 0.9, 0.9], [0.1, 0.2, 0.2], [0.3, 0.6, 0.1]])
    truth = np.array([[1, 1, 0], [1, 0, 1], [1, 1, 1], [np.nan, 0, 0], [0, 1, 0]])
    missed = missed_findings(np.log(chance / (1 - chance)), truth, [0.5, 0.5, 0.5], 0)
    # case 2 was flagged (0.6), case 3's entry is unknown, case 4 lacks it: only 1 and 0, least chance first
    assert missed["row"].tolist() == [1, 0]
    assert missed["chance"].to_numpy() == pytest.approx([0.05, 0.2])
    assert missed["others_present"].tolist() == [(2,), (1,)]
    assert missed["others_flagged"].tolist() == [(2,), (1,)]


def test_the_map_colours_each_case_with_without_or_unknown_for_the_finding():
    from core.viz import label_map_figure

    targets = np.array([1, 0, np.nan, 0, 1, 0])
    fig = label_map_figure(np.arange(12.0).reshape(6, 2), targets, np.linspace(0, 1, 6), "a<b>")
    points = {t.name: list(t.x) for t in fig.data}
    assert points == {"without a&lt;b&gt; (3)": [2.0, 6.0, 10.0], "entry unknown (1)": [4.0],
                      "with a&lt;b&gt; (2)": [0.0, 8.0]}
    assert fig.data[-1].name.startswith("with ")  # the cases with the finding drawn on top
    with pytest.raises(ValueError, match="2 or 3 coordinates"):
        label_map_figure(np.zeros((6, 4)), targets, np.zeros(6), "a")

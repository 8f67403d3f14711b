"""Calibration metrics against torchmetrics, sklearn and hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss, recall_score

from core.analysis._calibration import (
    CALIBRATION_METRICS,
    adaptive_ece,
    brier,
    calibration_gap_by_group,
    calibration_summary,
    classwise_ece,
    ece,
    mce,
    nll,
    per_class_ece,
    reliability_bins,
)
from core.analysis._metrics import softmax


def _random(n: int = 2000, k: int = 5, seed: int = 0, scale: float = 2.0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * scale
    labels = rng.integers(0, k, n)
    return softmax(logits), labels


@pytest.mark.parametrize("seed", [0, 1])
def test_ece_and_mce_match_torchmetrics(seed):
    torch = pytest.importorskip("torch")
    from torchmetrics.classification import MulticlassCalibrationError

    probs, labels = _random(seed=seed)
    p, y = torch.tensor(probs, dtype=torch.float64), torch.tensor(labels)
    for norm, ours in (("l1", ece), ("max", mce)):
        metric = MulticlassCalibrationError(num_classes=probs.shape[1], n_bins=15, norm=norm)
        assert ours(probs, labels) == pytest.approx(float(metric(p, y)), abs=1e-6), norm


def test_calibrated_sample_has_near_zero_ece():
    rng = np.random.default_rng(0)
    n, k = 200_000, 4
    probs = softmax(rng.normal(size=(n, k)) * 2.0)
    labels = (rng.random(n)[:, None] > probs.cumsum(axis=1)).sum(axis=1)  # y ~ Categorical(p)
    assert ece(probs, labels) < 0.01
    assert classwise_ece(probs, labels) < 0.01


def test_classwise_ece_hand_worked():
    # n = 2, K = 2, 15 bins of width 1/15.
    # sample 0: p = (0.8, 0.2), y = 0;  sample 1: p = (0.6, 0.4), y = 1.
    # class 0: p_0 = 0.8 (bin 11) freq 1, p_0 = 0.6 (bin 8) freq 0
    #   -> 1/2 * |1 - 0.8| + 1/2 * |0 - 0.6| = 0.1 + 0.3 = 0.4
    # class 1: p_1 = 0.2 (bin 2) freq 0, p_1 = 0.4 (bin 5) freq 1
    #   -> 1/2 * |0 - 0.2| + 1/2 * |1 - 0.4| = 0.1 + 0.3 = 0.4
    # classwise-ECE = (0.4 + 0.4) / 2 = 0.4
    probs = np.array([[0.8, 0.2], [0.6, 0.4]])
    assert classwise_ece(probs, np.array([0, 1])) == pytest.approx(0.4)
    # Same bin for both samples of class 0 (0.61, 0.62 in bin 9): residuals add before |.|
    # class 0: 1/2 |(1 - 0.61) + (0 - 0.62)| = 0.115; class 1: p_1 = 0.39, 0.38 (bin 5)
    #   1/2 |(0 - 0.39) + (1 - 0.38)| = 0.115  -> 0.115
    probs = np.array([[0.61, 0.39], [0.62, 0.38]])
    assert classwise_ece(probs, np.array([0, 1])) == pytest.approx(0.115)


def test_brier_and_nll_match_sklearn():
    probs, labels = _random()
    onehot = np.eye(probs.shape[1])[labels]
    assert brier(probs, labels) == pytest.approx(np.mean(((probs - onehot) ** 2).sum(axis=1)))
    assert nll(probs, labels) == pytest.approx(log_loss(labels, probs, labels=range(probs.shape[1])))


def test_adaptive_bins_have_equal_counts():
    probs, labels = _random(n=1500)
    table = reliability_bins(probs, labels, n_bins=15, adaptive=True)
    assert table["count"].tolist() == [100] * 15
    assert (table["bin_lower"].to_numpy()[1:] >= table["bin_upper"].to_numpy()[:-1]).all()
    weights = table["count"] / table["count"].sum()
    assert adaptive_ece(probs, labels) == pytest.approx(
        float((weights * (table["accuracy"] - table["confidence"]).abs()).sum()))


def test_reliability_bins_equal_width_agree_with_ece():
    probs, labels = _random()
    table = reliability_bins(probs, labels)
    assert list(table.columns) == ["bin_lower", "bin_upper", "count", "confidence", "accuracy"]
    assert len(table) == 15 and table["count"].sum() == len(labels)
    filled = table[table["count"] > 0]
    gaps = (filled["accuracy"] - filled["confidence"]).abs()
    assert ece(probs, labels) == pytest.approx(float((filled["count"] * gaps).sum() / len(labels)))
    assert mce(probs, labels) == pytest.approx(float(gaps.max()))


def test_per_class_ece_restricts_to_true_class():
    probs = np.array([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8]])
    labels = np.array([0, 0, 0])
    # class 0 samples: conf 0.9 correct, 0.7 correct, 0.8 wrong; different bins
    # -> (0.1 + 0.3 + 0.8) / 3 = 0.4; class 1 has no samples -> NaN
    got = per_class_ece(probs, labels)
    assert got[0] == pytest.approx(0.4)
    assert np.isnan(got[1])
    np.testing.assert_allclose(per_class_ece(probs, labels)[0], ece(probs, labels))


def test_gap_by_group():
    probs = np.array([[0.9, 0.05, 0.05], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1]])
    labels = np.array([0, 1, 2])
    gap = calibration_gap_by_group(probs, labels, ["head", "tail", "tail"])
    assert list(gap) == ["head", "tail"]
    assert gap["head"] == pytest.approx(0.9 - 1.0)
    assert gap["tail"] == pytest.approx((0.6 + 0.7) / 2 - 0.0)


def test_temperature_scaling_fixes_over_confidence():
    rng = np.random.default_rng(0)
    n, k = 4000, 5
    true_logits = rng.normal(size=(n, k)) * 1.5
    labels = (rng.random(n)[:, None] > softmax(true_logits).cumsum(axis=1)).sum(axis=1)
    over_confident = true_logits * 3.0  # calibrated at T = 3
    half = n // 2
    summary = calibration_summary(over_confident[:half], labels[:half], [500, 100, 50, 10, 5],
                                  val_logits=over_confident[half:], val_labels=labels[half:])
    temperature = summary["optimal_temperature"]
    assert 2.5 < temperature < 3.5
    assert summary["nll_after_temperature"] < summary["nll"]
    assert summary["ece_after_temperature"] < summary["ece"]
    scaled = over_confident / temperature
    np.testing.assert_array_equal(scaled.argmax(axis=1), over_confident.argmax(axis=1))


def test_summary_keys_and_no_validation():
    probs, labels = _random(n=300, k=3)
    summary = calibration_summary(np.log(probs), labels, [500, 50, 5])
    for key in ("ece", "mce", "adaptive_ece", "classwise_ece", "brier", "nll"):
        assert np.isfinite(summary[key]) and key in CALIBRATION_METRICS
    assert summary["nll"] == pytest.approx(nll(probs, labels))
    assert np.isnan(summary["optimal_temperature"])
    assert list(summary["gap"]) == ["head", "medium", "tail"]


def test_calibration_table_rows_agree_with_the_whole_run_numbers():
    from core.analysis import calibration_gap_by_group, calibration_table, per_class_ece

    rng = np.random.default_rng(3)
    k, n = 5, 600
    logits = rng.normal(size=(n, k)) * 2
    labels = rng.integers(0, k, n)
    probs = softmax(logits)
    groups = ["head", "head", "medium", "tail", "tail"]
    table = calibration_table(probs, labels, groups, list("abcde"), n_bins=10, class_order=[4, 3, 2, 1, 0])
    assert table["scope"].tolist() == ["group"] * 3 + ["class"] * 5 + ["all"]
    assert table[table.scope == "class"]["name"].tolist() == list("edcba")
    everything = table.iloc[-1]
    assert everything["n"] == n
    assert everything["ece"] == pytest.approx(ece(probs, labels, 10))
    assert everything["mce"] == pytest.approx(mce(probs, labels, 10))
    assert everything["brier"] == pytest.approx(brier(probs, labels))
    assert everything["nll"] == pytest.approx(log_loss(labels, probs, labels=range(k)))
    by_class = table[table.scope == "class"].set_index("name")
    np.testing.assert_allclose(by_class.loc[list("abcde"), "ece"], per_class_ece(probs, labels, 10))
    np.testing.assert_allclose(by_class.loc[list("abcde"), "accuracy"],
                               recall_score(labels, probs.argmax(1), average=None))
    gaps = calibration_gap_by_group(probs, labels, groups)
    by_group = table[table.scope == "group"].set_index("name")
    assert by_group["gap"].to_dict() == pytest.approx(gaps)
    assert by_group["n"].sum() == n


def test_calibration_summary_uses_the_runs_groups():
    from core.analysis import calibration_summary

    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(200, 3)), rng.integers(0, 3, 200)
    default = calibration_summary(logits, labels, [500, 50, 5])
    assert set(default["gap"]) == {"head", "medium", "tail"}
    custom = calibration_summary(logits, labels, [500, 50, 5], groups=["head", "head", "tail"])
    assert set(custom["gap"]) == {"head", "tail"}

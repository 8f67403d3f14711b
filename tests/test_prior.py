"""Metrics at another class prior, prior estimation and one class's operating point,
against hand-worked numbers, resampled test sets, sklearn and brute force."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from core.analysis import (
    adapt_to_prior,
    ece,
    estimate_prior_em,
    estimate_prior_interval,
    least_cost_threshold,
    metrics_at_prior,
    operating_point,
    prior_shift_curve,
    prior_weights,
    resolve_prior,
    shifted_priors,
    softmax,
    summary_metrics,
)


def _two_class_case() -> tuple[np.ndarray, np.ndarray]:
    """8 cases of class 0 (6 called 0, 2 called 1), 2 of class 1 (1 called 1, 1 called 0);
    every call made with confidence 0.9."""
    labels = np.array([0] * 8 + [1] * 2)
    pred = np.array([0] * 6 + [1] * 2 + [1, 0])
    probs = np.where(pred[:, None] == np.arange(2), 0.9, 0.1)
    return np.log(probs), labels


def test_hand_worked_two_class_case_at_a_balanced_prior():
    # Test shares 0.8 / 0.2; prior 0.5 / 0.5: weights 0.625 (class 0) and 2.5 (class 1).
    # Weighted table: row 0 = [6, 2] * 0.625 = [3.75, 1.25]; row 1 = [1, 1] * 2.5 = [2.5, 2.5].
    logits, labels = _two_class_case()
    np.testing.assert_allclose(prior_weights(labels, [0.5, 0.5]), [0.625] * 8 + [2.5] * 2)
    m = metrics_at_prior(logits, labels, [0.5, 0.5])
    assert m["accuracy"] == pytest.approx((3.75 + 2.5) / 10)  # 0.625 = 0.5 * 0.75 + 0.5 * 0.5
    assert m["balanced_accuracy"] == pytest.approx(0.625)
    c0, c1 = m["per_class"]
    assert c0["recall"] == pytest.approx(0.75) and c1["recall"] == pytest.approx(0.5)  # unchanged by the prior
    assert c0["precision"] == pytest.approx(3.75 / (3.75 + 2.5))  # 0.6 (0.857 on the test mix)
    assert c1["precision"] == pytest.approx(2.5 / (2.5 + 1.25))  # 2/3 (1/3 on the test mix)
    assert c1["ppv"] == c1["precision"]
    assert c1["npv"] == pytest.approx(3.75 / (3.75 + 2.5))  # 0.6
    assert c1["specificity"] == pytest.approx(0.75)
    assert c0["f1"] == pytest.approx(2 / 3) and c1["f1"] == pytest.approx(4 / 7)
    assert m["f1_macro"] == pytest.approx(13 / 21)
    assert m["ece"] == pytest.approx(abs(0.625 - 0.9))  # one bin: weighted accuracy against confidence 0.9
    assert [r["prevalence"] for r in m["per_class"]] == [0.5, 0.5]

    # At the test split's own mix, the plain numbers.
    own = metrics_at_prior(logits, labels, "test")
    assert own["accuracy"] == pytest.approx(0.7) and own["per_class"][1]["precision"] == pytest.approx(1 / 3)
    assert own["ece"] == pytest.approx(0.2)

    # 3 % prevalence of class 1: PPV = 0.03 * 0.5 / (0.03 * 0.5 + 0.97 * 0.25).
    rare = metrics_at_prior(logits, labels, [0.97, 0.03])
    assert rare["accuracy"] == pytest.approx(0.97 * 0.75 + 0.03 * 0.5)
    assert rare["per_class"][1]["ppv"] == pytest.approx(0.015 / 0.2575)
    assert rare["per_class"][1]["recall"] == pytest.approx(0.5)


def _synthetic(n: int, k: int, share: np.ndarray, seed: int = 0, spread: float = 1.5):
    rng = np.random.default_rng(seed)
    labels = rng.choice(k, size=n, p=share)
    logits = rng.normal(size=(n, k)) * spread
    logits[np.arange(n), labels] += 2.0 + 0.5 * np.arange(k)[labels]
    return logits, labels


def test_weighted_metrics_match_sklearn_sample_weight_and_the_plain_ones_at_the_test_mix():
    k = 4
    logits, labels = _synthetic(3000, k, np.array([0.55, 0.25, 0.15, 0.05]))
    prior = np.array([0.1, 0.2, 0.3, 0.4])
    w = prior_weights(labels, prior)
    pred = logits.argmax(axis=1)
    m = metrics_at_prior(logits, labels, prior)
    assert m["accuracy"] == pytest.approx(accuracy_score(labels, pred, sample_weight=w))
    precision, recall, f1, _ = precision_recall_fscore_support(labels, pred, sample_weight=w, zero_division=0)
    np.testing.assert_allclose([r["precision"] for r in m["per_class"]], precision)
    np.testing.assert_allclose([r["recall"] for r in m["per_class"]], recall)
    assert m["f1_macro"] == pytest.approx(f1.mean())
    plain = summary_metrics(logits, labels, k)
    own = metrics_at_prior(logits, labels, "test")
    assert own["accuracy"] == pytest.approx(plain["accuracy"]) and own["f1_macro"] == pytest.approx(plain["f1_macro"])
    assert own["ece"] == pytest.approx(ece(softmax(logits), labels))
    assert abs(m["accuracy"] - plain["accuracy"]) > 0.02, "the prior must move accuracy for this check to mean anything"


def test_weighted_metrics_equal_a_test_set_resampled_to_the_prior():
    k, n = 4, 40_000
    logits, labels = _synthetic(n, k, np.array([0.55, 0.25, 0.15, 0.05]), seed=1)
    prior = np.array([0.05, 0.15, 0.3, 0.5])
    rng = np.random.default_rng(2)
    size = 200_000
    idx = np.concatenate([rng.choice(np.flatnonzero(labels == c), size=int(size * prior[c])) for c in range(k)])
    y, z = labels[idx], logits[idx]
    resampled = summary_metrics(z, y, k)
    precision, _, _, _ = precision_recall_fscore_support(y, z.argmax(axis=1), zero_division=0)
    m = metrics_at_prior(logits, labels, prior)
    assert m["accuracy"] == pytest.approx(resampled["accuracy"], abs=0.01)
    assert m["f1_macro"] == pytest.approx(resampled["f1_macro"], abs=0.01)
    assert m["balanced_accuracy"] == pytest.approx(resampled["balanced_accuracy"], abs=0.01)
    assert m["ece"] == pytest.approx(ece(softmax(z), y), abs=0.01)
    np.testing.assert_allclose([r["precision"] for r in m["per_class"]], precision, atol=0.015)
    plain = metrics_at_prior(logits, labels, "test")
    assert abs(plain["accuracy"] - resampled["accuracy"]) > 0.05
    assert abs(plain["ece"] - m["ece"]) > 0.02


def test_resolve_prior_choices_and_refusals():
    labels = np.array([0, 0, 0, 1, 2, 2])
    np.testing.assert_allclose(resolve_prior("test", labels, 3), [0.5, 1 / 6, 1 / 3])
    np.testing.assert_allclose(resolve_prior("balanced", labels, 3), [1 / 3] * 3)
    np.testing.assert_allclose(resolve_prior("train", labels, 3, [6, 3, 1]), [0.6, 0.3, 0.1])
    np.testing.assert_allclose(resolve_prior("0.5, 0.25, 0.25", labels, 3), [0.5, 0.25, 0.25])
    np.testing.assert_allclose(resolve_prior([2, 1, 1], labels, 3), [0.5, 0.25, 0.25])
    # a class absent from the test split: named choices leave it out
    np.testing.assert_allclose(resolve_prior("balanced", np.array([0, 2]), 3), [0.5, 0, 0.5])
    for bad, message in [
        ([0.5, 0.5], "needs 3 numbers"),
        ([0.5, -0.1, 0.6], "cannot be negative"),
        ([0, 0, 0], "cannot be all zeros"),
        ("rare", "is not one of test, balanced, train"),
        ("1e309,1,1", "class 0's share is too large to be a number here"),
        ([1, float("nan"), 1], "class 1's share is not a number"),
    ]:
        with pytest.raises(ValueError, match=message):
            resolve_prior(bad, labels, 3)
    with pytest.raises(ValueError, match="class 1 has no test samples"):
        resolve_prior([0.4, 0.2, 0.4], np.array([0, 2, 2]), 3)
    with pytest.raises(ValueError, match="class 1 has no test samples"):
        metrics_at_prior(np.zeros((3, 3)), np.array([0, 2, 2]), [0.4, 0.2, 0.4])
    with pytest.raises(ValueError, match="training prior of this run is not known"):
        resolve_prior("train", labels, 3)


def test_huge_shares_are_relative_not_an_overflow():
    """Shares are proportions: 1e308 three times is 1:1:1. Summing them first overflowed to
    infinity and refused the prior as "all zeros", with numpy's overflow warning."""
    labels = np.array([0, 0, 0, 1, 2, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(resolve_prior("1e308,1e308,1e308", labels, 3), [1 / 3] * 3)
        np.testing.assert_allclose(resolve_prior([1e308, 5e307, 5e307], labels, 3), [0.5, 0.25, 0.25])
        np.testing.assert_allclose(resolve_prior([3e-320, 1e-320, 0], labels, 3), [0.75, 0.25, 0], rtol=1e-2)


def test_adapt_to_prior_is_the_closed_form_bayes_correction():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(50, 3))
    train, new = np.array([0.7, 0.2, 0.1]), np.array([0.1, 0.3, 0.6])
    adapted = softmax(adapt_to_prior(logits, train, new))
    expected = softmax(logits) * new / train
    np.testing.assert_allclose(adapted, expected / expected.sum(axis=1, keepdims=True))
    np.testing.assert_allclose(adapt_to_prior(logits, train, train), logits)
    # adapting changes recall; without it recall stays
    labels = rng.integers(0, 3, 50)
    kept = metrics_at_prior(logits, labels, new, train_prior=train)
    moved = metrics_at_prior(logits, labels, new, train_prior=train, adapt=True)
    assert kept["balanced_accuracy"] == pytest.approx(metrics_at_prior(logits, labels, "test")["balanced_accuracy"])
    assert moved["adapted"] and moved["per_class"][2]["recall"] > kept["per_class"][2]["recall"]
    with pytest.raises(ValueError, match="needs the prior the model trained under"):
        metrics_at_prior(logits, labels, new, adapt=True)


def test_shifted_priors_run_forward_through_uniform_to_backward():
    counts = np.array([30, 500, 100, 5])  # training order: 1, 2, 0, 3
    shifts = dict(shifted_priors(counts))
    assert list(shifts) == [50, 20, 10, 5, 2, 1, 1 / 2, 1 / 5, 1 / 10, 1 / 20, 1 / 50]
    for r, p in shifts.items():
        assert p.shape == (4,) and p.sum() == pytest.approx(1)
        assert p.max() / p.min() == pytest.approx(max(r, 1 / r))
    forward, backward = shifts[50], shifts[1 / 50]
    assert list(np.argsort(-forward)) == [1, 2, 0, 3]
    assert list(np.argsort(-backward)) == [3, 0, 2, 1]
    np.testing.assert_allclose(shifts[1], [0.25] * 4)
    np.testing.assert_allclose(forward[[1, 2, 0, 3]], backward[[3, 0, 2, 1]])


def test_prior_shift_curve_matches_metrics_at_each_prior():
    k = 3
    logits, labels = _synthetic(2000, k, np.array([0.6, 0.3, 0.1]), seed=4)
    counts = np.array([600, 300, 100])
    curve = prior_shift_curve(logits, labels, counts, ratios=(10, 1, 0.1))
    assert list(curve.columns) == ["ratio", "accuracy", "balanced_accuracy", "f1_macro", "ece"]
    for (r, p), row in zip(shifted_priors(counts, (10, 1, 0.1)), curve.itertuples()):
        m = metrics_at_prior(logits, labels, p)
        assert row.ratio == r and row.accuracy == pytest.approx(m["accuracy"]) and row.ece == pytest.approx(m["ece"])
    assert curve["balanced_accuracy"].nunique() == 1 and curve["accuracy"].nunique() == 3
    train = counts / counts.sum()
    adapted = prior_shift_curve(logits, labels, counts, ratios=(10, 0.1), train_prior=train, adapt=True)
    m = metrics_at_prior(logits, labels, shifted_priors(counts, (0.1,))[0][1], train_prior=train, adapt=True)
    assert adapted["accuracy"].iloc[1] == pytest.approx(m["accuracy"])


def _calibrated_batch(prior: np.ndarray, train: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Cases drawn with class prior `prior` (1-D Gaussians, unit variance, means 3 apart),
    scored with the exact posterior of a model trained under `train`."""
    rng = np.random.default_rng(seed)
    means = 3.0 * np.arange(prior.size)
    y = rng.choice(prior.size, size=n, p=prior)
    x = rng.normal(means[y], 1.0)
    return softmax(-0.5 * (x[:, None] - means) ** 2 + np.log(train))


def test_em_recovers_a_known_prior_inside_its_interval():
    train = np.array([0.6, 0.3, 0.1])
    truth = np.array([0.1, 0.3, 0.6])
    probs = _calibrated_batch(truth, train, 5000, seed=5)
    em = estimate_prior_em(probs, train)
    assert em["converged"] and em["prior"].sum() == pytest.approx(1)
    np.testing.assert_allclose(em["prior"], truth, atol=0.03)
    np.testing.assert_allclose(em["probs"].mean(axis=0), em["prior"], atol=1e-6)  # EM's fixed point
    interval = estimate_prior_interval(probs, train, n_boot=200, seed=0)
    np.testing.assert_allclose(interval["prior"], em["prior"])
    assert np.all(interval["low"] <= truth) and np.all(truth <= interval["high"])
    assert np.all(interval["high"] - interval["low"] < 0.05)
    assert not np.all((interval["low"] <= train) & (train <= interval["high"]))


def test_em_stays_at_the_train_prior_when_nothing_shifted():
    train = np.array([0.5, 0.3, 0.2])
    probs = _calibrated_batch(train, train, 5000, seed=6)
    interval = estimate_prior_interval(probs, train, n_boot=100)
    assert np.all(interval["low"] <= train) and np.all(train <= interval["high"])
    # exactly: posteriors whose mean is the train prior are EM's fixed point at once
    exact = np.array([[0.7, 0.2, 0.1], [0.3, 0.4, 0.3]])
    em = estimate_prior_em(exact, exact.mean(axis=0))
    assert em["iterations"] == 1 and em["converged"]
    np.testing.assert_allclose(em["prior"], exact.mean(axis=0), atol=1e-12)


def test_operating_point_counts_and_predictive_values():
    rng = np.random.default_rng(7)
    positive = rng.random(400) < 0.2
    scores = np.clip(rng.normal(0.3 + 0.4 * positive, 0.2), 0, 1)
    op = operating_point(scores, positive, 0.5)
    (tn, fp), (fn, tp) = confusion_matrix(positive, scores >= 0.5)
    assert (op["tp"], op["fp"], op["fn"], op["tn"]) == (tp, fp, fn, tn)
    assert op["prevalence"] == pytest.approx(positive.mean())
    assert op["ppv"]["value"] == pytest.approx(tp / (tp + fp))
    sens, spec = tp / (tp + fn), tn / (tn + fp)
    assert op["sensitivity"]["value"] == pytest.approx(sens) and op["specificity"]["value"] == pytest.approx(spec)
    for key in ("sensitivity", "specificity", "ppv", "npv"):
        assert op[key]["low"] < op[key]["value"] < op[key]["high"]
    at3 = operating_point(scores, positive, 0.5, prevalence=0.03)
    assert at3["ppv"]["value"] == pytest.approx(sens * 0.03 / (sens * 0.03 + (1 - spec) * 0.97))
    assert at3["npv"]["value"] == pytest.approx(spec * 0.97 / (spec * 0.97 + (1 - sens) * 0.03))
    assert at3["ppv"]["low"] < at3["ppv"]["value"] < at3["ppv"]["high"]
    assert at3["ppv"]["value"] < op["ppv"]["value"] and at3["npv"]["value"] > op["npv"]["value"]
    assert (at3["tp"], at3["sensitivity"]) == (op["tp"], op["sensitivity"])
    with pytest.raises(ValueError, match="prevalence must lie between 0 and 1"):
        operating_point(scores, positive, 0.5, prevalence=3)


def test_least_cost_threshold_matches_a_brute_force_search():
    rng = np.random.default_rng(8)
    positive = rng.random(600) < 0.1
    scores = np.round(np.clip(rng.normal(0.3 + 0.35 * positive, 0.15), 0, 1), 3)
    for prevalence, cost_miss in ((0.03, 20.0), (0.3, 2.0), (0.01, 1.0)):
        best = least_cost_threshold(scores, positive, prevalence=prevalence, cost_miss=cost_miss)
        grid = np.append(np.linspace(0, 1, 1001), 1.001)  # steps of 0.001: every score lies on it
        sens = np.array([(scores[positive] >= t).mean() for t in grid])
        spec = np.array([(scores[~positive] < t).mean() for t in grid])
        cost = prevalence * (1 - sens) * cost_miss + (1 - prevalence) * (1 - spec)
        assert best["expected_cost"] == pytest.approx(cost.min())
        op = operating_point(scores, positive, best["threshold"])
        assert op["sensitivity"]["value"] == pytest.approx(best["sensitivity"])
        assert op["specificity"]["value"] == pytest.approx(best["specificity"])
    nobody = least_cost_threshold(scores, positive, prevalence=0.5, cost_miss=0.0)  # ties go to fewest calls
    assert nobody["calls_nobody"] and nobody["threshold"] == np.inf
    assert nobody["sensitivity"] == 0 and nobody["specificity"] == 1
    with pytest.raises(ValueError, match="at least one positive and one negative"):
        least_cost_threshold(scores, np.zeros(600, bool), prevalence=0.1, cost_miss=1.0)


def test_show_prints_metrics_at_a_prior(tmp_path, capsys, monkeypatch):
    from core.artifacts import EvalArtifacts
    from core.cli import main
    from core.config import RunConfig
    from core.store import RunStore

    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    store = RunStore(tmp_path)
    run_id = store.create_run(RunConfig.model_validate({"data": {"source": "breast_cancer"}}), status="done")
    logits, labels = _two_class_case()
    empty = np.zeros((0, 1))
    store.write_artifacts(run_id, EvalArtifacts(
        logits=logits, labels=labels, features=empty, head_weight=np.zeros((2, 1)), head_bias=np.zeros(2),
        train_features=empty, train_labels=np.zeros(0, int), class_counts=np.array([80, 20]),
        val_logits=np.zeros((0, 2)), val_labels=np.zeros(0, int), val_features=empty, test_index=np.arange(10)))
    store.write_metrics(run_id, {"dataset": {"class_names": ["benign", "malignant"], "groups": ["head", "tail"]}})

    assert main(["show", run_id, "--prior", "0.97,0.03", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["at_prior"]
    assert shown["accuracy"] == pytest.approx(0.97 * 0.75 + 0.03 * 0.5)
    assert shown["per_class"][1]["name"] == "malignant"
    assert shown["per_class"][1]["ppv"] == pytest.approx(0.015 / 0.2575)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning before the answer
        assert main(["show", run_id, "--prior", "1e308,1e308", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["at_prior"]["prior"] == pytest.approx([0.5, 0.5])
    assert main(["show", run_id, "--prior", "balanced"]) == 0
    out = capsys.readouterr().out
    assert "does not change with the prior" in out and "malignant" in out
    assert main(["show", run_id, "--prior", "train", "--adapt", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["at_prior"]["adapted"] is True
    for argv, message in [
        (["--prior", "0.5,0.3,0.2"], "a prior needs 2 numbers"),
        (["--prior=-1,2"], "cannot be negative"),
        (["--prior", "1e309,1"], "class 0's share is too large to be a number here"),
        (["--prior", "often"], "is not one of test, balanced, train"),
        (["--adapt"], "--adapt needs --prior"),
    ]:
        assert main(["show", run_id, *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and message in err

"""Class-mix estimation of an unlabelled batch: BCTS, EM and BBSE against the values of
REFERENCE-METHODS 7.1 / 7.2 and an independent optimiser, recovery of known priors from
exact posteriors, invariance to miscalibration and to a prior built into the scores (the
balanced-softmax bug), the bootstrap over the calibration cases, and absent classes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from core.analysis import (
    Calibration, bbse_prior, estimate_label_shift, estimate_prior_em, estimate_prior_interval, fit_bcts,
    fit_shift_reference, softmax,
)

CORNERS = np.array([[0, 0, 0], [1, 1, 0], [1, 0, 1], [0, 1, 1]], dtype=np.float64)
MEANS = 3.0 * CORNERS  # well apart: Bayes accuracy about 0.95


def _draw(rng, mix, n, means=MEANS):
    y = rng.choice(len(mix), size=n, p=mix)
    return means[y] + rng.normal(size=(n, 3)), y


def _log_likelihood(x, means=MEANS):
    return -0.5 * ((x[:, None, :] - means[None]) ** 2).sum(axis=-1)


# --- the reference values -------------------------------------------------------------------

def test_bcts_reference_value():
    cal = Calibration(temperature=2.0, bias=np.array([0.0, 0.5]))
    np.testing.assert_allclose(cal.probs(np.array([[2.0, 1.0]])), [[0.5, 0.5]], atol=1e-12)


def test_em_reference_value():
    em = estimate_prior_em(np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]]), [0.5, 0.5])
    np.testing.assert_allclose(em["prior"], [0.7009, 0.2991], atol=1e-4)
    np.testing.assert_allclose(em["probs"][0], [0.9547, 0.0453], atol=1e-4)


def test_bbse_reference_value_and_clipping():
    out = bbse_prior(np.array([[0.4, 0.1], [0.1, 0.4]]), np.array([0.3, 0.7]))
    np.testing.assert_allclose(out["weights"], [1 / 3, 5 / 3], atol=1e-12)
    np.testing.assert_allclose(out["prior"], [1 / 6, 5 / 6], atol=1e-12)
    # a batch predicted rarer than the confusion allows: w = C^-1 mu = [-1/3, 7/3], clipped to [0, 7/3]
    clipped = bbse_prior(np.array([[0.4, 0.1], [0.1, 0.4]]), np.array([0.1, 0.9]))
    np.testing.assert_allclose(clipped["weights"], [-1 / 3, 7 / 3], atol=1e-12)
    np.testing.assert_allclose(clipped["prior"], [0.0, 1.0], atol=1e-12)
    # stacked problems are solved one by one; a never-predicted class leaves C singular but solvable
    c = np.array([[[0.4, 0.1], [0.1, 0.4]], [[0.5, 0.5], [0.0, 0.0]]])
    stacked = bbse_prior(c, np.array([[0.3, 0.7], [1.0, 0.0]]))
    np.testing.assert_allclose(stacked["prior"][0], out["prior"])
    assert np.all(np.isfinite(stacked["prior"][1])) and stacked["prior"][1].sum() == pytest.approx(1)


# --- BCTS --------------------------------------------------------------------------------------

def test_fit_bcts_matches_an_independent_optimiser_and_the_label_shares():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(400, 3)) * 2
    y = np.where(rng.random(400) < 0.5, z.argmax(axis=1), rng.integers(0, 3, 400))
    cal = fit_bcts(z, y)

    def nll(x):
        p = softmax(z / x[0] + np.array([0.0, x[1], x[2]]))
        return -np.mean(np.log(p[np.arange(len(y)), y]))

    ref = minimize(nll, [1.0, 0.0, 0.0], method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-14,
                                                                       "maxiter": 20_000}).x
    bias = np.array([0.0, ref[1], ref[2]])
    assert cal.temperature == pytest.approx(ref[0], rel=1e-5)
    np.testing.assert_allclose(cal.bias, bias - bias.mean(), atol=1e-5)
    # the bias gradient is the sum of p - y: at the optimum the mean posterior is the label mix
    np.testing.assert_allclose(cal.probs(z).mean(axis=0), np.bincount(y) / len(y), atol=1e-8)


def test_fit_bcts_recovers_the_temperature_and_bias_that_made_the_labels():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(20_000, 4)) * 3
    true_t, true_b = 2.5, np.array([0.8, 0.0, -0.5, -1.2])
    p = softmax(z / true_t + true_b)
    y = (p.cumsum(axis=1) > rng.random((len(z), 1))).argmax(axis=1)
    cal = fit_bcts(z, y)
    assert cal.temperature == pytest.approx(true_t, rel=0.05)
    np.testing.assert_allclose(cal.bias, true_b - true_b.mean(), atol=0.06)


def test_weighted_fit_equals_the_fit_on_repeated_rows():
    rng = np.random.default_rng(2)
    z, y = rng.normal(size=(60, 3)) * 2, rng.integers(0, 3, 60)
    w = rng.integers(0, 4, 60)
    w[:3] = 1
    weighted = fit_bcts(z, y, weights=w)
    repeated = fit_bcts(np.repeat(z, w, axis=0), np.repeat(y, w))
    assert weighted.temperature == pytest.approx(repeated.temperature, rel=1e-6)
    np.testing.assert_allclose(weighted.bias, repeated.bias, atol=1e-6)
    with pytest.raises(ValueError, match="weights"):
        fit_bcts(z, y, weights=-w)


# --- estimates ----------------------------------------------------------------------------------

SOURCE = np.array([0.6, 0.25, 0.1, 0.05])
TRUTH = np.array([0.3, 0.2, 0.2, 0.3])


@pytest.fixture(scope="module")
def exact():
    """Source cases (validation + test) and a shifted batch, with exact log-likelihoods."""
    rng = np.random.default_rng(3)
    x_ref, y_ref = _draw(rng, SOURCE, 3000)
    x, y = _draw(rng, TRUTH, 4000)
    return _log_likelihood(x_ref), y_ref, _log_likelihood(x), np.bincount(y, minlength=4) / len(y)


def test_both_estimators_recover_a_known_prior_from_exact_posteriors(exact):
    ll_ref, y_ref, ll, truth = exact
    ref = fit_shift_reference(ll_ref + np.log(SOURCE), y_ref, n_boot=100)
    est = estimate_label_shift(ref, ll + np.log(SOURCE))
    assert est["method"] == "em"
    for name in ("em", "bbse"):
        e = est["estimates"][name]
        np.testing.assert_allclose(e["prior"], truth, atol=0.025)
        assert np.all(e["low"] <= truth) and np.all(truth <= e["high"]), name
        assert e["prior"].sum() == pytest.approx(1)
    # EM's fixed point: the adjusted posteriors average to the estimate
    np.testing.assert_allclose(est["adjusted"].mean(axis=0), est["prior"], atol=1e-5)
    np.testing.assert_allclose(est["source_prior"], np.bincount(y_ref) / len(y_ref), atol=1e-7)
    assert not est["absent"].any() and not est["unseen"].any()


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_a_prior_correcting_or_miscalibrated_model_gets_the_same_estimate(temperature):
    """A balanced-softmax-like model (scores shifted by -log of the training prior, so they
    encode a uniform prior) at any temperature is, after BCTS, the same model as the
    calibrated one. EM from the training prior on temperature-scaled probabilities (what
    predict did before) is far off for it where the classes overlap."""
    from core.methods import fit_temperature

    means = 1.8 * CORNERS
    rng = np.random.default_rng(6)
    x_ref, y_ref = _draw(rng, SOURCE, 3000, means)
    x, y = _draw(rng, TRUTH, 4000, means)
    ll_ref, ll, truth = _log_likelihood(x_ref, means), _log_likelihood(x, means), np.bincount(y) / len(y)
    calibrated = estimate_label_shift(fit_shift_reference(ll_ref + np.log(SOURCE), y_ref, n_boot=50),
                                      ll + np.log(SOURCE))
    balanced = lambda v: v / temperature  # noqa: E731  (log-likelihood + log prior - log prior)
    est = estimate_label_shift(fit_shift_reference(balanced(ll_ref), y_ref, n_boot=50), balanced(ll))
    for name in ("em", "bbse"):
        np.testing.assert_allclose(est["estimates"][name]["prior"], calibrated["estimates"][name]["prior"],
                                   atol=1e-5)
    np.testing.assert_allclose(est["prior"], truth, atol=0.04)
    assert np.all(est["low"] <= truth) and np.all(truth <= est["high"])
    t = fit_temperature(balanced(ll_ref), y_ref)
    before = estimate_prior_em(softmax(balanced(ll) / t), SOURCE)["prior"]
    assert np.abs(before - truth).max() > 0.15


def test_the_interval_also_carries_the_calibration_noise():
    """With few calibration cases and a large batch, most of the uncertainty is the
    calibration's: the interval is clearly wider than a batch-only bootstrap's."""
    rng = np.random.default_rng(4)
    x_ref, y_ref = _draw(rng, np.full(4, 0.25), 60)
    x, _ = _draw(rng, TRUTH, 5000)
    ref = fit_shift_reference(_log_likelihood(x_ref) / 3, y_ref, n_boot=200)
    est = estimate_label_shift(ref, _log_likelihood(x) / 3)
    batch_only = estimate_prior_interval(est["probs"], est["source_prior"], n_boot=200)
    np.testing.assert_allclose(batch_only["prior"], est["prior"], atol=1e-6)
    ratio = (est["high"] - est["low"]) / (batch_only["high"] - batch_only["low"])
    assert np.all(ratio > 1.3) and ratio.mean() > 1.8, ratio
    # replicates resample within each class, so every replicate keeps the split's class mix
    np.testing.assert_allclose(ref.boot_source, np.tile(np.bincount(y_ref) / len(y_ref), (200, 1)), atol=1e-6)
    assert np.ptp(ref.boot_scale) > 0.01


def test_absent_and_unseen_classes_are_flagged(exact):
    from core.predict import class_notes

    ll_ref, y_ref, ll, _ = exact
    rng = np.random.default_rng(5)
    x, y = _draw(rng, np.array([0.5, 0.5, 0.0, 0.0]), 400)
    ref = fit_shift_reference(ll_ref, y_ref, n_boot=50)
    est = estimate_label_shift(ref, _log_likelihood(x))
    assert est["absent"].tolist() == [False, False, True, True]
    notes = class_notes(est, 400)
    assert notes[:2] == ["", ""] and "no sign of it in this batch" in notes[2]
    assert "one case in 400" in notes[2]
    # a class with no calibration case cannot be estimated: its bias sits at the floor
    keep = y_ref != 3
    ref = fit_shift_reference(ll_ref[keep], y_ref[keep], n_boot=20)
    est = estimate_label_shift(ref, ll)
    assert est["unseen"].tolist() == [False, False, False, True]
    assert est["prior"][3] < 1e-6 and np.all(np.isfinite(est["adjusted"]))
    assert "cannot be estimated" in class_notes(est, len(ll))[3]


def test_refusals():
    ref = fit_shift_reference(np.zeros((4, 2)), [0, 1, 0, 1], n_boot=5)
    with pytest.raises(ValueError, match="3 classes"):
        estimate_label_shift(ref, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="unknown estimator"):
        estimate_label_shift(ref, np.zeros((2, 2)), method="mle")
    with pytest.raises(ValueError, match="finite"):
        fit_shift_reference(np.full((2, 2), np.nan), [0, 1])
    with pytest.raises(ValueError, match="labels"):
        fit_shift_reference(np.zeros((2, 2)), [0, 2])


def test_a_large_run_gets_fewer_replicates_but_never_below_fifty(monkeypatch):
    """The work budget, shrunk so that a small problem counts as large."""
    from core.analysis import _label_shift

    rng = np.random.default_rng(7)
    y = rng.integers(0, 4, 600)
    z = rng.normal(size=(600, 4)) + 2 * np.eye(4)[y]
    assert fit_shift_reference(z, y).n_boot == 200
    monkeypatch.setattr(_label_shift, "_FIT_WORK", 600 * 4 * 5 * 120)
    assert fit_shift_reference(z, y).n_boot == 120
    monkeypatch.setattr(_label_shift, "_FIT_WORK", 600 * 4 * 5 * 10)
    ref = fit_shift_reference(z, y)
    assert ref.n_boot == 50 and ref.boot_bias.shape == (50, 4)
    assert estimate_label_shift(ref, z[:100])["n_boot"] == 50

"""Post-hoc adjustments: identities at their neutral parameters, agreement between the
two prior corrections, and temperature fitting on a deliberately over-confident model."""

from __future__ import annotations


import numpy as np
import pytest

from core.artifacts import EvalArtifacts
from core.methods import (
    POSTHOC,
    TAU_NORM_GRID,
    apply_posthoc,
    fit_temperature,
    logit_adjustment,
    prior_threshold,
    select_tau_norm,
    tau_norm,
    temperature,
)

K, D = 5, 8


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _nll(z, y):
    return float(-np.log(_softmax(z)[np.arange(len(y)), y]).mean())


def _artifacts(seed=0, n=400, scale=1.0):
    rng = np.random.default_rng(seed)
    counts = np.array([500, 200, 80, 30, 10])
    w = (rng.normal(size=(K, D)) * np.linspace(2.0, 0.5, K)[:, None]).astype(np.float32)
    b = rng.normal(size=K).astype(np.float32)

    def split(m):
        feats = rng.normal(size=(m, D)).astype(np.float32)
        true_logits = feats @ w.T + b
        labels = np.array([rng.choice(K, p=p) for p in _softmax(true_logits.astype(np.float64))])
        return feats, (scale * true_logits).astype(np.float32), labels

    f, z, y = split(n)
    vf, vz, vy = split(n)
    return EvalArtifacts(
        logits=z, labels=y, features=f, head_weight=scale * w, head_bias=scale * b,
        train_features=f[:20], train_labels=y[:20], class_counts=counts,
        val_logits=vz, val_labels=vy, val_features=vf, test_index=np.arange(n),
    )


@pytest.fixture(scope="module")
def art():
    return _artifacts()


def test_registry_infos():
    assert POSTHOC.names() == ["logit_adjustment", "prior_threshold", "tau_norm", "temperature"]
    for info in POSTHOC.infos():
        assert info.description and info.paper
        assert "changes_prediction" in info.capabilities
        info.to_dict()


def test_neutral_parameters_are_identities(art):
    assert np.allclose(logit_adjustment(art, tau=0.0), art.logits)
    assert np.allclose(temperature(art, T=1.0), art.logits)
    assert np.allclose(tau_norm(art, tau=0.0), art.logits, atol=1e-5)
    assert np.allclose(tau_norm(art, split="val", tau=0.0), art.val_logits, atol=1e-5)


def test_logit_adjustment_formula_and_val_split(art):
    log_prior = np.log(art.class_counts / art.class_counts.sum())
    assert np.allclose(logit_adjustment(art, tau=0.5), art.logits - 0.5 * log_prior, atol=1e-6)
    assert np.allclose(logit_adjustment(art, split="val"), art.val_logits - log_prior, atol=1e-6)
    with pytest.raises(ValueError, match="split"):
        logit_adjustment(art, split="train")


def test_prior_threshold_agrees_with_tau_one_in_argmax(art):
    pt = prior_threshold(art)
    la = logit_adjustment(art, tau=1.0)
    assert np.array_equal(pt.argmax(1), la.argmax(1))
    ratio = _softmax(pt)
    expected = _softmax(art.logits.astype(np.float64)) / (art.class_counts / art.class_counts.sum())
    assert np.allclose(ratio, expected / expected.sum(1, keepdims=True), atol=1e-5)
    assert (la.argmax(1) != art.logits.argmax(1)).any()


def test_tau_norm_by_hand_and_selection(art):
    norms = np.linalg.norm(art.head_weight, axis=1, keepdims=True)
    expected = art.features @ (art.head_weight / norms).T + art.head_bias
    assert np.allclose(tau_norm(art, tau=1.0), expected, atol=1e-5)
    sweep = select_tau_norm(art)
    assert np.array_equal(sweep.taus, TAU_NORM_GRID) and len(sweep.taus) == 21
    assert sweep.best_tau in sweep.taus
    assert sweep.val_balanced_accuracy.max() >= sweep.val_balanced_accuracy[0]
    assert np.all((0 <= sweep.val_balanced_accuracy) & (sweep.val_balanced_accuracy <= 1))


def test_temperature_fit_undoes_over_confidence():
    art = _artifacts(seed=1, n=3000, scale=4.0)
    t = fit_temperature(art.val_logits, art.val_labels)
    assert 3.0 < t < 5.5
    calibrated = temperature(art, T=t)
    assert _nll(calibrated, art.labels) < _nll(art.logits, art.labels)
    assert np.array_equal(calibrated.argmax(1), art.logits.argmax(1))
    assert np.allclose(temperature(art), calibrated)  # default: fitted on validation


def test_fit_temperature_never_returns_nan():
    assert fit_temperature(np.full((4, 3), np.nan), np.zeros(4, dtype=int)) == 1.0
    assert fit_temperature(np.zeros((0, 3)), np.zeros(0, dtype=int)) == 1.0
    t = fit_temperature(np.zeros((10, 3)), np.arange(10) % 3)
    assert np.isfinite(t) and 0.05 <= t <= 10


def test_apply_posthoc_validates(art):
    assert np.allclose(apply_posthoc("tau_norm", art, {"tau": 0.0}), art.logits, atol=1e-5)
    with pytest.raises(ValueError, match="logit_adjustment: tau"):
        apply_posthoc("logit_adjustment", art, {"tau": -1})
    with pytest.raises(KeyError, match="known: .*tau_norm"):
        apply_posthoc("nope", art)



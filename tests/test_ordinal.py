"""Ordered stages with a rare last one: PRESTO against its two limits (proportional odds from
statsmodels, separate logistic regressions from scikit-learn), the reference's worked values,
the label's stage order, and the last stage's scores against independent computations."""

from __future__ import annotations

import numpy as np
import pytest

from core.config import ConfigError, RunConfig, load_config
from core.data import DataError, is_ordinal, load_builtin, load_data, order_classes
from core.models import OrdinalLogit, SeparateLogits, create_baseline, cumulative_probabilities, presto_penalty
from core.train import run_problems, train_run


def _stages(n: int = 800, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    data = load_builtin("ordinal_stages", {"samples": n, "last_share": 0.08, "seed": seed})
    return data.x.astype(np.float64), data.y


def test_stage_probabilities_and_penalty_match_the_worked_example():
    """K = 3, alpha [-1, 1], beta_1 0.5, beta_2 0.8, x = 1: P = [0.3775, 0.4806, 0.1419];
    the penalty at lambda 0.1 is 0.1 x (|0.5| + |0.8 - 0.5|) = 0.08."""
    betas = np.array([[0.5, 0.8]])
    p = cumulative_probabilities(np.array([-1.0, 1.0]), betas, np.array([[1.0]]))
    np.testing.assert_allclose(p[0], [0.3775, 0.4806, 0.1419], atol=1e-4)
    assert presto_penalty(betas, 0.1) == pytest.approx(0.08)
    assert presto_penalty(betas, 0.1, penalise_first=False) == pytest.approx(0.03)


def test_a_large_penalty_is_proportional_odds_as_statsmodels_fits_it():
    from statsmodels.miscmodels.ordinal_model import OrderedModel

    x, y = _stages()
    presto = OrdinalLogit(penalty=1e3).fit(x, y)
    z = (x - x.mean(0)) / x.std(0)
    reference = OrderedModel(y, z, distr="logit").fit(method="bfgs", disp=False, maxiter=5000)
    np.testing.assert_allclose(presto.predict_proba(x), reference.predict(z), atol=2e-3)
    # statsmodels: P(Y <= k) = F(theta_k - x beta); here sigmoid(alpha_k + x beta_k)
    np.testing.assert_allclose(presto.betas_, np.repeat(-reference.params[: x.shape[1], None], 3, 1), atol=5e-3)
    assert np.ptp(presto.betas_, axis=1).max() < 1e-8, "every boundary shares one weight vector"


def test_no_penalty_is_separate_regressions_for_two_stages_and_close_to_them_for_more():
    """With two stages there is one boundary, and lambda 0 is exactly a logistic regression. With
    more, lambda 0 leaves each boundary its own weights fitted jointly, while separate
    regressions fit each boundary alone: the two agree closely, not exactly (the joint
    likelihood couples adjacent boundaries through P(Y = k) = F_k - F_(k-1)); measured here, the
    last stage's probability differs by about 0.016 on average (its mean is 0.08)."""
    from sklearn.linear_model import LogisticRegression

    x, y = _stages(1500)
    z = (x - x.mean(0)) / x.std(0)
    two = (y == 3).astype(np.int64)
    reference = LogisticRegression(C=np.inf, max_iter=5000, tol=1e-10).fit(z, 1 - two)
    alone = OrdinalLogit(penalty=0.0).fit(x, two)
    np.testing.assert_allclose(alone.betas_[:, 0], reference.coef_[0], atol=1e-4)
    np.testing.assert_allclose(alone.predict_proba(x)[:, 1], reference.predict_proba(z)[:, 0], atol=1e-5)

    free, separate = OrdinalLogit(penalty=0.0).fit(x, y), SeparateLogits().fit(x, y)
    last = LogisticRegression(C=np.inf, max_iter=5000).fit(z, (y <= 2).astype(int))
    np.testing.assert_allclose(separate.betas_[:, 2], last.coef_[0], atol=1e-3)
    assert np.abs(free.predict_proba(x)[:, -1] - separate.predict_proba(x)[:, -1]).mean() < 0.025
    assert np.abs(free.betas_ - separate.betas_).max() < 0.3
    assert np.ptp(free.betas_, axis=1).max() > 0.3, "the boundaries are free to differ"


def test_cross_validation_picks_the_largest_penalty_with_the_lowest_brier_score():
    x, y = _stages(500)
    model = create_baseline("presto", {"n_lambdas": 6}, seed=0).fit(x, y)
    lambdas, brier = np.array(model.cv_["lambdas"]), np.array(model.cv_["brier"])
    assert np.all(np.diff(lambdas) < 0) and lambdas[-1] == pytest.approx(0.01 * lambdas[0])
    assert model.penalty_ == lambdas[np.flatnonzero(brier == brier.min())[0]]
    np.testing.assert_allclose(model.predict_proba(x).sum(1), 1.0)


def test_the_label_is_ordered_as_the_person_says():
    data = load_builtin("blobs2d", {"num_classes": 3, "samples_per_class": 10})
    ordered = order_classes(data, ["class 2", "class 0", "class 1"])
    assert ordered.ordinal and ordered.class_names == ("class 2", "class 0", "class 1")
    np.testing.assert_array_equal(ordered.y, (data.y + 1) % 3)
    with pytest.raises(DataError, match="missing 'class 1'"):
        order_classes(data, ["class 2", "class 0"])
    with pytest.raises(ConfigError, match="twice"):
        load_config({"data": {"source": "blobs2d", "ordinal": ["class 0", "class 0"]}})
    config = RunConfig.model_validate({"data": {"source": "blobs2d", "ordinal": ["class 1", "class 0", "class 2"]}})
    assert is_ordinal(config.data) and load_data(config.data).class_names[0] == "class 1"
    assert is_ordinal(RunConfig.model_validate({"data": {"source": "ordinal_stages"}}).data)
    assert load_config({"data": {"source": "blobs2d", "ordinal": [3, 1, 2]}}).data.ordinal == ["3", "1", "2"]
    assert not is_ordinal(RunConfig().data)


def test_ordinal_models_need_an_ordinal_label_and_score_its_last_stage():
    from core.jobs import summarize_run

    refused = RunConfig.model_validate({"data": {"source": "blobs2d"}, "model": {"name": "presto"}})
    assert any("ordered stages" in p for p in run_problems(refused))
    config = RunConfig.model_validate({"data": {"source": "ordinal_stages", "params": {"samples": 600}},
                                       "model": {"name": "proportional_odds"}})
    assert not run_problems(config)
    result = train_run(config)
    rare = summarize_run(result.artifacts, result.splits, config)["rare_stage"]
    assert rare["stage"] == 3 and rare["test_cases"] == int((result.artifacts.labels == 3).sum())
    assert rare["brier"]["low"] <= rare["brier"]["estimate"] <= rare["brier"]["high"]


def test_last_stage_scores_match_scikit_learn_and_statsmodels():
    import statsmodels.api as sm
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    from core.analysis import rare_stage_scores

    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 0.6, 300)
    hit = rng.random(300) < p ** 1.3
    scores = rare_stage_scores(p, hit, n_resamples=50)
    assert scores["log_loss"].estimate == pytest.approx(log_loss(hit, p))
    assert scores["brier"].estimate == pytest.approx(brier_score_loss(hit, p))
    assert scores["auc"].estimate == pytest.approx(roc_auc_score(hit, p))
    assert scores["calibration_in_the_large"].estimate == pytest.approx(p.mean() - hit.mean())
    logit = np.log(p / (1 - p))
    slope = sm.Logit(hit.astype(float), sm.add_constant(logit)).fit(disp=False).params[1]
    assert scores["calibration_slope"].estimate == pytest.approx(slope, rel=1e-6)
    assert all(s.low <= s.estimate <= s.high for s in scores.values())

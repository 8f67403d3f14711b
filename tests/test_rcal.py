"""RCAL-style representation calibration (stage 2): robust class Gaussians, tail classes
calibrated from their nearest head classes, synthetic features, end to end."""

from __future__ import annotations

import numpy as np
import pytest

from core.config import RunConfig
from core.train import STAGE2, train_run
from core.train._rcal import calibrate_tail, class_gaussians, rcal_features, robust_gaussian, sample_gaussian


def test_sampler_reproduces_the_given_gaussian():
    rng = np.random.default_rng(0)
    mean = np.array([1.0, -2.0, 0.5])
    a = rng.normal(size=(3, 3))
    cov = a @ a.T + 0.5 * np.eye(3)
    x = sample_gaussian(mean, cov, 40_000, rng)
    assert x.shape == (40_000, 3)
    np.testing.assert_allclose(x.mean(0), mean, atol=0.05)
    np.testing.assert_allclose(np.cov(x, rowvar=False), cov, atol=0.08 * np.abs(cov).max())
    singular = np.diag([1.0, 0.0, 2.0])  # a class whose features never vary in one direction
    y = sample_gaussian(np.zeros(3), singular, 5000, rng)
    assert np.allclose(y[:, 1], 0, atol=1e-6) and np.var(y[:, 2]) == pytest.approx(2.0, rel=0.1)


@pytest.mark.parametrize("estimator", ["trimmed", "mcd"])
def test_robust_estimate_ignores_planted_outliers(estimator):
    rng = np.random.default_rng(1)
    cov = np.array([[1.0, 0.3, 0.0], [0.3, 0.5, 0.0], [0.0, 0.0, 2.0]])
    inliers = rng.multivariate_normal(np.zeros(3), cov, size=360)
    outliers = rng.normal(loc=15.0, scale=0.5, size=(40, 3))  # 10 %: another class's points, mislabelled
    x = np.concatenate([inliers, outliers])
    naive = x.mean(0)
    assert np.abs(naive).max() > 1.0
    mean, est_cov, inlier = robust_gaussian(x, trim=0.15, estimator=estimator, seed=0)
    assert not inlier[360:].any()  # every planted outlier left out
    assert inlier[:360].mean() > 0.8
    np.testing.assert_allclose(mean, 0, atol=0.2)
    # trimming the tails shrinks the spread a little (MCD corrects for it); the outliers would inflate it ~50x
    np.testing.assert_allclose(est_cov, cov, atol=0.6)
    assert np.abs(np.cov(x, rowvar=False)).max() > 10


def test_class_gaussians_are_per_class():
    rng = np.random.default_rng(2)
    feats = np.concatenate([rng.normal(0, 1, (50, 2)), rng.normal(5, 1, (50, 2))])
    labels = np.repeat([0, 1], 50)
    means, covs, inlier = class_gaussians(feats, labels, 3, trim=0.0)
    np.testing.assert_allclose(means[:2], [feats[:50].mean(0), feats[50:].mean(0)])
    np.testing.assert_allclose(covs[1], np.cov(feats[50:], rowvar=False))
    assert inlier.all() and not means[2].any()  # an absent class has nothing to estimate


def test_calibration_pulls_a_tail_class_toward_its_nearest_head_classes():
    means = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [1.0, 1.0], [50.0, 50.0]])
    covs = np.stack([np.eye(2) * s for s in (1.0, 2.0, 3.0, 0.1, 5.0)])
    counts = np.array([100, 90, 80, 3, 2])
    new_means, new_covs, neighbours = calibrate_tail(means, covs, counts, tail_below=20, k=2, mean_mix=0.25,
                                                     cov_mix=0.5, ridge=0.0)
    # class 3 at (1, 1): nearest head classes 0 (distance 1.4) and 1 (9.1), not 2 (9.1 but later) -- by hand
    d = np.linalg.norm(means[:3] - means[3], axis=1)
    expected = [int(i) for i in np.argsort(d, kind="stable")[:2]]
    assert neighbours[3] == expected == [0, 1]
    np.testing.assert_allclose(new_means[3], 0.75 * means[3] + 0.25 * means[[0, 1]].mean(0))
    np.testing.assert_allclose(new_covs[3], 0.5 * covs[3] + 0.5 * covs[[0, 1]].mean(0))
    assert neighbours[4] == [1, 2]
    np.testing.assert_allclose(new_means[:3], means[:3])  # head classes keep their statistics
    np.testing.assert_allclose(new_covs[:3], covs[:3])
    # the pull moves the tail statistics toward the neighbours' average, never past it
    target = means[[0, 1]].mean(0)
    assert np.linalg.norm(new_means[3] - target) < np.linalg.norm(means[3] - target)
    _, ridged, _ = calibrate_tail(means, covs, counts, tail_below=20, ridge=0.3)
    np.testing.assert_allclose(ridged[0], covs[0] + 0.3 * np.eye(2))
    alone, _, none = calibrate_tail(means, covs, np.array([5, 5, 5, 3, 2]), tail_below=20)
    assert none == {} and np.allclose(alone, means)  # no head class: nothing to borrow


def test_rcal_features_are_class_balanced_with_inliers_only():
    rng = np.random.default_rng(3)
    counts = [60, 30, 5]
    feats = np.concatenate([rng.normal(3 * j, 1, (n, 4)) for j, n in enumerate(counts)])
    labels = np.repeat(np.arange(3), counts)
    x, y, info = rcal_features(feats, labels, 3, trim=0.1, estimator="trimmed", tail_below=20, k=1, mean_mix=0.2,
                               cov_mix=0.8, ridge=0.01, keep_outliers=False, seed=0)
    have = np.bincount(y, minlength=3)
    assert (have == have[0]).all() and have[0] == 60 - 6  # the largest class after trimming 10 %
    assert info["outliers"] == 6 + 3 + 0  # floor(10 % of 60, 30, 5)
    assert info["synthetic_per_class"] == [0, have[0] - 27, have[0] - 5]
    assert info["neighbours"] == {"2": [1]}


def test_rcal_runs_end_to_end_as_stage_two():
    assert STAGE2.info("rcal").label == "Representation calibration (RCAL)"
    config = RunConfig.model_validate({
        "data": {"source": "digits", "imbalance": {"profile": "exp", "ratio": 20},
                 "label_noise": {"name": "symmetric", "rate": 0.2}},
        "model": {"name": "small_cnn", "width": 8}, "stage2": {"name": "rcal", "epochs": 2},
        "train": {"epochs": 2, "batch_size": 64, "nc_every": 0, "min_steps": 0, "train_subset": 100}})
    result = train_run(config)
    stages = [row["stage"] for row in result.history]
    assert stages == ["train", "train", "rcal", "rcal"]
    art = result.artifacts
    assert np.isfinite(art.logits).all() and art.logits.shape == (len(art.labels), 10)
    assert 0 <= result.history[-1]["val_balanced_accuracy"] <= 1
    # the head was retrained on class-balanced (real + synthetic) features: a uniform trained prior
    np.testing.assert_allclose(result.info["trained_prior"], np.full(10, 0.1), atol=1e-6)


def test_lof_is_the_papers_outlier_finder_and_decides_the_share_itself():
    rng = np.random.default_rng(4)
    inliers = rng.multivariate_normal(np.zeros(3), np.eye(3), size=300)
    lone = rng.uniform(8, 30, size=(12, 3)) * rng.choice([-1, 1], size=(12, 3))  # isolated, far-off points
    x = np.concatenate([inliers, lone])
    mean, cov, inlier = robust_gaussian(x, estimator="lof", trim=0.1)
    assert not inlier[300:].any() and inlier[:300].mean() > 0.9
    np.testing.assert_allclose(mean, x[inlier].mean(0))
    np.testing.assert_allclose(cov, np.cov(x[inlier], rowvar=False))
    _, _, other = robust_gaussian(x, estimator="lof", trim=0.3)
    np.testing.assert_array_equal(inlier, other)  # no fixed share: `trim` is not used
    # the limitation the description names: mislabelled points that sit together, more of them than
    # the 20 neighbours LOF compares with, look like a dense neighbourhood and are kept
    group = rng.normal(15.0, 0.3, size=(40, 3))
    _, _, kept = robust_gaussian(np.concatenate([inliers, group]), estimator="lof")
    assert kept[300:].all()


def test_rcal_retrains_only_the_classifier_on_the_first_stage_features(monkeypatch):
    """A named deviation from the paper: the feature layers are not trained further."""
    import torch

    from core.train import Stage, _run
    from core.train._stage2 import STAGE_TWO

    before = {}

    class Keep(Stage):
        def applies(self, config):
            return True

        def after_loop(self, config, net, run):
            before.update({k: v.detach().clone() for k, v in net.model.state_dict().items()})

    stages = list(_run.STAGES)
    stages.insert(stages.index(STAGE_TWO), Keep())
    monkeypatch.setattr(_run, "STAGES", tuple(stages))
    config = RunConfig.model_validate({
        "data": {"source": "wine", "imbalance": {"profile": "exp", "ratio": 5}}, "model": {"name": "mlp", "hidden": 16},
        "stage2": {"name": "rcal", "epochs": 2, "estimator": "lof", "tail_below": 15},
        "train": {"epochs": 2, "batch_size": 32, "nc_every": 0, "min_steps": 0}})
    after = train_run(config).model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"head.weight", "head.bias"}


def test_rcal_names_its_deviations_from_the_paper():
    words = STAGE2.info("rcal").description
    for named in ("Differs from the paper", "learned with the (noisy) labels", "not trained further", "mixup",
                  "local outlier factor", "0.2", "0.8"):
        assert named in words, named

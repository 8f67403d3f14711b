"""Subclass-balancing contrastive pre-training (SBCL): the subclass counts of the reference,
its loss on a hand-worked batch and against a plain loop over anchors, the clustering, and the
pre-training inside a run followed by a classifier fix."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.config import RunConfig
from core.train import assign_subclasses, class_temperatures, sbcl_loss, subclass_counts, train_run


def test_head_classes_split_into_subclasses_of_about_the_tail_size():
    """n = [500, 100, 20, 5], M = 10: K = [50, 10, 2, 1]."""
    np.testing.assert_array_equal(subclass_counts(np.array([500, 100, 20, 5]), 10), [50, 10, 2, 1])
    np.testing.assert_array_equal(subclass_counts(np.array([60, 0, 30]), 10), [2, 0, 1])


def test_the_loss_on_a_hand_worked_batch():
    """Two inputs of two classes, each its own subclass, both views identical unit vectors,
    tau 0.5: every anchor's only positive is its other view at logit 2 against two at 0, so
    each term is 2 - log(2 + e^2) = -0.23954 and the loss 0.23954 x (0.5 / 0.07 + 0.25) = 1.7709."""
    e = torch.eye(2)
    z = torch.cat([e, e])
    loss = sbcl_loss(z, torch.tensor([0, 1]), torch.tensor([0, 1]), tau=0.5, class_tau=torch.tensor([0.5, 0.5]),
                     gamma=0.25)
    term = 2 - math.log(2 + math.e ** 2)
    assert loss.item() == pytest.approx(-term * (0.5 / 0.07 + 0.25), abs=1e-4)
    assert loss.item() == pytest.approx(1.7709, abs=1e-4)


def _loop_reference(z, labels, subs, tau, class_tau, gamma):
    """The paper's two terms written anchor by anchor, from their definitions."""
    z = z.numpy().astype(np.float64)
    n, b = len(z), len(z) // 2
    y, s = np.tile(labels, 2), np.tile(subs, 2)
    total = 0.0
    for i in range(n):
        other = (i + b) % n
        others = [j for j in range(n) if j != i]
        denom = sum(math.exp(z[i] @ z[j] / tau) for j in others)
        positives = [j for j in others if s[j] == s[i]]
        sub_term = np.mean([z[i] @ z[j] / tau - math.log(denom) for j in positives])
        t = class_tau[y[i]]
        allowed = [j for j in others if s[j] != s[i] or j == other]
        denom_c = sum(math.exp(z[i] @ z[j] / t) for j in allowed)
        positives_c = [j for j in allowed if y[j] == y[i]]
        class_term = np.mean([z[i] @ z[j] / t - math.log(denom_c) for j in positives_c])
        total += -(tau / 0.07) * sub_term - gamma * class_term
    return total / n


def test_the_loss_matches_a_loop_over_anchors():
    rng = np.random.default_rng(0)
    z = torch.nn.functional.normalize(torch.from_numpy(rng.standard_normal((12, 5))).float(), dim=1)
    labels, subs = np.array([0, 0, 0, 0, 1, 2]), np.array([0, 0, 1, 1, 2, 3])
    class_tau = np.array([0.15, 0.1, 0.2], np.float32)
    loss = sbcl_loss(z, torch.from_numpy(labels), torch.from_numpy(subs), tau=0.1,
                     class_tau=torch.from_numpy(class_tau), gamma=0.25)
    assert loss.item() == pytest.approx(_loop_reference(z, labels, subs, 0.1, class_tau, 0.25), rel=1e-4)


def test_clusters_split_a_head_class_and_keep_ids_apart():
    rng = np.random.default_rng(0)
    head = np.concatenate([rng.normal([5, 0], 0.1, (20, 2)), rng.normal([0, 5], 0.1, (20, 2))])
    tail = rng.normal([-5, -5], 0.1, (5, 2))
    labels = np.array([0] * 40 + [1] * 5)
    subs = assign_subclasses(np.concatenate([head, tail]), labels, np.array([2, 1]), seed=0)
    assert len(set(subs[:20])) == 1 and len(set(subs[20:40])) == 1 and subs[0] != subs[20]
    assert set(subs[40:]) == {2}
    tau = class_temperatures(np.concatenate([head, tail]), labels, np.array([2, 1]), 0.1)
    assert tau[1] == pytest.approx(0.1) and tau[0] > 0


def test_a_run_pretrains_with_sbcl_on_the_labelled_rows_then_any_classifier_fix():
    raw = {"data": {"source": "blobs2d", "params": {"samples_per_class": 30}, "imbalance": {"profile": "exp",
                                                                                            "ratio": 4}},
           "model": {"name": "mlp", "hidden": 16},
           "pretrain": {"name": "sbcl", "epochs": 4, "warmup": 1, "recluster_every": 2, "batch_size": 32},
           "stage2": {"name": "crt", "epochs": 2},
           "train": {"epochs": 2, "batch_size": 16, "min_steps": 0, "nc_every": 0, "train_subset": 10}}
    result = train_run(RunConfig.model_validate(raw))
    info = result.info["pretrain"]
    assert info["name"] == "sbcl" and info["inputs"] == len(result.splits.y_train)
    assert len(info["loss"]) == 4 and np.isfinite(info["loss"]).all()
    assert np.isfinite(result.artifacts.logits).all()

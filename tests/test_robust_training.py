"""Robust training: its formulas against the reference's hand-worked values, and the stage
inside a run (combined with a loss, refused where the paper does not allow it)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.config import ConfigError, RunConfig, load_config
from core.train import kl_elements, mtard_weights, run_problems, separation_loss, trades_loss, train_run

TINY = {
    "data": {"source": "blobs2d", "params": {"samples_per_class": 30}, "imbalance": {"profile": "exp", "ratio": 4},
             "many_shot": 15, "few_shot": 6},
    "model": {"name": "mlp", "hidden": 16},
    "train": {"epochs": 2, "batch_size": 16, "min_steps": 0, "nc_every": 0, "train_subset": 10},
}


def test_trades_total_matches_the_worked_example():
    """Clean logits [2, 0], attacked [1, 1], label 0: CE 0.1269, KL 0.3278, beta 6: 2.0938."""
    clean, attacked, y = torch.tensor([[2.0, 0.0]]), torch.tensor([[1.0, 1.0]]), torch.tensor([0])
    ce = torch.nn.functional.cross_entropy(clean, y)
    assert ce.item() == pytest.approx(0.1269, abs=1e-4)
    assert (trades_loss(clean, attacked, ce, 1.0) - ce).item() == pytest.approx(0.3278, abs=1e-4)
    assert trades_loss(clean, attacked, ce, 6.0).item() == pytest.approx(2.0938, abs=1e-4)


def test_trades_keeps_the_gradient_through_the_clean_answers():
    clean = torch.tensor([[2.0, 0.0]], requires_grad=True)
    trades_loss(clean, torch.tensor([[1.0, 1.0]]), clean.new_zeros(()), 6.0).backward()
    assert clean.grad.abs().sum() > 0, "the clean distribution is not detached"


def test_mtard_weights_and_kl_match_the_worked_example():
    w_nat, w_adv = mtard_weights(0.5, 0.8, 0.3, 1.0, 0.5, rate=0.025)
    assert (w_nat, w_adv) == (pytest.approx(0.4982, abs=1e-4), pytest.approx(0.5018, abs=1e-4))
    assert w_adv * 0.8 + w_nat * 0.3 == pytest.approx(0.5509, abs=1e-4)
    elements = kl_elements(torch.tensor([[1.0, 1.0]]), torch.tensor([[2.0, 0.0]]))
    np.testing.assert_allclose(elements.numpy(), [[0.4987, -0.1709]], atol=1e-4)
    assert elements.mean().item() == pytest.approx(0.1639, abs=1e-4)


def test_separation_is_zero_for_apart_classes_and_positive_for_mixed_ones():
    labels = torch.tensor([0, 0, 1, 1])
    apart = torch.tensor([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0], [0.01, 1.0]])
    mixed = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1], [0.1, 1.0]])
    assert separation_loss(apart, labels, 0.5).item() == 0
    assert separation_loss(mixed, labels, 0.5).item() > 0
    assert separation_loss(apart, torch.zeros(4, dtype=torch.long), 0.5).item() == 0


@pytest.mark.parametrize("robust", [{"name": "pgd_at", "epsilon": 0.3, "steps": 2},
                                    {"name": "srat", "epsilon": 0.3, "steps": 2}])
def test_a_robust_run_trains_on_attacked_copies_with_any_loss(robust):
    plain = train_run(RunConfig.model_validate({**TINY, "loss": {"name": "ldam"}}))
    result = train_run(RunConfig.model_validate({**TINY, "loss": {"name": "ldam"}, "robust": robust}))
    assert result.info["robust"]["name"] == robust["name"]
    assert result.info["robust"]["params"]["epsilon"] == 0.3
    assert np.isfinite(result.artifacts.logits).all()
    assert not np.array_equal(result.artifacts.logits, plain.artifacts.logits)


def test_mtard_trains_two_teachers_first():
    result = train_run(RunConfig.model_validate({**TINY, "robust": {"name": "mtard", "epsilon": 0.3, "steps": 2}}))
    assert set(result.info["robust"]["teachers"]) == {"clean", "robust"}
    assert np.isfinite(result.artifacts.logits).all()


def test_combinations_the_papers_do_not_allow_are_refused():
    with pytest.raises(ValueError, match="MTARD"):
        train_run(RunConfig.model_validate({**TINY, "loss": {"name": "ldam"}, "robust": {"name": "mtard"}}))
    baseline = RunConfig.model_validate({**TINY, "model": {"name": "logistic_regression"}, "robust": {"name": "pgd_at"}})
    assert any("robust" in p for p in run_problems(baseline))
    with pytest.raises(ConfigError, match="robust"):
        load_config({**TINY, "robust": {"name": "pgd_at", "epsilon": -1}})
    assert "pgd_at" in RunConfig.model_validate({**TINY, "robust": {"name": "pgd_at"}}).method_label

"""Sharpness-aware training (SAM, ImbSAM) and weight balancing (MaxNorm): the formulas against
the reference's hand-worked values and an independent computation, and each inside a run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from core.config import RunConfig
from core.train import SHARPNESS, maxnorm_project, maxnorm_radius, run_problems, sam_perturbation, train_run

TINY = {
    "data": {"source": "blobs2d", "params": {"samples_per_class": 30}, "imbalance": {"profile": "exp", "ratio": 4},
             "many_shot": 15, "few_shot": 6},
    "model": {"name": "mlp", "hidden": 16},
    "train": {"epochs": 2, "batch_size": 16, "min_steps": 0, "nc_every": 0, "train_subset": 10},
}


class _Weights(nn.Module):
    """A 'model' whose only parameter is w, so a loss of w is a loss of the model."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))


def test_sam_perturbation_is_rho_times_the_unit_gradient_over_all_parameters():
    rng = np.random.default_rng(0)
    grads = [torch.from_numpy(rng.standard_normal(s)).float() for s in ((3, 4), (4,), (2, 2))]
    eps = sam_perturbation([*grads, None], 0.05)
    flat = np.concatenate([g.numpy().ravel() for g in grads])
    expected = 0.05 * flat / np.linalg.norm(flat)
    np.testing.assert_allclose(np.concatenate([e.numpy().ravel() for e in eps[:3]]), expected, rtol=1e-5)
    assert eps[3] is None
    assert torch.stack([e.norm() ** 2 for e in eps[:3]]).sum().sqrt().item() == pytest.approx(0.05, rel=1e-5)
    assert all((e == 0).all() for e in sam_perturbation([torch.zeros(3)], 0.05))


def _one_step(name: str, params: dict, w: list[float], loss_fn, lr: float = 0.1) -> torch.Tensor:
    """One SGD step of `name` on a 'model' with weights w, the batch loss `loss_fn(w, criterion, y)`."""
    model = _Weights(w)
    objective = SHARPNESS.create(name, params, model=model, class_counts=np.array([100, 5]), inner=None, few_shot=20)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)

    def forward(x):
        return model.w

    loss = objective(forward, lambda out, weight=None: loss_fn(out, weight), torch.zeros(2), torch.tensor([0, 1]))
    optimizer.zero_grad()
    loss.backward()
    objective.before_step()
    optimizer.step()
    return model.w.detach()


def test_sam_takes_the_step_with_the_gradient_at_the_moved_weights():
    """L = 1/2 ||w||^2, w = [3, 4], rho 0.05, lr 0.1: epsilon [0.03, 0.04], w_new [2.697, 3.596]."""
    w = _one_step("sam", {"rho": 0.05}, [3.0, 4.0], lambda out, weight: 0.5 * (out ** 2).sum())
    np.testing.assert_allclose(w.numpy(), [2.697, 3.596], atol=1e-6)


def test_imbsam_moves_only_for_the_rare_classes_and_adds_the_common_gradient():
    """L_head = 1/2 ||w||^2, L_tail = 1/2 ||w - (2, 0)||^2 at w = (1, 1), rho 0.05, lr 0.1, without
    the code's x2 and /B: epsilon [-0.0354, 0.0354], w_new [1.0035, 0.7965]."""

    def loss(out, weight):  # the criterion on the rows `weight` marks: row 0 is a common class, row 1 a rare one
        head, tail = 0.5 * (out ** 2).sum(), 0.5 * ((out - torch.tensor([2.0, 0.0])) ** 2).sum()
        if weight is None:
            return head + tail
        return head if weight[0] > 0 else tail

    # each part is scaled by its share of the batch (1/2); doubling both undoes it and tail_weight 1 drops the x2
    w = _one_step("imbsam", {"rho": 0.05, "tail_weight": 1.0}, [1.0, 1.0], lambda o, wt: 2 * loss(o, wt))
    np.testing.assert_allclose(w.numpy(), [1.0035, 0.7965], atol=1e-4)


def test_maxnorm_keeps_every_classifier_row_within_its_bound():
    """Rows with norms [3, 1, 2], t = 0.1: tau = 1.2, W = [[1.2, 0], [0, 1], [0, 1.2]]."""
    weight = torch.tensor([[3.0, 0.0], [0.0, 1.0], [0.0, 2.0]])
    radius = maxnorm_radius(weight, 0.1)
    assert radius == pytest.approx(1.2)
    maxnorm_project(weight, radius)
    np.testing.assert_allclose(weight.numpy(), [[1.2, 0], [0, 1], [0, 1.2]], atol=1e-6)
    rows = torch.randn(10, 5, generator=torch.Generator().manual_seed(0)) * 3
    maxnorm_project(rows, 1.5)
    assert (rows.norm(dim=1) <= 1.5 + 1e-6).all()


def test_weight_balancing_leaves_every_row_of_the_trained_classifier_within_the_bound():
    config = RunConfig.model_validate({**TINY, "stage2": {"name": "weight_balancing", "epochs": 3}})
    result = train_run(config)
    radius = result.info["stage2"]["maxnorm_radius"]
    assert (np.linalg.norm(result.artifacts.head_weight, axis=1) <= radius + 1e-5).all()
    assert [r["stage"] for r in result.history].count("weight_balancing") == 3


@pytest.mark.parametrize("sharpness", [{"name": "sam", "rho": 0.1}, {"name": "imbsam", "rho": 0.1}])
def test_a_sharpness_aware_run_differs_from_a_plain_one_with_any_loss(sharpness):
    plain = train_run(RunConfig.model_validate({**TINY, "loss": {"name": "ldam"}}))
    result = train_run(RunConfig.model_validate({**TINY, "loss": {"name": "ldam"}, "sharpness": sharpness}))
    assert result.info["sharpness"]["name"] == sharpness["name"] and result.info["sharpness"]["params"]["rho"] == 0.1
    assert np.isfinite(result.artifacts.logits).all()
    assert not np.array_equal(result.artifacts.logits, plain.artifacts.logits)


def test_sam_wraps_robust_training_and_imbsam_refuses_it():
    both = RunConfig.model_validate({**TINY, "robust": {"name": "pgd_at", "epsilon": 0.3, "steps": 1},
                                     "sharpness": {"name": "sam"}})
    assert np.isfinite(train_run(both).artifacts.logits).all()
    assert both.method_label.endswith("pgd_at / sam")
    with pytest.raises(ValueError, match="ImbSAM"):
        train_run(RunConfig.model_validate({**TINY, "robust": {"name": "pgd_at"}, "sharpness": {"name": "imbsam"}}))
    baseline = RunConfig.model_validate({**TINY, "model": {"name": "logistic_regression"},
                                         "sharpness": {"name": "sam"}})
    assert any("sharpness" in p for p in run_problems(baseline))

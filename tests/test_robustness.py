"""Attacks against independent computations, robustness per class with intervals, and
`tailscope robustness` on a stored run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from core.analysis import disparity, disparity_curve, robust_predictions, robustness_table
from core.methods import create_attack

COUNTS = [30, 12, 6]


def _model(features: int = 4, classes: int = 3, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(features, 16), nn.Tanh(), nn.Linear(16, classes))


def _cases(shape=(4,), seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(12) % 3
    return torch.rand(12, *shape, generator=g), y


def _per_sample_ce(model, x, y):
    with torch.no_grad():
        return nn.functional.cross_entropy(model(x), y, reduction="none")


def test_fgsm_moves_each_value_by_epsilon_times_the_sign_of_the_gradient_by_hand():
    model, (x, y) = _model(), _cases()
    leaf = x.clone().requires_grad_()
    nn.functional.cross_entropy(model(leaf), y, reduction="sum").backward()
    expected = x + 0.1 * leaf.grad.sign()
    model.zero_grad(set_to_none=True)
    adv = create_attack("fgsm", {"epsilon": 0.1}).perturb(model, x, y)
    torch.testing.assert_close(adv, expected, rtol=0, atol=1e-7)
    assert all(p.grad is None for p in model.parameters()), "the attack leaves no gradient in the model"


def test_fgsm_stays_in_the_valid_range_of_pictures():
    model, (x, y) = _model(16), _cases((1, 4, 4))
    adv = create_attack("fgsm", {"epsilon": 0.3}).perturb(model, x, y, bounds=(0.0, 1.0))
    assert adv.min() >= 0 and adv.max() <= 1


def test_pgd_reaches_the_corner_of_the_ball_as_worked_by_hand():
    """REFERENCE-METHODS 2.1: x0 = [0.5, 0.5], a loss whose gradient has signs [+, -], eps 8/255,
    step 2/255, 10 steps, no random start: [0.5314, 0.4686]."""
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[-1.0, 1.0], [1.0, -1.0]]))  # d CE / dx = [2 p1, -2 p1]
    x, y = torch.tensor([[0.5, 0.5]]), torch.tensor([0])
    attack = create_attack("pgd", {"epsilon": 8 / 255, "step_size": 2 / 255, "steps": 10, "random_start": False})
    adv = attack.perturb(model, x, y, bounds=(0.0, 1.0))
    np.testing.assert_allclose(adv.numpy(), [[0.5314, 0.4686]], atol=5e-5)
    assert nn.functional.cross_entropy(torch.tensor([[1.0, 1.0]]), y).item() == pytest.approx(0.6931, abs=1e-4)


@pytest.mark.parametrize("name", ["pgd", "pgd_l2"])
@pytest.mark.parametrize("epsilon", [0.02, 0.3])
def test_pgd_stays_in_the_ball_and_range_and_never_lowers_the_loss(name, epsilon):
    model, (x, y) = _model(16), _cases((1, 4, 4))
    adv = create_attack(name, {"epsilon": epsilon, "steps": 7}).perturb(model, x, y, bounds=(0.0, 1.0))
    change = (adv - x).flatten(1)
    size = change.abs().amax(1) if name == "pgd" else change.norm(dim=1)
    assert (size <= epsilon + 1e-6).all()
    assert adv.min() >= 0 and adv.max() <= 1
    assert (_per_sample_ce(model, adv, y) >= _per_sample_ce(model, x, y) - 1e-6).all()
    again = create_attack(name, {"epsilon": epsilon, "steps": 7}).perturb(model, x, y, bounds=(0.0, 1.0))
    torch.testing.assert_close(again, adv, rtol=0, atol=0)


def test_tables_are_attacked_in_standardised_units_without_a_range():
    model, (x, y) = _model(), _cases()
    x = (x - 0.5) * 6  # standardised values beyond [0, 1]
    adv = create_attack("pgd", {"epsilon": 0.5}).perturb(model, x, y)
    assert (adv - x).abs().max() <= 0.5 + 1e-6 and (adv - x).abs().max() > 0.4


@pytest.mark.parametrize("attack", ["fgsm", "pgd", "pgd_l2"])
def test_robust_accuracy_at_epsilon_zero_is_the_clean_accuracy(attack):
    model, (x, y) = _model(16), _cases((1, 4, 4))
    predictions = robust_predictions(model, x.numpy(), y.numpy(), attack=attack, epsilons=[0.0, 0.1],
                                     modality="image")
    with torch.no_grad():
        clean = model(x).argmax(1).numpy()
    np.testing.assert_array_equal(predictions[0.0], clean)
    assert (predictions[0.1] == y.numpy()).mean() <= (clean == y.numpy()).mean()
    assert model.training, "the model is handed back in the mode it came in"


def test_accuracy_disparity_is_majority_minus_minority():
    assert disparity(0.95, 0.70) == pytest.approx(0.25)


def test_the_table_counts_per_class_and_pools_groups_with_intervals():
    y = np.repeat([0, 1, 2], [20, 10, 5])
    rng = np.random.default_rng(0)
    clean = np.where(rng.random(len(y)) < 0.8, y, (y + 1) % 3)
    attacked = np.where(rng.random(len(y)) < 0.5, clean, (y + 1) % 3)
    table = robustness_table(y, {0.0: clean, 0.1: attacked}, ["head", "medium", "tail"], ["a", "b", "c"], COUNTS,
                             n_resamples=300)
    for e, pred in ((0.0, clean), (0.1, attacked)):
        rows = table[table["epsilon"] == e].set_index("name")
        recall = [(pred[y == c] == c).mean() for c in range(3)]
        np.testing.assert_allclose(rows.loc[["a", "b", "c"], "accuracy"], recall)
        assert rows.loc["all classes", "accuracy"] == pytest.approx(np.mean(recall))
        assert rows.loc["tail", "accuracy"] == pytest.approx(recall[2])
        assert rows.loc["head - tail", "accuracy"] == pytest.approx(recall[0] - recall[2])
        assert (rows["low"] <= rows["accuracy"] + 1e-12).all() and (rows["accuracy"] <= rows["high"] + 1e-12).all()
    curve = disparity_curve(table)
    assert list(curve["epsilon"]) == [0.0, 0.1] and curve["gap"].notna().all()


def test_cli_robustness_reads_a_stored_run_with_intervals(stored_home, capsys):
    from core.cli import main
    from core.store import RunStore

    run = stored_home["image_run"]
    assert main(["robustness", run, "--attack", "pgd", "--eps", "0.05", "--steps", "3", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(f"printed {c}"))
    assert payload["epsilons"] == [0.0, 0.05] and set(payload["results"]) == {"0", "0.05"}
    clean, attacked = payload["results"]["0"], payload["results"]["0.05"]
    stored = RunStore().metrics(run)["balanced_accuracy"]
    assert clean["pooled"]["balanced_accuracy"]["accuracy"] == pytest.approx(stored, abs=1e-6)
    assert attacked["pooled"]["balanced_accuracy"]["accuracy"] <= clean["pooled"]["balanced_accuracy"]["accuracy"]
    row = clean["per_class"][0]
    assert {"name", "group", "count_train", "n_test", "accuracy", "low", "high"} <= set(row)
    assert main(["robustness", run, "--eps", "0.05", "--steps", "2"]) == 0
    assert "head - tail" in capsys.readouterr().out
    assert main(["robustness", run, "--eps", "-1"]) == 2
    assert main(["robustness", run, "--attack", "nope"]) == 2

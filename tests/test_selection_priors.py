"""Model selection, the step budget, divergence, determinism, trained priors and the table
baselines: what decides which model a run reports and what its numbers mean."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score

from core.analysis import explore
from core.config import RunConfig
from core.methods import create_loss
from core.train import Diverged, prepare_run_data, run_problems, step_plan, train_run

TABLE = {"data": {"source": "wine", "imbalance": {"profile": "exp", "ratio": 5}},
         "model": {"name": "mlp", "hidden": 16}, "train": {"epochs": 6, "batch_size": 32, "lr": 0.05, "nc_every": 0,
                                                          "min_steps": 0}}


def _config(train=None, **patch) -> RunConfig:
    return RunConfig.model_validate({**TABLE, **patch, "train": {**TABLE["train"], **(train or {})}})


def _val_balanced_accuracy(artifacts) -> float:
    return balanced_accuracy_score(artifacts.val_labels, artifacts.val_logits.argmax(1))


def test_best_keeps_the_epoch_with_the_best_validation_score():
    result = train_run(_config(train={"lr": 0.3, "epochs": 8}))
    scores = [(r["val_balanced_accuracy"], -r["val_loss"]) for r in result.history]
    best = int(np.argmax([s[0] * 1e6 + s[1] for s in scores])) + 1  # lexicographic: score, then lower loss
    assert result.info["selected_epoch"] == best
    assert _val_balanced_accuracy(result.artifacts) == pytest.approx(result.history[best - 1]["val_balanced_accuracy"])


def test_last_keeps_the_last_epoch():
    result = train_run(_config(train={"select": "last", "lr": 0.3, "epochs": 5}))
    assert result.info["selected_epoch"] == 5
    assert _val_balanced_accuracy(result.artifacts) == pytest.approx(result.history[-1]["val_balanced_accuracy"])


def test_patience_stops_once_validation_stops_improving():
    result = train_run(_config(train={"epochs": 60, "patience": 2, "lr": 0.2}))
    info = result.info
    assert info["stopped_early"] and info["epochs_run"] < 60
    assert info["epochs_run"] - info["selected_epoch"] == 2
    scores = [r["val_balanced_accuracy"] for r in result.history]
    assert max(scores[info["selected_epoch"]:]) <= scores[info["selected_epoch"] - 1]


def test_step_plan_by_hand():
    # 78 rows, batch 128: 15 steps an epoch need ceil(15 * 128 / 78) = 25 passes, i.e. ceil(25 * 78 / 128) = 16 steps
    assert step_plan(78, 128, 20, 300) == {"batches_per_pass": 1, "passes_per_epoch": 25, "batches_per_epoch": 16,
                                           "steps": 320}
    assert step_plan(1000, 100, 30, 300) == {"batches_per_pass": 10, "passes_per_epoch": 1, "batches_per_epoch": 10,
                                             "steps": 300}
    assert step_plan(78, 128, 20, 0)["steps"] == 20


def test_small_data_gets_the_minimum_number_of_steps():
    result = train_run(_config(train={"epochs": 3, "min_steps": 30, "batch_size": 128}))
    assert result.info["steps"] >= 30
    assert sum(r["steps"] for r in result.history) == result.info["steps"]


def test_a_diverging_run_stops_with_a_reason():
    with pytest.raises(Diverged, match="lower learning rate"):
        train_run(_config(train={"lr": 10.0, "momentum": 0.99, "epochs": 30, "min_steps": 200, "select": "last"}))


def test_deterministic_runs_are_bit_identical():
    config = _config(train={"deterministic": True, "epochs": 3}, model={"name": "mlp", "hidden": 16, "dropout": 0.2})
    a, b = train_run(config), train_run(config)
    np.testing.assert_array_equal(a.artifacts.logits, b.artifacts.logits)
    assert [r["train_loss"] for r in a.history] == [r["train_loss"] for r in b.history]
    assert not torch.are_deterministic_algorithms_enabled(), "the global switch is restored afterwards"


@pytest.mark.parametrize("patch, uniform", [({}, False), ({"sampler": {"name": "class_balanced"}}, True),
                                            ({"resampler": {"name": "random_over"}}, True)])
def test_the_stored_prior_is_the_one_training_showed(patch, uniform):
    result = train_run(_config(**patch))
    prior = result.artifacts.trained_prior
    counts = np.bincount(result.splits.y_train, minlength=3)
    expected = np.full(3, 1 / 3) if uniform else counts / counts.sum()
    np.testing.assert_allclose(prior, expected, atol=1e-9)


def test_prior_aware_losses_see_the_sampled_prior(monkeypatch):
    seen = {}

    def spy(name, params=None, *, class_counts):
        seen[name] = np.asarray(class_counts, dtype=float)
        return create_loss(name, params, class_counts=class_counts)

    monkeypatch.setattr("core.train._network.create_loss", spy)
    train_run(_config(loss={"name": "balanced_softmax"}, sampler={"name": "class_balanced"}, train={"epochs": 1}))
    np.testing.assert_allclose(seen["balanced_softmax"] / seen["balanced_softmax"].sum(), np.full(3, 1 / 3))
    result = train_run(_config(loss={"name": "ldam"}, sampler={"name": "class_balanced"}, train={"epochs": 1}))
    np.testing.assert_allclose(seen["ldam"], np.bincount(result.splits.y_train, minlength=3))  # margins: real counts


def test_prior_correction_cannot_correct_a_balanced_training_twice():
    """After a class-balanced sampler the trained prior is uniform, so logit adjustment and
    the prior threshold leave every prediction as it was (they used to flood the rare class)."""
    result = train_run(_config(data={"source": "breast_cancer", "imbalance": {"profile": "exp", "ratio": 20}},
                               sampler={"name": "class_balanced"}))
    art = result.artifacts
    original = explore(art)
    for params in ({"logit_tau": 1.0}, {"prior_threshold": True}):
        np.testing.assert_array_equal(explore(art, **params)["pred"], original["pred"])
    counts = np.asarray(art.class_counts, dtype=float)
    raw_shift = art.logits - np.log(counts / counts.sum())  # what the raw counts would have done
    assert (raw_shift.argmax(1) != art.logits.argmax(1)).any()


@pytest.mark.parametrize("model", ["logistic_regression", "balanced_random_forest", "hist_gradient_boosting"])
def test_baselines_are_fitted_on_the_same_split(model):
    config = RunConfig.model_validate({"data": TABLE["data"], "model": {"name": model}})
    result = train_run(config)
    art = result.artifacts
    np.testing.assert_allclose(np.exp(art.logits).sum(1), 1.0, rtol=1e-5)
    assert not art.has_features and result.model is None
    splits = prepare_run_data(config)
    np.testing.assert_array_equal(art.labels, splits.y_test)
    if model == "logistic_regression":  # the same estimator fitted independently predicts the same
        reference = LogisticRegression(class_weight="balanced", max_iter=2000, random_state=0).fit(
            splits.x_train, splits.y_train)
        np.testing.assert_array_equal(art.logits.argmax(1), reference.predict(splits.x_test))


def test_baselines_refuse_settings_they_would_ignore():
    config = RunConfig.model_validate({"data": {"source": "wine"}, "model": {"name": "logistic_regression"},
                                       "loss": {"name": "focal"}, "sampler": {"name": "class_balanced"},
                                       "stage2": {"name": "crt"}})
    problems = " ".join(run_problems(config))
    assert "loss 'focal' does not apply" in problems and "sampler 'class_balanced'" in problems
    assert "two-stage fix 'crt' does not apply" in problems
    images = RunConfig.model_validate({"data": {"source": "digits"}, "model": {"name": "hist_gradient_boosting"}})
    assert "works on tabular data" in " ".join(run_problems(images))
    unlabelled = RunConfig.model_validate({"data": {"source": "wine", "unlabeled": {"fraction": 0.5}},
                                           "model": {"name": "logistic_regression"},
                                           "pretrain": {"name": "masked"}, "semi": {"name": "pseudo_label"}})
    problems = " ".join(run_problems(unlabelled))
    assert "pretrain does not apply" in problems and "semi does not apply" in problems
    weighted = RunConfig.model_validate({"data": {"source": "wine"}, "model": {"name": "logistic_regression"},
                                         "resampler": {"name": "smote"},
                                         "label_issues": {"name": "confident_learning", "action": "downweight"}})
    problems = " ".join(run_problems(weighted))
    assert "can drop suspected label issues but not down-weight" in problems and "does not combine with a resampler" \
        in problems


def test_dice_stays_exact_when_softmax_rounds_to_one():
    """Logit gap 17: float32 softmax rounds to 1, and (1 - p) used to be clamped to a constant."""
    z = np.array([[17.0, 0.0], [0.0, 17.0], [0.3, 0.1]])
    y = np.array([0, 1, 0])
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    one_minus_p = np.stack([p[:, 1], p[:, 0]], axis=1)  # exact complement of two classes
    adjusted, onehot = one_minus_p ** 0.1 * p, np.eye(2)[y]
    exact = np.mean(1 - (2 * (adjusted * onehot).sum(0) + 1e-4) / (adjusted.sum(0) + onehot.sum(0) + 1e-4))
    loss = create_loss("dice", {"alpha": 0.1}, class_counts=[2, 1])
    value = float(loss(torch.tensor(z, dtype=torch.float32), torch.tensor(y)))
    assert value == pytest.approx(exact, abs=1e-5) and exact == pytest.approx(0.6297, abs=1e-4)


def test_zloss_is_refused_on_two_classes_where_it_cannot_train():
    z = torch.tensor([[3.0, -1.0], [0.2, 0.1]], requires_grad=True)
    loss = create_loss("zloss", class_counts=[5, 5])
    loss(z, torch.tensor([1, 0])).backward()
    assert torch.allclose(z.grad, torch.zeros_like(z), atol=1e-6), "standardised pairs are always ±1: no gradient"
    config = RunConfig.model_validate({"data": {"source": "breast_cancer"}, "model": {"name": "mlp"},
                                       "loss": {"name": "zloss"}})
    assert "needs at least 3 classes" in " ".join(run_problems(config))

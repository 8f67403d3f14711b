"""Training engine: schedules, device helpers, reproducibility, cancel, DRW, stage 2."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, recall_score

from core.config import RunConfig
from core.models import MODELS, create_model
from core.train import (
    Cancelled, augment_batch, balanced_accuracy_t, fixed_train_subset, lr_at, prepare_run_data, train_run,
)

TABLE = {"data": {"source": "wine", "imbalance": {"profile": "exp", "ratio": 5}},
         "model": {"name": "mlp", "hidden": 16}, "train": {"epochs": 3, "batch_size": 32, "lr": 0.05, "nc_every": 0, "min_steps": 0}}


def _config(**patch) -> RunConfig:
    raw = {**TABLE, **patch}
    return RunConfig.model_validate(raw)


def test_lr_schedules_by_hand():
    assert lr_at(0.0, base_lr=1.0) == 1.0
    assert lr_at(0.5, base_lr=1.0) == pytest.approx(0.5)
    assert lr_at(1.0, base_lr=1.0) == pytest.approx(0.0, abs=1e-12)
    assert lr_at(0.85, base_lr=1.0, schedule="step") == pytest.approx(0.1)
    assert lr_at(0.95, base_lr=1.0, schedule="step") == pytest.approx(0.01)
    assert lr_at(0.05, base_lr=1.0, warmup=0.1) == pytest.approx(0.5)
    assert lr_at(0.55, base_lr=1.0, warmup=0.1) == pytest.approx(0.5)


def test_balanced_accuracy_matches_sklearn():
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 5, 300), rng.integers(0, 5, 300)
    bal, recall = balanced_accuracy_t(torch.from_numpy(p), torch.from_numpy(y), 6)
    assert bal == pytest.approx(balanced_accuracy_score(y, p))
    np.testing.assert_allclose(recall[:5].numpy(), recall_score(y, p, average=None), rtol=1e-6)
    assert math.isnan(recall[5]), "a class without samples has no recall"


def test_augmentation_keeps_shape_and_content_crops():
    x = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).reshape(2, 1, 8, 8)
    g = torch.Generator().manual_seed(0)
    out = augment_batch(x, crop=True, flip=True, generator=g)
    assert out.shape == x.shape
    flipped = augment_batch(x, crop=False, flip=True, generator=torch.Generator().manual_seed(1))
    for a, b in zip(flipped, x):
        assert torch.equal(a, b) or torch.equal(a, b.flip(2))


@pytest.mark.parametrize("name, shape", [("mlp", (13,)), ("linear", (13,)), ("small_cnn", (1, 8, 8)),
                                         ("small_cnn", (1, 28, 28)), ("resnet32", (3, 32, 32))])
def test_models_are_features_then_linear_head(name, shape):
    model = create_model(name, input_shape=shape, num_classes=4).eval()
    x = torch.randn(3, *shape)
    torch.testing.assert_close(model(x), model.head(model.forward_features(x)))
    assert model.head.in_features == model.forward_features(x).shape[1]
    networks = {n for n in MODELS.names() if MODELS.info(n).capabilities.get("family") != "baseline"}
    assert networks == {"mlp", "linear", "small_cnn", "resnet32"}


def test_model_modality_mismatch_is_explained():
    with pytest.raises(ValueError, match="needs image data; this dataset is tabular"):
        create_model("small_cnn", input_shape=(13,), num_classes=3)


def test_same_config_and_seed_give_the_same_result():
    a, b = train_run(_config()), train_run(_config())
    np.testing.assert_array_equal(a.artifacts.logits, b.artifacts.logits)
    assert [r["train_loss"] for r in a.history] == [r["train_loss"] for r in b.history]
    c = train_run(_config(train={**TABLE["train"], "seed": 1}))
    assert not np.array_equal(a.artifacts.logits, c.artifacts.logits)


def test_history_and_artifacts_have_the_contracted_shape():
    result = train_run(_config())
    assert [r["epoch"] for r in result.history] == [1, 2, 3]
    row = result.history[-1]
    assert {"train_loss", "val_accuracy", "val_balanced_accuracy", "val_recall"} <= set(row)
    art, splits = result.artifacts, result.splits
    assert art.logits.shape == (len(splits.y_test), 3) and art.head_weight.shape == (3, 16)
    assert art.class_counts.tolist() == np.bincount(splits.y_train).tolist()


def test_cancel_is_checked_within_an_epoch():
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(Cancelled, match="epoch 1"):
        train_run(_config(train={**TABLE["train"], "epochs": 50}), should_stop=stop)


def test_drw_switches_to_class_balanced_weights(monkeypatch):
    from core.methods._losses import Loss

    seen = []
    original = Loss.set_class_weight

    def spy(self, weight):
        seen.append(None if weight is None else weight.clone())
        original(self, weight)

    monkeypatch.setattr(Loss, "set_class_weight", spy)
    train_run(_config(loss={"name": "ce", "drw_epoch": 2}))
    assert seen[0] is None and seen[1] is None and seen[2] is not None
    assert float(seen[2].sum()) == pytest.approx(3.0, rel=1e-5)
    assert seen[2][0] < seen[2][-1], "the rare class gets the larger weight"


@pytest.mark.parametrize("stage2", [{"name": "crt", "epochs": 2}, {"name": "lws", "epochs": 2},
                                    {"name": "tau_norm"}, {"name": "crt", "epochs": 2, "resampler": "random_over"},
                                    {"name": "crt", "epochs": 2, "resampler": "smote",
                                     "resampler_params": {"k_neighbors": 1}}])
def test_stage2_methods_run_and_are_recorded(stage2):
    result = train_run(_config(stage2=stage2))
    stages = [r["stage"] for r in result.history]
    assert stages[:3] == ["train"] * 3 and stages[3] == stage2["name"]
    logits = result.artifacts.head_weight @ result.artifacts.features.T
    assert np.isfinite(logits).all()


def test_tau_norm_applies_the_chosen_exponent():
    base = train_run(_config())
    tau = train_run(_config(stage2={"name": "tau_norm", "tau": 1.0}))
    norms = np.linalg.norm(tau.artifacts.head_weight, axis=1)
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)
    np.testing.assert_allclose(tau.artifacts.head_bias, base.artifacts.head_bias, rtol=1e-6)


def test_table_resampler_changes_training_counts_only():
    result = train_run(_config(resampler={"name": "random_over"}))
    assert result.synthetic_count > 0
    assert result.artifacts.class_counts.tolist() == np.bincount(result.splits.y_train).tolist()


def test_resampler_on_images_is_refused_with_a_reason():
    config = RunConfig.model_validate({"data": {"source": "digits"}, "resampler": {"name": "smote"},
                                       "train": {"epochs": 1}})
    with pytest.raises(ValueError, match="works on tables"):
        train_run(config)


def test_fixed_train_subset_keeps_every_class():
    labels = np.repeat(np.arange(4), [500, 100, 20, 3])
    subset = fixed_train_subset(labels, 200, seed=0)
    assert set(labels[subset]) == {0, 1, 2, 3} and len(subset) <= 220
    np.testing.assert_array_equal(subset, fixed_train_subset(labels, 200, seed=0))


def test_prepare_run_data_is_seeded():
    a = prepare_run_data(_config())
    b = prepare_run_data(_config())
    np.testing.assert_array_equal(a.y_train, b.y_train)


def test_a_new_stage_joins_a_run_without_touching_the_loop(monkeypatch):
    """`train_run` walks `STAGES`: a stage added there changes the rows, sees the network
    before and after the loop and records in the run's info, and the loop is not edited."""
    import dataclasses

    from core.train import Stage, _run

    seen = []

    class Probe(Stage):
        name = "probe"

        def applies(self, config):
            return True

        def rows(self, config, splits, rows, run):
            seen.append(("rows", len(rows.y)))
            return dataclasses.replace(rows, x=rows.x[:-5], y=rows.y[:-5])

        def before_loop(self, config, splits, net, run):
            seen.append(("before", len(net.history), len(net.y_train)))

        def after_loop(self, config, net, run):
            seen.append(("after", len(net.history)))
            run.info["probe"] = "done"

    monkeypatch.setattr(_run, "STAGES", (*_run.STAGES, Probe()))
    result = train_run(_config())
    n = len(result.splits.y_train)
    assert seen == [("rows", n), ("before", 0, n - 5), ("after", 3)]
    assert result.info["probe"] == "done"
    kept = np.bincount(result.splits.y_train[:-5], minlength=3)
    np.testing.assert_allclose(result.info["trained_prior"], kept / kept.sum())  # the loss saw the probe's rows


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_validation_numbers_match_sklearn():
    """The epoch record's numbers, computed on the device in one tensor: cross-entropy, accuracy,
    balanced accuracy and per-class recall (NaN for a class with no validation rows)."""
    from scipy.special import log_softmax
    from sklearn.metrics import accuracy_score

    from core.train._loop import validation_numbers

    rng = np.random.default_rng(5)
    logits = rng.normal(0, 2, (90, 4)).astype(np.float32)
    y = rng.integers(0, 3, 90)  # class 3 has no rows
    loss, acc, bal, *recall = validation_numbers(torch.from_numpy(logits), torch.from_numpy(y), 4).tolist()
    pred = logits.argmax(1)
    assert loss == pytest.approx(-log_softmax(logits.astype(np.float64), axis=1)[np.arange(90), y].mean(), rel=1e-5)
    assert acc == pytest.approx(accuracy_score(y, pred))
    assert bal == pytest.approx(balanced_accuracy_score(y, pred))
    np.testing.assert_allclose(recall[:3], recall_score(y, pred, labels=[0, 1, 2], average=None), rtol=1e-6)
    assert math.isnan(recall[3])


def test_best_epoch_restores_the_best_weights_after_several_improvements():
    from core.train._loop import BestEpoch

    model = create_model("mlp", {"hidden": 8}, input_shape=(5,), num_classes=3)
    best, kept = BestEpoch(), {}
    for epoch, score in enumerate([0.5, 0.7, 0.6, 0.7], start=1):  # the tie at epoch 4 loses on the larger loss
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
        kept[epoch] = {k: v.clone() for k, v in model.state_dict().items()}
        best.offer(epoch, score, 1.0 if epoch < 4 else 2.0, model, keep=True)
    assert best.epoch == 2
    best.restore(model)
    for key, value in model.state_dict().items():
        assert torch.equal(value, kept[2][key]), key

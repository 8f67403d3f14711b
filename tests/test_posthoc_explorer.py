"""Post-hoc explorer: composition, identity, metrics against sklearn, temperature, derived runs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score, balanced_accuracy_score, brier_score_loss, confusion_matrix, f1_score, log_loss,
    precision_recall_fscore_support, recall_score,
)

from core.analysis import calibration_summary, softmax, summary_metrics
from core.analysis._posthoc_explorer import (
    adjusted_head, adjusted_logits, describe_posthoc, explore,
)
from core.jobs import save_derived_run
from core.artifacts import EvalArtifacts
from core.data import head_to_tail_order
from core.methods import apply_posthoc, fit_temperature

SETTINGS = [
    {"logit_tau": 1.0},
    {"tau_norm": 0.7},
    {"temperature": 2.5},
    {"prior_threshold": True},
    {"logit_tau": 0.5, "tau_norm": 1.2, "temperature": 0.6, "prior_threshold": True},
]


def synthetic_run(n: int = 600, k: int = 6, d: int = 12, *, sharpness: float = 1.0, seed: int = 0,
                  missing_class: int | None = None) -> EvalArtifacts:
    """A long-tailed linear model whose head weights grow with the class count (as CE training does)."""
    rng = np.random.default_rng(seed)
    counts = np.floor(500 * 50.0 ** (-np.arange(k) / (k - 1))).astype(np.int64)
    means = rng.normal(size=(k, d))
    weight = (means * (0.5 + counts / counts.max())[:, None] * sharpness).astype(np.float32)
    bias = (0.3 * np.log(counts / counts.sum()) * sharpness).astype(np.float32)

    def split(m: int):
        y = rng.integers(0, k, size=m)
        if missing_class is not None:
            y[y == missing_class] = (missing_class + 1) % k
        x = (means[y] + 1.2 * rng.normal(size=(m, d))).astype(np.float32)
        return x, y, (x @ weight.T + bias).astype(np.float32)

    x, y, z = split(n)
    xv, yv, zv = split(n // 2)
    return EvalArtifacts(logits=z, labels=y, features=x, head_weight=weight, head_bias=bias,
                         train_features=x[:50], train_labels=y[:50], class_counts=counts, val_logits=zv,
                         val_labels=yv, val_features=xv, test_index=np.arange(n))


@pytest.fixture(scope="module")
def run() -> EvalArtifacts:
    return synthetic_run()


# --- composition ---------------------------------------------------------------------------

def test_defaults_are_the_identity(run):
    assert adjusted_logits(run) is run.logits
    assert adjusted_logits(run, split="val") is run.val_logits
    out = explore(run, logit_tau=0.0, tau_norm=0.0, temperature=1.0, prior_threshold=False)
    expected = summary_metrics(run.logits, run.labels, run.num_classes)
    for key in ("accuracy", "balanced_accuracy", "f1_macro", "worst_class_recall"):
        assert out[key] == pytest.approx(expected[key], abs=1e-12), key
    calibration = calibration_summary(run.logits, run.labels, run.class_counts)
    for key in ("ece", "mce", "adaptive_ece", "classwise_ece", "brier", "nll"):
        assert out[key] == pytest.approx(calibration[key], abs=1e-12), key
    assert out["gap"] == pytest.approx(calibration["gap"])


def test_tau_zero_and_unit_temperature_change_nothing(run):
    base = explore(run)
    for params in ({"logit_tau": 0.0}, {"temperature": 1.0}, {"logit_tau": 0.0, "temperature": 1.0}):
        out = explore(run, **params)
        assert np.array_equal(out["confusion"], base["confusion"])
        assert out["nll"] == base["nll"] and out["ece"] == base["ece"]


def test_each_step_is_the_registry_entry(run):
    np.testing.assert_allclose(adjusted_logits(run, logit_tau=0.8),
                               apply_posthoc("logit_adjustment", run, {"tau": 0.8}))
    np.testing.assert_allclose(adjusted_logits(run, tau_norm=0.8), apply_posthoc("tau_norm", run, {"tau": 0.8}))
    np.testing.assert_allclose(adjusted_logits(run, temperature=1.7), apply_posthoc("temperature", run, {"T": 1.7}))
    np.testing.assert_allclose(adjusted_logits(run, split="val", tau_norm=0.8),
                               apply_posthoc("tau_norm", run, {"tau": 0.8}, split="val"))
    # Buda's p / prior: equal probabilities (the logits differ by a per-row constant)
    np.testing.assert_allclose(softmax(adjusted_logits(run, prior_threshold=True)),
                               softmax(apply_posthoc("prior_threshold", run)), atol=1e-6)


def test_composition_order(run):
    z = apply_posthoc("tau_norm", run, {"tau": 1.2})
    z = apply_posthoc("logit_adjustment", run.with_logits(z), {"tau": 1.5})  # 0.5 + 1 from the prior threshold
    z = apply_posthoc("temperature", run.with_logits(z), {"T": 0.6})
    np.testing.assert_allclose(adjusted_logits(run, **SETTINGS[-1]), z, rtol=1e-6)


@pytest.mark.parametrize("params", SETTINGS)
def test_adjusted_head_gives_the_adjusted_logits(run, params):
    weight, bias = adjusted_head(run, **params)
    direct = run.features.astype(np.float64) @ weight.T.astype(np.float64) + bias
    np.testing.assert_allclose(direct, adjusted_logits(run, **params), rtol=1e-4, atol=1e-4)


def test_temperature_never_changes_a_prediction(run):
    for params in SETTINGS:
        hot = explore(run, **{**params, "temperature": 3.0})
        cold = explore(run, **{**params, "temperature": 0.3})
        assert np.array_equal(hot["pred"], cold["pred"])


def test_bad_parameters_are_refused(run):
    with pytest.raises(ValueError, match="temperature"):
        explore(run, temperature=0.0)
    with pytest.raises(ValueError, match="finite"):
        explore(run, logit_tau=float("nan"))
    with pytest.raises(ValueError, match="known"):
        describe_posthoc({"tau": 1.0})


def test_describe_and_order():
    assert describe_posthoc({"logit_tau": 1.0}) == "logit adjustment tau=1.0"
    assert describe_posthoc({}) == "no change"
    assert describe_posthoc({"tau_norm": 0.5, "temperature": 1.5, "prior_threshold": True}) == \
        "tau-norm tau=0.5, prior threshold, temperature T=1.5"
    assert head_to_tail_order(np.array([5, 50, 5, 20])).tolist() == [1, 3, 0, 2]


# --- metrics against sklearn -------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
@pytest.mark.parametrize("missing", [None, 2])
@pytest.mark.parametrize("params", SETTINGS)
def test_metrics_match_sklearn(params, missing):
    art = synthetic_run(missing_class=missing, seed=3)
    out = explore(art, **params)
    z = adjusted_logits(art, **params).astype(np.float64)
    y, k = art.labels, art.num_classes
    pred = z.argmax(axis=1)
    labels, present = np.arange(k), np.unique(y)
    assert np.array_equal(out["pred"], pred)
    assert np.array_equal(out["confusion"], confusion_matrix(y, pred, labels=labels))
    assert out["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert out["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert out["f1_macro"] == pytest.approx(f1_score(y, pred, labels=present, average="macro", zero_division=0))
    recall = recall_score(y, pred, labels=present, average=None, zero_division=0)
    np.testing.assert_allclose(out["recall"][present], recall)
    assert out["worst_class_recall"] == pytest.approx(recall.min())
    if missing is not None:
        assert np.isnan(out["recall"][missing])
    precision, _, f1, support = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    np.testing.assert_allclose(out["precision"], precision)
    np.testing.assert_allclose(out["f1"], f1)
    np.testing.assert_array_equal(out["support"], support)
    probs = softmax(z)
    assert out["nll"] == pytest.approx(log_loss(y, probs, labels=labels), rel=1e-9)
    assert out["brier"] == pytest.approx(brier_score_loss(y, probs, labels=labels, scale_by_half=False))
    calibration = calibration_summary(z, y, art.class_counts)
    for key in ("ece", "mce", "adaptive_ece", "classwise_ece"):
        assert out[key] == pytest.approx(calibration[key], abs=1e-12), key


def test_logit_adjustment_helps_the_tail(run):
    before, after = explore(run), explore(run, logit_tau=1.0)
    order = head_to_tail_order(run.class_counts)
    assert after["balanced_accuracy"] > before["balanced_accuracy"]
    assert after["recall"][order[-1]] >= before["recall"][order[-1]]


def test_temperature_scaling_fixes_an_over_confident_model():
    art = synthetic_run(n=2000, sharpness=6.0, seed=1)  # logits far too large: over-confident
    T = fit_temperature(art.val_logits, art.val_labels)
    assert T > 1.5
    before, after = explore(art), explore(art, temperature=T)
    assert after["nll"] < before["nll"]
    assert after["ece"] < before["ece"]
    assert after["accuracy"] == before["accuracy"]
    assert np.array_equal(after["confusion"], before["confusion"])


# --- derived runs ------------------------------------------------------------------------------

def test_save_derived_run(copied_home):
    from app.services import load_bundle
    from core.store import RunStore

    store = RunStore(copied_home["home"])
    parent_id = copied_home["image_run"]
    params = {"logit_tau": 1.0, "tau_norm": 0.5, "temperature": 1.5}
    parent = store.artifacts(parent_id)
    new_id = save_derived_run(store, parent_id, "digits adjusted", params)

    record = store.get(new_id)
    assert record.status == "done" and record.parent == parent_id and record.name == "digits adjusted"
    assert record.method == "ce + post-hoc tau-norm tau=0.5, logit adjustment tau=1.0, temperature T=1.5"
    bundle = load_bundle(new_id)
    np.testing.assert_array_equal(bundle.artifacts.logits, adjusted_logits(parent, **params))
    np.testing.assert_array_equal(bundle.artifacts.val_logits, adjusted_logits(parent, split="val", **params))
    np.testing.assert_array_equal(bundle.artifacts.features, parent.features)
    out = explore(parent, **params)
    assert bundle.metrics["balanced_accuracy"] == pytest.approx(out["balanced_accuracy"])
    assert bundle.metrics["calibration"]["ece"] == pytest.approx(out["ece"])
    assert bundle.metrics["posthoc"]["parent"] == parent_id
    assert bundle.class_names == load_bundle(parent_id).class_names
    assert bundle.history == store.history(parent_id)
    assert record.summary["balanced_accuracy"] == pytest.approx(out["balanced_accuracy"])


def test_derived_model_gives_the_derived_logits(copied_home):
    """The saved weights carry the adjusted head, so pages that rerun the model agree."""
    import torch

    from core.config import RunConfig
    from core.models import create_model
    from core.store import RunStore
    from core.train import prepare_run_data

    store = RunStore(copied_home["home"])
    new_id = save_derived_run(store, copied_home["table_run"], "wine adjusted", {"logit_tau": 0.7, "temperature": 2.0})
    config = RunConfig.model_validate(store.get(new_id).config)
    dataset = store.metrics(new_id)["dataset"]
    model = create_model(config.model.name, config.model.params, input_shape=tuple(dataset["input_shape"]),
                         num_classes=len(dataset["class_names"]))
    store.load_weights(new_id, model)
    splits = prepare_run_data(config)
    with torch.no_grad():
        logits = model.eval()(torch.from_numpy(splits.x_test)).numpy()
    np.testing.assert_allclose(logits, store.artifacts(new_id).logits, rtol=1e-4, atol=1e-4)


def test_save_refuses_bad_input(copied_home):
    from core.store import RunStore

    store = RunStore(copied_home["home"])
    before = len(store.list_runs())
    with pytest.raises(ValueError, match="name"):
        save_derived_run(store, copied_home["image_run"], "  ", {"logit_tau": 1.0})
    with pytest.raises(ValueError, match="temperature"):
        save_derived_run(store, copied_home["image_run"], "x", {"temperature": -1})
    assert len(store.list_runs()) == before


@pytest.mark.parametrize("patch, warns", [
    ({}, None), ({"loss": {"name": "balanced_softmax"}}, "its loss (Balanced softmax)"),
    ({"loss": {"name": "ce", "drw_epoch": 1}}, "deferred re-weighting"), ({"stage2": {"name": "crt"}}, "(cRT)"),
    ({"stage2": {"name": "tau_norm"}}, None), ({"sampler": {"name": "class_balanced"}}, None),
])
def test_which_runs_a_prior_correction_would_correct_twice(patch, warns):
    from core.analysis import prior_correction_warning
    from core.config import RunConfig

    warning = prior_correction_warning(RunConfig.model_validate({"train": {"epochs": 3}, **patch}))
    assert (warning is None) if warns is None else (warns in warning)
    assert "saved post-hoc version" in prior_correction_warning(RunConfig.model_validate({"posthoc": [{"logit_tau": 1}]}))


def test_the_explorer_names_its_prior_and_warns_on_a_second_correction(copied_home, open_page):
    from core.store import RunStore

    derived = save_derived_run(RunStore(copied_home["home"]), copied_home["table_run"], "adjusted", {"logit_tau": 1.0})
    at = open_page("posthoc", run_id=derived)
    assert not at.exception
    assert any("class frequencies the model trained on" in c.value for c in at.caption)
    assert not at.warning
    at.slider(key="posthoc.logit_tau").set_value(1.0).run()
    assert any("corrects twice" in w.value for w in at.warning)


def test_a_rerun_of_a_derived_run_applies_its_adjustment_again(copied_home):
    import os

    from core.config import RunConfig
    from core.jobs import execute_run
    from core.store import RunStore

    store = RunStore(copied_home["home"])
    derived = save_derived_run(store, copied_home["table_run"], "adjusted", {"logit_tau": 1.0, "temperature": 2.0})
    config = RunConfig.model_validate(store.get(derived).config)
    assert [s.model_dump() for s in config.posthoc] == [
        {"logit_tau": 1.0, "tau_norm": 0.0, "temperature": 2.0, "prior_threshold": False}]
    rerun = store.create_run(config.model_copy(update={"name": "adjusted (re-run)"}))
    assert execute_run(store, store.claim(rerun, os.getpid()), embeddings=False) == "done"
    np.testing.assert_allclose(store.artifacts(rerun).logits, store.artifacts(derived).logits, rtol=1e-5, atol=1e-5)
    assert store.metrics(rerun)["balanced_accuracy"] == pytest.approx(store.metrics(derived)["balanced_accuracy"])

"""Words for people: every metric, setting and symbol the app shows has a display name and a
plain explanation; pickers offer those names, never the internal ones. (Each plug-in's own
words are checked with its contract, tests/test_contracts.py.)"""

from __future__ import annotations

import numpy as np

from core.glossary import (
    GLOSSARY, display_name, explanation, glossary, glossary_markdown, method_display, plugin_label, setting_title,
    setting_value, terms,
)
from core.registry import describe_params


def test_describe_params_falls_back_to_the_name_in_words():
    from pydantic import Field

    from core.registry import Params

    class P(Params):
        max_depth: int = Field(3, description="d")
        width: int = Field(3, title="Width (channels)", description="w")

    assert [(p["name"], p["title"]) for p in describe_params(P)] == [("max_depth", "max depth"),
                                                                      ("width", "Width (channels)")]


def _metric_keys_the_app_shows() -> set[str]:
    from core.analysis import BOOTSTRAP_METRICS, CALIBRATION_METRICS, METRICS, neural_collapse
    from core.analysis._prior import CURVE_METRICS
    from core.analysis import EXPERIMENT_KEYS

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 10)
    features = rng.normal(size=(30, 4)) + labels[:, None]
    nc = neural_collapse(features, labels, rng.normal(size=(3, 4)), rng.normal(size=(30, 3)))
    per_class = {"recall", "precision", "f1", "support", "count_train", "group", "n_train", "n_test", "n_classes"}
    return (set(METRICS) | set(CALIBRATION_METRICS) | set(BOOTSTRAP_METRICS) | set(CURVE_METRICS)
            | set(EXPERIMENT_KEYS) | set(nc) | per_class | {"head_recall", "medium_recall", "tail_recall"}
            | {"val_balanced_accuracy", "val_accuracy", "train_loss", "val_loss"})


def test_every_metric_key_the_app_shows_has_words():
    for key in _metric_keys_the_app_shows():
        assert display_name(key) != key, key
        assert explanation(key), key
    assert display_name("f1_macro") == "Macro F1" and display_name("gmean") == "G-mean"
    assert display_name("balanced_accuracy") == "Balanced accuracy" and display_name("ece") == "ECE"
    assert display_name("nc1").startswith("NC1") and display_name("nc4").startswith("NC4")
    assert display_name("no_such_key") == "no such key" and explanation("no_such_key") == ""
    assert "common" in explanation("head_recall") and "rare" in explanation("tail_recall")
    assert all(t.key == k for k, t in terms().items())


def test_the_glossary_explains_every_symbol_the_pages_use():
    keys = {t.key for t in glossary()}
    needed = {"tau", "mu", "mu_G", "nc1", "nc2", "nc3", "nc4", "ece", "mce", "balanced_accuracy", "f1_macro", "gmean",
              "head", "medium", "tail", "classifier", "logits", "prior", "temperature", "margin"}
    assert needed <= keys, needed - keys
    assert len(keys) == len(GLOSSARY), "one entry per symbol"
    by_key = {t.key: t for t in glossary()}
    assert "common" in by_key["head"].explanation and "rare" in by_key["tail"].explanation
    assert "last layer" in by_key["classifier"].explanation
    assert "τ" in by_key["tau"].display and "μ" in by_key["mu_G"].display
    text = glossary_markdown()
    assert all(f"**{t.display}**" in text for t in glossary()) and text.count("\n") == len(GLOSSARY) - 1


def test_method_display_speaks_words_and_method_label_stays_for_the_cli():
    from core.config import RunConfig

    config = RunConfig.model_validate({"loss": {"name": "cb_focal", "drw_epoch": 2}, "sampler": {"name": "sqrt"},
                                       "stage2": {"name": "crt"}, "train": {"epochs": 5}})
    assert config.method_label == "cb_focal+drw / sqrt / crt"
    words = method_display(config)
    assert words == "Class-balanced focal loss + DRW · Square-root · Classifier re-training (cRT)"
    assert method_display(config.model_dump(mode="json")) == words, "a stored run's JSON config reads the same"
    assert method_display({"loss": {"name": "ce"}, "sampler": {"name": "instance"}}) == "Cross-entropy (plain)"
    adjusted = method_display({"loss": {"name": "ce"}, "posthoc": [{"logit_tau": 1.0}]})
    assert adjusted.startswith("Cross-entropy (plain) + post-hoc") and "logit adjustment" in adjusted
    baseline = RunConfig.model_validate({"data": {"source": "wine"}, "model": {"name": "logistic_regression"}})
    assert method_display(baseline) == "Logistic regression (baseline)", "a baseline has no loss to name"


def test_settings_read_as_words():
    assert setting_title("train.lr") == "Learning rate"
    assert setting_title("loss.gamma") == "Loss: Focusing strength (gamma)"
    assert setting_title("model.unknown_knob") == "unknown knob"
    assert setting_value("loss.name", "anyloss") == "AnyLoss (metric as loss)"
    assert setting_value("stage2.name", "lws") == "Learnable weight scaling (LWS)"
    assert setting_value("train.epochs", 3) == "3" and setting_value("loss.name", "not_registered") == "not_registered"
    assert plugin_label("attribution", "integrated_gradients") == "Integrated gradients"
    assert plugin_label("nothing", "x") == "x"
    assert setting_title("data.params.noise") == "Dataset: Spread" and setting_title("stage2.epochs") == "Two-stage fix: Epochs"
    assert setting_title("data.label_noise.to") == "Label noise: Wrong class chosen as"
    assert setting_value("data.source", "digits") == "Handwritten digits"
    assert setting_value("data.source", "upload:0123-t.csv") == "upload:0123-t.csv"
    assert setting_value("data.label_noise.name", "pair") == "Swap with a look-alike class"


def test_posthoc_steps_read_as_words_without_the_analysis():
    from core.analysis import describe_posthoc
    from core.glossary import posthoc_words

    assert posthoc_words({}) == "no change" == posthoc_words({"temperature": 1.0, "logit_tau": 0.0})
    assert posthoc_words({"tau_norm": 0.5, "temperature": 1.5, "prior_threshold": True}) == \
        "tau-norm tau=0.5, prior threshold, temperature T=1.5"
    step = {"logit_tau": 1.23456, "tau_norm": 0.0, "temperature": 1.0, "prior_threshold": False}
    assert describe_posthoc(step) == posthoc_words(step) == "logit adjustment tau=1.235"


def test_sweep_axes_and_config_differences_read_as_words():
    import pandas as pd

    from app.compare_view import differences_in_words
    from app.sweep_view import plugin_names_in_words

    table = pd.DataFrame({"loss.name": ["ce", "zloss"], "data.imbalance.ratio": ["10", "10"]})
    shown, axes, reference = plugin_names_in_words(
        table, {"loss.name": ["ce", "zloss"], "data.imbalance.ratio": ["10"]}, ["loss.name", "ce"])
    assert shown["loss.name"].tolist() == ["Cross-entropy (plain)", "Z-loss"] and table["loss.name"][0] == "ce"
    assert axes == {"loss.name": ["Cross-entropy (plain)", "Z-loss"], "data.imbalance.ratio": ["10"]}
    assert reference == ["loss.name", "Cross-entropy (plain)"]
    diff = pd.DataFrame({"a": ["ce", "0.1"], "b": ["focal", "0.2"]}, index=["loss.name", "train.lr"])
    words = differences_in_words(diff)
    assert list(words.index) == ["Loss", "Learning rate"]
    assert words.loc["Loss"].tolist() == ["Cross-entropy (plain)", "Focal loss"]


# --- pages ----------------------------------------------------------------------------------

def test_train_page_pickers_offer_display_names(empty_home, open_page):
    from core.methods import LOSSES

    at = open_page("train")
    assert not at.exception, [e.value for e in at.exception]
    loss = at.selectbox(key="train.loss")
    assert "AnyLoss (metric as loss)" in loss.options and "Class-balanced focal loss" in loss.options
    assert not set(loss.options) & set(LOSSES.names()), "no internal loss name offered"
    assert loss.value == "ce", "the value stays the config's name"
    stage2 = at.selectbox(key="train.stage2")
    assert "Learnable weight scaling (LWS)" in stage2.options and "lws" not in stage2.options
    loss.set_value("anyloss").run()
    assert not at.exception, [e.value for e in at.exception]
    metric = at.selectbox(key="train.loss.anyloss.metric")
    assert metric.label == "Metric to optimise" and "G-mean" in metric.options and "gmean" not in metric.options
    assert at.number_input(key="train.loss.anyloss.L").label == "Sharpness (L)"
    assert "steeply" in at.number_input(key="train.loss.anyloss.L").help
    assert at.selectbox(key="train.sampler").options[0] == "Class-balanced"


def test_every_page_opens_the_glossary_from_the_sidebar(empty_home, open_page):
    at = open_page("train")
    text = " ".join(m.value for m in at.sidebar.markdown)
    assert "**τ (tau)**" in text and "**Head classes**" in text and "**Classifier**" in text


def test_compare_page_names_methods_in_words(empty_home, open_page):
    from conftest import TINY_TABLE_RUN, make_run
    from core.jobs import save_derived_run
    from core.store import RunStore

    run = make_run(empty_home, TINY_TABLE_RUN, embeddings=False)
    save_derived_run(RunStore(empty_home), run, "wine adjusted", {"logit_tau": 1.0})
    at = open_page("compare")
    assert not at.exception, [e.value for e in at.exception]
    options = " | ".join(at.multiselect(key="compare.runs").options)
    assert "Cross-entropy (plain)" in options and "post-hoc logit adjustment" in options
    assert "· ce" not in options
    assert at.selectbox(key="compare.paired.runs").options[0] == "Balanced accuracy"

"""Multi-label runs end to end: config, training, stored arrays and metrics, CLI, comparisons."""

from __future__ import annotations

import json

import pytest

from core.config import ConfigError, MultiLabelLossSpec, MultiLabelSamplerSpec, load_config

TABLE = {"source": "multilabel_table", "params": {"n_samples": 300, "n_features": 8, "n_labels": 5}}


def test_a_multilabel_config_takes_multilabel_losses_and_samplers_and_reads_back_the_same():
    config = load_config({"data": {**TABLE, "hide_labels": 0.3}, "loss": {"name": "asl", "gamma_neg": 3.0},
                          "sampler": {"name": "repeat_factor"}, "evaluation": {"seeds": [0, 1]}})
    assert isinstance(config.loss, MultiLabelLossSpec) and config.loss.params == {"gamma_neg": 3.0}
    assert isinstance(config.sampler, MultiLabelSamplerSpec) and config.data.multilabel
    again = load_config(json.loads(config.to_json()))
    assert again == config and isinstance(again.experiment_runs()[1].loss, MultiLabelLossSpec)
    default = load_config({"data": TABLE})
    assert (default.loss.name, default.sampler.name) == ("bce", "instance")
    assert load_config({}).loss.name == "ce" and not load_config({}).data.multilabel


@pytest.mark.parametrize(("raw", "words"), [
    ({"data": TABLE, "loss": {"name": "ldam"}}, "'ldam' is a single-label loss"),
    ({"data": {"source": "digits"}, "loss": {"name": "db"}}, "'db' is a multi-label loss"),
    ({"data": {"source": "digits"}, "sampler": {"name": "repeat_factor"}}, "'repeat_factor' is a multi-label sampler"),
    ({"data": TABLE, "sampler": {"name": "class_balanced"}}, "'class_balanced' is a single-label sampler"),
    ({"data": TABLE, "stage2": {"name": "crt"}}, "do not take stage2"),
    ({"data": TABLE, "model": {"name": "logistic_regression"}}, "table baseline"),
    ({"data": TABLE, "evaluation": {"folds": 3}}, "evaluation.folds"),
    ({"data": {"source": "digits", "hide_labels": 0.2}}, "multi-label data only"),
    ({"data": TABLE, "loss": {"name": "asl", "bogus": 1}}, "bogus"),
])
def test_the_wrong_kind_of_loss_or_setting_is_refused_in_one_line(raw, words):
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    assert words in str(info.value) and "\n" not in str(info.value)

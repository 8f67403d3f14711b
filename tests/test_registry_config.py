"""The plug-in registry shape and the run config: validation with readable errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import Field

from core.config import ConfigError, RunConfig, load_config
from core.registry import Params, Registry, UnknownPluginError

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "digits-lt-ce.yaml"


class _P(Params):
    k: int = Field(3, ge=1)


def test_registry_rejects_duplicates_and_lists_known_names():
    reg: Registry = Registry("widget")
    reg.register("b", description="B")(lambda: "b")
    reg.register("a", description="A", params=_P, fancy=True)(lambda k: k)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", description="again")(lambda: None)
    assert reg.names() == ["a", "b"]
    assert reg.create("a", {"k": 5}) == 5
    assert reg.info("a").capabilities["fancy"] is True
    with pytest.raises(UnknownPluginError, match="known: a, b"):
        reg.create("zzz")
    with pytest.raises(ValueError, match=r"a: k: .*greater than or equal to 1"):
        reg.create("a", {"k": 0})
    with pytest.raises(ValueError, match="extra|not permitted"):
        reg.create("a", {"kk": 1})


def test_example_config_is_valid():
    config = load_config(EXAMPLE)
    assert config.model.name == "small_cnn" and config.train.epochs == 3
    assert RunConfig.model_validate_json(config.to_json()) == config


@pytest.mark.parametrize("patch, message", [
    ({"loss": {"name": "nope"}}, "loss: unknown loss 'nope'; known: "),
    ({"loss": {"name": "focal", "gamma": -1}}, "loss: focal: gamma"),
    ({"loss": {"name": "ce", "drw_epoch": 5}}, "drw_epoch (5) must be below train.epochs (3)"),
    ({"train": {"epochs": 3, "bogus": 1}}, "train.bogus: Extra inputs are not permitted"),
    ({"sampler": {"name": "temperature", "t0": "hot"}}, "sampler: temperature: t0"),
    ({"data": {"source": "digits", "imbalance": {"profile": "weird"}}}, "data.imbalance.profile"),
    ({"data": {"source": "blobs2d", "params": {"noise": 0}}}, "data.params: blobs2d: noise: Input should be greater"),
    ({"data": {"source": "blobs2d", "params": {"seed": -1}}}, "data.params: blobs2d: seed: Input should be greater"),
    ({"data": {"source": "wine", "params": {"seed": 1}}}, "data.params: wine: seed: Extra inputs are not permitted"),
    ({"data": {"source": "digitz"}}, "data.source: unknown dataset 'digitz'; known: blobs2d, "),
    ({"data": {"source": "upload:0123-t.csv", "params": {"seed": 1}}}, "data.params: params apply to built-in"),
    ({"loss": {"name": "ce", "drw_epoch": -1}}, "loss: drw: drw_epoch: Input should be greater than or equal to 0"),
    ({"loss": {"name": "ce", "drw_beta": 1.0}}, "loss: drw: drw_beta: Input should be less than 1"),
])
def test_bad_configs_fail_with_the_field_path(patch, message):
    raw = {"data": {"source": "digits"}, "train": {"epochs": 3}, **patch}
    with pytest.raises(ConfigError) as exc:
        load_config(raw)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_plugin_specs_fill_defaults_and_label_the_method():
    config = load_config({"loss": {"name": "ldam", "max_margin": 0.5, "s": 30, "drw_epoch": 10},
                          "sampler": {"name": "temperature", "t0": 5, "cooldown": True},
                          "train": {"epochs": 20}})
    assert config.loss.params == {"max_margin": 0.5, "s": 30}
    assert config.sampler.resolved_params()["t_end"] == 1.0
    assert config.method_label == "ldam+drw / temperature"


def test_issue_config_shapes_for_stage2_and_resampler():
    config = load_config({"stage2": {"name": "crt", "epochs": 10}, "resampler": {"name": "smote", "k_neighbors": 5},
                          "data": {"source": "wine"}})
    assert config.stage2.params == {"epochs": 10} and config.resampler.params == {"k_neighbors": 5}


def test_shipped_example_configs_are_valid():
    from pathlib import Path

    examples = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.yaml"))
    assert examples
    from core.jobs import expand_sweep, load_sweep

    for path in examples:
        if "grid" in yaml.safe_load(path.read_text()):  # a sweep: every cell must validate
            cells, problems = expand_sweep(load_sweep(path))
            assert cells and not problems, problems
        else:
            assert load_config(path).name == path.stem


def test_dataset_params_are_checked_before_loading_and_kept_as_given(monkeypatch):
    import core.data._builtins as builtins

    loaded = []
    monkeypatch.setattr(builtins.DATASETS, "create", lambda *a, **k: loaded.append(a))
    config = load_config({"data": {"source": "blobs2d", "params": {"num_classes": 4, "seed": 7}}})
    assert config.data.params == {"num_classes": 4, "seed": 7} and loaded == [], "validated without loading"
    with pytest.raises(ConfigError, match="num_classes"):
        load_config({"data": {"source": "blobs2d", "params": {"num_classes": 1}}})
    assert loaded == []
    assert load_config({"data": {"source": "my_table.csv"}}).data.source == "my_table.csv", "a file path: the CLI stores it"

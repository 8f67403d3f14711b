"""Configs are bounded: every out-of-range or meaningless setting is refused in one line that
names the field, before anything is queued."""

from __future__ import annotations

import pytest

from core.cli import main
from core.config import ConfigError, RunConfig, load_config
from core.data import load_builtin
from core.train import run_problems, run_warnings


@pytest.mark.parametrize("raw, message", [
    ({"train": {"lr": float("nan")}}, "train.lr: not a number"),
    ({"train": {"lr": float("inf")}}, "train.lr: not a number"),
    ({"train": {"seed": 10**21}}, "train.seed: a seed is a whole number from 0 to 4294967295"),
    ({"data": {"seed": -1}}, "data.seed: a seed is a whole number"),
    ({"name": "x" * 201}, "name: String should have at most 200 characters"),
    ({"train": {"step_milestones": [5, -1]}}, "step_milestones must be increasing fractions"),
    ({"train": {"step_milestones": [0.9, 0.8]}}, "step_milestones must be increasing fractions"),
    ({"data": {"imbalance": {"ratio": 1e12}}}, "data.imbalance.ratio: Input should be less than or equal to"),
])
def test_out_of_range_settings_are_refused_with_their_field(raw, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        load_config(raw)


@pytest.mark.parametrize("raw, message", [
    ({"data": {"source": "digits", "label_column": "target"}}, "data.label_column applies to uploaded tables"),
    ({"data": {"source": "digits", "imbalance": {"profile": "exp", "ratio": 5000}}}, "cannot be realised here"),
    ({"data": {"source": "digits", "imbalance": {"profile": "exp", "class_order": [0, 1]}}},
     "each class index 0..9 once, got [0, 1]"),
])
def test_settings_that_do_not_fit_the_data_are_refused(raw, message):
    assert message in " ".join(run_problems(RunConfig.model_validate(raw)))


def test_a_ratio_just_beyond_the_data_runs_with_a_note():
    config = RunConfig.model_validate({"data": {"source": "wine", "imbalance": {"profile": "exp", "ratio": 50}},
                                       "model": {"name": "mlp"}})
    assert run_problems(config) == []
    (note,) = run_warnings(config, load_builtin("wine"))
    assert "realised as about" in note


def test_config_files_that_are_too_large_binary_or_not_yaml_fail_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    cases = {"big.yaml": b"name: x\n" + b"#" * (1024**2 + 10), "latin1.yaml": "name: caf\xe9\n".encode("latin-1"),
             "broken.yaml": b"name: [unclosed\n", "list.yaml": b"- 1\n- 2\n"}
    expected = {"big.yaml": "too large for a config", "latin1.yaml": "not UTF-8 text",
                "broken.yaml": "not valid YAML", "list.yaml": "expected a mapping"}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        assert main(["train", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and expected[name] in err and "Traceback" not in err

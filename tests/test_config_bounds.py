"""Configs are bounded: every out-of-range or meaningless setting is refused in one line that
names the field, before anything is queued."""

from __future__ import annotations

import numpy as np
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
    realised, thin = run_warnings(config, load_builtin("wine"))
    assert "realised as about" in realised
    assert thin.startswith("2 classes keep fewer than 5 labelled training rows with data.imbalance.ratio 50")


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


def test_labelled_counts_match_the_split_a_run_gets():
    """The warning's counts are drawn on the labels alone; the run's own split agrees."""
    from core.data import labelled_train_counts, load_data, split_data

    config = RunConfig.model_validate({"data": {"source": "digits", "imbalance": {"profile": "exp", "ratio": 20},
                                                "unlabeled": {"fraction": 0.6}, "seed": 3}})
    dataset = load_data(config.data)
    before, labelled = labelled_train_counts(dataset, config.data)
    splits = split_data(dataset, config.data)
    np.testing.assert_array_equal(labelled, np.bincount(splits.y_train, minlength=dataset.num_classes))
    np.testing.assert_array_equal(before, splits.counts_before)


@pytest.mark.parametrize("data", [
    {"source": "digits", "imbalance": {"profile": "exp", "ratio": 20}, "unlabeled": {"fraction": 0.6}, "seed": 3},
    {"source": "wine", "imbalance": {"profile": "step", "ratio": 5, "mu": 0.3}, "fold": {"k": 5, "index": 2}},
    {"source": "synthetic_notes", "params": {"most_common": 200}, "unlabeled": {"fraction": 0.3}},
    {"source": "breast_cancer", "label_noise": {"name": "symmetric", "rate": 0.2}},
])
def test_train_labels_without_features_are_the_run_splits_labels(data):
    """The Train page counts classes from a split of the labels alone (no text encoded); it
    must give the labels, in order, that the run's own split gives."""
    from app.train_forms import train_labels
    from core.data import labelled_train_labels, load_data, split_data

    config = RunConfig.model_validate({"data": data})
    dataset = load_data(config.data)
    labels = labelled_train_labels(dataset, config.data)
    expected = split_data(dataset, config.data).y_train
    if config.data.label_noise is not None:
        assert labels is None  # noise may draw on the features: only the full split answers
    else:
        np.testing.assert_array_equal(labels, expected)
    np.testing.assert_array_equal(train_labels(config.data, dataset), expected)


def test_hiding_almost_every_label_warns_before_queueing(tmp_path, capsys, monkeypatch):
    """The issue's silent config: ratio 100 with 99.9 % of labels hidden trained without a word."""
    from core.cli import main

    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path / "home"))
    config = RunConfig.model_validate({"data": {"source": "digits", "imbalance": {"profile": "exp", "ratio": 100},
                                                "unlabeled": {"fraction": 0.999}}, "model": {"name": "mlp"}})
    [note] = run_warnings(config, load_builtin("digits"))
    assert note.startswith("10 classes keep fewer than 5 labelled training rows with data.imbalance.ratio 100 and "
                           "hiding 99.9% of the labels (data.unlabeled.fraction)")
    path = tmp_path / "run.yaml"
    path.write_text("data: {source: digits, imbalance: {profile: exp, ratio: 100}, unlabeled: {fraction: 0.999}}\n"
                    "model: {name: mlp}\n")
    assert main(["train", str(path), "--no-worker"]) == 0
    assert "tailscope: note: 10 classes keep fewer than 5 labelled training rows" in capsys.readouterr().err
    plain = RunConfig.model_validate({"data": {"source": "digits", "imbalance": {"profile": "exp", "ratio": 10}}})
    assert run_warnings(plain, load_builtin("digits")) == []

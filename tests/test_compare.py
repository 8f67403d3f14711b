"""Comparing runs: which runs share a data set, the metrics table and its best-per-column marks."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from core.analysis import METRICS
from core.analysis._compare import (
    SUMMARY_KEYS, best_per_column, comparable, config_differences, describe_data, metrics_table,
    newest_comparable, run_labels,
)
from core.config import RunConfig

BASE = {"data": {"source": "digits", "imbalance": {"profile": "exp", "ratio": 20}}, "model": {"name": "mlp"}}


def cfg(**changes) -> RunConfig:
    raw = {k: dict(v) for k, v in BASE.items()}
    for section, values in changes.items():
        raw[section] = {**raw.get(section, {}), **values}
    return RunConfig.model_validate(raw)


def test_same_data_different_method_is_comparable():
    ok, reason = comparable({"ce": cfg(), "focal": cfg(loss={"name": "focal"}), "long": cfg(train={"epochs": 50})})
    assert ok and "all 3 runs use Handwritten digits (exp imbalance, ratio 20)" in reason


@pytest.mark.parametrize(("change", "words"), [
    ({"data": {"source": "wine"}}, ["a different data source", "test sets differ"]),
    ({"data": {"imbalance": {"profile": "exp", "ratio": 50}}}, ["imbalance profile", "ratio 50", "ratio 20"]),
    ({"data": {"imbalance": {"profile": "step", "ratio": 20}}}, ["a different imbalance profile", "step"]),
    ({"data": {"seed": 3}}, ["a different split", "split seed 3", "split seed 0"]),
    ({"data": {"test_fraction": 0.4}}, ["a different split", "test 0.4"]),
    ({"data": {"many_shot": 50}}, ["head/tail thresholds", "head above 50", "group numbers would not line up"]),
])
def test_different_data_is_refused_with_a_reason_naming_the_runs(change, words):
    data = {**BASE["data"], **change["data"]}
    other = RunConfig.model_validate({**BASE, "data": data})
    ok, reason = comparable({"first run": cfg(), "second run": other})
    assert not ok
    assert "'first run'" in reason and "'second run'" in reason
    for w in words:
        assert w in reason


def test_comparable_accepts_raw_dicts_and_single_runs():
    assert comparable({"a": cfg().model_dump()})[0]
    assert not comparable({"a": cfg().model_dump(), "b": {**BASE, "data": {"source": "wine"}}})[0]


def test_describe_data():
    assert describe_data(cfg()) == "Handwritten digits (exp imbalance, ratio 20)"
    assert describe_data(RunConfig()) == "Handwritten digits (no added imbalance)"
    assert "split seed 0" in describe_data(cfg(), split=True)


def _metrics(**values):
    return {**dict.fromkeys(SUMMARY_KEYS, 0.5), **values}


def test_metrics_table_rows_and_columns():
    table = metrics_table({"a": _metrics(accuracy=0.9), "b": _metrics(gmean=None)})
    assert list(table.index) == ["a", "b"] and list(table.columns) == list(SUMMARY_KEYS)
    assert table.loc["a", "accuracy"] == 0.9 and np.isnan(table.loc["b", "gmean"])


def test_metrics_table_from_bundles_labels_repeated_names():
    bundles = [SimpleNamespace(record=SimpleNamespace(name="ce", id=f"2026-{i}abcdef"), metrics=_metrics())
               for i in range(2)]
    table = metrics_table(bundles)
    assert list(table.index) == ["ce · 0abcdef", "ce · 1abcdef"]
    assert run_labels([("ce", "x-000001"), ("ce", "x-000002"), ("focal", "x-3")]) == [
        "ce · 000001", "ce · 000002", "focal"]


def test_best_per_column_uses_metric_directions():
    table = pd.DataFrame({"accuracy": [0.9, 0.8, 0.9], "balanced_accuracy": [0.5, 0.7, np.nan],
                          "loss": [0.3, 0.1, 0.2], "mystery": [1, 2, 3], "gmean": [0.0, 0.0, 0.0]},
                         index=["a", "b", "c"])
    best = best_per_column(table, {**{k: m.higher_is_better for k, m in METRICS.items()}, "loss": False})
    assert best["accuracy"].tolist() == [True, False, True]  # ties all marked
    assert best["balanced_accuracy"].tolist() == [False, True, False]  # NaN never best
    assert best["loss"].tolist() == [False, True, False]  # lower is better
    assert not best["mystery"].any()  # no declared direction
    assert not best["gmean"].any()  # every run ties: nobody is best
    assert not best_per_column(table.iloc[:1]).any().any()


def test_newest_comparable_picks_the_newest_pair_on_shared_data():
    runs = {"new-wine": cfg(data={"source": "wine"}), "digits-2": cfg(loss={"name": "focal"}),
            "breast": cfg(data={"source": "breast_cancer"}), "digits-1": cfg()}
    assert newest_comparable(runs) == ["digits-2", "digits-1"]
    assert newest_comparable({"a": cfg(), "b": cfg(data={"source": "wine"})}) == ["a"]
    assert newest_comparable({}) == []


def test_config_differences_lists_only_differing_settings():
    diff = config_differences({"ce": cfg(), "focal": cfg(loss={"name": "focal"}, train={"epochs": 5})})
    assert list(diff.columns) == ["ce", "focal"]
    assert diff.loc["loss.name"].tolist() == ["ce", "focal"]
    assert diff.loc["train.epochs"].tolist() == ["20", "5"]
    assert "data.source" not in diff.index and "name" not in diff.index
    # a parameter left at its default is not reported as a difference
    assert config_differences({"a": cfg(), "b": cfg(model={"name": "mlp", "hidden": 128})}).empty
    wider = config_differences({"a": cfg(), "b": cfg(model={"name": "mlp", "hidden": 256})})
    assert wider.loc["model.hidden"].tolist() == ["128", "256"]


def test_newest_comparable_never_pairs_two_seeds_of_one_setup():
    """Two repeats of one set-up differ by chance alone: the default pair takes the newest run
    with another method instead, and none when every run repeats one set-up."""
    runs = {"gb-seed1": cfg(train={"seed": 1}), "gb-seed0": cfg(train={"seed": 0}),
            "focal": cfg(loss={"name": "focal"}), "ce-again": cfg(train={"seed": 2})}
    assert newest_comparable(runs) == ["gb-seed1", "focal"]
    assert newest_comparable({"a": cfg(train={"seed": 1}), "b": cfg(train={"seed": 2})}) == ["a"]


def test_newest_comparable_reads_each_runs_setup_once(monkeypatch):
    """A store of many repeats of one set-up (a busy store's seeds) is scanned without
    recomputing a run's set-up for every pair: the Compare page's default took seconds at
    200 stored runs when it did."""
    import core.analysis._compare as compare

    calls = []
    real = compare.setup_key
    monkeypatch.setattr(compare, "setup_key", lambda config: calls.append(1) or real(config))
    runs = {f"seed-{i}": cfg(train={"seed": i}) for i in range(60)}
    assert newest_comparable(runs) == ["seed-0"]
    assert len(calls) == len(runs)

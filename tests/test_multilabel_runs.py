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
    ({"data": {"source": "digits", "hide_labels": 0.2}}, "multi-label data only"),
    ({"data": TABLE, "loss": {"name": "asl", "bogus": 1}}, "bogus"),
])
def test_the_wrong_kind_of_loss_or_setting_is_refused_in_one_line(raw, words):
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    assert words in str(info.value) and "\n" not in str(info.value)


# --------------------------------------------------------------------------- trained and stored

TINY = {**TABLE, "params": {"n_samples": 320, "n_features": 8, "n_labels": 5, "ratio": 20.0}, "few_shot": 40}
TRAIN = {"epochs": 2, "min_steps": 20, "batch_size": 64, "device": "cpu", "lr": 0.05}


@pytest.fixture(scope="module")
def ml_store(tmp_path_factory):
    """Two multi-label experiments over three seeds (plain BCE and DB loss) and one run with
    hidden entries, in one store."""
    from conftest import make_run
    from core.config import RunConfig
    from core.jobs import execute_run
    from core.store import RunStore
    import os

    home = tmp_path_factory.mktemp("ml")
    store = RunStore(home)
    ids = {}
    for loss in ("bce", "db"):
        config = RunConfig.model_validate({"name": loss, "data": TINY, "loss": {"name": loss}, "train": TRAIN,
                                           "evaluation": {"seeds": [0, 1, 2]}})
        ids[loss] = store.create_experiment(config)
        for run in store.get_experiment(ids[loss]).runs:
            assert execute_run(store, store.claim(run.id, os.getpid()), embeddings=False) == "done"
    ids["hidden"] = make_run(home, {"name": "hidden", "data": {**TINY, "hide_labels": 0.4}, "loss": {"name": "asl"},
                                    "sampler": {"name": "repeat_factor"}, "train": TRAIN}, embeddings=False)
    return {"home": home, "store": store, **ids}


def test_a_multilabel_run_stores_its_label_matrix_and_every_number_with_an_interval(ml_store):
    import numpy as np
    from sklearn.metrics import average_precision_score

    from core.analysis import sigmoid

    store, run_id = ml_store["store"], ml_store["hidden"]
    art = store.artifacts(run_id)
    assert art.multilabel and art.label_matrix.shape == art.logits.shape and art.logits.shape[1] == 5
    with np.load(store.run_dir(run_id) / "eval.npz", allow_pickle=False) as z:  # no pickle needed to read it
        assert "label_matrix" in z.files
    metrics = store.metrics(run_id)
    for key in ("map", "map_tail", "f1_macro", "f1_micro", "roc_auc_macro", "subset_accuracy", "hamming_loss"):
        ci = metrics["ci"][key]
        assert ci["low"] <= metrics[key] <= ci["high"], key
    scores = sigmoid(art.logits)
    for row in metrics["per_label"]:  # each label's AP is scikit-learn's on the stored arrays
        c = row["label_index"]
        assert row["ap"] == pytest.approx(average_precision_score(art.label_matrix[:, c], scores[:, c]))
        assert row["ap_low"] <= row["ap"] <= row["ap_high"]
    train = store.history(run_id)
    assert all("val_map" in row for row in train)
    # the hidden entries: 40 % of each label's training entries unknown, counted with the run
    assert metrics["dataset"]["hidden_entries"] > 0 and metrics["training"]["selected_by"] == "validation mAP"


def test_show_json_prints_the_multilabel_metrics(ml_store, capsys, monkeypatch):
    from core.cli import main

    monkeypatch.setenv("TAILSCOPE_HOME", str(ml_store["home"]))
    assert main(["show", ml_store["hidden"], "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["metrics"]["multilabel"] is True and {"map", "map_tail", "hamming_loss"} <= set(payload["metrics"])
    assert len(payload["metrics"]["per_label"]) == 5 and payload["ci"]["map_tail"]["low"] is not None
    assert main(["show", ml_store["hidden"]]) == 0
    assert "mAP of rare findings" in capsys.readouterr().out
    assert main(["show", ml_store["hidden"], "--prior", "uniform"]) == 2


def test_experiments_summarise_multilabel_numbers_and_compare_through_the_one_rule(ml_store):
    import numpy as np

    from core.analysis import compare_experiments, compare_ids, experiment_summary

    store = ml_store["store"]
    summary = experiment_summary(store, ml_store["db"])
    assert summary["n_done"] == 3 and set(summary["summary"]) >= {"map", "map_tail", "hamming_loss"}
    values = [r["metrics"]["map_tail"] for r in summary["runs"]]
    assert summary["summary"]["map_tail"]["mean"] == pytest.approx(np.mean(values))
    result = compare_ids(store, ml_store["db"], ml_store["bce"], "map_tail")
    bce = [r["metrics"]["map_tail"] for r in experiment_summary(store, ml_store["bce"])["runs"]]
    expected = compare_experiments(np.array(values), np.array(bce), metric="map_tail", design="seeds",
                                   n_train=1, n_test=1, folds=1)
    assert result["difference"] == pytest.approx(expected.difference) and result["verdict"] == expected.verdict
    with pytest.raises(ValueError, match="single-label metric"):
        compare_ids(store, ml_store["db"], ml_store["bce"], "balanced_accuracy")


def test_two_single_multilabel_runs_compare_case_by_case(ml_store):
    from core.analysis import compare_ids, compare_multilabel_runs, sigmoid

    store = ml_store["store"]
    a, b = (store.get_experiment(ml_store[k]).runs[0].id for k in ("db", "bce"))
    result = compare_ids(store, a, b, "map")
    art_a, art_b = store.artifacts(a), store.artifacts(b)
    direct = compare_multilabel_runs(sigmoid(art_a.logits), sigmoid(art_b.logits), art_a.label_matrix,
                                     art_a.label_counts, "map")
    assert result["difference"] == pytest.approx(direct.difference) and result["verdict"] == direct.verdict
    with pytest.raises(ValueError, match="own thresholds"):
        compare_ids(store, a, b, "f1_macro")


def test_run_data_hides_training_entries_only_and_can_read_them_as_absent():
    import numpy as np

    from core.data import prepare_multilabel_run_data

    masked = prepare_multilabel_run_data(load_config({"data": {**TINY, "hide_labels": 0.3}}).data)
    hidden = np.isnan(masked.y_train)
    known_before = len(masked.y_train)  # the built-in has no unknown entries of its own
    assert np.allclose(hidden.sum(axis=0), np.round(0.3 * known_before), atol=1)
    assert not np.isnan(masked.y_val).any() and not np.isnan(masked.y_test).any()
    absent = prepare_multilabel_run_data(load_config({"data": {**TINY, "hide_labels": 0.3,
                                                               "unknown_as_absent": True}}).data)
    assert not np.isnan(absent.y_train).any() and (absent.y_train[hidden] == 0).all()
    assert np.array_equal(absent.y_train[~hidden], masked.y_train[~hidden])
    assert (absent.label_counts == masked.label_counts).all()  # hiding removed positives; reading them absent adds none


def test_training_calls_the_correctors_epoch_each_epoch_and_keeps_the_best_validation_map(monkeypatch):
    from core.methods._comic import ReflectiveLabelCorrector
    from core.train import train_run

    seen = []
    original = ReflectiveLabelCorrector.set_epoch
    monkeypatch.setattr(ReflectiveLabelCorrector, "set_epoch", lambda self, e: (seen.append(e), original(self, e)))
    config = load_config({"data": {**TINY, "hide_labels": 0.3}, "loss": {"name": "plt_corrector"},
                          "train": {**TRAIN, "epochs": 3}})
    result = train_run(config)
    assert seen == [0, 1, 2]
    maps = [row["val_map"] for row in result.history]
    assert result.info["selected_epoch"] == 1 + max(range(3), key=lambda i: (maps[i], -result.history[i]["val_loss"]))
    assert result.artifacts.logits.shape == (len(result.splits.y_test), 5)


def test_reading_unknown_entries_as_absent_trains_a_different_model():
    import numpy as np

    from core.train import train_run

    base = {"data": {**TINY, "hide_labels": 0.5}, "train": TRAIN}
    masked = train_run(load_config(base)).artifacts.logits
    again = train_run(load_config(base)).artifacts.logits
    absent = train_run(load_config({**base, "data": {**base["data"], "unknown_as_absent": True}})).artifacts.logits
    assert np.array_equal(masked, again)  # same config, same seed, same device: the same model
    assert not np.allclose(masked, absent)


@pytest.mark.parametrize("command", ["explain", "robustness", "label-issues"])
def test_single_label_commands_refuse_a_multilabel_run_in_one_line(ml_store, capsys, monkeypatch, tmp_path, command):
    from core.cli import main

    monkeypatch.setenv("TAILSCOPE_HOME", str(ml_store["home"]))
    assert main([command, ml_store["hidden"]]) == 2
    err = capsys.readouterr().err.strip()
    assert "this run is multi-label" in err and err.count("\n") == 0


def test_a_sweep_over_multilabel_losses_plans_its_cells_and_refuses_a_single_label_one():
    from core.jobs._sweeps import SweepRefused, load_sweep, plan_sweep

    spec = {"name": "ml", "data": TINY, "train": TRAIN, "grid": {"loss.name": ["bce", "db"]}}
    cells = plan_sweep(load_sweep(spec))
    assert [type(c.config.loss).__name__ for c in cells] == ["MultiLabelLossSpec"] * 2
    with pytest.raises(SweepRefused) as info:
        plan_sweep(load_sweep({**spec, "grid": {"loss.name": ["bce", "ldam"]}}))
    assert any("'ldam' is a single-label loss" in p for p in info.value.problems)

"""Experiments: folds and seeds, their store rows, summaries and paired comparisons, end to end."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from scipy import stats
from sklearn.model_selection import StratifiedKFold
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

from core.cli import main
from core.config import RunConfig
from core.data import load_builtin, prepare_splits, stratified_fold
from core.store import RunStore

# One worker takes the module: the two experiments trained through the CLI are a module
# fixture, built once.
pytestmark = pytest.mark.xdist_group("experiments-cli")

WINE = {"source": "wine", "imbalance": {"profile": "exp", "ratio": 5}}


def _cli(capsys, *args) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_folds_are_sklearns_stratified_kfold_and_test_every_sample_once():
    y = load_builtin("wine").y
    held = [stratified_fold(y, 5, i, seed=3)[1] for i in range(5)]
    np.testing.assert_array_equal(np.sort(np.concatenate(held)), np.arange(len(y)))
    reference = [np.sort(test) for _, test in StratifiedKFold(5, shuffle=True, random_state=3).split(y, y)]
    for ours, theirs in zip(held, reference, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    for test in held:  # stratified: each class's share in every fold within one sample of its fair share
        fair = np.bincount(y) / 5
        assert np.all(np.abs(np.bincount(y[test], minlength=3) - fair) <= 1)


def test_a_fold_needs_as_many_samples_per_class_as_folds():
    with pytest.raises(ValueError, match="choose at most 2 folds"):
        stratified_fold(np.array([0, 0, 0, 1, 1]), 3, 0, seed=0)


def test_the_profile_cuts_only_the_training_part_of_a_fold():
    data = load_builtin("digits")
    splits = prepare_splits(data, profile="exp", ratio=20, seed=1, fold=(4, 2))
    test_share = np.bincount(splits.y_test, minlength=10) / len(splits.y_test)
    np.testing.assert_allclose(test_share, np.bincount(data.y) / len(data.y), atol=0.01)
    counts = np.bincount(splits.y_train, minlength=10)
    assert counts.max() / counts.min() == pytest.approx(20, rel=0.1)
    assert len(splits.y_test) == pytest.approx(len(data.y) / 4, abs=1)
    assert not set(splits.y_val.tolist()) - set(range(10))


def test_an_experiment_expands_into_plain_runs():
    config = RunConfig.model_validate({"name": "x", "data": {**WINE, "seed": 7}, "evaluation": {"folds": 3, "seeds": [0, 5]}})
    runs = config.experiment_runs()
    assert [(r.data.seed, r.data.fold.index, r.train.seed) for r in runs] == [
        (7, 0, 0), (7, 1, 0), (7, 2, 0), (8, 0, 5), (8, 1, 5), (8, 2, 5)]
    assert runs[4].name == "x · fold 2/3 · seed 5"
    assert all(not r.evaluation.is_experiment for r in runs)
    seeds_only = RunConfig.model_validate({"evaluation": {"seeds": [1, 2, 3]}}).experiment_runs()
    assert [(r.data.fold, r.data.seed, r.train.seed) for r in seeds_only] == [(None, 0, 1), (None, 0, 2), (None, 0, 3)]
    assert len(RunConfig().experiment_runs()) == 1


@pytest.mark.parametrize("evaluation, message", [
    ({"seeds": [1, 1]}, "repeats a seed"), ({"seeds": [-1]}, "greater than or equal to 0"),
    ({"folds": 1, "seeds": [2**32]}, "less than or equal to"), ({"folds": 30}, "less than or equal to 20"),
])
def test_bad_evaluations_are_refused(evaluation, message):
    with pytest.raises(ValueError, match=message):
        RunConfig.model_validate({"evaluation": evaluation})


def test_old_stores_gain_the_experiment_column(tmp_path):
    db = sqlite3.connect(tmp_path / "tailscope.db")
    db.execute("CREATE TABLE runs (id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL, created REAL NOT "
               "NULL, updated REAL NOT NULL, started REAL, finished REAL, dataset TEXT NOT NULL, method TEXT NOT NULL,"
               " config TEXT NOT NULL, progress TEXT, summary TEXT, error TEXT, parent TEXT, worker_pid INTEGER, "
               "heartbeat REAL, cancel_requested INTEGER NOT NULL DEFAULT 0)")
    db.execute("INSERT INTO runs (id, name, status, created, updated, dataset, method, config) VALUES "
               "('old', 'old', 'done', 1, 1, 'digits', 'ce', '{}')")
    db.commit()
    db.close()
    store = RunStore(tmp_path)
    assert store.get("old").experiment is None and store.get("old").to_dict()["experiment"] is None


@pytest.fixture(scope="module")
def cli_home(tmp_path_factory):
    """Two 3-fold x 2-seed experiments on wine (logistic regression, an MLP) run through the CLI."""
    home = tmp_path_factory.mktemp("experiments")
    configs = {
        "lr": {"name": "wine lr", "data": WINE, "model": {"name": "logistic_regression"}},
        "mlp": {"name": "wine mlp", "data": WINE, "model": {"name": "mlp", "hidden": 16},
                "train": {"epochs": 4, "nc_every": 0, "min_steps": 40}},
    }
    ids = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TAILSCOPE_HOME", str(home))
        for key, raw in configs.items():
            path = home / f"{key}.json"
            path.write_text(json.dumps(raw))
            assert main(["train", str(path), "--folds", "3", "--seeds", "2", "--wait", "--no-embeddings"]) == 0
            ids[key] = RunStore(home).list_experiments()[0].id
    return {"home": home, **ids}


def test_train_with_folds_and_seeds_stores_one_experiment(cli_home, capsys, monkeypatch):
    monkeypatch.setenv("TAILSCOPE_HOME", str(cli_home["home"]))
    code, out, _ = _cli(capsys, "runs", "--json")
    runs = json.loads(out)
    assert code == 0 and len(runs) == 12
    assert {r["experiment"] for r in runs} == {cli_home["lr"], cli_home["mlp"]}
    exp = RunStore(cli_home["home"]).get_experiment(cli_home["lr"])
    assert exp.status == "done" and len(exp.runs) == 6


def test_show_experiment_summarises_its_runs_with_t_intervals(cli_home, capsys, monkeypatch):
    monkeypatch.setenv("TAILSCOPE_HOME", str(cli_home["home"]))
    code, out, _ = _cli(capsys, "show", cli_home["mlp"], "--json")
    shown = json.loads(out)
    assert code == 0 and len(shown["runs"]) == 6 and shown["n_done"] == 6
    values = np.array([r["metrics"]["balanced_accuracy"] for r in shown["runs"]])
    s = shown["summary"]["balanced_accuracy"]
    half = stats.t.ppf(0.975, 5) * values.std(ddof=1) / np.sqrt(6)
    assert s["n"] == 6 and s["mean"] == pytest.approx(values.mean()) and s["sd"] == pytest.approx(values.std(ddof=1))
    assert s["ci"] == pytest.approx([values.mean() - half, values.mean() + half])
    assert {"class", "recall", "recall_low", "recall_high"} <= set(shown["per_class"][0])


def test_show_run_has_a_bootstrap_interval_per_headline_metric(cli_home, capsys, monkeypatch):
    monkeypatch.setenv("TAILSCOPE_HOME", str(cli_home["home"]))
    run_id = RunStore(cli_home["home"]).get_experiment(cli_home["mlp"]).runs[0].id
    shown = json.loads(_cli(capsys, "show", run_id, "--json")[1])
    assert set(shown["ci"]) == {"accuracy", "balanced_accuracy", "f1_macro", "gmean", "ece"}
    for key, ci in shown["ci"].items():
        value = shown["calibration"]["ece"] if key == "ece" else shown["metrics"][key]
        assert ci["low"] <= value <= ci["high"]
        assert ("Wilson" if key == "gmean" else "bootstrap") in ci["method"]
    row = shown["metrics"]["per_class"][0]
    assert row["recall_low"] <= row["recall"] <= row["recall_high"]
    assert shown["metrics"]["training"]["selected_epoch"] >= 1
    assert {"torch", "numpy", "threads", "device"} <= set(shown["metrics"]["environment"])


def test_compare_experiments_uses_the_corrected_resampled_t_test(cli_home, capsys, monkeypatch):
    monkeypatch.setenv("TAILSCOPE_HOME", str(cli_home["home"]))
    code, out, _ = _cli(capsys, "compare", cli_home["mlp"], cli_home["lr"], "--json")
    result = json.loads(out)
    assert code == 0 and {"metric", "difference", "ci", "p_value", "test", "verdict"} <= set(result)
    store = RunStore(cli_home["home"])
    key = lambda r: (r.config["data"]["seed"], r.config["data"]["fold"]["index"], r.config["train"]["seed"])  # noqa: E731
    a = {key(r): store.metrics(r.id)["balanced_accuracy"] for r in store.get_experiment(cli_home["mlp"]).runs}
    b = {key(r): store.metrics(r.id)["balanced_accuracy"] for r in store.get_experiment(cli_home["lr"]).runs}
    d = np.array([a[k] - b[k] for k in sorted(a)])
    # the fold design's sizes: each test fold against the other k - 1 = 2 folds, n_test/n_train = 1/2
    t = d.mean() / np.sqrt((1 / 6 + 1 / 2) * d.var(ddof=1))
    assert result["difference"] == pytest.approx(d.mean())
    assert result["p_value"] == pytest.approx(2 * stats.t.sf(abs(t), 5), rel=1e-9)
    assert "n_test/n_train = 0.5" in result["note"]
    assert "Nadeau" in result["test"] and ("within noise" in result["verdict"] or "beyond noise" in result["verdict"])


def test_compare_two_runs_bootstraps_the_metric_with_mcnemar_beside_it(cli_home, capsys, monkeypatch):
    monkeypatch.setenv("TAILSCOPE_HOME", str(cli_home["home"]))
    store = RunStore(cli_home["home"])
    a, b = store.get_experiment(cli_home["mlp"]).runs[0].id, store.get_experiment(cli_home["lr"]).runs[0].id
    result = json.loads(_cli(capsys, "compare", a, b, "--json")[1])
    art_a, art_b = store.artifacts(a), store.artifacts(b)
    right_a, right_b = art_a.logits.argmax(1) == art_a.labels, art_b.logits.argmax(1) == art_b.labels
    table = [[np.sum(right_a & right_b), np.sum(right_a & ~right_b)], [np.sum(~right_a & right_b), np.sum(~right_a & ~right_b)]]
    assert result["mcnemar"]["p_value"] == pytest.approx(sm_mcnemar(table, exact=True).pvalue)
    assert result["mcnemar"]["tests"] == "accuracy" and "McNemar's test of accuracy" in result["note"]
    assert result["test"].startswith("paired stratified bootstrap")
    assert (result["p_value"] <= 0.05) == (result["ci"][0] > 0 or result["ci"][1] < 0)


def test_runs_from_different_folds_or_kinds_are_refused(cli_home, capsys, monkeypatch):
    monkeypatch.setenv("TAILSCOPE_HOME", str(cli_home["home"]))
    runs = RunStore(cli_home["home"]).get_experiment(cli_home["mlp"]).runs
    code, _, err = _cli(capsys, "compare", runs[0].id, runs[1].id)
    assert code == 2 and "different split" in err
    code, _, err = _cli(capsys, "compare", runs[0].id, cli_home["lr"])
    assert code == 2 and "experiment with an experiment" in err


def test_a_file_path_source_is_stored_as_an_upload(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path / "home"))
    rows = ["age,chol,diagnosis"] + [f"{20 + i % 50},{150 + (i * 7) % 90},{'rare' if i % 10 == 0 else 'common'}"
                                     for i in range(60)]
    (tmp_path / "patients.csv").write_text("\n".join(rows) + "\n")
    config = tmp_path / "run.yaml"
    config.write_text("data: {source: ./patients.csv, label_column: diagnosis}\nmodel: {name: logistic_regression}\n")
    code, out, err = _cli(capsys, "train", str(config), "--no-worker")
    assert code == 0, err
    record = RunStore(tmp_path / "home").get(out.strip())
    assert record.config["data"]["source"].startswith("upload:") and record.config["data"]["source"].endswith("patients.csv")
    config.write_text("data: {source: ./missing.csv}\n")
    code, _, err = _cli(capsys, "train", str(config))
    assert code == 2 and "no file of that name" in err and "missing.csv" in err


def test_a_rejected_file_source_is_not_kept(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path / "home"))
    (tmp_path / "bad.csv").write_text("a,label\n1,x\n2,y\n")
    config = tmp_path / "run.yaml"
    config.write_text("data: {source: ./bad.csv, label_column: label}\nmodel: {name: logistic_regression}\n")
    code, _, err = _cli(capsys, "train", str(config))
    assert code == 2 and "bad.csv" in err
    assert not list((tmp_path / "home" / "uploads").glob("*bad.csv"))

"""Multi-label table baselines (one-vs-rest logistic regression, a classifier chain) and
multi-label experiments over folds by iterative stratification."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.config import ConfigError, load_config

TABLE = {"source": "multilabel_table", "params": {"n_samples": 320, "n_features": 8, "n_labels": 5, "ratio": 20.0},
         "few_shot": 40}


def _label_matrix(seed: int = 0, n: int = 120, hide: float = 0.25):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4))
    y = (x[:, :3] + 0.8 * rng.standard_normal((n, 3)) > np.array([0.0, 0.6, 1.2])).astype(float)
    hidden = y.copy()
    hidden[rng.random(y.shape) < hide] = np.nan
    return x, y, hidden


def test_one_vs_rest_fits_each_label_on_its_known_entries_only():
    from sklearn.linear_model import LogisticRegression

    from core.models import create_baseline

    x, _, y = _label_matrix()
    proba = create_baseline("ovr_logistic_regression", seed=0).fit(x, y).predict_proba(x)
    for c in range(y.shape[1]):  # scikit-learn's own fit on the label's known rows, weighted per label
        known = ~np.isnan(y[:, c])
        own = LogisticRegression(class_weight="balanced", max_iter=2000, random_state=0).fit(x[known], y[known, c])
        np.testing.assert_allclose(proba[:, c], own.predict_proba(x)[:, 1], rtol=1e-6)
    # the rows whose entry is unknown change nothing: scramble their features, the fit stays
    scrambled = x.copy()
    unknown0 = np.isnan(y[:, 0])
    scrambled[unknown0] = np.random.default_rng(9).standard_normal((int(unknown0.sum()), 4)) * 50
    again = create_baseline("ovr_logistic_regression", seed=0).fit(scrambled, y)
    np.testing.assert_allclose(again.predict_proba(x)[:, 0], proba[:, 0], rtol=1e-6)
    assert not np.allclose(again.predict_proba(x)[:, 1], proba[:, 1])  # label 1 knows some of those rows


def test_the_chain_is_scikit_learns_on_the_fully_known_cases_and_refuses_too_few_in_one_line():
    from sklearn.linear_model import LogisticRegression
    from sklearn.multioutput import ClassifierChain

    from core.models import create_baseline

    x, _, y = _label_matrix(hide=0.1)
    chain = create_baseline("classifier_chain", seed=0).fit(x, y)
    complete = ~np.isnan(y).any(axis=1)
    own = ClassifierChain(LogisticRegression(class_weight="balanced", max_iter=2000, random_state=0),
                          order=[0, 1, 2], random_state=0).fit(x[complete], y[complete].astype(int))
    np.testing.assert_allclose(chain.predict_proba(x), own.predict_proba(x), rtol=1e-6)
    assert chain.cases_used_ == int(complete.sum()) < len(y)
    rare_first = create_baseline("classifier_chain", {"order": "tail_first"}, seed=0).fit(x, y)
    own.set_params(order=[2, 1, 0]).fit(x[complete], y[complete].astype(int))
    np.testing.assert_allclose(rare_first.predict_proba(x), own.predict_proba(x), rtol=1e-6)
    _, _, sparse = _label_matrix(hide=0.8)
    with pytest.raises(ValueError) as info:
        create_baseline("classifier_chain").fit(x, sparse)
    assert "data.hide_labels" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(("raw", "words"), [
    ({"data": TABLE, "model": {"name": "hist_gradient_boosting"}}, "single-label table baseline"),
    ({"model": {"name": "ovr_logistic_regression"}}, "a multi-label baseline"),
    ({"data": TABLE, "model": {"name": "classifier_chain"}, "loss": {"name": "asl"}}, "with a table baseline"),
    ({"data": {"source": "digits"}, "model": {"name": "classifier_chain"}}, "one class per case"),
])
def test_a_baseline_of_the_other_kind_is_refused_in_one_line(raw, words):
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_a_baseline_on_pictures_is_refused_before_the_run():
    from core.train import compatible_models, run_problems

    config = load_config({"data": {"source": "multilabel_digits"}, "model": {"name": "ovr_logistic_regression"}})
    [problem] = run_problems(config)
    assert "works on tabular data" in problem
    assert "classifier_chain" not in compatible_models("tabular")  # never offered for one class per case


@pytest.mark.parametrize("model", ["ovr_logistic_regression", "classifier_chain"])
def test_a_baseline_run_stores_what_a_network_run_stores_and_its_ap_is_scikit_learns(tmp_path, model):
    from sklearn.metrics import average_precision_score

    from conftest import make_run
    from core.data import prepare_multilabel_run_data
    from core.models import create_baseline
    from core.store import RunStore

    raw = {"name": model, "data": {**TABLE, "hide_labels": 0.15}, "model": {"name": model}, "train": {"seed": 4}}
    run_id = make_run(tmp_path, raw, embeddings=False)
    store = RunStore(tmp_path)
    metrics, art = store.metrics(run_id), store.artifacts(run_id)
    assert metrics["multilabel"] is True and art.multilabel
    assert not (store.run_dir(run_id) / "model.safetensors").exists()  # no weights to store
    assert {"map", "map_tail", "f1_macro", "hamming_loss"} <= set(metrics)
    assert metrics["ci"]["map_tail"]["low"] is not None
    data = prepare_multilabel_run_data(load_config(raw).data)  # an independent fit on the same split
    proba = create_baseline(model, seed=4).fit(data.x_train, data.y_train).predict_proba(data.x_test)
    for row in metrics["per_label"]:
        c = row["label_index"]
        known = ~np.isnan(data.y_test[:, c])
        assert row["ap"] == pytest.approx(average_precision_score(data.y_test[known, c], proba[known, c]), abs=1e-6)
    assert metrics["training"]["hidden_entries"] > 0 and len(store.history(run_id)) == 1


# --------------------------------------------------------------------------- folds

def test_folds_hold_out_every_case_once_as_iterstrat_does():
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

    from core.data import multilabel_folds, prepare_multilabel_splits
    from core.data._multilabel import load_multilabel_builtin

    y = load_multilabel_builtin("multilabel_table", TABLE["params"]).y
    k, seed = 4, 7
    tests = [prepare_multilabel_splits(y, seed=seed, fold=(k, i)).test for i in range(k)]
    assert np.array_equal(np.sort(np.concatenate(tests)), np.arange(len(y)))  # every case tested once
    direct = MultilabelStratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros((len(y), 1)),
                                                                                          np.nan_to_num(y).astype(int))
    for test, (_, theirs) in zip(tests, direct, strict=True):
        assert np.array_equal(test, np.sort(theirs))
    positives = np.nan_to_num(y).sum(axis=0)
    for test in tests:  # every label, the rarest too, in proportion (within one case) in each fold
        assert np.all(np.abs(np.nan_to_num(y[test]).sum(axis=0) - positives / k) <= 1.0 + 1e-9)
    split = prepare_multilabel_splits(y, seed=seed, fold=(k, 0))
    assert not set(split.train) & set(split.test) and not set(split.val) & set(split.test)
    assert [len(t) for t, _ in multilabel_folds(y, k, seed)] == [len(y) - len(t) for t in tests]


def test_an_experiment_over_folds_of_two_baselines_gets_a_verdict_on_tail_map(tmp_path):
    import os

    from core.analysis import compare_experiments, compare_ids, experiment_summary
    from core.config import RunConfig
    from core.jobs import execute_run
    from core.store import RunStore

    store, ids = RunStore(tmp_path), {}
    small = {**TABLE, "params": {**TABLE["params"], "n_samples": 120}}
    for model in ("ovr_logistic_regression", "classifier_chain"):
        config = RunConfig.model_validate({"name": model, "data": small, "model": {"name": model},
                                           "evaluation": {"folds": 3}})
        ids[model] = store.create_experiment(config)
        for run in store.get_experiment(ids[model]).runs:
            assert execute_run(store, store.claim(run.id, os.getpid()), embeddings=False) == "done"
    summary = experiment_summary(store, ids["classifier_chain"])
    assert summary["n_done"] == 3 and "map_tail" in summary["summary"]
    tested = [store.metrics(r.id)["dataset"]["n_test"] for r in store.get_experiment(ids["classifier_chain"]).runs]
    assert sum(tested) == small["params"]["n_samples"]  # the three test folds are the whole set
    result = compare_ids(store, ids["classifier_chain"], ids["ovr_logistic_regression"], "map_tail")
    values = {m: np.array([r["metrics"]["map_tail"] for r in experiment_summary(store, ids[m])["runs"]]) for m in ids}
    expected = compare_experiments(values["classifier_chain"], values["ovr_logistic_regression"], metric="map_tail",
                                   design="folds", n_train=int(np.mean(tested)) * 2, n_test=int(np.mean(tested)),
                                   folds=3, repeats=1)
    assert result["difference"] == pytest.approx(expected.difference) and result["verdict"] == expected.verdict


def test_tailscope_train_runs_a_multilabel_baseline_config(tmp_path, capsys, monkeypatch):
    from core.cli import main

    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    path = tmp_path / "ml.json"
    path.write_text(json.dumps({"data": TABLE, "model": {"name": "ovr_logistic_regression"}}))
    assert main(["train", str(path), "--wait", "--no-embeddings"]) == 0
    run_id = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["show", run_id, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["metrics"]["multilabel"] is True and payload["config"]["model"]["name"] == "ovr_logistic_regression"


def test_predict_refits_a_multilabel_baseline_and_scores_as_the_run_did(tmp_path):
    import io

    from conftest import make_run
    from core.analysis import sigmoid
    from core.data import prepare_multilabel_run_data
    from core.predict import predict_multilabel_cases
    from core.store import RunStore

    raw = {"data": TABLE, "model": {"name": "classifier_chain"}}
    run_id = make_run(tmp_path, raw, embeddings=False)
    store = RunStore(tmp_path)
    buffer = io.BytesIO()
    np.savez(buffer, x=prepare_multilabel_run_data(load_config(raw).data).x_test[:10])
    result = predict_multilabel_cases(store, run_id, "new.npz", buffer.getvalue())
    np.testing.assert_allclose(result.probs, sigmoid(store.artifacts(run_id).logits[:10]), rtol=1e-5)

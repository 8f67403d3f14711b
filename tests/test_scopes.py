"""One scope per view, said in words: a view shows one run or an experiment's mean, labelled;
every headline number carries its interval (its ends, inside the metric's range) or its count;
per-class numbers from fewer than 10 test cases are marked."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import open_at_address, shown_table
from core.analysis import FEW_CASES, calibration_intervals, ece, few_cases_words, mce, nll, softmax
from core.run_words import scope_words
from core.store import RunStore
from core.text import number


def test_scope_words_say_what_the_mean_is_over():
    assert scope_words({"folds": 1, "seeds": [0, 1, 2, 3, 4]}) == "Mean of 5 seeds, with 95 % interval"
    assert scope_words({"folds": 3, "seeds": []}) == "Mean of 3 folds, with 95 % interval"
    assert scope_words({"folds": 3, "seeds": [0, 1]}, 5) == "Mean of 5 of 6 runs (3 folds × 2 seeds), with 95 % interval"
    from core.config import EvaluationConfig

    assert scope_words(EvaluationConfig(seeds=[0, 1]), 1) == "Mean of 1 of 2 seeds, with 95 % interval"


def test_few_cases_are_marked_below_ten():
    assert FEW_CASES == 10 and few_cases_words(9) == "9 (few)" and few_cases_words(10) == "10"


def _calibration_case(n=300, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.choice(k, size=n, p=[0.7, 0.25, 0.05][:k])
    logits = rng.normal(size=(n, k)) * 1.5
    logits[np.arange(n), y] += 1.2
    return softmax(logits), y


def test_calibration_intervals_match_a_hand_made_stratified_bootstrap():
    probs, y = _calibration_case()
    found = calibration_intervals(probs, y, n_resamples=2000, seed=1)
    assert found["ece"].estimate == pytest.approx(ece(probs, y))
    assert found["mce"].estimate == pytest.approx(mce(probs, y))
    assert found["nll"].estimate == pytest.approx(nll(probs, y))
    rng = np.random.default_rng(7)  # an independent bootstrap: resample within each class, take percentiles
    members = [np.flatnonzero(y == c) for c in np.unique(y)]
    values = {"ece": [], "mce": [], "nll": []}
    for _ in range(2000):
        idx = np.concatenate([rng.choice(m, size=m.size, replace=True) for m in members])
        values["ece"].append(ece(probs[idx], y[idx]))
        values["mce"].append(mce(probs[idx], y[idx]))
        values["nll"].append(nll(probs[idx], y[idx]))
    for key, tolerance in (("ece", 0.01), ("mce", 0.06), ("nll", 0.03)):
        low, high = np.percentile(values[key], [2.5, 97.5])
        assert found[key].low == pytest.approx(low, abs=tolerance), key
        assert found[key].high == pytest.approx(high, abs=tolerance), key
        assert 0 <= found[key].low <= found[key].estimate <= found[key].high
    assert found["ece"].high <= 1 and found["mce"].high <= 1


def test_interval_words_use_the_ends_and_never_leave_the_range():
    from app.run_cards import interval_text, run_interval_text

    text = interval_text({"mean": 0.743, "ci": [0.35, 1.0], "n": 3}, "G-mean")
    assert text == "G-mean 0.743 [0.350, 1.000] (mean of 3 runs, 95 % interval)" and "±" not in text
    metrics = {"balanced_accuracy": 0.739, "ci": {"balanced_accuracy": {"low": 0.70, "high": 0.774}},
               "per_class": [{"support": 300}, {"support": 12}]}
    assert run_interval_text(metrics, "balanced_accuracy", "balanced accuracy") == \
        "balanced accuracy 0.739 [0.700, 0.774] (95 % interval over its 312 test cases)"
    assert run_interval_text({**metrics, "ci": {}}, "balanced_accuracy", "balanced accuracy") == \
        "balanced accuracy 0.739 (from its 312 test cases, no interval)"


def test_per_class_figure_marks_classes_with_few_test_cases():
    from core.viz import per_class_figure

    table = pd.DataFrame({"class": ["a", "b", "c"], "count_train": [300, 40, 5], "group": ["head", "medium", "tail"],
                          "recall": [0.9, 0.6, 0.2], "precision": [0.9, 0.5, 0.3], "f1": [0.9, 0.55, 0.25],
                          "support": [120, 15, 4]})
    fig = per_class_figure(table)
    symbols = {t.name: list(t.marker.symbol) for t in fig.data if t.x[0] is not None}
    assert symbols == {"head": ["circle"], "medium": ["circle"], "tail": ["circle-open"]}
    assert any("fewer than 10 test cases" in t.name for t in fig.data)
    pooled = per_class_figure(table.assign(support=[360, 45, 24], n_runs=3))  # 8 test cases per run in the tail
    assert [list(t.marker.symbol) for t in pooled.data if t.name == "tail"] == [["circle-open"]]
    assert not any("fewer" in t.name for t in per_class_figure(table.assign(support=[120, 15, 10])).data)


def test_per_class_ece_bars_show_each_class_count():
    from core.viz import per_class_ece_bars

    fig = per_class_ece_bars(["a", "b"], [0.05, 0.3], [100, 5], ["head", "tail"], test_counts=[40, 2])
    texts = {t.name: list(t.text) for t in fig.data}
    assert texts == {"head": ["n=40"], "tail": ["n=2 (few)"]}
    assert [list(t.marker.pattern.shape) for t in fig.data] == [[""], ["/"]]


def test_results_says_its_scope_and_switches_to_the_run_at_another_mix(experiment_home):
    from core.analysis import experiment_summary

    store = RunStore(experiment_home["home"])
    run = store.get_experiment(experiment_home["plain"]).runs[1]
    at = open_at_address("results", run=run.id)
    assert not at.exception
    headings = [m.value for m in at.markdown if m.value.startswith("#####")]
    assert headings == ["##### Mean of 3 folds, with 95 % interval"]
    summary = experiment_summary(store, experiment_home["plain"])["summary"]
    for w in at.warning:  # the tail warnings quote the numbers the cards show
        if "Accuracy hides the tail" in w.value:
            assert f"{summary['accuracy']['mean']:.1%}" in w.value
    at.toggle(key="results.pooled").set_value(False).run()
    assert [m.value for m in at.markdown if m.value.startswith("#####")] == ["##### This run, with 95 % interval"]
    at.toggle(key="results.pooled").set_value(True).run()
    at.radio(key="results.prior.kind").set_value("balanced").run()
    assert not at.exception
    assert any("Showing this run, not the experiment's mean" in i.value for i in at.info)
    n = len(store.artifacts(run.id).labels)
    assert [m.value for m in at.markdown if m.value.startswith("#####")] == [
        f"##### This run: {n} test cases, re-weighted"]
    table = next(shown_table(t) for t in at.table if "test cases" in shown_table(t).columns)  # cells that wrap
    assert all(isinstance(v, str) for v in table["test cases"])
    assert list(table.columns) == ["test cases", "share of cases", "recall (sensitivity)", "specificity",
                                   "precision (PPV)", "NPV", "F1"]
    recall = {r["class"]: r["recall"] for r in store.metrics(run.id)["per_class"]}  # a re-weighting keeps recall
    assert {c: table.loc[c, "recall (sensitivity)"] for c in table.index} == {c: f"{recall[c]:.1%}" for c in table.index}


def test_calibration_cards_carry_intervals_and_counts(stored_home):
    at = open_at_address("calibration", run=stored_home["table_run"])
    assert not at.exception
    cards = {m.label: m for m in at.metric}
    for label in ("ECE", "MCE", "NLL"):
        low, high = (float(x) for x in cards[label].delta.split(" to "))
        assert low <= float(cards[label].value) <= high, label
    store = RunStore(stored_home["home"])
    n = len(store.artifacts(stored_home["table_run"]).labels)
    counted = [m for label, m in cards.items() if label not in ("ECE", "MCE", "NLL")][:3]  # adaptive, classwise, Brier
    assert len(counted) == 3 and all(m.delta == f"{n} test cases" for m in counted)
    art = store.artifacts(stored_home["table_run"])
    found = calibration_intervals(softmax(art.logits), art.labels, metrics=("ece",))["ece"]
    assert cards["ECE"].delta == f"{number(found.low)} to {number(found.high)}"

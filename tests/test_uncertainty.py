"""Intervals against sklearn / imblearn / statsmodels / scipy and hand-worked formulas."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest
from imblearn.metrics import geometric_mean_score
from scipy import stats
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, recall_score
from statsmodels.stats.proportion import proportion_confint

import core.analysis._uncertainty as uncertainty
from core.analysis import (
    Interval,
    bootstrap_intervals,
    ece,
    per_class_intervals,
    per_class_metrics,
    pooled_per_class,
    softmax,
    summarize_runs,
    t_interval,
    wilson_interval,
)

METRICS = ("accuracy", "balanced_accuracy", "f1_macro", "gmean", "worst_class_recall", "ece")


def _run(n: int, k: int, seed: int = 0, skill: float = 1.5, counts=None):
    """A long-tailed test set and logits that are right more often than chance."""
    rng = np.random.default_rng(seed)
    if counts is None:
        prior = 100.0 ** (-np.arange(k) / max(k - 1, 1))
        labels = rng.choice(k, size=n, p=prior / prior.sum())
    else:
        labels = rng.permutation(np.repeat(np.arange(len(counts)), counts))
    logits = rng.normal(size=(labels.size, k)) * 2.0
    logits[np.arange(labels.size), labels] += skill
    return logits, labels


def _reference(logits, labels, k) -> dict[str, float]:
    """The metrics as sklearn, imbalanced-learn and the project's ECE compute them."""
    pred = logits.argmax(axis=1)
    present = np.unique(labels)
    return {
        "accuracy": accuracy_score(labels, pred),
        "balanced_accuracy": balanced_accuracy_score(labels, pred),
        "f1_macro": f1_score(labels, pred, labels=present, average="macro", zero_division=0),
        "gmean": geometric_mean_score(labels, pred, labels=present, average="multiclass"),
        "worst_class_recall": recall_score(labels, pred, labels=present, average=None, zero_division=0).min(),
        "ece": ece(softmax(logits), labels),
    }


def _cases():
    logits, labels = _run(800, 6, seed=1)
    yield "long-tailed", logits, labels, 6
    logits, labels = _run(300, 8, seed=2, counts=[100, 80, 60, 40, 19, 1, 0, 0])
    yield "absent and singleton classes", logits, labels, 8
    logits, labels = _run(200, 5, seed=3, skill=-3.0)
    yield "weak model (zero recalls)", logits, labels, 5


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name, logits, labels, k", list(_cases()), ids=[c[0] for c in _cases()])
def test_statistic_on_original_data_matches_sklearn(name, logits, labels, k):
    scorer = uncertainty._ResampleScorer(logits, labels, k, METRICS)
    ours = scorer(np.arange(labels.size)[None, :])[:, 0]
    reference = _reference(logits, labels, k)
    for value, metric in zip(ours, METRICS):
        assert value == pytest.approx(reference[metric], abs=1e-12), metric
    intervals = bootstrap_intervals(logits, labels, k, metrics=METRICS, n_resamples=50)
    for metric in METRICS:
        assert intervals[metric].estimate == pytest.approx(reference[metric], abs=1e-12)


def test_stratified_resampling_keeps_every_class_count(monkeypatch):
    logits, labels = _run(300, 8, seed=4, counts=[120, 90, 50, 30, 7, 2, 1])
    seen = []
    call = uncertainty._ResampleScorer.__call__

    def spy(self, idx):
        seen.append(np.array(idx))
        return call(self, idx)

    monkeypatch.setattr(uncertainty._ResampleScorer, "__call__", spy)
    bootstrap_intervals(logits, labels, 8, n_resamples=300)
    rows = np.concatenate(seen[1:])  # seen[0] scores the data as given
    assert rows.shape == (300, labels.size)
    expected = np.bincount(labels, minlength=8)
    per_row = np.apply_along_axis(np.bincount, 1, labels[rows], minlength=8)
    assert (per_row == expected).all()
    assert (np.sort(rows, axis=1) != np.arange(labels.size)).any(axis=1).mean() > 0.99  # rows really resample
    singleton = np.flatnonzero(labels == 6)[0]
    assert (rows == singleton).sum(axis=1).min() == 1


def _naive_intervals(logits, labels, k, n_resamples, seed):
    """Resample within each class with numpy and score every replicate with sklearn."""
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    values = []
    for _ in range(n_resamples):
        idx = np.concatenate([rng.choice(g, size=g.size, replace=True) for g in groups])
        values.append(list(_reference(logits[idx], labels[idx], k).values()))
    low, high = np.percentile(np.array(values), [2.5, 97.5], axis=0)
    return dict(zip(_reference(logits, labels, k), zip(low, high)))


@pytest.mark.slow
def test_interval_agrees_with_naive_sklearn_loop():
    logits, labels = _run(0, 5, seed=5, counts=[1400, 800, 500, 300, 200])
    ours = bootstrap_intervals(logits, labels, 5, metrics=METRICS, n_resamples=1000, seed=0)
    naive = _naive_intervals(logits, labels, 5, n_resamples=300, seed=1)  # Monte-Carlo error ~0.002 here
    for metric in ("accuracy", "balanced_accuracy", "f1_macro", "ece"):  # the bootstrapped ones
        low, high = naive[metric]
        assert ours[metric].low == pytest.approx(low, abs=0.01), metric
        assert ours[metric].high == pytest.approx(high, abs=0.01), metric
        assert ours[metric].half_width > 0


def test_worst_class_recall_and_gmean_from_simultaneous_wilson_intervals():
    logits, labels = _run(0, 4, seed=8, counts=[200, 90, 30, 6])
    pred = logits.argmax(axis=1)
    hits = np.array([np.sum((labels == c) & (pred == c)) for c in range(4)])
    n = np.bincount(labels)
    low, high = proportion_confint(hits, n, alpha=0.05 / 4, method="wilson")  # Bonferroni over 4 classes
    got = bootstrap_intervals(logits, labels, 4, metrics=("worst_class_recall", "gmean"))
    assert (got["worst_class_recall"].low, got["worst_class_recall"].high) == pytest.approx((low.min(), high.min()))
    assert got["gmean"].low == pytest.approx(np.prod(low) ** 0.25)
    assert got["gmean"].high == pytest.approx(np.prod(high) ** 0.25)
    assert "Bonferroni over 4 classes" in got["gmean"].method
    assert "6 test cases" in got["gmean"].note  # the rarest class rests on few cases
    # a class never recognised: G-mean is 0, but its interval is not stuck at [0, 0]
    never = logits.copy()
    never[labels == 3, 3] = -100.0
    flat = bootstrap_intervals(never, labels, 4, metrics=("gmean", "worst_class_recall"))
    assert flat["gmean"].estimate == 0 and flat["gmean"].low == 0 and flat["gmean"].high > 0.1
    assert flat["worst_class_recall"].high > 0.1


def test_singleton_classes_are_named_in_the_note():
    logits, labels = _run(0, 4, seed=9, counts=[50, 30, 10, 1])
    note = bootstrap_intervals(logits, labels, 4, metrics=("balanced_accuracy",))["balanced_accuracy"].note
    assert "a single test case" in note and "index 3" in note


def test_interval_contains_estimate_and_narrows_with_more_data():
    small = bootstrap_intervals(*_run(0, 4, seed=6, counts=[120, 80, 60, 40]), 4, metrics=METRICS)
    large = bootstrap_intervals(*_run(0, 4, seed=6, counts=[2400, 1600, 1200, 800]), 4, metrics=METRICS)
    for metric in METRICS:
        for result in (small, large):
            assert result[metric].low <= result[metric].estimate <= result[metric].high
        assert large[metric].half_width < small[metric].half_width / 2, metric
    assert small["accuracy"].method == "stratified bootstrap, percentile, B=1000"


def test_bootstrap_edge_cases():
    empty = bootstrap_intervals(np.zeros((0, 3)), np.zeros(0, dtype=int), 3)
    assert all(math.isnan(v) for i in empty.values() for v in (i.estimate, i.low, i.high))

    logits, _ = _run(3, 3, seed=7)
    singletons = bootstrap_intervals(logits, np.array([0, 1, 2]), 3)
    for name, interval in singletons.items():
        if name == "gmean":  # from the per-class Wilson intervals, wide as one case per class deserves
            assert interval.low <= interval.estimate <= interval.high and interval.high - interval.low > 0.5
        else:  # nothing to resample: no interval at all rather than a zero-width one
            assert math.isnan(interval.low) and math.isnan(interval.high)
            assert "nothing to resample" in interval.method and "a single test case" in interval.note

    logits, labels = _run(50, 3, seed=8, counts=[50])
    one_class = bootstrap_intervals(logits, labels, 3)
    assert one_class["balanced_accuracy"].estimate == pytest.approx(accuracy_score(labels, logits.argmax(1)))
    assert all(np.isfinite([i.estimate, i.low, i.high]).all() for i in one_class.values())

    with pytest.raises(ValueError, match="known metrics"):
        bootstrap_intervals(logits, labels, 3, metrics=("roc_auc_ovr_macro",))


def test_interval_record():
    interval = Interval(0.5, 0.4, 0.7, "m")
    assert interval.half_width == pytest.approx(0.15)
    assert interval.to_dict() == {"estimate": 0.5, "low": 0.4, "high": 0.7, "method": "m", "note": ""}


# --- Wilson -----------------------------------------------------------------------------------

def _wilson_closed_form(k: int, n: int, z: float) -> tuple[float, float]:
    centre = (k + z * z / 2) / (n + z * z)
    half = z / (n + z * z) * math.sqrt(k * (n - k) / n + z * z / 4)
    return centre - half, centre + half


def test_wilson_against_closed_form_and_statsmodels():
    low, high = wilson_interval(8, 10)
    expected = _wilson_closed_form(8, 10, 1.959963984540054)
    assert (float(low), float(high)) == pytest.approx(expected, abs=1e-12)
    assert (float(low), float(high)) == pytest.approx((0.4901624, 0.9433178), abs=1e-6)

    k, n = np.array([0, 3, 5, 40]), np.array([5, 7, 5, 200])
    low, high = wilson_interval(k, n, confidence=0.9)
    sm_low, sm_high = proportion_confint(k, n, alpha=0.1, method="wilson")
    np.testing.assert_allclose(low, sm_low, atol=1e-12)
    np.testing.assert_allclose(high, sm_high, atol=1e-12)
    assert low[0] == pytest.approx(0.0, abs=1e-12) and high[0] > 0.2  # 0 of 5 is not certainty


def test_wilson_without_trials_is_nan_and_bad_counts_fail():
    low, high = wilson_interval(np.array([0, 2]), np.array([0, 4]))
    assert np.isnan(low[0]) and np.isnan(high[0]) and np.isfinite([low[1], high[1]]).all()
    with pytest.raises(ValueError):
        wilson_interval(5, 4)


def test_per_class_intervals_by_hand():
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    pred = np.array([0, 0, 0, 1, 1, 0, 0, 0, 2, 2])  # class 3 never occurs nor is predicted
    logits = np.eye(4)[pred]
    table = per_class_intervals(logits, labels, 4)
    assert list(table.columns) == ["class_index", "support", "predicted", "recall", "recall_low", "recall_high",
                                   "precision", "precision_low", "precision_high"]
    assert table["support"].tolist() == [4, 2, 4, 0]
    assert table["predicted"].tolist() == [6, 2, 2, 0]
    np.testing.assert_allclose(table["recall"][:3], [3 / 4, 1 / 2, 2 / 4])
    np.testing.assert_allclose(table["precision"][:3], [3 / 6, 1 / 2, 2 / 2])
    assert (table["recall_low"][0], table["recall_high"][0]) == pytest.approx(
        _wilson_closed_form(3, 4, stats.norm.ppf(0.975)), abs=1e-12)
    assert (table["precision_low"][0], table["precision_high"][0]) == pytest.approx(
        _wilson_closed_form(3, 6, stats.norm.ppf(0.975)), abs=1e-12)
    assert table.loc[3, ["recall", "recall_low", "precision_high"]].isna().all()


# --- several runs -------------------------------------------------------------------------------

def test_t_interval_by_hand():
    values = [0.71, 0.74, 0.69, 0.73]
    result = t_interval(values)
    sd = statistics.stdev(values)  # ddof = 1
    half = stats.t.ppf(0.975, 3) * sd / math.sqrt(4)
    assert result["n"] == 4
    assert result["mean"] == pytest.approx(statistics.mean(values), abs=1e-15)
    assert result["sd"] == pytest.approx(sd, abs=1e-15)
    assert result["sd"] != pytest.approx(statistics.pstdev(values), abs=1e-6)
    assert result["ci"] == pytest.approx([result["mean"] - half, result["mean"] + half], abs=1e-12)


def test_t_interval_drops_missing_and_handles_one_run():
    assert t_interval([0.5, None, float("nan"), 0.7])["n"] == 2
    one = t_interval([0.5, None])
    assert one["mean"] == 0.5 and one["n"] == 1 and math.isnan(one["sd"]) and all(map(math.isnan, one["ci"]))
    none = t_interval([])
    assert none["n"] == 0 and math.isnan(none["mean"])


def test_t_interval_stays_in_range_and_names_zero_spread():
    wide = t_interval([0.95, 0.99], bounds=(0.0, 1.0))  # t on 1 degree of freedom reaches far past 1
    raw = t_interval([0.95, 0.99])
    assert raw["ci"][1] > 1 and wide["ci"][1] == 1.0 and wide["ci"][0] == pytest.approx(raw["ci"][0])
    flat = t_interval([0.31, 0.31, 0.31], bounds=(0.0, 1.0))
    assert all(map(math.isnan, flat["ci"])) and "zero spread" in flat["note"]
    # a metric's own range comes from the registry: MCC may be negative, accuracy may not
    runs = [{"mcc": -0.9, "accuracy": 0.02}, {"mcc": -0.5, "accuracy": 0.2}]
    summary = summarize_runs(runs, ["mcc", "accuracy"])
    assert summary["mcc"]["ci"][0] == -1.0 and summary["accuracy"]["ci"][0] == 0.0


def test_summarize_runs_skips_missing_values():
    runs = [{"accuracy": 0.8, "ece": 0.05}, {"accuracy": 0.9, "ece": None}, {"accuracy": 0.85}]
    summary = summarize_runs(runs, ["accuracy", "ece"])
    assert summary["accuracy"] == t_interval([0.8, 0.9, 0.85])
    assert summary["ece"]["n"] == 1 and summary["ece"]["mean"] == 0.05


def test_pooled_per_class_against_per_run_t_intervals():
    counts = np.array([50, 200, 10])
    tables = []
    for seed in range(4):
        logits, labels = _run(120, 3, seed=10 + seed, counts=[60, 40, 20])
        tables.append(per_class_metrics(logits, labels, counts))
    pooled = pooled_per_class(tables)
    assert pooled["class_index"].tolist() == [1, 0, 2]  # largest training class first
    for _, row in pooled.iterrows():
        j = row["class_index"]
        for col in ("recall", "precision", "f1"):
            runs = [t.loc[t["class_index"] == j, col].item() for t in tables]
            expected = t_interval(runs)
            assert row[col] == pytest.approx(expected["mean"], abs=1e-12)
            assert row[f"{col}_sd"] == pytest.approx(expected["sd"], abs=1e-12)
            assert [row[f"{col}_low"], row[f"{col}_high"]] == pytest.approx(expected["ci"], abs=1e-12)
        assert row["support"] == sum(t.loc[t["class_index"] == j, "support"].item() for t in tables)
        assert row["count_train"] == counts[j]
    assert isinstance(pooled, pd.DataFrame) and (pooled["n_runs"] == 4).all()
    assert pooled["group"].tolist() == tables[0].set_index("class_index").loc[[1, 0, 2], "group"].tolist()

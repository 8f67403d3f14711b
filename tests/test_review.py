"""Case review: nearest training cases against sklearn's brute force and a hand-built
geometry, review marks kept with a run, the CSV export and the report's review section."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from core.analysis import (
    NEIGHBOUR_COLUMNS,
    REVIEW_COLUMNS,
    REVIEW_MARKS,
    clear_review,
    nearest_training_cases,
    neighbours_unavailable,
    rare_class_errors,
    read_reviews,
    reviews_csv,
    reviews_table,
    set_review,
)
from core.artifacts import EvalArtifacts
from core.viz import error_report_html

HOSTILE_NOTE = "<script>alert(1)</script> & =HYPERLINK(\"http://203.0.113.9\")"


def _artifacts(*, logits, labels, features, train_features, train_labels, class_counts, test_index=None):
    logits = np.asarray(logits, dtype=np.float64)
    k = logits.shape[1]
    features = np.asarray(features, dtype=np.float64)
    d = features.shape[1]
    return EvalArtifacts(
        logits=logits, labels=np.asarray(labels, dtype=np.int64), features=features,
        head_weight=np.zeros((k, d)), head_bias=np.zeros(k), train_features=np.asarray(train_features, dtype=np.float64),
        train_labels=np.asarray(train_labels, dtype=np.int64), class_counts=np.asarray(class_counts, dtype=np.int64),
        val_logits=np.zeros((0, k)), val_labels=np.zeros(0, np.int64), val_features=np.zeros((0, d)),
        test_index=np.arange(len(labels)) if test_index is None else np.asarray(test_index, dtype=np.int64),
    )


def _random_run(seed: int = 0, n: int = 40, m: int = 60, d: int = 5, k: int = 3) -> EvalArtifacts:
    rng = np.random.default_rng(seed)
    return _artifacts(logits=rng.normal(size=(n, k)), labels=rng.integers(0, k, n), features=rng.normal(size=(n, d)),
                      train_features=rng.normal(size=(m, d)), train_labels=np.arange(m) % k, class_counts=[100, 30, 5])


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_neighbours_match_sklearn_brute_force(metric):
    from sklearn.metrics import pairwise_distances

    art = _random_run()
    rows = [0, 3, 7, 12, 39]
    near = nearest_training_cases(art, rows, k=4, metric=metric)
    assert list(near.columns) == NEIGHBOUR_COLUMNS
    pred = art.logits.argmax(1)
    for row in rows:
        for side, cls in (("true", art.labels[row]), ("pred", pred[row])):
            members = np.flatnonzero(art.train_labels == cls)
            dist = pairwise_distances(art.features[row:row + 1], art.train_features[members], metric=metric)[0]
            expected = members[np.argsort(dist, kind="stable")[:4]]
            got = near[(near["row"] == row) & (near["side"] == side)]
            assert got["class"].unique().tolist() == [cls]
            assert got["train_row"].tolist() == expected.tolist()
            np.testing.assert_allclose(got["distance"], np.sort(dist)[:4], atol=1e-12)
            assert got["rank"].tolist() == [0, 1, 2, 3]


def test_neighbours_on_a_hand_built_geometry():
    # training cases on the axes; the test case (2, 0.1) lies along class 0's axis but is called class 1
    train = [[1, 0], [5, 0], [0, 1], [0, 3], [-1, 0]]
    train_labels = [0, 0, 1, 1, 2]
    art = _artifacts(logits=[[0.0, 3.0, 0.0]], labels=[0], features=[[2.0, 0.1]], train_features=train,
                     train_labels=train_labels, class_counts=[50, 20, 3])
    euclid = nearest_training_cases(art, [0], k=2, metric="euclidean")
    assert euclid[euclid.side == "true"]["train_row"].tolist() == [0, 1]  # |(2,.1)-(1,0)| < |(2,.1)-(5,0)|
    assert euclid[euclid.side == "pred"]["train_row"].tolist() == [2, 3]
    np.testing.assert_allclose(euclid[euclid.side == "true"]["distance"], [np.hypot(1, .1), np.hypot(3, .1)])
    cosine = nearest_training_cases(art, [0], k=2, metric="cosine")
    # same direction: cosine distance ties at 1 - cos(angle), whatever the length
    np.testing.assert_allclose(cosine[cosine.side == "true"]["distance"], [1 - 2 / np.hypot(2, .1)] * 2)
    np.testing.assert_allclose(cosine[cosine.side == "pred"]["distance"], [1 - .1 / np.hypot(2, .1)] * 2)
    # a class with fewer stored cases than k gives what it has (two each here)
    assert nearest_training_cases(art, [0], k=3).groupby("side").size().to_dict() == {"pred": 2, "true": 2}


def test_baselines_have_no_neighbours_and_say_so():
    art = _random_run()
    baseline = _artifacts(logits=art.logits, labels=art.labels, features=np.zeros((40, 0)),
                          train_features=np.zeros((60, 0)), train_labels=art.train_labels, class_counts=[100, 30, 5])
    assert neighbours_unavailable(art) is None
    assert "baseline" in neighbours_unavailable(baseline)
    near = nearest_training_cases(baseline, [0, 1])
    assert near.empty and list(near.columns) == NEIGHBOUR_COLUMNS
    with pytest.raises(ValueError, match="metric"):
        nearest_training_cases(art, [0], metric="manhattan")
    with pytest.raises(ValueError, match="test rows"):
        nearest_training_cases(art, [40])


def test_rare_class_errors_put_tail_first():
    # classes: 0 head, 1 medium, 2 tail; rows: (true, predicted, confidence)
    probs = np.array([[.1, .8, .1], [.9, .05, .05], [.6, .1, .3], [.2, .3, .5], [.1, .2, .7], [.05, .05, .9]])
    labels = [1, 2, 2, 1, 0, 2]
    art = _artifacts(logits=np.log(probs), labels=labels, features=np.zeros((6, 2)), train_features=np.zeros((0, 2)),
                     train_labels=[], class_counts=[150, 50, 5])
    errors = rare_class_errors(art, ["head", "medium", "tail"])
    # tail errors (rows 1 at .9, 2 at .6) before the medium one (row 3); right answers and head errors left out
    assert errors["row"].tolist() == [1, 2, 3]
    assert errors["confidence"].round(2).tolist() == [0.9, 0.6, 0.5]
    assert rare_class_errors(art, ["head", "medium", "tail"], include_medium=False)["row"].tolist() == [1, 2]


class _MemoryStore:
    """The two annotation calls of RunStore, in memory."""

    def __init__(self):
        self.saved: dict = {}

    def annotation(self, run_id, name):
        return self.saved.get((run_id, name), {})

    def write_annotation(self, run_id, name, value):
        self.saved[(run_id, name)] = value


def test_marks_round_trip_through_the_run_store(tmp_path):
    from core.config import RunConfig
    from core.store import RunStore

    store = RunStore(tmp_path)
    run_id = store.create_run(RunConfig.model_validate({"name": "r", "data": {"source": "digits"}}))
    when = datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc)
    set_review(store, run_id, 7, "label looks wrong", f"  {HOSTILE_NOTE}\nsecond line  ", now=when)
    set_review(store, run_id, 3, "ambiguous", "")
    assert store.annotation(run_id, "reviews")["cases"]["7"] == {
        "mark": "label looks wrong", "note": f"{HOSTILE_NOTE}\nsecond line", "updated": "2026-03-01T09:30:00+00:00"}
    set_review(store, run_id, 7, "model error", "on second look", now=when)
    reviews = read_reviews(store, run_id)
    assert sorted(reviews) == [3, 7]
    assert reviews[7]["mark"] == "model error" and reviews[7]["note"] == "on second look"
    assert clear_review(store, run_id, 3) is True
    assert clear_review(store, run_id, 3) is False
    assert sorted(read_reviews(store, run_id)) == [7]


@pytest.mark.parametrize("mark", ["wrong", "", None, "Ambiguous"])
def test_an_unknown_mark_is_refused_and_nothing_is_saved(mark):
    store = _MemoryStore()
    with pytest.raises(ValueError, match="unknown review mark"):
        set_review(store, "run", 1, mark, "note")
    assert store.saved == {}


def test_bad_cases_and_notes_are_refused():
    store = _MemoryStore()
    for case in (-1, "3", 2.0, True):
        with pytest.raises(ValueError, match="test row"):
            set_review(store, "run", case, "ambiguous")
    with pytest.raises(ValueError, match="text"):
        set_review(store, "run", 1, "ambiguous", 42)
    with pytest.raises(ValueError, match="at most"):
        set_review(store, "run", 1, "ambiguous", "x" * 5001)
    assert store.saved == {}


def test_damaged_entries_are_skipped_when_read():
    store = _MemoryStore()
    store.write_annotation("run", "reviews", {"cases": {"1": {"mark": "ambiguous", "note": "ok", "updated": "t"},
                                                        "x": {"mark": "ambiguous"}, "2": {"mark": "nonsense"}, "3": 5}})
    assert list(read_reviews(store, "run")) == [1]


def _reviewed_run():
    probs = np.array([[.7, .2, .1], [.1, .1, .8], [.3, .6, .1]])
    art = _artifacts(logits=np.log(probs), labels=[2, 2, 0], features=np.zeros((3, 2)), train_features=np.zeros((0, 2)),
                     train_labels=[], class_counts=[100, 30, 5], test_index=[10, 11, 12])
    store = _MemoryStore()
    set_review(store, "run", 12, "model error", "clear case", now=datetime(2026, 1, 2, tzinfo=timezone.utc))
    set_review(store, "run", 10, "label looks wrong", HOSTILE_NOTE, now=datetime(2026, 1, 1, tzinfo=timezone.utc))
    set_review(store, "run", 99, "ambiguous", "a row this run does not have")
    return art, read_reviews(store, "run")


def test_reviews_table_and_csv_columns():
    art, reviews = _reviewed_run()
    table = reviews_table(reviews, art, ["cat", "dog", "eel"])
    assert list(table.columns) == REVIEW_COLUMNS
    assert table["test_row"].tolist() == [10, 12]  # the review of row 99 is not this run's
    assert table[["true", "predicted", "mark"]].values.tolist() == [["eel", "cat", "label looks wrong"],
                                                                    ["cat", "dog", "model error"]]
    np.testing.assert_allclose(table["confidence"], [0.7, 0.6])
    rows = list(csv.reader(io.StringIO(reviews_csv(table).decode("utf-8"))))
    assert rows[0] == ["test_row", "case", "true", "predicted", "confidence", "mark", "note", "updated"]
    # a run stored before ids were kept: the case is its 1-based test row
    assert rows[1][:6] == ["10", "test row 11", "eel", "cat", "0.7", "label looks wrong"]
    assert rows[1][6] == HOSTILE_NOTE  # starts with "<": kept exactly
    assert rows[1][7] == "2026-01-01T00:00:00+00:00"
    assert len(rows) == 3
    formula = pd.DataFrame([{**table.iloc[0].to_dict(), "note": "=1+1"}])
    assert list(csv.reader(io.StringIO(reviews_csv(formula).decode())))[1][6] == "'=1+1"
    assert reviews_table({}, art).empty and list(reviews_table({}, art).columns) == REVIEW_COLUMNS


def test_report_holds_escaped_reviews_and_the_operating_point():
    art, reviews = _reviewed_run()
    names = ["cat", "dog", "<b>eel</b>"]
    table = reviews_table(reviews, art, names)
    case = {"sample_id": 10, "true": 2, "pred": 0, "probs": np.array([.7, .2, .1]), "input": np.zeros(2),
            "attr_true": None, "attr_pred": None, "modality": "tabular", "feature_names": ["a", "b"]}
    html = error_report_html([case], title="t", run_name="r", method="saliency", class_names=names, reviews=table,
                             operating_point={"class": 2, "threshold": 0.25, "prevalence": 0.03, "cost_miss": 10})
    assert "<h2>Case reviews</h2>" in html
    assert HOSTILE_NOTE not in html and "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; =HYPERLINK(&quot;http://203.0.113.9&quot;)" in html
    assert html.count("label looks wrong") >= 2  # the section and the reviewed card
    assert "clear case" in html  # a reviewed case not among the cards is still listed
    assert "<h2>Saved operating point</h2>" in html
    assert "&lt;b&gt;eel&lt;/b&gt;" in html and "<b>eel</b>" not in html.replace("<b>&lt;b&gt;eel&lt;/b&gt;</b>", "")
    assert "3.00%" in html and "0.25" in html and "10 false alarms" in html
    plain = error_report_html([case], title="t", run_name="r", method="saliency", class_names=names)
    assert "Case reviews" not in plain and "Saved operating point" not in plain


def test_train_subset_rows_rederives_the_stored_subset():
    from core.train import fixed_train_subset, train_subset_rows

    y = np.repeat([0, 1, 2], [300, 60, 12])
    subset = fixed_train_subset(y, 100, 4)
    art = _artifacts(logits=np.zeros((1, 3)), labels=[0], features=np.zeros((1, 2)),
                     train_features=np.zeros((len(subset), 2)), train_labels=y[subset], class_counts=[300, 60, 12])
    assert train_subset_rows(y, art, size=100, seed=4).tolist() == subset.tolist()
    assert train_subset_rows(y[::-1].copy(), art, size=100, seed=4) is None  # data that changed since


def test_marks_are_the_contract():
    assert REVIEW_MARKS == ("label looks wrong", "ambiguous", "model error")

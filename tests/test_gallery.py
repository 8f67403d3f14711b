"""Error-gallery selection logic against hand-built arrays, and the stored run's model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.analysis._gallery import (
    build_report_cases,
    case_attributions,
    display_image,
    error_cases,
    importance_sample,
    importance_sides,
    load_run_model,
    most_confused_pairs,
    resolve_classes,
)
from core.artifacts import EvalArtifacts
from core.data import head_to_tail_order

GROUPS = ["head", "medium", "tail"]


def _artifacts(probs: np.ndarray, labels, class_counts=(150, 50, 5)) -> EvalArtifacts:
    """Artifacts whose softmax is exactly `probs` (logits = log probs)."""
    probs = np.asarray(probs, dtype=np.float64)
    n, k = probs.shape
    z = np.zeros((n, 2), dtype=np.float32)
    return EvalArtifacts(
        logits=np.log(probs).astype(np.float32), labels=np.asarray(labels, dtype=np.int64), features=z,
        head_weight=np.zeros((k, 2), np.float32), head_bias=np.zeros(k, np.float32), train_features=z[:0],
        train_labels=np.zeros(0, np.int64), class_counts=np.asarray(class_counts, dtype=np.int64),
        val_logits=np.zeros((0, k), np.float32), val_labels=np.zeros(0, np.int64), val_features=z[:0],
        test_index=np.arange(100, 100 + n),
    )


# rows: true, predicted (argmax), confidence of the prediction
PROBS = np.array([
    [0.10, 0.10, 0.80],  # 0: true 2 (tail) -> 2, right, 0.80
    [0.70, 0.20, 0.10],  # 1: true 2 -> 0, wrong, 0.70
    [0.05, 0.90, 0.05],  # 2: true 2 -> 1, wrong, 0.90
    [0.50, 0.30, 0.20],  # 3: true 1 (medium) -> 0, wrong, 0.50
    [0.60, 0.30, 0.10],  # 4: true 0 (head) -> 0, right, 0.60
    [0.20, 0.40, 0.40],  # 5: true 0 -> 1 (tie broken towards the first), wrong, 0.40
    [0.70, 0.20, 0.10],  # 6: true 2 -> 0, wrong, 0.70 (ties row 1: row order decides)
])
LABELS = [2, 2, 2, 1, 0, 0, 2]


@pytest.fixture
def art() -> EvalArtifacts:
    return _artifacts(PROBS, LABELS)


def test_wrong_cases_are_sorted_by_confidence_of_the_prediction(art):
    cases = error_cases(art, GROUPS)
    assert list(cases.columns) == ["row", "sample_id", "case", "true", "pred", "confidence", "true_prob", "correct",
                                   "true_group", "pred_group"]
    assert cases["row"].tolist() == [2, 1, 6, 3, 5]
    assert not cases["correct"].any()
    np.testing.assert_allclose(cases["confidence"], [0.9, 0.7, 0.7, 0.5, 0.4], rtol=1e-6)
    np.testing.assert_allclose(cases["true_prob"], [0.05, 0.1, 0.1, 0.3, 0.2], rtol=1e-6)
    assert cases["sample_id"].tolist() == [102, 101, 106, 103, 105]
    assert cases.loc[0, ["true_group", "pred_group"]].tolist() == ["tail", "medium"]


def test_filters_on_classes_correctness_and_confidence(art):
    assert error_cases(art, GROUPS, true_classes=[2])["row"].tolist() == [2, 1, 6]
    assert error_cases(art, GROUPS, true_classes=[2], pred_classes=[0])["row"].tolist() == [1, 6]
    assert error_cases(art, GROUPS, correctness="right")["row"].tolist() == [0, 4]
    assert error_cases(art, GROUPS, correctness="all")["row"].tolist() == [2, 0, 1, 6, 4, 3, 5]
    assert error_cases(art, GROUPS, confidence_range=(0.45, 0.75))["row"].tolist() == [1, 6, 3]
    assert error_cases(art, GROUPS, true_classes=[]).empty  # an empty filter matches nothing
    # independent check: every combination equals a plain boolean mask over the same arrays
    pred, conf = PROBS.argmax(1), PROBS.max(1)
    for lo, hi in [(0, 1), (0.5, 0.8), (0.9, 1)]:
        mask = (pred != np.array(LABELS)) & (conf >= lo) & (conf <= hi)
        assert set(error_cases(art, GROUPS, confidence_range=(lo, hi))["row"]) == set(np.flatnonzero(mask))


def test_error_cases_rejects_bad_arguments(art):
    with pytest.raises(ValueError, match="correctness"):
        error_cases(art, GROUPS, correctness="mostly")
    with pytest.raises(ValueError, match="confidence_range"):
        error_cases(art, GROUPS, confidence_range=(0.8, 0.2))
    with pytest.raises(ValueError, match="groups"):
        error_cases(art, GROUPS[:2])


def test_most_confused_pairs_are_pairs_involving_a_tail_class():
    # true -> predicted counts: 2->0 x3, 1->0 x3 (medium->head, no tail class: left out), 2->1 x1,
    # 0->2 x4 (a common class called the rare one: kept), 1->1 x5, 2->2 x2
    pairs = [(2, 0)] * 3 + [(1, 0)] * 3 + [(2, 1)] + [(0, 2)] * 4 + [(1, 1)] * 5 + [(2, 2)] * 2
    labels, pred = zip(*pairs)
    art = _artifacts(np.eye(3)[list(pred)] * 0.97 + 0.01, labels)
    top = most_confused_pairs(art, top=5, groups=GROUPS)
    assert list(top.columns) == ["true", "pred", "count", "share", "true_group", "pred_group"]
    assert top[["true", "pred", "count"]].values.tolist() == [[0, 2, 4], [2, 0, 3], [2, 1, 1]]
    np.testing.assert_allclose(top["share"], [4 / 4, 3 / 6, 1 / 6])
    assert all("tail" in (t, p) for t, p in zip(top["true_group"], top["pred_group"]))
    everything = most_confused_pairs(art, top=10, rare_only=False, groups=GROUPS)
    assert [1, 0, 3] in everything[["true", "pred", "count"]].values.tolist()
    assert len(most_confused_pairs(art, top=1, groups=GROUPS)) == 1
    # without groups: the split by training count (150, 50, 5) gives the same head/medium/tail
    assert most_confused_pairs(art, groups=None).equals(top)


def test_medium_medium_pairs_are_not_rare_pairs():
    # four classes, two medium (1, 2) confused with each other most often, the tail class (3) once
    groups = ["head", "medium", "medium", "tail"]
    pairs = [(1, 2)] * 6 + [(2, 1)] * 5 + [(3, 0)] + [(0, 0)] * 3 + [(3, 3)]
    labels, pred = zip(*pairs)
    art = _artifacts(np.eye(4)[list(pred)] * 0.96 + 0.01, labels, class_counts=(200, 60, 50, 5))
    top = most_confused_pairs(art, top=4, groups=groups)
    assert top[["true", "pred"]].values.tolist() == [[3, 0]]
    assert len(most_confused_pairs(art, top=4, rare_only=False, groups=groups)) == 3
    assert most_confused_pairs(art, top=4, groups=["head"] * 4).empty  # no tail class: no rare pairs


def test_head_to_tail_and_sides():
    assert head_to_tail_order([5, 50, 20, 50]).tolist() == [1, 3, 2, 0]
    sides = importance_sides([5, 50, 20], ["tail", "head", "medium"])
    assert sides == [("Common classes (head and medium)", [1, 2]), ("Rare classes (tail)", [0])]
    assert [t for t, _ in importance_sides([5, 5], ["tail", "tail"])] == ["Rare classes (tail)"]


def test_resolve_classes():
    names = ["cat", "dog", "eel"]
    assert resolve_classes("all", names, GROUPS) is None
    assert resolve_classes("tail", names, GROUPS) == [2]
    assert resolve_classes("eel, cat", names, GROUPS) == [0, 2]
    with pytest.raises(ValueError, match="unknown class 'cow'.*cat, dog, eel"):
        resolve_classes("cat,cow", names, GROUPS)


def test_importance_sample_caps_rows_per_class():
    labels = np.array([0, 1, 0, 0, 2, 1, 0])
    assert importance_sample(labels, per_class=2).tolist() == [0, 1, 2, 4, 5]


def test_display_image_is_enlarged_without_blurring():
    img = np.arange(4, dtype=np.float32).reshape(1, 2, 2)  # 0..3: outside [0,1], so scaled
    out = display_image(img, size=8)
    assert out.shape == (8, 8)
    np.testing.assert_allclose(out[:4, :4], 0)
    np.testing.assert_allclose(out[4:, 4:], 1)
    assert display_image(np.full((3, 4, 4), 0.5), size=8).shape == (8, 8, 3)


def test_build_report_cases_matches_the_report_format(art):
    cases = error_cases(art, GROUPS).head(2)
    inputs = np.random.default_rng(0).random((2, 5))
    attr = np.ones((2, 5))
    built = build_report_cases(cases, art, inputs, attr, -attr, modality="tabular", feature_names=list("abcde"))
    assert [c["sample_id"] for c in built] == [102, 101]
    assert (built[0]["true"], built[0]["pred"]) == (2, 1)
    np.testing.assert_allclose(built[0]["probs"], PROBS[2], rtol=1e-6)
    np.testing.assert_array_equal(built[1]["input"], inputs[1])
    assert built[0]["attr_pred"][0] == -1 and built[0]["feature_names"] == list("abcde")
    with pytest.raises(ValueError, match="3 rows for 2 cases"):
        build_report_cases(cases, art, np.zeros((3, 5)), None, None, modality="tabular")


# ---------------------------------------------------------------- with the stored runs


def test_load_run_model_reproduces_the_stored_test_logits(stored_home):
    from core.config import RunConfig
    from core.store import RunStore
    from core.train import prepare_run_data

    store = RunStore(stored_home["home"])
    run_id = stored_home["image_run"]
    model = load_run_model(store, run_id)
    assert not model.training
    artifacts = store.artifacts(run_id)
    x = prepare_run_data(RunConfig.model_validate(store.get(run_id).config)).x_test[artifacts.test_index]
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(logits, artifacts.logits, rtol=1e-4, atol=1e-5)


def test_case_attributions_are_cached_under_the_run_folder(stored_home):
    from core.store import RunStore

    store = RunStore(stored_home["home"])
    run_id = stored_home["table_run"]
    model = load_run_model(store, run_id)
    n_features = len(store.metrics(run_id)["dataset"]["feature_names"])
    x = np.random.default_rng(0).standard_normal((3, n_features)).astype(np.float32)
    ids, seen = [9001, 9002, 9003], []
    first = case_attributions(store.run_dir(run_id), model, x, ids, method="saliency",
                              targets={"true": [0, 1, 2], "pred": [1, 1, 1]}, progress=lambda d, t: seen.append((d, t)))
    assert set(first) == {"true", "pred"} and first["true"].shape == (3, n_features)
    assert seen[-1] == (6, 6) and all(t == 6 for _, t in seen)
    folder = store.run_dir(run_id) / "attributions" / "saliency"
    assert len(list(folder.rglob("*.npy"))) >= 5  # sample 9002 towards class 1 is shared by both lists
    again = case_attributions(store.run_dir(run_id), model, x, ids, method="saliency", targets={"pred": [1, 1, 1]})
    np.testing.assert_array_equal(again["pred"], first["pred"])

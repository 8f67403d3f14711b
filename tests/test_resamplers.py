"""Resamplers: counts are what imblearn promises, added rows are flagged, errors say what to do."""

from __future__ import annotations

import numpy as np
import pytest
from imblearn.utils import check_sampling_strategy

from core.methods import RESAMPLERS, list_resamplers, resample

COUNTS = [80, 30, 15]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0, 0, 0], [1.2, 1.2, 0, 0], [0, 1.2, 1.2, 0]], dtype=float)
    X = np.concatenate([rng.normal(c, 1.0, (n, 4)) for c, n in zip(centres, COUNTS)]).astype(np.float32)
    y = np.repeat(np.arange(3), COUNTS)
    return X, y


def _rows(a):
    return {row.tobytes() for row in np.ascontiguousarray(a)}


def test_every_entry_has_a_schema():
    for info in RESAMPLERS.infos():
        assert info.description and info.paper
        assert "sampling_strategy" in info.params.model_fields
        for name, field in info.params.model_fields.items():
            assert field.description, f"{info.name}.{name}"


@pytest.mark.parametrize("name", ["smote", "borderline_smote", "random_over"])
@pytest.mark.parametrize("strategy", ["auto", "minority", {1: 50, 2: 40}])
def test_over_sampler_counts_match_imblearn(data, name, strategy):
    X, y = data
    res = resample(name, X, y, {"sampling_strategy": strategy})
    promised = check_sampling_strategy(strategy, y, "over-sampling")
    expected = np.bincount(y) + np.array([promised.get(c, 0) for c in range(3)])
    assert np.bincount(res.y).tolist() == expected.tolist()
    assert res.n_synthetic == len(res.y) - len(y)
    assert not res.synthetic[: len(y)].any()
    assert _rows(res.x[~res.synthetic]) == _rows(X)
    assert not res.removed.any()


def test_adasyn_adds_roughly_the_promised_rows(data):
    X, y = data
    res = resample("adasyn", X, y)
    assert res.n_synthetic == len(res.y) - len(y)
    assert np.all(np.abs(np.bincount(res.y) - max(COUNTS)) <= 5)
    assert not (_rows(res.x[res.synthetic]) & _rows(X))


@pytest.mark.parametrize("name", ["random_under", "near_miss"])
def test_under_sampler_counts_match_imblearn(data, name):
    X, y = data
    res = resample(name, X, y)
    assert np.bincount(res.y).tolist() == [min(COUNTS)] * 3
    assert res.n_synthetic == 0
    assert _rows(res.x) <= _rows(X)
    assert _rows(X[~res.removed]) == _rows(res.x) and res.removed.sum() == len(y) - len(res.y)


@pytest.mark.parametrize("name", ["tomek_links", "edited_nearest_neighbours"])
def test_cleaners_only_remove_rows(data, name):
    X, y = data
    res = resample(name, X, y)
    assert len(res.y) < len(y)
    assert res.n_synthetic == 0
    assert _rows(res.x) <= _rows(X)
    assert _rows(X[~res.removed]) == _rows(res.x) and res.removed.sum() == len(y) - len(res.y)


def test_smote_tomek_flags_surviving_synthetic_rows(data):
    X, y = data
    res = resample("smote_tomek", X, y)
    assert 0 < res.n_synthetic <= 2 * max(COUNTS) - COUNTS[1] - COUNTS[2]
    assert _rows(res.x[~res.synthetic]) <= _rows(X)
    assert not (_rows(res.x[res.synthetic]) & _rows(X))
    assert _rows(X[~res.removed]) == _rows(res.x[~res.synthetic])  # Tomek links may drop originals too


def test_images_keep_their_shape_and_seed_reproduces(data):
    X, y = data
    images = X.reshape(-1, 1, 2, 2)
    a = resample("smote", images, y, seed=3)
    b = resample("smote", images, y, seed=3)
    c = resample("smote", images, y, seed=4)
    assert a.x.shape[1:] == (1, 2, 2)
    assert np.array_equal(a.x, b.x)
    assert not np.array_equal(a.x, c.x)
    assert np.array_equal(resample("smote", images, y, {"random_state": 3}, seed=99).x, a.x)


def test_too_small_class_names_the_resampler_and_the_fix(data):
    X, y = data
    keep = np.r_[np.arange(110), np.arange(110, 113)]  # class 2 keeps 3 samples
    with pytest.raises(ValueError, match=r"smote: class 2 has only 3 .*k_neighbors=5.*at most 2"):
        resample("smote", X[keep], y[keep])
    with pytest.raises(ValueError, match=r"adasyn: class 2 .*n_neighbors"):
        resample("adasyn", X[keep], y[keep])
    assert resample("smote", X[keep], y[keep], {"k_neighbors": 2}).n_synthetic > 0


def test_errors_list_names(data):
    X, y = data
    with pytest.raises(KeyError, match="known: .*smote_tomek"):
        resample("smoth", X, y)
    with pytest.raises(ValueError, match="smote: sampling_strategy.*auto"):
        resample("smote", X, y, {"sampling_strategy": "most"})
    with pytest.raises(ValueError, match="parameters: sampling_strategy"):
        resample("smote", X, y, {"k": 3})
    with pytest.raises(ValueError, match="smote"):
        resample("smote", X, y, {"sampling_strategy": 0.5})  # float is binary-only
    assert "near_miss" in list_resamplers()


def test_float_strategy_on_binary_data(data):
    X, y = data
    binary = y < 2
    res = resample("random_over", X[binary], y[binary], {"sampling_strategy": 0.5})
    assert np.bincount(res.y).tolist() == [80, 40]
    assert res.n_synthetic == 10


def test_resampling_view_places_every_row_once(data):
    from core.analysis import resampling_view

    X, y = data
    for name in ("smote", "tomek_links", "smote_tomek"):
        res = resample(name, X, y)
        view = resampling_view(X, y, res.x, res.y, res.synthetic, res.removed)
        assert len(view) == len(y) + res.n_synthetic
        assert (view["kind"] == "removed").sum() == res.removed.sum()
        assert (view["kind"] == "synthetic").sum() == res.n_synthetic
        kept = view[view["kind"] != "synthetic"]
        assert kept["label"].tolist() == y.tolist()  # input rows first, in input order
        assert np.isfinite(view[["pc1", "pc2"]].to_numpy()).all()

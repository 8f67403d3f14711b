"""Multi-label data: the imbalance profile over label frequencies, hidden entries, folds by
iterative stratification."""

from __future__ import annotations

import numpy as np
import pytest

from core.data import (
    apply_label_profile, hide_label_entries, label_counts, load_multilabel_builtin, multilabel_folds,
    multilabel_split,
)


def _matrix(seed=0, n=600):
    rng = np.random.default_rng(seed)
    return (rng.random((n, 4)) < [0.5, 0.4, 0.3, 0.25]).astype(float)


def test_profile_reaches_its_targets_where_co_occurrence_allows_and_reports_them():
    y = _matrix()
    result = apply_label_profile(y, "exp", 10, seed=0)
    before = label_counts(y)
    assert (result.before == before).all()
    # targets: exp over the labels ranked by count, head keeps the most it can
    order = np.argsort(-before)
    assert result.target[order[0]] >= result.target[order[-1]] * 9
    np.testing.assert_array_equal(result.reached, label_counts(y[result.keep]))
    rarest = order[-1]
    assert result.reached[rarest] == result.target[rarest]  # handled first: exact
    assert (result.reached <= np.maximum(result.target, result.reached)).all()
    ratio = result.reached.max() / result.reached.min()
    assert ratio >= 5, result.words()  # a long tail, though not exactly 10 (co-occurrence)
    assert "asked" in result.words()[0]
    again = apply_label_profile(y, "exp", 10, seed=0)
    np.testing.assert_array_equal(again.keep, result.keep)


def test_profile_hand_worked_case_keeps_the_rare_label_when_trimming_common_ones():
    # label 1 on rows 0-3 (all also label 0); label 0 alone on rows 4-11. Step profile, ratio 4:
    # label 0 is head (n_max), label 1 gets n_max / 4. Handled first, label 1 drops rows carrying it.
    y = np.zeros((12, 2))
    y[:12, 0] = 1
    y[:4, 1] = 1
    result = apply_label_profile(y, "step", 4, mu=0.5, seed=0)
    assert result.target.tolist() == [12, 3]
    assert result.reached.tolist() == [11, 3]  # dropping one row of label 1 costs label 0 one row


def test_hiding_a_share_of_each_label():
    y = _matrix(1)
    y[0, 0] = np.nan
    hidden = hide_label_entries(y, 0.3, seed=2)
    known_before = ~np.isnan(y)
    newly = np.isnan(hidden) & known_before
    for c in range(4):
        assert newly[:, c].sum() == round(0.3 * known_before[:, c].sum())
    same = ~np.isnan(hidden)
    np.testing.assert_array_equal(hidden[same], y[same])  # what stays known is unchanged
    assert not np.isnan(y[1:]).any(), "the input is not changed"
    with pytest.raises(ValueError, match="share"):
        hide_label_entries(y, 1.0)


def test_iterative_stratification_spreads_a_rare_label_over_the_folds():
    y = _matrix(3, 300)
    y[:, 3] = 0
    y[::30, 3] = 1  # 10 cases of a rare label
    folds = multilabel_folds(y, n_splits=5, seed=0)
    assert len(folds) == 5
    tests = np.concatenate([t for _, t in folds])
    assert sorted(tests.tolist()) == list(range(300))
    assert [int(y[t, 3].sum()) for _, t in folds] == [2] * 5
    train, test = multilabel_split(y, 0.2, seed=0)
    assert len(np.intersect1d(train, test)) == 0 and len(test) == 60 and int(y[test, 3].sum()) == 2


def test_built_ins_are_long_tailed_and_co_occurring():
    digits = load_multilabel_builtin("multilabel_digits", {"n_samples": 400})
    counts = digits.label_counts
    assert counts[0] > 5 * counts[-1] and digits.y.sum(axis=1).max() == 3 and digits.y.sum(axis=1).min() == 1
    assert digits.x.shape == (400, 1, 16, 16) and 0 <= digits.x.min() and digits.x.max() <= 1
    table = load_multilabel_builtin("multilabel_table", {"n_samples": 300})
    assert table.label_counts[0] > 3 * table.label_counts[-1]


def test_prepared_splits_change_only_the_training_targets():
    from core.data import prepare_multilabel_splits

    y = _matrix(5, 500)
    splits = prepare_multilabel_splits(y, test_size=0.2, val_size=0.1, profile="exp", ratio=8, hide_share=0.4, seed=0)
    parts = [splits.train, splits.val, splits.test]
    assert sum(len(np.intersect1d(a, b)) for i, a in enumerate(parts) for b in parts[i + 1:]) == 0
    assert len(splits.test) == 100 and len(splits.val) == 50
    assert not np.isnan(y[splits.test]).any() and not np.isnan(y[splits.val]).any()  # untouched
    known = ~np.isnan(splits.y_train)
    assert 0.55 < known.mean() < 0.65  # 40 % of each label's training entries hidden
    np.testing.assert_array_equal(splits.y_train[known], y[splits.train][known])
    np.testing.assert_array_equal(splits.profile.reached, label_counts(y[splits.train]))

"""Repeat-factor and class-aware sampling against hand-worked factors and visit counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.methods import create_multilabel_sampler, label_draw_probabilities, repeat_factors


def _lvis_like() -> torch.Tensor:
    """1000 cases: label 0 on 500 (f = 0.5), label 1 on 5 (0.005), label 2 on 1 (0.001)."""
    y = torch.zeros(1000, 3)
    y[:500, 0] = 1
    y[[0, 1, 2, 3, 600], 1] = 1  # case 0 carries {0, 1}
    y[4, 2] = 1  # case 4 carries {0, 2}
    return y


def test_repeat_factors_hand_worked():
    # t = 0.01, f = [0.5, 0.005, 0.001] -> r_c = [1, sqrt 2, sqrt 10]; case {0,1} -> sqrt 2; {0,2} -> sqrt 10
    per_label, per_case = repeat_factors(_lvis_like() == 1, 0.01)
    np.testing.assert_allclose(per_label, [1.0, 2 ** 0.5, 10 ** 0.5])
    assert per_case[0] == pytest.approx(2 ** 0.5) and per_case[4] == pytest.approx(10 ** 0.5)
    assert per_case[700] == 1.0  # no label: 1


def test_repeat_factor_sampler_rounds_stochastically():
    y = _lvis_like()
    y[7, 1] = float("nan")  # unknown: not a positive
    sampler = create_multilabel_sampler("repeat_factor", {"threshold": 0.01})
    draws = [sampler.sample_indices(y, epoch=0, num_epochs=1, generator=torch.Generator().manual_seed(s))
             for s in range(300)]
    case4 = [int((d == 4).sum()) for d in draws]
    assert set(case4) == {3, 4}  # floor(3.162) = 3, plus one with probability 0.162
    assert np.mean(case4) == pytest.approx(10 ** 0.5, abs=0.08)
    assert all(int((d == 700).sum()) == 1 for d in draws)


def test_class_aware_draws_every_label_equally():
    y = _lvis_like()
    sampler = create_multilabel_sampler("class_aware")
    idx = torch.cat([sampler.sample_indices(y, epoch=0, num_epochs=1, generator=torch.Generator().manual_seed(s))
                     for s in range(30)])
    # case 4 is the only carrier of label 2: drawn on a third of the draws, plus its label-0 share
    share4 = float((idx == 4).double().mean())
    assert share4 == pytest.approx(1 / 3 + 1 / 3 / 500, abs=0.01)
    assert int((idx >= 601).sum()) == 0  # cases without a finding are never drawn (600 carries label 1)
    expected = sampler.expected_visits(y)
    assert expected[4] == pytest.approx(1000 * (1 / 500 + 1) / 3)


def test_label_draw_probabilities_hand_worked():
    # counts n = [500, 5, 1] (_lvis_like): reverse weights n_max / n_c = [1, 100, 500] over 601
    positive = _lvis_like() == 1
    np.testing.assert_allclose(label_draw_probabilities(positive, "reverse"), [1 / 601, 100 / 601, 500 / 601])
    np.testing.assert_allclose(label_draw_probabilities(positive, "uniform"), [1 / 3] * 3)
    positive[:, 2] = False  # a label no case carries is never picked
    np.testing.assert_allclose(label_draw_probabilities(positive, "reverse"), [1 / 101, 100 / 101, 0.0])


def test_reverse_sampling_draws_labels_in_inverse_proportion_to_their_cases():
    """Three labels on disjoint cases (60, 30, 10 carriers): the reverse rule picks them with
    probability proportional to 60/60, 60/30, 60/10 = 1 : 2 : 6, so the share of draws landing
    on each label's cases converges to 1/9, 2/9, 6/9; each carrier equally often within a label."""
    y = torch.zeros(100, 3)
    y[:60, 0], y[60:90, 1], y[90:, 2] = 1, 1, 1
    y[5, 1] = float("nan")  # unknown: not a carrier
    sampler = create_multilabel_sampler("reverse_class")
    idx = torch.cat([sampler.sample_indices(y, epoch=0, num_epochs=1, generator=torch.Generator().manual_seed(s))
                     for s in range(200)])
    shares = [float(((idx >= a) & (idx < b)).double().mean()) for a, b in ((0, 60), (60, 90), (90, 100))]
    np.testing.assert_allclose(shares, [1 / 9, 2 / 9, 6 / 9], atol=0.01)
    tail = torch.bincount(idx[idx >= 90] - 90, minlength=10).double()
    assert float(tail.std() / tail.mean()) < 0.1
    np.testing.assert_allclose(sampler.expected_visits(y)[[0, 60, 90]], [100 / 9 / 60, 100 * 2 / 9 / 30, 100 * 6 / 9 / 10])
    assert len(idx) == 200 * 100

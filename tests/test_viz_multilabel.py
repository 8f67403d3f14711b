"""Figures of a multi-label run, checked by inspecting what they draw."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.data import cooccurrence_counts
from core.viz import RARE_MARK, conditional_cooccurrence, cooccurrence_figure, label_ap_figure


def test_per_label_ap_is_drawn_against_training_frequency_with_its_interval_per_group():
    rows = pd.DataFrame({"label": ["a<b>", "b", "c"], "train_count": [200, 50, 8], "test_positives": [60, 15, 3],
                         "group": ["head", "medium", "tail"], "ap": [0.9, 0.6, 0.2], "ap_low": [0.85, 0.5, 0.05],
                         "ap_high": [0.95, 0.7, 0.5]})
    fig = label_ap_figure(rows)
    by_group = {t.name: t for t in fig.data}
    assert set(by_group) == {"head", "medium", "tail"}
    tail = by_group["tail"]
    assert list(tail.x) == [8] and list(tail.y) == [0.2]
    assert tail.error_y.array[0] == pytest.approx(0.3) and tail.error_y.arrayminus[0] == pytest.approx(0.15)
    assert fig.layout.xaxis.type == "log"
    assert "&lt;b&gt;" in by_group["head"].customdata[0][0]  # a finding's name is text, never markup


def test_cooccurrence_counts_and_conditional_shares_match_a_hand_count():
    y = np.array([[1, 1, 0], [1, 0, 1], [1, 1, np.nan], [0, 1, 1]])
    counts = cooccurrence_counts(y)
    assert counts.tolist() == [[3, 2, 1], [2, 3, 1], [1, 1, 2]]  # an unknown entry is not a positive
    share = conditional_cooccurrence(counts)
    assert share[0, 1] == pytest.approx(2 / 3) and share[2, 0] == pytest.approx(1 / 2)
    assert np.allclose(np.diag(share), 1)
    assert np.isnan(conditional_cooccurrence(np.zeros((2, 2))))[0].all()


def test_cooccurrence_figure_marks_rare_findings_and_shows_counts_or_shares():
    counts = np.array([[10, 4], [4, 5]])
    fig = cooccurrence_figure(counts, ["common", "rare"], ["head", "tail"])
    heat = fig.data[0]
    assert list(heat.x) == ["common", f"{RARE_MARK} rare"] and heat.text[0][1] == "4"
    fig = cooccurrence_figure(counts, ["common", "rare"], ["head", "tail"], conditional=True)
    assert fig.data[0].z[1][0] == pytest.approx(0.8) and fig.data[0].text[1][0] == "80%"
    with pytest.raises(ValueError, match="square matrix"):
        cooccurrence_figure(np.zeros((2, 3)), ["a", "b"], ["head", "tail"])

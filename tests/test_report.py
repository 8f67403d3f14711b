"""Attribution figures and the self-contained HTML error report."""

from __future__ import annotations

import re

import numpy as np
import plotly.graph_objects as go
import plotly.offline
import pytest

from core.viz import (
    attribution_pair_figure,
    class_importance_heatmap,
    error_report_html,
    feature_attribution_bars,
    image_with_attribution,
)

MALICIOUS = "<script>alert(1)</script>"
CLASS_NAMES = ["normal", "benign & rare", MALICIOUS]


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


def _image_case(sample_id, true: int, pred: int, channels: int = 1) -> dict:
    rng = _rng()
    return {
        "sample_id": sample_id, "true": true, "pred": pred, "probs": np.array([0.2, 0.1, 0.7]),
        "input": rng.random((channels, 8, 8)), "attr_true": rng.standard_normal((channels, 8, 8)),
        "attr_pred": rng.standard_normal((1, 8, 8)), "modality": "image", "feature_names": None,
    }


def _table_case(sample_id, true: int, pred: int) -> dict:
    rng = _rng()
    return {
        "sample_id": sample_id, "true": true, "pred": pred, "probs": np.array([0.6, 0.3, 0.1]),
        "input": rng.standard_normal(4), "attr_true": rng.standard_normal(4), "attr_pred": rng.standard_normal(4),
        "modality": "tabular", "feature_names": ["age", "dose", MALICIOUS, "weight"],
    }


@pytest.fixture(scope="module")
def report() -> str:
    cases = [_image_case("img-7", 0, 2), _image_case(42, 1, 1, channels=3), _table_case("row_3", 2, 0)]
    return error_report_html(cases, title="Errors on <rare> classes", run_name="run & co", method="integrated_gradients",
                             class_names=CLASS_NAMES, notes=f"Reviewed by {MALICIOUS}")


def _without_plotly_bundle(document: str) -> str:
    bundle = plotly.offline.get_plotlyjs()
    assert document.count(bundle) == 1, "plotly.js must be inlined exactly once"
    return document.replace(bundle, "")


# ---------------------------------------------------------------- report


def test_report_shows_every_case_and_class(report):
    for sample_id in ("img-7", "42", "row_3"):
        assert f"Sample {sample_id}" in report
    for name in ("normal", "benign &amp; rare", "&lt;script&gt;alert(1)&lt;/script&gt;"):
        assert name in report
    assert "70.0%" in report  # confidence of the first case's prediction
    assert report.count('class="case ') == 3


def test_report_is_self_contained(report):
    rest = _without_plotly_bundle(report)
    assert "http://" not in rest and "https://" not in rest
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", rest, flags=re.IGNORECASE)
    assert report.lstrip().startswith("<!DOCTYPE html>")


def test_report_escapes_user_strings(report):
    rest = _without_plotly_bundle(report)
    assert MALICIOUS not in rest
    assert "<rare>" not in rest and "&lt;rare&gt;" in rest
    assert "run &amp; co" in rest
    # Only plotly's own scripts: the inlined bundle and one per figure (four: a pair, a
    # single image for the correct case, two bar charts).
    assert rest.count("<script") == 1 + 4


def test_report_without_cases_needs_no_javascript():
    document = error_report_html([], title="t", run_name="r", method="saliency", class_names=["a"])
    assert "<script" not in document and "No cases" in document


def test_report_rejects_a_class_index_out_of_range():
    with pytest.raises(ValueError, match="class 5"):
        error_report_html([_table_case(1, 5, 0)], title="t", run_name="r", method="m", class_names=CLASS_NAMES)


def test_reviewed_cards_carry_their_verdict_and_the_section_lists_every_review():
    import pandas as pd

    reviews = pd.DataFrame([
        {"test_row": 42, "true": "normal", "predicted": MALICIOUS, "confidence": 0.7, "mark": "ambiguous",
         "note": f"two readers disagree\n{MALICIOUS}", "updated": "2026-01-01T00:00:00+00:00"},
        {"test_row": 7, "true": "normal", "predicted": "normal", "confidence": 0.9, "mark": "model error",
         "note": "", "updated": "2026-01-02T00:00:00+00:00"}])
    cases = [_table_case(42, 2, 0), _table_case(43, 2, 0)]
    document = error_report_html(cases, title="t", run_name="r", method="saliency", class_names=CLASS_NAMES,
                                 reviews=reviews)
    rest = _without_plotly_bundle(document)
    cards = rest.split('<article class="case ')[1:]
    assert len(cards) == 2
    assert '<p class="review">Reviewer: <b>ambiguous</b>: two readers disagree' in cards[0]
    assert 'class="review"' not in cards[1]
    section = rest[rest.index("<h2>Case reviews</h2>"):rest.index("</section>", rest.index("<h2>Case reviews</h2>"))]
    assert section.count("<tr><td>") == 2 and "<td>90.0%</td>" in section
    assert MALICIOUS not in rest and "&lt;script&gt;alert(1)&lt;/script&gt;" in section


def test_operating_point_section_needs_a_saved_point():
    base = dict(title="t", run_name="r", method="saliency", class_names=CLASS_NAMES)
    assert "Saved operating point" not in error_report_html([], **base, operating_point={})
    document = error_report_html([], **base, operating_point={"class": 1, "threshold": 0.4, "prevalence": None,
                                                               "cost_miss": None})
    assert "<h2>Saved operating point</h2>" in document
    assert "called <b>benign &amp; rare</b>" in document and "the test set's own" in document
    assert "false alarms" not in document


# ---------------------------------------------------------------- figure builders


def test_image_with_attribution_overlays_a_signed_heatmap():
    attribution = _rng().standard_normal((1, 8, 6))
    fig = image_with_attribution(_rng().random((1, 8, 6)), attribution, opacity=0.4, title="towards cat")
    image, heat = fig.data
    assert isinstance(image, go.Image) and isinstance(heat, go.Heatmap)
    assert np.asarray(image.z).shape == (8, 6, 3)
    assert np.asarray(heat.z).shape == (8, 6) and heat.opacity == 0.4
    assert fig.layout.coloraxis.cmin == -fig.layout.coloraxis.cmax == -np.abs(attribution).max()
    assert fig.layout.xaxis.visible is False and fig.layout.yaxis.visible is False
    assert fig.layout.title.text == "towards cat"


def test_rgb_attributions_are_summed_over_channels():
    attribution = _rng().standard_normal((3, 4, 4))
    fig = image_with_attribution(_rng().random((3, 4, 4)), attribution)
    np.testing.assert_allclose(np.asarray(fig.data[1].z), attribution.sum(axis=0))


def test_attribution_pair_figure_shares_one_colour_scale():
    fig = attribution_pair_figure(_rng().random((1, 8, 8)), np.ones((1, 8, 8)), -3 * np.ones((1, 8, 8)), "cat", "dog", 0.5)
    assert [type(t).__name__ for t in fig.data] == ["Image", "Heatmap", "Image", "Heatmap"]
    assert {t.coloraxis for t in fig.data if isinstance(t, go.Heatmap)} == {"coloraxis"}
    assert fig.layout.coloraxis.cmax == 3
    assert [a.text for a in fig.layout.annotations] == ["true: cat", "predicted: dog"]


def test_feature_attribution_bars_sorted_by_magnitude_and_coloured_by_sign():
    fig = feature_attribution_bars(np.array([0.1, -0.8, 0.5, 0.0]), ["a", "b", "c", "d"], top=3, title="why")
    (bar,) = fig.data
    assert isinstance(bar, go.Bar) and bar.orientation == "h"
    assert list(bar.y) == ["b", "c", "a"] and list(bar.x) == [-0.8, 0.5, 0.1]
    assert bar.marker.color[0] != bar.marker.color[1] == bar.marker.color[2]
    assert fig.layout.yaxis.autorange == "reversed"


def test_class_importance_heatmap_keeps_class_order_and_marks_groups():
    importance = np.arange(6, dtype=float).reshape(3, 2)
    fig = class_importance_heatmap(importance, ["z", "a", "m"], ["f1", "f2"], groups=["head", "head", "tail"])
    (heat,) = fig.data
    assert isinstance(heat, go.Heatmap) and np.asarray(heat.z).shape == (3, 2)
    assert list(heat.y) == ["z (head)", "a (head)", "m (tail)"] and list(heat.x) == ["f1", "f2"]
    assert len(fig.layout.shapes) == 1  # one boundary between head and tail


def test_builders_reject_mismatched_shapes():
    with pytest.raises(ValueError):
        image_with_attribution(np.zeros((1, 8, 8)), np.zeros((1, 4, 4)))
    with pytest.raises(ValueError):
        feature_attribution_bars(np.zeros(3), ["a", "b"])
    with pytest.raises(ValueError):
        class_importance_heatmap(np.zeros((2, 2)), ["a"], ["x", "y"])

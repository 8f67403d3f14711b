"""Figure builders of rare-class triage: the traces carry the numbers given, the point is
marked where the operating point says, names are escaped, the mix axis is logarithmic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import precision_recall_curve, roc_curve

from core.text import plotly_text
from core.viz import (
    prior_estimate_figure, prior_shift_figure, shift_ratio_label, triage_pr_figure, triage_roc_figure,
    two_by_two_frame,
)

HOSTILE = "<b>rare</b> %{x}"
RATIOS = [50, 20, 10, 5, 2, 1, 1 / 2, 1 / 5, 1 / 10, 1 / 20, 1 / 50]


def _curve(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"ratio": RATIOS, "accuracy": rng.uniform(0.5, 1, 11),
                         "balanced_accuracy": rng.uniform(0.5, 1, 11), "f1_macro": rng.uniform(0.4, 1, 11),
                         "ece": rng.uniform(0, 0.2, 11)})


@pytest.fixture
def scored():
    rng = np.random.default_rng(3)
    positive = rng.random(400) < 0.15
    scores = np.clip(rng.normal(np.where(positive, 0.7, 0.3), 0.2), 0, 1)
    return scores, positive


def _point_at(scores, positive, threshold):
    """An operating point counted by hand, shaped as core.analysis.operating_point returns it."""
    called = scores >= threshold
    tp, fp = int((called & positive).sum()), int((called & ~positive).sum())
    fn, tn = int((~called & positive).sum()), int((~called & ~positive).sum())
    sens, spec = tp / (tp + fn), tn / (tn + fp)
    return {"threshold": threshold, "tp": tp, "fp": fp, "fn": fn, "tn": tn, "prevalence": positive.mean(),
            "sensitivity": {"value": sens, "low": sens - .05, "high": sens + .05},
            "specificity": {"value": spec, "low": spec - .05, "high": spec + .05},
            "ppv": {"value": tp / (tp + fp), "low": 0, "high": 1},
            "npv": {"value": tn / (tn + fn), "low": 0, "high": 1}}


@pytest.mark.parametrize("metric", ["accuracy", "balanced_accuracy", "f1_macro", "ece"])
def test_shift_lines_carry_each_runs_values(metric):
    curves = {"plain CE": _curve(0), "logit adjusted": _curve(1)}
    fig = prior_shift_figure(curves, metric, colors={"plain CE": "#2ca02c", "logit adjusted": "#9467bd"})
    assert [t.name for t in fig.data] == ["plain CE", "logit adjusted"]
    for trace, table in zip(fig.data, curves.values(), strict=True):
        assert np.allclose(trace.x, table["ratio"]) and np.allclose(trace.y, table[metric])
    assert [t.line.color for t in fig.data] == ["#2ca02c", "#9467bd"], "runs keep their page colours"


def test_shift_axis_is_logarithmic_forward_to_backward_and_named_in_words():
    fig = prior_shift_figure({"run": _curve(0).sample(frac=1, random_state=0)})  # row order does not matter
    axis = fig.layout.xaxis
    assert axis.type == "log" and axis.autorange == "reversed", "forward long-tailed (large ratios) on the left"
    assert list(fig.data[0].x) == sorted(RATIOS, reverse=True)
    assert list(axis.tickvals)[0] == 50 and list(axis.tickvals)[-1] == pytest.approx(1 / 50) and 1 in axis.tickvals
    words = " ".join(axis.ticktext)
    assert "like training" in words and "balanced" in words and "reversed" in words
    assert shift_ratio_label(50) == "like training (50×)" and shift_ratio_label(1 / 50) == "reversed (50×)"


def test_shift_rejects_an_unknown_metric():
    with pytest.raises(ValueError, match="unknown metric"):
        prior_shift_figure({"run": _curve(0)}, "gmean")


def test_shift_escapes_run_names():
    fig = prior_shift_figure({HOSTILE: _curve(0)})
    assert fig.data[0].name == plotly_text(HOSTILE) and "<b>" not in fig.data[0].name
    assert "%{x}" not in fig.data[0].hovertemplate.replace("%{x:", "")


@pytest.mark.parametrize("threshold", [0.2, 0.5, 0.8])
def test_roc_curve_matches_sklearn_and_marks_the_point(scored, threshold):
    scores, positive = scored
    point = _point_at(scores, positive, threshold)
    fig = triage_roc_figure(scores, positive, point, "melanoma")
    fpr, tpr, _ = roc_curve(positive, scores)
    curve, marked = fig.data[1], fig.data[2]
    assert np.allclose(curve.x, fpr) and np.allclose(curve.y, tpr)
    called = scores >= threshold
    assert marked.x[0] == pytest.approx(called[~positive].mean())  # false-alarm rate at this threshold
    assert marked.y[0] == pytest.approx(called[positive].mean())  # sensitivity at this threshold
    assert marked.customdata[0] == threshold


@pytest.mark.parametrize("threshold", [0.3, 0.6])
def test_pr_curve_at_the_sample_prevalence_matches_sklearn(scored, threshold):
    scores, positive = scored
    point = _point_at(scores, positive, threshold)
    fig = triage_pr_figure(scores, positive, point, "melanoma")
    precision, recall, thresholds = precision_recall_curve(positive, scores)
    curve = fig.data[1]
    ours = dict(zip(np.round(curve.customdata, 12), zip(curve.x, curve.y)))
    for p, r, t in zip(precision[:-1], recall[:-1], thresholds):  # sklearn's point at each threshold is ours
        assert ours[round(t, 12)] == pytest.approx((r, p))
    marked = fig.data[2]
    assert (marked.x[0], marked.y[0]) == pytest.approx((point["sensitivity"]["value"], point["ppv"]["value"]))
    assert fig.data[0].y[0] == pytest.approx(positive.mean()), "chance line at the sample's prevalence"


def test_pr_curve_at_a_low_prevalence_lowers_precision_by_bayes(scored):
    scores, positive = scored
    point = _point_at(scores, positive, 0.5)
    sample = triage_pr_figure(scores, positive, point, "melanoma").data[1]
    clinic = triage_pr_figure(scores, positive, point, "melanoma", prevalence=0.03)
    curve = clinic.data[1]
    assert np.allclose(curve.x, sample.x), "sensitivity does not depend on the prevalence"
    sens, spec = point["sensitivity"]["value"], point["specificity"]["value"]
    i = int(np.argmin(np.abs(np.asarray(curve.x) - sens)))
    fpr = roc_curve(positive, scores, drop_intermediate=False)[0][i]
    assert curve.y[i] == pytest.approx(curve.x[i] * 0.03 / (curve.x[i] * 0.03 + fpr * 0.97))
    some_false_alarms = np.asarray(sample.y) < 1
    assert (np.asarray(curve.y)[some_false_alarms] < np.asarray(sample.y)[some_false_alarms]).all(), "3 % < 15 %"
    assert clinic.data[0].y[0] == pytest.approx(0.03) and "3.0%" in clinic.layout.yaxis.title.text
    assert spec > 0


def test_curves_escape_the_class_name(scored):
    scores, positive = scored
    point = _point_at(scores, positive, 0.5)
    for build in (triage_roc_figure, triage_pr_figure):
        fig = build(scores, positive, point, HOSTILE)
        assert plotly_text(HOSTILE) in fig.data[1].name and "<b>rare</b>" not in fig.data[1].name
        assert "<b>rare</b>" not in fig.layout.yaxis.title.text and "%{x}" not in fig.data[1].hovertemplate


def test_curves_without_both_kinds_of_case_show_only_the_point():
    point = {"threshold": 0.5, "tp": 3, "fp": 0, "fn": 0, "tn": 0, "sensitivity": {"value": 1.0},
             "specificity": {"value": float("nan")}, "ppv": {"value": 1.0}, "npv": {"value": float("nan")}}
    fig = triage_roc_figure(np.array([0.6, 0.7, 0.9]), np.array([True, True, True]), point, "x")
    assert [t.name for t in fig.data] == ["guessing", "threshold 0.500"]


def test_two_by_two_counts_and_totals(scored):
    scores, positive = scored
    point = _point_at(scores, positive, 0.5)
    table = two_by_two_frame(point, "melanoma")
    assert table.loc["model says melanoma", "truly melanoma"] == point["tp"]
    assert table.loc["model says melanoma", "truly not melanoma"] == point["fp"]
    assert table.loc["model says not melanoma", "truly melanoma"] == point["fn"]
    assert table.loc["model says not melanoma", "truly not melanoma"] == point["tn"]
    assert table.loc["total", "total"] == len(scores)
    assert table.loc["total", "truly melanoma"] == positive.sum()


def test_prior_estimate_bars_and_interval():
    estimate = {"prior": np.array([0.7, 0.2, 0.1]), "low": np.array([0.6, 0.15, 0.05]),
                "high": np.array([0.8, 0.3, 0.12])}
    fig = prior_estimate_figure(["benign", HOSTILE, "rare"], estimate, [0.5, 0.3, 0.2])
    train, batch = fig.data
    assert train.name == "training mix" and np.allclose(train.y, [0.5, 0.3, 0.2])
    assert np.allclose(batch.y, estimate["prior"])
    assert np.allclose(batch.error_y.array, [0.1, 0.1, 0.02])
    assert np.allclose(batch.error_y.arrayminus, [0.1, 0.05, 0.05])
    assert batch.x[1] == plotly_text(HOSTILE) and train.x[1] == plotly_text(HOSTILE)


def test_prior_estimate_with_a_second_estimator_and_named_reference():
    estimate = {"prior": np.array([0.7, 0.2, 0.1]), "low": np.array([0.6, 0.15, 0.05]),
                "high": np.array([0.8, 0.3, 0.12])}
    check = {"prior": np.array([0.65, 0.25, 0.1]), "low": np.array([0.5, 0.2, 0.0]),
             "high": np.array([0.7, 0.4, 0.2])}
    fig = prior_estimate_figure(["benign", HOSTILE, "rare"], estimate, [0.5, 0.3, 0.2], reference_name="own data",
                                estimate_name="new cases: EM", check=check, check_name=HOSTILE)
    reference, batch, second = fig.data
    assert reference.name == "own data" and batch.name == "new cases: EM"
    assert second.name == plotly_text(HOSTILE) and np.allclose(second.y, check["prior"])
    assert np.allclose(second.error_y.array, [0.05, 0.15, 0.1])
    assert np.allclose(second.error_y.arrayminus, [0.15, 0.05, 0.1])
    assert fig.layout.barmode == "group"

"""The pages made for one class per case, on a multi-label run: one finding at a time."""

from __future__ import annotations

import re

import numpy as np
import pytest

from conftest import make_run, shown

TABLE = {"source": "multilabel_table", "params": {"n_samples": 300, "n_features": 6, "n_labels": 4, "ratio": 20.0},
         "few_shot": 40, "hide_labels": 0.2}
SNAKE = re.compile(r"(?<![\w./-])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![\w/])")


@pytest.fixture(scope="module")
def ml_run(tmp_path_factory):
    home = tmp_path_factory.mktemp("mlviews")
    run_id = make_run(home, {"name": "ml views", "data": TABLE, "train": {
        "epochs": 2, "min_steps": 10, "batch_size": 64, "device": "cpu"}}, embeddings=False)
    return home, run_id


def _texts(at) -> str:
    return " ".join(shown(e.value) for kind in ("markdown", "caption", "info") for e in at.get(kind))


def test_calibration_shows_the_chosen_findings_ece_with_its_interval_and_every_finding(ml_run, monkeypatch,
                                                                                       open_page):
    from core.analysis import label_cases, label_ece_interval
    from core.store import RunStore

    home, run_id = ml_run
    monkeypatch.setenv("TAILSCOPE_HOME", str(home))
    at = open_page("calibration", run_id=run_id)
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("plotly_chart")) == 1 and len(at.dataframe) == 1
    assert len(at.dataframe[0].value) == 4
    art = RunStore(home).artifacts(run_id)
    picker = at.selectbox(key=f"calibration.ml_label.{run_id}")
    assert picker.value != 0  # the rarest finding first
    for label in (picker.value, 0):
        at.selectbox(key=f"calibration.ml_label.{run_id}").set_value(label).run()
        assert not at.exception
        expected = label_ece_interval(*label_cases(art.logits, art.label_matrix, label), 10)
        card = next(m for m in at.metric if m.label == "Calibration error (ECE)")
        assert card.value == f"{expected.estimate:.3f}"
        assert card.delta == f"{expected.low:.3f} to {expected.high:.3f}"
    assert not SNAKE.findall(_texts(at)), SNAKE.findall(_texts(at))


def test_triage_shows_a_finding_at_a_chosen_prevalence_from_its_tuned_threshold(ml_run, monkeypatch, open_page):
    from core.analysis import label_operating_point
    from core.store import RunStore

    home, run_id = ml_run
    monkeypatch.setenv("TAILSCOPE_HOME", str(home))
    at = open_page("triage", run_id=run_id)
    assert not at.exception, [e.value for e in at.exception]
    store = RunStore(home)
    art, per_label = store.artifacts(run_id), store.metrics(run_id)["per_label"]
    label = at.selectbox(key=f"triage.ml_label.{run_id}").value
    tuned = round(per_label[label]["threshold"], 3)
    assert at.slider(key=f"triage.ml_threshold.{run_id}.{label}").value == pytest.approx(tuned)
    at.number_input(key=f"triage.ml_prevalence.{run_id}.{label}").set_value(2.0).run()
    assert not at.exception
    expected = label_operating_point(art.logits, art.label_matrix, label, tuned, prevalence=0.02)
    cards = {m.label: m for m in at.metric}
    assert cards["PPV"].value == f"{expected['ppv']['value']:.1%}"
    assert cards["Sensitivity"].value == f"{expected['sensitivity']['value']:.1%}"
    assert "at 2 % prevalence" in _texts(at) and len(at.get("plotly_chart")) == 2
    assert not SNAKE.findall(_texts(at)), SNAKE.findall(_texts(at))

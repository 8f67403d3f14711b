"""The pages made for one class per case, on a multi-label run: one finding at a time."""

from __future__ import annotations

import pytest

from conftest import make_run, shown
from test_words_everywhere import offences, visible_texts

TABLE = {"source": "multilabel_table", "params": {"n_samples": 300, "n_features": 6, "n_labels": 4, "ratio": 20.0},
         "few_shot": 40, "hide_labels": 0.2}


@pytest.fixture(scope="module")
def ml_run(tmp_path_factory):
    home = tmp_path_factory.mktemp("mlviews")
    run_id = make_run(home, {"name": "ml views", "data": TABLE, "train": {
        "epochs": 2, "min_steps": 10, "batch_size": 64, "device": "cpu"}}, embeddings=False)
    return home, run_id


def _array(value):
    """A figure's array as sent to the browser: plain lists, or plotly's packed binary form."""
    import base64

    import numpy as np

    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value, dtype=float)


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
    assert not offences(visible_texts(at), set()), offences(visible_texts(at), set())


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
    assert not offences(visible_texts(at), set()), offences(visible_texts(at), set())


def test_gallery_lists_a_findings_missed_cases_with_maps_towards_that_finding(ml_run, monkeypatch, open_page):
    from core.analysis import missed_findings
    from core.store import RunStore

    home, run_id = ml_run
    monkeypatch.setenv("TAILSCOPE_HOME", str(home))
    store = RunStore(home)
    art, per_label = store.artifacts(run_id), store.metrics(run_id)["per_label"]
    thresholds = [row["threshold"] for row in per_label]
    missed = {j: missed_findings(art.logits, art.label_matrix, thresholds, j) for j in range(len(per_label))}
    label = max(missed, key=lambda j: len(missed[j]))
    assert len(missed[label]) > 0
    at = open_page("gallery", run_id=run_id)
    assert not at.exception, [e.value for e in at.exception]
    rarest = min(range(len(per_label)), key=lambda j: per_label[j]["train_count"])
    assert at.selectbox(key=f"gallery.ml_label.{run_id}").value == rarest
    at.selectbox(key=f"gallery.ml_label.{run_id}").set_value(label).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.dataframe[0].value["case"].tolist() == (missed[label]["row"] + 1).tolist()
    assert len(at.get("plotly_chart")) == min(6, len(missed[label]))
    stored = (store.run_dir(run_id) / "attributions").rglob(f"target_{label}/*.npy")  # maps for this finding's logit
    assert {int(p.stem) for p in stored} == set(missed[label]["row"].head(6).tolist())
    assert not offences(visible_texts(at), set()), offences(visible_texts(at), set())


def test_geometry_maps_the_test_cases_coloured_by_a_finding_and_uses_a_stored_umap(ml_run, monkeypatch, open_page):
    import json

    import numpy as np

    from app.embedding_jobs import embedding_path
    from core.store import RunStore

    home, run_id = ml_run
    monkeypatch.setenv("TAILSCOPE_HOME", str(home))
    store = RunStore(home)
    art = store.artifacts(run_id)
    at = open_page("geometry", run_id=run_id)
    assert not at.exception, [e.value for e in at.exception]
    label = at.selectbox(key=f"geometry.ml_label.{run_id}").value
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    column = art.label_matrix[:, label]
    sizes = sorted(len(_array(t["x"])) for t in fig["data"])
    expected = sorted(n for n in (int((column == 1).sum()), int((column == 0).sum()), int(np.isnan(column).sum())) if n)
    assert sizes == expected and fig["layout"]["xaxis"]["title"]["text"] == "PCA 1"
    path = embedding_path(store, run_id, "test", {"n_components": 2}, art)
    assert not path.exists()
    at.button(key="geometry.ml_umap").click().run()  # offered while no UMAP map is stored
    assert not at.exception, [e.value for e in at.exception]
    assert path.exists(), "the button stores the map where the page reads it"
    assert json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["xaxis"]["title"]["text"] == "UMAP 1"
    assert not [b for b in at.button if b.key == "geometry.ml_umap"], "no button once the map is stored"
    stored = np.random.default_rng(0).normal(size=(len(column), 2)).astype(np.float32)
    np.save(path, stored)  # the page draws the stored coordinates themselves
    at.run()
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert fig["layout"]["xaxis"]["title"]["text"] == "UMAP 1"
    xs = np.concatenate([_array(t["x"]) for t in fig["data"]])
    assert np.allclose(np.sort(xs), np.sort(stored[:, 0]))
    assert not offences(visible_texts(at), set()), offences(visible_texts(at), set())


def test_gallery_on_a_picture_run_shows_each_missed_picture_with_its_map_for_the_finding(tmp_path, monkeypatch,
                                                                                         open_page):
    from core.analysis import missed_findings
    from core.store import RunStore

    run_id = make_run(tmp_path, {"name": "ml pictures", "data": {"source": "multilabel_digits",
                                                                "params": {"n_samples": 200}},
                                 "model": {"name": "small_cnn"},
                                 "train": {"epochs": 1, "min_steps": 5, "batch_size": 64, "device": "cpu"}},
                      embeddings=False)
    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    store = RunStore(tmp_path)
    art, per_label = store.artifacts(run_id), store.metrics(run_id)["per_label"]
    at = open_page("gallery", run_id=run_id)
    assert not at.exception, [e.value for e in at.exception]
    thresholds = [r["threshold"] for r in per_label]
    label = max(range(len(per_label)), key=lambda j: len(missed_findings(art.logits, art.label_matrix, thresholds, j)))
    at.selectbox(key=f"gallery.ml_label.{run_id}").set_value(label).run()
    assert not at.exception, [e.value for e in at.exception]
    missed = missed_findings(art.logits, art.label_matrix, thresholds, label)
    shown_cases = min(6, len(missed))
    assert shown_cases > 0
    assert len(at.get("plotly_chart")) == shown_cases and len(at.get("image")) == shown_cases
    stored = (store.run_dir(run_id) / "attributions").rglob(f"target_{label}/*.npy")
    assert {int(p.stem) for p in stored} == set(missed["row"].head(6).tolist())


def test_a_multilabel_baseline_run_opens_every_per_finding_page_and_geometry_says_why_it_has_no_map(
        tmp_path, monkeypatch, open_page):
    run_id = make_run(tmp_path, {"name": "ml baseline", "data": TABLE, "model": {"name": "ovr_logistic_regression"}},
                      embeddings=False)
    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    for page, charts in (("calibration", 1), ("triage", 2), ("geometry", 0)):
        at = open_page(page, run_id=run_id)
        assert not at.exception, (page, [e.value for e in at.exception])
        assert len(at.get("plotly_chart")) == charts, page
    assert "table baseline" in _texts(at) and "no feature space" in _texts(at)
    at = open_page("gallery", run_id=run_id)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.get("plotly_chart") and ("table baseline" in _texts(at) or "missed no test case" in _texts(at))

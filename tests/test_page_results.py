"""Results page under AppTest: empty store, a stored image run and a stored table run, widgets."""

from __future__ import annotations

import numpy as np
import pytest

from app.results_view import TABS
from core.analysis import confusion
from core.store import RunStore
from core.text import number

CARD_LABELS = {"Accuracy", "Balanced accuracy", "Macro F1", "G-mean", "MCC", "Cohen's kappa", "ROC-AUC (macro)",
               "Average precision"}


def _no_exceptions(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _chart_keys(at) -> set[str]:
    return {c.proto.id for c in at.get("plotly_chart")}


def test_empty_store_offers_a_demo(empty_home, open_page):
    at = open_page("results")
    _no_exceptions(at)
    assert any("demo" in b.label.lower() for b in at.button)
    assert not at.metric


@pytest.mark.parametrize("run", ["image_run", "table_run"])
def test_renders_cards_charts_and_downloads(stored_home, open_page, run):
    run_id = stored_home[run]
    at = open_page("results", run_id=run_id)
    _no_exceptions(at)
    metrics = {m.label: m.value for m in at.metric}
    assert CARD_LABELS <= set(metrics)
    stored = RunStore(stored_home["home"]).metrics(run_id)
    ci = stored["ci"]["balanced_accuracy"]
    deltas = {m.label: m.delta for m in at.metric}
    assert metrics["Balanced accuracy"] == f"{stored['balanced_accuracy']:.3f}"
    assert deltas["Balanced accuracy"] == f"{number(ci['low'])} to {number(ci['high'])}", "the interval's two ends"
    n = len(RunStore(stored_home["home"]).artifacts(run_id).labels)
    assert metrics["MCC"] == f"{stored['mcc']:.3f}" and deltas["MCC"] == f"{n} test cases, no interval", \
        "no interval where none was computed: the count it rests on instead"
    assert len(at.get("plotly_chart")) == 3  # confusion, per class, groups: only the open tab is drawn
    labels = [b.proto.label for b in at.get("download_button")]
    assert "Per-class metrics (CSV)" in labels and labels.count("Download this chart (HTML)") == 3
    for tab, chart in zip(TABS[1:], ("shift", "pr-curves", "training")):  # each other tab draws its chart when opened
        at.session_state["results.tabs"] = tab
        at.run()
        _no_exceptions(at)
        keys = _chart_keys(at)
        assert len(at.get("plotly_chart")) == 2 and any(chart in k for k in keys), (tab, keys)
        assert "Per-class metrics (CSV)" not in [b.proto.label for b in at.get("download_button")]


def test_starts_on_the_largest_mistake_and_lists_its_samples(stored_home, open_page):
    run_id = stored_home["image_run"]
    at = open_page("results", run_id=run_id)
    art = RunStore(stored_home["home"]).artifacts(run_id)
    cm = confusion(art.logits, art.labels, art.num_classes)
    off = np.where(np.eye(art.num_classes, dtype=bool), -1, cm)
    true, pred = np.unravel_index(off.argmax(), cm.shape)
    assert at.selectbox(key=f"results.true.{run_id}").value == true
    assert at.selectbox(key=f"results.pred.{run_id}").value == pred
    text = " ".join(m.value for m in at.markdown)
    assert f"**{cm[true, pred]} test samples**" in text
    assert at.get("image"), "image runs show the listed samples as thumbnails"


def test_widgets_change_the_view(stored_home, open_page):
    run_id = stored_home["image_run"]
    at = open_page("results", run_id=run_id)
    counts = at.get("plotly_chart")[0].proto.spec
    at.toggle(key="results.normalize").set_value(True).run()
    _no_exceptions(at)
    assert at.get("plotly_chart")[0].proto.spec != counts, "row shares replace counts"

    at.selectbox(key=f"results.true.{run_id}").set_value(0).run()
    at.selectbox(key=f"results.pred.{run_id}").set_value(0).run()  # the diagonal: correct cases
    _no_exceptions(at)
    assert any("true 0 → predicted 0" in m.value for m in at.markdown)

    before = at.get("plotly_chart")[1].proto.spec
    at.segmented_control(key="results.metric").set_value("precision").run()
    _no_exceptions(at)
    assert at.get("plotly_chart")[1].proto.spec != before

    at.session_state["results.tabs"] = "Precision-recall curves"
    at.run()
    at.multiselect(key=f"results.pr_classes.{run_id}").set_value([0, 1, 2, 3]).run()
    _no_exceptions(at)
    assert at.get("plotly_chart")[1].proto.spec.count('"name":') >= 4


def test_table_run_lists_rows_with_feature_values(stored_home, open_page):
    at = open_page("results", run_id=stored_home["table_run"])
    feature_names = RunStore(stored_home["home"]).metrics(stored_home["table_run"])["dataset"]["feature_names"]
    frames = [d.value for d in at.dataframe]
    assert any(set(feature_names) <= set(f.columns) for f in frames)


def test_unfinished_run_says_so(copied_home, open_page):
    from core.config import RunConfig

    store = RunStore(copied_home["home"])
    queued = store.create_run(RunConfig.model_validate({"name": "waiting"}))
    at = open_page("results", run_id=queued)
    _no_exceptions(at)
    assert any("waiting" in i.value and "queued" in i.value for i in at.info)
    assert not at.metric


def test_an_experiment_run_shows_the_mean_over_its_runs(experiment_home, open_page):
    from core.analysis import experiment_summary

    store = RunStore(experiment_home["home"])
    run = store.get_experiment(experiment_home["plain"]).runs[1]
    at = open_page("results", run_id=run.id)
    _no_exceptions(at)
    assert at.toggle(key="results.pooled").value, "an experiment's run opens on the experiment's mean"
    summary = experiment_summary(store, experiment_home["plain"])["summary"]["balanced_accuracy"]
    cards = {m.label: (m.value, m.delta) for m in at.metric}
    low, high = summary["ci"]
    assert cards["Balanced accuracy"] == (f"{summary['mean']:.3f}", f"{number(low)} to {number(high)}")
    assert any("geometry" not in c.value and "baseline" in c.value for c in at.caption), "no epochs to show"
    at.toggle(key="results.pooled").set_value(False).run()
    ci = store.metrics(run.id)["ci"]["balanced_accuracy"]
    assert {m.label: (m.value, m.delta) for m in at.metric}["Balanced accuracy"] == (
        f"{store.metrics(run.id)['balanced_accuracy']:.3f}", f"{number(ci['low'])} to {number(ci['high'])}")


def test_an_ordinal_run_shows_its_rare_last_stage_with_intervals(empty_home, open_page):
    from conftest import make_run

    run_id = make_run(empty_home, {"data": {"source": "ordinal_stages", "params": {"samples": 600}},
                                   "model": {"name": "proportional_odds"}}, embeddings=False)
    at = open_page("results", run_id=run_id)
    assert not at.exception, [e.value for e in at.exception]
    assert any(h.value == "The rare last stage: bought" for h in at.subheader)
    [table] = [d.value for d in at.dataframe if "95 % interval low" in d.value.columns]
    stored = RunStore(empty_home).metrics(run_id)["rare_stage"]
    assert table["value"].tolist()[1] == pytest.approx(stored["brier"]["estimate"])
    assert (table["95 % interval low"] <= table["value"]).all() and (table["value"] <= table["95 % interval high"]).all()


def test_a_two_stage_run_that_read_its_first_stage_says_so_under_its_curves(copied_home, open_page):
    """A cRT run of a sweep whose first stage came from the plain run on the same seed says
    so where its training curves are drawn; a run that trained its own says nothing of it."""
    import json

    run_id = copied_home["table_run"]
    at = open_page("results", run_id=run_id)
    at.session_state["results.tabs"] = "Training curves"
    at.run()
    assert any("Validation scores and losses per epoch" in c.value for c in at.caption)
    assert not any("not trained again" in c.value for c in at.caption)
    path = RunStore(copied_home["home"]).run_dir(run_id) / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics["training"]["stage_one_reused"] = True
    path.write_text(json.dumps(metrics))
    from app.services import _bundle

    _bundle.clear()  # the file changed under a finished run: what a page caches per run is read again
    at = open_page("results", run_id=run_id)
    at.session_state["results.tabs"] = "Training curves"
    at.run()
    _no_exceptions(at)
    assert any("not trained again" in c.value and "same settings, seed and split" in c.value for c in at.caption)

"""Every page with a multi-label run stored and selected: Results shows its findings, the
pages made for one class per case say so plainly, and none raises."""

from __future__ import annotations

import os

import pytest

from conftest import shown

PAGES = ["home", "data", "train", "runs", "results", "compare", "calibration", "triage", "gallery", "geometry",
         "posthoc", "robustness", "sweeps", "lessons", "playground"]
SINGLE_ONLY = {"posthoc", "robustness"}
TABLE = {"source": "multilabel_table", "params": {"n_samples": 300, "n_features": 6, "n_labels": 4, "ratio": 20.0},
         "few_shot": 40, "hide_labels": 0.2}
TRAIN = {"epochs": 2, "min_steps": 10, "batch_size": 64, "device": "cpu"}


@pytest.fixture(scope="module")
def ml_home(tmp_path_factory):
    """Two multi-label experiments over two seeds (BCE, DB) and a single-label run beside them."""
    from conftest import make_run
    from core.config import RunConfig
    from core.jobs import execute_run
    from core.store import RunStore

    home = tmp_path_factory.mktemp("mlpages")
    store = RunStore(home)
    ids = {}
    for loss in ("bce", "db"):
        exp = store.create_experiment(RunConfig.model_validate(
            {"name": f"ml {loss}", "data": TABLE, "loss": {"name": loss}, "train": TRAIN,
             "evaluation": {"seeds": [0, 1]}}))
        for run in store.get_experiment(exp).runs:
            assert execute_run(store, store.claim(run.id, os.getpid()), embeddings=False) == "done"
        ids[loss] = store.get_experiment(exp).runs[0].id
    ids["single"] = make_run(home, {"name": "single", "data": {"source": "wine"}, "model": {"name": "mlp"},
                                    "train": TRAIN}, embeddings=False)
    return {"home": home, **ids}


@pytest.mark.parametrize("page", PAGES)
def test_every_page_opens_with_a_multilabel_run_selected(ml_home, monkeypatch, open_page, page):
    monkeypatch.setenv("TAILSCOPE_HOME", str(ml_home["home"]))
    at = open_page(page, run_id=ml_home["db"])
    assert not at.exception, [e.value for e in at.exception]
    notices = " ".join(shown(i.value) for i in at.info)
    if page in SINGLE_ONLY:
        assert "is a multi-label run" in notices and "Results page" in notices
        assert not at.get("plotly_chart")


def test_results_shows_findings_cooccurrence_and_a_verdict_on_rare_finding_map(ml_home, monkeypatch, open_page):
    from core.analysis import compare_ids
    from core.store import RunStore

    monkeypatch.setenv("TAILSCOPE_HOME", str(ml_home["home"]))
    at = open_page("results", run_id=ml_home["db"])
    assert not at.exception
    assert {"mAP (mean average precision)", "mAP of rare findings", "Hamming loss"} <= {m.label for m in at.metric}
    assert len(at.get("plotly_chart")) == 2
    store = RunStore(ml_home["home"])
    db, bce = (store.get(ml_home[k]).experiment for k in ("db", "bce"))
    expected = compare_ids(store, db, bce, "map_tail")
    assert any(expected["verdict"] in shown(m.value) for m in at.markdown)
    at.toggle(key="results.cooccurrence_share").set_value(True).run()
    assert not at.exception and len(at.get("plotly_chart")) == 2


def test_compare_page_points_multilabel_runs_to_results(ml_home, monkeypatch, open_page):
    monkeypatch.setenv("TAILSCOPE_HOME", str(ml_home["home"]))
    at = open_page("compare")
    at.multiselect(key="compare.runs").set_value([ml_home["db"], ml_home["bce"]]).run()
    assert not at.exception and "compared on the Results page" in " ".join(i.value for i in at.info)
    at.multiselect(key="compare.runs").set_value([ml_home["db"], ml_home["single"]]).run()
    assert not at.exception and "compare runs of one kind" in " ".join(i.value for i in at.info)


def test_an_empty_group_is_explained_where_its_map_reads_n_a():
    """With the default cut-offs a finding needs fewer than 20 training cases to count as rare:
    when none does, the page says why the rare findings' mAP is n/a instead of leaving a bare n/a."""
    from app.multilabel_view import _empty_groups

    said = _empty_groups({"dataset": {"groups": ["head", "medium", "medium"]}}, {"few_shot": 20})
    assert "no finding has fewer than 20 training cases" in said and "common" not in said
    assert _empty_groups({"dataset": {"groups": ["head", "tail"]}}, {}) == ""
    both = _empty_groups({"dataset": {"groups": ["medium"]}}, {"few_shot": 5, "many_shot": 50})
    assert "fewer than 5" in both and "more than 50" in both

"""Geometry page: renders for both stored runs and an empty store, drives its widgets, and
computes UMAP with new settings off the page's path (background executor + disk cache)."""

from __future__ import annotations

import numpy as np
import pytest

from app import embedding_jobs
from app.geometry_view import TABS

PAGE = "geometry"


def _no_exceptions(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def test_empty_store_offers_a_demo(empty_home, open_page):
    at = open_page(PAGE)
    _no_exceptions(at)
    assert any("demo" in b.label.lower() for b in at.button)


@pytest.mark.parametrize("run", ["image_run", "table_run"])
def test_page_renders_a_stored_run(stored_home, open_page, run):
    at = open_page(PAGE, run_id=stored_home[run])
    _no_exceptions(at)
    assert not at.info, "the default UMAP was computed by the worker: no waiting note"
    from core.store import RunStore

    first = RunStore(stored_home["home"]).artifacts(stored_home[run]).case_name(0)
    assert first.startswith("row ") and at.main.markdown[-1].value.startswith(f"**{first}**")  # the case's own name
    assert [c.proto.id for c in at.get("plotly_chart") if "geometry.norms" in c.proto.id] == [], "only the open tab"
    assert not any(m.label == "NC1" for m in at.metric)
    seen = {}
    for tab in TABS[1:]:  # each tab is drawn when it is opened
        at.session_state["geometry.tabs"] = tab
        at.run()
        _no_exceptions(at)
        seen[tab] = ({m.label for m in at.metric}, " ".join(c.value for c in at.caption))
    cards, captions = seen["Neural collapse"]
    assert {"NC1", "NC2 lengths", "NC2 angles", "NC3", "NC4"} <= cards
    assert {"Tail: weights", "Tail: class means"} <= seen["Angles"][0], "minority-collapse cards"
    assert "Spearman" in seen["Lengths vs counts"][1]
    assert "mean of the class means" in captions and "-1/(K-1)" in seen["Angles"][1]
    assert "how wide each class's cloud" in seen["Tail spread"][1]


def test_highlights_split_and_sample(stored_home, open_page):
    at = open_page(PAGE, run_id=stored_home["table_run"])
    at.toggle(key="geometry.highlight_tail").set_value(True).run()
    at.toggle(key="geometry.highlight_errors").set_value(True).run()
    _no_exceptions(at)
    at.radio(key="geometry.split").set_value("train").run()
    _no_exceptions(at)
    assert not at.info, "the train subset's default UMAP is cached too"
    sample = next(n for n in at.number_input if n.key.startswith("geometry.sample."))
    assert sample.key.endswith(".train")
    sample.set_value(3).run()
    _no_exceptions(at)
    from core.config import RunConfig
    from core.store import RunStore
    from core.train import fixed_train_subset, prepare_run_data

    config = RunConfig.model_validate(RunStore(stored_home["home"]).get(stored_home["table_run"]).config)
    splits = prepare_run_data(config)
    row = fixed_train_subset(splits.y_train, config.train.train_subset, config.data.seed)[3]
    assert any(m.value.startswith(f"**row {splits.ids_train[row]}**") for m in at.markdown)  # its row in the data
    assert at.dataframe, "a table run shows the sample's feature values"


def test_pictures_on_the_map_for_image_runs_only(stored_home, open_page):
    import json

    at = open_page(PAGE, run_id=stored_home["image_run"])
    at.toggle(key="geometry.pictures").set_value(True).run()
    _no_exceptions(at)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    images = spec["layout"]["images"]
    assert 0 < len(images) <= 120 and images[0]["source"].startswith("data:image/png;base64,")
    table = open_page(PAGE, run_id=stored_home["table_run"])
    assert not [t for t in table.toggle if t.key == "geometry.pictures"], "tables have no pictures to show"


def test_new_settings_show_pca_then_umap(copied_home, open_page):
    at = open_page(PAGE, run_id=copied_home["image_run"])
    at.radio(key="geometry.dims").set_value("3-D").run()
    _no_exceptions(at)
    assert any("being computed" in i.value for i in at.info), "PCA first, with a note"
    from app.services import get_store

    store = get_store()
    params = {"n_neighbors": 15, "min_dist": 0.1, "n_components": 3}
    job = embedding_jobs.submit(store, copied_home["image_run"], params)  # the page's job, or a cache hit
    if job is not None:
        job.result(timeout=180)
    at.run()
    _no_exceptions(at)
    assert not any("being computed" in i.value for i in at.info), "the cached UMAP replaces PCA"


def test_executor_computes_once_and_then_hits_the_cache(copied_home):
    from core.store import RunStore

    store, run_id = RunStore(copied_home["home"]), copied_home["table_run"]
    params = {"n_neighbors": 7, "min_dist": 0.3, "n_epochs": 30}
    assert not embedding_jobs.is_ready(store, run_id, params)
    assert embedding_jobs.load_embedding(store, run_id, "test", params) is None
    job = embedding_jobs.submit(store, run_id, params)
    assert job is not None and embedding_jobs.submit(store, run_id, params) in (job, None)  # no second job
    result = job.result(timeout=180)
    assert embedding_jobs.job_error(store, run_id, params) is None
    assert embedding_jobs.is_ready(store, run_id, params)
    artifacts = store.artifacts(run_id)
    for split, features in (("test", artifacts.features), ("train", artifacts.train_features)):
        path = embedding_jobs.embedding_path(store, run_id, split, params)
        assert path.exists() and path.parent == store.run_dir(run_id) / "embeddings"
        coords = embedding_jobs.load_embedding(store, run_id, split, params)
        assert coords.shape == (len(features), 2)
        np.testing.assert_array_equal(coords, result[split])
    assert embedding_jobs.submit(store, run_id, params) is None, "a second request is a cache hit"


def test_split_inputs_match_the_stored_points(stored_home):
    from core.config import RunConfig
    from core.store import RunStore
    from core.train import prepare_run_data

    store = RunStore(stored_home["home"])
    for run in ("image_run", "table_run"):
        run_id = stored_home[run]
        config = RunConfig.model_validate(store.get(run_id).config)
        artifacts, splits = store.artifacts(run_id), prepare_run_data(config)
        for split in embedding_jobs.SPLITS:
            inputs = embedding_jobs.split_inputs(splits, artifacts, config, split)
            features, labels, pred = embedding_jobs.split_arrays(artifacts, split)
            assert inputs is not None and len(inputs) == len(labels) == len(pred) == len(features)
        _, _, train_pred = embedding_jobs.split_arrays(artifacts, "train")
        assert train_pred.shape == artifacts.train_labels.shape


def test_the_app_leaves_the_default_map_to_a_worker_computing_it(copied_home):
    import shutil

    from core.jobs._pipeline import EMBEDDING_DEFAULTS
    from core.store import RunStore

    store, run_id = RunStore(copied_home["home"]), copied_home["table_run"]
    shutil.rmtree(store.run_dir(run_id) / "embeddings")
    store.set_progress(run_id, {"stage": "embedding", "fraction": 1.0})  # as the worker does after training
    defaults = {k: EMBEDDING_DEFAULTS[k] for k in ("n_neighbors", "min_dist", "n_components")}
    assert embedding_jobs.worker_is_embedding(store, run_id, defaults)
    assert embedding_jobs.submit(store, run_id, defaults) is None, "no second computation of the same map"
    assert not embedding_jobs.worker_is_embedding(store, run_id, {**defaults, "n_neighbors": 30})
    store.set_progress(run_id, {"stage": "done", "fraction": 1.0})  # the worker gave up: the app takes over
    assert not embedding_jobs.worker_is_embedding(store, run_id, defaults)

    import sqlite3
    import subprocess
    import sys

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a worker killed mid-map leaves "embedding" behind: the app must not wait for it
    store.set_progress(run_id, {"stage": "embedding", "fraction": 1.0})
    with sqlite3.connect(store.db_path) as db:
        db.execute("UPDATE runs SET worker_pid = ? WHERE id = ?", (gone.pid, run_id))
    assert not embedding_jobs.worker_is_embedding(store, run_id, defaults)

"""Rows a resampler made, kept with the run (`synthetic_rows.npz`): which rows and by which
resampler, never in the validation or test rows, shown apart on the Geometry map."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import make_run

GAN = {"name": "tabular_gan", "epochs": 3, "batch_size": 32, "hidden": 16, "noise_dim": 8}
RUN = {
    "name": "tiny gan",
    "data": {"source": "blobs2d", "params": {"samples_per_class": 40}, "imbalance": {"profile": "exp", "ratio": 5}},
    "model": {"name": "mlp", "hidden": 16},
    "resampler": GAN,
    "train": {"epochs": 2, "batch_size": 16, "min_steps": 0, "nc_every": 0, "train_subset": 10},
}


@pytest.fixture(scope="module")
def gan_home(tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("made-rows")
    return {"home": home, "run": make_run(home, RUN, embeddings=False)}


def test_the_made_rows_are_stored_with_the_run_and_never_reach_validation_or_test(gan_home):
    from core.config import RunConfig
    from core.store import RunStore
    from core.train import prepare_run_data

    store = RunStore(gan_home["home"])
    run_id = gan_home["run"]
    made, art, metrics = store.made_rows(run_id), store.artifacts(run_id), store.metrics(run_id)
    plain = prepare_run_data(RunConfig.model_validate(RUN))
    counts = np.bincount(plain.y_train)
    assert made.resampler == "tabular_gan" and made.n_real == len(plain.y_train)
    np.testing.assert_array_equal(made.per_class, counts.max() - counts)  # "auto": every class up to the largest
    assert made.count == metrics["synthetic_rows"] == len(made.positions) == len(made.y)
    np.testing.assert_array_equal(made.positions, np.arange(made.n_real, made.n_real + made.count))
    assert made.features.shape == (len(made.y), art.train_features.shape[1])
    # validation and test rows are the prepared splits' own, untouched, and hold no made row
    np.testing.assert_array_equal(art.labels, plain.y_test)
    np.testing.assert_array_equal(art.val_labels, plain.y_val)
    assert art.class_counts.tolist() == counts.tolist()  # the real training counts, not the resampled ones
    held_out = np.concatenate([plain.x_val, plain.x_test]).reshape(-1, made.x.shape[1])
    nearest = np.sqrt(((made.x[:, None, :] - held_out[None]) ** 2).sum(-1)).min(axis=1)
    assert (nearest > 0).all()


def test_a_run_without_a_resampler_has_no_made_rows_and_a_damaged_file_is_named(gan_home, tmp_path):
    from core.store import RunFileDamaged, RunStore

    store = RunStore(gan_home["home"])
    path = store.run_dir(gan_home["run"]) / "synthetic_rows.npz"
    saved = path.read_bytes()
    try:
        path.write_bytes(b"not an npz")
        with pytest.raises(RunFileDamaged, match="synthetic_rows.npz"):
            store.made_rows(gan_home["run"])
    finally:
        path.write_bytes(saved)
    from core.store import RunFolder

    folder = RunFolder(tmp_path)
    folder.write_made_rows(store.made_rows(gan_home["run"]))
    assert (tmp_path / "synthetic_rows.npz").exists()
    folder.write_made_rows(None)  # a re-run that made none leaves no stale record
    assert not (tmp_path / "synthetic_rows.npz").exists()


def test_many_made_rows_keep_an_even_seeded_share_of_each_class_and_the_whole_count():
    from core.artifacts import MADE_ROWS_KEPT, MadeRows

    y = np.r_[np.zeros(100, int), np.ones(3000, int), np.full(3000, 2)]
    x = np.arange(len(y), dtype=np.float32)[:, None]
    mask = np.r_[np.zeros(100, bool), np.ones(6000, bool)]
    made = MadeRows.of("smote", x, y, mask, 3, n_real=100, seed=1)
    assert made.count == 6000 and made.per_class.tolist() == [0, 3000, 3000]
    assert len(made.y) == MADE_ROWS_KEPT and np.bincount(made.y).tolist() == [0, 1000, 1000]
    assert (made.x[:, 0] >= 100).all(), "only made rows are kept"
    assert MadeRows.of("smote", x, y, mask, 3, n_real=100, seed=1).x.tolist() == made.x.tolist()


def test_the_map_draws_made_rows_apart_with_their_own_legend_entry_and_hover():
    from core.viz import embedding_scatter

    coords = np.arange(12, dtype=float).reshape(6, 2)
    labels = np.array([0, 0, 1, 1, 1, 1])
    made = np.array([False, False, False, True, True, False])
    fig = embedding_scatter(coords, labels, ["a", "b"], [2, 2], made=made, made_by="SMOTE <b>x</b>")
    traces = {t.name: t for t in fig.data}
    mark = next(t for name, t in traces.items() if name.startswith("made by"))
    assert mark.name == "made by SMOTE &lt;b&gt;x&lt;/b&gt; (2)"
    assert mark.marker.symbol == "diamond-open" and list(mark.x) == [6.0, 8.0]
    assert "made by SMOTE" in mark.hovertemplate and "not a real case" in mark.hovertemplate
    real_b = next(t for name, t in traces.items() if name.startswith("b "))
    assert list(real_b.x) == [4.0, 10.0], "made rows leave their class's trace"
    with pytest.raises(ValueError, match="made has 2 entries"):
        embedding_scatter(coords, labels, ["a", "b"], [2, 2], made=made[:2])


def test_geometry_marks_the_made_rows_on_the_training_map(gan_home, open_page, monkeypatch):
    monkeypatch.setenv("TAILSCOPE_HOME", str(gan_home["home"]))
    monkeypatch.setattr("app.embedding_jobs.submit", lambda *args, **kwargs: None)  # PCA here, no UMAP thread
    at = open_page("geometry", run_id=gan_home["run"])
    at.radio(key="geometry.split").set_value("train").run()
    assert not at.exception, [e.value for e in at.exception]
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    names = [t.get("name", "") for t in figure["data"]]
    from core.store import RunStore

    made = RunStore(gan_home["home"]).made_rows(gan_home["run"])
    assert f"made by Conditional tabular GAN (CTAB-GAN+ style) ({len(made.y)})" in names
    assert "Open diamonds are rows Conditional tabular GAN" in " ".join(c.value for c in at.caption)


def test_the_data_page_previews_what_a_resampler_would_add_with_the_made_rows_apart(empty_home, open_page):
    from core.config import DataConfig, RunConfig
    from core.train import prepare_run_data

    from app import state

    at = open_page("data")
    at.selectbox(key="data.builtin").set_value("wine").run()
    at.slider(key="data.ratio").set_value(4.0).run()
    at.button(key="data.save").click().run()  # the config the page shows, as it saves it
    data = DataConfig.model_validate(at.session_state[state.DATA_CONFIG])
    assert at.selectbox(key="data.made_rows").value == "smote"
    at.toggle(key="data.made_rows.show").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    counts = np.bincount(prepare_run_data(RunConfig(data=data)).y_train)
    said = " ".join(m.value for m in at.markdown)
    assert f"SMOTE would add **{int((counts.max() - counts).sum()):,} made-up rows**" in said
    figure = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
                  if any("made by" in (t.get("name") or "") for t in json.loads(c.proto.spec)["data"]))
    made = [t for t in figure["data"] if t["name"].endswith("row made by SMOTE")]
    assert made and all(t["marker"]["symbol"] == "diamond-open" for t in made)
    assert len(made) == int((counts < counts.max()).sum()), "one trace of made rows per class that gets some"


def test_the_run_stores_the_copy_and_utility_checks_of_its_made_rows(gan_home):
    """Recomputed here with scikit-learn: nearest real neighbours of each kept made row on the
    real rows' scale, the 5th percentile of the real rows' own nearest distances as the bar,
    and balanced accuracy on the real test rows of logistic regressions."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.neighbors import NearestNeighbors
    from sklearn.preprocessing import StandardScaler

    from core.config import RunConfig
    from core.store import RunStore
    from core.train import prepare_run_data

    store = RunStore(gan_home["home"])
    made, checks = store.made_rows(gan_home["run"]), store.metrics(gan_home["run"])["synthetic_checks"]
    splits = prepare_run_data(RunConfig.model_validate(RUN))
    scale = StandardScaler().fit(splits.x_train)
    real, fake = scale.transform(splits.x_train), scale.transform(made.x)
    own = NearestNeighbors(n_neighbors=2).fit(real).kneighbors(real)[0][:, 1]
    bar = np.percentile(own, 5)
    nearest = NearestNeighbors(n_neighbors=1).fit(real).kneighbors(fake)[0][:, 0]
    assert checks["made"] == made.count and checks["checked"] == len(made.y)
    assert checks["threshold"] == pytest.approx(bar, rel=1e-6)
    assert checks["flagged"] == int((nearest < bar).sum())

    def score(x, y):
        fitted = LogisticRegression(max_iter=2000, random_state=0).fit(x, y)
        return balanced_accuracy_score(splits.y_test, fitted.predict(splits.x_test))

    assert checks["train_real"] == pytest.approx(score(splits.x_train, splits.y_train), abs=1e-9)
    assert checks["train_both"] == pytest.approx(score(np.concatenate([splits.x_train, made.x]),
                                                       np.concatenate([splits.y_train, made.y])), abs=1e-9)


def test_results_and_show_report_the_made_rows(gan_home, open_page, monkeypatch, capsys):
    from core.cli import main

    monkeypatch.setenv("TAILSCOPE_HOME", str(gan_home["home"]))
    at = open_page("results", run_id=gan_home["run"])
    assert not at.exception, [e.value for e in at.exception]
    assert "Rows the resampler made up" in [h.value for h in at.subheader]
    table = next(d.value for d in at.dataframe if "check" in d.value.columns)
    checks = json.loads((gan_home["home"] / "runs" / gan_home["run"] / "metrics.json").read_text())["synthetic_checks"]
    assert table.set_index("check").loc["rows made", "value"] == f"{checks['made']:,}"
    said = " ".join(c.value for c in at.caption)
    assert f"Both minus real alone: {checks['both_vs_real']['difference']:+.3f}" in said
    assert checks["both_vs_real"]["verdict"] in said, "the verdict's own words beside its numbers"
    assert main(["show", gan_home["run"], "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["synthetic_checks"]["made"] == checks["made"] and shown["synthetic_checks"]["flagged"] == checks["flagged"]
    assert main(["show", gan_home["run"]]) == 0
    assert f"rows made by the resampler: {checks['made']}; near copies of a real row: {checks['flagged']}" \
        in capsys.readouterr().out


def test_a_run_saved_from_post_hoc_fixes_keeps_its_parents_made_rows(gan_home, tmp_path):
    import shutil

    from core.jobs import save_derived_run
    from core.store import RunStore

    home = tmp_path / "home"
    shutil.copytree(gan_home["home"], home)
    store = RunStore(home)
    new = save_derived_run(store, gan_home["run"], "gan adjusted", {"logit_tau": 0.7})
    parent, child = store.made_rows(gan_home["run"]), store.made_rows(new)
    assert child is not None and child.count == parent.count
    np.testing.assert_array_equal(child.x, parent.x)
    assert store.metrics(new)["synthetic_checks"] == store.metrics(gan_home["run"])["synthetic_checks"]


def test_whether_made_rows_help_is_one_paired_verdict(gan_home):
    """'Useful?' is answered by the one procedure: real plus made rows against real rows
    alone, paired on the same test rows, its difference equal to the two scores' difference."""
    from core.store import RunStore

    checks = RunStore(gan_home["home"]).metrics(gan_home["run"])["synthetic_checks"]
    both = checks["both_vs_real"]
    assert both["difference"] == pytest.approx(checks["train_both"] - checks["train_real"], abs=1e-9)
    assert both["ci"][0] <= both["difference"] <= both["ci"][1]
    assert both["metric"] == "balanced_accuracy" and both["status"] in {"better", "worse", "within noise", "cannot tell"}

"""Label noise on purpose and hidden / uploaded unlabelled rows (core.data._noise, _unlabeled)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats

from core.artifacts import EvalArtifacts
from core.config import ConfigError, DataConfig, load_config
from core.data import (
    LABEL_NOISE, exact_count, hidden_counts, label_damage_table, load_builtin, save_upload, split_data,
)
from core.data._imbalance import _split_rows


def _noise(name: str, **params):
    return LABEL_NOISE.create(name, params)


def _split(**data) -> tuple:
    config = DataConfig(**{"source": "digits", "imbalance": {"profile": "exp", "ratio": 20}, **data})
    return split_data(load_builtin(config.source), config), config


def test_exact_count_rounds_half_up():
    assert [exact_count(0.25, 10), exact_count(0.05, 10), exact_count(0.3, 7), exact_count(0.0, 9)] == [3, 1, 2, 0]


def test_registry_entries_have_display_names_and_descriptions():
    assert LABEL_NOISE.names() == ["pair", "symmetric", "tail"]
    for info in LABEL_NOISE.infos():
        assert info.display and info.display != info.name and info.description


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.25, 0.4])
def test_symmetric_changes_exactly_the_requested_rows(rate):
    y = np.repeat(np.arange(4), [50, 30, 13, 7])
    noisy = _noise("symmetric").corrupt(y, rate=rate, seed=3, num_classes=4)
    assert int((noisy != y).sum()) == exact_count(rate, len(y))


def test_symmetric_is_uniform_over_the_other_classes():
    k, per_class = 5, 6000
    y = np.repeat(np.arange(k), per_class)
    noisy = _noise("symmetric").corrupt(y, rate=0.5, seed=11, num_classes=k)
    changed = noisy != y
    for j in range(k):
        to = noisy[changed & (y == j)]
        assert j not in to
        observed = np.bincount(to, minlength=k)[np.arange(k) != j]
        assert stats.chisquare(observed).pvalue > 1e-3, (j, observed)
    # rows are picked regardless of class: each class loses about half its rows
    share = np.bincount(y[changed], minlength=k) / per_class
    assert np.all(np.abs(share - 0.5) < 0.05)


def test_pair_sends_every_row_to_its_nearest_class_mean():
    rng = np.random.default_rng(0)
    centres = np.array([0.0, 1.0, 3.0, 7.0])  # nearest mean: 0->1, 1->0, 3->1, 7->3
    y = np.repeat(np.arange(4), 200)
    x = (centres[y] + rng.normal(0, 0.05, len(y)))[:, None].repeat(3, axis=1)
    noisy = _noise("pair").corrupt(y, rate=0.3, seed=1, num_classes=4, x=x)
    changed = noisy != y
    assert changed.sum() == exact_count(0.3, len(y))
    expected = np.array([1, 0, 1, 2])
    assert np.array_equal(noisy[changed], expected[y[changed]])


def test_pair_next_class_wraps():
    y = np.repeat(np.arange(3), 20)
    noisy = _noise("pair", to="next_class").corrupt(y, rate=0.5, seed=0, num_classes=3)
    changed = noisy != y
    assert changed.sum() == 30 and np.array_equal(noisy[changed], (y[changed] + 1) % 3)


@pytest.mark.parametrize("to", ["any", "not_tail"])
def test_tail_noise_touches_only_tail_rows(to):
    y = np.repeat(np.arange(5), [200, 150, 60, 12, 8])
    groups = ["head", "head", "medium", "tail", "tail"]
    noisy = _noise("tail", to=to).corrupt(y, rate=0.4, seed=2, num_classes=5, groups=groups)
    changed = noisy != y
    assert set(np.unique(y[changed])) <= {3, 4}
    assert changed.sum() == exact_count(0.4, 20)  # the rate counts over the 20 tail rows
    if to == "not_tail":
        assert not np.isin(noisy[changed], [3, 4]).any()


def test_same_seed_same_rows_other_seed_other_rows():
    y = np.repeat(np.arange(3), 100)
    a, b, c = (_noise("symmetric").corrupt(y, rate=0.2, seed=s, num_classes=3) for s in (5, 5, 6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_split_data_corrupts_train_and_validation_never_test():
    clean, _ = _split()
    noisy, config = _split(label_noise={"name": "symmetric", "rate": 0.2, "seed": 4})
    assert np.array_equal(noisy.x_test, clean.x_test) and np.array_equal(noisy.y_test, clean.y_test)
    assert np.array_equal(noisy.y_train_clean, clean.y_train) and np.array_equal(noisy.x_train, clean.x_train)
    assert clean.y_train_clean is None
    assert int((noisy.y_train != clean.y_train).sum()) == exact_count(0.2, len(clean.y_train))
    assert int((noisy.y_val != clean.y_val).sum()) == exact_count(0.2, len(clean.y_val))
    again, _ = _split(label_noise={"name": "symmetric", "rate": 0.2, "seed": 4})
    assert np.array_equal(again.y_train, noisy.y_train)


def test_split_data_tail_noise_uses_the_page_groups():
    noisy, config = _split(label_noise={"name": "tail", "rate": 0.5, "seed": 0})
    table = label_damage_table(noisy, config.many_shot, config.few_shot)
    from core.data import class_groups
    groups = np.array(class_groups(np.bincount(noisy.y_train_clean, minlength=10), config.many_shot, config.few_shot))
    assert (table["corrupted rows"][groups != "tail"] == 0).all()
    assert table["corrupted rows"][groups == "tail"].sum() == exact_count(0.5, int(np.isin(
        noisy.y_train_clean, np.flatnonzero(groups == "tail")).sum()))


def test_hidden_labels_are_stratified_and_exact():
    clean, _ = _split()
    part, _ = _split(unlabeled={"fraction": 0.6})
    want = hidden_counts(clean.class_counts, 0.6)
    assert np.array_equal(want, [min(int(np.floor(0.6 * n + 0.5)), n - 1) for n in clean.class_counts])
    assert np.array_equal(np.bincount(part.y_unlabeled_true, minlength=10), want)
    assert np.array_equal(part.class_counts, clean.class_counts - want)
    assert (part.class_counts >= 1).all()
    # the hidden rows are exactly the training rows that left, with their true labels
    both = np.concatenate([part.x_train, part.x_unlabeled]).reshape(len(clean.y_train), -1)
    labels = np.concatenate([part.y_train, part.y_unlabeled_true])
    order_a = np.lexsort(np.c_[both, labels].T)
    order_b = np.lexsort(np.c_[clean.x_train.reshape(len(clean.y_train), -1), clean.y_train].T)
    assert np.array_equal(both[order_a], clean.x_train.reshape(len(clean.y_train), -1)[order_b])
    assert np.array_equal(labels[order_a], clean.y_train[order_b])
    assert np.array_equal(part.x_test, clean.x_test)


def test_noise_counts_over_the_labelled_rows_after_hiding():
    noisy, config = _split(unlabeled={"fraction": 0.5}, label_noise={"name": "pair", "rate": 0.3, "seed": 0})
    assert int((noisy.y_train != noisy.y_train_clean).sum()) == exact_count(0.3, len(noisy.y_train))
    table = label_damage_table(noisy, config.many_shot, config.few_shot)
    assert table["corrupted rows"].sum() == exact_count(0.3, len(noisy.y_train))
    assert table["hidden rows"].sum() == len(noisy.y_unlabeled_true)
    assert np.allclose(table["hidden share"], table["hidden rows"] / (table["hidden rows"] + table["labelled rows"]))


def test_uploaded_table_rows_are_scaled_like_the_training_split(tmp_path, monkeypatch):
    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    config = DataConfig(source="wine", imbalance={"profile": "exp", "ratio": 5})
    dataset = load_builtin("wine")
    raw_test = _split_rows(dataset, profile="exp", ratio=5, mu=0.5, class_order=None, test_fraction=0.25,
                           val_fraction=0.15, seed=0, fold=None)[4]
    table = pd.DataFrame(raw_test, columns=dataset.feature_names)  # no label column
    source = save_upload(table.to_csv(index=False).encode(), "more-wine.csv")
    splits = split_data(dataset, DataConfig.model_validate({**config.model_dump(), "unlabeled": {"source": source}}))
    assert np.allclose(splits.x_unlabeled, splits.x_test, atol=1e-5)
    assert (splits.y_unlabeled_true == -1).all()


def test_uploaded_pictures_are_read_like_the_training_images(tmp_path, monkeypatch):
    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    dataset = load_builtin("digits")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(12):
            png = io.BytesIO()
            Image.fromarray(np.round(dataset.x[i, 0] * 255).astype(np.uint8), mode="L").save(png, format="PNG")
            archive.writestr(f"any/{i:03d}.png", png.getvalue())
    source = save_upload(buffer.getvalue(), "pictures.zip")
    splits, _ = _split(unlabeled={"fraction": 0.2, "source": source})
    extra = splits.x_unlabeled[splits.y_unlabeled_true == -1]
    assert extra.shape == (12, 1, 8, 8)
    assert np.allclose(extra, dataset.x[:12], atol=1.5 / 255)


def test_artifacts_keep_the_clean_labels_and_old_files_load(tmp_path):
    rng = np.random.default_rng(0)
    base = dict(logits=rng.normal(size=(4, 3)), labels=np.arange(4) % 3, features=rng.normal(size=(4, 2)),
                head_weight=np.ones((3, 2)), head_bias=np.zeros(3), train_features=np.ones((5, 2)),
                train_labels=np.array([0, 1, 2, 0, 1]), class_counts=np.array([2, 2, 1]),
                val_logits=np.zeros((2, 3)), val_labels=np.array([0, 1]), val_features=np.zeros((2, 2)),
                test_index=np.arange(4))
    EvalArtifacts(**base).save(tmp_path / "old.npz")
    assert EvalArtifacts.load(tmp_path / "old.npz").train_clean_labels is None
    EvalArtifacts(**base, train_clean_labels=np.array([0, 1, 2, 2, 1])).save(tmp_path / "new.npz")
    assert EvalArtifacts.load(tmp_path / "new.npz").train_clean_labels.tolist() == [0, 1, 2, 2, 1]


def test_trainer_stores_the_clean_labels_of_its_train_subset():
    from core.train import fixed_train_subset, train_run

    config = load_config({"data": {"source": "digits", "imbalance": {"profile": "exp", "ratio": 10},
                                   "label_noise": {"name": "symmetric", "rate": 0.3, "seed": 1}},
                          "train": {"epochs": 1, "min_steps": 0, "train_subset": 200, "nc_every": 0}})
    result = train_run(config)
    subset = fixed_train_subset(result.splits.y_train, 200, config.data.seed)
    art = result.artifacts
    assert np.array_equal(art.train_clean_labels, result.splits.y_train_clean[subset])
    assert np.array_equal(art.train_labels, result.splits.y_train[subset])
    assert (art.train_clean_labels != art.train_labels).any()


@pytest.mark.parametrize("data, words", [
    ({"label_noise": {"name": "bogus"}}, ["bogus", "pair", "symmetric", "tail"]),
    ({"label_noise": {"name": "symmetric", "rate": 1.5}}, ["data.label_noise.rate", "less than 1"]),
    ({"label_noise": {"name": "pair", "to": "sideways"}}, ["pair", "to", "nearest_mean"]),
    ({"unlabeled": {"fraction": -0.1}}, ["data.unlabeled.fraction"]),
])
def test_config_errors_are_readable(data, words):
    with pytest.raises(ConfigError) as err:
        load_config({"data": data})
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_data_page_shows_wrong_and_hidden_shares_per_class(empty_home, open_page):
    import json

    at = open_page("data")
    at.selectbox(key="data.labels.noise").set_value("tail").run()
    at.slider(key="data.labels.rate").set_value(0.5).run()
    at.slider(key="data.labels.hidden").set_value(0.3).run()
    assert not at.exception, [e.value for e in at.exception]
    config = DataConfig(source="digits", imbalance={"profile": "exp", "ratio": 50},
                        label_noise={"name": "tail", "rate": 0.5, "seed": 0}, unlabeled={"fraction": 0.3})
    want = label_damage_table(split_data(load_builtin("digits"), config), config.many_shot, config.few_shot)
    frames = [f.value for f in at.dataframe if "wrong labels (%)" in f.value.columns]
    assert len(frames) == 1
    shown = frames[0].set_index("class").loc[want["class"]]
    assert np.allclose(shown["wrong labels (%)"], (100 * want["corrupted share"]).round(1))
    assert np.allclose(shown["hidden (%)"], (100 * want["hidden share"]).round(1))
    assert (shown["wrong labels"].to_numpy() == want["corrupted rows"].to_numpy()).all()
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    damage = [c for c in charts if [t.get("name") for t in c["data"]] == ["wrong labels", "hidden labels"]]
    assert len(damage) == 1
    bars = dict(zip(damage[0]["data"][0]["x"], damage[0]["data"][0]["y"]))
    assert np.allclose([bars[c] for c in want["class"]], want["corrupted share"])
    marked = [f.value for f in at.dataframe if "wrong label" in f.value.columns]
    assert len(marked) == 1
    assert (marked[0]["wrong label"] != "").sum() == want["corrupted rows"].sum()
    assert any("Wrong and hidden labels" in s.value for s in at.subheader)


def test_train_page_offers_label_options_and_the_new_stages(empty_home, open_page):
    from core.methods import CLEANERS
    from core.store import RunStore
    from core.train import PRETRAIN, SEMI

    at = open_page("train")
    noise = at.selectbox(key="train.labels.noise")
    assert noise.options == ["none", *(LABEL_NOISE.info(n).label for n in LABEL_NOISE.names())]
    for section, registry in (("label_issues", CLEANERS), ("pretrain", PRETRAIN), ("semi", SEMI)):
        shown = at.selectbox(key=f"train.{section}").options
        assert shown[1:] == [registry.info(n).label for n in registry.names()]
        assert len(shown) == len(registry.names()) + 1
    noise.set_value("pair").run()
    at.selectbox(key="train.labels.noise.pair.to").set_value("next_class").run()
    at.slider(key="train.labels.rate").set_value(0.3).run()
    at.slider(key="train.labels.hidden").set_value(0.5).run()
    at.selectbox(key="train.semi").set_value("pseudo_label").run()
    at.number_input(key="train.settings.epochs").set_value(2).run()
    assert not at.exception, [e.value for e in at.exception]
    at.button(key="train.start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    (run,) = RunStore(empty_home).list_runs()
    assert run.config["data"]["label_noise"] == {"name": "pair", "rate": 0.3, "seed": 0, "to": "next_class"}
    assert run.config["data"]["unlabeled"]["fraction"] == 0.5 and run.config["semi"]["name"] == "pseudo_label"
    assert "pair noise 30%" in run.name


def _hand_table() -> pd.DataFrame:
    return pd.DataFrame({"class": ["a", "b", "c"], "group": ["head", "medium", "tail"],
                         "labelled rows": [80, 15, 5], "corrupted rows": [8, 3, 2], "corrupted share": [0.1, 0.2, 0.4],
                         "hidden rows": [20, 5, 0], "hidden share": [0.2, 0.25, 0.0]})


def test_damage_by_group_sums_rows_per_group():
    from core.data import damage_by_group

    table = _hand_table()
    table.loc[3] = ["d", "tail", 5, 3, 0.6, 5, 0.5]
    out = damage_by_group(table).set_index("group")
    assert out.index.tolist() == ["head", "medium", "tail"]
    assert out.loc["tail", "corrupted rows"] == 5 and out.loc["tail", "corrupted share"] == pytest.approx(0.5)
    assert out.loc["tail", "hidden share"] == pytest.approx(5 / 15)


def test_label_damage_figure_orders_head_to_tail_and_skips_empty_traces():
    from core.viz import label_damage_figure

    table = _hand_table().iloc[[2, 0, 1]]
    fig = label_damage_figure(table)
    assert [t.name for t in fig.data] == ["wrong labels", "hidden labels"]
    assert list(fig.data[0].x) == ["a", "b", "c"] and list(fig.data[0].y) == [0.1, 0.2, 0.4]
    only_noise = label_damage_figure(_hand_table().assign(**{"hidden rows": 0, "hidden share": 0.0}))
    assert [t.name for t in only_noise.data] == ["wrong labels"]
    with pytest.raises(ValueError, match="lacks columns"):
        label_damage_figure(_hand_table().drop(columns="group"))


@pytest.mark.parametrize("dims", [2, 3])
def test_embedding_marks_wrong_labels_with_an_x(dims):
    from core.viz import embedding_scatter

    rng = np.random.default_rng(0)
    coords, labels = rng.normal(size=(30, dims)), np.repeat([0, 1, 2], 10)
    wrong = np.zeros(30, dtype=bool)
    wrong[[1, 12, 25]] = True
    fig = embedding_scatter(coords, labels, ["a", "b", "c"], [10, 10, 10], wrong_label=wrong)
    (trace,) = [t for t in fig.data if t.name.startswith("wrong label")]
    assert trace.name == "wrong label (3)" and trace.marker.symbol == "x"
    assert np.allclose(trace.x, coords[wrong, 0]) and np.allclose(trace.y, coords[wrong, 1])
    plain = embedding_scatter(coords, labels, ["a", "b", "c"], [10, 10, 10])
    assert not any(t.name.startswith("wrong label") for t in plain.data)


def test_a_noisy_run_shows_its_wrong_labels_on_geometry_and_results(empty_home, open_page):
    import json

    from conftest import make_run
    from core.store import RunStore

    raw = {"data": {"source": "wine", "imbalance": {"profile": "exp", "ratio": 5},
                    "label_noise": {"name": "symmetric", "rate": 0.3, "seed": 2}},
           "train": {"epochs": 2, "min_steps": 0, "nc_every": 0}}
    run_id = make_run(empty_home, raw, embeddings=False)
    art = RunStore(empty_home).artifacts(run_id)
    wrong = int((art.train_labels != art.train_clean_labels).sum())
    assert wrong > 0
    at = open_page("geometry", run_id=run_id)
    at.radio(key="geometry.split").set_value("train").run()
    assert not at.exception, [e.value for e in at.exception]
    spec = json.loads(next(c for c in at.get("plotly_chart") if "geometry.map" in c.proto.id).proto.spec)
    (trace,) = [t for t in spec["data"] if t.get("name", "").startswith("wrong label")]
    assert trace["name"] == f"wrong label ({wrong})" and trace["marker"]["symbol"] == "x"
    at = open_page("results", run_id=run_id)
    assert not at.exception, [e.value for e in at.exception]
    note = " ".join(i.value for i in at.info)
    assert "30% of the training labels" in note and "tail" in note


def test_the_noise_sweep_example_validates():
    from pathlib import Path

    from core.jobs import expand_sweep, load_sweep

    spec = load_sweep(Path(__file__).resolve().parent.parent / "examples" / "noise-sweep.yaml")
    cells, problems = expand_sweep(spec)
    assert problems == [] and len(cells) == 12
    assert {c.config.data.label_noise.rate for c in cells} == {0.0, 0.2, 0.4}
    methods = {c.settings["method"]: c.config for c in cells}
    assert methods["crt"].stage2.name == "crt" and methods["rcal"].stage2.name == "rcal"
    assert methods["drop"].label_issues.resolved_params()["action"] == "drop"
    assert all(c.config.evaluation.seeds == [0, 1, 2] for c in cells)

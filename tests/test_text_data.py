"""Free text as data: the role, the encoders fitted on training rows only, the built-in
synthetic notes, runs of every kind on text, and exact word attributions."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from core.config import RunConfig
from core.data import load_builtin, load_table, prepare_splits, profile_table, read_table

WORDS = ["fever", "cough", "rash", "wheeze", "headache", "nausea", "tired", "pain", "chest", "throat"]
TINY_NOTES = {"source": "synthetic_notes", "params": {"num_classes": 3, "most_common": 60, "ratio": 4}}
FAST = {"epochs": 8, "batch_size": 32, "lr": 0.05, "optimizer": "adamw", "nc_every": 0, "min_steps": 0}


def _notes_csv(rows: int = 120, numbers: bool = True, seed: int = 0) -> bytes:
    """Patients with an ID, two numbers, a ward (a short category), a note and a diagnosis."""
    rng = np.random.default_rng(seed)
    lines = ["patient_id,age,temp,ward,note,diagnosis" if numbers else "note,diagnosis"]
    for i in range(rows):
        label = ["flu", "asthma", "migraine"][i % 3]
        words = " ".join(rng.choice(WORDS, 4)) + f" {label}-like"
        cells = [f"P{i:04d}", f"{rng.integers(20, 90)}", f"{rng.normal(37, 1):.1f}", ["north", "south"][i % 2]]
        lines.append(",".join(([*cells] if numbers else []) + [f"\"{words}, seen {i}\"", label]))
    return ("\n".join(lines) + "\n").encode()


def test_long_free_text_is_proposed_as_text_and_kept_beside_the_other_columns():
    raw = read_table(_notes_csv(), "notes.csv")
    profile = profile_table(raw.frame, raw.filename)
    roles = {c.name: c.role for c in profile.columns}
    assert roles == {"patient_id": "id", "age": "numeric", "temp": "numeric", "ward": "categorical", "note": "text",
                     "diagnosis": "label"}, "short categories and IDs keep their roles"
    assert profile.column("note").used and "free text" in profile.column("note").reason
    dataset = load_table(_notes_csv(), "notes.csv")
    assert dataset.feature_names == ("age", "temp", "ward=north", "ward=south") and dataset.text_names == ("note",)
    splits = prepare_splits(dataset, seed=0)
    text = next(b for b in splits.columns if b.role == "text")
    assert text.start == 4 and text.stop == splits.x_train.shape[1], "text features come after the table's"
    assert splits.feature_names[4].startswith("note · ")
    assert splits.texts_test.shape == (len(splits.y_test), 1)
    np.testing.assert_array_equal(splits.feature_mean[4:], 0.0)  # word counts are not rescaled: a missing word is 0
    assert splits.ids_test[0].startswith("P")


def test_a_table_of_only_text_and_a_label_is_a_text_dataset():
    dataset = load_table(_notes_csv(numbers=False), "only_notes.csv")
    assert dataset.x.shape == (120, 0) and dataset.text_names == ("note",)
    splits = prepare_splits(dataset, seed=1)
    assert splits.x_train.shape[1] > 20 and np.isfinite(splits.x_train).all()


def test_word_counts_are_fitted_on_the_training_texts_only_as_scikit_learn_fits_them():
    splits = prepare_splits(load_table(_notes_csv(numbers=False), "only_notes.csv"), seed=0)
    train, test = splits.texts_train[:, 0].tolist(), splits.texts_test[:, 0].tolist()
    common = dict(lowercase=True, sublinear_tf=True, min_df=2, dtype=np.float32)
    words = TfidfVectorizer(ngram_range=(1, 2), max_features=2000, **common).fit(train)
    letters = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), max_features=1000, **common).fit(train)
    expected = np.hstack([words.transform(test).toarray(), letters.transform(test).toarray()])
    np.testing.assert_allclose(splits.x_test, expected, rtol=1e-6, atol=1e-7)
    test_only = {w for t in test for w in t.split() if w.isdigit()} - {w for t in train for w in t.split()}
    assert test_only and not any(f"“{w}”" in n for w in test_only for n in splits.feature_names)


def test_the_synthetic_notes_are_long_tailed_seeded_and_say_they_are_made_up():
    from core.data import DATASETS

    info = DATASETS.info("synthetic_notes")
    assert "Synthetic" in info.display and "no real patient" in info.description
    notes = load_builtin("synthetic_notes")
    counts = np.bincount(notes.y)
    assert counts[0] == 600 and counts[-1] == 20 and np.all(np.diff(counts) < 0)
    again = load_builtin("synthetic_notes")
    np.testing.assert_array_equal(notes.texts, again.texts)
    telling = {"asthma": "wheeze", "migraine": "aura"}
    for name, word in telling.items():  # overlap: a class's telling word also turns up in another class's notes
        rows = notes.texts[:, 0][notes.y != notes.class_names.index(name)]
        assert any(word in t for t in rows)


def _train(loss: str, **extra):
    from core.train import train_run

    raw = {"data": TINY_NOTES, "model": {"name": "linear"}, "loss": {"name": loss}, "train": FAST, **extra}
    return train_run(RunConfig.model_validate(raw))


def test_linear_word_attributions_add_up_exactly_to_the_score_gap():
    from core.analysis import linear_word_attribution

    result = _train("weighted_ce")
    art, splits = result.artifacts, result.splits
    block = next(b for b in splits.columns if b.role == "text")
    encoder = splits.text_encoders[0]
    checked = 0
    for i in range(min(len(art.labels), 25)):
        true, chosen = int(art.labels[i]), int(np.argsort(art.logits[i])[-1])
        other = chosen if chosen != true else int(np.argsort(art.logits[i])[-2])
        text = splits.texts_test[art.test_index[i], 0]
        words = linear_word_attribution(art.head_weight, art.head_bias, art.features[i], (block.start, block.stop),
                                        encoder.placement(text), text, true, other)
        assert words.explained() == pytest.approx(words.gap, abs=1e-9)
        assert words.gap == pytest.approx(float(art.logits[i, true] - art.logits[i, other]), abs=1e-4)
        assert words.words == text.split() and abs(words.rest_target - art.head_bias[true]) < 1e-6
        checked += 1
    assert checked


def test_text_runs_train_with_plain_and_re_weighted_losses_and_a_two_stage_fix(tmp_path):
    from conftest import make_run
    from core.store import RunStore

    ids = [make_run(tmp_path, {"data": TINY_NOTES, "model": {"name": "mlp", "hidden": 16}, "loss": {"name": loss},
                               "train": FAST, **extra}, embeddings=False)
           for loss, extra in (("ce", {}), ("balanced_softmax", {"stage2": {"name": "crt", "epochs": 2}}))]
    store = RunStore(tmp_path)
    for run_id in ids:
        metrics = json.loads((tmp_path / "runs" / run_id / "metrics.json").read_text())
        assert 0 <= metrics["balanced_accuracy"] <= 1 and len(metrics["per_class"]) == 3
        assert store.get(run_id).status == "done"


def test_an_experiment_of_two_seeds_on_text_has_an_interval(tmp_path, monkeypatch, capsys):
    from core.analysis import experiment_summary
    from core.cli import main
    from core.store import RunStore

    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    path = tmp_path / "text.json"
    path.write_text(json.dumps({"name": "notes", "data": TINY_NOTES, "model": {"name": "linear"}, "train": FAST}))
    assert main(["train", str(path), "--seeds", "2", "--wait", "--no-embeddings"]) == 0
    store = RunStore(tmp_path)
    summary = experiment_summary(store, store.list_experiments()[0].id)
    assert summary["n_done"] == 2
    bal = summary["summary"]["balanced_accuracy"]
    assert bal["n"] == 2 and bal["mean"] > 0.5, "the runs learn the notes"
    assert bal["ci"][0] <= bal["mean"] <= bal["ci"][1]


def test_new_rows_with_notes_get_the_features_the_run_was_trained_on():
    from core.config import DataConfig
    from core.data import DataError, read_table_batch, split_data

    data = _notes_csv()
    dataset = load_table(data, "notes.csv")
    config = DataConfig(source="upload:0-notes.csv")
    splits = split_data(dataset, config)
    x, cases, _, id_name = read_table_batch(config, dataset, None, "new.csv", data)
    assert id_name == "patient_id" and x.shape == (120, splits.x_test.shape[1])
    where = {c: i for i, c in enumerate(cases)}
    rows = [where[c] for c in splits.ids_test]
    np.testing.assert_allclose(x[rows], splits.x_test, rtol=1e-5, atol=1e-6)
    without = _notes_csv().replace(b",note,", b",remark,")
    with pytest.raises(DataError, match="free text of 'note'"):
        read_table_batch(config, dataset, None, "new.csv", without)


@pytest.mark.parametrize("extra", [{"resampler": {"name": "smote"}}, {"sampler": {"name": "class_balanced"}},
                                   {"label_issues": {"name": "confident_learning"}}],
                         ids=["smote", "class-balanced sampler", "label issues"])
def test_resamplers_samplers_and_label_cleaning_work_on_word_features(extra):
    result = _train("ce", **extra)
    art = result.artifacts
    assert np.isfinite(art.logits).all() and len(art.labels) == len(result.splits.y_test)
    assert art.features.shape[1] == result.splits.x_train.shape[1], "the linear model sees the word features"


def test_a_huge_note_is_placed_on_its_first_words_and_still_adds_up():
    from core.data import MAX_PIECES, create_text_encoder

    encoder = create_text_encoder("tfidf").fit(["fever and cough", "wheeze at night", "fever at night"])
    text = " ".join(["fever cough"] * 2000 + ["night"] * 10)  # 4,010 words, "night" only after the first 1,000
    placement = encoder.placement(text)
    assert placement.weights.shape == (len(encoder.feature_names()), MAX_PIECES)
    attribution = encoder.transform([text])[0].astype(np.float64) * 3.0
    words, rest = placement.per_word(attribution)
    assert words.sum() + rest == pytest.approx(attribution.sum(), abs=1e-9) and rest > 0


def test_new_notes_are_scored_by_a_stored_text_run(tmp_path, monkeypatch):
    from conftest import make_run
    from core.data import save_upload
    from core.predict import predict_new_cases
    from core.store import RunStore

    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    data = _notes_csv()
    source = save_upload(data, "notes.csv")
    run_id = make_run(tmp_path, {"data": {"source": source}, "model": {"name": "linear"}, "train": FAST},
                      embeddings=False)
    new = _notes_csv(rows=30, seed=5).replace(b",diagnosis\n", b"\n")
    new = b"\n".join(line.rsplit(b",", 1)[0] if i else line for i, line in enumerate(new.split(b"\n")) if line)
    result = predict_new_cases(RunStore(tmp_path), run_id, "new_notes.csv", new + b"\n")
    assert len(result.frame) == 30 and result.frame["patient_id"].iloc[0] == "P0000"
    assert set(result.frame["predicted"]) <= {"flu", "asthma", "migraine"}


def test_unlabelled_notes_uploaded_beside_a_text_table_get_the_same_features(tmp_path, monkeypatch):
    from core.config import DataConfig
    from core.data import load_data, save_upload, split_data

    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    source = save_upload(_notes_csv(), "notes.csv")
    extra = save_upload(_notes_csv(rows=24, seed=9), "more_notes.csv")  # its diagnosis column is ignored
    config = DataConfig(source=source, unlabeled={"fraction": 0.5, "source": extra})
    splits = split_data(load_data(config), config)
    assert splits.x_unlabeled.shape[1] == splits.x_train.shape[1]
    assert (splits.y_unlabeled_true == -1).sum() == 24 and np.isfinite(splits.x_unlabeled).all()
    assert len(splits.texts_train) == len(splits.y_train), "the notes follow the rows that keep their labels"
    uploaded = splits.x_unlabeled[splits.y_unlabeled_true == -1]
    assert (uploaded[:, 4:] != 0).any(axis=1).all(), "each uploaded note has word features"

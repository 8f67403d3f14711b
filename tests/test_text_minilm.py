"""Sentence embeddings (all-MiniLM-L6-v2) from the installed package: offline with the
network blocked, the same numbers as the model computed by hand, cached by content."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from core.config import RunConfig

TINY = {"source": "synthetic_notes", "params": {"num_classes": 3, "most_common": 40, "ratio": 4},
        "text_encoder": {"name": "minilm"}}
TEXTS = ["Patient reports wheeze and a tight chest at night.", "Headache with aura, light hurts.", ""]


@pytest.fixture(scope="module", autouse=True)
def library_loaded():
    """sentence-transformers takes seconds to import; paid once here, not inside a test."""
    import sentence_transformers  # noqa: F401


@pytest.fixture
def no_network(monkeypatch):
    """Every way out of this process refused, and no model kept from an earlier test."""
    from core.data import _sentence_encoder

    def refuse(*args, **kwargs):
        raise OSError("the network is blocked in this test")

    for name in ("connect", "connect_ex"):
        monkeypatch.setattr(socket.socket, name, refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(_sentence_encoder, "_MODELS", {})


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    return tmp_path


def test_a_text_run_with_sentence_embeddings_needs_no_network(no_network, home):
    from core.train import train_run

    seen = []
    raw = {"data": TINY, "model": {"name": "linear"},
           "train": {"epochs": 4, "lr": 0.05, "optimizer": "adamw", "batch_size": 32, "nc_every": 0, "min_steps": 0}}
    result = train_run(RunConfig.model_validate(raw), progress=lambda p: seen.append(p))
    splits = result.splits
    assert splits.x_train.shape[1] == 384 and splits.feature_names[0] == "note · meaning 1"
    np.testing.assert_allclose(splits.x_train.mean(axis=0), 0.0, atol=1e-4)  # standardised on the training rows
    encoding = [p for p in seen if p["stage"] == "encode text"]
    assert encoding and encoding[-1]["epoch"] == encoding[-1]["epochs"] == len(splits.y_train) + len(
        splits.y_val) + len(splits.y_test)
    assert list((home / "text-cache").rglob("*.npz")), "the embeddings were kept"


def test_embeddings_are_minilm_mean_pooled_and_normalised_as_computed_by_hand(no_network, home):
    import torch
    from transformers import AutoModel, AutoTokenizer

    from core.data import create_text_encoder, minilm_path, offline_hub

    ours = create_text_encoder("minilm").transform(TEXTS)
    with offline_hub():
        tokenizer = AutoTokenizer.from_pretrained(minilm_path(), local_files_only=True)
        model = AutoModel.from_pretrained(minilm_path(), local_files_only=True).eval()
    batch = tokenizer(TEXTS, padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.no_grad():
        tokens = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    expected = torch.nn.functional.normalize(pooled, dim=1).numpy()
    np.testing.assert_allclose(ours, expected, atol=2e-5)


def test_a_second_encoding_reads_the_cache_and_a_damaged_file_is_encoded_again(home, monkeypatch):
    from core.data import _sentence_encoder, create_text_encoder

    first = create_text_encoder("minilm").transform(TEXTS)

    def must_not_encode(self, texts, progress):
        raise AssertionError(f"encoded {len(texts)} texts again")

    with monkeypatch.context() as patch:
        patch.setattr(_sentence_encoder.MiniLmEncoder, "_encode", must_not_encode)
        again = create_text_encoder("minilm").transform(list(reversed(TEXTS)))
    np.testing.assert_array_equal(again, first[::-1])
    for path in (home / "text-cache").rglob("*.npz"):
        path.write_bytes(b"not an npz")
    np.testing.assert_allclose(create_text_encoder("minilm").transform(TEXTS), first, atol=1e-6)


def first_case_words(run):
    """(integrated-gradient words of the run's first test case towards its true class, the
    run's own score of that class, the note) for a run on sentence embeddings."""
    import torch

    from core.analysis import transformer_word_attribution

    splits, art = run.splits, run.artifacts
    model = run.model.cpu().eval()
    block = next(b for b in splits.columns if b.role == "text")
    scaling = splits.feature_mean[block.start:block.stop], splits.feature_std[block.start:block.stop]
    row, target = int(art.test_index[0]), int(art.labels[0])
    text = str(splits.texts_test[row, 0])
    words = transformer_word_attribution(splits.text_encoders[0], model, text, splits.x_test[row],
                                         (block.start, block.stop), *scaling, target)
    with torch.no_grad():
        stored = float(model(torch.from_numpy(splits.x_test[row:row + 1]))[0, target])
    return words, stored, text


@pytest.fixture(scope="module")
def minilm_run(tmp_path_factory):
    from core.train import train_run

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TAILSCOPE_HOME", str(tmp_path_factory.mktemp("minilm")))
        raw = {"data": TINY, "model": {"name": "mlp", "hidden": 32},
               "train": {"epochs": 5, "lr": 0.01, "optimizer": "adamw", "batch_size": 32, "nc_every": 0,
                         "min_steps": 0}}
        return train_run(RunConfig.model_validate(raw))


@pytest.mark.slow  # 300 integration steps through MiniLM: about 5 s on a busy 2-core machine
def test_integrated_gradients_through_minilm_are_complete_within_one_percent(minilm_run):
    words, stored, text = first_case_words(minilm_run)
    assert words.score == pytest.approx(stored, abs=1e-3), "the path through MiniLM gives the run's own score"
    change = words.score - words.baseline_score
    assert abs(change) > 0.05
    assert words.attribution.sum() + words.unplaced == pytest.approx(change, rel=0.01)
    assert words.relative_error < 0.01 and words.words == text.split()
    _the_report_colours_the_note_once_coloured_on_the_page(minilm_run, words)



def _the_report_colours_the_note_once_coloured_on_the_page(run, words) -> None:
    """The HTML report of a sentence-embedding run: a note the page coloured through MiniLM
    (kept in the session) is coloured there too, towards both classes; another note says how
    to colour it."""
    import html
    import re
    import types

    import pandas as pd
    import streamlit as st

    from app.text_view import LANGUAGE_MODEL_WORDS, report_text_html

    art, splits = run.artifacts, run.splits
    true, pred = int(art.labels[0]), (int(art.labels[0]) + 1) % len(splits.class_names)
    bundle = types.SimpleNamespace(config=types.SimpleNamespace(model=types.SimpleNamespace(name="mlp")), artifacts=art,
                                   record=types.SimpleNamespace(id="run-1"))
    cases = pd.DataFrame({"row": [0, 1], "true": [true, int(art.labels[1])], "pred": [pred, pred],
                          "sample_id": ["a", "b"]})
    away = -words.attribution
    st.session_state[LANGUAGE_MODEL_WORDS] = {("run-1", "a", 0): [(true, words.spans, words.attribution),
                                                                  (pred, words.spans, away)]}
    maps = np.random.default_rng(0).normal(size=(2, splits.x_test.shape[1]))  # the page's maps: on no word
    coloured, plain = report_text_html(bundle, splits, cases, {"true": maps, "pred": -maps})
    assert len(re.findall(r"rgba\(\d+, \d+, \d+, 0\.(?!00\))", coloured)) >= len(words.words)

    def shown(fragment: str) -> str:
        return html.unescape(re.sub(r"<[^>]+>", "", fragment))

    assert "towards the true class, through the language model" in shown(coloured)
    assert "towards the predicted class, through the language model" in shown(coloured)
    assert not re.search(r"rgba\(\d+, \d+, \d+, 0\.(?!00\))", plain), "no word of the other note is shaded"
    assert "Colour the words through the language model" in shown(plain)

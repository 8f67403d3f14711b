"""MiniLM fine-tuned on the run's own training labels before its classifier is trained.

Decoupling (Kang et al. 2020) found that a long-tailed task learns its best representation
with plain, instance-balanced cross-entropy, and that the imbalance is then best corrected
in the classifier. So this encoder tunes MiniLM's top `layers` transformer layers (the
word-piece embeddings and the lower layers stay as pretrained) with a temporary linear head
and cross-entropy over the training texts in their natural mix; the head is thrown away,
and the run's own loss, sampler and two-stage fix then train its classifier on the tuned,
mean-pooled, unit-length embeddings, exactly as on the frozen ones.

Tuning is training, so its randomness (order, dropout, the temporary classifier) is seeded by
the encoder's `seed`, which an experiment over seeds sets to each training's own seed, as it
sets `train.seed`: the spread over seeds includes the tuning's.

What is tuned is a pure function of (texts, labels, settings, seed), so the tuned layers are
kept in the data folder (`text-cache/tuned/`, safetensors, no pickle) under the hash of all
of them, and the tuned model's embeddings beside them (a folder of the same name, by content
as the frozen model's): the pages that re-read a run's splits (the Error gallery, its word
attributions, scoring new cases) load the same weights and vectors instead of tuning and
encoding again. On a CPU tuning costs about
twice an encoding per epoch (minutes for a few thousand notes); a GPU makes it seconds.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
from pydantic import Field

from core.data._sentence_encoder import CACHE_FOLDER, MODEL_NAME, MiniLmEncoder, _device, _load, text_key
from core.data._text_encoders import TEXT_ENCODERS
from core.paths import tailscope_home
from core.registry import Params, Seed

__all__ = ["TunedMiniLmEncoder", "HEAD_SCALE", "HEAD_LR_FACTOR", "TUNING_SECONDS_PER_1000_CPU", "gpu_available"]

HEAD_SCALE = 16.0  # the head reads the unit-length embedding times this: a cosine classifier's usual scale
HEAD_LR_FACTOR = 20.0  # the new head learns this many times faster than the pretrained layers
# One pass over 1,000 short notes with the default settings on the 2-core CPU (measured: 10.1 s;
# bench/text_effect.py --tuned prints it for its machine); the Data page quotes it where there is no GPU.
TUNING_SECONDS_PER_1000_CPU = 10


def gpu_available() -> bool:
    """Whether texts are encoded and tuned on a GPU here."""
    return _device() == "cuda"


class TunedMiniLmParams(Params):
    layers: int = Field(2, ge=1, le=6, title="Top layers tuned",
                        description="How many of MiniLM's 6 transformer layers, counted from the top, learn from "
                                    "this data; the rest stay as pretrained. More can fit better and costs more.")
    epochs: int = Field(2, ge=1, le=20, title="Tuning passes",
                        description="Passes over the training texts while MiniLM is tuned.")
    learning_rate: float = Field(5e-5, gt=0, le=1e-2, title="Tuning learning rate",
                                 description="Step size for MiniLM's tuned layers (the temporary classifier "
                                             "learns 20 times faster).")
    batch_size: int = Field(32, ge=1, le=512, title="Texts per batch",
                            description="Texts per tuning step and per encoding batch.")
    max_words: int = Field(128, ge=8, le=256, title="Longest text read (word pieces)",
                           description="A text longer than this many word pieces is cut; MiniLM was trained on 128.")
    seed: Seed = Field(0, title="Tuning seed",
                      description="Seeds the tuning's order and dropout; repeating over seeds tunes each training "
                                  "with its own seed.")


@TEXT_ENCODERS.register(
    "minilm_tuned", display="Sentence meaning, fine-tuned (MiniLM; best on a GPU)", params=TunedMiniLmParams,
    description="MiniLM's top layers first learn this data's classes from the training labels (plain "
                "cross-entropy), then turn each text into 384 numbers for the classifier. On the built-in notes it "
                "raised balanced accuracy by 0.04-0.05 over the frozen model (8 seeds, beyond noise; the rarest "
                "class's F1 within noise). Minutes on a CPU for a few thousand texts.",
    paper="Kang et al., ICLR 2020, Decoupling representation and classifier; Wang et al., NeurIPS 2020, MiniLM "
          "(all-MiniLM-L6-v2)",
    frozen=False, words=False, supervised=True)
class TunedMiniLmEncoder(MiniLmEncoder):
    """Mean-pooled, L2-normalised embeddings of a MiniLM whose top layers were tuned on the
    training texts and labels; standardised by the training rows' mean and spread."""

    frozen = False
    supervised = True

    def __init__(self, *, layers: int, epochs: int, learning_rate: float, batch_size: int, max_words: int, seed: int):
        super().__init__(batch_size=batch_size, max_words=max_words)
        self.layers, self.epochs, self.learning_rate, self.seed = layers, epochs, learning_rate, seed
        self._model = self._tuned = None

    def fit_work(self, n_texts: int) -> int:
        return self.epochs * n_texts

    def sentence_model(self, device: str):
        if self._model is None:
            raise RuntimeError("fit the tuned encoder on the training texts first")
        return self._model.to(device)

    def tuned_file(self, texts: list[str], labels: np.ndarray) -> Path:
        """Where the layers tuned on exactly these texts, labels, settings and seed are kept."""
        digest = hashlib.sha256(json.dumps({
            "model": MODEL_NAME, "layers": self.layers, "epochs": self.epochs, "lr": self.learning_rate,
            "batch": self.batch_size, "max_words": self.max_words, "seed": self.seed}, sort_keys=True).encode())
        digest.update("\n".join(text_key(t) for t in texts).encode())
        digest.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
        return tailscope_home() / CACHE_FOLDER / "tuned" / f"{digest.hexdigest()[:32]}.safetensors"

    def _fit(self, texts: list[str], labels, progress) -> None:
        model = copy.deepcopy(_load(_device()))
        model.max_seq_length = self.max_words
        path = self.tuned_file(texts, labels)
        weights = _read_weights(path)
        if weights is None:
            weights = self._tune(model, texts, labels, progress)
            shutil.rmtree(path.with_suffix(""), ignore_errors=True)  # embeddings of an earlier tuning: not these
            _write_weights(path, weights)
        elif progress is not None:
            progress(self.fit_work(len(texts)), self.fit_work(len(texts)))
        missing = set(weights) - set(model[0].auto_model.state_dict())
        if missing:
            raise ValueError(f"{path.name}: tuned weights of another model ({sorted(missing)[:2]}); delete the file")
        model[0].auto_model.load_state_dict(weights, strict=False)
        self._model, self._tuned = model.eval(), path

    def cache_folder(self) -> Path:
        """The tuned model's own embeddings, beside its layers: a page that re-reads the run's
        splits, or a second method on the same texts and labels, reads them back."""
        if self._tuned is None:
            raise RuntimeError("fit the tuned encoder on the training texts first")
        return self._tuned.with_suffix("")

    def _tune(self, model, texts: list[str], labels: np.ndarray, progress) -> dict:
        """Cross-entropy through the top `layers` layers and a temporary head, seeded; returns
        the tuned layers' weights (CPU tensors)."""
        import torch

        bert, tokenizer = model[0].auto_model, model[0].tokenizer
        blocks = bert.encoder.layer[len(bert.encoder.layer) - self.layers:]
        bert.requires_grad_(False)
        blocks.requires_grad_(True)
        device = next(bert.parameters()).device
        total = self.fit_work(len(texts))
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(self.seed)
            head = torch.nn.Linear(bert.config.hidden_size, int(labels.max()) + 1).to(device)
            optimiser = torch.optim.AdamW([{"params": blocks.parameters(), "lr": self.learning_rate},
                                           {"params": head.parameters(), "lr": self.learning_rate * HEAD_LR_FACTOR}])
            order = torch.Generator().manual_seed(self.seed)
            target = torch.as_tensor(labels, dtype=torch.long)
            bert.eval()
            blocks.train()  # dropout where learning happens, as in fine-tuning
            done = 0
            for _ in range(self.epochs):
                for batch in torch.randperm(len(texts), generator=order).split(self.batch_size):
                    tokens = tokenizer([texts[i] for i in batch.tolist()], padding=True, truncation=True,
                                       max_length=self.max_words, return_tensors="pt").to(device)
                    hidden = bert(**tokens).last_hidden_state
                    mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                    logits = head(HEAD_SCALE * torch.nn.functional.normalize(pooled, dim=1))
                    loss = torch.nn.functional.cross_entropy(logits, target[batch].to(device))
                    optimiser.zero_grad(set_to_none=True)
                    loss.backward()
                    optimiser.step()
                    done += len(batch)
                    if progress is not None:
                        progress(done, total)
        bert.requires_grad_(False)
        prefix = f"encoder.layer.{len(bert.encoder.layer) - self.layers}"
        tuned = [n for n, _ in bert.named_parameters() if _layer_at_or_above(n, prefix)]
        state = bert.state_dict()
        return {n: state[n].detach().to("cpu").contiguous().clone() for n in tuned}


def _layer_at_or_above(name: str, first: str) -> bool:
    """Whether parameter `name` belongs to transformer layer `first`'s number or a higher one."""
    if not name.startswith("encoder.layer."):
        return False
    return int(name.split(".")[2]) >= int(first.split(".")[2])


def _read_weights(path: Path) -> dict | None:
    """The tuned layers kept at `path`, or None when there is none or it cannot be read (a
    damaged file is tuned again)."""
    if not path.is_file():
        return None
    try:
        from safetensors.torch import load_file

        return load_file(str(path))
    except Exception:  # a half-copied or damaged file: tune again
        return None


def _write_weights(path: Path, weights: dict) -> None:
    """Written whole, then renamed into place: a reader never sees half a file."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp")
    save_file(weights, str(tmp))
    os.replace(tmp, path)

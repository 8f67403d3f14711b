"""Word attributions for runs on sentence embeddings: integrated gradients through the
frozen MiniLM encoder and the run's classifier, on the token embeddings.

The run's model sees a note only through its 384 embedding numbers, which are no words.
So the whole path is differentiated: token ids -> MiniLM (the run's own copy when it was
fine-tuned) -> mean pooling -> unit length ->
the run's standardisation -> its classifier, and captum's LayerIntegratedGradients
integrates along the straight line from a baseline (every word piece replaced by the
padding token, the [CLS] and [SEP] markers kept) to the note, in the space of the word
embedding layer. Its completeness says the token attributions sum to the score change
from baseline to note; `delta` reports how far the numerical integral is from that.
Word pieces are summed into the whitespace-separated words they come from. Gauss-Legendre
steps are doubled from 300 until the integral is within 0.5 % of the score change (a test
checks 1 %).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.data import word_spans

__all__ = ["TransformerWords", "transformer_word_attribution"]


@dataclass(frozen=True)
class TransformerWords:
    """One note's words, each word's attribution to the score of `target`, and the
    integral's check: `sum(words) + unplaced` should equal `score - baseline_score`."""

    words: list[str]
    spans: list[tuple[int, int]]
    attribution: np.ndarray
    unplaced: float  # on word pieces of no word (the [CLS] / [SEP] markers stay as in the baseline: 0)
    score: float
    baseline_score: float
    delta: float  # captum's convergence delta: attribution total minus the score change

    @property
    def relative_error(self) -> float:
        change = self.score - self.baseline_score
        return abs(self.delta) / max(abs(change), 1e-12)


def transformer_word_attribution(encoder, classifier: torch.nn.Module, text: str, features: np.ndarray,
                                 block: tuple[int, int], mean: np.ndarray, std: np.ndarray, target: int, *,
                                 steps: int = 300, max_steps: int = 2400, tolerance: float = 0.005,
                                 device: str = "cpu") -> TransformerWords:
    """Integrated gradients of the classifier's `target` score for `text`, the case's other
    `features` (the full row, its text block replaced by the note's embedding) held fixed;
    `mean` / `std` are the run's scaling of that block. The steps double (up to
    `max_steps`) until the integral is within `tolerance` of the score change."""
    from captum.attr import LayerIntegratedGradients

    sentence = encoder.sentence_model(device)
    bert, tokenizer = sentence[0].auto_model, sentence[0].tokenizer
    batch = tokenizer([text], return_offsets_mapping=True, return_tensors="pt", truncation=True,
                      max_length=encoder.max_words)
    ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
    special = torch.tensor([t in tokenizer.all_special_ids for t in ids[0].tolist()], device=device)
    baseline = torch.where(special, ids[0], torch.full_like(ids[0], tokenizer.pad_token_id)).unsqueeze(0)
    row = torch.as_tensor(np.asarray(features, dtype=np.float32), device=device).reshape(1, -1)
    start, stop = block
    shift = torch.as_tensor(mean, dtype=torch.float32, device=device)
    scale = torch.as_tensor(std, dtype=torch.float32, device=device)

    def score(input_ids: torch.Tensor) -> torch.Tensor:
        n = input_ids.shape[0]
        attention = mask.expand(n, -1)
        tokens = bert(input_ids=input_ids, attention_mask=attention).last_hidden_state
        weights = attention.unsqueeze(-1).to(tokens.dtype)
        pooled = (tokens * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        embedding = torch.nn.functional.normalize(pooled, dim=1)
        x = row.expand(n, -1).clone()
        x[:, start:stop] = (embedding - shift) / scale
        return classifier(x)[:, target]

    was_training = classifier.training
    classifier.eval()
    try:
        explainer = LayerIntegratedGradients(score, bert.embeddings.word_embeddings)
        with torch.no_grad():
            value, base = float(score(ids)[0]), float(score(baseline)[0])
        while True:  # more steps until the integral is within `tolerance` of the score change
            attributions, delta = explainer.attribute(ids, baselines=baseline, n_steps=steps, method="gausslegendre",
                                                      internal_batch_size=64, return_convergence_delta=True)
            if abs(float(delta.reshape(-1)[0])) <= tolerance * abs(value - base) or steps >= max_steps:
                break
            steps *= 2
    finally:
        classifier.train(was_training)
    per_token = attributions.sum(-1)[0].detach().double().cpu().numpy()
    spans = word_spans(text)
    words = np.zeros(len(spans))
    placed = np.zeros(len(per_token), dtype=bool)
    for i, (a, b) in enumerate(batch["offset_mapping"][0].tolist()):
        if b <= a:
            continue
        for w, (ws, we) in enumerate(spans):
            if ws <= a < we:
                words[w] += per_token[i]
                placed[i] = True
                break
    return TransformerWords([text[a:b] for a, b in spans], spans, words, float(per_token[~placed].sum()), value, base,
                            float(delta.detach().cpu().reshape(-1)[0]))

"""Free-text columns of a split turned into features, fitted on the training rows only.

`prepare_splits` calls `encode_text_splits` after the table's own columns are scaled: one
encoder per text column, fitted on that column's training texts (a frozen encoder, which
learns nothing from the data, encodes each text alone and may use its cache), applied to
validation and test, and the blocks appended after the table's features.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.data._dataset import FeatureBlock
from core.data._text_encoders import TEXT_ENCODERS, TextEncoder

__all__ = ["TextFeatures", "encode_text_splits", "DEFAULT_TEXT_ENCODER"]

DEFAULT_TEXT_ENCODER = "tfidf"


@dataclass(frozen=True)
class TextFeatures:
    """The encoded blocks of every text column: features of each split, their names, the
    blocks (positions counted from 0 within the text part), the fitted encoders, and the
    scaling applied to each feature (mean 0 and spread 1 where none was)."""

    parts: tuple[np.ndarray, ...]  # train, then each of the other splits
    names: tuple[str, ...]
    blocks: tuple[FeatureBlock, ...]
    encoders: tuple[TextEncoder, ...]
    mean: np.ndarray
    std: np.ndarray


def _spec(spec: Any) -> tuple[str, dict]:
    """(name, params) from a config section (a PluginSpec), a mapping or None (the default)."""
    if spec is None:
        return DEFAULT_TEXT_ENCODER, {}
    if isinstance(spec, Mapping):
        values = dict(spec)
        return values.pop("name", DEFAULT_TEXT_ENCODER), values
    return spec.name, dict(spec.params)


def encode_text_splits(text_names: Sequence[str], spec: Any, train: np.ndarray, others: Sequence[np.ndarray],
                       progress=None, *, labels: np.ndarray | None = None,
                       labelled: np.ndarray | None = None) -> TextFeatures:
    """Encode texts (N, T) of the training split and of `others` (each (n, T)) with one
    encoder per column, fitted on `train` alone; frozen encoders' features standardised
    with the training rows' mean and spread when the encoder asks for it. A supervised
    encoder learns from the training `labels` of the rows in `labelled` (indices; default
    all: a run that hides labels passes the rows it keeps)."""
    name, params = _spec(spec)
    rows = np.arange(len(train)) if labelled is None else np.asarray(labelled, dtype=np.int64)
    probe = TEXT_ENCODERS.create(name, params)
    tuning = probe.fit_work(len(rows)) if probe.supervised else 0
    total = (sum(len(split) for split in (train, *others)) + tuning) * len(text_names)
    done = [0]

    def counted(split_done: int, split_total: int, *, before: int) -> None:
        progress(before + split_done, total)

    parts: list[list[np.ndarray]] = [[] for _ in range(1 + len(others))]
    names, blocks, encoders, means, stds = [], [], [], [], []
    start = 0
    for t, column in enumerate(text_names):
        encoder = TEXT_ENCODERS.create(name, params)
        if encoder.supervised:
            if labels is None:
                raise ValueError(f"{TEXT_ENCODERS.info(name).label} learns from the training labels, which this "
                                 "split does not give")
            report = None if progress is None else functools.partial(counted, before=done[0])
            encoder.fit(train[rows, t].tolist(), labels[rows], progress=report)
            done[0] += tuning
        elif not encoder.frozen:
            encoder.fit(train[:, t].tolist())
        encoded = []
        for split in (train, *others):
            report = None if progress is None else functools.partial(counted, before=done[0])
            encoded.append(encoder.transform(split[:, t].tolist(), report))
            done[0] += len(split)
        width = encoded[0].shape[1]
        mean, std = np.zeros(width), np.ones(width)
        if encoder.standardise and len(encoded[0]):
            mean = encoded[0].mean(axis=0, dtype=np.float64)
            std = encoded[0].std(axis=0, dtype=np.float64)
            std[std < 1e-12] = 1.0
            encoded = [((e - mean) / std).astype(np.float32) for e in encoded]
        for i, e in enumerate(encoded):
            parts[i].append(e)
        names += [f"{column} · {n}" for n in encoder.feature_names()]
        blocks.append(FeatureBlock(column, "text", start, start + width))
        encoders.append(encoder)
        means.append(mean)
        stds.append(std)
        start += width
    stacked = tuple(np.hstack(p).astype(np.float32) if p else np.zeros((0, 0), np.float32) for p in parts)
    return TextFeatures(stacked, tuple(names), tuple(blocks), tuple(encoders), np.concatenate(means),
                        np.concatenate(stds))

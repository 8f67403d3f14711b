"""Multi-label data: the dataset record and two offline built-ins (`MULTILABEL_DATASETS`).

A `MultiLabelDataset` is a single-label `Dataset`'s counterpart: features plus an (n, L)
label matrix (`core.data._label_matrix`: 1 present, 0 absent, NaN unknown) and one name per
label. It is a registry of its own because a single-label built-in's contract (one class
per case, every class present) does not hold for it, and no single-label picker should
offer it until training takes label matrices.

Both built-ins have long-tailed label frequencies on purpose: label 0 is the most common,
the last the rarest, and the rare labels co-occur with common ones, as rare findings do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import Field
from sklearn import datasets as skds

from core.data._dataset import FeatureBlock, Modality
from core.data._label_matrix import as_label_matrix, label_counts
from core.registry import Params, Registry, Seed

__all__ = ["MULTILABEL_DATASETS", "MultiLabelDataset", "load_multilabel_builtin"]

MULTILABEL_DATASETS: Registry[MultiLabelDataset] = Registry("multilabel_dataset")


@dataclass(frozen=True)
class MultiLabelDataset:
    """Features (float32: (n, F) tables, (n, C, H, W) pictures in [0, 1]), the label matrix
    and the label names."""

    name: str
    x: np.ndarray
    y: np.ndarray
    label_names: tuple[str, ...]
    modality: Modality
    feature_names: tuple[str, ...] | None = None
    columns: tuple[FeatureBlock, ...] | None = None  # an uploaded table's columns (gaps filled per column)

    def __post_init__(self) -> None:
        y = as_label_matrix(self.y, num_labels=len(self.label_names), what=f"{self.name} labels")
        object.__setattr__(self, "y", y)
        if len(self.x) != len(y):
            raise ValueError(f"{self.name}: {len(self.x)} cases but {len(y)} label rows")
        if len(set(self.label_names)) != len(self.label_names):
            raise ValueError(f"{self.name}: label names must be distinct")

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def label_counts(self) -> np.ndarray:
        return label_counts(self.y)


def _tail_probabilities(num_labels: int, ratio: float) -> np.ndarray:
    """p_c proportional to ratio^(-c/(L-1)): label 0 `ratio` times as likely as the last."""
    return ratio ** (-np.arange(num_labels) / max(num_labels - 1, 1))


class TableParams(Params):
    n_samples: int = Field(1500, ge=100, le=50000, title="Cases", description="Number of rows drawn.")
    n_features: int = Field(20, ge=2, le=500, title="Features", description="Number of numeric columns.")
    n_labels: int = Field(8, ge=3, le=50, title="Findings", description="Number of labels a row may carry.")
    ratio: float = Field(30.0, ge=1.0, le=1000.0, title="Head-to-tail ratio",
                         description="How many times more often the most common finding is drawn than the rarest.")
    seed: Seed = Field(0, title="Random seed", description="Seed that draws the rows.")


@MULTILABEL_DATASETS.register(
    "multilabel_table", display="Generated multi-label table",
    description="Numeric rows that each carry one or more of several findings, the findings long-tailed in how "
                "often they occur.",
    paper="scikit-learn's multi-label problem generator (after McCallum 1999's multi-label document model)",
    params=TableParams, modality="tabular",
)
def multilabel_table(n_samples: int, n_features: int, n_labels: int, ratio: float, seed: int) -> MultiLabelDataset:
    """Rows from `make_multilabel_classification` over a pool ten times larger, then
    `n_samples` rows drawn without replacement with weights that follow each row's rarest
    label's place in the tail, so label frequencies fall steeply from label 0 (sklearn draws
    its own label prior; labels are renumbered by that prior first, most common first)."""
    rng = np.random.default_rng(seed)
    pool = 10 * n_samples
    x, y = skds.make_multilabel_classification(n_samples=pool, n_features=n_features, n_classes=n_labels,
                                               n_labels=2, allow_unlabeled=False, random_state=seed)
    y = y[:, np.argsort(-y.sum(axis=0), kind="stable")]
    p = _tail_probabilities(n_labels, ratio)
    weight = np.where(y == 1, p, np.inf).min(axis=1)
    keep = np.sort(rng.choice(pool, n_samples, replace=False, p=weight / weight.sum()))
    x = x[keep]
    x = ((x - x.mean(axis=0)) / (x.std(axis=0) + 1e-9)).astype(np.float32)
    names = tuple(f"finding {c + 1}" for c in range(n_labels))
    return MultiLabelDataset("multilabel_table", x, y[keep], names, "tabular",
                             tuple(f"feature {j + 1}" for j in range(n_features)))


class DigitsParams(Params):
    n_samples: int = Field(1500, ge=100, le=20000, title="Pictures", description="Number of pictures composed.")
    ratio: float = Field(30.0, ge=1.0, le=1000.0, title="Head-to-tail ratio",
                         description="How many times more often digit 0 is drawn than digit 9.")
    seed: Seed = Field(0, title="Random seed", description="Seed that composes the pictures.")


@MULTILABEL_DATASETS.register(
    "multilabel_digits", display="Pictures of one to three digits",
    description="Grey 16x16 pictures holding one to three different handwritten digits; each digit shown is a "
                "finding, digit 0 common and digit 9 rare.",
    paper="Composed from Alpaydin & Kaynak 1998, UCI Optical Recognition of Handwritten Digits (scikit-learn)",
    params=DigitsParams, modality="image",
)
def multilabel_digits(n_samples: int, ratio: float, seed: int) -> MultiLabelDataset:
    """Each picture: 1-3 digits (equally likely), distinct, drawn with probabilities falling
    geometrically from 0 to 9, each a random 8x8 scan of that digit placed in its own random
    quarter of a 16x16 canvas."""
    rng = np.random.default_rng(seed)
    digits = skds.load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    by_digit = [np.flatnonzero(digits.target == d) for d in range(10)]
    p = _tail_probabilities(10, ratio)
    p = p / p.sum()
    x = np.zeros((n_samples, 1, 16, 16), dtype=np.float32)
    y = np.zeros((n_samples, 10), dtype=np.float64)
    corners = [(0, 0), (0, 8), (8, 0), (8, 8)]
    for i in range(n_samples):
        count = int(rng.integers(1, 4))
        chosen = rng.choice(10, size=count, replace=False, p=p)
        places = rng.choice(4, size=count, replace=False)
        for digit, place in zip(chosen, places):
            r, c = corners[place]
            x[i, 0, r:r + 8, c:c + 8] = images[rng.choice(by_digit[digit])]
            y[i, digit] = 1
    return MultiLabelDataset("multilabel_digits", x, y, tuple(f"digit {d}" for d in range(10)), "image")


def load_multilabel_builtin(name: str, params: dict | None = None) -> MultiLabelDataset:
    """A multi-label built-in by name (unknown names fail listing the known ones)."""
    return MULTILABEL_DATASETS.create(name, params)

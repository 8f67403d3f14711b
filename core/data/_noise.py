"""Label noise on purpose (`LABEL_NOISE`): real long-tailed data is also mislabelled, and a
rare class suffers most, since a few wrong labels are a large share of its rows (RCAL,
Zhang et al. 2022; Wei et al. 2021).

Rules every kind shares, so a lesson can count on them:
- Applied after the imbalance profile (and after hiding labels, `data.unlabeled`) to the
  labelled training rows; validation is corrupted the same way with its own stream,
  because a user of noisy data has no clean labels to choose epochs with; the test split
  is never touched, so reported accuracy is accuracy against the truth.
- Exactly `exact_count(rate, n) = floor(rate * n + 0.5)` rows change (rate counted over
  the kind's candidate rows: all rows, or the tail-class rows for `tail`), drawn uniformly
  without replacement over those rows (not per class: each class loses the same share on
  average) from a generator seeded by the spec's own `seed`, so the same seed
  corrupts the same rows. A corrupted row always gets a class other than its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from core.data._groups import class_groups
from core.registry import NoParams, Params, Registry

__all__ = ["LABEL_NOISE", "LabelNoise", "exact_count", "corrupt_labels", "label_damage_table", "damage_by_group",
           "most_similar_class"]

LABEL_NOISE: Registry[LabelNoise] = Registry("label noise")


def exact_count(rate: float, n: int) -> int:
    """How many of `n` rows a `rate` corrupts: rate x n rounded half up (0.5 -> 1, 2.5 -> 3)."""
    return int(np.floor(rate * n + 0.5))


class LabelNoise:
    """One kind of corruption. `corrupt` checks its inputs and picks the rows; the private
    hooks say which rows may be picked and which class each picked row gets."""

    def __init__(self, **params) -> None:
        self.params = params

    def corrupt(self, y: np.ndarray, *, rate: float, seed: int, num_classes: int, x: np.ndarray | None = None,
                groups: Sequence[str] | None = None, stream: int = 0,
                reference: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """Noisy copy of `y`. `x`: the rows' features; pair noise compares class means of
        `reference` (features, labels), by default (x, y) (validation passes the training
        rows, so both splits swap the same pairs); `groups`: head/medium/tail per class
        (tail noise); `stream`: 0 for training, 1 for validation, so the two splits draw
        independently from one seed."""
        y = np.asarray(y)
        if y.ndim != 1 or (len(y) and (y.min() < 0 or y.max() >= num_classes)):
            raise ValueError(f"labels must be a 1-D array of class indices 0..{num_classes - 1}")
        if not 0 <= rate < 1:
            raise ValueError(f"label noise rate must lie in [0, 1), got {rate}")
        if num_classes < 2:
            raise ValueError("label noise needs at least two classes")
        rng = np.random.default_rng([seed, stream])
        candidates = self._candidate_rows(y, groups)
        chosen = np.sort(rng.choice(candidates, size=exact_count(rate, len(candidates)), replace=False))
        noisy = y.copy()
        if len(chosen):
            ref = reference if reference is not None else (x, y)
            noisy[chosen] = self._new_labels(y, chosen, rng, num_classes=num_classes, reference=ref, groups=groups)
        return noisy

    def _candidate_rows(self, y: np.ndarray, groups: Sequence[str] | None) -> np.ndarray:
        return np.arange(len(y))

    def _new_labels(self, y, chosen, rng, *, num_classes, reference, groups) -> np.ndarray:
        raise NotImplementedError


def _uniform_other(true: np.ndarray, allowed: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each true label, a class drawn uniformly from `allowed` minus that label."""
    out = np.empty(len(true), dtype=np.int64)
    for j in np.unique(true):
        rows = np.flatnonzero(true == j)
        options = allowed[allowed != j]
        if len(options) == 0:
            raise ValueError(f"class {j} has no other class to be mislabelled as")
        out[rows] = rng.choice(options, size=len(rows))
    return out


@LABEL_NOISE.register(
    "symmetric", display="Random wrong class",
    description="Chosen rows get a wrong class picked at random: every other class equally likely.",
    paper="Van Rooyen et al. 2015; Patrini et al. 2017", params=NoParams)
class SymmetricNoise(LabelNoise):
    """Uniform over the other K-1 classes: noise that carries no information about the data."""

    def _new_labels(self, y, chosen, rng, *, num_classes, reference, groups) -> np.ndarray:
        return _uniform_other(y[chosen], np.arange(num_classes), rng)


class PairParams(Params):
    to: Literal["nearest_mean", "next_class"] = Field(
        "nearest_mean", title="Wrong class chosen as",
        json_schema_extra={"choice_labels": {"nearest_mean": "the most similar class", "next_class": "the next class"}},
        description="nearest_mean: the class whose average training row is closest; "
                                    "next_class: class j+1 (the last wraps to the first)")


def most_similar_class(x: np.ndarray, y: np.ndarray, num_classes: int) -> np.ndarray:
    """For each class, the other class whose mean training row (features flattened) is
    nearest in Euclidean distance; ties to the lower index; -1 for a class without rows.
    Classes without rows are never a target."""
    from scipy.spatial.distance import cdist

    flat = np.asarray(x).reshape(len(x), -1)  # a view: large image sets are not copied
    present = np.bincount(y, minlength=num_classes) > 0
    if present.sum() < 2:
        raise ValueError("pair noise needs at least two classes with training rows")
    means = np.zeros((num_classes, flat.shape[1]))
    for j in np.flatnonzero(present):
        means[j] = flat[y == j].mean(axis=0, dtype=np.float64)
    dist = cdist(means, means)
    dist[:, ~present] = np.inf
    np.fill_diagonal(dist, np.inf)
    target = np.argmin(dist, axis=1)
    return np.where(present, target, -1)


@LABEL_NOISE.register(
    "pair", display="Swap with a look-alike class",
    description="Chosen rows get the one class most like their own (nearest average example), as people "
                "confuse look-alikes.",
    paper="Han et al. 2018 (Co-teaching); Patrini et al. 2017", params=PairParams)
class PairNoise(LabelNoise):
    """Asymmetric: every corrupted row of class j goes to one fixed class, so the noise is
    structured and harder to spot than random flips."""

    def _new_labels(self, y, chosen, rng, *, num_classes, reference, groups) -> np.ndarray:
        if self.params.get("to", "nearest_mean") == "next_class":
            return (y[chosen] + 1) % num_classes
        ref_x, ref_y = reference
        if ref_x is None or len(ref_x) != len(ref_y):
            raise ValueError("pair noise towards the nearest class mean needs the rows' features")
        target = most_similar_class(ref_x, np.asarray(ref_y), num_classes)[y[chosen]]
        if (target < 0).any():
            raise ValueError("pair noise: a class has no training rows to find its look-alike from")
        return target


class TailParams(Params):
    to: Literal["any", "not_tail"] = Field(
        "any", title="Wrong class drawn from",
        json_schema_extra={"choice_labels": {"any": "any other class", "not_tail": "head or medium classes"}},
        description="any: any other class; not_tail: a head-class or medium class, as when rare cases are "
                    "filed under common ones")


@LABEL_NOISE.register(
    "tail", display="Wrong labels in rare classes only",
    description="Only rows of the rare (tail) classes get a wrong class; the rate counts over those rows alone.",
    paper="Zhang et al. 2022 (RCAL); Wei et al. 2021", params=TailParams)
class TailNoise(LabelNoise):
    """Tail-targeted: candidates are the rows whose class is in the tail group of the
    labelled training counts (`class_groups` with data.many_shot / few_shot, the groups
    every page shows), and `rate` counts over those rows, so rate 0.4 mislabels 40 % of the
    tail rows and no head or medium row."""

    def _candidate_rows(self, y: np.ndarray, groups: Sequence[str] | None) -> np.ndarray:
        if groups is None:
            raise ValueError("tail noise needs the class groups")
        tail = np.flatnonzero(np.asarray(groups) == "tail")
        return np.flatnonzero(np.isin(y, tail))

    def _new_labels(self, y, chosen, rng, *, num_classes, reference, groups) -> np.ndarray:
        allowed = np.arange(num_classes)
        if self.params.get("to", "any") == "not_tail":
            allowed = np.flatnonzero(np.asarray(groups) != "tail")
        return _uniform_other(y[chosen], allowed, rng)


def corrupt_labels(spec, y: np.ndarray, *, num_classes: int, x: np.ndarray | None, train_counts: Sequence[int],
                   many: int, few: int, stream: int = 0,
                   reference: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """`y` corrupted as a `LabelNoiseSpec` asks; groups come from the clean labelled
    training counts, so training and validation corrupt the same classes."""
    noise = LABEL_NOISE.create(spec.name, spec.params)
    groups = class_groups(np.asarray(train_counts), many=many, few=few)
    return noise.corrupt(y, rate=spec.rate, seed=spec.seed, num_classes=num_classes, x=x, groups=groups,
                         stream=stream, reference=reference)


def label_damage_table(splits, many: int = 100, few: int = 20) -> pd.DataFrame | None:
    """Per class (by true class, index order): training rows, corrupted rows and hidden
    rows with their shares; None when the run neither corrupts nor hides labels.

    Shares: corrupted / labelled training rows of that true class; hidden / (labelled +
    hidden) rows of that class. Groups: of the labelled training counts, as tail noise uses.
    Uploaded unlabelled rows (true class unknown) are not counted."""
    clean, hidden_true = splits.y_train_clean, splits.y_unlabeled_true
    if clean is None and hidden_true is None:
        return None
    k = splits.num_classes
    true_train = splits.y_train if clean is None else clean
    labelled = np.bincount(true_train, minlength=k)
    corrupted = (np.bincount(true_train[clean != splits.y_train], minlength=k) if clean is not None
                 else np.zeros(k, dtype=np.int64))
    known = np.asarray(hidden_true if hidden_true is not None else [], dtype=np.int64)
    hidden = np.bincount(known[known >= 0], minlength=k)
    groups = class_groups(labelled, many=many, few=few)  # the groups tail noise picks from
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame({
            "class": list(splits.class_names), "group": groups,
            "labelled rows": labelled, "corrupted rows": corrupted,
            "corrupted share": np.where(labelled > 0, corrupted / np.maximum(labelled, 1), 0.0),
            "hidden rows": hidden,
            "hidden share": np.where(labelled + hidden > 0, hidden / np.maximum(labelled + hidden, 1), 0.0),
        })


def damage_by_group(table: pd.DataFrame) -> pd.DataFrame:
    """`label_damage_table` summed per group (head, medium, tail, in that order, groups
    present only): labelled, corrupted and hidden rows with the shares over the group."""
    from core.data._groups import GROUP_ORDER

    sums = table.groupby("group")[["labelled rows", "corrupted rows", "hidden rows"]].sum()
    sums = sums.reindex([g for g in GROUP_ORDER if g in sums.index])
    sums["corrupted share"] = sums["corrupted rows"] / sums["labelled rows"].clip(lower=1)
    sums["hidden share"] = sums["hidden rows"] / (sums["labelled rows"] + sums["hidden rows"]).clip(lower=1)
    return sums.reset_index()

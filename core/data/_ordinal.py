"""Labels whose classes are ordered stages (seen -> clicked -> bought; mild -> severe ->
fatal): the order a person gives them, and a built-in ordinal set generated offline.

A label is ordinal when `data.ordinal` lists its values from the first stage to the last,
or when a built-in dataset declares `ordinal=True` (its class order is then the stage
order). The classes are renumbered in stage order, so class index k is stage k + 1 for
every model; the ordinal models (`core.models`: proportional odds, PRESTO, separate
regressions) need that and are refused on other data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from pydantic import Field

from core.config import UPLOAD_PREFIX, DataConfig
from core.data._builtins import DATASETS
from core.data._dataset import Dataset
from core.data._errors import DataError
from core.registry import Params, Seed

__all__ = ["order_classes", "is_ordinal", "ordinal_stages"]


def is_ordinal(data: DataConfig) -> bool:
    """Whether the config's label is ordered stages (`data.ordinal`, or a built-in ordinal set)."""
    if data.ordinal is not None:
        return True
    return not data.source.startswith(UPLOAD_PREFIX) and bool(DATASETS.info(data.source).capabilities.get("ordinal"))


def order_classes(dataset: Dataset, order: Sequence[str]) -> Dataset:
    """The dataset with its classes renumbered in `order` (first stage to last) and marked
    ordinal; DataError when `order` is not exactly the label's values."""
    names = [str(n) for n in dataset.class_names]
    order = [str(o) for o in order]
    if sorted(order) != sorted(names):
        missing, unknown = sorted(set(names) - set(order)), sorted(set(order) - set(names))
        parts = ([f"missing {', '.join(map(repr, missing))}"] if missing else []) + (
            [f"not a value of the label: {', '.join(map(repr, unknown))}"] if unknown else [])
        raise DataError(f"data.ordinal must list every value of the label once, in stage order ({'; '.join(parts)}); "
                        f"the label's values: {', '.join(map(repr, names))}")
    new_index = np.array([order.index(n) for n in names], dtype=np.int64)
    return dataclasses.replace(
        dataset, y=new_index[dataset.y], y_test=None if dataset.y_test is None else new_index[dataset.y_test],
        class_names=tuple(order), ordinal=True)


class OrdinalStagesParams(Params):
    samples: int = Field(4000, ge=100, le=200_000, title="Rows", description="Rows drawn.")
    last_share: float = Field(0.03, ge=0.005, le=0.3, title="Share of the last stage",
                              description="About this share of rows reach the last, rare stage.")
    noise_features: int = Field(4, ge=0, le=200, title="Features that matter for nothing",
                                description="Columns of pure noise beside the five that matter: the more there are, "
                                            "the more a model learning from the rare stage alone over-fits.")
    shift: float = Field(0.7, ge=0, le=5, title="How much the last step differs",
                         description="Weight of the one feature that matters only for reaching the last stage "
                                     "(0: proportional odds holds exactly).")
    seed: Seed = Field(0, title="Random seed", description="Seed that draws the rows.")


_STAGES = ("seen", "clicked", "added to cart", "bought")
_SHARED = np.array([1.0, -0.8, 0.6, 0.4, 0.0])  # every boundary's weights; the fifth matters for the last step only
_CUMULATIVE = (0.55, 0.85)  # shares at or before 'seen' and 'clicked'; the last is set by last_share


def _intercept(score: np.ndarray, share: float) -> float:
    """alpha with mean sigmoid(alpha - score) = share, by bisection."""
    low, high = -30.0, 30.0
    for _ in range(80):
        mid = (low + high) / 2
        low, high = (mid, high) if np.mean(1 / (1 + np.exp(-(mid - score)))) < share else (low, mid)
    return (low + high) / 2


@DATASETS.register("ordinal_stages", display="Ordered stages (rare last stage)",
                   description="Generated shop visits as ordered stages: seen, clicked, added to cart, bought (about "
                               "3 %). The same features push a visit through every stage, and one more matters only "
                               "for the last step.",
                   paper="Generated after the simulations of Faletto & Bien, ICML 2023 (PRESTO): sparse differences "
                         "between adjacent boundaries",
                   params=OrdinalStagesParams, modality="tabular", ordinal=True)
def ordinal_stages(samples: int, last_share: float, noise_features: int, shift: float, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    shared = np.concatenate([_SHARED, np.zeros(noise_features)])
    x = rng.standard_normal((samples, len(shared)))
    last = shared.copy()
    last[4] += shift
    weights = [shared, shared, last]
    shares = (*_CUMULATIVE, 1 - last_share)
    cumulative = np.stack([1 / (1 + np.exp(-(_intercept(x @ w, s) - x @ w))) for w, s in zip(weights, shares)], 1)
    edges = np.concatenate([np.zeros((samples, 1)), np.maximum.accumulate(cumulative, axis=1), np.ones((samples, 1))], 1)
    u = rng.random(samples)[:, None]
    y = (u >= edges[:, 1:-1]).sum(axis=1).astype(np.int64)
    return Dataset("ordinal_stages", x.astype(np.float32), y, _STAGES, "tabular",
                   tuple(f"x{i + 1}" for i in range(x.shape[1])), ordinal=True)

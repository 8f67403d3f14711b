"""What an imbalance profile does to the training split, before anything trains: the class
order a person picks, the exact counts a run will see (the same seeded split, computed from
the labels alone), and the profile in plain words beside them; plus a first look at a
table's rows. Pure, so the Data page, the CLI and tests agree."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from core.config import DataConfig
from core.data._dataset import Dataset
from core.data._imbalance import class_statistics
from core.data._prepare import split_data

__all__ = ["CLASS_ORDERS", "class_order", "dataset_preview", "describe_profile", "imbalance_preview"]

CLASS_ORDERS = ("as is", "reversed", "random (seeded)", "custom")


def class_order(choice: str, k: int, seed: int = 0, custom: Sequence[int] = ()) -> list[int] | None:
    """Class indices from head to tail for an order choice (None: as given).

    `custom` lists the classes the user put first; the others follow in index order.
    """
    if choice == "as is":
        return None
    if choice == "reversed":
        return list(range(k))[::-1]
    if choice == "random (seeded)":
        return np.random.default_rng(seed).permutation(k).tolist()
    if choice == "custom":
        first = [int(c) for c in dict.fromkeys(custom) if 0 <= int(c) < k]
        return first + [c for c in range(k) if c not in first]
    raise ValueError(f"unknown class order {choice!r}; choose one of {', '.join(CLASS_ORDERS)}")


def _labels_only(dataset: Dataset) -> Dataset:
    """The dataset's labels with one dummy feature: splits depend on labels and seed only."""
    test = None if dataset.y_test is None else np.zeros((len(dataset.y_test), 1), np.float32)
    return Dataset(dataset.name, np.zeros((len(dataset.y), 1), np.float32), dataset.y, dataset.class_names,
                   "tabular", x_test=test, y_test=dataset.y_test)


def imbalance_preview(dataset: Dataset, data: DataConfig) -> dict[str, Any]:
    """Training counts before/after the profile (the exact split a run will use), groups
    and summary numbers, without copying the feature arrays."""
    splits = split_data(_labels_only(dataset), data.model_copy(update={"label_noise": None, "unlabeled": None}))
    before, after = splits.counts_before, splits.class_counts
    stats = class_statistics(after, dataset.class_names, many=data.many_shot, few=data.few_shot)
    group_classes = {g: sum(1 for x in stats["groups"] if x == g) for g in ("head", "medium", "tail")}
    return {
        "counts_before": before.tolist(), "counts_after": after.tolist(), "class_names": list(dataset.class_names),
        "groups": stats["groups"], "ratio_after": stats["imbalance_ratio"],
        "ratio_before": class_statistics(before)["imbalance_ratio"], "total_before": int(before.sum()),
        "total_after": stats["total"], "group_counts": stats["group_counts"], "group_classes": group_classes,
        "n_val": len(splits.y_val), "n_test": len(splits.y_test),
    }


def describe_profile(profile: str, ratio: float, mu: float, k: int, achieved: float | None = None,
                     natural: float | None = None) -> str:
    """What a profile does, in plain words. `achieved` is the ratio the training split really
    gets (whole samples round it), so the text and the numbers beside it agree."""
    if profile == "none":
        real = f" Here the largest class has **{natural:.0f} times** as many training examples as the smallest." \
            if natural is not None and natural >= 1.5 else ""
        return ("**No profile**: the training data keeps the class sizes it came with, so you see how the model "
                f"does on the imbalance the data really has.{real}")
    shown = ratio if achieved is None or abs(achieved - ratio) < 0.5 else achieved
    rare = f"the rarest class keeps about 1/{shown:.0f} as many examples as the most common one"
    if shown != ratio:
        rare += f" (you asked for 1/{ratio:g}; with this few examples the counts round to whole samples)"
    if profile == "exp":
        return (f"**Exponential** (as in the long-tail papers): each class keeps a fixed fraction of the "
                f"examples of the class before it, so a few classes stay large and many become small; {rare}.")
    if profile == "linear":
        return (f"**Linear**: class sizes go down in equal steps from the most common class to the rarest; "
                f"{rare}.")
    if profile == "step":
        n_min = int(round(mu * k))
        return (f"**Step**: {k - n_min} classes keep all their examples and the other {n_min} "
                f"(a fraction mu = {mu:g}) become rare at once; {rare}.")
    raise ValueError(f"unknown profile {profile!r}")


def dataset_preview(dataset: Dataset, rows: int = 100) -> pd.DataFrame:
    """The first rows of a table dataset, with its label as class names and its free text."""
    names = list(dataset.feature_names or [f"f{i}" for i in range(dataset.x.shape[1])])
    frame = pd.DataFrame(dataset.x[:rows], columns=names)
    for t, column in enumerate(dataset.text_names):
        frame.insert(t, column, dataset.texts[:rows, t])
    frame.insert(0, "label", [dataset.class_names[i] for i in dataset.y[:rows]])
    return frame

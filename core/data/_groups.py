"""Head / medium / tail groups of classes by training count (Liu et al. 2019, OLTR).

Lives in the data layer because a grouping is a property of the class counts alone;
analyses and pages import it from here, never the other way round.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["GROUP_ORDER", "class_groups", "head_to_tail_order"]

GROUP_ORDER: tuple[str, ...] = ("head", "medium", "tail")


def class_groups(class_counts: Sequence[int] | np.ndarray, many: int = 100, few: int = 20) -> list[str]:
    """Group of every class, in class-index order: 'head', 'medium' or 'tail'.

    Literature thresholds first (OLTR): head if count > `many`, tail if count < `few`,
    medium otherwise (both bounds inclusive). Small or scaled-down data sets often put
    every class in one group, which makes group views useless, so then the classes sorted
    by count are split into terciles instead: the top round(K/3) are head, the bottom
    round(K/3) tail, the rest medium. Equal counts always share a group (the group of the
    first of them in the sorted order), so a balanced data set stays a single group.
    With K < 3 the split is K=1: ['head']; K=2: head and tail (or two heads when equal).
    """
    counts = np.asarray(class_counts)
    if counts.ndim != 1 or counts.size == 0:
        raise ValueError("class_counts must be a non-empty 1-D array")
    if np.any(counts < 0):
        raise ValueError("class_counts must be non-negative")
    if few > many:
        raise ValueError(f"few ({few}) must not exceed many ({many})")

    literature = np.where(counts > many, "head", np.where(counts < few, "tail", "medium"))
    if np.unique(literature).size > 1:
        return literature.tolist()
    return _tercile_groups(counts)


def head_to_tail_order(counts: Sequence[int] | np.ndarray) -> np.ndarray:
    """Class indices from the most to the fewest training samples; ties keep index order.
    The order every per-class table and chart uses."""
    return np.argsort(-np.asarray(counts), kind="stable")


def _tercile_groups(counts: np.ndarray) -> list[str]:
    k = counts.size
    order = head_to_tail_order(counts)
    n_edge = max(1, round(k / 3))
    position_group = np.full(k, "medium", dtype=object)
    position_group[:n_edge] = "head"
    position_group[max(n_edge, k - n_edge):] = "tail"
    # Ties: every class takes the group of the first sorted position with its count.
    sorted_counts = counts[order]
    first_position = np.searchsorted(-sorted_counts, -sorted_counts, side="left")
    groups = np.empty(k, dtype=object)
    groups[order] = position_group[first_position]
    return groups.tolist()

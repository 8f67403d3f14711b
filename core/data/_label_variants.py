"""Class labels written several ways: "Yes" / "yes " / "YES", "1" / "1.0", folders "Cat" / "cat".

A spreadsheet typed by several people spells one class several ways, and each spelling
would silently become a class of its own (a 3-class problem out of a yes/no question).
Such values are found by a key that ignores case, surrounding spaces and how a number is
written, and then either merged (each group becomes its most common spelling), kept apart
on purpose, or, while nobody has said which, refused with the option to set: the choice is
`data.merge_labels` in the run's config, so a run is repeatable.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from core.data._errors import DataError, quoted

__all__ = ["LabelVariants", "LabelVariantsError", "find_label_variants", "label_key", "merge_label_variants",
           "quoted_forms", "variants_text"]

MERGE_OPTION = "data.merge_labels"


@dataclass(frozen=True)
class LabelVariants:
    """One class written several ways: the spelling a merge keeps (the most common) and
    every spelling with its number of rows, most common first."""

    name: str
    forms: tuple[str, ...]
    counts: tuple[int, ...]


def label_key(text: str) -> str:
    """What two spellings of one class share: a number's value ('1', '1.0', ' 01' -> '1'),
    else the text without case and surrounding spaces."""
    text = str(text).strip()
    try:
        number = float(text.replace("_", "x"))  # float() accepts '1_000'; a label with '_' is text
    except ValueError:
        return text.casefold()
    if not math.isfinite(number):
        return text.casefold()
    return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)


def _texts(values: Sequence | np.ndarray | pd.Series) -> pd.Series | None:
    """Filled labels as stripped text, or None when they are numbers (one spelling each)."""
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values).reshape(-1), dtype=object)
    if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        return None
    filled = series[series.notna()]
    return filled.astype("str").str.strip()


def find_label_variants(values: Sequence | np.ndarray | pd.Series) -> tuple[LabelVariants, ...]:
    """Every group of labels that differ only by case, surrounding spaces or number form,
    largest group first."""
    texts = _texts(values)
    if texts is None or texts.empty:
        return ()
    counts = Counter(texts.tolist())
    groups: dict[str, list[tuple[str, int]]] = {}
    for form, n in counts.items():
        if form:
            groups.setdefault(label_key(form), []).append((form, n))
    found = []
    for members in groups.values():
        if len(members) > 1:
            members.sort(key=lambda fn: (-fn[1], fn[0]))
            found.append(LabelVariants(members[0][0], tuple(f for f, _ in members), tuple(n for _, n in members)))
    return tuple(sorted(found, key=lambda g: (-sum(g.counts), g.name)))


def quoted_forms(group: LabelVariants) -> str:
    """"'Yes' (40), 'yes' (3), 'YES' (1)": every spelling of one class with its rows."""
    return ", ".join(f"{quoted(f, 32)} ({n:,})" for f, n in zip(group.forms, group.counts))


def variants_text(groups: Sequence[LabelVariants], shown: int = 3) -> str:
    """"'Yes', 'yes', 'YES'; '1', '1.0'" (and how many more groups)."""
    parts = [", ".join(quoted(f) for f in g.forms[:4]) + (f" and {len(g.forms) - 4} more" if len(g.forms) > 4 else "")
             for g in groups[:shown]]
    more = f"; and {len(groups) - shown} more groups" if len(groups) > shown else ""
    return "; ".join(parts) + more


class LabelVariantsError(DataError):
    """Labels written several ways and no choice yet whether they are one class: the page
    offers the merge from `groups`, the CLI prints the message."""

    def __init__(self, message: str, groups: tuple[LabelVariants, ...], where: str) -> None:
        super().__init__(message)
        self.groups = groups
        self.where = where


def merge_label_variants(values: Sequence | np.ndarray | pd.Series, merge: bool | None, filename: str, where: str
                         ) -> tuple[np.ndarray, tuple[LabelVariants, ...]]:
    """(labels to build classes from, the groups found). `merge` True: each group becomes its
    most common spelling; False: kept apart as written; None: a LabelVariantsError naming
    the file, where the labels are, the values and the option to set."""
    array = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    groups = find_label_variants(values)
    if not groups or merge is False:
        return array, groups
    if merge is None:
        raise LabelVariantsError(
            f"{filename}: {where} spells the same class in different ways (they differ only by capitals, spaces "
            f"or how a number is written): {variants_text(groups)}; set {MERGE_OPTION}: true to count each group as "
            "one class, or false to keep them apart.", groups, where)
    rename = {form: g.name for g in groups for form in g.forms}
    merged = np.array([rename.get(str(v).strip(), v) if pd.notna(v) else v for v in array.reshape(-1).tolist()],
                      dtype=object)
    return merged, groups

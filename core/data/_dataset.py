"""The in-memory dataset record every source produces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["Dataset", "Modality", "FeatureBlock", "PICTURE_IDS", "ROW_IDS", "as_ids", "case_id_words", "case_words",
           "row_ids", "as_texts"]

Modality = Literal["tabular", "image"]
ROW_IDS = "row"  # the identifier's name when a source has none of its own: the 1-based row number
PICTURE_IDS = "file"  # pictures are named by their file (its path inside the uploaded ZIP)


def as_texts(rows) -> np.ndarray:
    """Free text as a fixed-width unicode array (N, T) that `np.savez` stores without pickle;
    an empty cell is the empty text."""
    return np.asarray([[("" if v is None or v != v else str(v)) for v in row] for row in rows], dtype=str).reshape(
        len(rows), -1)


def as_ids(values) -> np.ndarray:
    """Case identifiers as fixed-width unicode text: what `np.savez` stores and `np.load`
    reads back without pickle (an object array would need it)."""
    return np.asarray([str(v) for v in values], dtype=str).reshape(-1)


def row_ids(n: int, first: int = 1) -> np.ndarray:
    """Row numbers first .. first+n-1 as identifiers."""
    return as_ids(range(first, first + n))


def case_id_words(name: str) -> str:
    """What a case's identifier is, in words for a sentence ("each case is named by its …")."""
    if name == ROW_IDS:
        return "row number (in an uploaded CSV as a spreadsheet shows it, the header being row 1)"
    if name == PICTURE_IDS:
        return "file name in the uploaded ZIP"
    if name == "test row":  # core.artifacts.OLD_RUN_IDS
        return "row in the test split (this run was stored before cases kept their own identifiers)"
    return f"{name} (the data's ID column)"


def case_words(name: str, value) -> str:
    """A case named as a person finds it: "patient_id P-00412", "row 14", "file cat/003.png"."""
    return f"{name} {value}"


@dataclass(frozen=True)
class FeatureBlock:
    """Where one original table column lives in `x`: features start..stop. A categorical
    column is one-hot over `categories`; a date is days since 1970-01-01; a text column is
    the features its text encoder made (only in a split: encoders are fitted on training
    rows). Lets a fill use the column's most frequent category and a page show a row in the
    file's own units."""

    name: str
    role: Literal["numeric", "categorical", "date", "text"]
    start: int
    stop: int
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dataset:
    """Features, integer labels 0..K-1 and class names; optionally a given test split.

    `x` is float32: (N, F) for tables, (N, C, H, W) for images in [0, 1]. Tables are
    stored unscaled; standardisation uses training statistics after the split. An uploaded
    table holds NaN where its missing-value policy is "fill"; the split fills them from
    training statistics. `columns` maps an uploaded table's features back to its columns.
    `label_variants` names labels the upload spelled several ways, as `data.merge_labels` left them.
    `texts` holds the free-text columns `text_names` as written (a text dataset's `x` may
    have no columns at all); a split turns them into features with the run's text encoder.
    `ids` / `ids_test` name each row of `x` / `x_test` as a person finds it again (an
    ID-like column's value, a picture's file name); `id_name` says what they are (the
    column's name, "file"). Without them a row is its 1-based row number (`case_ids`).
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]
    modality: Modality
    feature_names: tuple[str, ...] | None = None
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    columns: tuple[FeatureBlock, ...] | None = None
    label_variants: tuple = ()  # LabelVariants: classes the file spells several ways (merged or kept apart)
    ids: np.ndarray | None = None
    ids_test: np.ndarray | None = None
    id_name: str = ROW_IDS
    ordinal: bool = False  # the classes are ordered stages, first to last (`core.data._ordinal`)
    texts: np.ndarray | None = None  # (N, T) text of the free-text columns `text_names`, one row per row of `x`
    texts_test: np.ndarray | None = None  # the same for `x_test`
    text_names: tuple[str, ...] = ()  # free-text columns: encoded into features after the split

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"{self.name}: {len(self.x)} samples but {len(self.y)} labels")
        expected_ndim = 2 if self.modality == "tabular" else 4
        if self.x.ndim != expected_ndim:
            raise ValueError(f"{self.name}: {self.modality} data must be {expected_ndim}-D, got shape {self.x.shape}")
        k = len(self.class_names)
        for labels in (self.y, self.y_test):
            if labels is not None and len(labels) and (labels.min() < 0 or labels.max() >= k):
                raise ValueError(f"{self.name}: labels must lie in 0..{k - 1}")
        for ids, x in ((self.ids, self.x), (self.ids_test, self.x_test)):
            if ids is not None and x is not None and len(ids) != len(x):
                raise ValueError(f"{self.name}: {len(ids)} case identifiers for {len(x)} samples")
        for texts, x in ((self.texts, self.x), (self.texts_test, self.x_test)):
            if texts is not None and x is not None and texts.shape != (len(x), len(self.text_names)):
                raise ValueError(f"{self.name}: texts of shape {texts.shape} for {len(x)} samples and "
                                 f"{len(self.text_names)} text columns")

    def case_ids(self) -> tuple[np.ndarray, np.ndarray | None]:
        """(identifiers of `x`, of `x_test` or None): the stored ones, else row numbers
        1..N and, for a shipped test set, on from N+1."""
        ids = as_ids(self.ids) if self.ids is not None else row_ids(len(self.x))
        if self.x_test is None:
            return ids, None
        test = as_ids(self.ids_test) if self.ids_test is not None else row_ids(len(self.x_test), len(self.x) + 1)
        return ids, test

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

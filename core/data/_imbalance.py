"""Imbalance profiles, stratified splits and class statistics.

Profiles are applied to the training split only; validation and test keep the
source's class balance, so every metric measures what the imbalance did to training.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from core.data._dataset import Dataset, FeatureBlock
from core.data._features import TableTransform, fit_table_transform
from core.data._groups import class_groups
from core.data._text_features import encode_text_splits

__all__ = [
    "Profile", "profile_counts", "apply_imbalance_profile", "stratified_split", "stratified_fold", "Splits",
    "prepare_splits", "table_transform", "class_statistics", "split_settings",
]

Profile = Literal["none", "exp", "step", "linear"]


def profile_counts(
    available: Sequence[int],
    profile: Profile,
    ratio: float = 10.0,
    mu: float = 0.5,
    order: Sequence[int] | None = None,
) -> np.ndarray:
    """Target training count per class.

    `order` lists class indices from head to tail (default: 0..K-1). n_max is the
    largest head count that every class can still supply at its position. exp: n_i = floor(n_max * ratio^(-i/(K-1))) (Cao et al.
    2019); step: the last round(mu*K) classes get n_max/ratio (Buda et al. 2018); linear:
    n_max down to n_max/ratio in equal steps.
    """
    available = np.asarray(available, dtype=np.int64)
    k = len(available)
    order = np.arange(k) if order is None else np.asarray(order, dtype=np.int64)
    if sorted(order.tolist()) != list(range(k)):
        raise ValueError(f"class order must list each class index 0..{k - 1} once, got {order.tolist()}")
    if profile == "none":
        return available.copy()
    if ratio < 1:
        raise ValueError(f"imbalance ratio must be >= 1, got {ratio}")
    position = np.arange(k)
    if profile == "exp":
        factors = ratio ** (-position / max(k - 1, 1))
    elif profile == "linear":
        factors = 1 - (1 - 1 / ratio) * position / max(k - 1, 1)
    elif profile == "step":
        if not 0 <= mu <= 1:
            raise ValueError(f"mu (fraction of minority classes) must lie in [0, 1], got {mu}")
        n_minority = int(round(mu * k))
        factors = np.where(position >= k - n_minority, 1 / ratio, 1.0)
    else:
        raise ValueError(f"unknown profile {profile!r}; known: none, exp, step, linear")
    # The largest n_max that every class (in its position) can still supply.
    n_max = int(np.min(available[order] / factors))
    targets = np.maximum(np.floor(n_max * factors + 1e-9).astype(np.int64), 1)
    counts = np.empty(k, dtype=np.int64)
    counts[order] = targets
    return np.minimum(counts, available)


def apply_imbalance_profile(
    y: np.ndarray, counts: Sequence[int], seed: int = 0
) -> np.ndarray:
    """Indices of a random subset of `y` with `counts[j]` samples of class j (sorted)."""
    rng = np.random.default_rng(seed)
    keep = []
    for j, n in enumerate(counts):
        members = np.flatnonzero(y == j)
        if n > len(members):
            raise ValueError(f"class {j} has {len(members)} samples, profile asks for {n}")
        keep.append(rng.choice(members, size=int(n), replace=False))
    return np.sort(np.concatenate(keep)) if keep else np.array([], dtype=np.int64)


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rest, held_out) index arrays, stratified when every class has two samples."""
    idx = np.arange(len(y))
    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 else None
    rest, held = train_test_split(idx, test_size=fraction, random_state=seed, stratify=stratify)
    return np.sort(rest), np.sort(held)


def stratified_fold(y: np.ndarray, k: int, index: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rest, held_out) for fold `index` of a shuffled stratified K-fold (sklearn): over the
    K folds every sample is held out exactly once and every class is spread evenly."""
    counts = np.bincount(y)
    present = counts[counts > 0]
    if present.min() < k:
        raise ValueError(f"a class has only {present.min()} samples, fewer than the {k} folds; "
                         f"choose at most {max(int(present.min()), 1)} folds")
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
    rest, held = next(f for i, f in enumerate(folds) if i == index)
    return np.sort(rest), np.sort(held)


class TrainCounts:
    """Class count and training counts of anything with `class_names` and `y_train`."""

    class_names: tuple[str, ...]
    y_train: np.ndarray

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def class_counts(self) -> np.ndarray:
        return np.bincount(self.y_train, minlength=self.num_classes)


@dataclass(frozen=True)
class Splits(TrainCounts):
    """Prepared arrays: train (imbalanced), val and test (as given), class metadata."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    modality: str
    feature_names: tuple[str, ...] | None
    counts_before: np.ndarray  # training counts before the profile
    feature_mean: np.ndarray | None = None  # tables: the training mean and spread each feature was
    feature_std: np.ndarray | None = None  # standardised with, to show samples in original units
    columns: tuple[FeatureBlock, ...] | None = None  # uploaded tables: features back to the file's columns
    y_train_clean: np.ndarray | None = None  # true labels of the training rows when data.label_noise corrupted y_train
    x_unlabeled: np.ndarray | None = None  # data.unlabeled: rows without labels (hidden, then uploaded)
    y_unlabeled_true: np.ndarray | None = None  # their true class (-1: uploaded, unknown); never for training
    ids_train: np.ndarray | None = None  # each row's case identifier (text), aligned with x_train, x_val, x_test:
    ids_val: np.ndarray | None = None  # an ID column's value, a picture's file name or the row number
    ids_test: np.ndarray | None = None
    id_name: str = "row"  # what the identifiers are: the ID column's name, "file" or "row"
    ordinal: bool = False  # the classes are ordered stages in index order (the ordinal models need it)
    texts_train: np.ndarray | None = None  # (n, T) free text of the columns `text_names`, aligned with x_train,
    texts_val: np.ndarray | None = None  # x_val and x_test; their encoded features are the "text" blocks of
    texts_test: np.ndarray | None = None  # `columns`
    text_names: tuple[str, ...] = ()
    text_encoders: tuple = field(default=(), compare=False, repr=False)  # fitted, one per text column

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def _split_rows(data: Dataset, *, profile: Profile, ratio: float, mu: float, class_order: Sequence[int] | None,
                test_fraction: float, val_fraction: float, seed: int, fold: tuple[int, int] | None
                ) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_val, y_val, x_test, y_test, counts before the profile, ids_train,
    ids_val, ids_test, texts_train, texts_val, texts_test) as the source holds them: no gap
    filled, nothing scaled, no text encoded; each case's identifier and texts go wherever
    its row goes (texts are (n, 0) without free-text columns)."""
    ids, ids_shipped = data.case_ids()
    texts = data.texts if data.texts is not None else np.zeros((len(data.y), 0), dtype=str)
    shipped = 0 if data.y_test is None else len(data.y_test)
    texts_shipped = data.texts_test if data.texts_test is not None else np.zeros((shipped, 0), dtype=str)
    if fold is not None:
        x_all, y_all, ids_all, texts_all = data.x, data.y, ids, texts
        if data.x_test is not None and data.y_test is not None:
            x_all, y_all = np.concatenate([data.x, data.x_test]), np.concatenate([data.y, data.y_test])
            ids_all, texts_all = np.concatenate([ids, ids_shipped]), np.concatenate([texts, texts_shipped])
        rest, test = stratified_fold(y_all, fold[0], fold[1], seed)
        x_pool, y_pool, x_test, y_test = x_all[rest], y_all[rest], x_all[test], y_all[test]
        id_pool, id_test, text_pool, text_test = ids_all[rest], ids_all[test], texts_all[rest], texts_all[test]
        held_fraction = 1 / fold[0]
    elif data.x_test is not None and data.y_test is not None:
        x_pool, y_pool, x_test, y_test = data.x, data.y, data.x_test, data.y_test
        id_pool, id_test, text_pool, text_test = ids, ids_shipped, texts, texts_shipped
        held_fraction = test_fraction
    else:
        rest, test = stratified_split(data.y, test_fraction, seed)
        x_pool, y_pool, x_test, y_test = data.x[rest], data.y[rest], data.x[test], data.y[test]
        id_pool, id_test, text_pool, text_test = ids[rest], ids[test], texts[rest], texts[test]
        held_fraction = test_fraction
    train, val = stratified_split(y_pool, min(val_fraction / (1 - held_fraction), 0.5), seed + 1)
    before = np.bincount(y_pool[train], minlength=data.num_classes)
    counts = profile_counts(before, profile, ratio, mu, class_order)
    keep = train[apply_imbalance_profile(y_pool[train], counts, seed)]
    return (x_pool[keep], y_pool[keep], x_pool[val], y_pool[val], x_test, y_test, before,
            id_pool[keep], id_pool[val], id_test, text_pool[keep], text_pool[val], text_test)


def prepare_splits(
    data: Dataset,
    *,
    profile: Profile = "none",
    ratio: float = 10.0,
    mu: float = 0.5,
    class_order: Sequence[int] | None = None,
    test_fraction: float = 0.25,
    val_fraction: float = 0.15,
    seed: int = 0,
    fold: tuple[int, int] | None = None,
    text_encoder: Any = None,
    labelled_rows: Callable[[np.ndarray], np.ndarray] | None = None,
    progress=None,
) -> Splits:
    """Split (unless the source gives a test set), then make the training split long-tailed.

    With `fold` = (k, index) the test split is that fold of a stratified K-fold over all
    samples (a shipped test set is pooled in first), so an experiment over the K folds
    tests every sample once. Validation is carved from the rest, and only the training
    part is made long-tailed. Tables are standardised with the statistics of the final
    training split, after their gaps (if any) are filled from that split. Free-text columns
    are encoded by `text_encoder` (a `data.text_encoder` section; None: word counts) fitted
    on the training texts, their features appended after the table's; an encoder that learns
    from labels sees those of the training rows `labelled_rows(y_train)` names (default all);
    `progress(done, total)` hears of the encoding.
    """
    x_train, y_train, x_val, y_val, x_test, y_test, before, *rest = _split_rows(
        data, profile=profile, ratio=ratio, mu=mu, class_order=class_order, test_fraction=test_fraction,
        val_fraction=val_fraction, seed=seed, fold=fold)
    ids, texts = rest[:3], rest[3:]
    mean = std = None
    feature_names, columns = data.feature_names, data.columns
    if data.modality == "tabular":
        transform = fit_table_transform(x_train, data.columns, (x_val, x_test))
        mean, std = transform.mean, transform.std
        x_train, x_val, x_test = (transform.apply(a) for a in (x_train, x_val, x_test))
        if not all(np.isfinite(a).all() for a in (x_train, x_val, x_test)):
            raise ValueError(f"{data.name}: features are not finite numbers after scaling; check the data for "
                             "infinite or enormous values")
    encoded = None
    if data.text_names:
        encoded = encode_text_splits(data.text_names, text_encoder, texts[0], texts[1:], progress, labels=y_train,
                                     labelled=None if labelled_rows is None else labelled_rows(y_train))
        width = x_train.shape[1]
        x_train, x_val, x_test = (np.hstack([a, e]) for a, e in zip((x_train, x_val, x_test), encoded.parts))
        mean = np.concatenate([np.zeros(width) if mean is None else mean, encoded.mean])
        std = np.concatenate([np.ones(width) if std is None else std, encoded.std])
        feature_names = (*(feature_names or (f"f{i}" for i in range(width))), *encoded.names)
        shifted = tuple(replace(b, start=b.start + width, stop=b.stop + width) for b in encoded.blocks)
        columns = (*(columns or (FeatureBlock(n, "numeric", i, i + 1) for i, n in enumerate(feature_names[:width]))),
                   *shifted)
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    i64 = lambda a: np.ascontiguousarray(a, dtype=np.int64)  # noqa: E731
    return Splits(
        f32(x_train), i64(y_train), f32(x_val), i64(y_val), f32(x_test), i64(y_test),
        data.class_names, data.modality, feature_names, before,
        None if mean is None else np.asarray(mean, np.float64), None if std is None else np.asarray(std, np.float64),
        columns, ids_train=ids[0], ids_val=ids[1], ids_test=ids[2], id_name=data.id_name,
        texts_train=texts[0] if encoded else None, texts_val=texts[1] if encoded else None,
        texts_test=texts[2] if encoded else None, text_names=data.text_names,
        text_encoders=encoded.encoders if encoded else (),
    )


def split_settings(data) -> dict[str, Any]:
    """`prepare_splits`'s keyword arguments from a `DataConfig` (the text encoder apart)."""
    im = data.imbalance
    fold = (data.fold.k, data.fold.index) if data.fold is not None else None
    return dict(profile=im.profile, ratio=im.ratio, mu=im.mu, class_order=im.class_order,
                test_fraction=data.test_fraction, val_fraction=data.val_fraction, seed=data.seed, fold=fold)


def table_transform(data: Dataset, new_rows: np.ndarray, **split: Any) -> TableTransform:
    """The transform `prepare_splits` fits on a table's training split (`split`: the same
    keyword arguments), with fills also for the columns where `new_rows` have gaps: what
    turns new cases into the features the model was trained on."""
    if data.modality != "tabular":
        raise ValueError(f"{data.name}: only tables have a feature transform")
    x_train, _, x_val, _, x_test, *_ = _split_rows(data, **split)
    return fit_table_transform(x_train, data.columns, (x_val, x_test, new_rows))


def class_statistics(
    counts: Sequence[int], class_names: Sequence[str] | None = None, many: int = 100, few: int = 20
) -> dict:
    """Counts, imbalance ratio (max/min over classes present) and head/medium/tail groups."""
    counts = np.asarray(counts, dtype=np.int64)
    present = counts[counts > 0]
    groups = class_groups(counts, many=many, few=few)
    names = list(class_names) if class_names is not None else [str(i) for i in range(len(counts))]
    return {
        "counts": counts.tolist(),
        "class_names": names,
        "imbalance_ratio": float(present.max() / present.min()) if len(present) else float("nan"),
        "groups": groups,
        "group_counts": {g: int(counts[[x == g for x in groups]].sum()) for g in ("head", "medium", "tail")},
        "total": int(counts.sum()),
    }

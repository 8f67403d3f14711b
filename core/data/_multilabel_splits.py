"""Multi-label splits: folds by iterative stratification, an imbalance profile over label
frequencies applied by selecting training cases, and partial labels made on purpose.

- Folds and held-out splits: iterative stratification (Sechidis, Tsoumakas & Vlahavas 2011;
  Szymanski & Kajdanowicz 2017 for label pairs) through the `iterative-stratification`
  package, so every label, rare ones included, is spread over the folds in proportion. An
  unknown entry counts as absent for the stratification only (it must go somewhere).
- Imbalance profile: the single-label profiles (`profile_counts`: exp, step, linear) give a
  target count per label, labels ranked by their current count. Cases, not labels, can be
  dropped, and dropping a case with a rare label also drops its common ones, so exact
  targets are impossible: labels are handled from the smallest target up, each trimmed by
  dropping random cases that carry it and none of the labels already handled (so those keep
  their counts). The counts reached are reported beside the targets.
- Partial labels: a share of each label's known entries, present and absent alike, is
  hidden (set unknown) in the cases given: pass the training split only, the test split
  stays as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.data._imbalance import Profile, profile_counts
from core.data._label_matrix import as_label_matrix, known_mask, label_counts

__all__ = ["LabelProfileResult", "MultiLabelSplits", "apply_label_profile", "hide_label_entries", "multilabel_folds",
           "multilabel_split", "prepare_multilabel_splits"]


def _stratification_matrix(y: np.ndarray) -> np.ndarray:
    return np.nan_to_num(as_label_matrix(y), nan=0.0).astype(np.int64)


def multilabel_folds(y, n_splits: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index pairs of iterative-stratification k-fold."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

    matrix = _stratification_matrix(y)
    folds = MultilabelStratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return [(np.sort(a), np.sort(b)) for a, b in folds.split(np.zeros((len(matrix), 1)), matrix)]


def multilabel_split(y, test_size: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices of one iteratively stratified held-out split."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    if not 0 < test_size < 1:
        raise ValueError(f"test_size must lie strictly between 0 and 1, got {test_size}")
    matrix = _stratification_matrix(y)
    split = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    train, test = next(split.split(np.zeros((len(matrix), 1)), matrix))
    return np.sort(train), np.sort(test)


@dataclass(frozen=True)
class LabelProfileResult:
    """Which cases the profile keeps, and each label's count asked for and reached."""

    keep: np.ndarray  # sorted indices of the kept cases
    target: np.ndarray  # per label, the profile's count
    reached: np.ndarray  # per label, the count among the kept cases
    before: np.ndarray  # per label, the count before

    def words(self, names=None) -> list[str]:
        """One line per label: 'finding 3: 40 asked, 52 reached (of 310)'."""
        names = names or [f"label {c}" for c in range(len(self.target))]
        return [f"{n}: {t} asked, {r} reached (of {b})" for n, t, r, b in
                zip(names, self.target, self.reached, self.before)]


def apply_label_profile(y, profile: Profile = "exp", ratio: float = 10.0, *, mu: float = 0.5, seed: int = 0,
                        order=None) -> LabelProfileResult:
    """Select cases so label frequencies follow `profile` (see the module docstring).
    `order`: labels from head to tail (default: by current count, most common first)."""
    matrix = as_label_matrix(y)
    before = label_counts(matrix)
    rank = np.argsort(-before, kind="stable") if order is None else np.asarray(order)
    target = profile_counts(before[rank], profile, ratio, mu=mu) if profile != "none" else before[rank]
    target_by_label = np.empty_like(before)
    target_by_label[rank] = target
    positive = matrix == 1
    kept = np.ones(len(matrix), dtype=bool)
    handled = np.zeros(matrix.shape[1], dtype=bool)
    rng = np.random.default_rng(seed)
    for label in np.argsort(target_by_label, kind="stable"):
        excess = int(positive[kept, label].sum()) - int(target_by_label[label])
        if excess > 0:
            free = kept & positive[:, label] & ~positive[:, handled].any(axis=1)
            candidates = np.flatnonzero(free)
            drop = rng.choice(candidates, size=min(excess, candidates.size), replace=False)
            kept[drop] = False
        handled[label] = True
    keep = np.flatnonzero(kept)
    return LabelProfileResult(keep, target_by_label, label_counts(matrix[keep]), before)


def hide_label_entries(y, share: float, seed: int = 0) -> np.ndarray:
    """A copy of the label matrix with round(share x known) of each label's known entries set
    unknown (NaN), chosen at random among its present and absent entries alike."""
    if not 0 <= share < 1:
        raise ValueError(f"the share of entries to hide must lie in [0, 1), got {share}")
    matrix = as_label_matrix(y).copy()
    known = known_mask(matrix)
    rng = np.random.default_rng(seed)
    for label in range(matrix.shape[1]):
        rows = np.flatnonzero(known[:, label])
        count = int(round(share * rows.size))
        matrix[rng.choice(rows, size=count, replace=False), label] = np.nan
    return matrix


@dataclass(frozen=True)
class MultiLabelSplits:
    """Indices into the dataset's cases and the training targets as training will see them
    (profile applied, entries hidden); validation and test targets are the dataset's own."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    y_train: np.ndarray
    profile: LabelProfileResult
    hidden_share: float


def prepare_multilabel_splits(y, *, test_size: float = 0.2, val_size: float = 0.1, profile: Profile = "none",
                              ratio: float = 10.0, mu: float = 0.5, hide_share: float = 0.0,
                              seed: int = 0, fold: tuple[int, int] | None = None) -> MultiLabelSplits:
    """Test, then validation, held out by iterative stratification; the imbalance profile
    selects training cases and `hide_share` of each label's training entries is hidden.
    Validation and test cases keep every entry they came with. `fold` (k, index): the test
    split is fold `index` of `multilabel_folds(y, k, seed)` instead of `test_size`."""
    matrix = as_label_matrix(y)
    if fold is not None:
        if not 0 <= fold[1] < fold[0]:
            raise ValueError(f"fold index {fold[1]} must be below the {fold[0]} folds")
        rest, test = multilabel_folds(matrix, fold[0], seed=seed)[fold[1]]
        test_size = 1 / fold[0]
    else:
        rest, test = multilabel_split(matrix, test_size, seed=seed)
    train_part, val_part = multilabel_split(matrix[rest], min(val_size / (1 - test_size), 0.5), seed=seed + 1)
    train, val = rest[train_part], rest[val_part]
    result = apply_label_profile(matrix[train], profile, ratio, mu=mu, seed=seed)
    train = train[result.keep]
    y_train = hide_label_entries(matrix[train], hide_share, seed=seed) if hide_share else matrix[train].copy()
    return MultiLabelSplits(train, val, test, y_train, result, hide_share)

"""The arrays a finished run leaves behind (`eval.npz`), as one typed record.

Every analysis (metrics, calibration, geometry, post-hoc adjustment) is a pure function
of these arrays, so a page can recompute anything without the model.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

__all__ = ["EvalArtifacts", "MadeRows", "OLD_RUN_IDS", "MADE_ROWS_KEPT", "training_map_features"]

MADE_ROWS_KEPT = 2000  # made rows kept with a run (an even share of each class); the count is kept whole
OLD_RUN_IDS = "test row"  # how a run stored before case identifiers were kept names its test cases


@dataclass(frozen=True)
class EvalArtifacts:
    logits: np.ndarray  # (n_test, K) test logits
    labels: np.ndarray  # (n_test,) test labels
    features: np.ndarray  # (n_test, d) penultimate test features
    head_weight: np.ndarray  # (K, d)
    head_bias: np.ndarray  # (K,)
    train_features: np.ndarray  # (m, d) fixed, class-stratified train subset
    train_labels: np.ndarray  # (m,)
    class_counts: np.ndarray  # (K,) training counts after the imbalance profile
    val_logits: np.ndarray  # (n_val, K) for temperature / tau selection
    val_labels: np.ndarray  # (n_val,)
    val_features: np.ndarray  # (n_val, d)
    test_index: np.ndarray  # (n_test,) row of each test sample in the prepared test split
    trained_prior: np.ndarray | None = None  # (K,) class frequencies the loss saw (after sampler/resampler)
    train_clean_labels: np.ndarray | None = None  # (m,) true labels of the train subset when label noise was added
    case_ids: np.ndarray | None = None  # (n_test,) each test case's identifier as fixed-width text (no pickle)
    case_id_name: str | None = None  # what the identifiers are: the ID column's name, "file" or "row"
    attacked_predictions: np.ndarray | None = None  # (n_test,) class predicted for each case's attacked copy

    def __post_init__(self) -> None:
        if self.trained_prior is None:  # runs stored before the prior was recorded trained on the counts
            object.__setattr__(self, "trained_prior", self.class_counts / max(self.class_counts.sum(), 1))
        if isinstance(self.case_id_name, np.ndarray):  # as read back from eval.npz: a 0-d text array
            object.__setattr__(self, "case_id_name", str(self.case_id_name.item()))

    @property
    def ids(self) -> np.ndarray:
        """Each test case's identifier as text: the one stored with the run (an ID column's
        value, a picture's file name, the row number in the file), or, for a run stored
        before identifiers were kept, its 1-based row in the test split."""
        if self.case_ids is not None and len(self.case_ids) == len(self.labels):
            return np.asarray(self.case_ids, dtype=str)
        return np.asarray([str(int(i) + 1) for i in np.asarray(self.test_index).reshape(-1)], dtype=str)

    @property
    def id_name(self) -> str:
        """What `ids` are, as a person reads it beside the value ("patient_id", "file", "row")."""
        if self.case_ids is not None and self.case_id_name and len(self.case_ids) == len(self.labels):
            return self.case_id_name
        return OLD_RUN_IDS

    def case_name(self, position: int) -> str:
        """The test case at `position` of these arrays in words: "patient_id P-00412"."""
        return f"{self.id_name} {self.ids[int(position)]}"

    def with_case_ids(self, ids: np.ndarray, name: str) -> EvalArtifacts:
        """These arrays with each test case's identifier (`ids` aligned with the test split the
        run was evaluated on, indexed here by `test_index`)."""
        ids = np.asarray([str(v) for v in np.asarray(ids).reshape(-1)], dtype=str)
        return replace(self, case_ids=ids[np.asarray(self.test_index, dtype=np.int64)], case_id_name=str(name))

    @property
    def num_classes(self) -> int:
        return int(self.class_counts.shape[0])

    @property
    def prior(self) -> np.ndarray:
        """The prior the model's scores encode: what training showed it, not the raw counts."""
        return self.trained_prior

    @property
    def has_features(self) -> bool:
        """Table baselines store no learned features, so geometry and attributions do not apply."""
        return self.features.ndim == 2 and self.features.shape[1] > 0

    def with_logits(self, logits: np.ndarray, val_logits: np.ndarray | None = None) -> EvalArtifacts:
        return replace(self, logits=logits, val_logits=self.val_logits if val_logits is None else val_logits)

    def save(self, path: Path) -> None:
        """Write atomically: a temp file renamed into place."""
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, **{f.name: _storable(getattr(self, f.name)) for f in fields(self)
                                    if getattr(self, f.name) is not None})
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> EvalArtifacts:
        with np.load(path, allow_pickle=False) as z:
            return cls(**{f.name: z[f.name] for f in fields(cls) if f.name in z.files})


def _storable(value):
    """Text as a fixed-width unicode array (never an object array, which only pickle stores)."""
    if isinstance(value, str):
        return np.array(value, dtype=str)
    if isinstance(value, np.ndarray) and value.dtype == object:
        return np.asarray([str(v) for v in value.reshape(-1)], dtype=str).reshape(value.shape)
    return value


@dataclass(frozen=True)
class MadeRows:
    """The training rows a resampler made for a run (`synthetic_rows.npz`, no pickle): which
    resampler, which positions of the resampled training rows were made (`positions`, after
    the `n_real` real rows the resampler was given), how many per class, and a kept sample of
    them (`x`, `y`, at most `MADE_ROWS_KEPT`) with their features in the trained network
    (`features`, empty for table baselines) so Geometry can place them beside the real rows."""

    resampler: str
    n_real: int
    positions: np.ndarray  # (n_made,) positions of the made rows among the training rows
    per_class: np.ndarray  # (K,) rows made for each class
    x: np.ndarray  # (m, ...) the kept made rows, as training saw them
    y: np.ndarray  # (m,)
    features: np.ndarray  # (m, d) their penultimate features; (m, 0) without a network

    @property
    def count(self) -> int:
        return int(np.asarray(self.per_class).sum())

    @classmethod
    def of(cls, resampler: str, x: np.ndarray, y: np.ndarray, made: np.ndarray, num_classes: int, n_real: int,
           seed: int = 0) -> MadeRows:
        """From the resampled rows and the mask of the made ones; a seeded, even share of each
        class is kept when more than `MADE_ROWS_KEPT` were made."""
        made = np.asarray(made, dtype=bool)
        positions = np.flatnonzero(made)
        y_made = np.asarray(y)[positions]
        keep = positions
        if len(positions) > MADE_ROWS_KEPT:
            rng = np.random.default_rng(seed)
            classes = np.unique(y_made)
            share = MADE_ROWS_KEPT // len(classes)
            keep = np.sort(np.concatenate([rng.permutation(positions[y_made == c])[:share] for c in classes]))
        x_kept = np.asarray(x)[keep]
        return cls(str(resampler), int(n_real), positions.astype(np.int64),
                   np.bincount(y_made.astype(np.int64), minlength=num_classes).astype(np.int64),
                   x_kept, np.asarray(y)[keep].astype(np.int64), np.zeros((len(keep), 0), np.float32))

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, resampler=np.array(self.resampler, dtype=str), n_real=np.array(self.n_real),
                            positions=self.positions, per_class=self.per_class, x=self.x, y=self.y,
                            features=self.features)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> MadeRows:
        """Read back; a file of another shape raises ValueError (the store calls it damaged)."""
        with np.load(path, allow_pickle=False) as z:
            made = cls(str(z["resampler"].item()), int(z["n_real"]), z["positions"], z["per_class"], z["x"], z["y"],
                       z["features"])
        if len(made.x) != len(made.y) or len(made.features) != len(made.y) or made.count != len(made.positions):
            raise ValueError("its arrays do not match in length")
        if made.positions.size and made.positions.min() < 0:
            raise ValueError("a made row has a negative position")
        return made


def training_map_features(artifacts: EvalArtifacts, made: MadeRows | None) -> np.ndarray:
    """What the map of the training rows places: the fixed training subset's features, then
    the kept made rows' (when the run's resampler made rows and a network gave them features)."""
    if made is None or made.features.shape[1] == 0 or made.features.shape[1] != artifacts.train_features.shape[1]:
        return artifacts.train_features
    return np.concatenate([artifacts.train_features, made.features.astype(artifacts.train_features.dtype)])

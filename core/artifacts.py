"""The arrays a finished run leaves behind (`eval.npz`), as one typed record.

Every analysis (metrics, calibration, geometry, post-hoc adjustment) is a pure function
of these arrays, so a page can recompute anything without the model.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

__all__ = ["EvalArtifacts", "OLD_RUN_IDS"]

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

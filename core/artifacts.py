"""The arrays a finished run leaves behind (`eval.npz`), as one typed record.

Every analysis (metrics, calibration, geometry, post-hoc adjustment) is a pure function
of these arrays, so a page can recompute anything without the model.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

__all__ = ["EvalArtifacts"]


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

    def __post_init__(self) -> None:
        if self.trained_prior is None:  # runs stored before the prior was recorded trained on the counts
            object.__setattr__(self, "trained_prior", self.class_counts / max(self.class_counts.sum(), 1))

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
        np.savez_compressed(tmp, **{f.name: getattr(self, f.name) for f in fields(self)
                                    if getattr(self, f.name) is not None})
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> EvalArtifacts:
        with np.load(path, allow_pickle=False) as z:
            return cls(**{f.name: z[f.name] for f in fields(cls) if f.name in z.files})

"""What a data-level resampler did to the training rows, in one 2-D picture.

Real rows it kept, real rows it removed and the rows it made up, projected by a PCA fitted
on the real rows only (so the synthetic rows land where the model would see them).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

__all__ = ["resampling_view"]


def resampling_view(x: np.ndarray, y: np.ndarray, x_resampled: np.ndarray, y_resampled: np.ndarray,
                    synthetic: np.ndarray, removed: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """One row per input row ("kept" or "removed") and per synthetic output row
    ("synthetic"): columns pc1, pc2, label, kind. Features are flattened; with a single
    feature the second coordinate is 0."""
    real = np.asarray(x, dtype=np.float64).reshape(len(y), -1)
    made = np.asarray(x_resampled, dtype=np.float64).reshape(len(y_resampled), -1)[np.asarray(synthetic, bool)]
    n_components = min(2, real.shape[1], len(real))
    pca = PCA(n_components=n_components, random_state=seed).fit(real)
    coords = [np.pad(pca.transform(a), ((0, 0), (0, 2 - n_components))) if len(a) else np.zeros((0, 2))
              for a in (real, made)]
    kinds = np.where(np.asarray(removed, bool), "removed", "kept")
    return pd.DataFrame({
        "pc1": np.concatenate([coords[0][:, 0], coords[1][:, 0]]),
        "pc2": np.concatenate([coords[0][:, 1], coords[1][:, 1]]),
        "label": np.concatenate([np.asarray(y), np.asarray(y_resampled)[np.asarray(synthetic, bool)]]).astype(int),
        "kind": np.concatenate([kinds, np.full(len(made), "synthetic")]),
    })

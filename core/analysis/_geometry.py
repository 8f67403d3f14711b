"""Feature and classifier geometry: neural collapse (Papyan, Han & Donoho 2020), per-class
norms and spreads, and minority collapse (Fang et al. 2021).

Everything is a pure numpy function of stored run arrays so a page or the CLI can show
how imbalance bends the last-layer geometry without reloading the model. The global mean
is the *mean of the class means* (Papyan et al.'s convention, see REFERENCE.md), not the
sample-weighted mean, which would drift toward the head classes under imbalance.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import sparse, stats

from core.artifacts import EvalArtifacts

__all__ = [
    "neural_collapse",
    "class_geometry",
    "norm_count_correlation",
    "pairwise_cosines",
    "minority_collapse",
    "geometry_summary",
]

NEURAL_COLLAPSE_KEYS = (
    "nc1",
    "nc2_equinorm_means",
    "nc2_equinorm_weights",
    "nc2_equiangular_means",
    "nc2_equiangular_weights",
    "nc2_maxangle_means",
    "nc2_maxangle_weights",
    "nc3",
    "nc4",
)


# ---------------------------------------------------------------- helpers


def _as_predictions(logits_or_pred: np.ndarray | None) -> np.ndarray | None:
    """Accept either (n, K) logits or (n,) predicted labels, so callers never convert."""
    if logits_or_pred is None:
        return None
    arr = np.asarray(logits_or_pred)
    if arr.ndim == 2:
        return arr.argmax(axis=1)
    if arr.ndim == 1:
        return arr.astype(np.int64, copy=False)
    raise ValueError(f"expected (n, K) logits or (n,) predictions, got shape {arr.shape}")


def _class_means(
    features: np.ndarray, labels: np.ndarray, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-class means through a sparse indicator product (no per-sample loop).

    Returns (means (K, d) with NaN rows for classes absent from `labels`, counts (K,)).
    """
    n = labels.shape[0]
    if n and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got [{labels.min()}, {labels.max()}]")
    indicator = sparse.csr_matrix((np.ones(n), (labels, np.arange(n))), shape=(num_classes, n))
    sums = np.asarray(indicator @ features, dtype=np.float64)
    counts = np.bincount(labels, minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts[:, None]
    means[counts == 0] = np.nan
    return means, counts


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, vectors / norms, np.nan)


def _off_diagonal(matrix: np.ndarray) -> np.ndarray:
    return matrix[~np.eye(matrix.shape[0], dtype=bool)]


def _coefficient_of_variation(values: np.ndarray) -> float:
    mean = values.mean()
    return float(values.std() / mean) if mean > 0 else float("nan")


def _pinv_trace_term(centred_features: np.ndarray, centred_means: np.ndarray) -> float:
    """tr(S_W S_B^+) without forming S_B^+ or S_W explicitly.

    With M = centred means as rows (K, d), S_B = M^T M / K, so S_B^+ = K M^+ M^{+T}, and with
    S_W = H^T H / N (H the within-class residuals) the trace is K/N * ||H M^+||_F^2.
    M has rank <= K-1 (its rows sum to zero), so singular values below a numpy-style
    tolerance are dropped and at most K-1 kept, as Papyan et al. do with svds(k=K-1):
    otherwise round-off in the null direction would be inverted into a huge term.
    """
    num_present = centred_means.shape[0]
    u, s, vt = np.linalg.svd(centred_means, full_matrices=False)
    tolerance = max(centred_means.shape) * np.finfo(np.float64).eps * (s[0] if s.size else 0.0)
    rank = min(int((s > tolerance).sum()), num_present - 1)
    if rank == 0:
        return float("nan")
    # M^+ = V_r diag(1/s_r) U_r^T, so H M^+ = (H V_r) diag(1/s_r) U_r^T and U_r has orthonormal columns.
    projected = (centred_features @ vt[:rank].T) / s[:rank]
    return float(num_present * np.sum(projected**2) / centred_features.shape[0])


# ---------------------------------------------------------------- neural collapse


def neural_collapse(
    features: np.ndarray,
    labels: np.ndarray,
    head_weight: np.ndarray,
    logits_or_pred: np.ndarray | None = None,
    num_classes: int | None = None,
) -> dict[str, float]:
    """The four neural-collapse measures (REFERENCE.md "Neural collapse"); 0 means collapsed.

    - nc1 = tr(S_W S_B^+) / K: within-class spread relative to between-class spread.
    - nc2_equinorm_*: std/mean of ||mu_k - mu_G|| (means) or ||w_k|| (weights).
    - nc2_equiangular_*: std over k != k' of the pairwise cosines.
    - nc2_maxangle_*: mean over k != k' of |cos + 1/(K-1)| (distance from a simplex ETF).
    - nc3 = || W^T/||W||_F - M/||M||_F ||_F^2: classifier aligned with the centred means.
    - nc4: fraction of samples whose nearest class mean differs from the model's argmax.

    `logits_or_pred` takes (n, K) logits or (n,) predicted labels; without it nc4 is NaN
    (the key is always present so tables keep one shape). Stds are population stds
    (ddof=0). Classes absent from `labels` are skipped everywhere: K is the number of
    classes present, and only their weight rows enter nc2_*_weights and nc3. With fewer
    than two classes present every measure but nc4 is NaN.
    """
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64, copy=False)
    head_weight = np.asarray(head_weight, dtype=np.float64)
    num_classes = head_weight.shape[0] if num_classes is None else int(num_classes)
    pred = _as_predictions(logits_or_pred)
    if pred is not None and pred.shape[0] != labels.shape[0]:
        raise ValueError(f"{pred.shape[0]} predictions for {labels.shape[0]} samples")

    means, counts = _class_means(features, labels, num_classes)
    present = np.flatnonzero(counts > 0)
    present_means = means[present]
    result = dict.fromkeys(NEURAL_COLLAPSE_KEYS, float("nan"))

    if pred is not None and present.size:
        squared_dist = (
            (features**2).sum(axis=1, keepdims=True)
            - 2.0 * features @ present_means.T
            + (present_means**2).sum(axis=1)
        )
        nearest_centre = present[squared_dist.argmin(axis=1)]
        result["nc4"] = float(np.mean(nearest_centre != pred))

    num_present = present.size
    if num_present < 2:
        return result

    global_mean = present_means.mean(axis=0)
    centred_means = present_means - global_mean
    weights = head_weight[present]
    within = features - means[labels]
    result["nc1"] = _pinv_trace_term(within, centred_means) / num_present

    simplex_cosine = -1.0 / (num_present - 1)
    for name, vectors in (("means", centred_means), ("weights", weights)):
        result[f"nc2_equinorm_{name}"] = _coefficient_of_variation(np.linalg.norm(vectors, axis=1))
        cosines = _off_diagonal(pairwise_cosines(vectors))
        result[f"nc2_equiangular_{name}"] = float(np.std(cosines))
        result[f"nc2_maxangle_{name}"] = float(np.mean(np.abs(cosines - simplex_cosine)))

    weight_frobenius = np.linalg.norm(weights)
    means_frobenius = np.linalg.norm(centred_means)
    if weight_frobenius > 0 and means_frobenius > 0:
        alignment_gap = weights / weight_frobenius - centred_means / means_frobenius
        result["nc3"] = float(np.sum(alignment_gap**2))
    return result


# ---------------------------------------------------------------- per-class geometry


def class_geometry(
    features: np.ndarray,
    labels: np.ndarray,
    head_weight: np.ndarray,
    class_counts: np.ndarray,
    pred: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per class (all K, absent ones with NaN geometry), to plot norms against counts.

    Columns: class, count (training count), mean_norm (||mu_k - mu_G||, mu_G the mean of
    class means), weight_norm (||w_k||), spread_trace (trace of the ddof=0 within-class
    covariance = mean squared distance to the centre), spread_mean_dist (mean distance to
    the centre), nearest_centre_dist (to the nearest other present class centre), and
    recall when `pred` ((n,) labels or (n, K) logits) is given.
    """
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64, copy=False)
    head_weight = np.asarray(head_weight, dtype=np.float64)
    class_counts = np.asarray(class_counts)
    num_classes = head_weight.shape[0]

    means, counts = _class_means(features, labels, num_classes)
    present = counts > 0
    global_mean = means[present].mean(axis=0) if present.any() else np.zeros(features.shape[1])

    distance_to_centre = np.linalg.norm(features - means[labels], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        spread_trace = np.bincount(labels, weights=distance_to_centre**2, minlength=num_classes) / counts
        spread_mean_dist = np.bincount(labels, weights=distance_to_centre, minlength=num_classes) / counts

    squared_norms = (means**2).sum(axis=1)
    centre_gaps = np.sqrt(np.maximum(squared_norms[:, None] - 2.0 * means @ means.T + squared_norms[None, :], 0.0))
    np.fill_diagonal(centre_gaps, np.inf)
    centre_gaps[~present] = np.inf
    centre_gaps[:, ~present] = np.inf
    nearest_centre_dist = centre_gaps.min(axis=1)
    nearest_centre_dist[~np.isfinite(nearest_centre_dist)] = np.nan

    table = pd.DataFrame(
        {
            "class": np.arange(num_classes),
            "count": class_counts,
            "mean_norm": np.linalg.norm(means - global_mean, axis=1),
            "weight_norm": np.linalg.norm(head_weight, axis=1),
            "spread_trace": spread_trace,
            "spread_mean_dist": spread_mean_dist,
            "nearest_centre_dist": nearest_centre_dist,
        }
    )
    predictions = _as_predictions(pred)
    if predictions is not None:
        hits = np.bincount(labels, weights=(predictions == labels).astype(np.float64), minlength=num_classes)
        with np.errstate(invalid="ignore", divide="ignore"):
            table["recall"] = hits / counts
    return table


def _spearman(values: np.ndarray, counts: np.ndarray) -> float:
    keep = np.isfinite(values) & (counts > 0)
    values, log_counts = values[keep], np.log(counts[keep].astype(np.float64))
    if values.size < 2 or np.ptp(values) == 0 or np.ptp(log_counts) == 0:
        return float("nan")
    return float(stats.spearmanr(values, log_counts).statistic)


def norm_count_correlation(class_geometry_df: pd.DataFrame) -> dict[str, float]:
    """Spearman rank correlation of weight / mean norms with log training count.

    A strong positive value is the classic imbalance signature: head classes get larger
    classifier norms (Kang et al. 2020). NaN when either side is constant or fewer than
    two classes have finite values.
    """
    def column(name: str) -> np.ndarray:
        return class_geometry_df[name].to_numpy(dtype=np.float64)

    return {
        "weight_norm_count_spearman": _spearman(column("weight_norm"), column("count")),
        "mean_norm_count_spearman": _spearman(column("mean_norm"), column("count")),
    }


# ---------------------------------------------------------------- minority collapse


def pairwise_cosines(vectors: np.ndarray) -> np.ndarray:
    """(K, K) cosine similarities between rows; NaN rows/columns for zero or NaN vectors."""
    unit = _unit_rows(np.asarray(vectors, dtype=np.float64))
    return np.clip(unit @ unit.T, -1.0, 1.0)


def _mean_within_group_cosine(cosines: np.ndarray, members: np.ndarray) -> float:
    if members.size < 2:
        return float("nan")
    values = _off_diagonal(cosines[np.ix_(members, members)])
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")


def minority_collapse(
    head_weight: np.ndarray, class_means_centred: np.ndarray, groups: Sequence[str]
) -> dict[str, float]:
    """Mean pairwise cosine within the tail classes versus within the head classes.

    Minority collapse (Fang et al. 2021) shows up as tail classifier vectors (and means)
    pointing closer together than head ones: tail_*_cosine well above head_*_cosine
    (a simplex ETF gives -1/(K-1) everywhere). NaN for a group with fewer than two
    classes; classes whose centred mean is NaN (absent) are ignored.
    """
    groups_array = np.asarray(groups)
    if groups_array.shape[0] != np.shape(head_weight)[0]:
        raise ValueError(f"{groups_array.shape[0]} groups for {np.shape(head_weight)[0]} classes")
    weight_cosines = pairwise_cosines(head_weight)
    mean_cosines = pairwise_cosines(class_means_centred)
    result: dict[str, float] = {}
    for group in ("tail", "head"):
        members = np.flatnonzero(groups_array == group)
        result[f"{group}_weight_cosine"] = _mean_within_group_cosine(weight_cosines, members)
        result[f"{group}_mean_cosine"] = _mean_within_group_cosine(mean_cosines, members)
    return result


# ---------------------------------------------------------------- summary


def geometry_summary(artifacts: EvalArtifacts, groups: Sequence[str] | None = None) -> dict[str, float]:
    """Neural collapse on the test features (model prediction = argmax logits), the two
    norm-vs-count Spearman correlations and, with `groups`, the minority-collapse cosines:
    the flat dict that `tailscope show --json` reports under `geometry`."""
    summary = neural_collapse(
        artifacts.features,
        artifacts.labels,
        artifacts.head_weight,
        artifacts.logits,
        num_classes=artifacts.num_classes,
    )
    per_class = class_geometry(
        artifacts.features, artifacts.labels, artifacts.head_weight, artifacts.class_counts
    )
    summary.update(norm_count_correlation(per_class))
    if groups is not None:
        means, counts = _class_means(
            np.asarray(artifacts.features, dtype=np.float64),
            np.asarray(artifacts.labels).astype(np.int64, copy=False),
            artifacts.num_classes,
        )
        centred = means - means[counts > 0].mean(axis=0)
        summary.update(minority_collapse(artifacts.head_weight, centred, groups))
    return summary

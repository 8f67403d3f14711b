"""2-D / 3-D embeddings of penultimate features (UMAP or PCA), cached on disk.

UMAP's first fit in a process pays 10-60 s of numba JIT (MACHINE-NOTES.md), so `umap`
is imported lazily, neighbours come from scikit-learn (`precomputed_knn`), epochs shrink
with n, UMAP's compiled functions are kept in numba's on-disk cache (`_cache_umap_jit`: the
JIT is paid once per installation, not once per worker process), and `warm_umap()` lets a
worker pay what is left before real jobs arrive.
Nothing is standardised: the features' own scale is what the model sees.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = ["embed", "embed_cached", "load_cached", "warm_umap"]


def _default_epochs(num_samples: int) -> int:
    """Fewer epochs as n grows: the layout settles early and epochs dominate large fits."""
    if num_samples <= 2_000:
        return 200
    if num_samples <= 10_000:
        return 100
    return 50


def _reduce_with_pca(features: np.ndarray, n_components: int, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    n_components = min(n_components, *features.shape)
    return PCA(n_components=n_components, random_state=seed).fit_transform(features)


def _nearest_neighbours(features: np.ndarray, n_neighbors: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact k-NN (each point its own first neighbour, as UMAP expects), skipping the
    pynndescent path whose compilation dominates UMAP's first fit."""
    from sklearn.neighbors import NearestNeighbors

    index = NearestNeighbors(n_neighbors=n_neighbors, algorithm="brute").fit(features)
    distances, indices = index.kneighbors(features)
    return indices.astype(np.int32), distances.astype(np.float32)


def embed(
    features: np.ndarray,
    *,
    method: Literal["umap", "pca"] = "umap",
    n_components: int = 2,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    seed: int = 0,
    max_pca_dims: int = 50,
    n_epochs: int | None = None,
) -> np.ndarray:
    """Embed (n, d) features into (n, n_components) float32 coordinates.

    "pca" projects straight to n_components. "umap" first reduces to at most
    `max_pca_dims` with PCA (denoises and speeds up the neighbour search), then runs
    UMAP on exact scikit-learn neighbours with `random_state=seed`, so the same inputs
    give the same output (UMAP runs single-threaded when seeded). `n_epochs=None`
    picks fewer epochs for larger n.
    """
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2:
        raise ValueError(f"features must be (n, d), got shape {features.shape}")
    num_samples = features.shape[0]
    if method == "pca":
        if n_components > min(features.shape):
            raise ValueError(f"PCA to {n_components} dims needs n and d >= {n_components}, got {features.shape}")
        return _reduce_with_pca(features, n_components, seed).astype(np.float32)
    if method != "umap":
        raise ValueError(f"unknown embedding method {method!r}; known: 'pca', 'umap'")
    if num_samples < n_components + 2:
        raise ValueError(f"UMAP needs at least {n_components + 2} samples, got {num_samples}")

    reduced = features
    if features.shape[1] > max_pca_dims:
        reduced = _reduce_with_pca(features, max_pca_dims, seed).astype(np.float32)
    n_neighbors = min(n_neighbors, num_samples - 1)
    knn_indices, knn_dists = _nearest_neighbours(reduced, n_neighbors)

    import umap  # lazy: importing compiles numba code (~20 s in a fresh environment)

    _cache_umap_jit()
    reducer = umap.UMAP(
        n_components=n_components,
        n_neighbors=n_neighbors,
        min_dist=min_dist,
        random_state=seed,
        n_jobs=1,
        n_epochs=_default_epochs(num_samples) if n_epochs is None else n_epochs,
        precomputed_knn=(knn_indices, knn_dists),
    )
    with warnings.catch_warnings():
        # Expected: no NNDescent index means no .transform(), which we never call.
        warnings.filterwarnings("ignore", message=".*knn_search_index.*")
        coordinates = reducer.fit_transform(reduced)
    return np.asarray(coordinates, dtype=np.float32)


def _cache_umap_jit() -> None:
    """Turn on numba's on-disk cache for umap's module-level compiled functions, which umap
    defines without `cache=True`: a later process loads them instead of compiling again
    (a first fit 9.5 s -> 0.2 s here). Numba keys each entry on the source file's stamp, the
    argument types and the CPU, and writes it atomically beside the source (or in the user's
    cache folder where that is read-only), so a changed umap or machine just compiles anew."""
    import sys

    from numba.core.caching import NullCache
    from numba.core.registry import CPUDispatcher

    for name, module in list(sys.modules.items()):
        if module is None or not (name == "umap" or name.startswith("umap.")):
            continue
        for function in list(vars(module).values()):
            if isinstance(function, CPUDispatcher) and isinstance(function._cache, NullCache):
                try:
                    function.enable_caching()
                except RuntimeError:  # no writable place for a cache (read-only package, no home)
                    return  # compile in memory, as umap does by itself


_EMBED_SIGNATURE = inspect.signature(embed)


def _cache_path(cache_dir: Path, key: str, features: np.ndarray, params: dict[str, Any]) -> Path:
    """File name = readable key + hash of the full parameter set (defaults filled in, so
    `embed_cached(x, d, k)` and `embed_cached(x, d, k, method="umap")` share an entry)."""
    bound = _EMBED_SIGNATURE.bind(features, **params)
    bound.apply_defaults()
    resolved = {name: value for name, value in bound.arguments.items() if name != "features"}
    resolved["shape"] = list(np.shape(features))
    digest = hashlib.sha256(json.dumps(resolved, sort_keys=True, default=str).encode()).hexdigest()[:16]
    safe_key = re.sub(r"[^A-Za-z0-9._-]+", "_", key)
    return Path(cache_dir) / f"{safe_key}-{digest}.npy"


def load_cached(path: Path) -> np.ndarray | None:
    """A cached map, or None when it is missing or damaged (a damaged cache is deleted, so it
    is simply computed again: it is a cache, not a result)."""
    if not path.exists():
        return None
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError):
        path.unlink(missing_ok=True)
        return None


def embed_cached(features: np.ndarray, cache_dir: Path, key: str, **params: Any) -> np.ndarray:
    """`embed` with a `.npy` cache under `cache_dir`, keyed by `key` (name the data, e.g.
    run id + split: the features themselves are not hashed) and the parameters.

    Written to a temp file then renamed, so a concurrent reader never sees half an array.
    """
    path = _cache_path(cache_dir, key, features, params)
    cached = load_cached(path)
    if cached is not None:
        return cached
    coordinates = embed(features, **params)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as temp_file:
            np.save(temp_file, coordinates, allow_pickle=False)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return coordinates


def warm_umap(seed: int = 0) -> None:
    """One tiny fit so a worker process pays UMAP's JIT compilation before real work."""
    rng = np.random.default_rng(seed)
    embed(rng.normal(size=(64, 8)).astype(np.float32), method="umap", n_neighbors=5, seed=seed, n_epochs=10)

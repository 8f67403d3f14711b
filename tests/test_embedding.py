"""Embeddings: shapes, seeded determinism, the on-disk cache. UMAP fits share one module
so the numba JIT is paid once (MACHINE-NOTES.md)."""

from __future__ import annotations


import numpy as np
import pytest

from core.analysis import _embedding
from core.analysis._embedding import embed, embed_cached


@pytest.fixture(scope="module")
def clustered_features() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=200)
    centres = rng.normal(scale=5.0, size=(4, 64))
    return (centres[labels] + rng.normal(size=(200, 64))).astype(np.float32), labels


@pytest.fixture(scope="module")
def umap_2d(clustered_features) -> np.ndarray:
    return embed(clustered_features[0], method="umap", n_components=2, seed=3)


def test_umap_shapes(clustered_features, umap_2d):
    features, _ = clustered_features
    assert umap_2d.shape == (200, 2) and umap_2d.dtype == np.float32
    assert np.isfinite(umap_2d).all()
    assert embed(features, method="umap", n_components=3, n_epochs=20).shape == (200, 3)


def test_umap_same_seed_same_output(clustered_features, umap_2d):
    np.testing.assert_array_equal(embed(clustered_features[0], method="umap", seed=3), umap_2d)


def test_umap_keeps_clusters_apart(clustered_features, umap_2d):
    from sklearn.neighbors import KNeighborsClassifier

    _, labels = clustered_features
    accuracy = KNeighborsClassifier(5).fit(umap_2d[:150], labels[:150]).score(umap_2d[150:], labels[150:])
    assert accuracy > 0.95


def test_pca_path_is_float32_in_component_order(clustered_features):
    features, _ = clustered_features
    coordinates = embed(features, method="pca", n_components=3)
    assert coordinates.shape == (200, 3) and coordinates.dtype == np.float32
    variances = coordinates.var(axis=0)
    assert np.all(np.diff(variances) <= 1e-4)  # principal components come in order


def test_unknown_method_is_rejected(clustered_features):
    with pytest.raises(ValueError, match="unknown embedding method"):
        embed(clustered_features[0], method="tsne")  # type: ignore[arg-type]


def test_cache_hit_skips_recompute(clustered_features, tmp_path, monkeypatch):
    features, _ = clustered_features
    calls = []
    real_embed = _embedding.embed

    def counting_embed(*args, **kwargs):
        calls.append(kwargs)
        return real_embed(*args, **kwargs)

    monkeypatch.setattr(_embedding, "embed", counting_embed)
    first = embed_cached(features, tmp_path, "run-1/test", method="pca")
    second = embed_cached(features, tmp_path, "run-1/test", method="pca", n_components=2)  # defaults resolved
    np.testing.assert_array_equal(first, second)
    assert len(calls) == 1
    embed_cached(features, tmp_path, "run-1/test", method="pca", n_components=3)
    assert len(calls) == 2
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".npy", ".npy"]  # no temp files left


def test_warm_umap_fits_one_small_umap(monkeypatch):
    """The warm-up goes through `embed` with UMAP on a small sample (under 4096 rows, the fast
    first-fit case), and its fit gives finite 2-D coordinates for every row."""
    fits = []
    real_embed = _embedding.embed

    def recording_embed(x, **kwargs):
        out = real_embed(x, **kwargs)
        fits.append((x, kwargs, out))
        return out

    monkeypatch.setattr(_embedding, "embed", recording_embed)
    _embedding.warm_umap()
    ((x, kwargs, out),) = fits
    assert kwargs["method"] == "umap" and 0 < x.shape[0] < 4096
    assert out.shape == (x.shape[0], 2) and np.isfinite(out).all()


def test_umaps_compiled_functions_are_kept_on_disk(umap_2d):
    """After a fit every module-level compiled function of umap writes to numba's on-disk
    cache, so the next worker process loads them instead of paying the JIT again."""
    import sys

    from numba.core.caching import FunctionCache
    from numba.core.registry import CPUDispatcher

    compiled = [f for name, m in list(sys.modules.items()) if m is not None and name.startswith("umap")
                for f in vars(m).values() if isinstance(f, CPUDispatcher)]
    assert len(compiled) > 10
    assert all(isinstance(f._cache, FunctionCache) for f in compiled)
    layout = sys.modules["umap.layouts"]._nb_optimize_layout_euclidean_single_epoch
    assert layout.signatures, "the fit compiled the layout step"
    assert layout._cache._cache_file._index_path.endswith(".nbi")


def test_umap_without_a_writable_cache_compiles_in_memory(monkeypatch):
    """Where numba finds no writable folder for its cache it raises on enable_caching; the
    embedding then compiles in memory as umap does by itself, rather than failing."""
    import sys
    import types

    import numba
    from numba.core.caching import NullCache
    from numba.core.registry import CPUDispatcher

    module = types.ModuleType("umap._no_cache_here")
    module.double = numba.njit(lambda x: 2 * x)
    monkeypatch.setitem(sys.modules, module.__name__, module)

    def no_locator(self):
        raise RuntimeError("cannot cache function: no locator available")

    monkeypatch.setattr(CPUDispatcher, "enable_caching", no_locator)
    _embedding._cache_umap_jit()
    assert isinstance(module.double._cache, NullCache) and module.double(3) == 6

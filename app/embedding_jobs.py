"""On-demand UMAP, off the page's path.

The worker maps a lone run and an experiment's first run with the default settings as they
finish. Other runs and settings are computed here, in one background thread per app process
(UMAP's first fit in a process pays 15-60 s of numba compilation, so pages must never wait on
it): a page submits the (run, settings) job, draws PCA meanwhile, and polls `is_ready` until
the cached files that `compute_embeddings` writes under the run folder exist. A second
request for the same settings is a cache hit and queues nothing.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from core.analysis import embed, load_cached
from core.analysis._embedding import _cache_path
from core.artifacts import EvalArtifacts, MadeRows, training_map_features
from core.jobs import compute_embeddings
from core.jobs._pipeline import EMBEDDING_DEFAULTS
from core.registry import plugin_label
from core.store import RunNotFound, RunStore, pid_alive
from core.text import md
from core.train import fixed_train_subset

__all__ = ["SPLITS", "map_coordinates", "embedding_settings", "embedding_path", "load_embedding", "is_ready", "submit", "job_error",
           "split_arrays", "split_inputs", "split_case_names", "made_mask"]

SPLITS = {"test": "test set", "train": "training subset"}
_LOCK = threading.Lock()


@st.cache_resource
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="tailscope-umap")


@st.cache_resource
def _jobs() -> dict[tuple[str, str, str], Future]:
    return {}


def embedding_settings(params: dict[str, Any]) -> dict[str, Any]:
    """The full settings an embedding is cached under (worker defaults filled in)."""
    return {**EMBEDDING_DEFAULTS, **params}


def _key(store: RunStore, run_id: str, params: dict[str, Any]) -> tuple[str, str, str]:
    return str(store.home), run_id, json.dumps(embedding_settings(params), sort_keys=True, default=str)


def _features(store: RunStore, run_id: str, split: str, artifacts: EvalArtifacts | None) -> np.ndarray:
    artifacts = artifacts if artifacts is not None else store.artifacts(run_id)
    return artifacts.features if split == "test" else training_map_features(artifacts, store.made_rows(run_id))


def _made(made: MadeRows | None, artifacts: EvalArtifacts) -> MadeRows | None:
    """The made rows the training map places (those with features of this network), else None."""
    features = training_map_features(artifacts, made)
    return made if made is not None and len(features) > len(artifacts.train_features) else None


def made_mask(artifacts: EvalArtifacts, split: str, made: MadeRows | None) -> np.ndarray | None:
    """Which points of a split's map are rows the resampler made (only the training map has
    them); None when there are none."""
    made = _made(made, artifacts) if split == "train" else None
    if made is None:
        return None
    return np.arange(len(artifacts.train_labels) + len(made.y)) >= len(artifacts.train_labels)


def embedding_path(store: RunStore, run_id: str, split: str, params: dict[str, Any],
                   artifacts: EvalArtifacts | None = None) -> Path:
    """Where `compute_embeddings(store, run_id, **params)` caches this split."""
    features = _features(store, run_id, split, artifacts)
    return _cache_path(store.run_dir(run_id) / "embeddings", split, features, embedding_settings(params))


def load_embedding(store: RunStore, run_id: str, split: str, params: dict[str, Any],
                   artifacts: EvalArtifacts | None = None) -> np.ndarray | None:
    """The cached coordinates, or None while they are not computed yet."""
    return load_cached(embedding_path(store, run_id, split, params, artifacts))


def is_ready(store: RunStore, run_id: str, params: dict[str, Any], artifacts: EvalArtifacts | None = None) -> bool:
    """Both maps cached and readable (a damaged one is dropped here, so it is computed again)."""
    return all(load_cached(embedding_path(store, run_id, s, params, artifacts)) is not None for s in SPLITS)


def submit(store: RunStore, run_id: str, params: dict[str, Any],
           artifacts: EvalArtifacts | None = None) -> Future | None:
    """Queue the embedding of (run, params) unless it is cached (then None) or already
    queued (then the same future). A failed job is replaced by a fresh try."""
    if is_ready(store, run_id, params, artifacts) or worker_is_embedding(store, run_id, params):
        return None
    key, jobs = _key(store, run_id, params), _jobs()
    with _LOCK:
        job = jobs.get(key)
        if job is None or (job.done() and job.exception() is not None):
            job = _executor().submit(compute_embeddings, store, run_id, **params)
            jobs[key] = job
        return job


def worker_is_embedding(store: RunStore, run_id: str, params: dict[str, Any]) -> bool:
    """The worker that trained the run is computing its default map right now: computing the
    same map here too would only double the work (and the numba start-up) in the app."""
    if {**EMBEDDING_DEFAULTS, **params} != EMBEDDING_DEFAULTS:
        return False
    try:
        record = store.get(run_id)
    except RunNotFound:
        return False
    # a worker killed mid-map leaves the stage behind: only a live one is worth waiting for
    return (record.progress or {}).get("stage") == "embedding" and pid_alive(record.worker_pid)


def job_error(store: RunStore, run_id: str, params: dict[str, Any]) -> BaseException | None:
    """Why the last job for (run, params) failed, or None."""
    job = _jobs().get(_key(store, run_id, params))
    return job.exception() if job is not None and job.done() else None


def split_arrays(artifacts: EvalArtifacts, split: str,
                 made: MadeRows | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, true labels, model predictions) of a split; the train subset's
    predictions come from the stored head (the model is `head(features)`), and the rows the
    resampler made (`made`) follow the subset's, labelled with the class they were made for."""
    if split == "test":
        return artifacts.features, artifacts.labels, artifacts.logits.argmax(axis=1)
    made = _made(made, artifacts)
    features = training_map_features(artifacts, made)
    labels = artifacts.train_labels if made is None else np.concatenate([artifacts.train_labels, made.y])
    logits = features @ artifacts.head_weight.T + artifacts.head_bias
    return features, labels, logits.argmax(axis=1)


def split_inputs(splits, artifacts: EvalArtifacts, config, split: str,
                 made: MadeRows | None = None) -> np.ndarray | None:
    """The raw inputs (images or table rows) behind each point of a split, re-derived from
    the run's seeded splits (the made rows' from the run's record of them); None when they
    cannot be matched to the stored labels."""
    if split == "test":
        rows, labels = artifacts.test_index, splits.y_test
    else:
        rows = fixed_train_subset(splits.y_train, config.train.train_subset, config.data.seed)
        labels = splits.y_train
    expected = artifacts.labels if split == "test" else artifacts.train_labels
    if len(rows) != len(expected) or rows.max(initial=-1) >= len(labels) or not np.array_equal(labels[rows], expected):
        return None
    inputs = (splits.x_test if split == "test" else splits.x_train)[rows]
    made = _made(made, artifacts) if split == "train" else None
    return inputs if made is None else np.concatenate([inputs, made.x.reshape(len(made.x), *inputs.shape[1:])])


def split_texts(splits, artifacts: EvalArtifacts, config, split: str, made: MadeRows | None = None
                ) -> list[str] | None:
    """The free text behind each point of a split (columns joined by " · "), matched as
    `split_inputs` matches the inputs; a row the resampler made has none. None without free
    text or a match."""
    texts = getattr(splits, "texts_test" if split == "test" else "texts_train", None)
    if texts is None or split_inputs(splits, artifacts, config, split, made) is None:
        return None
    rows = artifacts.test_index if split == "test" else fixed_train_subset(
        splits.y_train, config.train.train_subset, config.data.seed)
    made = _made(made, artifacts) if split == "train" else None
    return [" · ".join(row) for row in texts[rows]] + ([] if made is None else ["(a row the resampler made: no note)"]
                                                        * len(made.y))


def split_case_names(splits, artifacts: EvalArtifacts, config, split: str,
                     made: MadeRows | None = None) -> list[str] | None:
    """Each point of a split named as a person finds the case ("patient_id P-00412"): the
    test cases from the run's stored identifiers, the training subset's from the splits;
    None when the subset cannot be matched to the stored labels."""
    if split == "test":
        return [artifacts.case_name(i) for i in range(len(artifacts.labels))]
    rows = fixed_train_subset(splits.y_train, config.train.train_subset, config.data.seed)
    ids = getattr(splits, "ids_train", None)
    if ids is None or len(rows) != len(artifacts.train_labels) or not np.array_equal(splits.y_train[rows],
                                                                                      artifacts.train_labels):
        return None
    made = _made(made, artifacts)
    extra = [] if made is None else [f"row made by {plugin_label('resampler', made.resampler)} (no real case)"
                                     for _ in made.y]
    return [f"{splits.id_name} {ids[r]}" for r in rows] + extra


def map_coordinates(store: RunStore, run_id: str, split: str, params: dict[str, Any],
                    artifacts: EvalArtifacts) -> tuple[np.ndarray, str]:
    """(coordinates, "UMAP") when that map is cached; else the job is queued and PCA is
    returned at once, with a note that swaps the UMAP in by itself when it is ready."""
    coords = load_embedding(store, run_id, split, params, artifacts)
    if coords is not None:
        return coords, "UMAP"
    submit(store, run_id, params, artifacts)

    @st.fragment(run_every=2)
    def wait_for_umap() -> None:
        error = job_error(store, run_id, params)
        if error is not None:
            st.warning(f"UMAP failed ({md(error)}); showing PCA.")
        elif is_ready(store, run_id, params, artifacts):
            st.rerun()
        else:
            submit(store, run_id, params, artifacts)  # no-op while queued here or in the worker
            st.info("UMAP with these settings is being computed (the first one in a process takes 15-60 s). "
                    "Meanwhile this is PCA, a quick straight-line projection; the map swaps in by itself.")

    wait_for_umap()
    features = _features(store, run_id, split, artifacts)
    return embed(features, method="pca", n_components=int(params["n_components"])), "PCA"

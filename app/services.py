"""Cached access to the store and to run data, shared by every page.

`st.cache_resource` for the store, `st.cache_data` for arrays keyed by (run id, last
update), so a page rerun never re-reads a run that has not changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from app import state
from core.artifacts import EvalArtifacts, MadeRows
from core.config import DataConfig, RunConfig
from core.data import Splits
from core.analysis import experiment_summary, sweep_summary
from core.jobs import SweepSpec, ensure_sweep_driver, ensure_worker, start_sweep
from core.paths import tailscope_home
from core.store import RunRecord, RunStore, read_json, write_json_atomic
from core.train import prepare_run_data

__all__ = ["ASSETS", "DEFAULT_DATA", "DEMO_CONFIG", "get_store", "queue_run", "load_experiment", "RunBundle", "load_bundle", "load_splits",
           "finished_runs", "start_sweep_in_background", "resume_sweep", "load_sweep_summary",
           "save_data_choice", "restore_data_choice"]

ASSETS = Path(__file__).resolve().parent.parent / "assets"  # logo, sample files
DEFAULT_DATA: dict[str, Any] = {"source": "digits", "imbalance": {"profile": "exp", "ratio": 50}}  # until one is chosen

DEMO_CONFIG = {
    "name": "demo: digits, exp ratio 50, plain CE",
    "data": DEFAULT_DATA,
    "model": {"name": "small_cnn"},
    "loss": {"name": "ce"},
    "train": {"epochs": 15, "batch_size": 64, "lr": 0.05},
}


@st.cache_resource
def _store_for(home: str) -> RunStore:
    return RunStore(home)


def get_store() -> RunStore:
    return _store_for(str(tailscope_home()))


def queue_run(config: RunConfig) -> str:
    """Queue a run (or, for a config with folds or seeds, an experiment's runs) and make
    sure a worker will pick it up; returns the run or experiment id."""
    store = get_store()
    item_id = store.create_experiment(config) if config.evaluation.is_experiment else store.create_run(config)
    ensure_worker(store)
    return item_id


def start_sweep_in_background(spec: SweepSpec) -> tuple[str, int]:
    """Create the sweep (or resume the one made from this exact spec) and start its driver
    process unless it has nothing to train: (sweep id, runs to train). A sweep of this spec
    whose driver runs already is returned as it is (runs to train: -1)."""
    store = get_store()
    existing = store.find_sweep(spec.spec_hash)
    if existing is not None and store.get_sweep(existing).status == "running":
        return existing, -1
    sweep_id, to_run, _ = start_sweep(store, spec, "local")
    if to_run:
        ensure_sweep_driver(store, sweep_id, "local")
    return sweep_id, to_run


def resume_sweep(sweep_id: str) -> int:
    """Train a stopped, cancelled or failed sweep's unfinished runs again (as running its file
    again would) in a new driver process; returns how many runs will train."""
    store = get_store()
    store.reap_dead()  # runs whose driver died are failed now, and trained again below
    record = store.get_sweep(sweep_id)
    for run in record.runs:
        if run.status in ("failed", "cancelled"):
            store.requeue(run.id)
    waiting = sum(r.status != "done" for r in record.runs)
    if waiting:
        ensure_sweep_driver(store, sweep_id, record.backend or "local")
    return waiting


@st.cache_data(show_spinner=False, max_entries=32)
def _sweep_summary(home: str, sweep_id: str, metric: str, stamp: tuple) -> dict[str, Any]:
    return sweep_summary(_store_for(home), sweep_id, metric)


def load_sweep_summary(sweep_id: str, metric: str = "balanced_accuracy") -> dict[str, Any]:
    """`core.jobs.sweep_summary`, recomputed only when one of the sweep's runs or its status changed."""
    store = get_store()
    record = store.get_sweep(sweep_id)
    stamp = (record.status, *((r.id, r.status, r.updated) for r in record.runs))
    return _sweep_summary(str(store.home), sweep_id, metric, stamp)


@st.cache_data(show_spinner=False, max_entries=32)
def _experiment(home: str, exp_id: str, stamp: tuple) -> dict[str, Any]:
    return experiment_summary(_store_for(home), exp_id)


def load_experiment(exp_id: str) -> dict[str, Any]:
    """`core.jobs.experiment_summary`, recomputed only when one of its runs changed."""
    store = get_store()
    stamp = tuple((r.id, r.updated) for r in store.get_experiment(exp_id).runs)
    return _experiment(str(store.home), exp_id, stamp)


def finished_runs() -> list[RunRecord]:
    return get_store().list_runs("done")


@dataclass(frozen=True)
class RunBundle:
    """Everything an analysis page reads about one finished run."""

    record: RunRecord
    config: RunConfig
    artifacts: EvalArtifacts
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    made_rows: MadeRows | None = None  # the training rows its resampler made, if any

    @property
    def class_names(self) -> list[str]:
        return self.metrics["dataset"]["class_names"]

    @property
    def groups(self) -> list[str]:
        return self.metrics["dataset"]["groups"]

    @property
    def modality(self) -> str:
        return self.metrics["dataset"]["modality"]


@st.cache_data(show_spinner=False, max_entries=32)
def _bundle(home: str, run_id: str, updated: float) -> RunBundle:
    store = _store_for(home)
    record = store.get(run_id)
    metrics = store.metrics(run_id)
    made = store.made_rows(run_id) if metrics.get("synthetic_rows") else None
    return RunBundle(record, RunConfig.model_validate(record.config), store.artifacts(run_id), metrics,
                     store.history(run_id), made)


def load_bundle(run_id: str) -> RunBundle:
    store = get_store()
    record = store.get(run_id)
    return _bundle(str(store.home), run_id, record.updated)


@st.cache_resource(show_spinner="Preparing the dataset…", max_entries=8)
def _splits(data_json: str) -> Splits:
    """Shared, not copied per rerun (cache_resource): pages must treat the arrays as read-only."""
    return prepare_run_data(RunConfig(data=DataConfig.model_validate_json(data_json)))


def load_splits(data: DataConfig) -> Splits:
    """A run's exact splits, re-derived from its data config (splits are seeded)."""
    return _splits(data.model_dump_json())


def _data_choice_file() -> Path:
    return tailscope_home() / "ui" / "data_config.json"


def save_data_choice(data: dict[str, Any]) -> None:
    """The dataset the Train page uses, for this session and (on disk) the next one, so a
    reload or a new tab starts where the person left off."""
    st.session_state[state.DATA_CONFIG] = data
    path = _data_choice_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, data)


def restore_data_choice() -> None:
    """A new session picks up the last saved dataset choice, if it is still valid."""
    if state.DATA_CONFIG in st.session_state or st.session_state.get(state.DATA_RESTORED):
        return
    st.session_state[state.DATA_RESTORED] = True  # once per session, not on every rerun
    try:
        saved = read_json(_data_choice_file())
        st.session_state[state.DATA_CONFIG] = DataConfig.model_validate(saved).model_dump(mode="json")
    except ValueError:  # none saved, unreadable, or from another version: start from the default
        pass

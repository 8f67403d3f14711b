"""Executors and what reads runs back as wholes: the local worker, derived runs,
experiment summaries and paired comparisons."""

from core.jobs._derived import save_derived_run
from core.jobs._experiments import EXPERIMENT_KEYS, compare_ids, experiment_summary, flat_metrics, is_experiment_id, pair_key
from core.jobs._pipeline import compute_embeddings, dataset_info, summarize_run
from core.jobs._worker import ensure_worker, environment, execute_run, worker_loop, worker_running

__all__ = ["compute_embeddings", "dataset_info", "summarize_run", "save_derived_run", "ensure_worker", "execute_run",
           "worker_loop", "worker_running", "environment", "EXPERIMENT_KEYS", "compare_ids", "experiment_summary",
           "flat_metrics", "is_experiment_id", "pair_key"]

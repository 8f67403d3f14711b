"""Executors and what reads runs back as wholes: the local worker, sweep drivers and their
executors (a local process pool, Ray), derived runs, a run's suspected label issues, experiment
summaries and paired comparisons."""

from core.jobs._derived import save_derived_run
from core.jobs._executors import BACKENDS, Executor, LocalExecutor, create_executor, run_task
from core.jobs._label_issues import compute_run_label_issues, find_run_label_issues
from core.jobs._experiments import EXPERIMENT_KEYS, compare_ids, experiment_summary, flat_metrics, is_experiment_id, pair_key
from core.jobs._pipeline import compute_embeddings, dataset_info, summarize_run
from core.jobs._sweeps import (
    SweepRefused, ensure_sweep_driver, plan_sweep, reference_of, run_sweep, start_sweep, sweep_summary, sweep_table,
)
from core.jobs._worker import ensure_worker, environment, execute_run, produce_run, worker_loop, worker_running

__all__ = ["compute_run_label_issues", "find_run_label_issues", "compute_embeddings", "dataset_info", "summarize_run", "save_derived_run", "ensure_worker", "execute_run",
           "produce_run", "worker_loop", "worker_running", "environment", "EXPERIMENT_KEYS", "compare_ids",
           "experiment_summary", "flat_metrics", "is_experiment_id", "pair_key", "BACKENDS", "Executor",
           "LocalExecutor", "create_executor", "run_task", "SweepRefused", "ensure_sweep_driver", "plan_sweep",
           "reference_of", "run_sweep", "start_sweep", "sweep_summary", "sweep_table"]

"""Executors: the local worker process that runs queued jobs."""

from core.jobs._derived import save_derived_run
from core.jobs._pipeline import compute_embeddings, dataset_info, summarize_run
from core.jobs._worker import ensure_worker, execute_run, worker_loop, worker_running

__all__ = ["compute_embeddings", "dataset_info", "summarize_run", "save_derived_run", "ensure_worker", "execute_run", "worker_loop",
           "worker_running"]

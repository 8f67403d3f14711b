"""Moving runs: the local worker, sweeps (their files, start and resume) and their drivers,
the executors that train a sweep's runs (a local process pool, Ray), and derived runs. What
finished runs say is read by `core.analysis` (experiment and sweep summaries, comparisons)."""

from core.jobs._derived import save_derived_run
from core.jobs._executors import BACKENDS, Executor, LocalExecutor, create_executor
from core.jobs._pipeline import compute_embeddings, dataset_info, summarize_run
from core.jobs._standard_fixes import BASELINES, FIXES_SEEDS, STANDARD_FIXES, baseline_configs, standard_fixes_spec
from core.jobs._sweeps import (
    MAX_CELLS, SweepCell, SweepRefused, SweepSpec, drive_sweep, ensure_sweep_driver, expand_sweep, load_sweep, plan_sweep,
    run_sweep, start_sweep, sweep_size,
)
from core.jobs._task import run_task
from core.jobs._worker import ensure_worker, environment, execute_run, produce_run, worker_loop, worker_running

__all__ = ["compute_embeddings", "dataset_info", "summarize_run", "save_derived_run", "ensure_worker", "execute_run",
           "produce_run", "worker_loop", "worker_running", "environment", "BACKENDS", "Executor", "LocalExecutor",
           "create_executor", "run_task", "MAX_CELLS", "SweepCell", "SweepRefused", "SweepSpec", "drive_sweep",
           "ensure_sweep_driver",
           "expand_sweep", "load_sweep", "plan_sweep", "run_sweep", "start_sweep", "sweep_size",
           "BASELINES", "FIXES_SEEDS", "STANDARD_FIXES", "baseline_configs", "standard_fixes_spec"]

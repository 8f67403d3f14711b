"""Moving runs: the local worker, sweeps (their files, start and resume) and their drivers,
the executors that train a sweep's runs (a local process pool, Ray), and derived runs. What
finished runs say is read by `core.analysis` (experiment and sweep summaries, comparisons).

The names load on first use (PEP 562): `python -m core.jobs` and every pool process it
spawns import this package first, and must not pay for torch and the analysis stack before
they have set themselves up (`core.child_process`).
"""

from importlib import import_module

_HOMES = {
    "_derived": ("save_derived_run",),
    "_executors": ("BACKENDS", "Executor", "LocalExecutor", "create_executor"),
    "_label_issues": ("compute_run_label_issues", "find_run_label_issues"),
    "_pipeline": ("compute_embeddings", "dataset_info", "summarize_run"),
    "_standard_fixes": ("BASELINES", "FIXES_SEEDS", "STANDARD_FIXES", "baseline_configs", "standard_fixes_spec"),
    "_sweeps": ("MAX_CELLS", "SweepCell", "SweepRefused", "SweepSpec", "drive_sweep", "ensure_sweep_driver",
                "expand_sweep", "load_sweep", "plan_sweep", "run_sweep", "start_sweep", "sweep_size"),
    "_sweep_builder": ("NO_STAGE2", "SweepChoices", "estimate_sweep_seconds", "estimate_words", "sweep_from_choices",
                       "sweep_yaml"),
    "_task": ("run_task",),
    "_worker": ("ensure_worker", "environment", "execute_run", "produce_run", "worker_loop", "worker_running"),
}
_WHERE = {name: module for module, names in _HOMES.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'core.jobs' has no attribute {name!r}")
    value = getattr(import_module(f"core.jobs.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__

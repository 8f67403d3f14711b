"""How fast do the analysis pages render for a finished 5-fold experiment?

Builds a store with a 5-fold experiment (an MLP on breast cancer, exp ratio 10) and a
lone run of the same config, then renders Results (experiment view on), Compare (the
experiment against a baseline experiment) and Calibration through Streamlit's AppTest:
the first render (cold caches) and the median of the next ones, against the same pages
for the lone run in the same process. Usage: python bench/experiment_page_speed.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

MAIN = Path(__file__).resolve().parent.parent / "app" / "main.py"
DATA = {"source": "breast_cancer", "imbalance": {"profile": "exp", "ratio": 10}}


def build_store(home: Path) -> dict[str, str]:
    from core.config import RunConfig
    from core.jobs import execute_run
    from core.store import RunStore

    store = RunStore(home)
    ids = {}
    for key, model, folds in (("mlp", "mlp", 5), ("lr", "logistic_regression", 5), ("lone", "mlp", 1)):
        config = RunConfig.model_validate({"name": key, "data": DATA, "model": {"name": model},
                                           "train": {"epochs": 10, "nc_every": 0}, "evaluation": {"folds": folds}})
        ids[key] = store.create_experiment(config) if folds > 1 else store.create_run(config)
        runs = store.get_experiment(ids[key]).runs if folds > 1 else [store.get(ids[key])]
        for run in runs:
            assert execute_run(store, store.claim(run.id, os.getpid()), embeddings=False) == "done"
    return ids


def render(page: str, run_id: str, repeats: int, setup=None) -> tuple[float, float]:
    """(first render, median of the next `repeats`) in seconds for one page in one session."""
    from streamlit.testing.v1 import AppTest

    from app import state

    at = AppTest.from_file(str(MAIN), default_timeout=300)
    at.session_state[state.RUN_ID] = run_id
    at.run()
    at.switch_page(f"../pages/{page}.py")
    start = time.perf_counter()
    at.run()
    if setup:
        setup(at)
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - start)
    assert not at.exception, [e.value for e in at.exception]
    return first, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="page-speed-"))
    os.environ["TAILSCOPE_HOME"] = str(home)
    print("building the store (two 5-fold experiments and a lone run)…", flush=True)
    ids = build_store(home)
    from core.store import RunStore

    fold_run = RunStore(home).get_experiment(ids["mlp"]).runs[0].id
    experiments = lambda at: at.segmented_control(key="compare.mode").set_value("Experiments").run()  # noqa: E731
    print(f"{'page':<34}{'first (s)':>10}{'again (s)':>10}{'lone run again (s)':>20}{'ratio':>8}")
    for page, setup in (("results", None), ("calibration", None), ("compare", experiments)):
        first, again = render(page, fold_run, args.repeats, setup)
        _, lone = render(page, ids["lone"], args.repeats, None if page != "compare" else None)
        print(f"{page + ' (5-fold experiment)':<34}{first:>10.2f}{again:>10.2f}{lone:>20.2f}{again / lone:>8.2f}",
              flush=True)


if __name__ == "__main__":
    main()

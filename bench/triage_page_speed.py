"""How fast do the triage controls update the page at 10,000 test samples?

Builds a store with one run on an uploaded 40,000-row table (10 classes, exp ratio 20;
10,000 test rows), then, through Streamlit's AppTest in one session: the Rare-class triage
page after a threshold move and after a prevalence change, and Results after switching the
class mix from the test split to balanced and back. Each is the median of `--repeats`
changes; the baseline is the same page rerun with nothing changed, in the same process
(what Streamlit itself costs). Asserts nothing. Usage: python bench/triage_page_speed.py
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

MAIN = Path(__file__).resolve().parent.parent / "app" / "main.py"
ROWS, CLASSES, FEATURES = 40_000, 10, 12


def build_run(home: Path) -> str:
    from core.config import RunConfig
    from core.data import save_upload
    from core.jobs import execute_run
    from core.store import RunStore

    rng = np.random.default_rng(0)
    y = rng.integers(0, CLASSES, ROWS)
    x = rng.normal(size=(ROWS, FEATURES)) + 1.5 * np.eye(CLASSES, FEATURES)[y]
    text = io.StringIO()
    text.write(",".join([f"f{j}" for j in range(FEATURES)] + ["label"]) + "\n")
    for row, cls in zip(x.round(3).tolist(), y):
        text.write(",".join(map(str, row)) + f",c{cls}\n")
    source = save_upload(text.getvalue().encode(), "ten-thousand.csv")
    store = RunStore(home)
    config = RunConfig.model_validate({
        "name": "10k test rows", "data": {"source": source, "label_column": "label", "imbalance": {"profile": "none"},
                                          "test_fraction": 0.25},
        "model": {"name": "mlp", "hidden": 32}, "train": {"epochs": 3, "min_steps": 0, "nc_every": 0}})
    run_id = store.create_run(config)
    assert execute_run(store, store.claim(run_id, os.getpid()), embeddings=False) == "done"
    return run_id


def timed(at, change, repeats: int) -> tuple[float, float]:
    """(median seconds of a rerun after `change(at, i)`, median of a rerun with no change)."""
    changed, still = [], []
    for i in range(repeats):
        change(at, i)
        start = time.perf_counter()
        at.run()
        changed.append(time.perf_counter() - start)
        start = time.perf_counter()
        at.run()
        still.append(time.perf_counter() - start)
    assert not at.exception, [e.value for e in at.exception]
    return statistics.median(changed), statistics.median(still)


def open_page(page: str, run_id: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(MAIN), default_timeout=300)
    at.query_params["run"] = run_id
    at.run()
    at.switch_page(f"../pages/{page}.py")
    at.run()
    at.run()  # warm caches: the numbers below are the moves, not the first open
    return at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="triage-page-speed-"))
    os.environ["TAILSCOPE_HOME"] = str(home)
    print("training a run with 10,000 test rows…", flush=True)
    run_id = build_run(home)
    from core.store import RunStore

    n_test = RunStore(home).artifacts(run_id).labels.shape[0]
    triage = open_page("triage", run_id)
    key = lambda name: f"triage.{name}.{run_id}"  # noqa: E731
    threshold = lambda at, i: at.slider(key=key("threshold")).set_value(0.1 + 0.1 * i)  # noqa: E731
    prevalence = lambda at, i: at.number_input(key=key("prevalence")).set_value(1.0 + i)  # noqa: E731
    results = open_page("results", run_id)
    kinds = ["balanced", "test"]
    mix = lambda at, i: at.radio(key="results.prior.kind").set_value(kinds[i % 2])  # noqa: E731
    print(f"{n_test:,} test rows, {CLASSES} classes")
    print(f"{'change':<40}{'rerun (s)':>10}{'no change (s)':>15}{'ratio':>8}")
    for label, at, change in (("triage: move the threshold", triage, threshold),
                              ("triage: change the prevalence", triage, prevalence),
                              ("results: class mix balanced <-> test", results, mix)):
        moved, still = timed(at, change, args.repeats)
        print(f"{label:<40}{moved:>10.3f}{still:>15.3f}{moved / still:>8.2f}", flush=True)


if __name__ == "__main__":
    main()

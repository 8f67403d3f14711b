"""Shared fixtures: a store holding tiny finished runs, and AppTest page openers."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

# Cache compiled code for this run and the processes it starts. Where the environment sets
# PYTHONDONTWRITEBYTECODE (as container images often do), pytest rewrote the asserts of every
# test module again in each process and every Python process compiled `core`, `app` and
# `pages` from source: 11 of the 20 CPU-s that collecting the tests took per process here,
# and again in each background worker and CLI call. The caches go where Python puts them
# (`__pycache__`, ignored by git) and are rebuilt when a source file changes.
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
    sys.dont_write_bytecode = False

import pytest  # noqa: E402

from core.text import WORD_JOINER  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
os.environ["TAILSCOPE_RAISE_ERRORS"] = "1"  # AppTests see page errors; users get a friendly notice instead
# The suite runs as two processes on two cores (`-n 2`): each gets one thread for torch, BLAS
# and numba, as LocalExecutor gives each pool process its share of the cores; the workers,
# servers and CLI calls the tests start inherit it. Two threads each only spin against the
# other process: a tiny lesson's training took five times the CPU.
for _threads in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")
MAIN = ROOT / "app" / "main.py"


def _scan_components_once() -> None:
    """Every new AppTest scans the metadata of every installed package for Streamlit components
    (0.8 s of a 1.3 s page test here, paid by each of the suite's hundreds of AppTests); the
    installed packages do not change while the tests run, so one scan serves them all."""
    import functools

    from streamlit.components.v2 import manifest_scanner

    if not hasattr(manifest_scanner.scan_component_manifests, "cache_info"):
        manifest_scanner.scan_component_manifests = functools.cache(manifest_scanner.scan_component_manifests)


_scan_components_once()

TINY_IMAGE_RUN = {
    "name": "tiny digits ce",
    "data": {"source": "digits", "imbalance": {"profile": "exp", "ratio": 20}},
    "model": {"name": "small_cnn", "width": 8},
    "loss": {"name": "ce"},
    "train": {"epochs": 2, "batch_size": 64, "lr": 0.05, "nc_every": 1, "train_subset": 300, "min_steps": 0},
}
TINY_TABLE_RUN = {
    "name": "tiny wine ce",
    "data": {"source": "wine", "imbalance": {"profile": "exp", "ratio": 5}},
    "model": {"name": "mlp", "hidden": 16},
    "loss": {"name": "ce"},
    "train": {"epochs": 2, "batch_size": 32, "lr": 0.05, "nc_every": 1, "min_steps": 0},
}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Keep `--dist loadgroup` grouping by `xdist_group` under pytest 9.2. xdist 3.8 tells the
    scheduler a test's group by appending "@group" to its node id through `item._nodeid`, which
    pytest 9.2 no longer reads (node ids are structured now), so every group was silently
    spread over the workers, each building the group's shared fixtures again
    (pytest-dev/pytest-xdist#1386). A no-op where xdist's own suffix took effect."""
    if not getattr(config.option, "loadgroup", False):
        return
    from _pytest.nodeid import NodeId

    # The slow tests (and the groups holding one) are handed out first, so the two workers
    # finish together rather than one starting a long test near the end (with the Makefile's
    # --no-loadscope-reorder, xdist keeps this order instead of sorting groups by size).
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    for item in items:
        groups = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                         for m in item.iter_markers("xdist_group")})
        suffix = "@" + "_".join(groups)
        if groups and not item.nodeid.endswith(suffix):
            item._id = NodeId.parse(item.nodeid + suffix)


def pytest_collection_finish(session):
    """Less garbage-collector work in a test process that holds torch, Streamlit and every
    test module: what is loaded by now stays for the whole run, so it is frozen out of the
    collector's passes, and young collections run every 10,000 allocations instead of 700
    (the page and contract tests spent 2.7 CPU-s collecting garbage, 0.9 after)."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


def shown(markdown: str) -> str:
    """What a reader sees of markdown whose user text `core.text.md` escaped: the backslash
    escapes resolved and the invisible word joiners dropped (AppTest gives the source)."""
    return re.sub(r"\\(.)", r"\1", markdown).replace(WORD_JOINER, "")


def open_at_address(page: str, **address: str):
    """The app in AppTest, opened at `page` with `address` as its query parameters (as a
    bookmark or a shared link would), after the first run of the entry script."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(MAIN), default_timeout=120)
    for key, value in address.items():
        at.query_params[key] = value
    at.run()
    at.switch_page(f"../pages/{page}.py")
    at.run()
    return at


def make_run(home: Path, raw: dict, *, embeddings: bool = True) -> str:
    """Queue and execute one run synchronously in `home`; returns its id."""
    from core.config import RunConfig
    from core.jobs import execute_run
    from core.store import RunStore

    store = RunStore(home)
    run_id = store.create_run(RunConfig.model_validate(raw))
    state = execute_run(store, store.claim(run_id, os.getpid()), embeddings=embeddings)
    assert state == "done", store.get(run_id).error
    return run_id


# Names that are markup: each must show as these characters on every page, never as an
# image (a request to that host), bold text, an element, a colour or a template value.
HOSTILE_CLASSES = ["![x](http://203.0.113.9/x.png)", "<b>bold</b>", "<img src=x onerror=alert(1)>", ":red[rare]"]
HOSTILE_COLUMNS = ["<b>width</b>", "![c](http://203.0.113.9/c.png)", ":blue[depth]", "%{x} weight"]
HOSTILE_LABEL_COLUMN = "<i>label</i>"
HOSTILE_FILE = "__shout__.csv"  # stored names keep only letters, digits and . _ - (markdown bolds __x__)
HOSTILE_RUN_NAMES = ["![pwn](http://203.0.113.9/p.png) <script>alert(1)</script>", ":red[second] **run** %{y}"]


def make_hostile_runs(home: Path, *, embeddings: bool = False, rows: int = 200) -> dict:
    """Two finished runs (same data, so they compare) on an uploaded table whose file name,
    column names and class labels are markup, under markup run names; the upload is also
    the saved data choice, so the Data and Train pages show it. Returns the run ids in the
    order of HOSTILE_RUN_NAMES; the first is the newest, which pages open on."""
    import csv
    import io

    import numpy as np

    from core.data import save_upload
    from core.store import write_json_atomic

    rng = np.random.default_rng(5)
    y = rng.permutation(np.arange(rows) % len(HOSTILE_CLASSES))
    x = np.eye(len(HOSTILE_CLASSES))[y] * 3 + rng.normal(scale=0.8, size=(rows, len(HOSTILE_CLASSES)))
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow([*HOSTILE_COLUMNS[:2], HOSTILE_LABEL_COLUMN, *HOSTILE_COLUMNS[2:]])
    for row, cls in zip(x.round(4).tolist(), y):
        writer.writerow([*row[:2], HOSTILE_CLASSES[cls], *row[2:]])
    previous = os.environ.get("TAILSCOPE_HOME")
    os.environ["TAILSCOPE_HOME"] = str(home)
    try:
        source = save_upload(text.getvalue().encode(), HOSTILE_FILE)
        data = {"source": source, "label_column": HOSTILE_LABEL_COLUMN, "imbalance": {"profile": "exp", "ratio": 4}}
        write_json_atomic(home / "ui" / "data_config.json", data)
        # two methods, not two seeds of one: Compare opens a pair that differs in its set-up
        losses = ("ce", "weighted_ce")
        ids = [make_run(home, {**TINY_TABLE_RUN, "name": name, "data": data, "loss": {"name": losses[seed]}, "train": {
            **TINY_TABLE_RUN["train"], "seed": seed}}, embeddings=embeddings)
            for seed, name in enumerate(reversed(HOSTILE_RUN_NAMES))][::-1]
    finally:
        if previous is None:
            os.environ.pop("TAILSCOPE_HOME", None)
        else:
            os.environ["TAILSCOPE_HOME"] = previous
    return {"home": home, "source": source, "runs": ids}


@pytest.fixture(autouse=True)
def queue_without_workers(monkeypatch):
    """Pages queue runs without starting a worker process: nothing a test starts outlives it.
    (The browser test runs its own server, whose worker it stops itself.)"""
    monkeypatch.setattr("app.services.ensure_worker", lambda store: False)
    monkeypatch.setattr("app.services.ensure_sweep_driver", lambda store, sweep_id, *args, **kwargs: False)


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory) -> dict:
    """A store with one finished image run and one finished table run (with UMAP)."""
    home = tmp_path_factory.mktemp("tailscope-home")
    previous = os.environ.get("TAILSCOPE_HOME")
    os.environ["TAILSCOPE_HOME"] = str(home)
    try:
        table = make_run(home, TINY_TABLE_RUN)
        image = make_run(home, TINY_IMAGE_RUN)  # newest: pages open on it
    finally:
        if previous is None:
            os.environ.pop("TAILSCOPE_HOME", None)
        else:
            os.environ["TAILSCOPE_HOME"] = previous
    return {"home": home, "image_run": image, "table_run": table}


@pytest.fixture(scope="session")
def experiment_store(tmp_path_factory) -> dict:
    """A store with two finished 3-fold experiments on wine (logistic regression, strong and
    weak regularisation): fitted in seconds, enough for every experiment view."""
    from core.config import RunConfig
    from core.jobs import execute_run
    from core.store import RunStore

    home = tmp_path_factory.mktemp("experiments-home")
    store = RunStore(home)
    ids = {}
    for key, c in (("strong", 0.01), ("plain", 1.0)):
        config = RunConfig.model_validate({"name": f"wine lr C={c}", "data": {"source": "wine", "imbalance": {
            "profile": "exp", "ratio": 5}}, "model": {"name": "logistic_regression", "C": c},
            "evaluation": {"folds": 3}})
        ids[key] = store.create_experiment(config)
        for run in store.get_experiment(ids[key]).runs:
            assert execute_run(store, store.claim(run.id, os.getpid()), embeddings=False) == "done"
    return {"home": home, **ids}


@pytest.fixture
def experiment_home(experiment_store, monkeypatch) -> dict:
    monkeypatch.setenv("TAILSCOPE_HOME", str(experiment_store["home"]))
    return experiment_store


@pytest.fixture
def stored_home(tiny_store, monkeypatch) -> dict:
    monkeypatch.setenv("TAILSCOPE_HOME", str(tiny_store["home"]))
    return tiny_store


@pytest.fixture
def copied_home(tiny_store, tmp_path, monkeypatch) -> dict:
    """A private copy of the stored runs, for tests that add, change or delete runs or files."""
    import shutil

    home = tmp_path / "home"
    shutil.copytree(tiny_store["home"], home)
    monkeypatch.setenv("TAILSCOPE_HOME", str(home))
    return {**tiny_store, "home": home}


@pytest.fixture
def empty_home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def open_page():
    """open_page("results", run_id=None) -> an AppTest that has rendered that page."""
    from streamlit.testing.v1 import AppTest

    def _open(page: str | None = None, *, run_id: str | None = None, timeout: float = 120):
        at = AppTest.from_file(str(MAIN), default_timeout=timeout)
        if run_id is not None:
            from app import state

            at.session_state[state.RUN_ID] = run_id
        at.run()
        if page:
            at.switch_page(f"../pages/{page}.py")
            at.run()
        return at

    return _open


def shown_table(element):
    """What a reader sees of an `st.table` element whose text cells, headers and index were
    escaped for Markdown (`app.fit_tables.wrapping_table`): its DataFrame with `shown` applied."""
    frame = element.value

    def text(value):
        return shown(value) if isinstance(value, str) else value

    return frame.map(text).rename(index=text, columns=text)

"""Faults: a small run of `bench/fault_injection.py` (the worker SIGKILLed right after a
claim, during training and during the embedding step; every run file damaged, each way at
least once), asserted rather than printed. Nothing may be lost, left half-written or
looking busy, and no traceback may reach the CLI or the pages."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN_FILES = ("eval.npz", "model.safetensors", "metrics.json", "history.json", "config.json")


def _fault_injection():
    spec = importlib.util.spec_from_file_location("fault_injection", ROOT / "bench" / "fault_injection.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_killed_workers_lose_no_run_and_damaged_files_show_no_traceback(tmp_path):
    faults = _fault_injection()
    raise_errors = os.environ.get("TAILSCOPE_RAISE_ERRORS")
    report = faults.run(seed=1, home=tmp_path / "home", points=("claimed", "training", "embedding"), files=RUN_FILES,
                        log=lambda *args: None, cli_here=True)
    assert os.environ.get("TAILSCOPE_RAISE_ERRORS") == raise_errors, "the environment is restored"
    summary = "\n".join(report.lines())

    assert {k["point"]: k["hit"] for k in report.kills} == {"claimed": "claimed", "training": "train",
                                                           "embedding": "embedding"}, summary
    assert report.lost == [] and report.half_written == [] and report.stale == [], summary
    assert report.integrity == "ok", summary
    statuses = list(report.statuses.values())
    assert statuses.count("failed") == 2 and set(statuses) == {"done", "failed"}, summary
    assert all("stopped while running this job" in reason for reason in report.failed_reasons), summary
    assert len(report.requeued) == 2 and report.requeued_done == 2, summary

    assert sorted(d["file"] for d in report.damaged) == sorted(RUN_FILES), summary
    assert {d["mode"] for d in report.damaged} == {"truncate", "garbage", "wrong-shape", "wrong-fields"}, summary
    assert report.checks >= 7 * 3 + 7 * 5, summary  # every case: three CLI calls and five pages
    assert report.shown == [] and report.unreported == [], summary
    assert report.ok


def test_a_damaged_embedding_cache_is_no_page_error(copied_home, open_page):
    """A damaged cached map is a cache miss: dropped and computed again, never a page error."""
    cached = sorted((copied_home["home"] / "runs" / copied_home["image_run"] / "embeddings").glob("*.npy"))
    assert cached
    for path in cached:
        path.write_bytes(path.read_bytes()[:40])
    at = open_page("geometry", run_id=copied_home["image_run"])
    assert not at.exception, [e.value for e in at.exception]
    from core.analysis import load_cached

    cached[0].write_bytes(b"\x93NUMPY garbage")
    assert load_cached(cached[0]) is None and not cached[0].exists(), "read as a miss and dropped, to be recomputed"


def test_show_of_a_run_does_not_load_torch(stored_home):
    """`tailscope show RUN` reads JSON: without torch it answers in under a second, not six
    (the fault script calls it for every damaged run)."""
    code = ("import sys; from core.cli import main; assert main(['show', sys.argv[1], '--json']) == 0; "
            "assert 'torch' not in sys.modules, 'tailscope show imported torch'")
    proc = subprocess.run([sys.executable, "-c", code, stored_home["image_run"]], capture_output=True, text=True,
                          env={**os.environ, "TAILSCOPE_HOME": str(stored_home["home"])}, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_a_pool_worker_dies_with_the_process_that_started_it(tmp_path):
    """What keeps a killed sweep driver from leaving its pool training on: a child that asked
    (core.child_process) is killed by the kernel when its parent is."""
    import signal
    import time

    marker = tmp_path / "grandchild.pid"
    parent = (
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', "
        "'import os, sys, time; from core.child_process import die_with_parent; "
        "die_with_parent(int(sys.argv[1])); open(sys.argv[2], \"w\").write(str(os.getpid())); time.sleep(120)', "
        "str(os.getpid()), sys.argv[1]])\n"
        "time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", parent, str(marker)], env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 60
    while not marker.exists() or not marker.read_text():
        assert time.monotonic() < deadline, "the grandchild never started"
        time.sleep(0.05)
    grandchild = int(marker.read_text())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{grandchild}").exists() and "Z" not in Path(f"/proc/{grandchild}/stat").read_text().split()[2]:
        assert time.monotonic() < deadline, "the grandchild outlived its parent"
        time.sleep(0.05)


def test_a_sweep_run_whose_driver_died_goes_back_to_its_queue(tmp_path):
    """reap_dead: a single run whose worker died fails with the reason; a sweep's run whose
    driver died is queued again for the resume, never left failed."""
    from core.config import RunConfig
    from core.store import RunStore

    store = RunStore(tmp_path)
    single = store.create_run(RunConfig())
    sweep = store.create_sweep("s", {}, "hash")
    in_sweep = store.create_run(RunConfig(), queue=sweep)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for run_id in (single, in_sweep):
        assert store.claim(run_id, dead.pid) is not None
    assert sorted(store.reap_dead()) == sorted([single, in_sweep])
    assert store.get(single).status == "failed" and "stopped while running" in store.get(single).error
    assert store.get(in_sweep).status == "queued" and store.get(in_sweep).error is None

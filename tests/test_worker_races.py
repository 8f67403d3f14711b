"""The job machinery's edges: a probe racing a starting worker, a job queued while the worker
retires, half-written maps of a killed worker, and a cancelled task of the local pool."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from core.config import RunConfig
from core.store import RunStore

CONFIG = RunConfig.model_validate({"name": "r", "data": {"source": "wine"}})


def _fake_execute(store, record, **kwargs):
    store.finish(record.id, {"accuracy": 1.0})
    return "done"


def _fake_spawn(monkeypatch, spawned: list, pid: int) -> None:
    """`ensure_worker` records what it would start instead of starting a process."""
    from types import SimpleNamespace

    fake = SimpleNamespace(Popen=lambda *a, **k: spawned.append(a) or SimpleNamespace(pid=pid),
                           DEVNULL=subprocess.DEVNULL, STDOUT=subprocess.STDOUT)
    monkeypatch.setattr("core.jobs._worker.subprocess", fake)


def test_a_probe_holding_the_lock_does_not_turn_a_starting_worker_away(tmp_path, monkeypatch):
    """`worker_running` probes by taking the worker lock for a moment; a worker starting in
    that moment used to find it taken and exit, leaving the job it was started for queued."""
    from core.jobs._worker import _Lock, worker_loop

    monkeypatch.setattr("core.jobs._worker.execute_run", _fake_execute)
    store = RunStore(tmp_path)
    run_id = store.create_run(CONFIG)
    probe = _Lock(store.home / "worker.lock")
    assert probe.acquire()
    threading.Timer(0.3, probe.release).start()  # a slow probe: far longer than a real one
    assert worker_loop(store, idle_exit_s=0, poll_s=0.01) == 1
    assert store.get(run_id).status == "done"


def test_a_worker_that_really_holds_the_lock_still_turns_a_second_one_away(tmp_path, monkeypatch):
    from core.jobs._worker import _Lock, worker_loop

    monkeypatch.setattr("core.jobs._worker.LOCK_PATIENCE_S", 0.2)
    held = _Lock(tmp_path / "worker.lock")
    RunStore(tmp_path)
    assert held.acquire()
    try:
        assert worker_loop(RunStore(tmp_path), idle_exit_s=0) == -1
    finally:
        held.release()


def test_a_job_queued_while_the_worker_retires_is_not_left_behind(tmp_path, monkeypatch):
    """The race: the worker's last look finds nothing; a page queues a run and asks for a
    worker, whose probe sees the lock still held and starts none; then the worker exits.
    The submission lands right after that last empty look."""
    from core.jobs import ensure_worker
    from core.jobs._worker import worker_loop

    monkeypatch.setattr("core.jobs._worker.execute_run", _fake_execute)
    spawned = []
    _fake_spawn(monkeypatch, spawned, pid=0)
    store = RunStore(tmp_path)
    queued: list[str] = []
    real_claim = store.claim_next

    def claim_then_submit(pid):
        record = real_claim(pid)
        if record is None and not queued:
            queued.append(store.create_run(CONFIG))
            ensure_worker(store)  # a page queueing a run in the race window
        return record

    monkeypatch.setattr(store, "claim_next", claim_then_submit)
    done = worker_loop(store, idle_exit_s=0, poll_s=0.01)
    assert queued and (store.get(queued[0]).status == "done" or spawned), "the job has a worker"
    assert done == 1 and not spawned, "the retiring worker took it itself"
    assert not (store.home / "worker.pid").exists() or spawned


def test_a_retired_worker_gives_its_pid_file_up_so_the_next_submission_starts_one(tmp_path, monkeypatch):
    from core.jobs import ensure_worker
    from core.jobs._worker import worker_loop

    spawned = []
    _fake_spawn(monkeypatch, spawned, pid=os.getpid())
    store = RunStore(tmp_path)
    (store.home / "worker.pid").write_text(str(os.getpid()))  # this process plays the worker the app started
    assert ensure_worker(store) is False, "a live worker named in the pid file counts as running"
    assert worker_loop(store, idle_exit_s=0, poll_s=0.01) == 0
    assert not (store.home / "worker.pid").exists()
    assert ensure_worker(store) is True and len(spawned) == 1


def test_reaping_an_interrupted_map_removes_its_half_written_files(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create_run(CONFIG)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    store.claim(run_id, gone.pid)
    store.finish(run_id, {"accuracy": 0.5})
    store.set_progress(run_id, {"stage": "embedding", "fraction": 1.0})
    cache = store.run_dir(run_id) / "embeddings"
    cache.mkdir(parents=True)
    (cache / ".test-abc123.tmp").write_bytes(b"\x93NUMPY half")
    (cache / "test-ok.npy").write_bytes(b"kept")
    store.reap_dead()
    assert store.get(run_id).progress["embedding"] == "interrupted"
    assert [p.name for p in cache.iterdir()] == ["test-ok.npy"]


@pytest.mark.slow
def test_a_cancelled_local_pool_task_stops_instead_of_running_to_its_end(tmp_path, monkeypatch):
    """Cancel used to mark the run cancelled while its process trained on to the last epoch,
    keeping a pool worker from the next run. Now the task stops between batches."""
    from core.jobs import LocalExecutor

    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    long_run = RunConfig.model_validate({"data": {"source": "digits"}, "model": {"name": "mlp", "hidden": 16},
                                         "train": {"epochs": 2000, "min_steps": 0, "nc_every": 0, "batch_size": 32}})
    executor = LocalExecutor(workers=1, threads=1)
    try:
        handle = executor.submit(long_run.model_dump_json())
        deadline = time.monotonic() + 120
        while not handle.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(3)  # into the training loop
        assert handle.running()
        cancelled_at = time.monotonic()
        executor.cancel(handle)
        [(_, result)] = executor.finished([handle], timeout=120)
        stopped_after = time.monotonic() - cancelled_at
    finally:
        executor.shutdown()
    assert "files" not in result and "cancel" in result["error"].lower(), result
    assert stopped_after < 60, f"2000 epochs would take many minutes; it stopped {stopped_after:.1f} s after cancel"
    print(json.dumps({"stopped_after_s": round(stopped_after, 2)}))


def test_shutting_the_pool_down_stops_its_running_tasks(tmp_path):
    from core.jobs._task import _stop_check

    folder = tmp_path / "stops"
    folder.mkdir()
    stop = _stop_check(str(folder / "0.stop"))
    assert stop() is False
    (folder / "0.stop").touch()
    assert stop() is True
    (folder / "0.stop").unlink()
    folder.rmdir()
    assert stop() is True, "the executor's folder removed at shutdown"
    assert _stop_check(None) is None


def test_the_worker_maps_a_lone_run_and_an_experiments_first_run_only(tmp_path, monkeypatch):
    """Further seeds of an experiment are mapped on request (Geometry draws PCA meanwhile),
    not by the worker after each one: on small runs the map costs as much as the training."""
    from conftest import TINY_TABLE_RUN

    from core.jobs import _worker

    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    mapped: list[str] = []
    monkeypatch.setattr(_worker, "compute_embeddings", lambda store, run_id, **kw: mapped.append(run_id))
    store = RunStore(tmp_path)
    lone = store.create_run(RunConfig.model_validate(TINY_TABLE_RUN))
    experiment = store.create_experiment(RunConfig.model_validate({**TINY_TABLE_RUN, "evaluation": {"seeds": [0, 1, 2]}}))
    seeds = [r.id for r in store.get_experiment(experiment).runs]
    for run_id in [*reversed(seeds), lone]:  # the order the worker takes them does not matter
        assert _worker.execute_run(store, store.claim(run_id, os.getpid())) == "done"
    assert sorted(mapped) == sorted([lone, seeds[0]])
    assert all(store.get(r).progress["stage"] == "done" for r in [*seeds, lone])

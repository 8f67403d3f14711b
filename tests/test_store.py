"""Run store and job queue: atomic writes, states, dead workers, no pickle."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from core.config import RunConfig
from core.store import RunNotFound, RunStore, write_json_atomic
from core.store._files import read_json

CONFIG = RunConfig.model_validate({"name": "q", "data": {"source": "wine"}, "model": {"name": "mlp"},
                                   "train": {"epochs": 2}})


def test_queue_states_and_order(tmp_path):
    store = RunStore(tmp_path)
    first, second = store.create_run(CONFIG), store.create_run(CONFIG)
    assert [r.id for r in store.list_runs()] == [second, first], "newest first"
    claimed = store.claim_next(os.getpid())
    assert claimed.id == first and claimed.status == "running"
    assert store.claim(first, os.getpid()) is None, "a running job cannot be claimed twice"
    store.finish(first, {"accuracy": 0.5})
    assert store.get(first).status == "done" and store.get(first).summary == {"accuracy": 0.5}
    assert store.request_cancel(second) == "cancelled"
    assert store.claim_next(os.getpid()) is None
    assert (store.run_dir(first) / "config.json").exists()
    assert store.config_of(first)["name"] == "q"


def test_cancel_of_a_running_job_is_a_flag_the_worker_reads(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create_run(CONFIG)
    store.claim(run_id, os.getpid())
    assert not store.cancel_requested(run_id)
    assert store.request_cancel(run_id) == "running"
    assert store.cancel_requested(run_id)


def test_dead_worker_marks_its_job_failed_with_a_reason(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create_run(CONFIG)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    store.claim(run_id, gone.pid)
    assert store.reap_dead() == [run_id]
    record = store.get(run_id)
    assert record.status == "failed" and "stopped while running" in record.error


def test_a_worker_killed_while_embedding_leaves_the_run_done_not_embedding_forever(tmp_path):
    """Found by bench/fault_injection.py: the worker maps a run's features after `finish`;
    killed there, the run said "embedding" for good, so the Geometry page waited for a map
    no one was computing. The next reap (worker start, submission, `tailscope runs`) ends it."""
    store = RunStore(tmp_path)
    killed, alive = store.create_run(CONFIG), store.create_run(CONFIG)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    for run_id, pid in ((killed, gone.pid), (alive, os.getpid())):
        store.claim(run_id, pid)
        store.finish(run_id, {"accuracy": 0.5})
        store.set_progress(run_id, {"stage": "embedding", "fraction": 1.0})
    assert store.reap_dead() == []
    assert store.get(killed).status == "done" and store.get(killed).progress["stage"] == "done"
    assert store.get(alive).progress["stage"] == "embedding", "a live worker's embedding step is left alone"


def test_a_worker_killed_right_after_finish_leaves_a_run_that_says_so(tmp_path, monkeypatch):
    """Found by bench/fault_injection.py: `finish` and the "embedding" mark were two writes;
    a kill between them left a done run saying "evaluate" for good. Now one write."""
    from core.jobs import execute_run

    class Killed(BaseException):  # SIGKILL: no `except Exception`, no clean-up of our own
        pass

    def kill(*args, **kwargs):
        raise Killed

    store = RunStore(tmp_path)
    run_id = store.create_run(RunConfig.model_validate({"data": {"source": "wine"}, "model": {"name": "mlp", "hidden": 8},
                                                        "train": {"epochs": 1, "nc_every": 0, "min_steps": 0}}))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    set_progress = store.set_progress
    monkeypatch.setattr(store, "set_progress", lambda rid, info: kill() if info.get("stage") in ("embedding", "done")
                        else set_progress(rid, info))
    monkeypatch.setattr("core.jobs._worker.compute_embeddings", kill)
    with pytest.raises(Killed):
        execute_run(store, store.claim(run_id, gone.pid))
    record = store.get(run_id)
    assert record.status == "done" and record.progress["stage"] == "embedding"
    store.reap_dead()
    assert store.get(run_id).progress["stage"] == "done"


def test_a_killed_runs_temp_files_go_when_it_is_reaped(tmp_path):
    """Found by bench/fault_injection.py: a kill while `eval.npz` was written left
    `eval.tmp.npz` in the failed run's folder."""
    store = RunStore(tmp_path)
    run_id = store.create_run(CONFIG)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    store.claim(run_id, gone.pid)
    folder = store.run_dir(run_id)
    write_json_atomic(folder / "metrics.json", {"dataset": {}})
    for name in ("eval.tmp.npz", "model.tmp", ".history.json.x1y2.tmp", "embeddings/.test-ab12.tmp"):
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_bytes(b"half")
    assert store.reap_dead() == [run_id]
    left = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert left == ["config.json", "meta.json", "metrics.json"]


def test_a_run_created_as_running_belongs_to_its_process(tmp_path):
    """A derived run being saved (created running) is not reaped as one whose worker died."""
    store = RunStore(tmp_path)
    run_id = store.create_run(CONFIG, status="running")
    assert store.get(run_id).worker_pid == os.getpid()
    assert store.reap_dead() == [] and store.get(run_id).status == "running"


def test_atomic_write_keeps_the_old_file_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "history.json"
    write_json_atomic(path, [{"epoch": 1}])

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        write_json_atomic(path, [{"epoch": 1}, {"epoch": 2}])
    assert read_json(path) == [{"epoch": 1}]
    assert [p.name for p in tmp_path.iterdir()] == ["history.json"], "no temp file left behind"


def test_delete_rename_and_unknown_ids(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create_run(CONFIG)
    store.rename(run_id, "  better  ")
    assert store.get(run_id).name == "better"
    with pytest.raises(ValueError):
        store.rename(run_id, " ")
    store.delete(run_id)
    assert not store.run_dir(run_id).exists()
    with pytest.raises(RunNotFound):
        store.get(run_id)
    with pytest.raises(RunNotFound):
        store.run_dir("../etc")


def test_eval_arrays_load_without_pickle(tiny_store):
    store = RunStore(tiny_store["home"])
    path = store.run_dir(tiny_store["image_run"]) / "eval.npz"
    with np.load(path, allow_pickle=False) as z:
        assert {"logits", "labels", "features", "head_weight", "head_bias", "train_features", "train_labels",
                "class_counts"} <= set(z.files)
    assert (store.run_dir(tiny_store["image_run"]) / "model.safetensors").exists()


@pytest.mark.slow
def test_background_worker_runs_a_queued_job(tmp_path, monkeypatch):
    from core.jobs import ensure_worker, worker_running

    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    store = RunStore(tmp_path)
    run_id = store.create_run(RunConfig.model_validate(
        {"data": {"source": "wine"}, "model": {"name": "mlp", "hidden": 8}, "train": {"epochs": 1, "nc_every": 0, "min_steps": 0}}))
    assert ensure_worker(store, idle_exit_s=2)
    deadline = time.time() + 120
    while store.get(run_id).status in ("queued", "running") and time.time() < deadline:
        time.sleep(0.3)
    assert store.get(run_id).status == "done", store.get(run_id).error
    # After the run the worker still draws its 2-D map (UMAP: tens of seconds on a loaded
    # 2-core machine) before it can sit idle; the bound is for a worker that never leaves.
    deadline = time.time() + 300
    while worker_running(store) and time.time() < deadline:
        time.sleep(0.3)
    assert not worker_running(store), "an idle worker exits"


def test_many_quick_submissions_start_one_worker(tmp_path):
    """Ten threads asking at once (pages, CLI) start one worker process, not ten."""
    import os
    import signal
    import threading

    from core.jobs import ensure_worker
    from core.store import pid_alive

    store = RunStore(tmp_path)
    started = []
    threads = [threading.Thread(target=lambda: started.append(ensure_worker(store, idle_exit_s=30)))
               for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pid = int((tmp_path / "worker.pid").read_text())
    try:
        assert started.count(True) == 1 and pid_alive(pid)
        assert ensure_worker(store) is False, "a worker still starting counts as running"
    finally:
        os.kill(pid, signal.SIGTERM)


def test_annotations_are_kept_apart_and_checked(tmp_path):
    """What a person saves with a run (an operating point, case reviews) is one JSON file
    each, read back as written; unknown names, missing runs and damaged files are refused."""
    from core.config import RunConfig
    from core.store import RunFileDamaged, RunNotFound, RunStore

    store = RunStore(tmp_path)
    run_id = store.create_run(RunConfig.model_validate({"data": {"source": "wine"}}))
    assert store.annotation(run_id, "reviews") == {}
    store.write_annotation(run_id, "operating_point", {"class": 2, "threshold": 0.3})
    assert store.annotation(run_id, "operating_point") == {"class": 2, "threshold": 0.3}
    assert store.annotation(run_id, "reviews") == {}
    with pytest.raises(ValueError, match="unknown annotation"):
        store.write_annotation(run_id, "../metrics", {})
    with pytest.raises(RunNotFound):
        store.write_annotation("nope", "reviews", {})
    (store.run_dir(run_id) / "reviews.json").write_text("[1, 2")
    with pytest.raises(RunFileDamaged, match="reviews.json"):
        store.annotation(run_id, "reviews")


def test_the_workers_cancel_check_asks_the_store_at_most_every_few_tenths(monkeypatch):
    """A tiny batch checks for a cancel every few steps; the store is asked at most every
    CANCEL_EVERY_S, its last answer given in between."""
    from core.jobs import _worker

    clock, asked = [100.0], []
    monkeypatch.setattr(_worker.time, "monotonic", lambda: clock[0])
    answer = _worker._every(0.2, lambda: asked.append(clock[0]) or len(asked) > 1)
    assert [answer() for _ in range(50)] == [False] * 50 and asked == [100.0]
    clock[0] += 0.25
    assert answer() is True and asked == [100.0, 100.25]


def test_a_run_stores_every_history_row_though_the_live_file_is_written_less_often(tmp_path):
    from core.jobs import execute_run

    store = RunStore(tmp_path)
    run_id = store.create_run(RunConfig.model_validate({
        "data": {"source": "wine"}, "model": {"name": "mlp", "hidden": 8},
        "train": {"epochs": 6, "batch_size": 32, "nc_every": 0, "min_steps": 0}}))
    assert execute_run(store, store.claim(run_id, os.getpid()), embeddings=False) == "done"
    assert [row["epoch"] for row in store.history(run_id)] == [1, 2, 3, 4, 5, 6]

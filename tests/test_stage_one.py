"""A two-stage run reads the first stage a plain run on the same settings already trained in
its pool, and ends bit-identical to training that stage itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.config import RunConfig
from core.train import StageOneStore, train_run

PLAIN = {"data": {"source": "wine", "imbalance": {"profile": "exp", "ratio": 5}},
         "model": {"name": "mlp", "hidden": 16, "dropout": 0.2},
         "train": {"epochs": 4, "min_steps": 0, "seed": 3, "deterministic": True}}
CRT = {**PLAIN, "name": "the same with cRT", "stage2": {"name": "crt", "epochs": 3}}

_TIMES = ("seconds", "elapsed")  # wall-clock fields differ between any two trainings


def _rows(history):
    return [{k: v for k, v in row.items() if not any(t in k for t in _TIMES)} for row in history]


def _loop_refused(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the first stage was trained again")

    monkeypatch.setattr("core.train._network.train_epochs", refuse)


@pytest.fixture(scope="module")
def fresh():
    return train_run(RunConfig.model_validate(CRT))


def test_a_two_stage_run_reads_the_plain_runs_first_stage_and_ends_identical(tmp_path, monkeypatch, fresh):
    kept = StageOneStore(tmp_path)
    plain = train_run(RunConfig.model_validate(PLAIN), stage_one=kept)
    assert len(list(tmp_path.glob("*.safetensors"))) == 1 and not list(tmp_path.glob("*.part"))
    assert "stage_one_reused" not in plain.info
    _loop_refused(monkeypatch)
    rows = []
    again = train_run(RunConfig.model_validate(CRT), stage_one=kept, on_epoch=rows.append)
    assert again.info["stage_one_reused"] is True
    np.testing.assert_array_equal(again.artifacts.logits, fresh.artifacts.logits)  # bit-identical, head and all
    np.testing.assert_array_equal(again.artifacts.features, fresh.artifacts.features)
    assert _rows(again.history) == _rows(fresh.history)
    assert [r["stage"] for r in rows] == ["train"] * 4 + ["crt"] * 3  # the live view still sees every epoch
    assert again.info["selected_epoch"] == fresh.info["selected_epoch"]
    # the plain run's own result is its first stage: the same features as the two-stage run's
    np.testing.assert_array_equal(plain.artifacts.features, fresh.artifacts.features)


@pytest.mark.parametrize("change", [{"train": {**PLAIN["train"], "seed": 4}},
                                    {"loss": {"name": "focal"}},
                                    {"data": {**PLAIN["data"], "seed": 1}}])
def test_another_seed_loss_or_split_trains_its_own_first_stage(tmp_path, change):
    kept = StageOneStore(tmp_path)
    train_run(RunConfig.model_validate(PLAIN), stage_one=kept)
    other = train_run(RunConfig.model_validate({**CRT, **change}), stage_one=kept)
    assert "stage_one_reused" not in other.info
    assert len(list(tmp_path.glob("*.safetensors"))) == 2  # and keeps it for the next


def test_a_plain_run_never_reads_a_kept_stage_and_a_damaged_one_is_trained_again(tmp_path, monkeypatch, fresh):
    kept = StageOneStore(tmp_path)
    train_run(RunConfig.model_validate(PLAIN), stage_one=kept)
    plain = train_run(RunConfig.model_validate(PLAIN), stage_one=kept)  # trains: only two-stage runs read
    assert "stage_one_reused" not in plain.info
    for path in tmp_path.glob("*.safetensors"):
        path.write_bytes(b"not weights")
    again = train_run(RunConfig.model_validate(CRT), stage_one=kept)
    assert "stage_one_reused" not in again.info
    np.testing.assert_array_equal(again.artifacts.logits, fresh.artifacts.logits)


def test_a_pool_task_keeps_first_stages_in_the_folder_it_is_given(tmp_path):
    from core.jobs import run_task

    folder = str(tmp_path / "stage-one")
    plain = run_task(RunConfig.model_validate(PLAIN).to_json(), None, None, folder)
    two_stage = run_task(RunConfig.model_validate(CRT).to_json(), None, None, folder)
    assert "error" not in plain and "error" not in two_stage, two_stage.get("traceback")
    metrics = json.loads(two_stage["files"]["metrics.json"])
    assert metrics["training"]["stage_one_reused"] is True
    assert "stage_one_reused" not in json.loads(plain["files"]["metrics.json"])["training"]


def test_the_local_pool_gives_its_tasks_one_shared_folder(monkeypatch):
    from core.jobs import LocalExecutor

    executor = LocalExecutor(workers=1, threads=1)
    asked = []
    monkeypatch.setattr(executor._pool, "submit", lambda fn, *args: asked.append(args) or _Done())
    try:
        executor.submit("{}")
        executor.submit("{}")
    finally:
        executor.shutdown()
    folders = {args[3] for args in asked}
    assert len(folders) == 1 and folders.pop().startswith(executor._stops)


class _Done:
    def add_done_callback(self, callback):
        pass


def test_the_run_worker_keeps_first_stages_while_it_lives(tmp_path, monkeypatch):
    """Plain training then cRT on the same settings, queued on the Train page: the worker's
    second run starts from the first one's network, and nothing is left behind."""
    import tempfile

    from core.jobs import worker_loop
    from core.store import RunStore

    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "scratch"))
    (tmp_path / "scratch").mkdir()
    store = RunStore(tmp_path)
    plain, two_stage = (store.create_run(RunConfig.model_validate(raw)) for raw in (PLAIN, CRT))
    assert worker_loop(store, max_jobs=2, embeddings=False) == 2
    assert "stage_one_reused" not in store.metrics(plain)["training"]
    assert store.metrics(two_stage)["training"]["stage_one_reused"] is True
    assert not list((tmp_path / "scratch").iterdir())  # the kept stages go with the worker


def _dead_pid() -> int:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_folder_left_by_a_killed_worker_or_pool_is_removed_by_the_next_one(tmp_path, monkeypatch):
    """Kept first stages outlive a process killed outright; the next worker or pool on the
    machine removes those of processes that no longer run, and nothing else: a living
    process's folder, another kind's, or one whose name says no process."""
    import os
    import tempfile

    from core.jobs import LocalExecutor
    from core.jobs._scratch import scratch_folder

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead, alive = _dead_pid(), os.getppid()
    left = {name: tmp_path / name for name in (
        f"tailscope-stage-one-{dead}-abc", f"tailscope-stop-{dead}-abc", f"tailscope-stage-one-{alive}-abc",
        f"tailscope-other-{dead}-abc", "tailscope-stage-one-abc")}
    for folder in left.values():
        (folder / "stage-one").mkdir(parents=True)
        (folder / "stage-one" / "kept.safetensors").write_bytes(b"weights")
    mine = scratch_folder("stage-one")
    assert not left[f"tailscope-stage-one-{dead}-abc"].exists()
    assert Path(mine).name.startswith(f"tailscope-stage-one-{os.getpid()}-") and Path(mine).is_dir()
    assert left[f"tailscope-stop-{dead}-abc"].exists()  # another kind: its own owners tidy it
    executor = LocalExecutor(workers=1, threads=1)
    try:
        assert not left[f"tailscope-stop-{dead}-abc"].exists()
        assert Path(executor._stops).name.startswith(f"tailscope-stop-{os.getpid()}-")
    finally:
        executor.shutdown()
    assert not Path(executor._stops).exists()
    for name in (f"tailscope-stage-one-{alive}-abc", f"tailscope-other-{dead}-abc", "tailscope-stage-one-abc"):
        assert (left[name] / "stage-one" / "kept.safetensors").exists(), name

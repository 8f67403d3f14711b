"""Sweeps: grids into the store through the local pool and Ray, resume, refusals, cancel, Ctrl-C."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from core.cli import main
from core.analysis import sweep_summary
from core.jobs import LocalExecutor, SweepRefused, load_sweep, plan_sweep, run_sweep, run_task, start_sweep
from core.store import RunStore

TINY = {
    "name": "tiny sweep",
    "data": {"source": "wine", "imbalance": {"profile": "exp", "ratio": 5}},
    "model": {"name": "mlp", "hidden": 8},
    "train": {"epochs": 2, "min_steps": 0, "nc_every": 0},
}


def _spec(grid: dict, **extra):
    return {**json.loads(json.dumps(TINY)), **extra, "grid": grid}


def _cli(capsys, *args) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def _write(path: Path, spec: dict) -> Path:
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


class InlineExecutor:
    """Trains each run in this process as it is submitted (fast, no processes); `fail`
    picks configs whose task answers an error."""

    name = "inline"
    workers = 1

    def __init__(self, fail=lambda config: False):
        self.fail = fail
        self.results: dict[object, dict] = {}
        self.submitted: list[dict] = []
        self.closed = False

    def submit(self, config_json, uploads=None):
        config = json.loads(config_json)
        self.submitted.append(config)
        handle = object()
        self.results[handle] = {"error": "made to fail"} if self.fail(config) else run_task(config_json, uploads)
        return handle

    def finished(self, handles, timeout):
        return [(h, self.results.pop(h)) for h in list(handles) if h in self.results]

    def cancel(self, handle):
        self.results.pop(handle, None)

    def shutdown(self):
        self.closed = True


def _check_done(store: RunStore, sweep_id: str, n_runs: int) -> dict:
    """Every run done with readable files; the summary has one entry per cell with numbers."""
    sweep = store.get_sweep(sweep_id)
    assert len(sweep.runs) == n_runs
    assert [r.status for r in sweep.runs] == ["done"] * n_runs, [r.error for r in sweep.runs]
    for run in sweep.runs:
        assert 0 <= store.metrics(run.id)["balanced_accuracy"] <= 1
        assert len(store.history(run.id)) == 2
        assert store.artifacts(run.id).logits.shape[0] > 0
        assert (store.run_dir(run.id) / "model.safetensors").stat().st_size > 0
        assert run.summary["balanced_accuracy"] == store.metrics(run.id)["balanced_accuracy"]
    assert sweep.status == "done" and sweep.driver_pid is None
    return sweep_summary(store, sweep_id)


# --- local pool ------------------------------------------------------------------------------

@pytest.mark.slow
def test_local_pool_of_two_runs_a_sweep_into_the_store(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    store = RunStore(tmp_path)
    spec = load_sweep(_spec({"loss.name": ["ce", "focal"]}, evaluation={"seeds": [0, 1]}))
    sweep_id, to_run, done = start_sweep(store, spec, "local")
    assert (to_run, done) == (4, 0)
    lines = []
    counts = run_sweep(store, sweep_id, LocalExecutor(workers=2), echo=lines.append, poll_s=0.2)
    assert counts == {"done": 4, "failed": 0, "cancelled": 0}
    assert len(lines) == 4 and lines[-1].startswith("4/4 runs finished")
    _check_done(store, sweep_id, 4)
    code, out, err = _cli(capsys, "sweep-show", sweep_id, "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["status"] == "done" and len(shown["runs"]) == 4 and shown["progress"]["done"] == 4
    cells = {c["settings"]["loss.name"]: c for c in shown["cells"]}
    assert set(cells) == {"ce", "focal"}
    for cell in cells.values():
        assert cell["n_done"] == cell["n_runs"] == 2
        summary = cell["summary"]["balanced_accuracy"]
        assert 0 <= summary["mean"] <= 1 and summary["n"] == 2
    assert shown["reference"] == ["loss.name", "ce"]
    assert cells["ce"]["vs_reference"] is None and cells["focal"]["vs_reference"]["verdict"]
    code, out, _ = _cli(capsys, "sweep-show", sweep_id)
    assert code == 0 and "[done]" in out and "4 of 4 runs done" in out and "loss.name=focal" in out


# --- resume, refusal, queue, cancel, Ctrl-C (in this process) --------------------------------

def test_resume_keeps_finished_runs_and_trains_failed_and_cancelled_again(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    store = RunStore(tmp_path)
    path = _write(tmp_path / "sweep.yaml", _spec({"loss.name": ["ce", "focal", "weighted_ce"]}))
    spec = load_sweep(path)
    sweep_id, to_run, done = start_sweep(store, spec, "local")
    assert (to_run, done) == (3, 0)
    by_loss = {r.config["loss"]["name"]: r.id for r in store.get_sweep(sweep_id).runs}
    # the sweep's runs wait for its driver: the background worker never takes them
    assert store.claim_next(os.getpid()) is None
    assert {r.queue for r in store.get_sweep(sweep_id).runs} == {sweep_id}
    assert store.request_cancel(by_loss["weighted_ce"]) == "cancelled"  # cancelled before it started

    first = InlineExecutor(fail=lambda c: c["loss"]["name"] == "focal")
    assert run_sweep(store, sweep_id, first) == {"done": 1, "failed": 1, "cancelled": 0}
    assert [c["loss"]["name"] for c in first.submitted] == ["ce", "focal"] and first.closed
    assert store.get(by_loss["focal"]).error == "made to fail"
    assert store.get_sweep(sweep_id).status == "failed"
    kept = store.get(by_loss["ce"])
    weights = (store.run_dir(kept.id) / "model.safetensors").read_bytes()

    again, to_run, done = start_sweep(store, load_sweep(path), "local")  # the same file: the same sweep
    assert again == sweep_id and (to_run, done) == (2, 1)
    assert store.get(by_loss["focal"]).status == "queued" and store.get(by_loss["focal"]).error is None
    second = InlineExecutor()
    assert run_sweep(store, sweep_id, second) == {"done": 2, "failed": 0, "cancelled": 0}
    assert sorted(c["loss"]["name"] for c in second.submitted) == ["focal", "weighted_ce"]  # not ce again
    _check_done(store, sweep_id, 3)
    unchanged = store.get(kept.id)
    assert (unchanged.started, unchanged.finished) == (kept.started, kept.finished)
    assert (store.run_dir(kept.id) / "model.safetensors").read_bytes() == weights
    assert sorted(r.id for r in store.get_sweep(sweep_id).runs) == sorted(by_loss.values())  # no new runs

    # once more from the command line: nothing to train, nothing new in the store
    code, out, err = _cli(capsys, "sweep", str(path), "--wait", "--workers", "1")
    assert code == 0, err
    assert out.strip() == sweep_id and "0 run(s) to train, 3 already done" in err
    assert len(store.list_sweeps()) == 1 and len(store.get_sweep(sweep_id).runs) == 3
    assert store.get(kept.id).finished == kept.finished


def test_a_bad_grid_is_refused_with_every_problem(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    spec = _spec({"loss.name": ["ce", "no_such_loss"], "data.imbalance.ratio": [5, 1000]})
    with pytest.raises(SweepRefused) as caught:
        plan_sweep(load_sweep(spec))
    problems = caught.value.problems
    assert len(problems) == 3
    assert problems[0].startswith("loss.name=no_such_loss, data.imbalance.ratio=5: loss: unknown loss")
    assert problems[1].startswith("loss.name=no_such_loss, data.imbalance.ratio=1000: loss: unknown loss")
    assert problems[2].startswith("loss.name=ce, data.imbalance.ratio=1000: data.imbalance.ratio: 1000 cannot")
    code, out, err = _cli(capsys, "sweep", str(_write(tmp_path / "bad.yaml", spec)), "--wait")
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert "3 cell(s) cannot run" in lines[0] and len(lines) == 4
    assert [line.removeprefix("  - ") for line in lines[1:]] == problems
    assert RunStore(tmp_path).list_sweeps() == [] and RunStore(tmp_path).list_runs() == []  # nothing queued


def test_a_grid_file_that_is_no_grid_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    code, _, err = _cli(capsys, "sweep", str(_write(tmp_path / "s.yaml", {**TINY, "grid": {"loss.name": []}})))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "grid.loss.name: expected a non-empty list" in err


class StuckExecutor(InlineExecutor):
    """Tasks that never finish by themselves; `interrupt` makes `finished` raise Ctrl-C."""

    name = "stuck"

    def __init__(self, interrupt: bool = False):
        super().__init__()
        self.interrupt = interrupt
        self.cancelled = []

    def submit(self, config_json, uploads=None):
        self.submitted.append(json.loads(config_json))
        return len(self.submitted)

    def finished(self, handles, timeout):
        if self.interrupt:
            raise KeyboardInterrupt
        time.sleep(min(timeout, 0.05))
        return []

    def cancel(self, handle):
        self.cancelled.append(handle)


def test_ctrl_c_marks_running_runs_cancelled_and_a_resume_trains_them(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    store = RunStore(tmp_path)
    path = _write(tmp_path / "sweep.yaml", _spec({"loss.name": ["ce", "focal"]}))
    stuck = StuckExecutor(interrupt=True)
    monkeypatch.setattr("core.jobs._executors.create_executor", lambda *args: stuck)
    code, out, err = _cli(capsys, "sweep", str(path), "--wait")
    assert code == 130 and f"sweep-resume {out.strip()}" in err
    sweep = store.get_sweep(out.strip())
    # One worker: the run it trained is cancelled, the one no worker had taken yet still waits.
    assert [r.status for r in sweep.runs] == ["cancelled", "queued"]
    assert "Ctrl-C" in sweep.runs[0].error and sweep.runs[1].started is None
    assert stuck.cancelled == [1] and len(stuck.submitted) == 1 and stuck.closed and sweep.driver_pid is None
    assert sweep.status == "stopped"
    assert start_sweep(store, load_sweep(path))[1:] == (2, 0)


def test_a_cancel_request_or_stop_ends_the_driver(tmp_path, monkeypatch):
    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    store = RunStore(tmp_path)
    sweep_id, _, _ = start_sweep(store, load_sweep(_spec({"loss.name": ["ce", "focal"]})))
    ce, focal = store.get_sweep(sweep_id).runs
    stuck = StuckExecutor()
    threading.Timer(0.3, store.request_cancel, (ce.id,)).start()
    stop_at = time.monotonic() + 0.8
    counts = run_sweep(store, sweep_id, stuck, poll_s=0.05, stop=lambda: time.monotonic() > stop_at)
    assert counts == {"done": 0, "failed": 0, "cancelled": 2}
    assert store.get(ce.id).status == "cancelled" and store.get(ce.id).error == "cancelled by the user"
    assert store.get(focal.id).status == "cancelled" and stuck.cancelled == [1, 2] and stuck.closed


def test_a_run_starts_only_when_a_worker_is_free(tmp_path, monkeypatch):
    """Runs no worker has taken stay queued (no start time, nothing submitted), so the page
    counts them as waiting and a stop leaves them for a resume."""
    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    store = RunStore(tmp_path)
    sweep_id, _, _ = start_sweep(store, load_sweep(_spec({"loss.name": ["ce", "focal", "weighted_ce"]})))
    stuck = StuckExecutor()
    stuck.workers = 2
    seen = []
    stop = lambda: seen.append([r.status for r in store.get_sweep(sweep_id).runs]) or len(seen) > 3  # noqa: E731
    counts = run_sweep(store, sweep_id, stuck, poll_s=0.01, stop=stop)
    assert seen[0] == ["running", "running", "queued"] and len(stuck.submitted) == 2
    assert counts == {"done": 0, "failed": 0, "cancelled": 2}
    assert [r.status for r in store.get_sweep(sweep_id).runs] == ["cancelled", "cancelled", "queued"]
    assert store.get_sweep(sweep_id).status == "stopped"


def test_the_ray_backend_without_ray_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    from core.jobs import create_executor

    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not installed
    with pytest.raises(ImportError, match=r'pip install "tailscope\[ray\]"'):
        create_executor("ray")
    path = _write(tmp_path / "sweep.yaml", _spec({"loss.name": ["ce"]}))
    for args in (["sweep", str(path), "--backend", "ray"], ["sweep", str(path), "--backend", "ray", "--wait"]):
        code, out, err = _cli(capsys, *args)
        assert code == 2 and out == ""
        assert err.count("\n") == 1 and 'pip install "tailscope[ray]"' in err and "ray==2.60.0" in err
    assert RunStore(tmp_path).list_sweeps() == []  # refused before anything was queued
    monkeypatch.setattr("core.jobs._sweeps.plan_sweep", lambda spec: [])  # an empty sweep, to resume
    sweep_id, _, _ = start_sweep(RunStore(tmp_path), load_sweep(path))
    code, _, err = _cli(capsys, "sweep-resume", sweep_id, "--backend", "ray")
    assert code == 2 and err.count("\n") == 1 and 'pip install "tailscope[ray]"' in err


# --- Ray: a local cluster of two nodes --------------------------------------------------------

@pytest.fixture(scope="module")
def ray_cluster():
    """Two Ray nodes of one CPU each on this machine, shut down after the module."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        yield cluster
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()


@pytest.mark.slow
@pytest.mark.xdist_group("ray")
def test_ray_runs_a_sweep_into_the_store_and_retries_a_task_whose_worker_died(ray_cluster, tmp_path, monkeypatch):
    import ray

    from core.jobs._ray import RayExecutor

    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    marks = tmp_path / "attempts"
    marks.mkdir()

    def dies_once(config_json, uploads=None, _marks=str(marks)):
        """The focal run of seed 0 kills its own worker process on its first attempt, as an
        OOM kill would; every attempt leaves a mark (its loss, seed and process)."""
        import json as _json
        import os as _os
        import signal
        from pathlib import Path as _Path

        from core.jobs._executors import run_task as _run_task

        config = _json.loads(config_json)
        loss, seed = config["loss"]["name"], config["train"]["seed"]
        (_Path(_marks) / f"{loss}-{seed}-{_os.getpid()}").touch()
        if loss == "focal" and seed == 0 and not (_Path(_marks) / "killed").exists():
            (_Path(_marks) / "killed").touch()
            _os.kill(_os.getpid(), signal.SIGKILL)
        return _run_task(config_json, uploads)

    store = RunStore(tmp_path)
    spec = load_sweep(_spec({"loss.name": ["ce", "focal"], "train.seed": [0, 1]}))
    sweep_id, to_run, _ = start_sweep(store, spec, "ray")
    executor = RayExecutor(address=ray_cluster.address, task=dies_once)
    assert executor.workers == 2 and len([n for n in ray.nodes() if n["Alive"]]) == 2
    counts = run_sweep(store, sweep_id, executor, poll_s=0.2)
    assert counts == {"done": 4, "failed": 0, "cancelled": 0} and to_run == 4
    summary = _check_done(store, sweep_id, 4)
    assert store.get_sweep(sweep_id).backend == "ray"
    assert {json.dumps(c["settings"], sort_keys=True) for c in summary["cells"]} == {
        json.dumps({"loss.name": loss, "train.seed": seed}, sort_keys=True)
        for loss in ("ce", "focal") for seed in ("0", "1")}
    assert all(c["summary"]["balanced_accuracy"]["mean"] is not None for c in summary["cells"])
    attempts = sorted(p.name.rsplit("-", 1)[0] for p in marks.iterdir() if p.name != "killed")
    assert (marks / "killed").exists() and attempts == ["ce-0", "ce-1", "focal-0", "focal-0", "focal-1"]  # retried once
    assert not ray.is_initialized()  # disconnected from the cluster it was given ...
    assert len(ray_cluster.list_all_nodes()) == 2 and ray_cluster.remaining_processes_alive()  # ... which runs on


@pytest.mark.slow
@pytest.mark.xdist_group("ray")
def test_ray_does_not_retry_a_run_that_fails_and_cancels_a_running_one(ray_cluster, tmp_path, monkeypatch):
    from core.jobs._ray import RayExecutor

    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    marks = tmp_path / "attempts"
    marks.mkdir()

    def fails(config_json, uploads=None, _marks=str(marks)):
        import os as _os
        from pathlib import Path as _Path

        (_Path(_marks) / f"try-{_os.getpid()}-{len(list(_Path(_marks).iterdir()))}").touch()
        return {"error": "ValueError: this run cannot be trained"}

    store = RunStore(tmp_path)
    sweep_id, _, _ = start_sweep(store, load_sweep(_spec({"loss.name": ["ce"]})), "ray")
    assert run_sweep(store, sweep_id, RayExecutor(address=ray_cluster.address, task=fails)) == {
        "done": 0, "failed": 1, "cancelled": 0}
    assert len(list(marks.iterdir())) == 1  # an error of the run is an answer: tried once
    assert store.get_sweep(sweep_id).runs[0].error == "ValueError: this run cannot be trained"

    # a run that would train for minutes, cancelled from the page while it trains
    long = _spec({"loss.name": ["ce"]}, train={"epochs": 2, "min_steps": 1_000_000, "nc_every": 0})
    sweep_id, _, _ = start_sweep(store, load_sweep(long), "ray")
    (run,) = store.get_sweep(sweep_id).runs

    def cancel_once_it_runs():
        deadline = time.monotonic() + 60
        while store.get(run.id).status != "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)  # well into training on its Ray worker
        store.request_cancel(run.id)

    threading.Thread(target=cancel_once_it_runs, daemon=True).start()
    started = time.monotonic()
    counts = run_sweep(store, sweep_id, RayExecutor(address=ray_cluster.address), poll_s=0.1)
    assert counts == {"done": 0, "failed": 0, "cancelled": 1} and time.monotonic() - started < 30
    record = store.get(run.id)
    assert record.status == "cancelled" and record.error == "cancelled by the user"
    assert store.get_sweep(sweep_id).driver_pid is None

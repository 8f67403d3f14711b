"""The Sweeps page under AppTest, and the Train page's "Try the standard fixes" that starts one."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from app import state
from conftest import open_at_address, shown, shown_table
from core.config import RunConfig
from core.store import RunStore

MAIN = Path(__file__).resolve().parent.parent / "app" / "main.py"
WINE = {"source": "wine", "imbalance": {"profile": "exp", "ratio": 5}}
TINY_SWEEP = {
    "name": "tiny wine sweep",
    "data": {"source": "wine", "imbalance": {"profile": "exp"}, "many_shot": 10, "few_shot": 6},
    "model": {"name": "mlp", "hidden": 16},
    "train": {"epochs": 2, "batch_size": 32, "min_steps": 0, "nc_every": 0},
    "evaluation": {"seeds": [0, 1]},
    "grid": {"loss.name": ["ce", "weighted_ce"], "data.imbalance.ratio": [3, 8]},
}
HOSTILE_LABELS = ["<b>bold</b>", ":red[rare] %{y}", "![x](http://203.0.113.9/x.png)"]
HOSTILE_SWEEP_NAME = "**loud** <i>sweep</i>"


def _start(home: Path, raw: dict) -> str:
    from core.jobs import load_sweep, start_sweep

    sweep_id, _, _ = start_sweep(RunStore(home), load_sweep(json.loads(json.dumps(raw))))
    return sweep_id


@pytest.fixture(scope="session")
def sweep_store(tmp_path_factory) -> dict:
    """A finished 2 x 2 sweep over 2 seeds on wine (8 tiny runs, trained in this process)."""
    from core.jobs import execute_run

    home = tmp_path_factory.mktemp("sweep-home")
    sweep_id = _start(home, TINY_SWEEP)
    store = RunStore(home)
    for run in store.get_sweep(sweep_id).runs:
        assert execute_run(store, store.claim(run.id, os.getpid()), embeddings=False) == "done"
    return {"home": home, "sweep": sweep_id}


@pytest.fixture
def sweep_home(sweep_store, monkeypatch) -> dict:
    monkeypatch.setenv("TAILSCOPE_HOME", str(sweep_store["home"]))
    return sweep_store


@pytest.fixture
def stopped_home(sweep_store, tmp_path, monkeypatch) -> dict:
    """A copy of the finished sweep's store plus a newer sweep that never ran (its driver is
    gone: "stopped"), with three axes, named variants and markup for names."""
    home = tmp_path / "home"
    shutil.copytree(sweep_store["home"], home)
    monkeypatch.setenv("TAILSCOPE_HOME", str(home))
    raw = {**TINY_SWEEP, "name": HOSTILE_SWEEP_NAME, "grid": {
        "method": {HOSTILE_LABELS[0]: {}, HOSTILE_LABELS[1]: {"loss.name": "weighted_ce"},
                   HOSTILE_LABELS[2]: {"sampler.name": "class_balanced"}},
        "data.imbalance.ratio": [3, 8], "train.lr": [0.05, 0.1]}}
    return {**sweep_store, "home": home, "stopped": _start(home, raw)}


def _no_exceptions(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _open(sweep: str | None = None, page: str = "sweeps"):
    return open_at_address(page, **({"sweep": sweep} if sweep is not None else {}))


def _map(at):
    """The heatmap as a plotly Figure (the spec packs arrays as binary)."""
    import plotly.io

    return plotly.io.from_json(next(c for c in at.get("plotly_chart") if ".map." in c.proto.id).proto.spec)


def _array(value) -> np.ndarray:
    """A figure's array as sent to the browser: plain lists, or plotly's packed binary form."""
    if isinstance(value, dict) and "bdata" in value:
        import base64

        data = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return data.reshape([int(n) for n in str(value.get("shape", len(data))).split(",")])
    return np.asarray(value, dtype=float)


def _trace(fig, name: str):
    return next(t for t in fig.data if t.name == name)


def _texts(at) -> str:
    return " ".join(shown(e.value) for kind in ("markdown", "caption", "info", "warning", "success", "error")
                    for e in at.get(kind))


def test_empty_store_says_what_a_sweep_is_and_how_to_start_one(empty_home):
    at = _open()
    _no_exceptions(at)
    text = _texts(at)
    assert "There is no sweep yet" in text and "Try the standard fixes" in text and "tailscope sweep" in text
    assert any(link.proto.page == "train" for link in at.get("page_link"))
    assert "grid:" in at.get("code")[0].proto.code_text
    assert not at.get("plotly_chart")


def test_a_finished_sweep_shows_its_map_lines_and_trade_off(sweep_home):
    from core.analysis import sweep_summary

    at = _open()
    _no_exceptions(at)
    assert at.selectbox(key=state.SWEEP_ID).value == sweep_home["sweep"]
    (bar,) = at.get("progress")
    assert "done" in bar.proto.text and "8 of 8 runs done" in bar.proto.text
    assert [b.key for b in at.button] == ["sweeps.build.start"], "a finished sweep offers neither Cancel nor Resume"
    charts = [c.proto.id for c in at.get("plotly_chart")]
    assert len(charts) == 3 and any(".lines." in c for c in charts) and any(".tail-head." in c for c in charts)
    summary = sweep_summary(RunStore(sweep_home["home"]), sweep_home["sweep"])
    fig = _map(at)
    heat = _trace(fig, "Balanced accuracy")
    rows, columns = list(fig.layout.yaxis.ticktext), list(fig.layout.xaxis.ticktext)
    words = {"ce": "Cross-entropy (plain)", "weighted_ce": "Class-weighted cross-entropy"}  # losses in words
    assert rows == list(words.values()) and columns == ["3", "8"]
    for cell in summary["cells"]:
        i = rows.index(words[cell["settings"]["loss.name"]])
        j = columns.index(cell["settings"]["data.imbalance.ratio"])
        assert _array(heat.z)[i, j] == pytest.approx(cell["summary"]["balanced_accuracy"]["mean"])
    text = _texts(at)
    assert "Each square" in text and "Each line is one loss" in text and "Each dot is one square" in text
    assert "Too few seeds for a verdict" in text, "2 seeds can never reach p < 0.05: said once, above the map"
    # every square in a table whose cells wrap (no sideways scroll): its mean, interval and verdict
    squares = next(shown_table(t) for t in at.table if "against the reference" in shown_table(t).columns)
    assert len(squares) == 4
    for cell in summary["cells"]:
        row = squares[(squares.index == words[cell["settings"]["loss.name"]])
                      & (squares.iloc[:, 0] == cell["settings"]["data.imbalance.ratio"])].iloc[0]
        mean = cell["summary"]["balanced_accuracy"]
        assert row["Balanced accuracy"] == f"{mean['mean']:.3f}"
        low, high = (float(v) for v in row["95 % interval"].split(" to "))
        assert 0 <= low <= mean["mean"] <= high <= 1
        versus = cell["vs_reference"]
        assert row["against the reference"] == ("the reference" if versus is None else
                                                 f"{versus['difference']:+.3f}: {versus['verdict']}")
    assert [b.proto.label for b in at.get("download_button")] == ["All squares, every measure (CSV)"]


def test_the_measure_changes_the_map_and_its_direction(sweep_home):
    at = _open()
    before = _map(at)
    at.selectbox(key="sweeps.metric").set_value("ece").run()
    _no_exceptions(at)
    after = _map(at)
    heat = _trace(after, "ECE")
    assert heat.reversescale and "lower is better" in heat.colorbar.title.text
    assert after.to_json() != before.to_json()


def test_a_square_opens_the_results_of_its_experiment(sweep_home):
    at = _open()
    store = RunStore(sweep_home["home"])
    experiments = {e.id: e for e in store.get_sweep(sweep_home["sweep"]).experiments}
    picker = at.selectbox(key="sweeps.open")
    assert len(picker.options) == 4
    for exp_id in list(experiments)[:2]:
        picker.set_value(exp_id).run()
        (link,) = [link.proto for link in at.get("page_link") if link.label == "Open its results"]
        first = experiments[exp_id].runs[0].id
        assert link.page == "results" and link.query_string == f"run={first}"
    cells = _trace(_map(at), "cells")
    assert {c[0] for c in cells.customdata} == set(experiments), "a click on a square knows its experiment"
    assert {c[1] for c in cells.customdata} == {e.runs[0].id for e in experiments.values()}

    results = _open(page="results")  # what the link opens: the run's page, pooled over its experiment
    results.query_params["run"] = first
    results.run()
    _no_exceptions(results)
    pooled = results.toggle(key="results.pooled")
    assert pooled.value and "2 finished runs" in pooled.label


def test_the_address_selects_the_sweep_and_follows_the_picker(stopped_home):
    at = _open(sweep=stopped_home["sweep"])  # the older, finished one
    _no_exceptions(at)
    assert at.selectbox(key=state.SWEEP_ID).value == stopped_home["sweep"]
    at.selectbox(key=state.SWEEP_ID).set_value(stopped_home["stopped"]).run()
    _no_exceptions(at)
    assert at.query_params["sweep"] == [stopped_home["stopped"]] or at.query_params["sweep"] == stopped_home["stopped"]
    gone = _open(sweep="sweep-20000101-000000-000000")
    _no_exceptions(gone)
    assert any("no longer exists" in w.value for w in gone.warning)
    assert gone.selectbox(key=state.SWEEP_ID).value == stopped_home["stopped"], "the newest instead"


def test_a_stopped_sweep_can_be_cancelled_and_resumed(stopped_home, monkeypatch):
    started = []
    monkeypatch.setattr("app.services.ensure_sweep_driver",
                        lambda store, sweep_id, *args, **kwargs: started.append(sweep_id) or True)
    store = RunStore(stopped_home["home"])
    sweep_id = stopped_home["stopped"]
    at = _open()
    _no_exceptions(at)
    assert "stopped" in at.get("progress")[0].proto.text and "Nothing is training" in _texts(at)
    at.button(key="sweeps.cancel").click().run()
    _no_exceptions(at)
    assert {r.status for r in store.get_sweep(sweep_id).runs} == {"cancelled"}
    assert store.get_sweep(sweep_id).status == "cancelled"
    assert "Cancelling 24 unfinished run(s)" in _texts(at)
    at.button(key="sweeps.resume").click().run()
    _no_exceptions(at)
    assert {r.status for r in store.get_sweep(sweep_id).runs} == {"queued"}
    assert started == [sweep_id], "a driver is started for the sweep (stubbed here)"


def test_three_axes_map_two_and_hold_the_third(stopped_home):
    at = _open()
    _no_exceptions(at)
    assert at.selectbox(key="sweeps.rows").value == "method", "the named variants down the side"
    assert at.selectbox(key="sweeps.columns.method").value in ("data.imbalance.ratio", "train.lr")
    held = "train.lr" if at.selectbox(key="sweeps.columns.method").value == "data.imbalance.ratio" else \
        "data.imbalance.ratio"
    hold = at.selectbox(key=f"sweeps.hold.{held}")
    fig = _map(at)
    assert len(fig.layout.yaxis.ticktext) == 3 and len(fig.layout.xaxis.ticktext) == 2
    assert all("waiting" in t for t in _trace(fig, "cells").text), "no run finished: every square says it waits"
    hold.set_value(hold.options[1]).run()
    _no_exceptions(at)
    at.selectbox(key="sweeps.rows").set_value("train.lr").run()
    _no_exceptions(at)
    assert list(_map(at).layout.yaxis.ticktext) == ["0.05", "0.1"]


def test_names_from_the_sweep_file_are_shown_as_text(stopped_home):
    from core.text import plotly_text

    at = _open()
    _no_exceptions(at)
    at.run()
    sources = [e.value for kind in ("markdown", "caption", "info", "warning") for e in at.get(kind)]
    sources += [w.proto.label for w in at.get("selectbox")] + [w.proto.help for w in at.get("selectbox")]
    raw = [s for s in sources for h in [*HOSTILE_LABELS, HOSTILE_SWEEP_NAME] if h in s]
    assert not raw, f"user text reaches markdown unescaped: {raw}"
    assert any(HOSTILE_LABELS[0] in shown(s) for s in sources), "the variants are described, as written"
    for chart in at.get("plotly_chart"):
        for h in HOSTILE_LABELS:
            assert h not in chart.proto.spec or h == plotly_text(h), f"{h!r} drawn as plotly markup"
    assert plotly_text(HOSTILE_LABELS[0]) in _map(at).layout.yaxis.ticktext


# --- the Train page's "Try the standard fixes" --------------------------------------------

def _open_train(data: dict):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(MAIN), default_timeout=120)
    at.session_state[state.DATA_CONFIG] = data
    at.run()
    at.switch_page("../pages/train.py")
    at.run()
    return at


def test_standard_fixes_start_one_sweep_and_open_it(empty_home, monkeypatch):
    started = []
    monkeypatch.setattr("app.services.ensure_sweep_driver",
                        lambda store, sweep_id, *args, **kwargs: started.append(sweep_id) or True)
    at = _open_train(WINE)
    _no_exceptions(at)
    at.number_input(key="train.settings.epochs").set_value(10).run()
    button = at.button(key="train.fixes")
    assert not button.disabled and "the same 6 seeds: 9 methods, 54 trainings" in button.help
    button.click().run()
    _no_exceptions(at)
    (sweep,) = RunStore(empty_home).list_sweeps()
    assert started == [sweep.id]
    assert at.query_params["sweep"] in (sweep.id, [sweep.id])
    assert any("Sweeps" in t.value for t in at.title), "the Sweeps page opens on the new sweep"
    assert at.selectbox(key=state.SWEEP_ID).value == sweep.id
    cells = {e.cell["method"]: RunConfig.model_validate(e.config) for e in sweep.experiments}
    assert list(cells) == ["ce", "weighted_ce", "class_balanced", "crt", "balanced_softmax",
                           "ldam_drw", "logistic_regression", "balanced_random_forest", "hist_gradient_boosting"]
    for config in cells.values():
        assert config.evaluation.seeds == [0, 1, 2, 3, 4, 5] and config.train.epochs == 10 and config.data.source == "wine"
    assert cells["ce"].method_label == "ce" and cells["ce"].model.name == "mlp"
    assert cells["class_balanced"].sampler.name == "class_balanced" and cells["class_balanced"].loss.name == "ce"
    assert cells["crt"].stage2.name == "crt" and cells["weighted_ce"].loss.name == "weighted_ce"
    assert cells["ldam_drw"].loss.name == "ldam" and cells["ldam_drw"].loss.drw_epoch == 8, "DRW at 80 % of 10 epochs"
    for baseline in ("logistic_regression", "balanced_random_forest", "hist_gradient_boosting"):
        config = cells[baseline]
        assert config.model.name == baseline and config.loss.name == "ce" and config.sampler.name == "instance"
        assert config.stage2 is None
    assert len(sweep.runs) == 54 and {r.status for r in sweep.runs} == {"queued"}
    assert all(r.queue == sweep.id for r in sweep.runs), "its runs wait for the sweep's driver, not the worker"


def test_standard_fixes_for_images_keep_the_forms_seeds_and_need_a_network():
    from core.jobs import standard_fixes_spec, sweep_size

    config = RunConfig.model_validate({"data": {"source": "digits", "imbalance": {"profile": "exp", "ratio": 50}},
                                       "model": {"name": "small_cnn", "width": 8}, "loss": {"name": "focal"},
                                       "sampler": {"name": "sqrt"}, "train": {"epochs": 5, "seed": 3},
                                       "evaluation": {"seeds": [3, 4, 5, 6, 7, 8]}})
    spec = standard_fixes_spec(config, "image")
    assert list(spec.grid["method"]) == ["ce", "weighted_ce", "class_balanced", "crt", "balanced_softmax",
                                         "ldam_drw"], "no table baselines for images"
    assert spec.base["evaluation"]["seeds"] == [3, 4, 5, 6, 7, 8] and "loss" not in spec.base
    assert spec.base["model"] == {"name": "small_cnn", "width": 8} and spec.grid["method"]["ldam_drw"][
        "loss.drw_epoch"] == 4
    assert sweep_size(spec) == (6, 36)
    one_seed = standard_fixes_spec(config.model_copy(update={"evaluation": config.evaluation.model_copy(
        update={"seeds": []})}), "image")
    assert one_seed.base["evaluation"]["seeds"] == [3, 4, 5, 6, 7, 8], "one seed on the form: six from it"
    folds = standard_fixes_spec(config.model_copy(update={"evaluation": config.evaluation.model_copy(
        update={"seeds": [], "folds": 5})}), "image")
    assert folds.base["evaluation"] == {"folds": 5, "seeds": []}, "folds on the form are the repeats"
    assert sweep_size(folds) == (6, 30)
    table = RunConfig.model_validate({"data": WINE, "model": {"name": "logistic_regression"}})
    spec = standard_fixes_spec(table, "tabular")
    assert spec.base["model"] == {"name": "mlp"}, "the fixes need a network, not the baseline on the form"
    assert np.isin(["logistic_regression", "hist_gradient_boosting"], list(spec.grid["method"])).all()

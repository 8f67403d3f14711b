"""Good starting points under AppTest: what a session just made opens on Results and Compare
(a stale address does not override it, a typed one does), the run picker grouped by sweep,
Home's latest work in one line per sweep, and the Sweeps page's builder."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from app import state
from conftest import TINY_TABLE_RUN, open_at_address, shown
from core.config import RunConfig
from core.store import RunStore

TINY_SWEEP = {
    "name": "fixes on wine",
    "data": {"source": "wine", "imbalance": {"profile": "exp", "ratio": 5}},
    "model": {"name": "mlp", "hidden": 16},
    "train": {"epochs": 2, "batch_size": 32, "min_steps": 0, "nc_every": 0},
    "evaluation": {"seeds": [0, 1]},
    "grid": {"loss.name": ["ce", "weighted_ce"]},
}


@pytest.fixture(scope="module")
def made_store(tmp_path_factory) -> dict:
    """An old lone run, then a finished 2-loss x 2-seed sweep on wine (5 tiny runs)."""
    from core.jobs import execute_run, load_sweep, start_sweep

    home = tmp_path_factory.mktemp("made-home")
    store = RunStore(home)
    old = store.create_run(RunConfig.model_validate({**TINY_TABLE_RUN, "name": "an old run"}))
    assert execute_run(store, store.claim(old, os.getpid()), embeddings=False) == "done"
    sweep_id, _, _ = start_sweep(store, load_sweep(json.loads(json.dumps(TINY_SWEEP))))
    for run in store.get_sweep(sweep_id).runs:
        assert execute_run(store, store.claim(run.id, os.getpid()), embeddings=False) == "done"
    return {"home": home, "old": old, "sweep": sweep_id}


@pytest.fixture
def made_home(made_store, tmp_path, monkeypatch) -> dict:
    home = tmp_path / "home"
    shutil.copytree(made_store["home"], home)
    monkeypatch.setenv("TAILSCOPE_HOME", str(home))
    return {**made_store, "home": home}


def _no_exceptions(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _best_and_reference(home: Path, sweep_id: str) -> tuple:
    """The loss whose runs have the higher mean balanced accuracy, read from the metric files."""
    store = RunStore(home)
    by_loss = {e.cell["loss.name"]: e for e in store.get_sweep(sweep_id).experiments}
    means = {loss: sum(store.metrics(r.id)["balanced_accuracy"] for r in e.runs) / len(e.runs)
             for loss, e in by_loss.items()}
    assert means["weighted_ce"] != means["ce"]
    return by_loss["weighted_ce"], by_loss["ce"]


def test_what_was_just_made_beats_a_stale_address_and_a_typed_one_beats_it(made_home):
    best, ce = _best_and_reference(made_home["home"], made_home["sweep"])
    at = open_at_address("results", run=made_home["old"])
    _no_exceptions(at)
    assert at.session_state[state.RUN_ID] == made_home["old"], "a new session: the address wins"
    at.session_state[state.JUST_MADE] = {"id": made_home["sweep"], "shown": None}  # as Start does
    at.run()
    _no_exceptions(at)
    assert at.session_state[state.RUN_ID] == best.runs[0].id, "the old ?run= left in the address does not win"
    assert at.session_state[state.COMPARE_EXPERIMENT_IDS] == [best.id, ce.id]
    assert at.session_state[state.COMPARE_RUN_IDS] == [best.runs[0].id, ce.runs[0].id]
    assert state.JUST_MADE not in at.session_state, "the sweep has finished: nothing will move the picker again"
    at.switch_page("../pages/compare.py")
    at.run()
    _no_exceptions(at)
    assert at.multiselect(key="compare.experiments").value == [best.id, ce.id], "the best fix against plain CE"
    at.query_params["run"] = made_home["old"]  # typed into the address bar
    at.run()
    assert at.session_state[state.RUN_ID] == made_home["old"]


def test_the_person_picking_another_run_stops_the_following(made_home):
    at = open_at_address("results")
    sweep = RunStore(made_home["home"]).get_sweep(made_home["sweep"])
    at.session_state[state.JUST_MADE] = {"id": sweep.id, "shown": sweep.runs[-1].id}  # moved there earlier
    at.selectbox(key=state.RUN_ID).set_value(made_home["old"]).run()
    _no_exceptions(at)
    assert at.session_state[state.RUN_ID] == made_home["old"] and state.JUST_MADE not in at.session_state


def test_picker_groups_sweep_runs_and_compare_picks_exactly_one_experiment(made_home):
    at = open_at_address("compare")
    _no_exceptions(at)
    picker = at.selectbox(key=state.RUN_ID)
    labels = list(picker.options)  # as shown, the search filters these
    sweep_labels = [label for label in labels if "fixes on wine › " in label]
    assert len(sweep_labels) == 4 and labels.index(sweep_labels[0]) + 3 == labels.index(sweep_labels[-1])
    assert any("Class-weighted cross-entropy › seed 1" in label for label in sweep_labels), sweep_labels
    at.segmented_control(key="compare.mode").set_value("Experiments").run()
    _no_exceptions(at)
    pick = at.multiselect(key="compare.experiments")
    assert all("loss.name=" not in o and o.endswith("· 2 runs") for o in pick.options), pick.options
    # Streamlit's bulk action ("Select 2 matches" as the first option after typing) is off on both pickers
    assert pick.proto.select_all == 0
    at.segmented_control(key="compare.mode").set_value("Runs").run()
    assert at.multiselect(key="compare.runs").proto.select_all == 0
    at.segmented_control(key="compare.mode").set_value("Experiments").run()
    pick = at.multiselect(key="compare.experiments")
    pick.set_value([]).run()
    first = at.multiselect(key="compare.experiments").options[0]
    at.multiselect(key="compare.experiments").select(first).run()
    assert len(at.multiselect(key="compare.experiments").value) == 1, "taking one option adds exactly one"


def test_home_points_to_the_latest_sweep_in_one_line(made_home):
    at = open_at_address("home")
    _no_exceptions(at)
    text = " ".join(shown(m.value) for m in at.markdown)
    assert "Latest sweep:** fixes on wine, 4 runs; best: **Class-weighted cross-entropy** (" in text, text
    assert "balanced accuracy against Cross-entropy (plain), within noise, 2 paired runs)" in text \
        or "balanced accuracy against Cross-entropy (plain), beyond noise, 2 paired runs)" in text, text
    lines = [shown(m.value) for m in at.markdown if "balanced accuracy" in m.value and "Latest" not in m.value]
    assert sum("fixes on wine" in line for line in lines) == 1, "one line for the sweep's four runs"
    assert any("an old run" in line for line in lines)
    assert any(link.proto.page == "sweeps" for link in at.get("page_link"))


def test_builder_counts_shows_yaml_and_starts_the_sweep(made_home, monkeypatch):
    from core.jobs import load_sweep

    started = []

    def driver(store, sweep_id, *args, **kwargs):  # a live driver (this process) that trains nothing
        started.append(sweep_id)
        store.set_sweep_driver(sweep_id, os.getpid(), "local")
        return True

    monkeypatch.setattr("app.services.ensure_sweep_driver", driver)
    at = open_at_address("sweeps")
    at.selectbox(key="sweeps.build.data").set_value("wine")
    at.multiselect(key="sweeps.build.loss").set_value(["ce", "focal", "weighted_ce"])
    at.multiselect(key="sweeps.build.ratios").set_value([5, 20])
    at.number_input(key="sweeps.build.seeds").set_value(2)
    at.number_input(key="sweeps.build.epochs").set_value(2).run()
    _no_exceptions(at)
    text = " ".join(shown(m.value) for m in at.markdown)
    assert "6 combinations × 2 trainings each = 12 trainings." in text
    assert "About " in text, "finished wine/mlp runs in the store give a time estimate"
    raw = yaml.safe_load(next(c for c in at.get("code") if "grid:" in c.proto.code_text).proto.code_text)
    spec = load_sweep(raw)
    assert spec.grid == {"loss.name": ["ce", "focal", "weighted_ce"], "data.imbalance.ratio": [5, 20]}
    at.button(key="sweeps.build.start").click().run()
    _no_exceptions(at)
    store = RunStore(made_home["home"])
    new = store.find_sweep(spec.spec_hash)
    assert new is not None and started == [new] and len(store.get_sweep(new).runs) == 12
    assert at.session_state[state.SWEEP_ID] == new, "the Sweeps page opens on it"
    assert at.session_state[state.JUST_MADE]["id"] == new, "Results and Compare follow it while it trains"


def test_builder_refuses_too_many_combinations_with_the_sweep_file_words(made_home):
    from core.jobs import MAX_CELLS
    from core.registry import registry_for

    at = open_at_address("sweeps")
    at.multiselect(key="sweeps.build.loss").set_value(registry_for("loss").names())
    at.multiselect(key="sweeps.build.sampler").set_value(registry_for("sampler").names())
    at.multiselect(key="sweeps.build.ratios").set_value([2, 5, 10, 20, 50, 100, 200]).run()
    _no_exceptions(at)
    assert any(f"more than {MAX_CELLS}; sweep fewer values at a time" in shown(w.value) for w in at.warning)
    assert at.button(key="sweeps.build.start").disabled

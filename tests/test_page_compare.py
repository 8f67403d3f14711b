"""Compare page under AppTest: too few runs, runs on different data, and a comparable pair."""

from __future__ import annotations

import pytest
from conftest import shown, shown_table

from core.jobs import save_derived_run
from core.store import RunStore


def _no_exceptions(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


@pytest.fixture
def pair_home(copied_home) -> dict:
    """The tiny store plus a logit-adjusted copy of the table run: two runs on the same data."""
    adjusted = save_derived_run(RunStore(copied_home["home"]), copied_home["table_run"], "wine adjusted",
                                {"logit_tau": 1.0})
    return {**copied_home, "adjusted_run": adjusted}


def test_needs_two_finished_runs(empty_home, open_page):
    at = open_page("compare")
    _no_exceptions(at)
    assert any("at least two finished runs" in i.value for i in at.info)
    assert any("demo" in b.label.lower() for b in at.button)


def test_runs_on_different_data_are_refused_with_a_reason(stored_home, open_page):
    at = open_page("compare")
    _no_exceptions(at)
    assert at.multiselect(key="compare.runs").value == [stored_home["image_run"]], "no comparable pair: one run"
    assert any("at least two" in i.value for i in at.info)
    at.multiselect(key="compare.runs").set_value([stored_home["image_run"], stored_home["table_run"]]).run()
    _no_exceptions(at)
    [error] = at.error
    assert "cannot be compared" in error.value and "a different data source" in error.value
    assert not at.get("plotly_chart")


def test_comparable_runs_side_by_side(pair_home, open_page):
    at = open_page("compare")
    _no_exceptions(at)
    assert at.multiselect(key="compare.runs").value == [pair_home["adjusted_run"], pair_home["table_run"]]
    assert any("Comparable" in c.value for c in at.caption)
    table = next(shown_table(t) for t in at.table if "Balanced acc." in shown_table(t).index)  # one column per run
    assert list(table.columns) == ["wine adjusted", "tiny wine ce"] and table.index[0] == "colour"
    store = RunStore(pair_home["home"])
    assert float(table.loc["Balanced acc.", "tiny wine ce"]) == pytest.approx(
        store.metrics(pair_home["table_run"])["balanced_accuracy"], abs=5e-4)  # shown with 3 decimals
    assert len(at.get("plotly_chart")) == 6  # paired differences, per class, difference, groups, curves, shift
    shift = next(c for c in at.get("plotly_chart") if "compare.shift" in c.proto.id)
    assert shift.proto.spec.count('"type":"log"') == 1 and "wine adjusted" in shift.proto.spec
    assert "tiny wine ce" in shift.proto.spec, "one line per chosen run"

    before = _traces(at, 0)
    at.segmented_control(key="compare.metric").set_value("f1").run()
    _no_exceptions(at)
    assert _traces(at, 0) != before


def test_the_selection_is_remembered_across_pages(pair_home, open_page):
    from app import state

    at = open_page("compare")
    at.multiselect(key="compare.runs").set_value([pair_home["table_run"], pair_home["adjusted_run"]]).run()
    assert at.session_state[state.COMPARE_RUN_IDS] == [pair_home["table_run"], pair_home["adjusted_run"]]
    at.switch_page("../pages/results.py")
    at.run()
    at.switch_page("../pages/compare.py")
    at.run()
    _no_exceptions(at)
    assert at.multiselect(key="compare.runs").value == [pair_home["table_run"], pair_home["adjusted_run"]]


def test_demo_button_selects_the_new_run_even_with_a_run_picker(copied_home, open_page):
    """With one finished run the sidebar already shows its run picker; the demo button must
    still be able to select the run it queues (a callback, not an assignment after the picker)."""
    from app import state

    store = RunStore(copied_home["home"])
    store.delete(copied_home["table_run"])
    at = open_page("compare")
    at.button(key="compare.demo").click().run()
    _no_exceptions(at)
    newest = store.list_runs()[0]
    assert newest.status == "queued" and newest.name.startswith("demo")
    assert at.session_state[state.RUN_ID] == newest.id


def test_experiments_are_compared_with_a_paired_test(experiment_home, open_page):
    from core.analysis import compare_ids

    at = open_page("compare")
    _no_exceptions(at)
    at.segmented_control(key="compare.mode").set_value("Experiments").run()
    _no_exceptions(at)
    chosen = at.multiselect(key="compare.experiments").value
    assert set(chosen) == {experiment_home["strong"], experiment_home["plain"]}
    reference = at.selectbox(key="compare.reference.Experiments").value
    other = next(i for i in chosen if i != reference)
    expected = compare_ids(RunStore(experiment_home["home"]), other, reference)
    paired = next(shown_table(t) for t in at.table if "verdict" in shown_table(t).columns)
    assert paired["verdict"].tolist() == [expected["verdict"]]
    assert paired["difference [interval]"].iloc[0].startswith(f"{expected['difference']:+.3f}")
    headline = next(shown_table(t) for t in at.table if "runs finished" in shown_table(t).index)
    assert headline.loc["runs finished"].tolist() == ["3 of 3", "3 of 3"]
    assert " [" in headline.loc["Balanced acc."].iloc[0]


def test_a_chosen_reference_and_stable_colours(pair_home, open_page):
    at = open_page("compare")
    ids = at.multiselect(key="compare.runs").value
    colours = {t["name"]: t["marker"]["color"] for t in _traces(at, 0)}
    at.selectbox(key="compare.reference.Runs").set_value(ids[1]).run()
    _no_exceptions(at)
    assert {t["name"]: t["marker"]["color"] for t in _traces(at, 0)} == colours, "colours follow the runs"
    paired = next(shown_table(t) for t in at.table if "verdict" in shown_table(t).columns)
    assert paired.index.tolist() == ["wine adjusted"], "differences are measured against the chosen reference"
    chosen = at.selectbox(key="compare.reference.Runs")
    assert chosen.value == ids[1]
    assert f"Every difference below is another one minus **{chosen.options[chosen.index]}**." in [
        shown(c.value) for c in at.caption], "the reference's whole name, which the select may cut"


def _traces(at, chart: int) -> list[dict]:
    import json

    charts = [c for c in at.get("plotly_chart") if "compare.per-class" in c.proto.id]
    return json.loads(charts[chart].proto.spec)["data"]

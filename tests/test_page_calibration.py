"""Calibration page and Post-hoc explorer under AppTest: empty store, stored runs, widgets."""

from __future__ import annotations

import pytest

from app.calibration_view import TABS


def _no_exceptions(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


@pytest.mark.parametrize("page", ["calibration", "posthoc"])
def test_pages_explain_what_to_do_on_an_empty_store(empty_home, open_page, page):
    at = open_page(page)
    _no_exceptions(at)
    assert any("demo" in b.label.lower() for b in at.button)
    assert not at.metric


@pytest.mark.parametrize("run", ["image_run", "table_run"])
def test_calibration_page_renders_every_view(stored_home, open_page, run):
    at = open_page("calibration", run_id=stored_home[run])
    _no_exceptions(at)
    metrics = _metrics(at)
    assert {"ECE", "MCE", "Classwise ECE", "Brier score", "NLL"} <= set(metrics)
    assert len(at.get("plotly_chart")) == 3  # reliability, then the open tab's: per class and per group
    for tab, charts in zip(TABS[1:], (["calibration.histogram"], ["calibration.before", "calibration.after"])):
        at.session_state["calibration.tabs"] = tab  # each other tab is drawn when opened
        at.run()
        _no_exceptions(at)
        assert sorted(c.key for c in at.get("plotly_chart")) == sorted(["calibration.reliability", *charts]), tab
    assert {"Temperature T", "ECE after"} <= set(_metrics(at))
    at.session_state["calibration.tabs"] = TABS[0]
    at.run()
    [table] = at.dataframe
    rows = table.value["name"].tolist()
    assert rows[-1] == "all" and {"head", "tail"} & set(rows)
    from core.store import RunStore

    assert table.value["n"].iloc[-1] == len(RunStore(stored_home["home"]).artifacts(stored_home[run]).labels)
    at.radio(key="calibration.view").set_value("By group").run()
    _no_exceptions(at)
    at.radio(key="calibration.view").set_value("One class").run()
    _no_exceptions(at)
    at.selectbox(key="calibration.class").select_index(-1).run()  # the rarest class
    at.slider(key="calibration.bins").set_value(8).run()
    _no_exceptions(at)
    assert at.get("plotly_chart")


def test_posthoc_sliders_change_the_numbers(stored_home, open_page):
    at = open_page("posthoc", run_id=stored_home["image_run"])
    _no_exceptions(at)
    original = _metrics(at)
    assert {"Balanced accuracy", "Macro F1", "ECE", "NLL", "Brier score"} <= set(original)
    assert not any(m.delta for m in at.metric)  # nothing changed yet
    assert at.button(key="posthoc.save").disabled

    at.slider(key="posthoc.logit_tau").set_value(1.5).run()
    _no_exceptions(at)
    moved = _metrics(at)
    assert moved["Balanced accuracy"] != original["Balanced accuracy"]
    assert any(m.delta for m in at.metric)

    at.select_slider(key="posthoc.temperature").set_value(3.0).run()
    _no_exceptions(at)
    hotter = _metrics(at)
    assert hotter["NLL"] != moved["NLL"] and hotter["Balanced accuracy"] == moved["Balanced accuracy"]

    at.slider(key="posthoc.tau_norm").set_value(1.0).run()
    at.toggle(key="posthoc.prior_threshold").set_value(True).run()
    at.toggle(key="posthoc.fitted_T").set_value(True).run()
    _no_exceptions(at)

    before = at.get("plotly_chart")[1].proto.spec
    at.segmented_control(key="posthoc.which").set_value("before").run()
    _no_exceptions(at)
    assert at.get("plotly_chart")[1].proto.spec != before, "the original confusion matrix replaces the adjusted one"

    at.button(key="posthoc.reset").click().run()
    _no_exceptions(at)
    assert _metrics(at) == original


def test_posthoc_saves_a_derived_run_and_selects_it(copied_home, open_page):
    from app import state
    from core.store import RunStore

    at = open_page("posthoc", run_id=copied_home["table_run"])
    at.slider(key="posthoc.logit_tau").set_value(1.0).run()
    adjusted = _metrics(at)
    at.text_input(key="posthoc.name").input("wine, logit-adjusted").run()
    at.button(key="posthoc.save").click().run()
    _no_exceptions(at)

    store = RunStore(copied_home["home"])
    derived = [r for r in store.list_runs() if r.parent == copied_home["table_run"]]
    assert len(derived) == 1 and derived[0].status == "done" and derived[0].name == "wine, logit-adjusted"
    assert "post-hoc logit adjustment tau=1.0" in derived[0].method
    assert at.session_state[state.RUN_ID] == derived[0].id
    assert any("Saved as" in s.value for s in at.success)
    assert at.slider(key="posthoc.logit_tau").value == 0.0  # built in now, so the sliders restart
    assert _metrics(at) == adjusted  # the derived run's own numbers are the adjusted ones
    assert any("already a post-hoc version" in i.value for i in at.info)

    at.switch_page("../pages/calibration.py")
    at.run()
    _no_exceptions(at)

"""The app shell: entry, Home and Runs pages, with an empty store and with stored runs."""

from __future__ import annotations

import pytest


def _no_exceptions(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


@pytest.mark.parametrize("page", [None, "runs"])
def test_pages_render_on_an_empty_store(empty_home, open_page, page):
    at = open_page(page)
    _no_exceptions(at)
    assert any("demo" in b.label.lower() for b in at.button), "an empty store offers a demo run"


def test_home_lists_stored_runs(stored_home, open_page):
    at = open_page()
    _no_exceptions(at)
    text = " ".join(m.value for m in at.markdown)
    assert "tiny digits ce" in text and "tiny wine ce" in text


def test_sidebar_picks_newest_finished_run(stored_home, open_page):
    from app import state

    at = open_page()
    assert at.session_state[state.RUN_ID] == stored_home["image_run"]


def test_runs_page_renames_a_run(stored_home, open_page):
    from core.store import RunStore

    at = open_page("runs")
    _no_exceptions(at)
    table = at.dataframe[0].value
    assert set(table["name"]) >= {"tiny digits ce", "tiny wine ce"}
    # selection is a browser event; drive the store action the page performs instead
    store = RunStore(stored_home["home"])
    store.rename(stored_home["table_run"], "wine renamed")
    at = open_page("runs")
    assert "wine renamed" in set(at.dataframe[0].value["name"])
    store.rename(stored_home["table_run"], "tiny wine ce")


def test_runs_page_acts_on_the_sidebar_run(copied_home, open_page):
    """Rename, download the config, re-run and delete (after confirming), on the run picked
    in the sidebar: the panel the page shows before any row is ticked."""
    from app import state
    from core.store import RunStore

    store = RunStore(copied_home["home"])
    run_id = copied_home["table_run"]
    at = open_page("runs", run_id=run_id)
    _no_exceptions(at)
    assert any("picked in the sidebar" in c.value for c in at.caption)
    [download] = [d for d in at.get("download_button") if d.proto.label == "Download config (JSON)"]

    at.text_input(key=f"runs.name.{run_id}").input("wine, renamed").run()
    at.button(key="runs.rename").click().run()
    _no_exceptions(at)
    assert store.get(run_id).name == "wine, renamed"

    at.button(key="runs.rerun").click().run()
    _no_exceptions(at)
    rerun = store.list_runs()[0]
    assert rerun.id != run_id and rerun.name == "wine, renamed (re-run)" and rerun.status in ("queued", "running")
    assert rerun.config == {**store.get(run_id).config, "name": "wine, renamed (re-run)"}

    at.session_state[state.RUN_ID] = run_id
    at.run()
    assert at.button(key="runs.delete").disabled, "deleting needs the confirmation first"
    at.checkbox(key=f"runs.confirm.{run_id}").check().run()
    at.button(key="runs.delete").click().run()
    _no_exceptions(at)
    assert run_id not in {r.id for r in store.list_runs()}
    assert not (copied_home["home"] / "runs" / run_id).exists()


def _open_with_address(run_id: str, page: str = "results"):
    from conftest import open_at_address

    return open_at_address(page, run=run_id)


def test_the_address_selects_the_run_and_follows_the_picker(stored_home):
    from app import state

    at = _open_with_address(stored_home["table_run"])  # a bookmark of the older run
    _no_exceptions(at)
    assert at.session_state[state.RUN_ID] == stored_home["table_run"]
    assert at.query_params["run"] == stored_home["table_run"]
    assert "tiny wine ce" in " ".join(c.value for c in at.caption)
    at.selectbox(key=state.RUN_ID).set_value(stored_home["image_run"]).run()
    assert at.query_params["run"] == stored_home["image_run"], "the address names the run on screen"


def test_a_rename_keeps_the_selection(copied_home, open_page):
    from app import state
    from core.store import RunStore

    at = open_page("runs", run_id=copied_home["table_run"])
    RunStore(copied_home["home"]).rename(copied_home["table_run"], "renamed wine")
    at.run()
    _no_exceptions(at)
    assert at.session_state[state.RUN_ID] == copied_home["table_run"], "not the newest run after a rename"
    assert any(s.value == "renamed wine" for s in at.subheader)


def test_a_run_deleted_elsewhere_is_said_so(copied_home, open_page):
    from app import state
    from core.store import RunStore

    at = open_page("results", run_id=copied_home["table_run"])
    RunStore(copied_home["home"]).delete(copied_home["table_run"])  # another tab deletes it
    at.run()
    _no_exceptions(at)
    assert any("tiny wine ce" in w.value and "no longer exists" in w.value for w in at.warning)
    assert at.session_state[state.RUN_ID] == copied_home["image_run"]


def test_the_server_skips_streamlits_full_collection_after_every_run():
    """Streamlit's `runner.postScriptGC` (on by default) costs 0.3-1 s of the one interpreter
    lock per script run with this app's libraries loaded; eight sessions' job watchers alone
    then kept the server busy (bench/load_test.py). The app's config turns it off."""
    import tomllib

    from streamlit import config

    from conftest import ROOT

    settings = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert settings["runner"]["postScriptGC"] is False
    assert config.get_config_options()["runner.postScriptGC"].default_val is True, "the default it changes"

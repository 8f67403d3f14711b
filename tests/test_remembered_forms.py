"""The Data and Train forms keep their values across pages without Streamlit's
"created with a default value but also had its value set via the Session State API"
warning: each remembered widget takes its starting value from the session, never also from
`value=` / `index=` (the warning is not switched off in the app's config)."""

from __future__ import annotations

import logging

import pytest
from streamlit.elements.lib import policies

from conftest import MAIN


@pytest.fixture
def duplicated_defaults(monkeypatch) -> list[str]:
    """The widget keys Streamlit warns about. Streamlit warns once per process; the flag is
    cleared before every check so each widget is reported, not only the first."""
    found: list[str] = []
    check = policies.check_session_state_rules

    def every_time(*args, **kwargs):
        monkeypatch.setattr(policies, "_shown_default_value_warning", False)
        return check(*args, **kwargs)

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "Session State API" in record.getMessage():
                found.append(record.args[0] if record.args else record.getMessage())

    monkeypatch.setattr(policies, "check_session_state_rules", every_time)
    handler = Catch()
    policies._LOGGER.addHandler(handler)
    yield found
    policies._LOGGER.removeHandler(handler)


def _visit(pages: list[str]):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(MAIN), default_timeout=120)
    at.run()
    for page in pages:
        at.switch_page(f"../pages/{page}.py")
        at.run()
        assert not at.exception, (page, [e.value for e in at.exception])
    return at


def test_the_warning_is_not_switched_off():
    from streamlit import config

    assert config.get_option("global.disableWidgetStateDuplicationWarning") is False


def test_data_and_train_forms_keep_values_without_the_warning(duplicated_defaults, empty_home):
    # each page twice, and back: a remembered key is written back on every run after its first
    at = _visit(["data", "data", "train", "train", "data", "train", "sweeps", "home"])
    assert not duplicated_defaults, f"widgets given a default and a session value: {sorted(set(duplicated_defaults))}"
    assert at.session_state["data.builtin"] == "digits" if "data.builtin" in at.session_state else True


def test_an_uploaded_table_opens_its_forms_without_the_warning(duplicated_defaults, empty_home):
    from streamlit.testing.v1 import AppTest

    from app import state
    from core.data import save_upload

    rows = "\n".join(f"{i},{i % 7}.5,{'ab'[i % 2]},{('common', 'rare')[i % 9 == 0]}" for i in range(90))
    source = save_upload(f"case,value,kind,outcome\n{rows}\n".encode(), "clinic.csv")
    at = AppTest.from_file(str(MAIN), default_timeout=120)
    at.session_state[state.DATA_CONFIG] = {"source": source, "label_column": "outcome"}
    at.run()
    for page in ("data", "train", "data"):
        at.switch_page(f"../pages/{page}.py")
        at.run()
        assert not at.exception, (page, [e.value for e in at.exception])
    assert at.radio(key="data.kind").value == "Upload a file", "the saved upload opens the upload form"
    assert at.selectbox(key="data.label_column").value == "outcome"
    at.selectbox(key="data.role_column").set_value("kind").run()  # the role picker, named by the file's column
    assert not at.exception, [e.value for e in at.exception]
    assert not duplicated_defaults, f"widgets given a default and a session value: {sorted(set(duplicated_defaults))}"

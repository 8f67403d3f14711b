"""The Data page reads an upload with several labels per case: it says so in words, shows the
findings' long tail and the share unknown, and saves a multi-label data config."""

from __future__ import annotations

import io

import numpy as np

from conftest import shown
from app import state


def _csv(n=120) -> bytes:
    lines = ["age,weight,findings"]
    for i in range(n):
        labels = ["fever"] + ["cough"] * (i % 2 == 0) + ["rash"] * (i % 6 == 0)
        lines.append(f"{30 + i % 17},{60 + i % 7},{'|'.join(labels)}")
    return ("\n".join(lines) + "\n").encode()


def _upload(at, name, data):
    at.radio(key="data.kind").set_value("Upload a file").run()
    at.file_uploader(key="data.upload").set_value((name, data, "application/octet-stream")).run()
    return at


def test_a_separated_label_column_is_read_as_multilabel_and_saved(empty_home, open_page):
    at = _upload(open_page("data"), "cases.csv", _csv())
    assert not at.exception, [e.value for e in at.exception]
    at.selectbox(key="data.label_column").set_value("findings").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("looks like **multi-label** data" in i.value and "vertical bars" in i.value for i in at.info)
    assert at.radio(key="data.ml_layout").value == "separated"
    words = " ".join(shown(m.value) for m in at.markdown)
    assert "120 cases, 3 findings" in words and "0% of the entries" in words
    chart = at.get("plotly_chart")[0].proto.spec
    for name in ("fever", "cough", "rash"):
        assert name in chart
    at.button(key="data.save").click().run()
    saved = at.session_state[state.DATA_CONFIG]
    assert saved["multilabel_upload"] == {"separator": "|", "columns": None}
    assert saved["label_column"] == "findings" and saved["source"].startswith("upload:")


def test_zero_one_columns_and_an_npz_label_matrix(empty_home, open_page):
    rows = ["x1,x2,fever,cough"] + [f"{i % 9},{i % 4},{int(i % 2 == 0)},{'' if i % 5 == 0 else int(i % 3 == 0)}"
                                    for i in range(60)]
    at = _upload(open_page("data"), "c.csv", ("\n".join(rows) + "\n").encode())
    at.selectbox(key="data.label_column").set_value("fever").run()
    at.radio(key="data.ml_layout").set_value("columns").run()
    at.multiselect(key="data.ml_columns").set_value(["fever", "cough"]).run()
    assert not at.exception, [e.value for e in at.exception]
    words = " ".join(shown(m.value) for m in at.markdown)
    assert "60 cases, 2 findings" in words and "10% of the entries" in words  # 12 of 120 cough entries blank
    buf = io.BytesIO()
    y = np.zeros((50, 3))
    y[:, 0] = 1
    y[::2, 1] = 1
    y[::5, 2] = 1
    y[1, 2] = -1
    np.savez(buf, x=np.random.default_rng(0).normal(size=(50, 4)), y=y)
    at.file_uploader(key="data.upload").set_value(("m.npz", buf.getvalue(), "application/octet-stream")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "50 cases, 3 findings" in " ".join(shown(m.value) for m in at.markdown)
    at.button(key="data.save").click().run()
    assert at.session_state[state.DATA_CONFIG]["multilabel_upload"] == {"separator": None, "columns": None}


def test_the_train_page_offers_multilabel_losses_and_trains_the_saved_upload(empty_home, open_page):
    import os

    from core.data import save_upload
    from core.jobs import execute_run
    from core.methods import MULTILABEL_LOSSES
    from core.store import RunStore

    source = save_upload(_csv(), "cases.csv")
    data = {"source": source, "label_column": "findings", "multilabel_upload": {"separator": "|"}}
    from streamlit.testing.v1 import AppTest
    from conftest import MAIN

    at = AppTest.from_file(str(MAIN), default_timeout=120)
    at.session_state[state.DATA_CONFIG] = data
    at.run()
    at.switch_page("../pages/train.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("3 findings" in i.value and "multi-label" in i.value for i in at.info)
    loss = at.selectbox(key="train.ml_loss")
    assert set(loss.options) == {MULTILABEL_LOSSES.info(n).label for n in MULTILABEL_LOSSES.names()}
    loss.set_value("db").run()
    at.number_input(key="train.settings.epochs").set_value(2).run()
    at.number_input(key="train.ml_seeds").set_value(2).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    at.button(key="train.start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    store = RunStore(empty_home)
    (experiment,) = store.list_experiments()
    assert experiment.config["loss"]["name"] == "db" and experiment.config["evaluation"]["seeds"] == [0, 1]
    run = experiment.runs[0]
    assert execute_run(store, store.claim(run.id, os.getpid()), embeddings=False) == "done"
    assert [row["label"] for row in store.metrics(run.id)["per_label"]] == ["fever", "cough", "rash"]


def test_the_train_page_offers_the_multilabel_baselines_without_a_loss(empty_home, open_page):
    import os

    from streamlit.testing.v1 import AppTest
    from conftest import MAIN

    from core.data import save_upload
    from core.jobs import execute_run
    from core.models import MODELS
    from core.store import RunStore

    source = save_upload(_csv(), "cases.csv")
    at = AppTest.from_file(str(MAIN), default_timeout=120)
    at.session_state[state.DATA_CONFIG] = {"source": source, "label_column": "findings",
                                           "multilabel_upload": {"separator": "|"}}
    at.run()
    at.switch_page("../pages/train.py")
    at.run()
    model = at.selectbox(key="train.ml_model.tabular")
    chain, ovr = MODELS.info("classifier_chain").label, MODELS.info("ovr_logistic_regression").label
    assert {chain, ovr} <= set(model.options)
    model.set_value("ovr_logistic_regression").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    keys = {s.key for s in at.selectbox}
    assert "train.ml_loss" not in keys and "train.ml_sampler" not in keys, "a baseline takes no loss or sampler"
    assert any("fitted once" in c.value for c in at.caption)
    at.button(key="train.start").click().run()
    store = RunStore(empty_home)
    (run,) = store.list_runs()
    assert run.config["model"]["name"] == "ovr_logistic_regression"
    assert execute_run(store, store.claim(run.id, os.getpid()), embeddings=False) == "done"
    assert store.metrics(run.id)["multilabel"] is True

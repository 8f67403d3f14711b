"""The Data page reads a picture ZIP with a labels.csv as multi-label data and saves it; the
Train page then offers the multi-label losses for it."""

from __future__ import annotations

import io
import zipfile

import numpy as np
from PIL import Image

from conftest import MAIN, shown
from app import state


def _zip(n=40) -> bytes:
    out = io.BytesIO()
    rows = ["file,labels"]
    with zipfile.ZipFile(out, "w") as z:
        for i in range(n):
            pic = io.BytesIO()
            Image.fromarray(np.full((6, 6), i * 5, dtype=np.uint8), "L").save(pic, format="PNG")
            z.writestr(f"scans/p{i}.png", pic.getvalue())
            labels = ["clear"] + ["spot"] * (i % 2 == 0) + ["scar"] * (i % 8 == 0)
            rows.append(f"p{i}.png,{';'.join(labels) if i % 10 else 'clear;?'}")
        z.writestr("scans/labels.csv", "\n".join(rows) + "\n")
    return out.getvalue()


def test_a_picture_zip_with_labels_csv_is_saved_and_the_train_page_offers_multilabel_losses(empty_home, open_page):
    from core.methods import MULTILABEL_LOSSES
    from streamlit.testing.v1 import AppTest

    at = open_page("data")
    at.radio(key="data.kind").set_value("Upload a file").run()
    at.file_uploader(key="data.upload").set_value(("scans.zip", _zip(), "application/zip")).run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    assert any("labels.csv" in i.value and "multi-label" in i.value for i in at.info)
    assert at.selectbox(key="data.ml_separator").value == ";"  # found in the rows
    words = " ".join(shown(m.value) for m in at.markdown)
    # 40 cases, 3 findings; 4 rows with ? leave 2 of their 3 entries unknown: 8 of 120 = 7%
    assert "40 cases, 3 findings" in words and "7% of the entries" in words
    captions = [shown(c.value) for c in at.caption if " · carries " in c.value]  # a picture of each finding
    assert captions == ["**scar** · carries clear, spot, scar", "**spot** · carries clear, spot",
                        "**clear** · carries clear"], "a picture of its own for each, fewest other findings first"
    assert len(at.get("image")) == 3
    at.button(key="data.save").click().run()
    saved = at.session_state[state.DATA_CONFIG]
    assert saved["multilabel_upload"] == {"separator": ";", "columns": None} and saved["source"].endswith(".zip")

    train = AppTest.from_file(str(MAIN), default_timeout=120)
    train.session_state[state.DATA_CONFIG] = saved
    train.run()
    train.switch_page("../pages/train.py")
    train.run()
    assert not train.exception and not train.error, [e.value for e in [*train.exception, *train.error]]
    assert any("3 findings" in i.value and "multi-label" in i.value for i in train.info)
    loss = train.selectbox(key="train.ml_loss")
    assert set(loss.options) == {MULTILABEL_LOSSES.info(n).label for n in MULTILABEL_LOSSES.names()}


def test_a_multilabel_builtin_is_chosen_in_words_with_its_parameters_and_saved(empty_home, open_page):
    at = open_page("data")
    at.radio(key="data.kind").set_value("Built-in dataset").run()
    pick = at.selectbox(key="data.builtin")
    assert "Pictures of one to three digits (several labels per case)" in pick.options
    assert not any("_" in option for option in pick.options)
    pick.set_value("multilabel_digits").run()
    at.number_input(key="data.params.multilabel_digits.n_samples").set_value(300).run()
    at.radio(key="data.ml_profile").set_value("exp").run()
    at.slider(key="data.ml_ratio").set_value(10.0).run()
    at.slider(key="data.ml_hide").set_value(0.2).run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    assert "300 cases, 10 findings" in " ".join(shown(m.value) for m in at.markdown)
    at.button(key="data.save").click().run()
    saved = at.session_state[state.DATA_CONFIG]
    assert saved["source"] == "multilabel_digits" and saved["params"]["n_samples"] == 300
    assert saved["imbalance"]["profile"] == "exp" and saved["imbalance"]["ratio"] == 10.0
    assert saved["hide_labels"] == 0.2 and saved["multilabel_upload"] is None


def test_a_second_upload_finds_its_own_separator_and_layout(empty_home, open_page):
    """A table listing findings with `|`, then a ZIP whose labels.csv uses `;`, then a table
    with one label per row: each file's labels are read as that file writes them, never with
    the choice the last file needed."""
    from conftest import shown as words_of

    at = open_page("data")
    at.radio(key="data.kind").set_value("Upload a file").run()
    rows = ["a,b,findings"] + [f"{i},{i % 3},{'fever|cough' if i % 2 else 'fever'}" for i in range(40)]
    at.file_uploader(key="data.upload").set_value(("t.csv", ("\n".join(rows) + "\n").encode(), "text/csv")).run()
    at.selectbox(key="data.label_column").set_value("findings").run()
    assert at.selectbox(key="data.ml_separator").value == "|"
    at.file_uploader(key="data.upload").set_value(("scans.zip", _zip(), "application/zip")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="data.ml_separator").value == ";"
    assert "40 cases, 3 findings" in " ".join(words_of(m.value) for m in at.markdown)
    single = ["a,b,label"] + [f"{i},{i % 3},{'yes' if i % 2 else 'no'}" for i in range(40)]
    at.file_uploader(key="data.upload").set_value(("s.csv", ("\n".join(single) + "\n").encode(), "text/csv")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.radio(key="data.ml_layout").value == "one"

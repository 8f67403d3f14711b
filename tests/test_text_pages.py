"""Seeing text: escaped highlighting, per-class statistics by hand, the Data page's text
panel, the Error gallery's coloured notes (hostile text stays text) and the report."""

from __future__ import annotations

import html
import re

import numpy as np
import pytest

from core.data import distinctive_words, text_statistics
from core.viz import escape_text, highlighted_text_html

HOSTILE = "<img src=x onerror=alert(1)> ![x](http://203.0.113.9/x.png) :red[rare] **bold**"


def _no_exceptions(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _visible(fragment: str) -> str:
    """The characters a browser shows for an HTML fragment (tags dropped, entities read)."""
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def test_highlighted_text_is_escaped_and_shows_every_character():
    text = f"fever {HOSTILE} cough"
    spans = [m.span() for m in re.finditer(r"\S+", text)]
    out = highlighted_text_html(text, spans, np.linspace(-1, 1, len(spans)), title="<b>notes</b>")
    assert "<img" not in out and "<b>" not in out and "](" not in out and ":red[" not in out
    assert _visible(out) == "<b>notes</b>" + text
    assert out.count("<span") == len(spans) and "rgba(214, 39, 40, 0.75)" in out  # the strongest word, towards
    assert escape_text("a\nb") == "a b"


def test_text_statistics_and_telling_words_by_hand():
    texts = ["wheeze at night", "wheeze and cough", "cough cough", "headache aura", "aura again"]
    y = np.array([0, 0, 0, 1, 1])
    stats = text_statistics(texts, y, ["asthma", "migraine"])
    assert stats["texts"].tolist() == [3, 2] and stats["median words"].tolist() == [3.0, 2.0]
    assert stats["different words"].tolist() == [5, 3]  # at, and, cough, night, wheeze / again, aura, headache
    telling = distinctive_words(texts, y, ["asthma", "migraine"])
    # wheeze: in 2 of 3 asthma texts, 0 of 2 others: log((2.5/4)/(1.5/4)) - log((0.5/3)/(2.5/3)) = log(5/3) + log(5)
    assert telling["asthma"][0][0] in ("wheeze", "cough")
    assert dict(telling["asthma"])["wheeze"] == pytest.approx(np.log(5 / 3) + np.log(5))
    assert [w for w, _ in telling["migraine"]] == ["aura"], "a word in only one text of a class is not telling"


@pytest.fixture(scope="module")
def text_home(tmp_path_factory):
    """One linear run on an uploaded table of notes (one of them hostile) and two numbers."""
    from conftest import make_run
    from core.data import save_upload

    home = tmp_path_factory.mktemp("text_pages")
    rng = np.random.default_rng(0)
    words = {"flu": ["fever", "aches", "cough"], "asthma": ["wheeze", "inhaler", "tight"],
             "meningitis": ["neck", "stiff", "rash"]}
    lines = ["age,temp,note,diagnosis"]
    for i in range(240):
        label = "meningitis" if i % 24 == 0 else ["flu", "asthma"][i % 2]
        pool = words[label] + words["flu"] + ["tired", "seen", "today"]
        note = " ".join(rng.choice(pool, 5)) + (f" {HOSTILE}" if i % 24 == 0 else "")
        lines.append(f"{rng.integers(20, 90)},{rng.normal(37, 1):.1f},\"{note.replace(chr(34), '')}\",{label}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TAILSCOPE_HOME", str(home))
        source = save_upload(("\n".join(lines) + "\n").encode(), "notes.csv")
        run = make_run(home, {"data": {"source": source, "test_fraction": 0.4}, "model": {"name": "linear"},
                              "train": {"epochs": 3, "lr": 0.05, "optimizer": "adamw", "batch_size": 32,
                                        "nc_every": 0, "min_steps": 0}}, embeddings=False)
    return {"home": home, "run": run}


def test_the_gallery_colours_each_missed_note_and_keeps_hostile_text_as_text(text_home, monkeypatch, open_page):
    monkeypatch.setenv("TAILSCOPE_HOME", str(text_home["home"]))
    at = open_page("gallery", run_id=text_home["run"])
    _no_exceptions(at)
    at.multiselect(key=f"gallery.true.{text_home['run']}").set_value([]).run()  # every class's mistakes
    _no_exceptions(at)
    notes = [e.proto.body for e in at.get("html")]
    assert notes, "each wrong case shows its note"
    assert all("<img" not in n and "](" not in n for n in notes)
    assert any("towards" in _visible(n) for n in notes)
    exact = [m.value for m in at.caption if m.value.startswith("Exact for this linear model")]
    assert exact
    parts = [float(v) for v in re.findall(r"[+−-]\d+\.\d+", exact[0].replace("−", "-"))]
    assert parts[0] + parts[1] == pytest.approx(parts[2], abs=2e-3) and parts[2] == pytest.approx(parts[3], abs=1e-3)


def test_the_report_carries_the_coloured_notes(text_home, monkeypatch):
    from app.text_view import report_text_html
    from core.analysis import error_cases
    from core.store import RunStore
    from core.viz import error_report_html

    monkeypatch.setenv("TAILSCOPE_HOME", str(text_home["home"]))
    store = RunStore(text_home["home"])
    run_id = text_home["run"]
    from core.config import RunConfig

    art, config = store.artifacts(run_id), RunConfig.model_validate(store.get(run_id).config)
    splits = split_data_for(config)
    cases = error_cases(art, store.metrics(run_id)["dataset"]["groups"]).head(3)

    class Bundle:
        pass

    bundle = Bundle()
    bundle.config, bundle.artifacts = config, art
    notes = report_text_html(bundle, splits, cases, {})
    assert len(notes) == len(cases) and all("<span" in n and "<img" not in n for n in notes)
    from core.analysis import build_report_cases

    report_cases = build_report_cases(cases, art, splits.x_test[art.test_index[cases["row"]]], None, None,
                                      modality="tabular")
    for case, note in zip(report_cases, notes):
        case["attr_true"] = np.zeros(splits.x_test.shape[1])
        case["text_html"] = note
    page = error_report_html(report_cases, title="t", run_name="r", method="integrated_gradients",
                             class_names=list(splits.class_names))
    assert notes[0] in page and "<img src=x" not in page


def split_data_for(config):
    from core.data import load_data, split_data

    return split_data(load_data(config.data), config.data)


def test_geometry_shows_each_note_on_hover(text_home, monkeypatch, open_page):
    import json

    from core.viz import text_hover

    assert text_hover(["<b>x</b> " + "word " * 100]) [0].count("<br>") >= 4
    assert "<b>" not in text_hover(["<b>x</b>"])[0]
    monkeypatch.setenv("TAILSCOPE_HOME", str(text_home["home"]))
    at = open_page("geometry", run_id=text_home["run"])
    _no_exceptions(at)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    hovers = [str(c) for trace in spec["data"] for point in trace.get("customdata") or [] for c in point]
    assert any("tired" in h or "fever" in h or "wheeze" in h for h in hovers), "the note is on the hover"
    assert not any("<img" in h for h in hovers)


def test_the_data_page_shows_text_statistics_and_offers_the_encoders(empty_home, open_page):
    at = open_page("data")
    at.selectbox(key="data.builtin").set_value("synthetic_notes").run()
    _no_exceptions(at)
    assert any(s.value == "Free text" for s in at.subheader)
    table = next(d.value for d in at.dataframe if "telling words" in d.value.columns)
    assert table["texts"].tolist()[0] == 600 and "wheeze" in table.set_index("class").loc["asthma", "telling words"]
    encoder = at.selectbox(key="data.text_encoder")
    assert encoder.options == ["Sentence meaning (MiniLM, offline)",
                               "Sentence meaning, fine-tuned (MiniLM; best on a GPU)", "Word counts (TF-IDF)"]
    encoder.set_value("minilm_tuned").run()
    _no_exceptions(at)
    assert any("Fitted on the training texts and their labels only" in c.value for c in at.caption)
    import torch

    no_gpu = [i.value for i in at.info if "no GPU" in i.value]
    assert bool(no_gpu) != torch.cuda.is_available(), "the processor's tuning time is told where there is no GPU"
    encoder.set_value("minilm").run()
    _no_exceptions(at)
    assert not [i.value for i in at.info if "no GPU" in i.value]
    at.button(key="data.save").click().run()
    from app import state

    assert at.session_state[state.DATA_CONFIG]["text_encoder"]["name"] == "minilm"


def test_suspected_label_issues_of_a_text_run_show_their_notes(text_home, monkeypatch, open_page):
    from core.analysis import read_label_issues
    from core.store import RunStore

    monkeypatch.setenv("TAILSCOPE_HOME", str(text_home["home"]))
    at = open_page("gallery", run_id=text_home["run"])
    for button in at.button:
        if "Find suspected label issues" in button.label:
            button.click().run()
    _no_exceptions(at)
    report = read_label_issues(RunStore(text_home["home"]), text_home["run"])
    assert report is not None and report.num_flagged > 0, "the overlapping notes give some suspects"
    cards = [i for i, m in enumerate(at.markdown) if re.match(r"\*\*.+ \(training row \d+\)\*\*", m.value)]
    assert cards
    note = at.markdown[cards[0] + 1].value  # the note, escaped, right under the card's heading
    assert any(w in note for w in ("fever", "wheeze", "neck", "tired", "seen", "today", "aches", "cough"))


def test_a_text_only_run_shows_no_empty_value_tables(tmp_path, monkeypatch, open_page):
    """Notes with no other column: the cards and their neighbours show the text, and no table
    of values that would only read "empty"."""
    from conftest import make_run

    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    run = make_run(tmp_path, {"data": {"source": "synthetic_notes", "params": {"most_common": 120}},
                              "model": {"name": "linear"}, "loss": {"name": "balanced_softmax"},
                              "train": {"epochs": 2, "nc_every": 0, "min_steps": 0}})
    at = open_page("gallery", run_id=run)
    _no_exceptions(at)
    assert at.get("html"), "the notes are shown"
    assert all(len(d.value) for d in at.dataframe), "no empty table of values"
    assert all(len(t.value) for t in at.table)

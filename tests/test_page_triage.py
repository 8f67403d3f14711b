"""Rare-class triage page and the class mix on Results, under AppTest."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shown_table

from core.analysis import metrics_at_prior, operating_point, softmax
from core.store import RunStore


def _no_exceptions(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _cards(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _scores(home, run_id, cls):
    art = RunStore(home).artifacts(run_id)
    return softmax(art.logits)[:, cls], np.asarray(art.labels) == cls


def test_empty_store_offers_a_demo(empty_home, open_page):
    at = open_page("triage")
    _no_exceptions(at)
    assert any("demo" in b.label.lower() for b in at.button)
    assert not at.metric


@pytest.mark.parametrize("run", ["image_run", "table_run"])
def test_renders_the_operating_point_of_the_rarest_class(stored_home, open_page, run):
    run_id = stored_home[run]
    at = open_page("triage", run_id=run_id)
    _no_exceptions(at)
    art = RunStore(stored_home["home"]).artifacts(run_id)
    cls = at.selectbox(key=f"triage.class.{run_id}").value
    assert cls == int(np.argsort(-art.class_counts, kind="stable")[-1]), "opens on the rarest class"
    assert {"Sensitivity", "Specificity", "PPV", "NPV"} <= set(_cards(at))
    assert {c.proto.id.rsplit("-", 1)[-1] for c in at.get("plotly_chart")} == {"triage.roc", "triage.pr"}
    table = shown_table(at.table[0])
    assert table.loc["total", "total"] == len(art.labels)
    assert any("Upload a file" in i.value for i in at.info), "the new-cases tab waits for a file"


def test_a_3_percent_prevalence_changes_ppv_and_not_sensitivity(stored_home, open_page):
    run_id = stored_home["table_run"]
    at = open_page("triage", run_id=run_id)
    cls = at.selectbox(key=f"triage.class.{run_id}").value
    scores, positive = _scores(stored_home["home"], run_id, cls)
    threshold = round(float(np.median(scores)), 3)  # some cases called, some not: PPV and NPV both defined
    at.slider(key=f"triage.threshold.{run_id}").set_value(threshold).run()
    before = _cards(at)
    at.number_input(key=f"triage.prevalence.{run_id}").set_value(3.0).run()
    _no_exceptions(at)
    after = _cards(at)
    assert after["Sensitivity"] == before["Sensitivity"] and after["Specificity"] == before["Specificity"]
    assert after["PPV"] != before["PPV"]
    expected = operating_point(scores, positive, threshold, prevalence=0.03)
    assert after["PPV"] == f"{expected['ppv']['value']:.1%}"
    assert any("3 % are" in c.value for c in at.caption), "the 1,000-case sentence uses the prevalence"


def test_the_threshold_slider_changes_the_two_by_two_table(stored_home, open_page):
    run_id = stored_home["table_run"]
    at = open_page("triage", run_id=run_id)
    cls = at.selectbox(key=f"triage.class.{run_id}").value
    scores, positive = _scores(stored_home["home"], run_id, cls)
    tables = {}
    for threshold in (0.05, 0.9):
        at.slider(key=f"triage.threshold.{run_id}").set_value(threshold).run()
        _no_exceptions(at)
        table = shown_table(at.table[0])
        called = scores >= threshold
        assert table.iloc[0, 0] == (called & positive).sum() and table.iloc[0, 1] == (called & ~positive).sum()
        assert table.iloc[1, 0] == (~called & positive).sum()
        tables[threshold] = table
    assert not tables[0.05].equals(tables[0.9])


def test_the_least_cost_threshold_can_be_used(stored_home, open_page):
    """At 50 % prevalence a miss costing 50 false alarms makes flagging everyone (cost 0.5 per
    case) cheaper than flagging nobody (25): the page must offer a threshold, the one a brute
    force over every score finds, and the button must move the slider there."""
    run_id = stored_home["table_run"]
    at = open_page("triage", run_id=run_id)
    cls = at.selectbox(key=f"triage.class.{run_id}").value
    scores, positive = _scores(stored_home["home"], run_id, cls)
    at.number_input(key=f"triage.prevalence.{run_id}").set_value(50.0).run()
    at.number_input(key=f"triage.cost.{run_id}").set_value(50.0).run()
    costs = {t: 0.5 * (1 - (scores[positive] >= t).mean()) * 50 + 0.5 * (scores[~positive] >= t).mean()
             for t in np.unique(scores)}
    least = min(costs.values())
    best = max(t for t, c in costs.items() if c <= least + 1e-9)  # ties: the highest threshold, fewest calls
    expected = np.floor(min(best, 1.0) * 1000) / 1000
    start = 0.25 if expected == 0.5 else 0.5
    at.slider(key=f"triage.threshold.{run_id}").set_value(start).run()
    button = at.button(key="triage.use_best")
    assert not button.disabled, "flagging nobody is dearer here: a threshold must be offered"
    suggested = next(m.value for m in at.markdown if "Least expected cost" in m.value)
    assert f"**{expected:.3f}**" in suggested
    button.click().run()
    _no_exceptions(at)
    moved = at.slider(key=f"triage.threshold.{run_id}").value
    assert moved == pytest.approx(expected) and moved != start


def test_saving_the_operating_point_writes_it_and_a_new_session_loads_it(copied_home, open_page):
    run_id = copied_home["table_run"]
    store = RunStore(copied_home["home"])
    at = open_page("triage", run_id=run_id)
    at.selectbox(key=f"triage.class.{run_id}").set_value(1).run()
    at.slider(key=f"triage.threshold.{run_id}").set_value(0.25).run()
    at.number_input(key=f"triage.prevalence.{run_id}").set_value(3.0).run()
    at.number_input(key=f"triage.cost.{run_id}").set_value(20.0).run()
    assert store.annotation(run_id, "operating_point") == {}
    at.button(key="triage.save").click().run()
    _no_exceptions(at)
    assert store.annotation(run_id, "operating_point") == {"class": 1, "threshold": 0.25, "prevalence": 0.03,
                                                            "cost_miss": 20.0}
    fresh = open_page("triage", run_id=run_id)
    _no_exceptions(fresh)
    assert fresh.selectbox(key=f"triage.class.{run_id}").value == 1
    assert fresh.slider(key=f"triage.threshold.{run_id}").value == pytest.approx(0.25)
    assert fresh.number_input(key=f"triage.prevalence.{run_id}").value == pytest.approx(3.0)
    assert fresh.number_input(key=f"triage.cost.{run_id}").value == pytest.approx(20.0)
    assert any("Saved with this run" in c.value and "differ" not in c.value for c in fresh.caption)


class _Upload:
    def __init__(self, name: str, data: bytes):
        self.name, self._data = name, data

    def getvalue(self) -> bytes:
        return self._data


def _with_upload(monkeypatch, name: str, data: bytes) -> None:
    import streamlit

    original = streamlit.file_uploader
    monkeypatch.setattr(streamlit, "file_uploader", lambda label, *a, key=None, **kw: _Upload(name, data)
                        if key == "triage.upload" else original(label, *a, key=key, **kw))


def test_new_cases_are_scored_with_their_estimated_mix(stored_home, open_page, monkeypatch):
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame.drop(columns="target").iloc[::4]
    _with_upload(monkeypatch, "clinic batch.csv", frame.to_csv(index=False).encode())
    at = open_page("triage", run_id=stored_home["table_run"])
    _no_exceptions(at)
    assert not at.error, [e.value for e in at.error]
    assert any(f"{len(frame):,} cases scored" in m.value for m in at.markdown)
    [mix] = [c for c in at.get("plotly_chart") if c.proto.id.endswith("triage.mix")]
    assert "the run's own data" in mix.proto.spec
    assert "new cases: EM on recalibrated probabilities" in mix.proto.spec and "new cases: BBSE" in mix.proto.spec
    [words] = [m.value for m in at.markdown if m.value.startswith("**Estimated mix**")]
    assert "(EM on recalibrated probabilities, 95% intervals)" in words and words.count("%") >= 2 * 3
    explained = " ".join(c.value for c in at.caption)
    assert "recalibrated on those labelled cases" in explained and "BBSE" in explained
    predicted = [d.value for d in at.dataframe if "predicted" in getattr(d.value, "columns", [])]
    assert len(predicted) == 2 and all(len(p) == len(frame) for p in predicted), "before and after re-adjusting"
    labels = [b.proto.label for b in at.get("download_button")]
    assert {"Predictions (CSV)", "Estimated class mix (CSV)"} <= set(labels)


def test_a_bad_upload_is_one_clear_error(stored_home, open_page, monkeypatch):
    _with_upload(monkeypatch, "wrong.csv", b"height,weight\n1,2\n3,4\n")
    at = open_page("triage", run_id=stored_home["table_run"])
    _no_exceptions(at)
    from conftest import shown

    assert len(at.error) == 1 and shown(at.error[0].value).startswith("wrong.csv: the run's model needs columns")
    assert not [c for c in at.get("plotly_chart") if c.proto.id.endswith("triage.mix")]


def test_results_at_a_balanced_mix_changes_accuracy_not_balanced_accuracy(stored_home, open_page):
    run_id = stored_home["table_run"]  # wine's test split is not balanced
    at = open_page("results", run_id=run_id)
    stored = RunStore(stored_home["home"]).metrics(run_id)
    tested = _cards(at)
    assert tested["Accuracy"] == f"{stored['accuracy']:.3f}"
    at.radio(key="results.prior.kind").set_value("balanced").run()
    _no_exceptions(at)
    balanced = _cards(at)
    art = RunStore(stored_home["home"]).artifacts(run_id)
    expected = metrics_at_prior(art.logits, art.labels, "balanced")
    assert balanced["Accuracy"] == f"{expected['accuracy']:.3f}" != tested["Accuracy"]
    assert balanced["Balanced accuracy"] == tested["Balanced accuracy"]
    assert at.query_params["prior"] == "balanced", "the address keeps the mix"
    assert any("What does not" in i.value for i in at.info)
    at.toggle(key="results.prior.adapt").set_value(True).run()
    _no_exceptions(at)
    assert at.query_params["adapt"] == "1"


def test_a_link_with_a_mix_opens_at_that_mix_and_other_pages_keep_it(stored_home):
    from conftest import open_at_address

    at = open_at_address("results", run=stored_home["table_run"], prior="balanced")
    _no_exceptions(at)
    assert at.radio(key="results.prior.kind").value == "balanced"
    at.switch_page("../pages/calibration.py")
    at.run()
    _no_exceptions(at)
    assert at.radio(key="calibration.prior.kind").value == "balanced"
    at.radio(key="calibration.prior.kind").set_value("test").run()
    at.switch_page("../pages/posthoc.py")
    at.run()
    assert at.radio(key="posthoc.prior.kind").value == "test"
    assert "prior" not in at.query_params


def test_an_entered_mix_that_cannot_be_used_is_said_so(stored_home, open_page):
    run_id = stored_home["table_run"]
    at = open_page("results", run_id=run_id)
    at.radio(key="results.prior.kind").set_value("custom").run()
    for j in range(3):
        at.number_input(key=f"results.prior.share.{run_id}.{j}").set_value(0.0)
    at.run()
    _no_exceptions(at)
    assert any("cannot be used" in w.value for w in at.warning)
    assert _cards(at)["Accuracy"] == f"{RunStore(stored_home['home']).metrics(run_id)['accuracy']:.3f}"


def test_the_mix_in_words_names_the_method_and_says_when_a_class_seems_absent():
    import pandas as pd

    from app.triage_view import mix_in_words
    from conftest import shown
    from core.predict import NewCases

    prior = {"method": "bbse", "prior": np.array([0.7, 0.3, 0.0]), "low": np.array([0.6, 0.2, 0.0]),
             "high": np.array([0.8, 0.4, 0.004]), "absent": np.array([False, False, True]),
             "unseen": np.zeros(3, dtype=bool), "confidence": 0.9,
             "estimates": {"em": {}, "bbse": {}}}
    frame = pd.DataFrame({"case": range(400)})
    result = NewCases(frame=frame, probs=np.zeros((400, 3)), prior=prior, adjusted_frame=frame, warnings=[],
                      class_names=("healthy", "sepsis", "<b>dissection</b>"))
    words = shown(mix_in_words(result))
    assert words.startswith("**Estimated mix** (BBSE, from the model's mistakes, 90% intervals)")
    assert "**healthy** 70.0% (60.0% to 80.0%)" in words and "**sepsis** 30.0% (20.0% to 40.0%)" in words
    assert ("**<b>dissection</b>**: no sign of it in this batch (estimate below one case in 400; interval up to "
            "0.4%)") in words

"""The Playground page under AppTest: preview, step-through training, side by side, post-hoc
tau, the shareable address (values restored, hidden controls absent) and captions that
follow the numbers."""

from __future__ import annotations

import json
import re

import pytest
from conftest import MAIN

TRAINING = "playground.training"


def _no_exceptions(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _titles(at) -> list[str]:
    titles = []
    for chart in at.get("plotly_chart"):
        title = json.loads(chart.proto.spec).get("layout", {}).get("title", {})
        titles.append(title.get("text", "") if isinstance(title, dict) else str(title))
    return [t.replace("<br>", " ") for t in titles]  # as read: a long title is broken into lines to fit


def _tail_recall(at, label: str) -> float:
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        if spec["layout"].get("title", {}).get("text", "").replace("<br>", " ") == f"Recall per class · {label}":
            return next(t["y"][0] for t in spec["data"] if t["name"].endswith("(tail)"))
    raise AssertionError(f"no recall bars for {label}")


def _steps_done(at) -> list[int]:
    return [t.step for t in at.session_state[TRAINING]["trainers"]]


def _open_link(query: dict[str, str], timeout: float = 120):
    """The Playground opened from a shared link."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(MAIN), default_timeout=timeout)
    at.query_params.update(query)
    at.run()
    at.switch_page("../pages/playground.py")
    at.run()
    return at


def test_page_previews_the_data_before_training(empty_home, open_page):
    at = open_page("playground")
    _no_exceptions(at)
    assert _titles(at) == ["The training points"]
    assert {b.key for b in at.button} >= {"playground.play", "playground.pause", "playground.step", "playground.reset"}
    at.slider(key="playground.classes").set_value(4)
    at.slider(key="playground.ratio").set_value(20)
    at.slider(key="playground.noise").set_value(0.3)
    at.run()
    _no_exceptions(at)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert len(spec["data"]) == 4, "one trace of points per class"
    assert TRAINING not in at.session_state
    assert at.query_params["classes"] == ["4"] or at.query_params["classes"] == "4", "the address follows"


def test_shape_sets_its_noise_and_a_preset_sets_the_data(empty_home, open_page):
    from core.data import TOY_NOISE, TOY_PRESETS

    at = open_page("playground")
    at.segmented_control(key="playground.shape").set_value("spirals").run()
    assert at.slider(key="playground.noise").value == TOY_NOISE["spirals"]
    name = "Moons with a rare class"
    at.selectbox(key="playground.preset").set_value(name).run()
    _no_exceptions(at)
    preset = TOY_PRESETS[name]
    assert at.segmented_control(key="playground.shape").value == preset["shape"]
    assert at.slider(key="playground.classes").value == preset["num_classes"]
    assert at.slider(key="playground.ratio").value == preset["ratio"]


def test_step_pause_and_play(empty_home, open_page):
    at = open_page("playground")
    at.select_slider(key="playground.steps").set_value(100)
    at.segmented_control(key="playground.step_by").set_value(1)
    at.run()
    at.button(key="playground.step").click().run()
    _no_exceptions(at)
    assert _steps_done(at) == [1, 1]
    assert at.metric[0].value == "1 / 100"
    assert any(t.endswith("step 1/100") for t in _titles(at))
    at.segmented_control(key="playground.step_by").set_value(10).run()
    at.button(key="playground.step").click().run()
    assert _steps_done(at) == [11, 11], "a step goes on from where training stopped"
    at.button(key="playground.pause").click().run()
    assert _steps_done(at) == [11, 11], "pause keeps the place"
    at.button(key="playground.play").click().run()
    _no_exceptions(at)
    assert _steps_done(at) == [100, 100] and at.metric[0].value == "100 / 100"
    at.button(key="playground.reset").click().run()
    assert TRAINING not in at.session_state and _titles(at) == ["The training points"]


def test_train_side_by_side_then_move_tau(empty_home, open_page):
    at = open_page("playground")
    at.select_slider(key="playground.steps").set_value(100).run()
    at.button(key="playground.play").click().run()
    _no_exceptions(at)
    titles = _titles(at)
    assert sum(t.startswith("Cross-entropy (plain) ·") for t in titles) == 1
    assert sum(t.startswith("Logit-adjusted loss ·") for t in titles) == 1
    assert sum(t.startswith("Recall per class") for t in titles) == 2 and "Accuracy vs balanced accuracy" in titles
    trainers = at.session_state[TRAINING]["trainers"]
    before = _tail_recall(at, "Cross-entropy (plain)")
    at.slider(key="playground.tau").set_value(2.0).run()
    _no_exceptions(at)
    assert at.session_state[TRAINING]["trainers"] is trainers and _steps_done(at) == [100, 100], "tau does not retrain"
    assert any(t.startswith("Cross-entropy (plain) ·") and "tau 2" in t for t in _titles(at))
    assert _tail_recall(at, "Cross-entropy (plain)") > before, "tau moves the boundary toward the rare class"
    assert any("rarest class, class 2" in c.value for c in at.caption)


def _tail_sentence(at) -> str:
    return next(c.value for c in at.caption if "of the rarest class" in c.value and "against" in c.value
                or c.value.startswith("Both settings"))


@pytest.mark.parametrize("order", [("ce", "logit_adjusted"), ("logit_adjusted", "ce")])
def test_the_caption_follows_the_numbers(empty_home, order):
    """Whichever side finds more of the rare moon, the caption says so, with its numbers;
    with the fix on the left the right side does worse, and the caption says that."""
    at = _open_link({"shape": "moons", "classes": "2", "ratio": "50", "noise": "0.15", "steps": "200",
                     "loss0": order[0], "loss1": order[1]})
    at.button(key="playground.play").click().run()
    _no_exceptions(at)
    from core.methods import LOSSES

    left, right = (LOSSES.info(n).label for n in order)
    a, b = _tail_recall(at, left), _tail_recall(at, right)
    sentence = _tail_sentence(at)
    assert f"{b:.0%} against {a:.0%}" in sentence
    if round(100 * b) > round(100 * a):
        assert "finds more" in sentence
    else:
        assert "fewer" in sentence and "did worse" in sentence
    assert not any(re.search(r"push(es)? it back|the fix(es)? help", c.value) for c in at.caption), "no fixed praise"


def test_same_setting_twice_is_called_a_tie(empty_home):
    at = _open_link({"steps": "100", "loss0": "ce", "loss1": "ce"})
    at.button(key="playground.play").click().run()
    assert _tail_sentence(at).startswith("Both settings find the same share")


def test_a_shared_link_restores_the_setup_and_hides_controls(empty_home):
    at = _open_link({"shape": "spirals", "noise": "0.1", "classes": "4", "ratio": "20", "seed": "7", "steps": "100",
                     "loss1": "focal", "lossp1": '{"gamma":3.0}', "tau": "0.5", "hide": "ratio,loss"})
    _no_exceptions(at)
    assert at.segmented_control(key="playground.shape").value == "spirals"
    assert at.slider(key="playground.noise").value == 0.1 and at.slider(key="playground.classes").value == 4
    assert at.number_input(key="playground.seed").value == 7 and at.slider(key="playground.tau").value == 0.5
    keys = {w.key for w in (*at.slider, *at.selectbox)}
    assert "playground.ratio" not in keys and "playground.loss0" not in keys and "playground.loss1" not in keys
    assert "playground.noise" in keys and "playground.profile" in keys
    assert any("hides some controls" in i.value for i in at.info)
    at.button(key="playground.step").click().run()
    _no_exceptions(at)
    trainers = at.session_state[TRAINING]["trainers"]
    assert trainers[0].data.class_counts.tolist()[0] / trainers[0].data.class_counts.tolist()[-1] == pytest.approx(
        20, rel=0.1), "the hidden ratio still applies"
    assert any(t.startswith("Focal loss · step 10/100") for t in _titles(at))
    assert at.session_state["playground.lossp1.focal.gamma"] == 3.0
    # the address now holds the whole setup: opening it elsewhere gives the same
    assert at.query_params["lossp1"] in ('{"gamma":3.0}', ['{"gamma":3.0}'])
    at.multiselect(key="playground.share_hide").set_value(["tau", "seed"]).run()
    link = at.code[0].value
    assert "shape=spirals" in link and "lossp1=" in link and "hide=seed,tau" in link, link
    at.button(key="playground.show_all").click().run()
    assert "playground.ratio" in {w.key for w in at.slider} and "hide" not in at.query_params


def test_a_broken_link_falls_back_and_says_so(empty_home):
    at = _open_link({"classes": "99", "shape": "cubes", "noise": "0.2"})
    _no_exceptions(at)
    assert at.slider(key="playground.classes").value == 3 and at.slider(key="playground.noise").value == 0.2
    assert any("classes" in w.value and "shape" in w.value for w in at.warning)


def test_link_encoding_round_trips():
    from app import playground_view as pv

    values = {**pv.DEFAULTS, "shape": "moons", "noise": 0.15, "compare": False, "tau": 1.2, "steps": 600}
    params = {"lossp0": {"gamma": 2.5}, "samplerp0": {}}
    query = pv.encode(values, params)
    assert all(isinstance(v, str) for v in query.values()) and "samplerp0" not in query
    assert pv.decode(query) == (values, {"lossp0": {"gamma": 2.5}}, [])
    link = pv.share_query(values, params, ["tau", "loss"])
    assert "hide=loss,tau" in link and "shape=moons" in link


def test_page_renders_beside_stored_runs(stored_home, open_page):
    at = open_page("playground")
    _no_exceptions(at)
    at.select_slider(key="playground.steps").set_value(100).run()
    at.button(key="playground.play").click().run()
    _no_exceptions(at)
    assert len(at.get("plotly_chart")) == 5


def test_classroom_mode_from_the_address_and_the_sidebar(empty_home):
    """?classroom=1 turns it on (larger type from one style sheet), it stays on
    across a page switch, and the sidebar switch turns it off and out of the address."""
    from app.classroom import CLASSROOM, CLASSROOM_CSS

    at = _open_link({"classroom": "1"})
    _no_exceptions(at)
    assert at.session_state[CLASSROOM] is True and at.query_params["classroom"] in ("1", ["1"])
    assert any(CLASSROOM_CSS.strip() in h.proto.body for h in at.get("html"))
    assert at.sidebar.toggle[0].label == "Classroom mode" and at.sidebar.toggle[0].value is True
    at.switch_page("../pages/home.py").run()
    del at.query_params["classroom"]  # a page switch in the browser clears the address
    at.run()
    assert at.session_state[CLASSROOM] is True and at.query_params["classroom"] in ("1", ["1"])
    at.sidebar.toggle[0].set_value(False).run()
    assert at.session_state[CLASSROOM] is False and "classroom" not in at.query_params
    assert not any(CLASSROOM_CSS.strip() in h.proto.body for h in at.get("html")), "only the always-on no-cut rules"


def test_the_share_link_opens_the_playground_at_the_senders_address_and_keeps_classroom_mode():
    """The link names the page and the host the person's browser uses (a teacher on
    http://school-server:8501 shares that, not the server's 127.0.0.1), and a classroom
    session's link opens in classroom mode."""
    from urllib.parse import parse_qs, urlparse

    from app import playground_view as pv

    link = pv.share_link("http://school-server:8501/", "shape=spirals&tau=1", classroom=True)
    parts = urlparse(link)
    assert (parts.scheme, parts.netloc, parts.path) == ("http", "school-server:8501", "/playground")
    assert parse_qs(parts.query) == {"shape": ["spirals"], "tau": ["1"], "classroom": ["1"]}
    assert "classroom" not in pv.share_link("http://h:1", "shape=moons", classroom=False)

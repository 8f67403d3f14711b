"""The Playground page under AppTest: sliders, the Train button, side-by-side and post-hoc tau."""

from __future__ import annotations

import json

RESULT = "playground.result"


def _no_exceptions(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _titles(at) -> list[str]:
    titles = []
    for chart in at.get("plotly_chart"):
        title = json.loads(chart.proto.spec).get("layout", {}).get("title", {})
        titles.append(title.get("text", "") if isinstance(title, dict) else str(title))
    return titles


def _tail_recall(at, label: str) -> float:
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        if spec["layout"].get("title", {}).get("text") == f"Recall per class · {label}":
            return next(t["y"][0] for t in spec["data"] if t["name"] == "tail")
    raise AssertionError(f"no recall bars for {label}")


def _fast(at) -> None:
    at.select_slider(key="playground.steps").set_value(100)


def test_page_previews_the_data_before_training(empty_home, open_page):
    at = open_page("playground")
    _no_exceptions(at)
    assert _titles(at) == ["The training points"]
    assert any(b.label.endswith("Train") for b in at.button)
    # the data sliders redraw the preview at once
    at.slider(key="playground.classes").set_value(4)
    at.slider(key="playground.ratio").set_value(20)
    at.slider(key="playground.noise").set_value(0.3)
    at.run()
    _no_exceptions(at)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert len(spec["data"]) == 4, "one trace of points per class"
    assert RESULT not in at.session_state


def test_train_side_by_side_then_move_tau(empty_home, open_page):
    at = open_page("playground")
    _fast(at)
    at.button(key="playground.train").click().run()
    _no_exceptions(at)
    titles = _titles(at)
    assert sum(t.startswith("ce ·") for t in titles) == 1 and sum(t.startswith("logit_adjusted ·") for t in titles) == 1
    assert sum(t.startswith("Recall per class") for t in titles) == 2
    assert "Accuracy vs balanced accuracy" in titles
    assert len(at.metric) == 2 and all(m.value.endswith(" s") for m in at.metric)
    trained = at.session_state[RESULT]
    before = _tail_recall(at, "ce")

    at.slider(key="playground.tau").set_value(2.0).run()
    _no_exceptions(at)
    assert at.session_state[RESULT]["total_s"] == trained["total_s"], "tau does not retrain"
    assert any(t.startswith("ce ·") and "tau 2" in t for t in _titles(at))
    assert _tail_recall(at, "ce") > before, "tau moves the boundary toward the rare class"
    assert any("rarest class, class 2" in c.value for c in at.caption)


def test_single_setting_with_another_shape_and_sampler(empty_home, open_page):
    at = open_page("playground")
    _fast(at)
    at.toggle(key="playground.compare").set_value(False)
    at.run()
    at.selectbox(key="playground.loss0").set_value("focal")
    at.selectbox(key="playground.sampler0").set_value("class_balanced")
    at.slider(key="playground.classes").set_value(3)
    at.slider(key="playground.points").set_value(200)
    at.selectbox(key="playground.profile").set_value("step")
    at.run()
    at.button(key="playground.train").click().run()
    _no_exceptions(at)
    titles = _titles(at)
    assert any(t.startswith("focal + class_balanced ·") for t in titles)
    assert sum(t.startswith("Recall per class") for t in titles) == 1
    # changing the data makes the stored result stale: back to the preview
    at.slider(key="playground.noise").set_value(0.2).run()
    _no_exceptions(at)
    assert _titles(at) == ["The training points"]


def test_page_renders_beside_stored_runs(stored_home, open_page):
    at = open_page("playground")
    _no_exceptions(at)
    _fast(at)
    at.button(key="playground.train").click().run()
    _no_exceptions(at)
    assert len(at.get("plotly_chart")) == 5

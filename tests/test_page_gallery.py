"""The Error gallery page: empty store, the stored image and table runs, filters, methods."""

from __future__ import annotations

import json
import re

from core.analysis._gallery import error_cases


def _no_exceptions(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _matches(at) -> int:
    """The page's own count of matching samples."""
    text = next(m.value for m in at.markdown if "test samples match" in m.value)
    return int(re.search(r"\*\*(\d+)\*\*", text).group(1))


def _cards(at) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("**Sample ")]


def _figures(at) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def _stored(stored_home, run: str):
    from core.store import RunStore

    store = RunStore(stored_home["home"])
    run_id = stored_home[run]
    return run_id, store.artifacts(run_id), store.metrics(run_id)["dataset"]


def test_gallery_on_an_empty_store_offers_a_demo(empty_home, open_page):
    at = open_page("gallery")
    _no_exceptions(at)
    assert any("demo" in b.label.lower() for b in at.button)


def test_image_run_opens_on_confident_tail_errors(stored_home, open_page):
    run_id, art, dataset = _stored(stored_home, "image_run")
    at = open_page("gallery", run_id=run_id)
    _no_exceptions(at)
    groups = dataset["groups"]
    tail = [k for k, g in enumerate(groups) if g == "tail"]
    assert sorted(at.multiselect(key=f"gallery.true.{run_id}").value) == tail
    assert at.button_group(key=f"gallery.correct.{run_id}").value == "wrong"
    expected = error_cases(art, groups, true_classes=tail)
    assert _matches(at) == len(expected)
    cards = _cards(at)
    assert len(cards) == min(8, len(expected))
    assert cards[0].startswith(f"**Sample {expected['sample_id'].iloc[0]}** ")  # most confident first
    assert len(at.get("plotly_chart")) == len(cards)  # one true-vs-predicted pair figure per card
    assert len(at.get("image")) == len(cards)  # the input itself, enlarged
    assert "layer_grad_cam" in at.selectbox(key=f"gallery.method.{run_id}").options
    assert "feature_ablation" not in at.selectbox(key=f"gallery.method.{run_id}").options
    assert at.get("download_button")[0].label.startswith(f"⬇️ Download these {len(cards)} cases")
    assert any(b.label.startswith("Show me ") for b in at.button)


def test_image_filters_and_method_change_the_cases(stored_home, open_page):
    run_id, art, dataset = _stored(stored_home, "image_run")
    groups = dataset["groups"]
    at = open_page("gallery", run_id=run_id)

    at.multiselect(key=f"gallery.true.{run_id}").set_value([0, 9])
    at.button_group(key=f"gallery.correct.{run_id}").set_value("all")
    at.run()
    _no_exceptions(at)
    assert _matches(at) == len(error_cases(art, groups, true_classes=[0, 9], correctness="all"))

    at.slider(key=f"gallery.conf.{run_id}").set_value((0.0, 0.3))
    at.run()
    _no_exceptions(at)
    narrow = error_cases(art, groups, true_classes=[0, 9], correctness="all", confidence_range=(0.0, 0.3))
    if narrow.empty:
        assert any("No test samples match" in i.value for i in at.info)
    else:
        assert _matches(at) == len(narrow)

    at.slider(key=f"gallery.conf.{run_id}").set_value((0.0, 1.0))
    at.button_group(key=f"gallery.correct.{run_id}").set_value("right")
    at.selectbox(key=f"gallery.method.{run_id}").set_value("saliency")
    at.run()
    _no_exceptions(at)
    right = error_cases(art, groups, true_classes=[0, 9], correctness="right")
    assert _matches(at) == len(right)
    assert all("✅ right" in c for c in _cards(at))
    assert any("gradient" in c.value for c in at.caption)  # the chosen method's description


def test_confused_pair_button_sets_the_filters(stored_home, open_page):
    from core.analysis._gallery import most_confused_pairs

    run_id, art, dataset = _stored(stored_home, "image_run")
    at = open_page("gallery", run_id=run_id)
    top = most_confused_pairs(art, top=4, groups=dataset["groups"]).iloc[0]
    next(b for b in at.button if b.key == "gallery.pair.0").click().run()
    _no_exceptions(at)
    assert at.multiselect(key=f"gallery.true.{run_id}").value == [top.true]
    assert at.multiselect(key=f"gallery.pred.{run_id}").value == [top.pred]
    assert _matches(at) == top["count"]


def test_explaining_towards_a_chosen_class(stored_home, open_page):
    run_id, _, dataset = _stored(stored_home, "image_run")
    groups = dataset["groups"][3]
    at = open_page("gallery", run_id=run_id)
    at.radio(key="gallery.towards").set_value("chosen").run()
    at.selectbox(key=f"gallery.chosen.{run_id}").set_value(3).run()
    _no_exceptions(at)
    titles = [fig["layout"]["title"]["text"] for fig in _figures(at)]
    assert titles and all(t == f"towards 3 ({groups})" for t in titles)


def test_table_run_shows_values_bars_and_class_importance(stored_home, open_page):
    run_id, art, dataset = _stored(stored_home, "table_run")
    at = open_page("gallery", run_id=run_id)
    _no_exceptions(at)
    at.button_group(key=f"gallery.correct.{run_id}").set_value("all")
    at.multiselect(key=f"gallery.true.{run_id}").set_value([])
    at.selectbox(key=f"gallery.method.{run_id}").set_value("feature_ablation")
    at.run()
    _no_exceptions(at)
    assert _matches(at) == len(art.labels)
    cards = _cards(at)
    assert len(at.dataframe) == len(cards)  # each card lists the row of input values
    assert list(at.dataframe[0].value["feature"]) == dataset["feature_names"]
    types = [fig["data"][0]["type"] for fig in _figures(at)]
    bars, heatmaps = types.count("bar"), types.count("heatmap")
    wrong = sum("❌" in c for c in cards)
    assert bars == len(cards) + wrong  # true class always, predicted class for errors
    sides = {g == "tail" for g in dataset["groups"]}
    assert heatmaps == len(sides)  # common and rare classes side by side
    assert "layer_grad_cam" not in at.selectbox(key=f"gallery.method.{run_id}").options


def test_report_of_every_matching_case(stored_home, open_page):
    run_id, art, dataset = _stored(stored_home, "image_run")
    at = open_page("gallery", run_id=run_id)
    at.multiselect(key=f"gallery.true.{run_id}").set_value(list(range(10)))
    at.button_group(key=f"gallery.correct.{run_id}").set_value("all")
    at.run()
    matches = _matches(at)
    assert matches > 8, "more matches than one page holds"
    at.toggle(key="gallery.report_all").set_value(True).run()
    _no_exceptions(at)
    [download] = [d for d in at.get("download_button") if d.proto.label.startswith("⬇️ Download these")]
    assert download.proto.label.startswith(f"⬇️ Download these {min(matches, 64)} cases")

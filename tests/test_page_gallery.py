"""The Error gallery page: empty store, the stored image and table runs, filters, methods."""

from __future__ import annotations

import json
import re

from core.analysis import nearest_training_cases, read_reviews
from core.analysis._gallery import error_cases
from conftest import shown, shown_table


def _no_exceptions(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _matches(at) -> int:
    """The page's own count of matching samples."""
    text = next(m.value for m in at.markdown if "test samples match" in m.value)
    return int(re.search(r"\*\*(\d+)\*\*", text).group(1))


def _cards(at) -> list[str]:
    """Each card's heading: the case as a person finds it (a built-in's "row 14"), then right or wrong."""
    return [shown(m.value) for m in at.markdown if re.match(r"\*\*[^*]+\*\* · (✅ right|❌ wrong)", shown(m.value))]


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
    assert len(cards) == min(4, len(expected))  # four cases to a page unless asked for more
    assert cards[0].startswith(f"**{expected['case'].iloc[0]}** ")  # most confident first
    assert expected["case"].iloc[0] == art.case_name(expected["row"].iloc[0]) and art.id_name == "row"
    assert len(at.get("plotly_chart")) == len(cards)  # one true-vs-predicted pair figure per card
    # per card: the input itself, enlarged, and the nearest training pictures of its true and predicted class
    assert len(at.get("image")) == 3 * len(cards)
    first = expected.iloc[0]
    near = nearest_training_cases(art, [first.row], k=3)
    captions = [[img.caption for img in el.proto.imgs] for el in at.get("image")[1:3]]
    for side, words in zip(("true", "pred"), captions):
        distances = near[near.side == side]["distance"]
        assert [re.sub(r"^row \d+, ", "", w) for w in words] == [f"distance {d:.2f}" for d in distances]
        assert all(re.match(r"row \d+, ", w) for w in words), "each training picture named by its row"
    assert any(m.value.startswith(f"**Its true class: {first.true} ") for m in at.markdown)
    assert f"Confidence in its answer: **{first.confidence:.0%}**" in cards[0]
    assert "Grad-CAM" in at.selectbox(key=f"gallery.method.{run_id}").options
    assert "Feature ablation" not in at.selectbox(key=f"gallery.method.{run_id}").options
    labels = [d.proto.label for d in at.get("download_button")]
    assert any(label.startswith(f"⬇️ Download these {len(cards)} cases") for label in labels)
    assert "⬇️ Download the 0 case reviews as CSV" in labels
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
    wrong = sum("❌" in c for c in cards)
    # each card lists its row of input values, and beside it its nearest training rows of the
    # true class (and of the predicted class for errors), in the file's units
    # (a few features: wrapped tables, every column in view in the card's narrow column)
    tables = [shown_table(t) for t in at.table]
    own = [t for t in tables if "this case" not in t.columns]
    near = [t for t in tables if "this case" in t.columns]
    assert len(own) == len(cards) and len(near) == len(cards) + wrong and not at.dataframe
    assert list(own[0].index) == dataset["feature_names"] and list(own[0].columns) == ["value", "standardised"]
    beside = near[0]
    assert beside.index.name == "feature" and list(beside.index) == dataset["feature_names"]
    assert beside.columns[0] == "this case" and re.match(r"row \d+, distance ", beside.columns[1])
    assert beside["this case"].tolist() == own[0]["value"].tolist()
    types = [fig["data"][0]["type"] for fig in _figures(at)]
    assert types.count("bar") == len(cards) + wrong  # true class always, predicted class for errors
    assert types.count("heatmap") == 0  # the per-class importance waits until it is opened
    at.session_state[f"gallery.fig.{run_id}.importance_open"] = True  # what opening its expander does
    at.run()
    _no_exceptions(at)
    types = [fig["data"][0]["type"] for fig in _figures(at)]
    sides = {g == "tail" for g in dataset["groups"]}
    assert types.count("heatmap") == len(sides)  # common and rare classes side by side
    assert "Grad-CAM" not in at.selectbox(key=f"gallery.method.{run_id}").options


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


def test_marking_a_case_saves_it_with_the_run(copied_home, open_page):
    from core.store import RunStore

    store = RunStore(copied_home["home"])
    run_id = copied_home["image_run"]
    at = open_page("gallery", run_id=run_id)
    first = _cards(at)[0]
    art = store.artifacts(run_id)
    cases = error_cases(art, store.metrics(run_id)["dataset"]["groups"], correctness="all")
    sample = int(cases.loc[cases["case"] == re.match(r"\*\*([^*]+)\*\*", first).group(1), "sample_id"].iloc[0])
    key = f"gallery.review.{run_id}.{sample}"
    assert at.radio(key=f"{key}.mark").value is None  # nothing chosen before the reviewer does

    at.button(key=f"{key}.save").click().run()  # saving with no verdict is refused, nothing is written
    _no_exceptions(at)
    assert any("Choose a verdict" in w.value for w in at.warning)
    assert read_reviews(store, run_id) == {}

    note = "Looks like a 1 written <b>carelessly</b> :red[see scan]"
    at.radio(key=f"{key}.mark").set_value("label looks wrong")
    at.text_area(key=f"{key}.note").input(note)
    at.button(key=f"{key}.save").click().run()
    _no_exceptions(at)
    saved = read_reviews(store, run_id)
    assert list(saved) == [sample]
    assert saved[sample]["mark"] == "label looks wrong" and saved[sample]["note"] == note
    assert any("Saved: label looks wrong" in s.value for s in at.success)
    reviewed = [m.value for m in at.markdown if m.value.startswith("🏷️ Reviewed: **label looks wrong**")]
    assert len(reviewed) == 1 and "\\<b\\>" in reviewed[0] and ":red[" not in reviewed[0]
    [csv] = [d for d in at.get("download_button") if d.proto.label.endswith("as CSV")]
    assert csv.proto.label == "⬇️ Download the 1 case reviews as CSV" and not csv.proto.disabled
    table = next(d.value for d in at.dataframe if "mark" in d.value.columns)
    assert table[["test_row", "case", "mark", "note"]].values.tolist() == [
        [sample, art.case_name(list(art.test_index).index(sample)), "label looks wrong", note]]

    at = open_page("gallery", run_id=run_id)  # a new session finds the verdict where it was left
    assert at.radio(key=f"{key}.mark").value == "label looks wrong"
    assert at.text_area(key=f"{key}.note").value == note
    at.button(key=f"{key}.remove").click().run()
    _no_exceptions(at)
    assert read_reviews(store, run_id) == {}


def test_filters_that_match_nothing_fall_back_to_all_errors(stored_home, open_page):
    run_id, art, dataset = _stored(stored_home, "image_run")
    at = open_page("gallery", run_id=run_id)
    at.multiselect(key=f"gallery.true.{run_id}").set_value([0])
    at.multiselect(key=f"gallery.pred.{run_id}").set_value([0])  # a sample of class 0 called 0 is never wrong
    at.run()
    _no_exceptions(at)
    errors = error_cases(art, dataset["groups"])
    assert len(errors) > 0
    assert any(f"all **{len(errors)}** mistakes of this run are shown instead" in i.value for i in at.info)
    assert _matches(at) == len(errors)
    assert _cards(at)[0].startswith(f"**{errors['case'].iloc[0]}** ")


def test_confused_pairs_involve_a_tail_class(stored_home, open_page):
    run_id, art, dataset = _stored(stored_home, "image_run")
    groups = dataset["groups"]
    at = open_page("gallery", run_id=run_id)
    labels = [b.label for b in at.button if b.label.startswith("Show me ")]
    assert labels, "the run confuses some pair involving a tail class"
    for label in labels:
        true_group, pred_group = re.match(r"Show me (\w+) class .* predicted as (\w+) class ", label).groups()
        assert "tail" in (true_group, pred_group), label
    # the most frequent confusion of all, if it involves no tail class, is not offered
    from core.analysis._gallery import most_confused_pairs

    every = most_confused_pairs(art, top=100, rare_only=False, groups=groups)
    offered = {(int(t), int(p)) for t, p in most_confused_pairs(art, top=4, groups=groups)[["true", "pred"]].values}
    for pair in every.itertuples():
        if "tail" not in (pair.true_group, pair.pred_group):
            assert (pair.true, pair.pred) not in offered

"""Robustness page under AppTest: an empty store, a picture run and a table run, two runs side by side."""

from __future__ import annotations

import pytest


def _no_exceptions(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def test_the_page_explains_what_to_do_on_an_empty_store(empty_home, open_page):
    at = open_page("robustness")
    _no_exceptions(at)
    assert any("demo" in b.label.lower() for b in at.button)
    assert not at.metric


@pytest.mark.parametrize("run", ["image_run", "table_run"])
def test_the_page_shows_robust_accuracy_per_group_class_and_cases(stored_home, open_page, run):
    at = open_page("robustness", run_id=stored_home[run])
    _no_exceptions(at)
    labels = {m.label for m in at.metric}
    assert any(label.startswith("Balanced accuracy at ε") for label in labels)
    assert any("Gap head − tail" in label for label in labels) or any("Tail" in label for label in labels)
    [table] = at.dataframe[:1]
    assert "epsilon 0 (clean)" in table.value.columns and len(table.value) > 1
    assert len(at.get("plotly_chart")) >= 3  # curve, classes against counts, gap
    assert any("Test case" in m.value for m in at.markdown)
    if run == "image_run":
        captions = [img.caption for el in at.get("image") for img in el.proto.imgs]
        assert any(c.startswith("original:") for c in captions) and any(c.startswith("attacked:") for c in captions)


def test_two_runs_side_by_side_get_a_paired_verdict(stored_home, open_page):
    from core.store import RunStore

    at = open_page("robustness", run_id=stored_home["image_run"])
    at.multiselect(key="robustness.eps").set_value([0.03]).run()
    _no_exceptions(at)
    other = next(r for r in RunStore(stored_home["home"]).list_runs("done") if r.id == stored_home["table_run"])
    at.selectbox(key="robustness.other").set_value(other).run()
    _no_exceptions(at)
    assert any("cannot be compared" in w.value for w in at.warning), "a table run and a picture run differ"

"""What a person saves with a run (operating point, case reviews, label issues) is checked on
every read: a damaged file is named with its path and what to do, on the page, the CLI and
the report, and never blocks the run's other pages."""

from __future__ import annotations

import json

import pytest

from conftest import shown
from core.store import AnnotationDamaged, RunFileDamaged, RunStore

ISSUE_POINT = {"class": 999, "threshold": "NaN", "prevalence": -5}  # the operating point of the issue
NOT_TEXT = bytes(range(128, 256)) * 4  # a reviews.json of non-text bytes


def _write(home, run_id: str, name: str, content) -> None:
    path = home / "runs" / run_id / f"{name}.json"
    path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())


def _no_exceptions(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


@pytest.mark.parametrize("name, content, reason", [
    ("operating_point", ISSUE_POINT, "'class' is class 999, and the run has 3 classes (0 to 2)"),
    ("operating_point", {"class": 1, "threshold": 1.5}, "'threshold' is 1.5, not a number from 0 to 1"),
    ("operating_point", {"class": 1, "threshold": 0.5, "prevalence": -5}, "'prevalence' is -5"),
    ("operating_point", {"class": True, "threshold": 0.5}, "'class' is True, not a class number"),
    ("operating_point", {"class": 1, "threshold": 0.5, "colour": "red"}, "unknown field 'colour'"),
    ("operating_point", b'{"class": 1, "threshold": NaN}', "'threshold' is nan"),
    ("reviews", NOT_TEXT, "not text"),
    ("reviews", {"cases": {"4": {"mark": "looks fine"}}}, "'cases' row '4' has no known mark"),
    ("reviews", {"cases": {"x": {"mark": "ambiguous"}}}, "'cases' row 'x' is not a row number"),
    ("reviews", {"training": {"2": {"mark": "ambiguous", "given": 7, "suggested": 0}}},
     "'training' row '2' 'given' is class 7, and the run has 3 classes"),
    ("reviews", [1, 2], "expected a JSON dict"),
    ("label_issues", {"version": 1, "num_classes": 3, "given": [0, 5], "suggested": [0, 1], "score": [0.5, 0.5],
                      "flag": [0, 1], "fold": [0, 1], "clean": None}, "'given' holds 5, not a class number"),
    ("label_issues", {"version": 1, "num_classes": 3, "given": [0], "suggested": [0, 1], "score": [0.5, 0.5],
                      "flag": [0, 1], "fold": [0, 1]}, "different lengths"),
    ("label_issues", {"version": 1, "num_classes": 4, "given": [], "suggested": [], "score": [], "flag": [],
                      "fold": []}, "'num_classes' is 4, and the run has 3 classes"),
])
def test_each_damaged_annotation_is_named_with_its_path_and_what_to_do(copied_home, name, content, reason):
    home, run_id = copied_home["home"], copied_home["table_run"]  # wine: 3 classes
    _write(home, run_id, name, content)
    store = RunStore(home)
    with pytest.raises(AnnotationDamaged) as caught:
        store.annotation(run_id, name)
    error = caught.value
    assert isinstance(error, RunFileDamaged) and error.file == f"{name}.json" and reason in error.reason
    assert error.path == home / "runs" / run_id / f"{name}.json"
    assert str(error.path) in str(error) and "other files and pages are not affected" in str(error)
    assert store.metrics(run_id) and store.annotation(copied_home["image_run"], name) == {}  # nothing else is


def test_valid_annotations_read_back_and_invalid_ones_are_not_written(copied_home):
    home, run_id = copied_home["home"], copied_home["table_run"]
    store = RunStore(home)
    point = {"class": 2, "threshold": 0.25, "prevalence": 0.03, "cost_miss": 10.0}
    store.write_annotation(run_id, "operating_point", point)
    assert store.annotation(run_id, "operating_point") == point
    with pytest.raises(ValueError, match="not saved: 'class' is class 999"):
        store.write_annotation(run_id, "operating_point", {**point, "class": 999})
    assert store.annotation(run_id, "operating_point") == point


def test_a_damaged_annotation_is_set_aside_not_deleted(copied_home):
    home, run_id = copied_home["home"], copied_home["table_run"]
    _write(home, run_id, "reviews", NOT_TEXT)
    store = RunStore(home)
    aside = store.set_aside_annotation(run_id, "reviews")
    assert aside.parent == home / "runs" / run_id and aside.name.startswith("reviews.json.damaged-")
    assert aside.read_bytes() == NOT_TEXT and store.annotation(run_id, "reviews") == {}
    assert store.set_aside_annotation(run_id, "reviews") is None


def _notice(at, file: str) -> str:
    [warning] = [w.value for w in at.warning if file in shown(w.value)]
    return shown(warning)


def test_the_triage_page_shows_the_damaged_operating_point_and_works_without_it(copied_home, open_page):
    home, run_id = copied_home["home"], copied_home["table_run"]
    _write(home, run_id, "operating_point", ISSUE_POINT)
    at = open_page("triage", run_id=run_id)
    _no_exceptions(at)
    notice = _notice(at, "operating_point.json")
    assert "is damaged ('class' is class 999" in notice and str(home / "runs" / run_id) in notice
    assert "save the operating point again" in notice and "Set the damaged file aside" in [b.label for b in at.button]
    assert {"Sensitivity", "Specificity", "PPV", "NPV"} <= {m.label for m in at.metric}, "the page goes on"
    at.button(key=f"damaged.aside.operating_point.{run_id}.page").click().run()
    _no_exceptions(at)
    assert not [w for w in at.warning if "operating_point.json" in shown(w.value)]
    assert list((home / "runs" / run_id).glob("operating_point.json.damaged-*"))
    at.button(key="triage.save").click().run()  # saving a new one works again
    _no_exceptions(at)
    assert RunStore(home).annotation(run_id, "operating_point")["class"] == at.selectbox(
        key=f"triage.class.{run_id}").value


def test_the_gallery_shows_damaged_reviews_and_still_shows_the_cases(copied_home, open_page):
    home, run_id = copied_home["home"], copied_home["image_run"]
    _write(home, run_id, "reviews", NOT_TEXT)
    at = open_page("gallery", run_id=run_id)
    _no_exceptions(at)
    notice = _notice(at, "reviews.json")
    assert "is damaged (not text)" in notice and str(home / "runs" / run_id / "reviews.json") in notice
    assert any(m.value.startswith("**row ") for m in at.markdown), "the cases are still shown"
    [report] = [d for d in at.get("download_button") if d.proto.label.startswith("⬇️ Download these")]
    assert not report.proto.disabled


@pytest.mark.parametrize("page", ["results", "calibration", "geometry"])
def test_damaged_annotations_never_block_the_other_pages(copied_home, open_page, page):
    home, run_id = copied_home["home"], copied_home["table_run"]
    _write(home, run_id, "operating_point", ISSUE_POINT)
    _write(home, run_id, "reviews", NOT_TEXT)
    at = open_page(page, run_id=run_id)
    _no_exceptions(at)
    assert not at.error, [e.value for e in at.error]


def test_the_report_lists_what_it_leaves_out(copied_home):
    from core.analysis import report_annotations
    from core.viz import error_report_html

    home, run_id = copied_home["home"], copied_home["table_run"]
    _write(home, run_id, "operating_point", ISSUE_POINT)
    saved = report_annotations(RunStore(home), run_id)
    assert saved["operating_point"] == {} and saved["reviews"] == {} and len(saved["damaged"]) == 1
    assert "operating_point.json" in saved["damaged"][0] and str(home) in saved["damaged"][0]
    html = error_report_html([], title="t", run_name="r", method="saliency", class_names=["a", "b", "c"],
                             damaged=saved["damaged"])
    assert "Left out: damaged files" in html and "operating_point.json" in html


def test_the_cli_names_damaged_annotations(copied_home, capsys, tmp_path):
    from core.cli import main

    home, run_id = copied_home["home"], copied_home["table_run"]
    _write(home, run_id, "label_issues", {"version": 1, "num_classes": 3, "given": [9], "suggested": [0],
                                          "score": [0.5], "flag": [1], "fold": [0]})
    assert main(["label-issues", run_id]) == 2
    err = capsys.readouterr().err
    assert "label_issues.json" in err and f"tailscope label-issues {run_id} --recompute" in err and str(home / "runs" / run_id) in err
    from sklearn.datasets import load_wine

    batch = tmp_path / "batch.csv"
    batch.write_text(load_wine(as_frame=True).frame.drop(columns="target").head(20).to_csv(index=False))
    _write(home, run_id, "operating_point", ISSUE_POINT)
    assert main(["predict", run_id, str(batch)]) == 0
    out = capsys.readouterr().out
    assert "note: the operating point saved with the run was not applied" in out and "operating_point.json" in out

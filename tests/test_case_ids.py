"""Case identity end to end: an ID column's value, a picture's file name or the row number
names each case through the splits (imbalance subsample, hidden labels, cleaning folds),
eval.npz (text without pickle), every case list, reviews, the report and new-case
predictions; runs stored before identifiers were kept fall back to their test rows."""

from __future__ import annotations

import csv
import io
import os
import re
import zipfile

import numpy as np
import pandas as pd
import pytest

from conftest import make_run, shown, shown_table

CLASSES = ("normal", "anaemia", "sepsis", "rare")
MIX = (0.62, 0.22, 0.1, 0.06)


def patient_table(n: int = 240, seed: int = 3, *, ids: bool = True, label: bool = True, prefix: str = "P-") -> bytes:
    """A clinic export: patient_id, two lab values (one with gaps, so rows can be dropped),
    the 4-class diagnosis. Each lab value encodes the row, so a case's id can be checked
    against its own values after any split."""
    rng = np.random.default_rng(seed)
    y = rng.choice(len(MIX), size=n, p=MIX)
    y[:len(MIX)] = np.arange(len(MIX))
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow([*(["patient_id"] if ids else []), "row_marker", "crp", *(["diagnosis"] if label else [])])
    for i, c in enumerate(y):
        crp = "" if i % 17 == 5 else f"{10 * c + rng.normal(0, 2):.2f}"
        w.writerow([*([f"{prefix}{i:05d}"] if ids else []), f"{i}.5", crp, *([CLASSES[c]] if label else [])])
    return out.getvalue().encode()


def _unscaled(splits, x: np.ndarray) -> np.ndarray:
    return x * splits.feature_std + splits.feature_mean


# --- the data: sources and splits ---------------------------------------------------------------------------


def test_an_id_column_names_the_rows_that_are_kept_after_dropping_gaps():
    from core.data import read_table, table_dataset

    raw = read_table(patient_table(), "clinic.csv")
    data = table_dataset(raw, "diagnosis", missing="drop")
    assert data.id_name == "patient_id" and data.ids.dtype.kind == "U"
    assert "patient_id" not in data.feature_names  # still left out of the features
    # every kept row keeps its own id: its row marker i.5 belongs to P-0000i; rows 5, 22, ... had a gap
    marker = data.x[:, data.feature_names.index("row_marker")]
    assert [f"P-{int(m):05d}" for m in marker] == data.ids.tolist()
    assert "P-00005" not in data.ids and "P-00004" in data.ids and len(data.ids) == len(data.y)


def test_without_an_id_column_a_row_is_its_number_in_the_file_under_the_header():
    from core.data import read_table, table_dataset

    data = table_dataset(read_table(patient_table(ids=False), "clinic.csv"), "diagnosis", missing="drop")
    assert data.id_name == "row"
    marker = data.x[:, data.feature_names.index("row_marker")]
    assert data.ids.tolist() == [str(int(m) + 2) for m in marker]  # data row i is file row i + 2
    assert data.ids[:6].tolist() == ["2", "3", "4", "5", "6", "8"]  # file row 7 (data row 5) had a gap


def test_an_empty_id_cell_is_named_by_its_row():
    from core.data import read_table, table_dataset

    text = patient_table(n=40).decode().replace("P-00003,", ",", 1).encode()
    data = table_dataset(read_table(text, "clinic.csv"), "diagnosis", missing="fill")
    assert data.ids[3] == "(row 5)" and data.ids[4] == "P-00004"


def test_pictures_are_named_by_their_file():
    from PIL import Image

    from core.data import load_image_zip

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, colour, count in (("red", (220, 20, 20), 6), ("blue", (20, 20, 220), 4)):
            for i in range(count):
                img = io.BytesIO()
                Image.new("RGB", (8, 8), colour).save(img, format="PNG")
                z.writestr(f"{name}/scan_{i}.png", img.getvalue())
    data = load_image_zip(buf.getvalue(), "scans.zip", size=8)
    assert data.id_name == "file" and len(data.ids) == len(data.y) == 10
    for file, label, x in zip(data.ids, data.y, data.x):
        assert file.split("/")[0] == data.class_names[label]  # each picture's own file and class
        assert (x[0].mean() > x[2].mean()) == file.startswith("red/")  # and its own pixels


def _identified(n: int = 300, k: int = 3, seed: int = 0, test: int = 0):
    """A table whose only feature is the row index, ids "id<i>": any split can be checked."""
    from core.data import Dataset

    rng = np.random.default_rng(seed)
    y = rng.choice(k, size=n + test, p=[0.6, 0.3, 0.1])
    x = np.arange(n + test, dtype=np.float32)[:, None]
    ids = np.array([f"id{i}" for i in range(n + test)])
    return Dataset("t", x[:n], y[:n], tuple("abc"), "tabular", ("i",), x_test=x[n:] if test else None,
                   y_test=y[n:] if test else None, ids=ids[:n], ids_test=ids[n:] if test else None, id_name="case_no")


@pytest.mark.parametrize("how", [dict(), dict(fold=(3, 1)), dict(test=60), dict(test=60, fold=(4, 2))])
def test_ids_follow_their_rows_through_every_split_and_the_imbalance_subsample(how):
    from core.data import prepare_splits

    data = _identified(test=how.get("test", 0))
    splits = prepare_splits(data, profile="exp", ratio=8, seed=4, fold=how.get("fold"))
    assert splits.id_name == "case_no"
    assert splits.class_counts.tolist() != np.bincount(data.y).tolist()  # the subsample did drop rows
    all_y = np.concatenate([data.y, data.y_test]) if data.y_test is not None else data.y
    for x, y, ids in ((splits.x_train, splits.y_train, splits.ids_train), (splits.x_val, splits.y_val, splits.ids_val),
                      (splits.x_test, splits.y_test, splits.ids_test)):
        rows = np.rint(_unscaled(splits, x)[:, 0]).astype(int)
        assert ids.tolist() == [f"id{r}" for r in rows]
        assert (all_y[rows] == y).all()
    if "fold" not in how and "test" in how:  # a shipped test set stays as shipped
        assert splits.ids_test.tolist() == data.ids_test.tolist()


def test_a_builtin_is_named_by_its_row_number():
    from core.data import load_builtin, prepare_splits

    data = load_builtin("wine")
    splits = prepare_splits(data, profile="exp", ratio=5, seed=2)
    assert splits.id_name == "row"
    rows = np.array([int(i) - 1 for i in splits.ids_train])
    np.testing.assert_allclose(_unscaled(splits, splits.x_train), data.x[rows], rtol=1e-4, atol=1e-3)


def test_hidden_labels_and_cleaning_folds_keep_the_ids_aligned():
    from core.config import DataConfig
    from core.data import load_builtin, split_data
    from core.train._cleaning import _fold_splits

    data = load_builtin("wine")
    splits = split_data(data, DataConfig.model_validate({"source": "wine", "unlabeled": {"fraction": 0.5}}))
    assert len(splits.ids_train) == len(splits.x_train) < len(splits.x_train) + len(splits.x_unlabeled)
    rows = np.array([int(i) - 1 for i in splits.ids_train])
    np.testing.assert_allclose(_unscaled(splits, splits.x_train), data.x[rows], rtol=1e-4, atol=1e-3)
    fit, held = np.arange(0, len(splits.y_train), 2), np.arange(1, len(splits.y_train), 2)
    fold = _fold_splits(splits, fit, held)
    assert fold.ids_test.tolist() == splits.ids_train[held].tolist() and len(fold.ids_train) == len(fit)


# --- stored outputs ------------------------------------------------------------------------------------------


def _artifacts(n: int = 5, **extra):
    from core.artifacts import EvalArtifacts

    rng = np.random.default_rng(0)
    empty = np.zeros((n, 0), np.float32)
    return EvalArtifacts(
        logits=rng.normal(size=(n, 3)), labels=np.arange(n) % 3, features=empty, head_weight=np.zeros((3, 0)),
        head_bias=np.zeros(3), train_features=empty, train_labels=np.arange(n) % 3, class_counts=np.array([5, 3, 1]),
        val_logits=rng.normal(size=(n, 3)), val_labels=np.arange(n) % 3, val_features=empty,
        test_index=np.array([4, 0, 1, 3, 2])[:n], **extra)


def test_ids_are_stored_as_text_without_pickle_and_read_back(tmp_path):
    from core.artifacts import EvalArtifacts

    art = _artifacts().with_case_ids(np.array(["P-1", "P-22", "P-333", "P-4444", "Zoë 5"], dtype=object), "patient_id")
    assert art.ids.tolist() == ["Zoë 5", "P-1", "P-22", "P-4444", "P-333"]  # indexed by test_index
    art.save(tmp_path / "eval.npz")
    with np.load(tmp_path / "eval.npz", allow_pickle=False) as z:  # no object array: pickle is never needed
        assert z["case_ids"].dtype.kind == "U" and str(z["case_id_name"]) == "patient_id"
    back = EvalArtifacts.load(tmp_path / "eval.npz")
    assert back.ids.tolist() == art.ids.tolist() and back.id_name == "patient_id"
    assert back.case_name(1) == "patient_id P-1"


def test_a_run_stored_before_ids_falls_back_to_its_test_rows(tmp_path):
    from core.analysis import error_cases, reviews_table
    from core.artifacts import EvalArtifacts

    old = _artifacts()
    old.save(tmp_path / "eval.npz")
    back = EvalArtifacts.load(tmp_path / "eval.npz")
    assert back.case_ids is None and back.id_name == "test row"
    assert back.ids.tolist() == ["5", "1", "2", "4", "3"]  # the 1-based row in the test split
    cases = error_cases(back, ["head", "medium", "tail"], correctness="all")
    assert set(cases["case"]) == {f"test row {i}" for i in range(1, 6)}
    review = {0: {"mark": "ambiguous", "note": "", "updated": "t"}}
    assert reviews_table(review, back)["case"].tolist() == ["test row 1"]


# --- a run on a patient table: every case list ---------------------------------------------------------------


@pytest.fixture(scope="module")
def clinic_store(tmp_path_factory):
    """A finished network run on a patient table (gaps filled), its store home and the table."""
    from core.data import save_upload

    home = tmp_path_factory.mktemp("case-ids-home")
    previous = os.environ.get("TAILSCOPE_HOME")
    os.environ["TAILSCOPE_HOME"] = str(home)
    try:
        table = patient_table(n=360)
        source = save_upload(table, "clinic.csv")
        data = {"source": source, "label_column": "diagnosis", "missing": "fill",
                "imbalance": {"profile": "exp", "ratio": 4}}
        run = make_run(home, {"name": "clinic", "data": data, "model": {"name": "mlp", "hidden": 8},
                              "train": {"epochs": 3, "batch_size": 64, "lr": 0.05, "min_steps": 0, "nc_every": 0}},
                       embeddings=False)
    finally:
        if previous is None:
            os.environ.pop("TAILSCOPE_HOME", None)
        else:
            os.environ["TAILSCOPE_HOME"] = previous
    return {"home": home, "run": run, "table": table}


@pytest.fixture
def clinic(clinic_store, monkeypatch):
    """The clinic run's store as this test's TAILSCOPE_HOME (its upload is read from there)."""
    monkeypatch.setenv("TAILSCOPE_HOME", str(clinic_store["home"]))
    return clinic_store


def _store(clinic):
    from core.store import RunStore

    return RunStore(clinic["home"])


def _marker_of(clinic, art) -> dict[str, float]:
    """Each stored test case's id -> the row marker the run's own test split holds for it."""
    from core.config import RunConfig
    from core.train import prepare_run_data

    splits = prepare_run_data(RunConfig.model_validate(_store(clinic).get(clinic["run"]).config))
    x = _unscaled(splits, splits.x_test[art.test_index])[:, list(splits.feature_names).index("row_marker")]
    return dict(zip(art.ids.tolist(), x.tolist()))


def test_a_finished_run_stores_each_test_patients_id(clinic):
    art = _store(clinic).artifacts(clinic["run"])
    assert art.id_name == "patient_id" and len(art.ids) == len(art.labels)
    for pid, marker in _marker_of(clinic, art).items():  # each id belongs to the row the model was tested on
        assert pid == f"P-{int(marker):05d}"


def test_the_case_lists_name_each_patient(clinic):
    from core.analysis import build_report_cases, error_cases, label_issue_table, reviews_csv, reviews_table, softmax
    from core.analysis._label_issues import LabelIssueReport
    from core.viz import cell_samples, error_report_html

    art = _store(clinic).artifacts(clinic["run"])
    cases = error_cases(art, ["head", "medium", "tail", "tail"], correctness="all")
    assert all(re.fullmatch(r"patient_id P-\d{5}", c) for c in cases["case"])
    assert cases["case"].tolist() == [art.case_name(r) for r in cases["row"]]

    cells = cell_samples(art.labels, softmax(art.logits), [(0, 0), (1, 0)], CLASSES, art.ids, art.id_name)
    assert list(cells.columns[:2]) == ["position", "patient_id"]
    assert cells["patient_id"].tolist() == art.ids[cells["position"]].tolist()

    first = cases.head(2)
    report = error_report_html(
        build_report_cases(first, art, np.zeros((2, 3)), None, None, modality="tabular"), title="t", run_name="r",
        method="saliency", class_names=CLASSES,
        reviews=reviews_table({int(first["sample_id"].iloc[0]): {"mark": "ambiguous", "note": "", "updated": "t"}},
                              art, CLASSES))
    for case in first["case"]:
        assert f"<h2>{case} &mdash;" in report
    assert f"<tr><td>{first['case'].iloc[0]}</td>" in report  # the review section names the patient too

    done = reviews_table({int(s): {"mark": "model error", "note": "n", "updated": "t"} for s in cases["sample_id"][:3]},
                         art, CLASSES)
    written = pd.read_csv(io.BytesIO(reviews_csv(done)))
    assert sorted(written["case"]) == sorted(cases["case"][:3]) and "test_row" in written

    n = 6
    report = LabelIssueReport(given=np.arange(n) % 3, suggested=(np.arange(n) + 1) % 3,
                              score=np.linspace(0.1, 0.9, n), flag=np.array([1, 0, 1, 0, 0, 1], bool),
                              fold=np.zeros(n, int), num_classes=3, settings={})
    table = label_issue_table(report, CLASSES, ids=np.array([f"P-{i}" for i in range(n)]), id_name="patient_id")
    assert table["patient_id"].tolist() == ["P-0", "P-2", "P-5"] and table["train_row"].tolist() == [0, 2, 5]


def test_new_patients_are_named_by_their_id_in_the_table_and_the_csv(clinic):
    from core.predict import predict_new_cases

    batch = patient_table(n=30, seed=8, label=False, prefix="NEW-")
    cases = predict_new_cases(_store(clinic), clinic["run"], "new.csv", batch)
    assert cases.id_name == "patient_id" and cases.frame.columns[0] == "patient_id"
    assert cases.frame["patient_id"].tolist() == [f"NEW-{i:05d}" for i in range(30)]
    written = pd.read_csv(io.BytesIO(cases.to_csv()), dtype=str)
    assert written["patient_id"].tolist() == [f"NEW-{i:05d}" for i in range(30)]
    assert "case" not in written.columns and "patient_id at estimated prior" not in written.columns
    assert not any("patient_id" in w for w in cases.warnings)  # it names the cases: not "ignored"

    no_ids = predict_new_cases(_store(clinic), clinic["run"], "new.csv", patient_table(n=12, seed=8, ids=False,
                                                                                           label=False))
    assert no_ids.id_name == "row" and no_ids.frame["row"].tolist() == [str(r) for r in range(2, 14)]


def test_the_results_case_list_shows_the_patient_ids(clinic, open_page):
    at = open_page("results", run_id=clinic["run"])
    assert not at.exception, [e.value for e in at.exception]
    art = _store(clinic).artifacts(clinic["run"])
    listed = next(d.value for d in at.dataframe if "patient_id" in d.value.columns)
    assert listed["patient_id"].str.fullmatch(r"P-\d{5}").all()
    marker = _marker_of(clinic, art)
    for pid, value in zip(listed["patient_id"], listed["row_marker"]):  # the id beside the patient's own values
        assert float(value) == pytest.approx(marker[pid], abs=1e-3)
    assert any("each named by its patient_id (the data's ID column)" in shown(c.value) for c in at.caption)


def test_the_gallery_cards_name_each_patient(clinic, open_page):
    at = open_page("gallery", run_id=clinic["run"])
    assert not at.exception, [e.value for e in at.exception]
    cards = [shown(m.value) for m in at.markdown if re.match(r"\*\*patient_id P-\d{5}\*\* · ", shown(m.value))]
    assert cards, "every card is headed by its patient's id"
    assert not any(m.value.startswith("**Sample ") for m in at.markdown)


def test_the_data_page_says_which_column_names_the_cases():
    from core.data import left_out_line, profile_table, read_table

    raw = read_table(patient_table(n=60), "clinic.csv")
    line = shown(left_out_line(profile_table(raw.frame, raw.filename, "diagnosis")))
    assert "**patient_id** names each case wherever cases are listed" in line
    raw = read_table(patient_table(n=60, ids=False), "clinic.csv")
    assert "names each case" not in left_out_line(profile_table(raw.frame, raw.filename, "diagnosis"))


def test_an_id_that_is_markup_or_a_formula_stays_text_in_the_report_and_the_csv():
    from core.analysis import build_report_cases, error_cases, reviews_csv, reviews_table
    from core.viz import error_report_html

    hostile = ["=HYPERLINK(\"http://203.0.113.9\")", "<b>P-1</b>", "@SUM(1)", "P-4", "+1"]
    art = _artifacts().with_case_ids(np.array(hostile), "<i>mrn</i>")
    cases = error_cases(art, ["head", "medium", "tail"], correctness="all")
    report = error_report_html(build_report_cases(cases, art, np.zeros((5, 3)), None, None, modality="tabular"),
                               title="t", run_name="r", method="saliency", class_names=list("abc"))
    assert "<b>P-1</b>" not in report and "&lt;i&gt;mrn&lt;/i&gt; &lt;b&gt;P-1&lt;/b&gt;" in report
    table = reviews_table({int(s): {"mark": "ambiguous", "note": "", "updated": "t"} for s in art.test_index}, art)
    written = list(csv.reader(io.StringIO(reviews_csv(table).decode())))
    assert all(not row[1].startswith(("=", "@", "+", "-")) for row in written[1:])  # opened as text, never run
    assert {row[1] for row in written[1:]} >= {"<i>mrn</i> P-4", "<i>mrn</i> <b>P-1</b>"}


# --- the last places: the CLI's label issues, the gallery's neighbours, the Geometry map -------------------


def _train_markers(clinic):
    """The run's training split and each training row's marker (its file row, i.5 -> P-0000i)."""
    from core.config import RunConfig
    from core.train import prepare_run_data

    splits = prepare_run_data(RunConfig.model_validate(_store(clinic).get(clinic["run"]).config))
    markers = _unscaled(splits, splits.x_train)[:, list(splits.feature_names).index("row_marker")]
    return splits, markers


def test_the_cli_names_each_suspected_training_row_by_its_id(clinic, capsys):
    import json

    from core.cli import main

    from dataclasses import replace

    from core.analysis import read_label_issues, save_label_issues

    assert main(["label-issues", clinic["run"], "--json"]) == 0  # computed on the run's training split, kept
    capsys.readouterr()
    store = _store(clinic)
    report = read_label_issues(store, clinic["run"])
    flag = np.zeros_like(report.flag)  # this clean table may have no suspect: mark its five least likely labels
    flag[np.argsort(report.score, kind="stable")[:5]] = True
    save_label_issues(store, clinic["run"], replace(report, flag=flag))
    assert main(["label-issues", clinic["run"], "--json"]) == 0  # read back
    issues = json.loads(capsys.readouterr().out)["issues"]
    assert len(issues) == 5
    splits, markers = _train_markers(clinic)
    for issue in issues:  # the id printed is the id of that training row's own values
        assert issue["patient_id"] == f"P-{int(markers[issue['train_row']]):05d}" == splits.ids_train[issue["train_row"]]
    assert main(["label-issues", clinic["run"], "--top", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(re.match(r"\s+training row\s+patient_id", line) for line in lines), "the column's name heads it"
    listed = [line for line in lines if re.match(r"\s+row\s+\d+\s+P-\d{5}\s+given ", line)]
    assert len(listed) == min(3, len(issues))
    for line, issue in zip(listed, issues):
        assert line.split()[1:3] == [str(issue["train_row"]), issue["patient_id"]]


def test_the_gallery_names_the_most_similar_training_cases_by_id(clinic, open_page):
    at = open_page("gallery", run_id=clinic["run"])
    assert not at.exception, [e.value for e in at.exception]
    _, markers = _train_markers(clinic)
    by_id = {f"P-{int(m):05d}": m for m in markers}
    seen = 0
    for element in at.table:
        table = shown_table(element)
        if "this case" not in table.columns:
            continue
        for title in table.columns.drop("this case"):  # one column per neighbour: "patient_id P-00012, distance 0.03"
            match = re.fullmatch(r"patient_id (P-\d{5}), distance \d+\.\d\d", title)
            assert match, title
            assert float(table.loc["row_marker", title]) == pytest.approx(by_id[match.group(1)], abs=1e-3)
            seen += 1
    assert seen, "the neighbours of the listed cases are shown"


def test_the_geometry_map_names_each_point_in_its_hover(clinic, open_page):
    import json

    at = open_page("geometry", run_id=clinic["run"])
    assert not at.exception, [e.value for e in at.exception]
    art = _store(clinic).artifacts(clinic["run"])
    spec = json.loads(next(c for c in at.get("plotly_chart") if "geometry.map" in c.proto.id).proto.spec)
    points = [row for trace in spec["data"] if "customdata" in trace for row in trace["customdata"]]
    assert len(points) == len(art.labels)
    for row in points:  # the clicked point's sample id, and the name its hover shows
        assert row[4] == art.case_name(int(row[0])) and row[4].startswith("patient_id P-")
    assert all("%{customdata[4]}" in t["hovertemplate"] for t in spec["data"] if "customdata" in t)

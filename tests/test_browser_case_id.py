"""A clinician finds the patient: a patient table with a patient_id column, lab values in their
own units with gaps and a category, uploaded with its roles accepted, trained (tiny settings),
and the patient's id beside the file's own values in the Results case list, on the Error
gallery's cards, in its HTML report, and in the triage predictions of new patients (page and
downloaded CSV)."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import expect

from test_browser import (  # noqa: F401  (fixtures are found by name)
    ARTIFACTS, PAGE_TIMEOUT_MS, app_server, chromium_installed, chromium_page, go, grid, no_exception, pick_option,
    run_card, screenshot, settle, start_training, upload_on_data_page, wait_for_run, widget,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DIAGNOSES = ["healthy", "anaemia", "kidney disease", "porphyria"]  # 4 classes, the last rare
MIX = [0.8, 0.13, 0.05, 0.02]
LABS = ["haemoglobin", "creatinine", "ferritin"]
PATIENT_ID = re.compile(r"PT-\d{5}")


def write_patient_table(path: Path, rows: int = 600, seed: int = 21, *, label: bool = True, first: int = 0) -> Path:
    """A clinic export: patient_id, age, three lab values with gaps ('' and 'n/a'), the
    4-class diagnosis with a rare class."""
    rng = np.random.default_rng(seed)
    y = rng.choice(len(DIAGNOSES), size=rows, p=MIX)
    y[:len(DIAGNOSES)] = np.arange(len(DIAGNOSES))
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["patient_id", "age", "sex", *LABS, *(["diagnosis"] if label else [])])
    for i, c in enumerate(y):
        labs = [13.5 - 2.5 * (c == 1) + rng.normal(0, 0.8), 0.9 + 1.6 * (c == 2) + rng.normal(0, 0.2),
                120 - 60 * (c == 1) + 300 * (c == 3) + rng.normal(0, 25)]
        cells = [f"{v:.2f}" for v in labs]
        if i % 23 == 7:
            cells[2] = "n/a"
        if i % 31 == 3:
            cells[0] = ""
        w.writerow([f"PT-{first + i:05d}", int(rng.integers(20, 90)), "FM"[i % 2], *cells,
                    *([DIAGNOSES[c]] if label else [])])
    path.write_text(out.getvalue())
    return path


def test_a_patients_id_follows_it_from_upload_to_every_case_list(app_server, tmp_path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    table = write_patient_table(tmp_path / "clinic.csv")
    new = write_patient_table(tmp_path / "new-patients.csv", rows=40, seed=5, label=False, first=90000)
    url, home = app_server["url"], app_server["home"]
    with chromium_page(failure="case-id-failure", logs=(app_server["log"], home / "worker.log")) as page:
        _journey(page, url, home, table, new, tmp_path)


def _journey(page, url: str, home: Path, table: Path, new: Path, downloads: Path) -> None:
    page.goto(url)
    expect(page.locator("h1").filter(has_text="Tailscope")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    settle(page)

    # 1. Data: upload; patient_id is left out of the features; gaps filled; saved for training.
    upload_on_data_page(page, table)
    expect(page.get_by_role("combobox", name="Label column (the class to predict)")).to_have_value("diagnosis")
    settle(page)
    no_exception(page, "Data after the upload")
    expect(page.get_by_text("Columns: 5 used as features, 1 left out")).to_be_visible()
    expect(page.get_by_text("Left out of the features: patient_id (ID-like)")).to_be_visible()
    expect(page.get_by_role("radio", name=re.compile(r"^Fill the \d+ gaps"))).to_be_checked()
    expect(widget(page, "stRadio", "Profile").get_by_role("radio", name="none")).to_be_checked()
    page.get_by_role("button", name="Use this dataset for training").click()
    settle(page)
    expect(page.get_by_text(re.compile(r"The Train page uses this dataset: clinic\.csv \(\d+ : 1, natural\)")))\
        .to_be_visible()

    # 2. Train: two epochs.
    go(page, "Train", "Train")
    epochs = page.get_by_label("Epochs", exact=True)
    epochs.fill("2")
    epochs.press("Enter")
    settle(page)
    start_training(page, home)
    runs = wait_for_run(home)
    assert [r.status for r in runs] == ["done"], [(r.status, r.error) for r in runs]
    run_id = runs[0].id
    data = runs[0].config["data"]
    assert data["missing"] == "fill" and data["column_roles"] == {} and data["label_column"] == "diagnosis"
    from core.store import RunStore

    art = RunStore(home).artifacts(run_id)
    assert art.id_name == "patient_id" and all(PATIENT_ID.fullmatch(i) for i in art.ids)
    file_rows = pd.read_csv(table, dtype=str).set_index("patient_id")

    # 3. Results: the confusion cell's case list names each patient beside the file's values.
    card = run_card(page, runs[0].name)
    expect(card.get_by_text("Finished: balanced accuracy")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    card.get_by_role("link", name="Open its results").click()
    expect(page.locator("h1").filter(has_text="Results")).to_be_visible()
    settle(page)
    true_class = page.get_by_role("combobox", name="True class").input_value()
    pick_option(page, page.get_by_role("combobox", name="Predicted class"), true_class)  # the diagonal: cases for sure
    settle(page)
    no_exception(page, "Results")
    listed = page.locator('[data-testid="stDataFrame"]').filter(
        has=page.locator('[role="columnheader"]', has_text="patient_id"))
    expect(listed).to_have_count(1)
    headers, rows = grid(listed)
    at = headers.index("patient_id")
    assert rows and all(PATIENT_ID.fullmatch(r[at]) for r in rows), rows[:3]
    # the values that fit beside the sidebar at 1024 px, in the file's order; the rest named
    # under the grid (they wait in its Show/hide columns menu, so it never scrolls sideways)
    values = [h for h in headers if h in ("age", "sex", *LABS)]
    assert values and values == ["age", "sex", *LABS][:len(values)] and headers[-len(values):] == values, headers
    for name in ["age", "sex", *LABS][len(values):]:
        expect(page.get_by_text(re.compile(rf"values are shown; the others \(.*\b{name}\b"))).to_be_visible()
    for r in rows:  # the id sits beside that patient's own values from the file, in its units
        patient = file_rows.loc[r[at]]
        for name in values:  # a gap shows the one value it was filled with, every other cell the file's
            if name in LABS and isinstance(patient[name], str) and patient[name] != "n/a":
                assert abs(float(r[headers.index(name)]) - float(patient[name])) < 0.01, (name, r)
            elif name not in LABS:
                assert r[headers.index(name)] == patient[name], (name, r)
    expect(page.get_by_text(re.compile(r"each named by its patient_id \(the data's ID column\)"))).to_be_visible()
    screenshot(page, "case-id-results")
    page.get_by_text("Show the standardised values the model saw").click()
    settle(page)
    expect(page.locator('[role="columnheader"]', has_text="sex=F").or_(
        page.get_by_text(re.compile(r"values are shown; the others \(.*sex=F")))).to_have_count(1)

    # 4. Error gallery: each card is headed by the patient's id; the HTML report names them too.
    page.goto(f"{url}/gallery?run={run_id}")
    expect(page.locator("h1").filter(has_text="Error gallery")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    settle(page)
    no_exception(page, "Error gallery")
    headings = page.get_by_text(re.compile(r"^patient_id PT-\d{5}$"))
    expect(headings.first).to_be_visible()
    shown_ids = [t.removeprefix("patient_id ") for t in headings.all_inner_texts()]
    assert shown_ids and set(shown_ids) <= set(art.ids), shown_ids
    expect(page.get_by_text(re.compile(r"^Sample \d+"))).to_have_count(0)
    expect(page.get_by_test_id("stPlotlyChart").first).to_be_visible()  # the cards' bars have painted
    screenshot(page, "case-id-gallery")
    with page.expect_download() as download:
        page.get_by_role("button", name=re.compile(r"as an HTML report")).click()
    html = Path(download.value.path()).read_text()
    assert all(f"<h2>patient_id {pid} &mdash;" in html for pid in shown_ids)

    # 5. Triage: new patients scored and named by their own ids, on the page and in the CSV.
    page.goto(f"{url}/triage?run={run_id}")
    expect(page.locator("h1").filter(has_text="Rare-class triage")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    settle(page)
    page.get_by_role("tab", name="New cases: predict and estimate the mix").click()
    page.get_by_label("New cases").get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(new))
    settle(page)
    no_exception(page, "Triage new cases")
    expect(page.get_by_text(re.compile(r"40 cases scored, each named by its patient_id"))).to_be_visible()
    predictions = page.locator('[data-testid="stDataFrame"]').filter(
        has=page.locator('[role="columnheader"]', has_text="patient_id"))
    expect(predictions.first).to_be_visible()
    headers, rows = grid(predictions.first)
    assert rows and rows[0][headers.index("patient_id")] == "PT-90000", rows[:2]
    screenshot(page, "case-id-triage")
    with page.expect_download() as download:
        page.get_by_role("button", name="Predictions (CSV)").click()
    written = pd.read_csv(download.value.path(), dtype=str)
    assert written["patient_id"].tolist() == [f"PT-{90000 + i:05d}" for i in range(40)]
    assert "case" not in written.columns

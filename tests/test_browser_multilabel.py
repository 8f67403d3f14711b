"""Several findings per case in a real browser: a clinic's table whose findings column lists
them (`fever|rash`) and a ZIP of scans with a labels.csv, both uploaded through the Data page
and read as multi-label; plain BCE and the distribution-balanced loss over 3 seeds on the
table, one run on the scans; then Results: each finding's AP with its interval against its
training frequency, the co-occurrence matrix, and the verdict for DB against BCE on the rare
findings' mAP, read from those runs."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import expect

from test_browser import (  # noqa: F401  (fixtures are found by name)
    app_server, chromium_installed, chromium_page, fill_numbers, go, no_exception, pick_option, screenshot, settle,
    start_training, upload_on_data_page, wait_for_run,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHARES = {"fever": 0.6, "cough": 0.35, "rash": 0.1, "seizure": 0.04}  # the last two: rare findings


def write_findings(path: Path, rows: int = 600, seed: int = 5) -> Path:
    """`rows` cases: four measurements, each raised by one finding, and the findings column
    (every case has at least one; seizure about 4 %, rare in training)."""
    rng = np.random.default_rng(seed)
    names = list(SHARES)
    has = rng.random((rows, len(names))) < np.array(list(SHARES.values()))
    has[~has.any(axis=1), 0] = True
    x = has * 2.0 + rng.normal(scale=0.8, size=has.shape)
    lines = ["pulse,temp,skin,eeg,findings"]
    lines += [",".join(f"{v:.2f}" for v in x[i]) + "," + "|".join(n for n, h in zip(names, has[i]) if h)
              for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_scans(path: Path, n: int = 60) -> Path:
    """`n` small scans in a folder with a labels.csv naming their findings (`;` between)."""
    from PIL import Image

    rng = np.random.default_rng(2)
    rows = ["file,labels"]
    with zipfile.ZipFile(path, "w") as z:
        for i in range(n):
            spot, scar = i % 2 == 0, i % 8 == 0
            pixels = rng.integers(0, 60, size=(8, 8)).astype(np.uint8)
            pixels[:4, :4] += 150 * spot
            pixels[4:, 4:] += 150 * scar
            picture = io.BytesIO()
            Image.fromarray(pixels, "L").save(picture, format="PNG")
            z.writestr(f"scans/s{i}.png", picture.getvalue())
            rows.append(f"s{i}.png,{';'.join(['clear'] + ['spot'] * spot + ['scar'] * scar)}")
        z.writestr("scans/labels.csv", "\n".join(rows) + "\n")
    return path


def _save(page) -> None:
    expect(page.get_by_text("multi-label", exact=False).first).to_be_visible()
    no_exception(page, "Data, a multi-label upload")
    page.get_by_role("button", name="Use this dataset for training").click()
    settle(page)
    expect(page.get_by_text("The Train page uses this dataset")).to_be_visible()


def _train(page, home, loss: str, epochs: int, seeds: int, model: str | None = None) -> None:
    go(page, "Train", "Train")
    expect(page.get_by_text(re.compile(r"findings? .*multi-label|multi-label.*findings?")).first).to_be_visible()
    if model:
        pick_option(page, page.get_by_role("combobox", name="Model", exact=True), model)
        settle(page)
    pick_option(page, page.get_by_role("combobox", name="Loss", exact=True), loss)
    settle(page)
    fill_numbers(page, {"Epochs": epochs, "Repeat over seeds": seeds})
    no_exception(page, f"Train with {loss}")
    start_training(page, home)


def test_findings_table_and_scans_uploaded_trained_and_compared_on_rare_findings(app_server, tmp_path):
    from core.store import RunStore

    url, home = app_server["url"], app_server["home"]
    with chromium_page(failure="multilabel-failure", logs=(app_server["log"], home / "worker.log")) as page:
        page.goto(url)
        expect(page.locator("h1").filter(has_text="Tailscope")).to_be_visible()
        settle(page)
        upload_on_data_page(page, write_findings(tmp_path / "clinic_findings.csv"))
        settle(page)
        expect(page.get_by_role("combobox", name="Label column (the class to predict)")).to_have_value("findings")
        _save(page)
        _train(page, home, "Binary cross-entropy (plain)", epochs=8, seeds=3)
        _train(page, home, "Distribution-balanced loss (DB)", epochs=8, seeds=3)

        upload_on_data_page(page, write_scans(tmp_path / "scans.zip"))
        settle(page)
        expect(page.get_by_text("labels.csv", exact=False).first).to_be_visible()
        screenshot(page, "multilabel-data-scans")
        _save(page)
        go(page, "Train", "Train")  # pictures start at the picture network, not at the table's choice
        expect(page.get_by_role("combobox", name="Model", exact=True)).to_have_value("Small convolutional network")
        _train(page, home, "Binary cross-entropy (plain)", epochs=2, seeds=1,  # the network that trains in seconds
               model="Multi-layer perceptron (MLP)")

        runs = wait_for_run(home, 600, away=page)
        assert len(runs) == 7 and all(r.status == "done" for r in runs), [(r.name, r.status, r.error) for r in runs]
        db = next(r for r in runs if r.config["loss"]["name"] == "db")
        scans = next(r for r in runs if r.config["data"]["source"].endswith(".zip"))

        page.goto(f"{url}/results?run={db.id}")
        expect(page.locator("h1").filter(has_text="Results")).to_be_visible()
        settle(page)
        no_exception(page, "Results of a DB run")
        expect(page.get_by_role("heading", name="Finding by finding, common to rare")).to_be_visible()
        expect(page.get_by_role("heading", name="Which findings come together")).to_be_visible()
        for finding in SHARES:  # every finding on the AP chart and in the co-occurrence matrix
            expect(page.locator('[data-testid="stPlotlyChart"]').filter(has_text=finding).first).to_be_visible()
        expect(page.get_by_role("heading", name="Is another method better on the rare findings?")).to_be_visible()
        verdict = page.get_by_text(re.compile(r"Difference in .*95 % interval .* to .*p = "))
        expect(verdict).to_be_visible()
        shown = verdict.inner_text()
        screenshot(page, "multilabel-results-db")

        for label in ("Calibration", "Rare-class triage", "Error gallery", "Geometry"):  # one finding at a time
            go(page, label, label)
            no_exception(page, f"{label} of a DB run")
            expect(page.get_by_text("finding", exact=False).first).to_be_visible()
            chosen = [box.input_value() for box in page.locator('section.main [role="combobox"], '
                                                                '[data-testid="stMain"] [role="combobox"]').all()]
            assert chosen and not [c for c in chosen if "\\" in c], f"{label}: escapes shown in a choice: {chosen}"
            screenshot(page, f"multilabel-{label.split()[-1].lower()}")

        page.goto(f"{url}/results?run={scans.id}")
        expect(page.locator("h1").filter(has_text="Results")).to_be_visible()
        settle(page)
        no_exception(page, "Results of the scans run")
        screenshot(page, "multilabel-results-scans")
        expect(page.get_by_role("heading", name="Finding by finding, common to rare")).to_be_visible()

    from core.analysis import compare_ids

    store = RunStore(home)
    assert len(store.list_experiments()) == 2
    assert [row["label"] for row in store.metrics(db.id)["per_label"]] == list(SHARES)
    bce = next(r for r in runs if r.config["loss"]["name"] == "bce" and r.experiment and r.id != scans.id)
    result = compare_ids(store, db.experiment, bce.experiment, "map_tail")  # the page's numbers, from the store
    assert result["verdict"] in shown and f"{result['difference']:+.3f}" in shown.replace("−", "-"), shown

"""A researcher's sweep from the browser: build a tiny sweep on the Sweeps page (two losses,
one seed, a built-in table, two epochs), start it, wait for it, and find Results and Compare
opened on what it just made (the best fix against plain cross-entropy, and that pair), and
Home pointing to it. Screenshots of the builder and Home land in `test-artifacts/browser/`."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from test_browser import (  # noqa: F401  (fixtures: the server and the browser check)
    EXPECT_TIMEOUT_MS, PAGE_TIMEOUT_MS, _tail, app_server, chromium_installed, chromium_page, expect, fill_numbers, go,
    no_exception, pick_option, screenshot, settle,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SWEEP_TIMEOUT_S = 240


def _wait_for_sweep(home: Path):
    from core.store import RunStore

    store = RunStore(home)
    deadline = time.monotonic() + SWEEP_TIMEOUT_S
    while time.monotonic() < deadline:
        sweeps = store.list_sweeps()
        if sweeps and sweeps[0].runs and all(r.status in ("done", "failed", "cancelled") for r in sweeps[0].runs):
            return sweeps[0]
        time.sleep(0.5)
    pytest.fail(f"the sweep did not finish within {SWEEP_TIMEOUT_S} s: "
                f"{[(r.name, r.status) for s in store.list_sweeps() for r in s.runs]}\n"
                + "\n".join(_tail(log) for log in home.glob("sweep-*.log")))


def _address_run(page) -> str | None:
    return (parse_qs(urlparse(page.url).query).get("run") or [None])[0]


def test_build_a_sweep_start_it_and_open_what_it_made(app_server):
    url, home = app_server["url"], app_server["home"]
    with chromium_page(failure="sweep-builder-failure", logs=(app_server["log"],)) as page:
        page.goto(url)
        expect(page.locator("h1").filter(has_text="Tailscope")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        settle(page)
        go(page, "Sweeps", "Sweeps")
        expect(page.get_by_text("Build a sweep here")).to_be_visible()
        pick_option(page, page.get_by_role("combobox", name="Data", exact=True),
                    "Built-in: Wine cultivars (made long-tailed, ratio 10)")
        settle(page)
        fill_numbers(page, {"Seeds per combination": 1, "Epochs": 2})
        expect(page.get_by_text("2 combinations × 1 training each = 2 trainings.")).to_be_visible()
        expect(page.get_by_text("loss.name: [ce, balanced_softmax]")).to_be_visible()  # the YAML for the CLI
        no_exception(page, "Sweeps with the builder filled in")
        screenshot(page, "sweep-builder")

        page.get_by_role("button", name="Start the sweep").click()
        expect(page.get_by_text("Started the sweep: 2 trainings")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        sweep = _wait_for_sweep(home)
        assert [r.status for r in sweep.runs] == ["done", "done"], [(r.name, r.error) for r in sweep.runs]
        by_loss = {e.cell["loss.name"]: e.runs[0] for e in sweep.experiments}
        assert by_loss["ce"].config["train"]["epochs"] == 2 and by_loss["ce"].config["data"]["source"] == "wine"
        settle(page)
        no_exception(page, "Sweeps after the sweep finished")

        go(page, "Results", "Results")  # the one fix of the sweep, not an earlier run
        no_exception(page, "Results")
        expect(page.get_by_text(by_loss["balanced_softmax"].name, exact=False).first).to_be_visible()
        assert _address_run(page) == by_loss["balanced_softmax"].id

        go(page, "Compare", "Compare")
        no_exception(page, "Compare")
        chosen = page.get_by_test_id("stMultiSelect").first
        for run in by_loss.values():
            expect(chosen.get_by_text(run.name, exact=False).first).to_be_visible(timeout=EXPECT_TIMEOUT_MS)

        go(page, "Home", "Tailscope")
        expect(page.get_by_text("Latest sweep:", exact=False)).to_be_visible()
        no_exception(page, "Home")
        screenshot(page, "home-latest-sweep")

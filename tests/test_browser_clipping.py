"""Nothing cut: every page, on a projector (1024x768, classroom mode) and on a laptop
(1440x900), a student's shared Playground link at 1024x768 without classroom mode, and the
Train form on a 1280-px laptop with the sidebar open.

Over a store with a table run, a picture run, an experiment of two seeds, a small sweep and
a finished lesson, each page is measured for text a person cannot read whole: a label,
button, caption or chosen option cut off or ending in "…" (the Playground test's
`LAYOUT_PROBLEMS_JS`), a data grid whose columns hide behind a sideways scroll (any grid:
wide ones choose the columns that fit and keep the rest in their Show/hide columns menu),
a grid cell longer than a column can grow, a chart's title,
axis title, tick or legend text outside its picture, and a legend drawn over the bars or
points. The failure names the page, the size and the text.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from app.calibration_view import TABS as CALIBRATION_TABS
from app.geometry_view import TABS as GEOMETRY_TABS
from app.results_view import TABS as RESULTS_TABS
from test_browser import (
    ARTIFACTS, LAYOUT_PROBLEMS_JS, PAGE_TIMEOUT_MS, PAGES, _serve, chromium_page, expect, go, no_exception, screenshot,
    settle,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CLIPPED_JS = r"""() => {
  const out = [];
  const ctx = document.createElement('canvas').getContext('2d');
  const rem = parseFloat(getComputedStyle(document.documentElement).fontSize);
  for (const grid of document.querySelectorAll('[data-testid="stDataFrame"]')) {
    if (grid.getBoundingClientRect().width === 0) continue;
    const heads = [...grid.querySelectorAll('th[role="columnheader"]')].map(h => h.textContent.trim());
    const scroller = grid.querySelector('.dvn-scroller');
    if (scroller && scroller.scrollWidth > scroller.clientWidth + 1)
      out.push(['table scrolls sideways', heads.slice(0, 3).join(', ').slice(0, 60)]);
    const style = getComputedStyle(grid.querySelector('.stDataFrameGlideDataEditor') || grid);
    ctx.font = (style.getPropertyValue('--gdg-base-font-style') || '400 14px').trim() + ' '
      + (style.getPropertyValue('--gdg-font-family') || 'sans-serif').trim();
    for (const cell of grid.querySelectorAll('td[role="gridcell"], th[role="columnheader"]')) {
      const text = cell.textContent.trim();  // wider than a column may grow (31.25 rem, less its padding)
      if (text && ctx.measureText(text).width > 31.25 * rem - 16) out.push(['table cell cut', text.slice(0, 60)]);
    }
  }
  for (const t of document.querySelectorAll('[data-testid="stTable"]')) {
    if (t.getBoundingClientRect().width > 0 && t.scrollWidth > t.clientWidth + 1)
      out.push(['table scrolls sideways', (t.innerText || '').replace(/\s+/g, ' ').slice(0, 60)]);
  }
  for (const chart of document.querySelectorAll('[data-testid="stPlotlyChart"]')) {
    const svg = chart.querySelector('.main-svg');
    const box = svg && svg.getBoundingClientRect();
    if (!box || box.width === 0) continue;
    for (const t of chart.querySelectorAll('.gtitle, .g-xtitle text, .g-ytitle text, .legendtext, .annotation-text, '
                                           + '.xtick text, .ytick text, .cbtitle text')) {
      const r = t.getBoundingClientRect();
      if (r.width > 0 && (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 || r.bottom > box.bottom + 1))
        out.push(['chart text cut', (t.textContent || '').slice(0, 60)]);
    }
    const legend = chart.querySelector('g.legend rect.bg');
    if (!legend) continue;
    const L = legend.getBoundingClientRect();
    for (const p of chart.querySelectorAll('.barlayer path, .scatterlayer .points path')) {
      const r = p.getBoundingClientRect();
      if ((r.width || r.height) && r.left < L.right && r.right > L.left && r.top < L.bottom && r.bottom > L.top) {
        out.push(['legend covers the marks', (chart.querySelector('.legendtext') || {}).textContent || '']); break; }
    }
  }
  return out;
}"""

LAZY_TABS = {"geometry": GEOMETRY_TABS, "results": RESULTS_TABS, "calibration": CALIBRATION_TABS}  # pages whose tabs are drawn only when opened
# A student's link: the teacher hid every control but the training buttons and "Side by side".
STUDENT_LINK = "shape=spirals&hide=presets,shape,classes,points,profile,ratio,noise,seed,loss,steps"


def _prepare_store(home: Path) -> dict[str, str]:
    """Tiny finished runs of every kind a page shows, trained in this process (seconds)."""
    from conftest import TINY_IMAGE_RUN, TINY_TABLE_RUN, make_run

    from core.config import RunConfig
    from core.jobs import execute_run, start_sweep
    from core.jobs._sweeps import load_sweep
    from core.lessons import create_lesson
    from core.store import RunStore

    store = RunStore(home)

    def train(run_ids) -> None:
        for run_id in run_ids:
            assert execute_run(store, store.claim(run_id, os.getpid()), embeddings=False) == "done"

    ids = {"table": make_run(home, TINY_TABLE_RUN, embeddings=False)}
    experiment = store.create_experiment(RunConfig.model_validate(
        {**TINY_TABLE_RUN, "name": "wine mlp over two seeds", "evaluation": {"seeds": [0, 1]}}))
    train(r.id for r in store.get_experiment(experiment).runs)
    ids["experiment_run"] = store.get_experiment(experiment).runs[0].id
    lesson, _, _ = start_sweep(store, create_lesson("accuracy_hides_tail", "tiny").spec)
    train(r.id for r in store.get_sweep(lesson).runs)
    sweep, _, _ = start_sweep(store, load_sweep({**TINY_TABLE_RUN, "name": "wine losses", "evaluation": {
        "seeds": [0, 1]}, "grid": {"method": {"ce": {}, "weighted_ce": {"loss.name": "weighted_ce"},
                                              "balanced_softmax": {"loss.name": "balanced_softmax"}}}}))
    train(r.id for r in store.get_sweep(sweep).runs)
    ids["sweep"] = sweep  # newest: the Sweeps page opens on it
    ids["image"] = make_run(home, TINY_IMAGE_RUN, embeddings=False)  # newest: the sidebar opens on it
    return ids


@pytest.fixture(scope="module")
def clipping_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clipping-server")
    home = folder / "home"
    home.mkdir()
    previous = os.environ.get("TAILSCOPE_HOME")
    os.environ["TAILSCOPE_HOME"] = str(home)
    try:
        ids = _prepare_store(home)
    finally:
        if previous is None:
            os.environ.pop("TAILSCOPE_HOME", None)
        else:
            os.environ["TAILSCOPE_HOME"] = previous
    with _serve(folder) as server:  # serves folder / "home"
        yield {**server, "ids": ids}


def _tour(ids: dict[str, str]) -> list[tuple[str, str | None]]:
    """(page, address) in the order a person might walk them. An address is opened as typed
    (a new page load); None is a click in the sidebar, which keeps the session (its chosen run,
    sweep and lesson, and classroom mode) and costs the browser a fraction of a page load. So
    the runs each page needs are chosen by the address just before: Results of the table run,
    then its Calibration and Post-hoc; Results of the picture run at a clinic's mix, then its
    Geometry, Gallery, Triage and Robustness; then the Gallery of the table run, whose cards hold
    tables. The newest sweep and the first lesson are the pages' own first choices."""
    prior = "prior=0.3,0.2,0.1,0.1,0.05,0.05,0.05,0.05,0.05,0.05"  # a clinic's mix
    return [("home", ""), ("data", None), ("train", None), ("runs", None), ("compare", None), ("sweeps", None),
            ("lessons", None), ("results", f"run={ids['table']}"), ("calibration", None), ("posthoc", None),
            ("results", f"run={ids['experiment_run']}"), ("results", f"run={ids['image']}&{prior}"),
            ("geometry", None), ("gallery", None), ("triage", None), ("robustness", None),
            ("gallery", f"run={ids['table']}"), ("playground", "tau=1")]  # a table run's cards: tables of values


def _shows(ids: dict[str, str]) -> dict[str, str]:
    """What the address of a page opened from the sidebar must name: the tour reached the
    sweep, lesson and runs it means to measure."""
    return {"sweeps": f"sweep={ids['sweep']}", "lessons": "lesson=accuracy_hides_tail",
            "calibration": f"run={ids['table']}", "posthoc": f"run={ids['table']}",
            **{name: f"run={ids['image']}" for name in ("geometry", "gallery", "triage", "robustness")}}


def test_no_page_cuts_text_at_1024_or_1440(clipping_server):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    url, ids = clipping_server["url"], clipping_server["ids"]
    visits = ([(1024, 768, True, page, query) for page, query in _tour(ids)]
              + [(1440, 900, False, page, query) for page, query in _tour(ids)]
              + [(1024, 768, False, "playground", STUDENT_LINK)]
              + [(1280, 800, False, "train", "")])  # a laptop with the sidebar open: the form's names were cut here
    found, tabs_seen = [], set()
    labels = {slug: (label, title) for label, slug, title in PAGES}
    shows = _shows(ids)
    with chromium_page(failure="clipping-failure", logs=(clipping_server["log"],)) as page:
        for width, height, classroom, name, query in visits:
            if page.viewport_size != {"width": width, "height": height}:
                page.set_viewport_size({"width": width, "height": height})
            if query is None:
                go(page, *labels[name])
                if name in shows:
                    expect(page).to_have_url(re.compile(re.escape(shows[name])))
            else:
                address = "&".join(q for q in (query, f"classroom={int(classroom)}") if q)
                page.goto(f"{url}/{'' if name == 'home' else name}?{address}")  # Home is the root: /home is no page
                expect(page.locator("h1").first).to_be_visible(timeout=PAGE_TIMEOUT_MS)
            settle(page)
            expect(page.locator('[data-testid="stSkeleton"]')).to_have_count(0, timeout=PAGE_TIMEOUT_MS)  # all drawn
            where = f"{name}?{query or '(from the sidebar)'} at {width}x{height}{' in classroom mode' if classroom else ''}"
            no_exception(page, where)
            found += [f"{where}: {kind}: {text!r}"
                      for kind, text in page.evaluate(LAYOUT_PROBLEMS_JS) + page.evaluate(CLIPPED_JS)]
            tabs = [] if (name, width) in tabs_seen else LAZY_TABS.get(name, ())[1:]
            tabs_seen.add((name, width))  # the same views for every run: once per page and width
            for tab in tabs:  # drawn only when opened: each measured open
                page.get_by_role("tab", name=tab, exact=True).click()
                settle(page)
                expect(page.locator('[data-testid="stSkeleton"]')).to_have_count(0, timeout=PAGE_TIMEOUT_MS)
                no_exception(page, f"{where}, tab {tab}")
                found += [f"{where}, tab {tab}: {kind}: {text!r}"
                          for kind, text in page.evaluate(LAYOUT_PROBLEMS_JS) + page.evaluate(CLIPPED_JS)]
            if name in ("lessons", "triage", "compare", "posthoc") or "hide=" in (query or ""):
                screenshot(page, f"clipping-{name}-{width}{'-classroom' if classroom else ''}")
    assert not found, "text cut off:\n" + "\n".join(found)

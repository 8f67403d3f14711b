"""How long does each page take to settle in a real browser, from a sidebar click and from a new tab?

Serves the workbench over a store holding a finished table run (an MLP on wine), a finished
picture run (a small CNN on digits) and `--runs` more table runs (logistic regression, so the
sidebar's picker and Runs list are as long as a busy store's), and a blank two-page Streamlit
app beside it (a third page of it holds one small plotly chart: what plotly's own code costs a
new tab). Every page is opened with each run selected, `--repeats` times each way:

- **new tab**: the page's address typed into a fresh tab, until the page has settled (the
  script finished, nothing stale, no spinner or placeholder, every chart drawn);
- **click**: the page's sidebar link clicked from the page before it, until settled.

Each median is also given as a ratio to the blank app's median the same way in the same run
(a fresh tab of the blank page, a click between its two pages), so the figures can be read
on a noisy machine. Chromium is Debian's (`make chromium`); nothing is downloaded.
Usage: python bench/page_speed.py [--runs 200] [--repeats 3] [--pages results,gallery]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TABLE = {"name": "wine mlp", "data": {"source": "wine", "imbalance": {"profile": "exp", "ratio": 5}},
         "model": {"name": "mlp", "hidden": 32}, "train": {"epochs": 20, "nc_every": 5}}
PICTURE = {"name": "digits small cnn", "data": {"source": "digits", "imbalance": {"profile": "exp", "ratio": 20}},
           "model": {"name": "small_cnn", "width": 8}, "train": {"epochs": 5, "nc_every": 1}}
FILLER = {"data": {"source": "wine"}, "model": {"name": "logistic_regression"}}
BLANK = '''import plotly.graph_objects as go
import streamlit as st

def page(title):
    return lambda: st.title(title)

def chart():
    st.title("Chart")
    st.plotly_chart(go.Figure(go.Bar(x=[1, 2], y=[3, 4])))

st.navigation([st.Page(page("Blank"), title="Blank", url_path="blank"),
               st.Page(page("Other"), title="Other", url_path="other"),
               st.Page(chart, title="Chart", url_path="chart")]).run()
'''
SETTLED = ('[data-testid="stStatusWidget"]', '[data-stale="true"]', '[data-testid="stSpinner"]',
           '[data-testid="stSkeleton"]')


def app_pages() -> list[tuple[str, str, str]]:
    """(sidebar label, address slug, title) of every page, read from the entry's list
    (`app/main.py` runs Streamlit when imported, so its `st.Page(...)` lines are read as text)."""
    import re

    found = re.findall(r'st\.Page\("\.\./pages/(\w+)\.py", title="([^"]+)"', (ROOT / "app" / "main.py").read_text())
    if len(found) != len(list((ROOT / "pages").glob("*.py"))):
        raise RuntimeError("app/main.py lists a page this bench cannot read; update app_pages()")
    return [(title, "home" if slug == "home" else slug, "Tailscope" if slug == "home" else title)
            for slug, title in found]


def build_store(home: Path, filler: int) -> dict[str, str]:
    """The two runs the pages open on (trained here, with their maps) and `filler` more."""
    os.environ["TAILSCOPE_HOME"] = str(home)
    from core.config import RunConfig
    from core.jobs import execute_run
    from core.store import RunStore

    store = RunStore(home)

    def train(raw: dict, embeddings: bool) -> str:
        run_id = store.create_run(RunConfig.model_validate(raw))
        assert execute_run(store, store.claim(run_id, os.getpid()), embeddings=embeddings) == "done"
        return run_id

    for i in range(filler):
        train({**FILLER, "name": f"filler {i}", "train": {"seed": i}}, embeddings=False)
        if (i + 1) % 25 == 0:
            print(f"  {i + 1}/{filler} stored runs", flush=True)
    return {"table": train(TABLE, True), "picture": train(PICTURE, True)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(script: Path, home: Path, log: Path):
    port = _free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(script), "--server.address", "127.0.0.1",
           "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "TAILSCOPE_HOME": str(home)}, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def settle(page, title: str) -> None:
    """Until the page's title shows and the run has finished drawing (charts included)."""
    from playwright.sync_api import expect

    expect(page.locator("h1").filter(has_text=title).first).to_be_visible(timeout=120_000)
    for selector in SETTLED:
        expect(page.locator(selector)).to_have_count(0, timeout=120_000)
    charts = page.locator('[data-testid="stPlotlyChart"]')
    for i in range(charts.count()):
        expect(charts.nth(i).locator(".main-svg").first).to_be_attached(timeout=120_000)


def new_tab(context, address: str, title: str) -> float:
    page = context.new_page()
    try:
        start = time.perf_counter()
        page.goto(address)
        settle(page, title)
        return time.perf_counter() - start
    finally:
        page.close()


def click(page, label: str, title: str) -> float:
    link = page.locator(f'[data-testid="stSidebarNav"] a:has(span[label="{label}"])')
    start = time.perf_counter()
    link.click()
    settle(page, title)
    return time.perf_counter() - start


def measure(context, url: str, pages: list[tuple[str, str, str]], query: str, repeats: int) -> dict[str, tuple]:
    """{slug: (new-tab median, click median)} for each page with `query` in the address."""
    found: dict[str, tuple] = {}
    tab = context.new_page()
    tab.goto(f"{url}/?{query}")
    settle(tab, "Tailscope")
    for label, slug, title in pages:
        fresh = [new_tab(context, f"{url}/{'' if slug == 'home' else slug}?{query}", title) for _ in range(repeats)]
        away = ("Runs", "Runs") if slug == "home" else ("Home", "Tailscope")
        clicks = []
        for _ in range(repeats):
            click(tab, *away)  # from another page, so the click opens this one anew
            clicks.append(click(tab, label, title))
        found[slug] = (statistics.median(fresh), statistics.median(clicks))
        print(f"  {slug:<12} new tab {found[slug][0]:5.2f} s   click {found[slug][1]:5.2f} s", flush=True)
    tab.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="stored runs besides the two the pages open on")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pages", default="", help="comma-separated slugs (default: every page)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from playwright import sync_api

    folder = Path(tempfile.mkdtemp(prefix="page-speed-"))
    home = folder / "home"
    print(f"building the store: a table run, a picture run and {args.runs} more…", flush=True)
    started = time.perf_counter()
    ids = build_store(home, args.runs)
    print(f"  built in {time.perf_counter() - started:.0f} s", flush=True)
    pages = app_pages()
    if args.pages:
        wanted = set(args.pages.split(","))
        pages = [p for p in pages if p[1] in wanted]
    (folder / "blank.py").write_text(BLANK)
    with serve(folder / "blank.py", home, folder / "blank.log") as blank_url, \
            serve(ROOT / "app" / "main.py", home, folder / "app.log") as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        context.set_default_timeout(120_000)
        new_tab(context, url, "Tailscope")  # the server's first page pays its imports: not a page's cost
        blank_tab = statistics.median(new_tab(context, blank_url, "Blank") for _ in range(args.repeats))
        page = context.new_page()
        page.goto(blank_url)
        settle(page, "Blank")
        blank_click = statistics.median(click(page, "Other" if i % 2 == 0 else "Blank", "Other" if i % 2 == 0 else "Blank")
                                        for i in range(2 * args.repeats))
        page.close()
        chart_tab = statistics.median(new_tab(context, f"{blank_url}/chart", "Chart") for _ in range(args.repeats))
        print(f"blank Streamlit page: new tab {blank_tab:.2f} s, click {blank_click:.2f} s; with one plotly chart: "
              f"new tab {chart_tab:.2f} s (the browser loads plotly's code once per tab)", flush=True)
        results = {}
        for kind in ("table", "picture"):
            print(f"{kind} run selected:", flush=True)
            results[kind] = measure(context, url, pages, f"run={ids[kind]}", args.repeats)
        browser.close()
    print(f"\nmedian of {args.repeats}, {args.runs + 2} runs in the store; ratio to the blank page the same way")
    print(f"{'page':<20}{'run':<9}{'new tab (s)':>12}{'ratio':>7}{'click (s)':>11}{'ratio':>7}")
    for kind, found in results.items():
        for slug, (fresh, clicked) in found.items():
            print(f"{slug:<20}{kind:<9}{fresh:>12.2f}{fresh / blank_tab:>7.1f}{clicked:>11.2f}"
                  f"{clicked / blank_click:>7.1f}")


if __name__ == "__main__":
    main()

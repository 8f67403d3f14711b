"""One real-browser journey: Debian's Chromium, driven by Playwright, against `streamlit run`.

Upload a CSV on the Data page, make it long-tailed and save it; train two epochs on the
Train page; open the run's results; then visit every page in the sidebar. Every page must
render without an exception, and the browser must never talk to a host other than the
local server. Full-page screenshots land in `test-artifacts/browser/` for a person to look at.

A second journey brings a patient table as clinics export it (an ID column, empty cells),
accepts the suggested column roles and gap filling, trains, and reads the Results page's
sample list in the file's own units (mg/dl, the category names).

A third visits every page over runs whose names, class labels, column names and file name
are markdown, HTML and plotly markup: each must read as written, and none may become an
element or a request to another host.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from playwright import sync_api  # requirements-test.txt: a missing package fails, never skips

from app.results_view import TABS as RESULTS_TABS

# Each test starts its own Chromium; those on `shared_server` run on one xdist worker (the
# "browser-shared" group) so they share its server; the others spread over both workers.
pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}

# Every page in the sidebar, in order: (nav label, file-name slug, text of its title).
PAGES = [
    ("Home", "home", "Tailscope"),
    ("Data", "data", "Data"),
    ("Train", "train", "Train"),
    ("Runs", "runs", "Runs"),
    ("Results", "results", "Results"),
    ("Compare", "compare", "Compare"),
    ("Geometry", "geometry", "Geometry"),
    ("Calibration", "calibration", "Calibration"),
    ("Post-hoc explorer", "posthoc", "Post-hoc explorer"),
    ("Error gallery", "gallery", "Error gallery"),
    ("Rare-class triage", "triage", "Rare-class triage"),
    ("Robustness", "robustness", "Robustness"),
    ("Sweeps", "sweeps", "Sweeps"),
    ("Playground", "playground", "Playground"),
    ("Lessons", "lessons", "Lessons"),
]
CLASSES = ["alpha", "beta", "gamma", "delta"]
ROWS = 400
EPOCHS = 2
RATIO = 10  # the imbalance ratio the journey sets with the keyboard (the page's default is 50)

HEALTH_TIMEOUT_S = 60
TRAIN_TIMEOUT_S = 180
PAGE_TIMEOUT_MS = 90_000  # one page render on a busy 2-core machine (the worker may be running UMAP)
EXPECT_TIMEOUT_MS = 30_000  # a widget or text showing up after the page has settled

expect = sync_api.expect


# --- the server and its worker ------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with {proc.returncode} before answering:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.25)
    pytest.fail(f"{url}/_stcore/health did not answer 'ok' within {HEALTH_TIMEOUT_S} s:\n{_tail(log)}")


def _tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return f"({path} not readable)"


def _worker_pids(home: Path) -> set[int]:
    """Worker processes serving `home`: the store's records plus a scan for its command line.

    The app starts the worker in its own session (`ensure_worker`), so it is not the
    server's process group and must be found and stopped one PID at a time."""
    pids: set[int] = set()
    if (home / "tailscope.db").exists():
        from core.store import RunStore

        store = RunStore(home)
        pids.update(store.live_workers())
        pids.update(r.worker_pid for r in store.list_runs() if r.worker_pid)
    for proc_dir in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc_dir / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv]
        if "core.jobs" in args and "--home" in args and str(home) in args:
            pids.add(int(proc_dir.name))
    pids.discard(os.getpid())
    return pids


def _stop_pids(pids: set[int], grace_s: float = 10) -> None:
    from core.store import pid_alive

    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = {pid for pid in pids if pid_alive(pid)}
        for pid in alive:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace_s
        while alive and time.monotonic() < deadline:
            alive = {pid for pid in alive if pid_alive(pid)}
            time.sleep(0.1)
        if not alive:
            return


@pytest.fixture(autouse=True)
def chromium_installed():
    """`make test` installs Debian's Chromium: a missing browser is a broken set-up, so every
    browser test fails with how to install it, never skips."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` (or apt-get install chromium) installs it")


@contextlib.contextmanager
def _serve(folder: Path):
    """`streamlit run app/main.py` on a free local port with a fresh TAILSCOPE_HOME in `folder`;
    afterwards no worker process of that home may be left running."""
    home = (folder / "home").resolve()
    home.mkdir(exist_ok=True)  # a test may have prepared runs in it
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = folder / "server.log"
    env = {**os.environ, "TAILSCOPE_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.address", "127.0.0.1",
           "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
           # others edit pages while this runs: a "source changed" prompt must not appear mid-journey
           "--server.fileWatcherType", "none", "--server.runOnSave", "false"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        _wait_healthy(url, proc, log)
        yield {"url": url, "home": home, "log": log}
    finally:
        workers = _worker_pids(home)
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        _stop_pids(workers | _worker_pids(home))
        from core.store import pid_alive

        leftover = {pid for pid in _worker_pids(home) if pid_alive(pid)}
        assert not leftover, f"worker processes still running after the test: {sorted(leftover)}"


@pytest.fixture
def app_server(tmp_path):
    """A server of its own, over an empty store, for a test that needs the store to itself."""
    with _serve(tmp_path) as server:
        yield server


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One server for the tests that only add runs or lessons of their own and open them by
    their address, whatever else the store holds: each server's start and first page cost
    about 15 s of CPU."""
    with _serve(tmp_path_factory.mktemp("shared-server")) as server:
        yield server


# --- the data -----------------------------------------------------------------------------

def write_csv(path: Path, seed: int = 7) -> Path:
    """ROWS rows, four numeric features and a text label column (four well separated classes).

    The label column is neither last nor first, so the page's guess has to find it by name."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0, 0, 0], [4, 0, 2, -2], [0, 4, -2, 2], [4, 4, 3, 3]], dtype=float)
    y = rng.permutation(np.arange(ROWS) % len(CLASSES))
    x = centres[y] + rng.normal(scale=0.8, size=(ROWS, 4))
    lines = ["width,height,label,depth,weight"]
    for row, cls in zip(x, y):
        lines.append(f"{row[0]:.4f},{row[1]:.4f},{CLASSES[cls]},{row[2]:.4f},{row[3]:.4f}")
    path.write_text("\n".join(lines) + "\n")
    return path


# --- page helpers -------------------------------------------------------------------------

def set_slider(page, slider, target: int, max_presses: int = 400) -> None:
    """Walk a slider to `target` with the arrow keys, one press per settled rerun: presses sent
    while a rerun is in flight can be lost, so re-read the value after each one."""
    if target < int(float(slider.input_value())) / 2:  # nearer the minimum: start there
        slider.focus()
        slider.press("Home")
        settle(page)
    for _ in range(max_presses):
        value = int(float(slider.input_value()))
        if value == target:
            return
        slider.focus()
        slider.press("ArrowRight" if value < target else "ArrowLeft")
        settle(page)
    raise AssertionError(f"the slider did not reach {target} (at {slider.input_value()})")


@contextlib.contextmanager
def chromium_page(requests: list[str] | None = None, *, failure: str | None = None, logs: Sequence[Path] = ()):
    """A page of Debian's Chromium with the suite's timeouts; every request and websocket
    goes to `requests` when given. If the body fails, a `failure` screenshot is taken and the
    `logs` printed before the error goes on."""
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            # Reduced motion: Streamlit's transitions and spinners skip their frames, and Chromium's
            # GPU process draws fewer: 0.7 rather than 2.9 CPU-s over eight page loads, 2.5 rather
            # than 5.5 over the clipping tour (layout, fonts and sizes are the same).
            context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True,
                                          reduced_motion="reduce")
            if requests is not None:
                context.on("request", lambda r: requests.append(r.url))
            page = context.new_page()
            if requests is not None:
                page.on("websocket", lambda ws: requests.append(ws.url))
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            expect.set_options(timeout=EXPECT_TIMEOUT_MS)
            try:
                yield page
            except BaseException:
                if failure:
                    try:
                        screenshot(page, failure, always=True)
                    except (sync_api.Error, OSError) as exc:  # never hide the journey's own error
                        print(f"no failure screenshot: {exc}")
                for log in logs:
                    print(f"{log}:\n{_tail(log)}")
                raise
        finally:
            browser.close()


def pick_option(page, combobox, name: str, tries: int = 4) -> None:
    """Open a selectbox and choose `name`, until the box shows it. A click that lands while
    the page re-renders can leave the list closed (the box takes the focus, the list does not
    open), or close the open list before the option is clicked: then settle and try again,
    each try waiting longer (2, 6, 18, 54 s)."""
    option = page.get_by_role("option", name=name, exact=True)
    for attempt in range(tries):
        wait = 2_000 * 3 ** attempt
        try:
            # Scrolled into view first: a click that must scroll the box into view while another
            # box holds the focus leaves its list closed (5 of the journeys' 13 picks failed their
            # first try so, 2 s each; none since). A person scrolls, then clicks.
            combobox.scroll_into_view_if_needed(timeout=wait)
            combobox.click(timeout=wait)
            expect(option).to_be_visible(timeout=wait)
            option.click(timeout=wait)
            expect(combobox).to_have_value(name, timeout=wait)
            return
        except (AssertionError, sync_api.TimeoutError):
            if attempt == tries - 1:
                raise
            page.keyboard.press("Escape")
            settle(page)


def fill_numbers(page, values: dict[str, object]) -> None:
    """Type each number box's value (by its label) and press Enter, one settled rerun each."""
    for label, value in values.items():
        box = page.get_by_label(label, exact=True)
        box.fill(str(value))
        box.press("Enter")
        settle(page)
        expect(box).to_have_value(str(value))


def start_training(page, home: Path, timeout_s: float = 60) -> None:
    """Press "Start training" and wait until the store holds the new runs. A click that lands
    while the page reruns can be dropped (the button then does nothing), so if nothing was
    queued after `timeout_s` / 2 the button is pressed once more."""
    from core.store import RunStore

    store = RunStore(home)
    before = len(store.list_runs())
    for attempt in range(2):
        page.get_by_role("button", name="Start training").click()
        deadline = time.monotonic() + timeout_s / 2
        while time.monotonic() < deadline:
            if len(store.list_runs()) > before:
                settle(page)
                expect(page.get_by_text("Queued", exact=False).first).to_be_visible()
                return
            time.sleep(0.25)
        settle(page)
    pytest.fail(f"nothing was queued after pressing Start training twice ({before} runs in the store)")


def settle(page, timeout_ms: int = PAGE_TIMEOUT_MS) -> None:
    """Wait until Streamlit has finished the current script run, as Streamlit's own browser
    tests do: a short pause for a just-triggered rerun to begin (some widgets debounce for
    200 ms), then the app's script state "notRunning", no running indicator, no stale element
    and no spinner, then a moment for the last paint (later checks wait for what they look
    for; this pause only spares them a frame drawn half-way)."""
    page.wait_for_timeout(210)
    expect(page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]')).to_have_count(
        1, timeout=timeout_ms)
    for selector in ('[data-testid="stStatusWidget"]', '[data-stale="true"]', '[data-testid="stSpinner"]'):
        expect(page.locator(selector)).to_have_count(0, timeout=timeout_ms)
    page.wait_for_timeout(100)


def no_exception(page, where: str) -> None:
    """No exception on the page, and no "Page not found" notice over it (an address that names
    no page opens Home underneath, so everything else would seem fine)."""
    errors = page.locator('[data-testid="stException"]')
    if errors.count():
        pytest.fail(f"{where}: the page shows an exception:\n" + "\n---\n".join(errors.all_inner_texts()))
    if page.get_by_text("Page not found", exact=True).count():
        pytest.fail(f"{where}: Streamlit says the page was not found ({page.url})")


def go(page, label: str, title: str) -> None:
    """Open a page from the sidebar (client-side: the session, and its saved data, stay). A
    click that lands while the current page reruns (a progress box polls every 2 s) can be
    dropped by Streamlit with the link already marked: click again until the page changes."""
    link = page.locator(f'[data-testid="stSidebarNav"] a:has(span[label="{label}"])')
    heading = page.locator("h1").filter(has_text=title)
    for _ in range(3):
        link.click()
        try:
            expect(heading).to_be_visible(timeout=EXPECT_TIMEOUT_MS)
            break
        except AssertionError:
            settle(page)
    expect(heading).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    settle(page)


def screenshot(page, name: str, *, always: bool = False) -> Path | None:
    """A full-page PNG in test-artifacts/browser/, when TAILSCOPE_SCREENSHOTS=1 asks for the
    pictures of every page visited (each costs a re-layout at full height and an encode) or
    `always` (a failure's picture). Streamlit scrolls inside its main container, not the
    document, so the viewport is stretched to the content's height for the picture."""
    if not (always or os.environ.get("TAILSCOPE_SCREENSHOTS") == "1"):
        return None
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    viewport = page.viewport_size
    height = page.evaluate("""() => {
        const main = document.querySelector('[data-testid="stMain"]') || document.scrollingElement;
        return Math.max(main.scrollHeight, document.scrollingElement.scrollHeight, window.innerHeight);
    }""")
    page.set_viewport_size({"width": viewport["width"], "height": min(int(height) + 20, 12_000)})
    try:
        page.wait_for_timeout(400)  # charts re-layout to the new size
        page.screenshot(path=str(path), full_page=True)
    finally:
        page.set_viewport_size(viewport)
    return path


def widget(page, testid: str, label: str):
    """The Streamlit widget of a kind whose label is exactly `label`."""
    return page.get_by_test_id(testid).filter(
        has=page.get_by_test_id("stWidgetLabel").get_by_text(label, exact=True))


def run_card(page, name: str):
    """The live panel's card of the run named `name`: the innermost block that holds the row
    with its name (strict: a second copy of the card on the page fails the locator)."""
    row = page.get_by_test_id("stHorizontalBlock").filter(has=page.get_by_text(name, exact=True))
    blocks = page.get_by_test_id("stVerticalBlock").filter(has=row)
    return blocks.filter(has_not=page.get_by_test_id("stVerticalBlock").filter(has=row))


def upload_on_data_page(page, path: Path) -> None:
    """From any page: open Data, choose "Upload a file" and give it `path`, as a person would."""
    go(page, "Data", "Data")
    widget(page, "stRadio", "Data source").get_by_text("Upload a file", exact=True).click()
    uploader = page.get_by_label("Upload a file", exact=True).get_by_test_id("stFileUploaderDropzoneInput")
    uploader.wait_for(state="attached")
    uploader.set_input_files(str(path))


def wait_for_run(home: Path, timeout_s: float = TRAIN_TIMEOUT_S, *, away=None):
    """Every run in the store finished. `away`, a page whose next step opens its page by
    address anyway, waits on a blank page: the Train page's live panel redraws its charts
    every second, which here takes a third of a core from the training being waited on."""
    from core.store import FINISHED, RunStore

    if away is not None:
        away.goto("about:blank")
    store = RunStore(home)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = store.list_runs()
        if runs and all(r.status in FINISHED for r in runs):
            return runs
        time.sleep(0.5)
    pytest.fail(f"the run did not finish within {timeout_s} s: "
                f"{[(r.name, r.status, r.progress) for r in store.list_runs()]}\n"
                f"worker log:\n{_tail(home / 'worker.log')}")


# --- the journey --------------------------------------------------------------------------

def test_upload_train_and_open_the_results(app_server, tmp_path):
    # overwrite in place (no rmtree): another checkout's test run may be writing here too
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "failure.png").unlink(missing_ok=True)
    csv = write_csv(tmp_path / "shapes.csv")
    url, home = app_server["url"], app_server["home"]
    requests: list[str] = []
    shots = iter(range(1, 100))

    def shot(name: str) -> None:
        screenshot(page, f"{next(shots):02d}-{name}")

    with chromium_page(requests, failure="failure", logs=(app_server["log"], home / "worker.log")) as page:
        _journey(page, url, home, csv, shot)

    outside = sorted({u for u in requests
                      if urlparse(u).scheme not in ("data", "blob", "about")
                      and urlparse(u).hostname not in LOCAL_HOSTS})
    assert requests, "no requests were recorded"
    assert not outside, f"the page reached outside hosts: {outside}"


def _journey(page, url: str, home: Path, csv: Path, shot) -> None:
    page.goto(url)
    expect(page.locator("h1").filter(has_text="Tailscope")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    settle(page)
    no_exception(page, "Home (first load)")

    # 1. Data: upload the CSV, check the label guess, make it long-tailed, save it.
    upload_on_data_page(page, csv)
    label_box = page.get_by_role("combobox", name="Label column (the class to predict)")
    expect(label_box).to_be_visible()
    settle(page)
    no_exception(page, "Data after the upload")
    expect(label_box).to_have_value("label")  # found by name, though it is neither first nor last
    expect(page.get_by_text(f"Preview: {ROWS:,} samples, {len(CLASSES)} classes, tabular")).to_be_visible()

    profile = widget(page, "stRadio", "Profile")
    profile.get_by_text("exponential", exact=True).click()
    settle(page)
    expect(profile.get_by_role("radio", name="exponential")).to_be_checked()
    expect(page.get_by_text("Exponential", exact=False).first).to_be_visible()

    ratio = widget(page, "stSlider", "Imbalance ratio (largest ÷ smallest class)").get_by_role("slider")
    set_slider(page, ratio, RATIO)
    expect(ratio).to_have_value(str(RATIO))
    expect(page.get_by_text(f"about 1/{RATIO} as many examples")).to_be_visible()
    expect(page.locator('[data-testid="stPlotlyChart"] .main-svg').first).to_be_visible()
    no_exception(page, "Data with the exp profile")

    page.get_by_role("button", name="Use this dataset for training").click()
    settle(page)
    expect(page.get_by_text("The Train page uses this dataset")).to_be_visible()
    expect(page.get_by_test_id("stSidebar").get_by_text(f"exp, ratio {RATIO:g}")).to_be_visible()
    no_exception(page, "Data after saving")
    shot("data-uploaded")

    # 2. Train: two epochs of the default model (an MLP for a table), then wait for the run.
    go(page, "Train", "Train")
    expect(page.get_by_text("shapes.csv", exact=False).first).to_be_visible()
    expect(page.get_by_role("combobox", name="Model", exact=True)).to_have_value("Multi-layer perceptron (MLP)")
    epochs = page.get_by_label("Epochs", exact=True)
    epochs.fill(str(EPOCHS))
    epochs.press("Enter")
    settle(page)
    expect(epochs).to_have_value(str(EPOCHS))
    start_training(page, home)
    expect(page.get_by_text("Your runs")).to_be_visible()
    shot("train-started")
    runs = wait_for_run(home)
    assert [r.status for r in runs] == ["done"], [(r.status, r.error) for r in runs]
    assert runs[0].config["train"]["epochs"] == EPOCHS
    assert runs[0].config["data"]["imbalance"]["profile"] == "exp"
    card = run_card(page, runs[0].name)
    expect(card.get_by_text("Finished: balanced accuracy")).to_be_visible()  # the live panel caught up, once
    settle(page)
    no_exception(page, "Train after the run")
    expect(page.get_by_test_id("stSidebar").get_by_role("combobox", name="Run")).to_have_value(re.compile("^✅ done"))
    shot("train-finished")

    # 3. Results of that run, from the run card's button.
    card.get_by_role("link", name="Open its results").click()
    expect(page.locator("h1").filter(has_text="Results")).to_be_visible()
    expect(page.locator('[data-testid="stPlotlyChart"] .main-svg').first).to_be_visible()
    settle(page)
    no_exception(page, "Results")
    expect(page.get_by_text("Which classes get confused")).to_be_visible()
    matrix = page.locator('[data-testid="stPlotlyChart"]').first  # the confusion matrix: a heatmap of classes
    expect(matrix.locator(".hm")).to_have_count(1)
    expect(matrix.locator(".ytitle")).to_have_text("true class")
    expect(matrix.locator(".xtitle")).to_have_text("predicted class")
    for name in CLASSES:
        expect(matrix.locator(".xtick", has_text=name)).to_have_count(1)
    shot("results-of-the-run")
    # Every other page is opened over an uploaded table's runs by the hostile-names tour below
    # and, at two sizes, by tests/test_browser_clipping.py: not again here.


# --- a real table: an ID column, gaps, original units on the Results page -------------------



def grid(frame) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of an st.dataframe from the grid's accessible table."""
    headers = frame.locator('[role="columnheader"]').all_text_contents()
    cells = frame.locator('[role="gridcell"]').all_text_contents()
    return headers, [cells[i:i + len(headers)] for i in range(0, len(cells), len(headers))]


# --- hostile names: markup in every name a person or a file supplies ------------------------

OUTSIDE_HOST = "203.0.113.9"  # in the hostile names' image and link URLs (TEST-NET-3: reaches nothing)


@pytest.fixture
def hostile_server(app_server):
    """The server over a store, made with the `core` API, holding two finished runs whose
    names, class labels, column names and file name are markup (conftest's HOSTILE_*)."""
    from conftest import make_hostile_runs

    return {**app_server, **make_hostile_runs(app_server["home"], embeddings=True)}


def test_hostile_names_show_as_text_on_every_page(hostile_server):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    requests: list[str] = []
    with chromium_page(requests, failure="hostile-failure", logs=(hostile_server["log"],)) as page:
        _hostile_tour(page, hostile_server["url"])
    outside = sorted({u for u in requests if urlparse(u).scheme not in ("data", "blob", "about")
                      and urlparse(u).hostname not in LOCAL_HOSTS})
    assert requests and not outside, f"the page reached outside hosts: {outside}"


def _hostile_tour(page, url: str) -> None:
    from conftest import HOSTILE_CLASSES, HOSTILE_FILE, HOSTILE_LABEL_COLUMN, HOSTILE_RUN_NAMES

    run, other_run = HOSTILE_RUN_NAMES
    # What each page must show as written (besides the sidebar's file name, on every page).
    literal = {"home": [run], "data": [HOSTILE_LABEL_COLUMN, *HOSTILE_CLASSES], "train": [], "runs": [run],
               "results": [run, *HOSTILE_CLASSES], "compare": [run, other_run], "geometry": HOSTILE_CLASSES,
               "calibration": HOSTILE_CLASSES, "posthoc": HOSTILE_CLASSES, "gallery": HOSTILE_CLASSES[1:3],
               "triage": [], "robustness": [run], "sweeps": [], "playground": [], "lessons": []}
    page.goto(url)
    expect(page.locator("h1").filter(has_text="Tailscope")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    settle(page)
    for label, slug, title in PAGES:
        go(page, label, title)
        no_exception(page, label)
        missing = _not_shown(page, [*literal[slug], *([HOSTILE_FILE] if slug != "playground" else [])])
        screenshot(page, f"hostile-{slug}")
        _no_injected_elements(page, label)
        assert not missing, f"{label}: not shown as written: {missing}"
        if slug == "results":  # its lower tabs are drawn when opened: the names in their legends too
            for tab in RESULTS_TABS[1:]:
                page.get_by_role("tab", name=tab, exact=True).click()
                settle(page)
                no_exception(page, f"{label}, tab {tab}")
                _no_injected_elements(page, f"{label}, tab {tab}")


def _no_injected_elements(page, where: str) -> None:
    """Nothing a name holds became an element: no image or link to the outside host, no bold,
    italic or coloured name, no script (markdown, HTML and plotly markup all read as text)."""
    checks = {
        "an image or link to the outside host": page.locator(f"img[src*='{OUTSIDE_HOST}'], a[href*='{OUTSIDE_HOST}']"),
        "an <img> from a name": page.locator("img[src='x']"),
        "a name in bold or italics": page.locator("b, strong, i, em, tspan").filter(
            has_text=re.compile(r"^(bold|width|run|shout|label)$")),
        "a coloured name": page.locator("[class*='stMarkdownColored']").filter(
            has_text=re.compile(r"^(rare|depth|second)$")),
    }
    for what, locator in checks.items():
        assert locator.count() == 0, f"{where}: {what}: {locator.first.evaluate('e => e.outerHTML')}"
    scripts = page.evaluate("() => [...document.scripts].filter(s => s.textContent.includes('alert(1)')).length")
    assert scripts == 0, f"{where}: a script from a name"


def _not_shown(page, texts: list[str], timeout_ms: int = EXPECT_TIMEOUT_MS) -> list[str]:
    """Which of `texts` the page does not show as written, after waiting for them (charts
    draw a moment after the page settles)."""
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        shown = _shown_text(page)
        missing = [t for t in texts if t not in shown]
        if not missing or time.monotonic() > deadline:
            return missing
        page.wait_for_timeout(250)


def _shown_text(page) -> str:
    """The page's visible text and its charts' text, with the invisible word joiners that
    keep names from being rewritten (core.text.md) taken out. A chart label broken into lines
    (plotly's <tspan class="line">, where a long title or name wraps at a space) reads with
    the space back."""
    return page.evaluate("""() => [document.body.innerText,
        ...[...document.querySelectorAll('svg text')].map(t => {
            const lines = [...t.querySelectorAll('tspan.line')];
            return lines.length ? lines.map(l => l.textContent).join(' ') : t.textContent;
        })].join('\\n').replaceAll('\\u2060', '')""")


def test_open_results_of_a_finished_run_while_another_trains(app_server):
    """The run card's "Open its results" from the live panel (a fragment that polls while a run
    trains) used to leave Results blank; it is a plain ?run= link now, and the sidebar follows."""
    from core.config import RunConfig
    from core.jobs import execute_run
    from core.store import RunStore

    home = app_server["home"]
    store = RunStore(home)
    finished = store.create_run(RunConfig.model_validate({
        "name": "finished wine baseline", "data": {"source": "wine"}, "model": {"name": "logistic_regression"}}))
    assert execute_run(store, store.claim(finished, os.getpid()), embeddings=False) == "done"
    long_run = store.create_run(RunConfig.model_validate({
        "name": "long digits", "data": {"source": "digits"}, "model": {"name": "small_cnn", "width": 8},
        "train": {"epochs": 2000, "min_steps": 0, "nc_every": 0}}))
    # Running as far as every page can tell: claimed by this process, alive all along, at epoch 3.
    # The panel polls on the status; training it for real would only take a core from the pages.
    store.claim(long_run, os.getpid())
    store.set_progress(long_run, {"stage": "train", "epoch": 3, "epochs": 2000, "fraction": 0.0015})
    try:
        with chromium_page() as page:
            page.goto(f"{app_server['url']}/train")
            expect(page.get_by_text("long digits").first).to_be_visible(timeout=PAGE_TIMEOUT_MS)  # a first render
            for _ in range(2):  # twice: it used to fail on every try
                page.get_by_role("link", name="Open its results").first.click()
                expect(page.locator("h1").filter(has_text="Results")).to_be_visible()
                expect(page.get_by_text("finished wine baseline").first).to_be_visible()
                expect(page.get_by_test_id("stMetric").first).to_be_visible()
                assert f"run={finished}" in page.url
                no_exception(page, "Results while another run trains")
                page.goto(f"{app_server['url']}/train")
                expect(page.get_by_text("long digits").first).to_be_visible()
        assert store.get(long_run).status == "running", "the other run was running all along, so the panel polled"
    finally:
        store.mark_cancelled(long_run, "the test is over")


# --- rare-class triage: a prevalence, a threshold, a reviewed case, the report ---------------

REVIEW_NOTE = "<b>odd</b> stroke, ask the lab"


@pytest.mark.xdist_group("browser-shared")
def test_triage_prevalence_threshold_review_and_report(shared_server):
    """A clinician's path: set the diagnosis to 3 % of cases, lower the threshold, save that
    operating point; mark a rare-class error in the gallery with a note; download the report,
    which carries the note (as text) and the saved operating point."""
    from conftest import TINY_IMAGE_RUN, make_run

    from core.store import RunStore

    run_id = make_run(shared_server["home"], TINY_IMAGE_RUN, embeddings=False)
    store = RunStore(shared_server["home"])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium_page(failure="triage-failure", logs=(shared_server["log"],)) as page:
        _triage_tour(page, shared_server["url"], run_id, store)


def _metric_value(page, label: str) -> str:
    return page.get_by_test_id("stMetric").filter(has_text=label).first.get_by_test_id("stMetricValue").inner_text()


def _triage_tour(page, url: str, run_id: str, store) -> None:
    page.goto(f"{url}/triage?run={run_id}")
    expect(page.locator("h1").filter(has_text="Rare-class triage")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    settle(page)
    no_exception(page, "Rare-class triage")
    slider = page.get_by_role("slider", name=re.compile("Flag a case when"))
    before = float(slider.input_value())
    slider.focus()
    slider.press("Home")  # flag (nearly) everyone: the tiny model is unsure of its rarest class
    settle(page)
    for _ in range(5):
        slider.focus()
        slider.press("ArrowRight")
        settle(page)
    after = float(slider.input_value())
    assert 0 < after < before, (before, after)

    ppv_before = _metric_value(page, "PPV")
    prevalence = page.get_by_role("spinbutton", name="How common is it in your setting (%)")
    prevalence.fill("3")
    prevalence.press("Enter")
    settle(page)
    expect(page.get_by_text(re.compile(r"of 1,000 cases where 3 % are"))).to_be_visible()
    assert _metric_value(page, "PPV") != ppv_before, f"the PPV follows the prevalence ({ppv_before})"
    page.get_by_role("button", name="Save this operating point with the run").click()
    settle(page)
    expect(page.get_by_text("Saved with the run").first).to_be_visible()
    saved = store.annotation(run_id, "operating_point")
    assert saved["prevalence"] == pytest.approx(0.03) and saved["threshold"] == pytest.approx(after, abs=1e-6)
    screenshot(page, "triage-operating-point")

    page.goto(f"{url}/gallery?run={run_id}")
    expect(page.locator("h1").filter(has_text="Error gallery")).to_be_visible()
    settle(page)
    no_exception(page, "Error gallery")
    page.get_by_text("Review this case").first.click()
    # The verdict is a radio in the opened form: click its label until its input says
    # checked (a click that lands while the expander still opens selects nothing).
    first_form = page.get_by_test_id("stForm").first
    verdict = first_form.get_by_test_id("stRadio").get_by_text("label looks wrong", exact=True)
    for _ in range(5):
        verdict.click()
        if first_form.locator('input[type="radio"]').first.is_checked():
            break
        page.wait_for_timeout(500)
    expect(first_form.locator('input[type="radio"]').first).to_be_checked()
    page.get_by_role("textbox", name="Note (optional)").first.fill(REVIEW_NOTE)
    page.get_by_role("button", name="Save review").first.click()
    settle(page)
    expect(page.get_by_text("Saved: label looks wrong").first).to_be_visible()
    (case,) = store.annotation(run_id, "reviews")["cases"].values()
    assert case["mark"] == "label looks wrong" and case["note"] == REVIEW_NOTE
    screenshot(page, "triage-reviewed-case")

    button = page.get_by_role("button", name=re.compile(r"as an HTML report"))
    with page.expect_download() as download:
        button.click()
    html = Path(download.value.path()).read_text()
    assert "Case reviews" in html and "Saved operating point" in html
    assert "&lt;b&gt;odd&lt;/b&gt; stroke, ask the lab" in html and REVIEW_NOTE not in html, "the note reads as text"


# --- classroom mode: the Playground on a projector's 1024x768 --------------------------------

# Each visible label, button, caption, metric and input in the page, checked for text it
# cuts off (wider than its box, or an ellipsis) and for words split across two lines (a
# word's rectangles on more than one line; breaks at a hyphen are fine). Plots, tables and
# code are left out: they scroll or scale on their own.
LAYOUT_PROBLEMS_JS = r"""() => {
  const out = [];
  const skip = '[data-testid="stPlotlyChart"], [data-testid="stDataFrame"], [data-testid="stCode"], pre, svg, canvas, '
    + '[data-testid="stSliderThumbValue"]';  // a slider's value sits above its thumb, wider than it by design
  const right = document.documentElement.clientWidth;
  for (const root of document.querySelectorAll('[data-testid="stMain"], [data-testid="stSidebarUserContent"]')) {
    for (const el of root.querySelectorAll('*')) {
      if (el.closest(skip)) continue;
      const own = [...el.childNodes].filter(n => n.nodeType === 3).map(n => n.data).join('').trim();
      const box = el.getBoundingClientRect();
      if (!/[\p{L}\p{N}]/u.test(own) || box.width === 0 || box.height === 0) continue;
      const text = own.replace(/\s+/g, ' ').slice(0, 50);
      if (box.right > right + 1) out.push(['off screen', text]);
      for (let a = el, i = 0; a && i < 3; a = a.parentElement, i++) {  // its box, or a near one, too narrow
        const s = getComputedStyle(a);
        if (s.display !== 'inline' && !['auto', 'scroll'].includes(s.overflowX) && a.scrollWidth > a.clientWidth + 1) {
          out.push([s.textOverflow === 'ellipsis' ? 'ellipsis' : 'cut off', text]); break; }
      }
      for (let a = el.parentElement; a && a !== root; a = a.parentElement) {  // a box further out hides part of it
        const s = getComputedStyle(a), outer = a.getBoundingClientRect();
        if (['hidden', 'clip'].includes(s.overflowX) && (box.right > outer.right + 1 || box.left < outer.left - 1)) {
          out.push(['hidden by its box', text]); break; }
      }
      for (const node of el.childNodes) {
        if (node.nodeType !== 3) continue;
        for (const m of node.data.matchAll(/[^\s\u200b\u2060-]{2,}/g)) {
          const range = document.createRange();
          range.setStart(node, m.index); range.setEnd(node, m.index + m[0].length);
          const lines = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
          if (lines.size > 1) out.push(['word broken', m[0]]);
        }
      }
    }
  }
  for (const el of document.querySelectorAll('[data-testid="stMain"] input')) {
    if (el.getBoundingClientRect().width > 0 && !['checkbox', 'radio'].includes(el.type)
        && el.scrollWidth > el.clientWidth + 1) out.push(['value cut off', el.value.slice(0, 50)]);
  }
  for (const el of document.querySelectorAll('[data-testid="stButtonGroup"] *')) {
    if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(el).overflowX) && el.scrollWidth > el.clientWidth + 1)
      out.push(['options hidden', (el.innerText || '').replace(/\s+/g, ' ').slice(0, 50)]);
  }
  return out;
}"""


def _widget_labels_fit(page, where: str) -> None:
    """Every widget label on one box: nothing scrolls out of it, and a single-word label
    takes one line (its height is that of one line of its text)."""
    labels = page.evaluate("""() => [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stWidgetLabel"]')]
        .filter(l => l.getBoundingClientRect().width > 0)
        .map(l => { const p = l.querySelector('p') || l; const lh = parseFloat(getComputedStyle(p).lineHeight);
                    return [p.innerText.trim(), l.scrollWidth, l.clientWidth, p.getBoundingClientRect().height, lh]; })""")
    assert labels, f"{where}: no widget labels found"
    for text, scroll, client, height, line in labels:
        assert scroll <= client + 1, f"{where}: the label {text!r} is cut off ({scroll} > {client} px)"
        if text and " " not in text and line > 0:
            assert height < 1.5 * line, f"{where}: the one-word label {text!r} wraps ({height:.0f} px, line {line})"


@pytest.mark.xdist_group("browser-shared")
def test_playground_fits_a_projector_in_classroom_mode(shared_server):
    """A teacher's projector: 1024x768, classroom mode from the address. Every control of the
    Playground shows its whole label, no word breaks in the middle, no option of a segmented
    control is hidden; before and after training, and the mode survives a page switch."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium_page(failure="classroom-playground-failure", logs=(shared_server["log"],)) as page:
        page.set_viewport_size({"width": 1024, "height": 768})
        page.goto(f"{shared_server['url']}/playground?classroom=1&shape=spirals&noise=0.1")
        expect(page.locator("h1").filter(has_text="Playground")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        settle(page)
        no_exception(page, "Playground in classroom mode")
        expect(page.locator("html")).to_have_css("font-size", "19px")  # larger type
        expect(page.get_by_role("radio", name="spirals")).to_be_visible()
        for label in ("Imbalance ratio", "Noise", "Classes", "Seed"):
            expect(page.get_by_test_id("stWidgetLabel").get_by_text(label, exact=True)).to_be_visible()
        screenshot(page, "classroom-playground-1024-full")
        assert page.evaluate(LAYOUT_PROBLEMS_JS) == []
        _widget_labels_fit(page, "before training")

        page.get_by_role("button", name="Step").click()
        settle(page)
        expect(page.get_by_test_id("stMetricValue").filter(has_text="10 / 400")).to_be_visible()
        page.get_by_role("button", name="Play").click()
        settle(page)
        expect(page.get_by_test_id("stMetricValue").filter(has_text="400 / 400")).to_be_visible()
        no_exception(page, "Playground after training")
        screenshot(page, "classroom-playground-trained-1024-full")
        assert page.evaluate(LAYOUT_PROBLEMS_JS) == []
        _widget_labels_fit(page, "after training")

        go(page, "Home", "Tailscope")
        assert "classroom=1" in page.url
        go(page, "Playground", "Playground")
        assert "classroom=1" in page.url and "shape=spirals" in page.url, "classroom mode and the setup stay"
        expect(page.locator("html")).to_have_css("font-size", "19px")


def _prerun_tiny_lessons(home: Path, names: Sequence[str]) -> None:
    """Train the tiny size of each lesson into the server's store, in this process."""
    from core.jobs import execute_run, start_sweep
    from core.lessons import create_lesson
    from core.store import RunStore

    store = RunStore(home)
    for name in names:
        sweep_id, _, _ = start_sweep(store, create_lesson(name, "tiny").spec)
        for run in store.get_sweep(sweep_id).runs:
            assert execute_run(store, store.claim(run.id, os.getpid()), embeddings=False) == "done"


@pytest.mark.xdist_group("browser-shared")
def test_lessons_page_opens_two_finished_lessons(shared_server):
    """A teacher ran two lessons before class: each opens with its claim, verdict (from its runs),
    charts and questions for the class."""
    from core.lessons import create_lesson, lesson_verdict
    from core.store import RunStore

    names = ("smote_vs_random", "accuracy_hides_tail")
    _prerun_tiny_lessons(shared_server["home"], names)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    store = RunStore(shared_server["home"])
    with chromium_page(failure="lessons-failure", logs=(shared_server["log"],)) as page:
        page.goto(f"{shared_server['url']}/lessons?lesson={names[0]}")
        expect(page.locator("h1").filter(has_text="Lessons")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        for n, name in enumerate(names):
            if n:
                pick_option(page, widget(page, "stSelectbox", "Lesson").get_by_role("combobox"),
                            create_lesson(name).display)
            settle(page)
            no_exception(page, f"Lessons: {name}")
            lesson = create_lesson(name, "tiny")
            verdict = lesson_verdict(store, lesson)
            expect(page.get_by_text(f"Verdict: {verdict.headline}")).to_be_visible()
            for question in lesson.questions:
                expect(page.get_by_text(question, exact=True)).to_be_visible()
            expect(page.locator('[data-testid="stPlotlyChart"]')).to_have_count(len(verdict.charts))
            assert f"lesson={name}" in page.url
            screenshot(page, f"lessons-{name}")

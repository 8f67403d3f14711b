"""Load test: several browser sessions at once against `streamlit run`, while a sweep trains.

A fresh TAILSCOPE_HOME gets one finished run (a wine MLP). Then `streamlit run app/main.py`
starts on a free local port and a sweep trains in the background (`tailscope sweep --wait`,
one pool worker: every core the machine has is shared with it). Debian's Chromium, driven
by Playwright, opens one session alone, then `--sessions` sessions at once (one browser,
one context each, so each is its own Streamlit session); each session opens the run's
Results page, goes through the sidebar to Rare-class triage and moves the threshold slider,
to the Post-hoc explorer and moves the logit-adjustment slider, and to Calibration.

Page-settle time: from the click, key press or address typed to the end of the rerun it
started (Streamlit's "script finished" message on the session's websocket, full runs only:
the 2-second fragment that watches running jobs is not counted) and no element left stale
or spinning. Prints p50 / p95 / max for one session and for many, their ratio, every page
exception seen, and how many sweep runs finished while the sessions were measured (the
sweep must still be training at the end, or the load was not there). Asserts nothing.

    .venv/bin/python bench/load_test.py [--sessions 8] [--rounds 1] [--solo-rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
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
RUN = {"name": "wine mlp", "data": {"source": "wine", "imbalance": {"profile": "exp", "ratio": 10}},
       "model": {"name": "mlp", "hidden": 32}, "train": {"epochs": 20, "min_steps": 0, "nc_every": 0}}
SWEEP = """name: background load
data: {source: wine, imbalance: {profile: exp}}
model: {name: mlp, hidden: 64}
train: {epochs: 400, batch_size: 32, nc_every: 0}
evaluation: {seeds: [0, 1, 2]}
grid: {loss.name: [ce, weighted_ce, focal, ldam], data.imbalance.ratio: [5, 10, 20]}
"""
SETTLE_TIMEOUT_S = 300
IDLE_JS = """() => !document.querySelector('[data-testid="stStatusWidget"]')
    && !document.querySelector('[data-stale="true"]') && !document.querySelector('[data-testid="stSpinner"]')"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_store(home: Path) -> str:
    from core.config import RunConfig
    from core.jobs import execute_run
    from core.store import RunStore

    store = RunStore(home)
    run_id = store.create_run(RunConfig.model_validate(RUN))
    assert execute_run(store, store.claim(run_id, os.getpid()), embeddings=False) == "done"
    return run_id


def start_server(home: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.address", "127.0.0.1",
           "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none", "--server.runOnSave", "false"]
    env = {**os.environ, "TAILSCOPE_HOME": str(home), "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return proc, url
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit(f"the server did not start:\n{log.read_text()[-3000:]}")


def start_sweep(home: Path, folder: Path) -> subprocess.Popen:
    spec = folder / "sweep.yaml"
    spec.write_text(SWEEP)
    env = {**os.environ, "TAILSCOPE_HOME": str(home), "PYTHONPATH": str(ROOT)}
    log = open(folder / "sweep.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "core.cli", "sweep", str(spec), "--wait", "--workers", "1"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def sweep_counts(home: Path) -> dict[str, int]:
    from core.store import RunStore

    store = RunStore(home)
    runs = [r for s in store.list_sweeps() for r in s.runs]
    return {status: sum(r.status == status for r in runs) for status in ("queued", "running", "done")}


class Session:
    """One browser context (one Streamlit session) and the times of its full script runs."""

    def __init__(self, page):
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        self.page, self.finished, self.times, self.errors = page, [], [], []
        self._arrived = asyncio.Event()

        def frame(payload) -> None:
            if isinstance(payload, str):
                return
            message = ForwardMsg.FromString(payload)
            if message.WhichOneof("type") == "script_finished" and message.script_finished in (
                    ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_WITH_COMPILE_ERROR):
                self.finished.append(time.monotonic())
                self._arrived.set()

        page.on("websocket", lambda ws: ws.on("framereceived", frame))

    async def timed(self, what: str, action) -> None:
        start = time.monotonic()
        self._arrived.clear()
        await action()
        deadline = start + SETTLE_TIMEOUT_S
        while not any(t > start for t in self.finished):
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout=max(deadline - time.monotonic(), 0.01))
            except asyncio.TimeoutError:
                self.errors.append(f"{what}: no rerun finished within {SETTLE_TIMEOUT_S} s")
                return
            self._arrived.clear()
        await self.page.wait_for_function(IDLE_JS, timeout=SETTLE_TIMEOUT_S * 1000)
        self.times.append((what, time.monotonic() - start))
        shown = await self.page.locator('[data-testid="stException"]').all_inner_texts()
        self.errors += [f"{what}: {text[:200]}" for text in shown]


async def _open(session: Session, url: str, run_id: str) -> None:
    page = session.page
    await session.timed("open Results", lambda: page.goto(f"{url}/results?run={run_id}"))
    await page.locator("h1").filter(has_text="Results").wait_for()


async def _via_sidebar(session: Session, label: str, title: str) -> None:
    page = session.page
    link = page.locator(f'[data-testid="stSidebarNav"] a:has(span[label="{label}"])')
    await session.timed(label, link.click)
    await page.locator("h1").filter(has_text=title).wait_for()


async def _slide(session: Session, label: str, presses: int) -> None:
    slider = session.page.get_by_test_id("stSlider").filter(has_text=label).get_by_role("slider")
    for _ in range(presses):
        await slider.focus()
        await session.timed(f"slider {label[:24]}", lambda: slider.press("ArrowRight"))


async def journey(session: Session, url: str, run_id: str, rounds: int) -> None:
    """The tour; a step that fails is recorded with what the page showed, and ends the tour."""
    steps = [lambda: _open(session, url, run_id)]
    for _ in range(rounds):
        steps += [lambda: _via_sidebar(session, "Rare-class triage", "Rare-class triage"),
                  lambda: _slide(session, "Flag a case when", 3),
                  lambda: _via_sidebar(session, "Post-hoc explorer", "Post-hoc explorer"),
                  lambda: _slide(session, "Logit adjustment", 3),
                  lambda: _via_sidebar(session, "Calibration", "Calibration"),
                  lambda: _via_sidebar(session, "Results", "Results")]
    for step in steps:
        try:
            await step()
        except Exception as exc:  # a timeout or a vanished element: what the person saw is the finding
            try:
                shown = (await session.page.locator('[data-testid="stMain"]').inner_text(timeout=5000))[:400]
            except Exception:
                shown = "(the page could not be read)"
            session.errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}; the page showed: "
                                  + " ".join(shown.split()))
            return


async def measure(url: str, run_id: str, sessions: int, rounds: int) -> list[Session]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            opened = []
            for _ in range(sessions):
                context = await browser.new_context(viewport={"width": 1400, "height": 1000})
                page = await context.new_page()
                page.set_default_timeout(SETTLE_TIMEOUT_S * 1000)
                opened.append(Session(page))
            await asyncio.gather(*(journey(s, url, run_id, rounds) for s in opened))
            return opened
        finally:
            await browser.close()


def summary(label: str, sessions: list[Session]) -> dict[str, float]:
    def stats(times: list[float]) -> dict[str, float]:
        times = sorted(times)
        cut = statistics.quantiles(times, n=20, method="inclusive") if len(times) > 1 else times * 19
        return {"n": len(times), "p50": statistics.median(times), "p95": cut[18], "max": times[-1]}

    out = stats([t for s in sessions for _, t in s.times])
    print(f"{label:<26} {out['n']:>4} page settles   p50 {out['p50']:6.2f} s   p95 {out['p95']:6.2f} s   "
          f"max {out['max']:6.2f} s", flush=True)
    for kind, test in (("  opening a page", lambda what: not what.startswith("slider")),
                       ("  moving a slider", lambda what: what.startswith("slider"))):
        part = stats([t for s in sessions for what, t in s.times if test(what)])
        print(f"{kind:<26} {part['n']:>4}                p50 {part['p50']:6.2f} s   p95 {part['p95']:6.2f} s", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1, help="rounds of the page tour per session when many")
    parser.add_argument("--solo-rounds", type=int, default=2, help="rounds of the tour for the one session")
    parser.add_argument("--keep", action="store_true", help="keep the data folder")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install chromium")
    folder = Path(tempfile.mkdtemp(prefix="tailscope-load-"))
    home = folder / "home"
    os.environ["TAILSCOPE_HOME"] = str(home)
    run_id = build_store(home)
    server, url = start_server(home, folder / "server.log")
    sweep = start_sweep(home, folder)
    try:
        while sweep_counts(home)["running"] == 0:  # the load is there before anything is measured
            if sweep.poll() is not None:
                raise SystemExit(f"the sweep stopped:\n{(folder / 'sweep.log').read_text()[-3000:]}")
            time.sleep(1)
        asyncio.run(measure(url, run_id, 1, 1))  # warm-up, not counted: the server's first imports and caches
        print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} before measuring; a sweep trains "
              "meanwhile (one pool worker)", flush=True)
        results, errors = {}, []
        for label, sessions, rounds in (("1 session", 1, args.solo_rounds),
                                        (f"{args.sessions} sessions at once", args.sessions, args.rounds)):
            before, started = sweep_counts(home), time.monotonic()
            measured = asyncio.run(measure(url, run_id, sessions, rounds))
            after = sweep_counts(home)
            results[label] = summary(label, measured)
            errors += [e for s in measured for e in s.errors]
            print(f"{'':<26} {time.monotonic() - started:6.0f} s; sweep runs finished meanwhile: "
                  f"{after['done'] - before['done']}, still training at the end: {after['running']}; "
                  f"load average {os.getloadavg()[0]:.1f}", flush=True)
        one, many = results["1 session"], results[f"{args.sessions} sessions at once"]
        print(f"p95 ratio ({args.sessions} sessions / 1): {many['p95'] / one['p95']:.2f}; p50 ratio: "
              f"{many['p50'] / one['p50']:.2f}")
        print(f"page exceptions or unfinished reruns: {len(errors)}")
        for error in errors[:20]:
            print(f"  {error}")
    finally:
        if sweep.poll() is None:
            sweep.send_signal(signal.SIGINT)  # the driver marks its runs cancelled and stops its pool
            try:
                sweep.wait(timeout=60)
            except subprocess.TimeoutExpired:
                sweep.kill()
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        if not args.keep:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
        else:
            print(f"kept {folder}")


if __name__ == "__main__":
    main()

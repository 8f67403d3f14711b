"""Home's latest work: the newest sweep or experiment with a link that opens it, then one line
per sweep, experiment or set-up repeated with other seeds (not one line per seed)."""

from __future__ import annotations

import streamlit as st

from app.services import get_store, load_sweep_summary
from app.widgets import run_title, status_badge
from core.analysis import best_against_reference, cell_words, latest_work
from core.store import RunRecord
from core.text import interval_text, md

__all__ = ["latest_work_panel"]


def _mean_balanced_accuracy(runs: list[RunRecord]) -> str:
    values = [r.summary["balanced_accuracy"] for r in runs
              if r.status == "done" and isinstance((r.summary or {}).get("balanced_accuracy"), float)]
    if not values:
        return ""
    if len(values) == 1:
        return f" · balanced accuracy {values[0]:.3f}"
    return f" · balanced accuracy {sum(values) / len(values):.3f} (mean of {len(values)})"


def _runs_words(runs: list[RunRecord]) -> str:
    done = sum(r.status == "done" for r in runs)
    n = len(runs)
    return f"{n} run{'s' * (n != 1)}" + ("" if done == n else f", {done} done")


def _best_words(sweep_id: str) -> str:
    found = best_against_reference(load_sweep_summary(sweep_id))
    if found is None:
        return "nothing finished yet"
    best, ref = found
    words = f"best: **{md(cell_words(best['settings']))}**"
    versus = best.get("vs_reference")
    if ref is not None and versus:
        difference = interval_text(versus["difference"], versus.get("ci"), signed=True)
        noise = "beyond noise" if versus.get("beyond_noise") else "within noise"
        n = versus.get("n")
        # one run a cell: the comparison pairs the two runs' test cases; several: the runs, seed by seed
        unit = "paired runs" if best.get("n_runs", 1) > 1 else "test cases, paired"
        words += (f" ({difference} balanced accuracy against {md(cell_words(ref['settings']))}, {noise}"
                  + (f", {n} {unit}" if isinstance(n, int) else "") + ")")
    return words


def latest_work_panel(runs: list[RunRecord]) -> None:
    """Home's latest work: the newest sweep or experiment first, with a link that opens it, then
    one line per sweep, experiment or set-up repeated with other seeds."""
    store = get_store()
    work = latest_work(runs, store.list_experiments(), store.list_sweeps())
    lead = next((w for w in work if w["kind"] in ("sweep", "experiment")), None)
    if lead is not None:
        with st.container(border=True):
            a, b = st.columns([4, 1], vertical_alignment="center")
            what = "sweep" if lead["kind"] == "sweep" else "experiment"
            extra = _best_words(lead["id"]) if lead["kind"] == "sweep" else _mean_balanced_accuracy(lead["runs"])[3:]
            a.markdown(f"**Latest {what}:** {md(lead['name'])}, {_runs_words(lead['runs'])}"
                       + (f"; {extra}" if extra else ""))
            if lead["kind"] == "sweep":
                b.page_link("../pages/sweeps.py", label="Open it", icon="🧪", query_params={"sweep": lead["id"]})
            else:
                first = next((r.id for r in lead["runs"] if r.status == "done"), lead["runs"][0].id)
                b.page_link("../pages/results.py", label="Open it", icon="📊", query_params={"run": first})
    st.subheader("Latest runs")
    for w in work:
        kind = {"sweep": "🧪 sweep · ", "experiment": "🔁 experiment · "}.get(w["kind"], "")
        statuses = {r.status for r in w["runs"]}
        badge = status_badge(next(iter(statuses)) if len(statuses) == 1 else
                             "running" if statuses & {"queued", "running"} else "done")
        repeats = f" · {_runs_words(w['runs'])}" if w["kind"] != "runs" or len(w["runs"]) > 1 else ""
        name = w["name"] if w["kind"] != "runs" else run_title(w["runs"][0])
        st.markdown(f"{badge} {kind}**{md(name)}**{repeats}{_mean_balanced_accuracy(w['runs'])}")

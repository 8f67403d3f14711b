"""The Sweeps page's pieces: which sweep (in the address as ?sweep=ID), its live progress
with Cancel and Resume, the cell table the charts draw, and the choice of axes."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from app import state
from app.services import get_store, load_sweep_summary, resume_sweep
from app.widgets import explain, flash, read_as_written
from core.analysis import EXPERIMENT_KEYS, ROBUST_KEYS, metric_info_of, sweep_table
from core.glossary import display_name, setting_title, setting_value
from core.registry import kind_of_setting, registry_for
from core.run_words import format_seconds
from core.store import SweepRecord
from core.text import md
from core.viz import axis_title, is_numeric_axis, metric_bounds

__all__ = ["INTRO", "EMPTY", "EXAMPLE_SWEEP", "measures", "metric_name", "higher_is_better", "select_sweep", "progress_panel",
           "cells_table", "squares_table", "first_finished_runs", "choose_axes", "hold_fixed", "line_axes", "variant_notes",
           "selected_run", "seeds_caveat", "explain_marks",
           "short_title", "lines_title", "lines_caption", "plugin_names_in_words"]

SWEEP_BADGES = {"running": "🏃 running", "stopped": "⏸ stopped", "done": "✅ done", "failed": "⚠️ some runs failed",
                "cancelled": "⏹ cancelled", "queued": "⏳ queued"}

INTRO = ("A **sweep** trains the same set-up many times, changing one or two settings (the loss, the imbalance "
         "ratio, ...) and repeating every combination over several seeds. Each square of the map below is one "
         "combination; its number is the mean over its repeats, and it is compared with the reference "
         "(plain cross-entropy, when the sweep has it) trained on the same seeds.")
EMPTY = ("There is no sweep yet. A sweep answers questions such as *which fix for imbalance helps on my data?* or "
         "*from which imbalance ratio on does plain training fail?* by training every combination of a few "
         "settings, each over several seeds, and mapping the results here.\n\n"
         "- **From the Train page:** set up the data, model and training, then press **Try the standard fixes**: "
         "one click trains plain cross-entropy and five common fixes (plus three classic baselines on tables) on "
         "the same seeds.\n"
         "- **Here:** pick the data and the settings to compare below, see how many trainings that makes, and "
         "press **Start the sweep**.\n"
         "- **From the command line:** write a run config with a `grid:` section and run "
         "`tailscope sweep FILE`; this page shows it as it trains.")
EXAMPLE_SWEEP = """\
name: losses against imbalance
data: {source: digits, imbalance: {profile: exp}}
model: {name: small_cnn}
train: {epochs: 10}
evaluation: {seeds: [0, 1, 2]}
grid:
  loss.name: [ce, weighted_ce, balanced_softmax, ldam]
  data.imbalance.ratio: [10, 20, 50, 100]
"""


def measures(record) -> tuple[str, ...]:
    """The measures a sweep can be read by: the headline ones, and the ones under attack when
    its runs are scored under one (`evaluation.attack`, in the base or on an axis)."""
    spec = record.spec or {}
    attacked = "attack" in (spec.get("evaluation") or {}) or any(
        key.startswith("evaluation.attack") for key in (spec.get("grid") or {}))
    return (*EXPERIMENT_KEYS, *(ROBUST_KEYS if attacked else ()))


def metric_name(key: str) -> str:
    return display_name(key)


def plugin_names_in_words(table: pd.DataFrame, axes: dict[str, list[str]], reference: list | None
                          ) -> tuple[pd.DataFrame, dict[str, list[str]], list | None]:
    """The sweep's plug-in axes (loss, sampler, ...) as people read them: 'cb_focal' becomes
    'Class-balanced focal loss' in the cells, the axes and the reference alike (the CSV keeps
    the names the config uses)."""
    words = {a: {v: setting_value(a, v) for v in values} for a, values in axes.items() if not is_numeric_axis(values)}
    if not words or table.empty:
        return table, axes, reference
    table = table.copy()
    for axis, names in words.items():
        if axis in table:
            table[axis] = table[axis].map(lambda v, names=names: names.get(v, v))
    axes = {a: [words.get(a, {}).get(v, v) for v in values] for a, values in axes.items()}
    if reference and reference[0] in words:
        reference = [reference[0], words[reference[0]].get(reference[1], reference[1])]
    return table, axes, reference


def higher_is_better(key: str) -> bool | None:
    info = metric_info_of(key)
    return info.higher_is_better if info else True


def _sweep_label(record: SweepRecord) -> str:
    cells = len(record.experiments)
    return f"{SWEEP_BADGES.get(record.status, record.status)} · {record.name} · {cells} cell{'s' * (cells != 1)}"


def select_sweep(sweeps: list[SweepRecord]) -> SweepRecord:
    """A picker over the sweeps (newest first) that follows the address: ?sweep=ID (a
    bookmark, a shared link, the Train page's "Try the standard fixes") selects its sweep."""
    ids = [s.id for s in sweeps]
    in_address = st.query_params.get("sweep")
    current = st.session_state.get(state.SWEEP_ID)
    if in_address and in_address != st.session_state.get(state.SWEEP_IN_ADDRESS):
        current = in_address
    if current not in ids:
        if current:
            st.warning("The sweep in this page's address no longer exists; showing the newest one instead.", icon="🗑️")
        current = ids[0]
    st.session_state[state.SWEEP_ID] = current
    labels = {s.id: _sweep_label(s) for s in sweeps}
    chosen = st.selectbox("Sweep", ids, key=state.SWEEP_ID, format_func=labels.get,
                          help="Newest first. The page's address names the sweep (?sweep=...), so the view can be "
                               "bookmarked or shared.")
    st.query_params["sweep"] = chosen
    st.session_state[state.SWEEP_IN_ADDRESS] = chosen
    return next(s for s in sweeps if s.id == chosen)


def _cancel(sweep_id: str) -> None:
    store = get_store()
    store.reap_dead()
    unfinished = [r for r in store.get_sweep(sweep_id).runs if r.status in ("queued", "running")]
    for run in unfinished:
        store.request_cancel(run.id)
    flash(f"Cancelling {len(unfinished)} unfinished run(s). Finished runs are kept; **Resume** trains the rest later.")


def _resume(sweep_id: str) -> None:
    waiting = resume_sweep(sweep_id)
    flash(f"Resumed: {waiting} run(s) to train. Finished runs are kept." if waiting else "Nothing left to train.")


def _counts(record: SweepRecord) -> tuple:
    return record.status, tuple(sum(r.status == s for r in record.runs) for s in ("done", "failed", "cancelled"))


def progress_panel(sweep_id: str, metric: str) -> None:
    """Status, a progress bar with the time left, and Cancel / Resume. While the sweep runs it
    looks every 2 s; when a run finishes it reruns the page so the charts take it in."""
    record = get_store().get_sweep(sweep_id)
    drawn = _counts(record)
    st.fragment(run_every=2.0 if record.status == "running" else None)(_progress)(sweep_id, metric, drawn)


def _progress(sweep_id: str, metric: str, drawn: tuple) -> None:
    record = get_store().get_sweep(sweep_id)
    if _counts(record) != drawn:
        st.rerun()
    p = load_sweep_summary(sweep_id, metric)["progress"]
    total = max(p["total"], 1)
    words = f"{p['done']} of {p['total']} runs done"
    extra = [f"{p[s]} {s}" for s in ("failed", "cancelled") if p[s]]
    if record.status == "running" and p["eta_s"] is not None:
        extra.append(f"about {format_seconds(p['eta_s'])} left")
    with st.container(border=True):
        st.progress(p["done"] / total, text=f"**{SWEEP_BADGES.get(record.status, record.status)}** · {words}"
                    + (f" ({', '.join(extra)})" if extra else ""))
        buttons = iter(st.columns([1, 1, 3]) if record.status != "done" else [])
        if record.status in ("stopped", "cancelled", "failed"):
            next(buttons).button("Resume", key="sweeps.resume", type="primary", on_click=_resume, args=(sweep_id,),
                                 icon=":material/play_arrow:",
                                 help="Trains the runs that did not finish (waiting, cancelled or failed) in the "
                                      "background; finished runs are kept.")
        if record.status in ("running", "stopped", "queued"):
            next(buttons).button("Cancel the sweep", key="sweeps.cancel", on_click=_cancel,
                                 args=(sweep_id,), icon=":material/stop_circle:",
                                 help="Stops the runs that wait or train. Finished runs are kept; Resume trains "
                                      "the rest.")
        if record.status == "stopped":
            st.caption("Nothing is training this sweep: the process that drove it stopped (the computer restarted, or "
                       "it was closed). **Resume** picks up where it left off.")
        elif record.status == "running":
            st.caption("Training in the background: you can leave this page, or close the browser, and come back.")
        elif record.status == "failed":
            st.caption("Some runs failed; the map shows the others. Open the Runs page for the reasons, or "
                       "**Resume** to try the failed runs again.")


def cells_table(summary: dict[str, Any]) -> pd.DataFrame:
    """`core.jobs.sweep_table` plus each cell's caveat about its comparison (e.g. that three
    seeds can never reach p < 0.05), which the heatmap shows instead of a bare "within noise"."""
    table = sweep_table(summary)
    if table.empty:
        return table
    table["note_vs_reference"] = [(c["vs_reference"] or {}).get("note") or None for c in summary["cells"]]
    return table


def squares_table(table: pd.DataFrame, axes: list[str], metric: str, reference: list | None) -> pd.DataFrame:
    """Every square in words for a wrapping table (`app.fit_tables.wrapping_table`): its
    settings, the measure, its 95 % interval (within what the measure can take) and how it
    compares with the reference, the verdict's whole sentence. A grid of these columns would
    scroll sideways at 1024 px; the cells of an HTML table wrap instead."""
    label = metric_name(metric)
    low_bound, high_bound = metric_bounds(metric)

    def number(value: Any) -> str:
        return "—" if value is None or pd.isna(value) else f"{float(value):.3f}"

    def interval(row: dict[str, Any]) -> str:
        low, high = row.get(f"{metric}_low"), row.get(f"{metric}_high")
        if low is None or high is None or pd.isna(low) or pd.isna(high):
            return "—"
        return f"{max(float(low), low_bound):.3f} to {min(float(high), high_bound):.3f}"

    def versus(row: dict[str, Any]) -> str:
        if reference and row.get(reference[0]) == reference[1]:
            return "the reference"
        verdict, difference = row.get("verdict_vs_reference"), row.get("difference_vs_reference")
        if not isinstance(verdict, str):
            return "—"
        return verdict if difference is None or pd.isna(difference) else f"{float(difference):+.3f}: {verdict}"

    rows = [{**{short_title(a): str(row.get(a)) if row.get(a) is not None else "—" for a in axes},
             label: number(row.get(metric)), "95 % interval": interval(row), "against the reference": versus(row)}
            for row in table.to_dict("records")]
    return pd.DataFrame(rows)


def first_finished_runs(record: SweepRecord) -> dict[str, str]:
    """Experiment id -> its first finished run (the Results page of that run shows the
    experiment's mean over its runs)."""
    firsts = {}
    for experiment in record.experiments:
        done = [r.id for r in experiment.runs if r.status == "done"]
        if done:
            firsts[experiment.id] = done[0]
    return firsts


def choose_axes(axes: dict[str, list[str]], reference: list | None) -> tuple[str | None, str | None, dict[str, str]]:
    """(rows, columns, {other axis: value held}). Axes with one value are held at it; with more
    than two varying axes, the person picks the two to map and a value for each other one.
    Default rows: the reference's axis (the methods); columns: a numeric one (the ratio)."""
    varying = [a for a, labels in axes.items() if len(labels) > 1]
    fixed = {a: labels[0] for a, labels in axes.items() if len(labels) == 1}
    if not varying:
        return next(iter(axes), None), None, {}
    ref_axis = reference[0] if reference and reference[0] in varying else None
    rows = ref_axis or next((a for a in varying if not is_numeric_axis(axes[a])), varying[0])
    others = [a for a in varying if a != rows]
    columns = next((a for a in others if is_numeric_axis(axes[a])), others[0] if others else None)
    if len(varying) > 2:
        c1, c2 = st.columns(2)
        rows = c1.selectbox("Rows of the map", varying, index=varying.index(rows), key="sweeps.rows",
                            format_func=axis_title)
        rest = [a for a in varying if a != rows]
        columns = c2.selectbox("Columns of the map", rest, index=rest.index(columns) if columns in rest else 0,
                               key=f"sweeps.columns.{rows}", format_func=axis_title)
        held = [a for a in varying if a not in (rows, columns)]
        cols = st.columns(len(held))
        for col, axis in zip(cols, held):
            fixed[axis] = col.selectbox(options=axes[axis], key=f"sweeps.hold.{axis}",
                                        **read_as_written(f"Show {axis_title(axis)} =", f"Show {md(axis_title(axis))} =",
                                                          where=col),
                                        help="The map and the charts show one value of each setting that is "
                                             "not on the map.")
    return rows, columns, fixed


def hold_fixed(table: pd.DataFrame, fixed: dict[str, str]) -> pd.DataFrame:
    """The cells at the held values of the axes not drawn."""
    keep = pd.Series(True, index=table.index)
    for axis, value in fixed.items():
        keep &= table[axis].astype(str) == str(value)
    return table[keep].reset_index(drop=True)


def line_axes(axes: dict[str, list[str]], rows: str | None, columns: str | None) -> tuple[str | None, str | None]:
    """(x, series) of the lines chart: a numeric axis across when there is one (its values
    drawn to scale), the other mapped axis as one line per value."""
    mapped = [a for a in (columns, rows) if a is not None]
    numeric = [a for a in mapped if is_numeric_axis(axes[a])]
    x = numeric[0] if numeric else (rows if rows is not None else None)
    series = next((a for a in mapped if a != x), None)
    return x, series


def _plugin_words(key: str, value: Any) -> str | None:
    """The registry's one-line description of the plug-in a setting names (any kind in the
    table of kinds, DRW by its declaration), or None."""
    if key == "loss.drw_epoch" and isinstance(value, int):
        drw = registry_for("loss_schedule").info("drw")
        return f"{drw.label} from epoch {value} on: {drw.description[0].lower()}{drw.description[1:]}"
    kind = kind_of_setting(key)
    registry = registry_for(kind.name) if kind is not None else None
    if registry is None or not isinstance(value, str) or value not in registry:
        return None
    return registry.info(value).description


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def variant_notes(spec: dict[str, Any]) -> list[str]:
    """What each value of the sweep's settings means, as markdown lines (user text escaped):
    a named variant's settings ("**crt**: stage2.name = crt") and, for any plug-in a setting
    names (loss, sampler, two-stage fix, model, dataset, ...), its registry's description."""
    lines = []
    for axis, values in (spec.get("grid") or {}).items():
        if isinstance(values, dict):
            for label, patch in values.items():
                words = [w for k, v in patch.items() if (w := _plugin_words(k, v))]
                settings = ", ".join(f"{_lower_first(setting_title(k))}: {setting_value(k, v)}" for k, v in patch.items())
                lines.append(f"- **{md(setting_value(axis, label))}** ("
                             f"{md(settings) if settings else 'the base set-up, unchanged'})"
                             + (f": {md(' '.join(words))}" if words else ""))
        elif (kind := kind_of_setting(axis)) is not None:
            lines += [f"- **{md(setting_value(axis, v))}** ({md(kind.words.lower())}): {md(w)}" for v in values
                      if (w := _plugin_words(axis, v))]
    return lines


def selected_run(event: Any) -> str | None:
    """The run to open from a click on the heatmap (its cell marker's customdata), or None."""
    points = (getattr(event, "selection", None) or {}).get("points", []) if event else []
    for point in points:
        custom = point.get("customdata") or []
        if len(custom) > 1 and custom[1]:
            return str(custom[1])
    return None


def seeds_caveat(summary: dict[str, Any]) -> str | None:
    """A sentence for above the map when no comparison could reach a verdict whatever the
    numbers (e.g. three seeds: the sign-flip test's smallest p is 0.25), else None."""
    tested = [c["vs_reference"] for c in summary["cells"] if c["vs_reference"]]
    if not tested or not all(t.get("status") == "too few" for t in tested):
        return None
    n = max(int(t.get("n") or 0) for t in tested)
    return (f"**Too few seeds for a verdict.** With {n} seeds per square, no test can reach p < 0.05, however large "
            "a difference, so no square is marked better or worse than the reference. The numbers and their "
            "intervals (hover a square) still show how large each difference is; run 6 or more seeds for a verdict "
            "(8 or more when many squares are compared at once).")


def lines_title(label: str, x: str, axes: dict[str, list[str]]) -> str:
    if is_numeric_axis(axes[x]):
        return f"{label} as the {md(short_title(x))} changes"
    return f"{label} of each {md(short_title(x))}, with its interval"


def lines_caption(label: str, x: str, series: str | None, axes: dict[str, list[str]]) -> str:
    if is_numeric_axis(axes[x]):
        lines = f"Each line is one {md(short_title(series))}" if series else "The line"
        return (f"{lines}: its mean {label.lower()} over the seeds, with a shaded band for the 95 % interval (where "
                "the true mean most likely lies). Where bands overlap a lot, the runs cannot tell those settings "
                f"apart; a line that stays high as the {md(short_title(x))} grows holds up. The dashed grey line is "
                "the reference.")
    return (f"Each dot: the mean {label.lower()} over the seeds; its bar, the 95 % interval (where the true mean most "
            "likely lies). Where bars overlap a lot, the runs cannot tell those settings apart"
            + (f"; colours are the {md(short_title(series))}." if series else "."))


def short_title(axis: str) -> str:
    """An axis in a few words, for labels: "imbalance ratio" without its explanation."""
    return axis_title(axis).split(" (")[0]


def explain_marks(reference: list | None, metric: str) -> None:
    ref = f"**{md(reference[1])}**" if reference else "the reference"
    explain(f"Each square: the mean {metric_name(metric).lower()} over the square's runs; darker is better. Under "
            f"the number, how it compares with {ref} on the same seeds: ▲ better or ▼ worse *beyond noise*, ≈ within "
            "noise, *too few seeds* to tell, or *cannot tell* (with the reason). The squares are tested together: "
            "their p-values are adjusted for the false discovery rate (Benjamini-Hochberg, 5 %), since among many "
            "squares some would pass by luck alone. Striped corners: **not** shown to beat the reference; a green "
            "frame: shown to beat it. Hover a square for the difference, its adjusted interval and both p-values; "
            "click it to open its results.")

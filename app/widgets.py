"""Widgets every page shares: the sidebar, run picker, parameter forms, empty states."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any, TypeVar, get_args

import streamlit as st

from app import state
from app.classroom import classroom_toggle
from app.services import DEFAULT_DATA, DEMO_CONFIG, get_store, load_bundle, queue_run
from app.starting_points import follow_made, forget_made, picker_labels
from core.config import RunConfig
from core.data import describe_source
from core.glossary import glossary_markdown, method_display
from core.registry import PluginInfo, registry_for
from core.store import AnnotationDamaged, RunFileDamaged, RunRecord
from core.text import interval_text, md, number

__all__ = ["run_title", "sidebar", "selected_run", "require_run", "params_form", "plugin_caption", "loss_schedule_form", "empty_state", "status_badge",
           "start_demo_run", "explain", "chart_with_download", "flash", "remember_form_values", "read_as_written", "starting_value", "table_height",
           "metric_cards", "format_interval", "rerun_run", "delete_run", "run_method", "glossary_panel",
           "saved_annotation", "damaged_annotation_notice"]

T = TypeVar("T")

STATUS_BADGES = {"queued": "⏳ queued", "running": "🏃 running", "done": "✅ done", "failed": "❌ failed",
                 "cancelled": "⏹ cancelled"}


def status_badge(status: str) -> str:
    return STATUS_BADGES.get(status, status)


def run_method(record: RunRecord) -> str:
    """The run's method in words (`record.method` keeps the internal label for the CLI)."""
    return method_display(record.config or {}) or record.method


def run_title(record: RunRecord) -> str:
    """The run's name, with its method added unless the name already says it."""
    method = run_method(record)
    return record.name if method in record.name or record.method in record.name else f"{record.name} · {method}"


def glossary_panel() -> None:
    """Every symbol and word the pages use, in plain language; opened from the sidebar of every page."""
    with st.popover("Glossary", icon=":material/menu_book:", width="stretch",
                    help="What the words and symbols on these pages mean."):
        st.markdown(glossary_markdown())


def sidebar() -> None:
    """Current dataset, the run picker and the glossary, on every page."""
    with st.sidebar:
        classroom_toggle()
        glossary_panel()
        chosen = st.session_state.get(state.DATA_CONFIG)
        data = chosen or DEFAULT_DATA
        imb = data.get("imbalance", {})
        profile = imb.get("profile", "none")
        detail = "class sizes as given" if profile == "none" else f"{profile}, ratio {float(imb.get('ratio', 0)):g}"
        st.caption(f"**Dataset:** {md(describe_source(data['source']))} ({detail})"
                   + ("" if chosen else " — the default until you choose one on the Data page"))
        store = get_store()
        runs = store.list_runs()
        if any(r.status == "running" for r in runs) and store.reap_dead():
            runs = store.list_runs()  # a run whose worker died is shown as failed, with the reason
        if not runs:
            st.caption("**Run:** none yet")
            return
        _select_from_address(runs)
        status = {r.id: status_badge(r.status) for r in runs}
        labels = {i: f"{status[i]} · {label}" for i, label in picker_labels(runs, run_title).items()}
        st.selectbox("Run", list(labels), key=state.RUN_ID, format_func=labels.get,
                     help="The run every analysis page shows. Newest first, a sweep's and an experiment's runs "
                          "together under its name: type part of a name to find it. The page's address names it "
                          "(?run=...), so a view can be bookmarked or shared.")
        if len(labels[st.session_state[state.RUN_ID]]) > 26:  # a picker shows one line: the whole name below it
            st.caption(md(labels[st.session_state[state.RUN_ID]]))
        st.query_params["run"] = st.session_state[state.RUN_ID]
        st.session_state[state.RUN_IN_ADDRESS] = st.session_state[state.RUN_ID]
        st.session_state[state.RUN_NAMES] = {r.id: r.name for r in runs}
        active = tuple((r.id, r.status) for r in runs if r.status in ("queued", "running"))
        if active:
            _watch_statuses(active)


def _select_from_address(runs: list[RunRecord]) -> None:
    """The selected run lives in the address (?run=ID): a bookmark, a shared link or the back
    button selects its run; a run deleted meanwhile (e.g. in another tab) is said so, not
    silently replaced. What this session just made (a run, an experiment, a sweep) is opened
    next; an address left over from before wins only when it changed (typed or followed)."""
    ids = [r.id for r in runs]
    in_address = st.query_params.get("run")
    current = st.session_state.get(state.RUN_ID)
    if in_address and in_address != st.session_state.get(state.RUN_IN_ADDRESS):
        current = in_address  # the address changed outside this page: it wins
        forget_made()
    else:
        current = follow_made(current) or current
    if current not in ids:
        if current:
            name = st.session_state.get(state.RUN_NAMES, {}).get(current, current)
            st.warning(f"The run you were looking at ({md(name)}) no longer exists: it was deleted, perhaps in another "
                       "tab. Showing the newest finished run instead.", icon="🗑️")
        done = [r.id for r in runs if r.status == "done"]
        current = done[0] if done else ids[0]
    st.session_state[state.RUN_ID] = current


@st.fragment(run_every=2.0)
def _watch_statuses(active: tuple) -> None:
    """While runs are queued or running, look every 2 s; when a status changes, rerun the
    whole page so the picker, Home, Train and the analysis pages all show it."""
    now = tuple((r.id, r.status) for r in get_store().list_runs(("queued", "running")))
    if now != active:
        st.rerun()


def selected_run() -> RunRecord | None:
    run_id = st.session_state.get(state.RUN_ID)
    if not run_id:
        return None
    try:
        return get_store().get(run_id)
    except KeyError:
        return None


def start_demo_run() -> None:
    run_id = queue_run(RunConfig.model_validate(DEMO_CONFIG))
    st.session_state[state.RUN_ID] = run_id
    st.session_state.setdefault(state.WATCH_RUN_IDS, []).append(run_id)
    flash("A demo run is training (digits, 15 epochs, about a minute on a laptop). Follow it on the Train page.")


def empty_state(message: str, *, demo: bool = True, key: str = "demo") -> None:
    """Say what to do next, with a button that does it."""
    st.info(message)
    if demo:  # a callback: it selects the new run before the sidebar's run picker is drawn again
        st.button("Try a demo run", type="primary", key=key, on_click=start_demo_run,
                  help="Trains a small CNN on handwritten digits made long-tailed (ratio 50).")


def rerun_run(record: RunRecord) -> None:
    """Queue the run's config again (a callback: it selects the new run before the picker is drawn)."""
    new_id = queue_run(RunConfig.model_validate({**record.config, "name": f"{record.name} (re-run)"[:200]}))
    st.session_state[state.RUN_ID] = new_id
    st.session_state.setdefault(state.WATCH_RUN_IDS, []).append(new_id)
    flash(f"Queued a re-run of {md(record.name)}; follow it on the Train page.")


def delete_run(record: RunRecord) -> None:
    get_store().delete(record.id)
    if st.session_state.get(state.RUN_ID) == record.id:
        del st.session_state[state.RUN_ID]
    flash(f"Deleted {md(record.name)}.")


def _damaged(record: RunRecord, exc: RunFileDamaged) -> None:
    """A run whose files cannot be read: say which file, offer re-run or delete."""
    st.error(f"**{md(record.name)}** cannot be shown: its file `{exc.file}` is damaged ({md(exc.reason)}). Re-run it to "
             "train it again, or delete it; your other runs are not affected.")
    c1, c2, _ = st.columns([1, 1, 3])
    c1.button("Re-run it", key="damaged.rerun", on_click=rerun_run, args=(record,), icon=":material/replay:")
    confirm = c2.checkbox("Yes, delete it", key=f"damaged.confirm.{record.id}")
    c2.button("Delete it", key="damaged.delete", on_click=delete_run, args=(record,), disabled=not confirm,
              icon=":material/delete:")


def saved_annotation(read: Callable[[], T], default: T, *, where: str = "page") -> T:
    """`read()` of what a person saved with a run (its operating point, reviews, label
    issues); a damaged file shows its notice instead and gives `default`, so the page goes
    on without it. `where` tells two notices of one file on a page apart."""
    try:
        return read()
    except AnnotationDamaged as exc:
        damaged_annotation_notice(exc, where)
        return default


def damaged_annotation_notice(exc: AnnotationDamaged, where: str = "page") -> None:
    """Which saved file cannot be used, where it is, why, and what to do; with a button that
    sets it aside (renamed beside itself, nothing deleted) so the run starts afresh."""
    st.warning(f"The {exc.what} saved with this run cannot be used: its file **{md(exc.file)}** is damaged "
               f"({md(exc.reason)}). "
               f"It is at {md(exc.path)}. To go on, {md(exc.todo)}. The rest of this page and the run's other pages "
               "work without it.", icon=":material/report:")
    st.button("Set the damaged file aside", key=f"damaged.aside.{exc.name}.{exc.run_id}.{where}",
              on_click=_set_aside, args=(exc.run_id, exc.name), icon=":material/folder_off:")


def _set_aside(run_id: str, name: str) -> None:
    aside = get_store().set_aside_annotation(run_id, name)
    if aside is not None:
        flash(f"The damaged file was renamed to {md(aside.name)} (beside the run's other files); the run goes on "
              "without it.")


def require_run(*, multilabel: bool = False) -> RunRecord:
    """The selected finished run whose files can be read; otherwise an explanation of what
    to do, and the page stops there. A page made for one class per case (`multilabel`
    False) says so plainly for a multi-label run and stops."""
    record = selected_run()
    if record is None:
        empty_state("There is no run to show yet. Train one on the Train page, or start a demo run.")
        st.stop()
    if record.status != "done":
        if record.status in ("queued", "running"):
            progress = record.progress or {}
            st.info(f"**{md(record.name)}** is {record.status} ({progress.get('fraction', 0):.0%}). "
                    "This page fills in when it finishes; follow it on the Train page.")
        else:
            st.warning(f"**{md(record.name)}** {record.status}: {md(record.error or 'no reason recorded')}. "
                       "Pick another run in the sidebar.")
        st.stop()
    try:
        bundle = load_bundle(record.id)  # cached: the page's own call reads nothing again
    except RunFileDamaged as exc:
        _damaged(record, exc)
        st.stop()
    if bundle.multilabel and not multilabel:
        st.info(f"**{md(record.name)}** is a multi-label run: each case can carry several findings at once. This "
                "page is made for runs with one class per case, so it has nothing to show for it. Its per-finding "
                "results are on the Results page (and one finding at a time on Calibration, Triage, Error gallery "
                "and Geometry); pick a single-label run in the sidebar to use this page.",
                icon="🏷️")
        st.stop()
    return record


def format_interval(value: float | None, low: float | None, high: float | None) -> str:
    """'0.812 [0.781, 0.843]' (the 95 % interval's ends: intervals kept inside a metric's
    range are not symmetric), or the value alone when there is none."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return interval_text(value, (low, high))


def metric_cards(keys, values: dict, intervals: dict, labels: dict, how: str, columns: int = 4,
                 count: str | None = None) -> None:
    """One bordered card per metric: the value and its 95 % interval's ends (asymmetric
    where the metric's range cuts it), or, where there is no interval, `count` (what the
    number rests on, e.g. "2 runs, no spread"); the help says what the metric means and how
    the interval was computed (`how`)."""
    from core.analysis import METRICS, MULTILABEL_METRICS

    known_metrics = {**MULTILABEL_METRICS, **METRICS}
    cols = st.columns(columns)
    for i, key in enumerate(keys):
        value, (low, high) = values.get(key), intervals.get(key, (None, None))
        known = value is not None and math.isfinite(value)
        has_interval = known and low is not None and high is not None and math.isfinite(low) and math.isfinite(high)
        bounds = f" 95 % interval: {low:.3f} to {high:.3f} ({how})." if has_interval else ""
        cols[i % columns].metric(
            labels.get(key, known_metrics[key].display_name), f"{value:.3f}" if known else "n/a",
            delta=f"{number(low)} to {number(high)}" if has_interval else (count if known else None),
            delta_color="off", delta_arrow="off",
            delta_description="95 % interval" if has_interval else None,
            help=known_metrics[key].description + bounds, border=True)


def explain(text: str) -> None:
    """A plain-language note under a chart, for people who are not ML specialists."""
    st.caption(text)


def chart_with_download(fig, caption: str, *, key: str, download_key: str, filename: str, **kwargs) -> None:
    """A chart, its plain-language caption and a self-contained HTML download (`filename`
    names both the camera button's PNG and the HTML file); `kwargs` go to st.plotly_chart."""
    st.plotly_chart(fig, width="stretch", key=key, config={"toImageButtonOptions": {"filename": filename}}, **kwargs)
    explain(caption)
    st.download_button("Download this chart (HTML)", lambda: fig.to_html(include_plotlyjs=True), type="tertiary",
                       file_name=f"{filename}.html", mime="text/html", key=download_key,
                       on_click="ignore", icon=":material/download:",
                       help="The interactive chart as one file that opens offline in any browser.")


def starting_value(key: str, value: Any) -> str:
    """`key`, with `value` put in the session unless it holds one: a remembered widget then
    takes its first value from the session and is drawn without `value=` / `index=` (given
    both, Streamlit warns that the default is ignored, on every page of the Data and Train
    forms, since `remember_form_values` writes their keys back on every run)."""
    if key not in st.session_state:
        st.session_state[key] = value
    return key


def read_as_written(label: str, shown: str, where=st) -> dict[str, str]:
    """The label arguments of a widget named by the person's own text (a class, a file):
    Streamlit reads a label out as written (its aria-label) and draws a visible one as
    Markdown, so an escaped label (`core.text.md`) would be read out with its backslashes
    and a raw one drawn as markup. `shown`, the label escaped, is drawn above the widget;
    the widget gets `label` as written, collapsed: read out, never drawn."""
    where.markdown(shown)
    return {"label": label, "label_visibility": "collapsed"}


def remember_form_values() -> None:
    """Keep the Data and Train forms as the person left them across page switches."""
    for key in list(st.session_state):
        if isinstance(key, str) and key.startswith(state.REMEMBERED_PREFIXES) and not key.startswith(
                state.NOT_REMEMBERED):
            st.session_state[key] = st.session_state[key]


def table_height(rows: int, cap: int = 400) -> int:
    """Pixels that fit a dataframe's header and rows exactly (no empty rows), up to `cap`."""
    return min(35 * (rows + 1) + 3, cap)


def flash(message: str | None = None) -> None:
    """Store a message for the next rerun (with an argument) or show a stored one."""
    if message is not None:
        st.session_state[state.FLASH] = message
        return
    stored = st.session_state.pop(state.FLASH, None)
    if stored:
        st.success(stored)


def _literal_choices(annotation: Any) -> tuple | None:
    args = get_args(annotation)
    if args and all(isinstance(a, (str, int, float)) for a in args):
        return args
    for a in args:
        nested = _literal_choices(a)
        if nested:
            return nested
    return None


def _choice_words(choice: Any, words: dict) -> str:
    """A parameter's choice as people read it: the schema's `choice_labels`, else the value with spaces."""
    if choice is None:
        return "none"
    return str(words.get(choice) or str(choice).replace("_", " "))


def params_form(info: PluginInfo, key: str, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Widgets built from a plug-in's parameter schema; returns the chosen values."""
    values: dict[str, Any] = {}
    for name, field in info.params.model_fields.items():
        if name in skip:
            continue
        label = field.title or name.replace("_", " ")  # the schema's title: words, not the config key
        help_text = field.description or None
        default = field.get_default(call_default_factory=True)
        widget_key = f"{key}.{info.name}.{name}"
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        choices = _literal_choices(field.annotation) or extra.get("choices")
        words = extra.get("choice_labels") or {}
        low = next((getattr(m, a) for m in field.metadata for a in ("ge", "gt") if getattr(m, a, None) is not None), None)
        high = next((getattr(m, a) for m in field.metadata for a in ("le", "lt") if getattr(m, a, None) is not None), None)
        if choices:
            values[name] = st.selectbox(label, choices, help=help_text,
                                        key=starting_value(widget_key, default if default in choices else choices[0]),
                                        format_func=lambda c, words=words: _choice_words(c, words))
        elif isinstance(default, bool):
            values[name] = st.checkbox(label, key=starting_value(widget_key, default), help=help_text)
        elif isinstance(default, int):
            values[name] = int(st.number_input(label, step=1, key=starting_value(widget_key, default), help=help_text,
                                               min_value=int(low) if low is not None else None,
                                               max_value=int(high) if high is not None else None))
        elif isinstance(default, float):
            values[name] = float(st.number_input(label, key=starting_value(widget_key, default), help=help_text,
                                                 format="%g", min_value=float(low) if low is not None else None,
                                                 max_value=float(high) if high is not None else None))
        elif default is None:
            text = st.text_input(label, key=starting_value(widget_key, ""),
                                 help=(help_text or "") + " (leave empty for auto)")
            if text.strip():
                numeric = float in get_args(field.annotation) or int in get_args(field.annotation)
                try:
                    values[name] = float(text) if numeric else text
                except ValueError:
                    values[name] = text  # the schema's validation names the problem
        elif isinstance(default, dict):  # nested parameters, typed as JSON
            text = st.text_input(label, key=starting_value(widget_key, ""), placeholder='e.g. {"k_neighbors": 3}',
                                 help=(help_text or "") + " (JSON; leave empty for the defaults)")
            if text.strip():
                try:
                    values[name] = json.loads(text)
                except ValueError:
                    values[name] = text  # the schema's validation names the problem
        else:
            values[name] = st.text_input(label, key=starting_value(widget_key, str(default)), help=help_text)
    return values


def plugin_caption(info: PluginInfo) -> str:
    """An entry's description and paper, for the caption or help beside its widget."""
    return info.description + (f"  \n*Paper: {info.paper}*" if info.paper else "")


def loss_schedule_form(key: str) -> dict[str, Any]:
    """A switch per declared loss schedule (DRW), then its parameters, all from its declaration:
    the switch parameter starts at its schema's example. Returns the settings for the `loss`
    section (`{"drw_epoch": 16, "drw_beta": 0.9999}`), or {} when every switch is off."""
    values: dict[str, Any] = {}
    for info in registry_for("loss_schedule").infos():
        if not st.checkbox(info.label, key=f"{key}.{info.name}", help=plugin_caption(info)):
            continue
        switch = info.capabilities["switch"]
        field = info.params.model_fields[switch]
        low = next((m.ge for m in field.metadata if getattr(m, "ge", None) is not None), 0)
        values[switch] = int(st.number_input(field.title, min_value=low, value=(field.examples or [low])[0],
                                             step=1, key=f"{key}.{info.name}.{switch}", help=field.description))
        values.update(params_form(info, key, skip=(switch,)))
    return values


def relative_time(ts: float | None) -> str:
    if ts is None:
        return ""
    delta = time.time() - ts
    for unit, seconds in (("d", 86400), ("h", 3600), ("min", 60)):
        if delta >= seconds:
            return f"{delta // seconds:.0f} {unit} ago"
    return "just now"

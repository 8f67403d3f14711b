"""Words everywhere a person reads: after the standard fixes, a sweep and a lesson exist in
the store, every page (AppTest) shows no registered internal name, no "None" and no
snake_case token in its visible text (markdown, captions, metrics, tables' headers and
cells, chart titles, axis titles, tick labels, legends, widget labels and options)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from app.calibration_view import TABS as CALIBRATION_TABS
from app.geometry_view import TABS as GEOMETRY_TABS
from app.results_view import TABS as RESULTS_TABS
from conftest import open_at_address, shown, shown_table

pytestmark = pytest.mark.xdist_group("words_everywhere")

TINY = {"data": {"source": "wine", "imbalance": {"profile": "exp", "ratio": 5}}, "model": {"name": "mlp", "hidden": 8},
        "train": {"epochs": 2, "batch_size": 32, "min_steps": 0, "nc_every": 0}, "evaluation": {"seeds": [0, 1]}}
# Registered names that are also plain English: said in a sentence they are words, not names.
ENGLISH = {"tail", "pair", "temperature", "instance", "symmetric", "masked", "contrastive", "occlusion", "saliency",
           "dice", "focal", "oversample", "undersample", "progressive", "wine", "digits", "linear"}
SNAKE = re.compile(r"(?<![\w./-])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![\w/])")
PAGES = ("home", "data", "train", "runs", "results", "compare", "calibration", "geometry", "gallery", "posthoc",
         "playground", "triage", "sweeps", "lessons")


def internal_names() -> set[str]:
    """Every registered name that contains an underscore or differs from its label, but for
    those that are ordinary English words."""
    from core.registry import all_registries

    return {name for registry in all_registries().values() for name in registry.names()
            if ("_" in name or name != registry.info(name).label) and name not in ENGLISH}


def _figure_texts(fig: dict) -> list[str]:
    """Titles, axis titles, tick labels, legend names and annotations of a plotly figure."""
    out = []
    layout = fig.get("layout", {})

    def title(node):
        t = (node or {}).get("title")
        return t.get("text") if isinstance(t, dict) else t

    out.append(title(layout))
    for key, axis in layout.items():
        if key.startswith(("xaxis", "yaxis")) and isinstance(axis, dict):
            out += [title(axis), *[str(t) for t in axis.get("ticktext") or []]]
            out += [str(t) for t in axis.get("categoryarray") or []]
    out += [a.get("text") for a in layout.get("annotations") or []]
    for trace in fig.get("data", []):
        if trace.get("showlegend", True) is not False:
            out.append(trace.get("name"))
        for axis in ("x", "y"):
            values = trace.get(axis)
            if isinstance(values, list) and values and isinstance(values[0], str):
                out += values
        text = trace.get("text")
        out += [str(t) for t in (text if isinstance(text, list) else [text]) if t is not None]
    return [re.sub(r"<[^>]+>", " ", str(t)) for t in out if t]


def visible_texts(at) -> list[str]:
    """What a reader sees of an AppTest page, one string per element."""
    out = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning", "success", "error"):
        out += [shown(str(e.value)) for e in getattr(at, kind)]
    for m in at.metric:
        out += [m.label, str(m.value)]
    for kind in ("selectbox", "multiselect", "radio", "segmented_control", "button", "toggle", "checkbox",
                 "text_input", "number_input", "slider", "select_slider", "tabs", "expander"):
        for widget in getattr(at, kind, []):
            out.append(shown(str(getattr(widget, "label", ""))))
            out += [shown(str(o)) for o in getattr(widget, "options", []) or []]
    for df in at.dataframe:
        frame = df.value
        config = df.proto.columns  # column labels the page gave
        labels = {}
        try:
            labels = {k: v.get("label") for k, v in json.loads(config).items() if isinstance(v, dict)}
        except (TypeError, ValueError):
            pass
        out += [str(labels.get(c) or c) for c in frame.columns if labels.get(c, c) is not None]
        out += [str(v) for v in frame.astype(object).to_numpy().ravel() if isinstance(v, str) or v is None]
    for element in at.table:  # wrapping tables (the sweep's squares, Compare's headline, ...)
        frame = shown_table(element)
        out += [str(v) for v in [*frame.columns, *frame.index, *frame.to_numpy().ravel()] if isinstance(v, str) or v is None]
    for chart in at.get("plotly_chart"):
        out += _figure_texts(json.loads(chart.proto.spec))
    return out


def offences(texts: list[str], allowed: set[str]) -> list[str]:
    """Internal names, "None" and snake_case tokens in `texts`, but for `allowed` (the data's
    own class and column names, which come from its file)."""
    names = internal_names()
    found = []
    for text in texts:
        for token in re.findall(r"[A-Za-z0-9_]+(?!\w)(?!\()", text):  # sqrt(count) is a formula
            if token in allowed:
                continue
            if token in names or token == "None":
                found.append(f"{token!r} in {text[:120]!r}")
        for token in SNAKE.findall(text):
            if token not in allowed and token not in names:
                found.append(f"{token!r} in {text[:120]!r}")
    return found


@pytest.fixture(scope="module")
def walked_home(tmp_path_factory):
    """The standard fixes (with the table baselines), a small sweep and a tiny lesson,
    trained into one store."""
    from core.config import RunConfig
    from core.jobs import execute_run, load_sweep, start_sweep
    from core.jobs._standard_fixes import standard_fixes_spec
    from core.lessons import create_lesson
    from core.store import RunStore

    home = tmp_path_factory.mktemp("words-home")
    previous = os.environ.get("TAILSCOPE_HOME")
    os.environ["TAILSCOPE_HOME"] = str(home)
    try:
        store = RunStore(home)
        sweep = {**TINY, "name": "ratios", "grid": {"loss.name": ["ce", "weighted_ce"], "data.imbalance.ratio": [8]}}
        lesson = create_lesson("margins_and_priors", "tiny")
        ids = {}
        for key, spec in (("lesson", lesson.spec), ("sweep", load_sweep(json.loads(json.dumps(sweep)))),
                          ("fixes", standard_fixes_spec(RunConfig.model_validate(TINY), "tabular"))):
            ids[key], _, _ = start_sweep(store, spec)
            for run in store.get_sweep(ids[key]).runs:
                assert execute_run(store, store.claim(run.id, os.getpid()), embeddings=False) == "done"
    finally:
        if previous is None:
            os.environ.pop("TAILSCOPE_HOME", None)
        else:
            os.environ["TAILSCOPE_HOME"] = previous
    return {"home": home, **ids}


RUN_PAGES = ("results", "calibration", "geometry", "gallery", "posthoc", "triage")
LAZY_TABS = {"geometry": ("geometry.tabs", GEOMETRY_TABS),  # page: (its tabs' key, their labels)
             "results": ("results.tabs", RESULTS_TABS), "calibration": ("calibration.tabs", CALIBRATION_TABS)}


def _fix_run(home) -> str:
    """A network run of the standard fixes (the newest run is a table baseline)."""
    from core.store import RunStore

    return next(r.id for r in RunStore(home).list_runs("done") if "LDAM" in r.name)


def _allowed(home) -> set[str]:
    """The data's own class and column names (from its file, shown as they are)."""
    from core.config import DataConfig
    from core.data import load_data

    data = load_data(DataConfig.model_validate(TINY["data"]))
    return {t for name in [*data.class_names, *(data.feature_names or [])] for t in re.findall(r"[A-Za-z0-9_]+",
                                                                                              str(name))}


@pytest.mark.slow
def test_no_internal_name_none_or_snake_case_on_any_page(walked_home, monkeypatch):
    monkeypatch.setenv("TAILSCOPE_HOME", str(walked_home["home"]))
    allowed = _allowed(walked_home["home"])
    found = {}
    network = _fix_run(walked_home["home"])
    visits = ([(page, {}) for page in PAGES if page not in RUN_PAGES] + [(page, {"run": network}) for page in RUN_PAGES]
              + [("sweeps", {"sweep": walked_home["sweep"]}), ("lessons", {"lesson": "margins_and_priors"})])
    for page, address in visits:
        at = open_at_address(page, **address)
        assert not at.exception, (page, [e.value for e in at.exception])
        if bad := offences(visible_texts(at), allowed):
            found[f"{page} {address}"] = bad
        key, tabs = LAZY_TABS.get(page, (None, ()))
        for tab in tabs[1:]:  # a tab is drawn only when opened
            at.session_state[key] = tab
            at.run()
            assert not at.exception, (page, tab, [e.value for e in at.exception])
            if bad := offences(visible_texts(at), allowed):
                found[f"{page} {address} {tab}"] = bad
    assert not found, json.dumps(found, indent=1, ensure_ascii=False)


def test_the_scanner_finds_what_it_must():
    names = internal_names()
    assert {"weighted_ce", "ldam", "hist_gradient_boosting", "mlp", "ce", "integrated_gradients"} <= names
    assert "tail" not in names
    bad = offences(["method=balanced_softmax", "a None cell", "Train row", "train_row", "Cross-entropy (plain)"], set())
    assert len(bad) == 3 and "'None'" in bad[1] and "train_row" in bad[2]
    assert not offences(["class_0 was found"], {"class_0"})


def test_generated_names_are_display_words(walked_home):
    from core.store import RunStore

    names = [r.name for r in RunStore(walked_home["home"]).list_runs("done")]
    fixes = [n for n in names if n.startswith("standard fixes")]
    assert "standard fixes · Wine cultivars exp5 · MLP · Balanced softmax · seed 0" in fixes
    assert "standard fixes · Wine cultivars exp5 · Gradient boosting (baseline) · seed 0" in fixes
    assert not any("=" in n or "mlp" in n or "_" in n for n in names), names
    assert "ratios · Class-weighted cross-entropy · imbalance 8 : 1 · seed 1" in names
    assert any(n.endswith("LDAM margin loss + DRW · seed 0") and n.startswith("lesson: ") for n in names)


def test_the_lesson_page_draws_from_one_read_of_its_sweep(walked_home, monkeypatch):
    """State, time left and verdict come from the same record: a verdict read from a record
    holding only some finished runs says so, whatever the store holds by then."""
    import dataclasses

    from core.lessons import create_lesson, lesson_runs, lesson_state, lesson_sweep, lesson_verdict, state_of
    from core.store import RunStore

    store = RunStore(walked_home["home"])
    lesson = create_lesson("margins_and_priors", "tiny")
    record = lesson_sweep(store, lesson)
    assert state_of(lesson, record) == lesson_state(store, lesson) == {
        "status": "done", "done": lesson.n_runs, "total": lesson.n_runs, "sweep": record.id}
    earlier = dataclasses.replace(record, experiments=record.experiments[:1])  # as read while the rest trained
    assert len(lesson_runs(store, lesson, earlier)) == len(record.experiments[0].runs) < len(lesson_runs(store, lesson))
    assert lesson_verdict(store, lesson, earlier).status != lesson_verdict(store, lesson).status or \
        lesson_verdict(store, lesson, earlier).findings != lesson_verdict(store, lesson).findings
    reads = []
    monkeypatch.setenv("TAILSCOPE_HOME", str(walked_home["home"]))
    original = RunStore.get_sweep
    def get_sweep(self, sweep_id):
        import inspect

        # only the lesson page's own reads count: the sidebar's run picker reads every sweep
        # to group its runs, whatever page is open
        if any("lesson" in Path(f.filename).name for f in inspect.stack()[1:]):
            reads.append(sweep_id)
        return original(self, sweep_id)

    monkeypatch.setattr(RunStore, "get_sweep", get_sweep)
    at = open_at_address("lessons", lesson="margins_and_priors")
    assert not at.exception
    texts = " ".join(str(e.value) for e in [*at.markdown, *at.caption, *at.warning, *at.info, *at.success, *at.error])
    assert "left." not in texts and "Only " not in texts, "a finished lesson has no time left and no missing runs"
    # The size picker's look, the page's one read and its progress box's poll; the verdict
    # reads none of its own (it used to read the sweep twice more, apart from the state).
    own = reads.count(record.id)
    assert own <= 3, f"{own} reads of the lesson's sweep"

"""User text is shown as text: `md` for Streamlit markdown, `plotly_text` for plotly labels,
the figure builders escaping every name they draw, and the pages under AppTest.

What each escape must defeat is taken from the renderers themselves: CommonMark's backslash
escapes; the rewrites Streamlit 1.67 (`StreamlitMarkdown.tsx`) and GFM
(`mdast-util-gfm-autolink-literal`) run on the parsed text; plotly's pseudo-HTML and its
`%{...}` template placeholders. The real browser check is `test_browser.py`.
"""

from __future__ import annotations

import html
import json
import re
import string

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import HOSTILE_CLASSES, HOSTILE_COLUMNS, HOSTILE_FILE, HOSTILE_LABEL_COLUMN, HOSTILE_RUN_NAMES, shown
from core.text import WORD_JOINER, md, plotly_text

WJ = WORD_JOINER
HOSTILE = [*HOSTILE_CLASSES, *HOSTILE_COLUMNS, HOSTILE_LABEL_COLUMN, *HOSTILE_RUN_NAMES]
PIECES = [*string.punctuation, *" \n\t\rabc12", "www.", "http://", "->", ":red[", ":smile:", ":material/"]
TRICKY = st.lists(st.sampled_from(PIECES)).map("".join)
ANY_TEXT = (TRICKY | st.text()).filter(lambda t: WORD_JOINER not in t)

# Rewrites of the *parsed* text (escapes already resolved), which backslashes cannot stop.
TEXT_REWRITES = {
    "emoji shortcode": re.compile(r":[\w+-]+:"),
    "material icon": re.compile(r":material[/_]\w+:"),
    "Streamlit logo": re.compile(r":streamlit:"),
    "autolinked URL": re.compile(r"(https?://|www(?=\.))", re.IGNORECASE),
    "autolinked e-mail": re.compile(r"[-.\w+]+@[-\w]+(?:\.[-\w]+)+"),
    "typographic arrow": re.compile(r"(^|\s)(<->|->|<-|--|>=|<=|~=)(\s|$)"),
}
EMOJI_IN_SOURCE = re.compile(r":(?!material/|streamlit:)[\w+-][\w_+-]*:")  # Streamlit loads remark-emoji on this


def _unescaped_punctuation(source: str) -> list[str]:
    """ASCII punctuation in markdown source that no backslash escapes."""
    found, i = [], 0
    while i < len(source):
        if source[i] == "\\":
            i += 2
            continue
        if source[i] in string.punctuation:
            found.append(source[i])
        i += 1
    return found


# --- md ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("plain name 2", "plain name 2"),
    ("![x](http://203.0.113.9/x.png)", rf"\!\[x\]\(http\:{WJ}\/\/203\.0\.113\.9\/x\.png\)"),
    ("<b>bold</b>", r"\<b\>bold\<\/b\>"),
    (":red[rare]", rf"\:{WJ}red\[rare\]"),
    (":smile: :material/home: :streamlit:", rf"\:{WJ}smile\: \:{WJ}material\/home\: \:{WJ}streamlit\:"),
    ("a@b.co www.x.org", rf"a\@{WJ}b\.co www{WJ}\.x\.org"),
    ("a -> b <= c", rf"a \-{WJ}\> b \<{WJ}\= c"),
    ("$x$ **b** _e_ `c` ~s~ |t|", r"\$x\$ \*\*b\*\* \_e\_ \`c\` \~s\~ \|t\|"),
    ("# h\n- item\r\n1. one\t  two", r"\# h \- item 1\. one two"),
    ("&lt; %{x} back\\slash", r"\&lt\; \%\{x\} back\\slash"),
    ("Note: 12:30", rf"Note\: 12\:{WJ}30"),
])
def test_md_escapes_by_hand(text, expected):
    assert md(text) == expected


@given(ANY_TEXT)
def test_md_shows_exactly_the_text_on_one_line(text):
    source = md(text)
    assert shown(source) == " ".join(text.split()), "what a reader sees is the text, spaces collapsed"
    assert not _unescaped_punctuation(source), "no character is left for markdown to read as syntax"
    assert "\n" not in source and "\r" not in source
    assert not EMOJI_IN_SOURCE.search(source)
    seen = shown(source).replace(WJ, "")
    parsed = re.sub(r"\\(.)", r"\1", source)  # the text nodes a markdown parser produces
    for what, pattern in TEXT_REWRITES.items():
        if what == "material icon":  # Streamlit rewrites the source's ":material/" before parsing
            parsed = parsed.replace(":material/", ":material_")
        assert not pattern.search(parsed), f"{what} in {parsed!r} (reads {seen!r})"


def test_md_accepts_any_object():
    assert md(ValueError("bad <b>")) == r"bad \<b\>"
    assert md(3) == "3"


# --- plotly_text -------------------------------------------------------------------------

def test_plotly_text_by_hand():
    assert plotly_text("<b>x</b> & %{y:.2f} 100%") == "&lt;b&gt;x&lt;/b&gt; &amp; &#37;{y:.2f} 100%"
    assert plotly_text("cat") == "cat" and plotly_text(None) is None  # no title stays no title


@given(ANY_TEXT)
def test_plotly_text_reads_back_as_the_text(text):
    out = plotly_text(text)
    assert html.unescape(out) == text, "plotly turns these entities back into the characters"
    assert "<" not in out and ">" not in out and "%{" not in out


# --- every figure builder ----------------------------------------------------------------

def _strings(value):
    """Every string in a figure's JSON (titles, ticks, legend names, text, templates, customdata)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def _markup(fig) -> list[str]:
    """Hostile names that reach the figure unescaped (plotly would read their markup)."""
    strings = list(_strings(json.loads(fig.to_json())))
    return [h for h in HOSTILE if any(h in s for s in strings) and h != plotly_text(h)]


def _figures():
    from core import viz
    from core.analysis import class_geometry, group_metrics, per_class_metrics, reliability_bins, resampling_view

    k, names, features, runs = 4, HOSTILE_CLASSES, HOSTILE_COLUMNS, HOSTILE_RUN_NAMES
    rng = np.random.default_rng(0)
    counts, groups = np.array([60, 30, 12, 4]), ["head", "medium", "tail", "tail"]
    labels = np.arange(120) % k
    logits = rng.normal(size=(120, k)) + 2 * np.eye(k)[labels]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    per_class = per_class_metrics(logits, labels, counts, names)
    feats = rng.normal(size=(120, 6))
    geometry = class_geometry(feats, labels, rng.normal(size=(k, 6)), counts)
    history = [{"epoch": e, "val_recall": [0.5] * k, "val_balanced_accuracy": 0.5} for e in (1, 2)]
    image = rng.random((1, 8, 8))
    x4 = rng.normal(size=(40, 4))
    view = resampling_view(x4, labels[:40], x4, labels[:40], np.zeros(40, bool), np.zeros(40, bool))
    paired = pd.DataFrame({"run": [runs[1]], "difference": [0.1], "low": [0.0], "high": [0.2],
                           "verdict": ["within noise"]})
    grid = np.linspace(0, 1, 5)
    return {
        "confusion": viz.confusion_figure(np.ones((k, k)), names),
        "per_class": viz.per_class_figure(per_class),
        "pr_curves": viz.pr_curve_figure(probs, labels, range(k), names),
        "metric_comparison": viz.metric_comparison_figure({r: per_class for r in runs}),
        "metric_difference": viz.metric_difference_figure({r: per_class for r in runs}, reference=runs[0]),
        "paired_difference": viz.paired_difference_figure(paired, runs[0], "balanced accuracy"),
        "group_comparison": viz.group_comparison_figure({r: group_metrics(logits, labels, counts) for r in runs}),
        "curves_overlay": viz.curves_overlay_figure({r: history for r in runs}),
        "recall_heatmap": viz.recall_heatmap_figure(history, names, counts),
        "class_counts": viz.class_counts_figure(counts, counts, names, groups),
        "image_grid": viz.image_grid(rng.random((8, 1, 4, 4)), np.arange(8) % k, names),
        "resampling": viz.resampling_figure(view, names),
        "reliability": viz.reliability_diagram({n: reliability_bins(probs, labels) for n in names[:2]},
                                               title=runs[0]),
        "reliability_one": viz.reliability_diagram({names[1]: reliability_bins(probs, labels)}),
        "per_class_ece": viz.per_class_ece_bars(names, np.ones(k), counts, groups),
        "posthoc_recall": viz.posthoc_recall_bars(names, np.ones(k), np.ones(k), counts, groups),
        "posthoc_confusion": viz.posthoc_confusion_heatmap(np.ones((k, k)), names, counts),
        "embedding": viz.embedding_scatter(rng.normal(size=(120, 2)), labels, names, counts, pred=logits.argmax(1),
                                           hover_text=viz.embedding_hover_features(feats[:, :4], features),
                                           title=runs[0]),
        "norm_count": viz.norm_count_figure(geometry, names, groups),
        "cosine": viz.cosine_heatmap(rng.normal(size=(k, 6)), names, title=runs[1]),
        "spread": viz.spread_bars(geometry, names, groups),
        "sample_image": viz.sample_image_figure(image, title=names[1]),
        "image_attribution": viz.image_with_attribution(image, image, title=f"towards {names[2]}"),
        "attribution_pair": viz.attribution_pair_figure(image, image, image, names[1], names[2]),
        "feature_bars": viz.feature_attribution_bars(np.arange(4.0), features, title=names[1]),
        "importance": viz.class_importance_heatmap(np.ones((k, 4)), names, features, groups),
        "regions": viz.decision_regions_figure(grid, grid, rng.random((5, 5, k)), rng.random((40, 2)), labels[:40],
                                               names, title=names[1]),
        "recall_bars": viz.recall_bars_figure(names, np.ones(k), counts, title=names[2]),
        "accuracy_bars": viz.accuracy_bars_figure([0.5, 0.6], [0.4, 0.5], runs, title=runs[1]),
    }


def test_every_builder_escapes_the_names_it_draws():
    figures = _figures()
    leaks = {name: _markup(fig) for name, fig in figures.items() if _markup(fig)}
    assert not leaks, f"names drawn as plotly markup: {leaks}"
    confusion = figures["confusion"]
    assert list(confusion.data[0].x) == [plotly_text(n) for n in HOSTILE_CLASSES], "shown, escaped, in order"
    assert "&#37;{x} weight" in " ".join(_strings(json.loads(figures["feature_bars"].to_json())))


def test_tail_warnings_escape_class_names():
    per_class = pd.DataFrame({"class": HOSTILE_CLASSES, "recall": [0.9, 0.0, 0.0, 0.1], "count_train": [90, 9, 5, 3],
                              "support": [10, 5, 5, 5]})
    from core.viz import tail_warnings

    notes = tail_warnings({"accuracy": 0.8, "balanced_accuracy": 0.25}, per_class)
    assert len(notes) == 2 and all(md(HOSTILE_CLASSES[1]) in note for note in notes)
    assert not any(h in note for h in HOSTILE_CLASSES for note in notes)


# --- the pages, under AppTest ------------------------------------------------------------

PAGES = ["home", "data", "train", "runs", "results", "compare", "geometry", "calibration", "posthoc", "gallery", "triage",
         "sweeps"]
MARKDOWN_FIELDS = {"body", "label", "help", "text", "caption", "content", "delta_description"}


def _rendered_texts(node):
    """(field, text) of every string Streamlit renders as markdown, from the AppTest tree:
    bodies, labels, help texts, captions, radio and segmented-control options. Selectbox and
    multiselect options and table cells are left out: they are shown as plain text."""
    proto = getattr(node, "proto", None)
    if proto is not None:
        yield from _proto_texts(proto)
    for child in (getattr(node, "children", None) or {}).values():
        yield from _rendered_texts(child)


def _proto_texts(message):
    for field, value in message.ListFields():
        items = value if field.is_repeated else [value]
        for item in items:
            if hasattr(item, "ListFields"):
                yield from _proto_texts(item)
            elif field.name == "label" and _collapsed(message):
                continue  # never drawn: only read out (its aria-label), as written
            elif isinstance(item, str) and (field.name in MARKDOWN_FIELDS or (
                    field.name == "options" and type(message).__name__ == "Radio")):
                yield field.name, item


def _collapsed(message) -> bool:
    visibility = getattr(message, "label_visibility", None)
    return visibility is not None and visibility.value == type(visibility).LabelVisibilityOptions.COLLAPSED


def _read_out_labels(node):
    """Every widget label, as a screen reader reads it: Streamlit gives it as written to the
    widget's aria-label, so a Markdown escape (`\\_`, `\\[`) would be read out."""
    proto = getattr(node, "proto", None)
    if proto is not None and isinstance(getattr(proto, "label", None), str) and hasattr(proto, "label_visibility"):
        yield proto.label
    for child in (getattr(node, "children", None) or {}).values():
        yield from _read_out_labels(child)


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory) -> dict:
    from conftest import make_hostile_runs

    return make_hostile_runs(tmp_path_factory.mktemp("hostile-home"), embeddings=True)


@pytest.mark.xdist_group("hostile")
@pytest.mark.parametrize("page", PAGES)
def test_pages_show_hostile_names_as_text(hostile_store, open_page, monkeypatch, page):
    monkeypatch.setenv("TAILSCOPE_HOME", str(hostile_store["home"]))
    at = open_page(page, run_id=hostile_store["runs"][0])
    assert not at.exception, [e.value for e in at.exception]
    texts = list(_rendered_texts(at._tree))
    raw = [(field, text) for field, text in texts for h in [*HOSTILE, HOSTILE_FILE] if h in text]
    assert not raw, f"user text reaches markdown unescaped: {raw}"
    if page == "results":  # the clinic's mix: one input per class, each named by its class
        at.radio(key="results.prior.kind").set_value("custom").run()
        assert not at.exception, [e.value for e in at.exception]
        labels = {n.label for n in at.number_input}
        assert set(HOSTILE_CLASSES) <= labels, labels
        texts = list(_rendered_texts(at._tree))
        assert not [(f, t) for f, t in texts for h in [*HOSTILE, HOSTILE_FILE] if h in t], "drawn unescaped"
    escaped = [label for label in _read_out_labels(at._tree) if re.search(r"\\[^\w\s]", label)]
    assert not escaped, f"labels read out with their Markdown escapes: {escaped}"
    for chart in at.get("plotly_chart"):
        spec = " ".join(_strings(json.loads(chart.proto.spec)))
        assert not [h for h in HOSTILE if h in spec and h != plotly_text(h)], "a name drawn as plotly markup"


@pytest.mark.xdist_group("hostile")
def test_results_caption_names_the_run_escaped(hostile_store, open_page, monkeypatch):
    monkeypatch.setenv("TAILSCOPE_HOME", str(hostile_store["home"]))
    at = open_page("results", run_id=hostile_store["runs"][0])
    caption = at.caption[0].value
    assert caption.startswith(f"**{md(HOSTILE_RUN_NAMES[0])}** · method ")
    assert HOSTILE_RUN_NAMES[0] in shown(caption) and md(HOSTILE_FILE) in caption

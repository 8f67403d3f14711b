"""A self-contained HTML error report: one card per misclassified (or chosen) sample.

Made to be mailed to someone who was never in the app (a clinician, a reviewer): one
file, plotly's JavaScript inlined once, no external URL, so it opens offline and leaks
nothing. Every string that came from a user (class names, ids, notes, feature names) is
escaped; figures carry them as JSON, which plotly writes with `<` escaped, and the figure
builders escape them for plotly's own markup (`core.text.plotly_text`).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.offline

from core.registry import plugin_label
from core.viz._attribution_figs import (
    NEGATIVE_COLOR,
    POSITIVE_COLOR,
    attribution_pair_figure,
    feature_attribution_bars,
    image_with_attribution,
)

__all__ = ["error_report_html"]

_TOP_K_PROBS = 3

_CSS = f"""
body {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto;
       max-width: 1100px; padding: 1.5rem; color: #1f2933; background: #f7f8fa; }}
h1 {{ margin-bottom: .2rem; }}
.meta {{ color: #52606d; margin-top: 0; }}
.explainer, .notes {{ background: #fff; border: 1px solid #d9e2ec; border-radius: 8px; padding: .8rem 1.2rem; }}
.pos {{ color: {POSITIVE_COLOR}; font-weight: 600; }}
.neg {{ color: {NEGATIVE_COLOR}; font-weight: 600; }}
.case {{ background: #fff; border: 1px solid #d9e2ec; border-left: 6px solid #c62828; border-radius: 8px;
        margin: 1.2rem 0; padding: .8rem 1.2rem; page-break-inside: avoid; }}
.case.correct {{ border-left-color: #2e7d32; }}
.case h2 {{ font-size: 1.1rem; margin: .2rem 0 .6rem; }}
.facts {{ display: flex; flex-wrap: wrap; gap: 1.5rem; }}
.facts dl {{ display: grid; grid-template-columns: auto auto; gap: .2rem 1rem; margin: 0; }}
.facts dt {{ color: #52606d; }}
.facts dd {{ margin: 0; font-weight: 600; }}
table.probs {{ border-collapse: collapse; }}
table.probs td {{ padding: .1rem .6rem .1rem 0; }}
.bar {{ display: inline-block; height: .7rem; background: #7b8794; vertical-align: middle; }}
.figs {{ display: flex; flex-wrap: wrap; gap: .5rem; margin-top: .6rem; }}
.figs > div.fig {{ flex: 1 1 320px; min-width: 0; }}
.missing {{ color: #7b8794; font-style: italic; }}
.reviews table, .oppoint table {{ border-collapse: collapse; width: 100%; }}
.reviews th, .reviews td, .oppoint th, .oppoint td {{ border-bottom: 1px solid #d9e2ec; padding: .3rem .6rem;
        text-align: left; vertical-align: top; }}
.reviews td.note {{ white-space: pre-wrap; }}
.review {{ margin-top: .6rem; padding: .4rem .8rem; background: #fff8e1; border-radius: 6px; }}
"""


def error_report_html(
    cases: list[dict],
    *,
    title: str,
    run_name: str,
    method: str,
    class_names: Sequence[str],
    notes: str = "",
    reviews: pd.DataFrame | None = None,
    operating_point: Mapping[str, Any] | None = None,
    damaged: Sequence[str] = (),
) -> str:
    """One HTML document explaining each case: true vs predicted class, the top
    probabilities and the attribution towards both classes (image overlays or feature
    bars). Case dicts hold "sample_id", "case" (its name: "patient_id P-00412"), "true",
    "pred", "probs" (K,), "input",
    "attr_true", "attr_pred", "modality" ("image"/"tabular"), "feature_names" and, for
    tables, optionally "values" (a feature / value / standardised frame).

    `reviews` (core.analysis.reviews_table) adds a "Case reviews" section with every
    reviewer's mark and note, and each reviewed card shows its own; `operating_point` (the
    run's saved "operating_point" annotation: class, threshold, prevalence, cost_miss)
    adds the decision rule the run is used with. `damaged` lists saved files left out because
    they cannot be used (each line names the file and where it is), so a reader knows."""
    names = [str(c) for c in class_names]
    figure_html = _FigureWriter()
    marks = _marks_by_case(reviews)
    cards = [_case_card(case, names, figure_html, marks.get(str(case["sample_id"]))) for case in cases]
    n_errors = sum(int(c["true"]) != int(c["pred"]) for c in cases)
    head_script = f"<script>{plotly.offline.get_plotlyjs()}</script>" if figure_html.used else ""
    notes_html = ""
    if notes.strip():
        paragraphs = "".join(f"<p>{_esc(p)}</p>" for p in notes.strip().split("\n\n"))
        notes_html = f'<section class="notes"><h2>Notes</h2>{paragraphs}</section>'
    if damaged:
        items = "".join(f"<li>{_esc(line)}</li>" for line in damaged)
        notes_html += f'<section class="notes damaged"><h2>Left out: damaged files</h2><ul>{items}</ul></section>'
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_esc(title)}</title>
<style>{_CSS}</style>
{head_script}
</head>
<body>
<header>
<h1>{_esc(title)}</h1>
<p class="meta">Run <b>{_esc(run_name)}</b> &middot; attribution method <b>{_esc(plugin_label("attribution", method))}</b> &middot;
{len(cases)} case{'s' if len(cases) != 1 else ''}, {n_errors} misclassified &middot; {len(names)} classes</p>
</header>
{_explainer(method)}
{notes_html}
{_operating_point_html(operating_point, names)}
{_reviews_html(reviews)}
<main>
{''.join(cards) if cards else '<p class="missing">No cases to show.</p>'}
</main>
</body>
</html>
"""


class _FigureWriter:
    """Figures as HTML fragments; plotly.js itself is inlined once in the head."""

    def __init__(self) -> None:
        self.used = False

    def __call__(self, fig: go.Figure) -> str:
        self.used = True
        fragment = fig.to_html(full_html=False, include_plotlyjs=False,
                               config={"displaylogo": False, "responsive": True})
        return f'<div class="fig">{fragment}</div>'


def _explainer(method: str) -> str:
    from core.analysis import ATTRIBUTIONS  # viz sits above analysis; imported late to keep viz light

    about = ""
    if method in ATTRIBUTIONS:
        info = ATTRIBUTIONS.info(method)
        about = f"<p><b>{_esc(info.label)}</b>: {_esc(info.description)}" + (f" <i>({_esc(info.paper)})</i>" if info.paper else "") + "</p>"
    return f"""<section class="explainer">
<h2>How to read this report</h2>
<p>Each card is one sample the model got wrong (or that was chosen for review). An
<b>attribution map</b> shows which parts of the input the model relied on for one class:
<span class="pos">red</span> parts pushed the model <i>towards</i> that class,
<span class="neg">blue</span> parts pushed it <i>away</i>, and uncoloured parts mattered little.
Stronger colour means a larger effect. Each card shows two explanations: for the
<b>true</b> class (what spoke for the right answer) and for the <b>predicted</b> class (what
misled the model). For tables, bars play the same role: the longest bars are the features
that mattered most.</p>
<p>An attribution shows what <i>this model</i> used, not what is causally or clinically
right; a confident map on the wrong region is a reason to distrust the model there.</p>
{about}
</section>"""


def _case_card(case: dict[str, Any], class_names: list[str], figure_html: _FigureWriter,
               review: Mapping[str, Any] | None = None) -> str:
    true, pred = int(case["true"]), int(case["pred"])
    for label, value in (("true", true), ("pred", pred)):
        if not 0 <= value < len(class_names):
            raise ValueError(f"case {case.get('sample_id')!r}: {label} class {value} is not one of the {len(class_names)} classes")
    probs = np.asarray(case["probs"], dtype=np.float64).reshape(-1)
    if probs.size != len(class_names):
        raise ValueError(f"case {case.get('sample_id')!r}: {probs.size} probabilities for {len(class_names)} classes")
    true_name, pred_name = class_names[true], class_names[pred]
    top = np.argsort(-probs, kind="stable")[:_TOP_K_PROBS]
    prob_rows = "".join(
        f'<tr><td>{_esc(class_names[k])}</td><td>{probs[k]:.1%}</td>'
        f'<td><span class="bar" style="width:{max(0.0, min(1.0, probs[k])) * 120:.0f}px"></span></td></tr>'
        for k in top
    )
    status = "correct" if true == pred else "error"
    return f"""<article class="case {status}">
<h2>{_esc(_case_title(case))} &mdash; true <b>{_esc(true_name)}</b>, predicted <b>{_esc(pred_name)}</b></h2>
<div class="facts">
<dl>
<dt>True class</dt><dd>{_esc(true_name)}</dd>
<dt>Predicted class</dt><dd>{_esc(pred_name)}</dd>
<dt>Confidence (predicted)</dt><dd>{probs[pred]:.1%}</dd>
<dt>Probability of true class</dt><dd>{probs[true]:.1%}</dd>
</dl>
<table class="probs"><caption>Top {len(top)} probabilities</caption>{prob_rows}</table>
</div>
<div class="figs">{_case_figures(case, true_name, pred_name, true == pred, figure_html)}</div>
{_card_review(review)}
</article>
"""


def _case_title(case: dict[str, Any]) -> str:
    """The case as a person finds it ("patient_id P-00412"); its sample id without one."""
    return str(case.get("case") or f"Sample {case['sample_id']}")


def _case_figures(case: dict[str, Any], true_name: str, pred_name: str, same: bool, figure_html: _FigureWriter) -> str:
    attr_true, attr_pred = case.get("attr_true"), case.get("attr_pred")
    modality = case.get("modality")
    if attr_true is None and attr_pred is None:
        return '<p class="missing">No attribution was computed for this sample.</p>'
    if modality == "image":
        image = np.asarray(case["input"])
        if same or attr_pred is None or attr_true is None:
            attr, name = (attr_true, true_name) if attr_true is not None else (attr_pred, pred_name)
            fig = image_with_attribution(image, np.asarray(attr), title=f"towards {name}")
        else:
            fig = attribution_pair_figure(image, np.asarray(attr_true), np.asarray(attr_pred), true_name, pred_name, opacity=0.5)
        fig.update_layout(height=340)
        return figure_html(fig)
    if modality == "tabular":
        feature_names = case.get("feature_names")
        parts = [_values_table(case["values"])] if case.get("values") is not None else []
        if case.get("text_html"):  # built by `highlighted_text_html`, which escapes the note itself
            parts.insert(0, str(case["text_html"]))
        for attr, label, name in ((attr_true, "true", true_name), (attr_pred, "predicted", pred_name)):
            if attr is None or (same and label == "predicted"):
                continue
            parts.append(figure_html(feature_attribution_bars(np.asarray(attr), feature_names, top=10, title=f"towards {label}: {name}")))
        return "".join(parts)
    raise ValueError(f"case {case.get('sample_id')!r}: modality must be 'image' or 'tabular', got {modality!r}")


def _values_table(values: Any) -> str:
    """The sample's values as the data file has them, the standardised value beside each."""
    rows = "".join(f"<tr><td>{_esc(r.feature)}</td><td>{_esc(r.value)}</td><td>{float(r.standardised):+.2f}</td></tr>"
                   for r in values.itertuples(index=False))
    return ('<table class="values"><caption>Values (as in the data file; standardised: what the model saw)</caption>'
            f"<tr><th>feature</th><th>value</th><th>standardised</th></tr>{rows}</table>")


def _marks_by_case(reviews: pd.DataFrame | None) -> dict[str, dict[str, Any]]:
    if reviews is None or reviews.empty:
        return {}
    return {str(r["test_row"]): r for r in reviews.to_dict("records")}


def _card_review(review: Mapping[str, Any] | None) -> str:
    if not review:
        return ""
    note = f": {_esc(review['note'])}" if str(review.get("note", "")).strip() else ""
    return f'<p class="review">Reviewer: <b>{_esc(review["mark"])}</b>{note}</p>'


def _reviews_html(reviews: pd.DataFrame | None) -> str:
    """Every reviewed case, with what the reviewer decided and why."""
    if reviews is None or reviews.empty:
        return ""
    rows = "".join(
        f"<tr><td>{_esc(r.get('case') or r['test_row'])}</td><td>{_esc(r['true'])}</td><td>{_esc(r['predicted'])}</td>"
        f"<td>{float(r['confidence']):.1%}</td><td>{_esc(r['mark'])}</td><td class=\"note\">{_esc(r['note'])}</td>"
        f"<td>{_esc(r['updated'])}</td></tr>"
        for r in reviews.to_dict("records"))
    return f"""<section class="explainer reviews">
<h2>Case reviews</h2>
<p>What a reviewer decided about each case they looked at: <b>label looks wrong</b> (the recorded answer is
probably a mistake in the data), <b>ambiguous</b> (the case could fairly belong to either class) or <b>model
error</b> (the label is right and the model is wrong). Confidence is the probability the model gave its own answer.</p>
<table><tr><th>Case</th><th>True class</th><th>Predicted</th><th>Confidence</th><th>Mark</th><th>Note</th>
<th>Saved (UTC)</th></tr>{rows}</table>
</section>"""


def _operating_point_html(point: Mapping[str, Any] | None, class_names: list[str]) -> str:
    """The saved decision rule: call a case positive for one class above a threshold."""
    if not point or "class" not in point or "threshold" not in point:
        return ""
    k = int(point["class"])
    name = class_names[k] if 0 <= k < len(class_names) else f"class {k}"
    prevalence = point.get("prevalence")
    cost = point.get("cost_miss")
    rows = [("Class", _esc(name)), ("Threshold", f"{float(point['threshold']):.3g}"),
            ("Prevalence assumed", "the test set's own" if prevalence is None else f"{float(prevalence):.2%}")]
    if cost is not None:
        rows.append(("Cost of a missed case", f"{float(cost):g} false alarms"))
    cells = "".join(f"<tr><th>{a}</th><td>{b}</td></tr>" for a, b in rows)
    return f"""<section class="explainer oppoint">
<h2>Saved operating point</h2>
<p>The run is used with this rule: a case is called <b>{_esc(name)}</b> when the model's probability for it is at
least the threshold.</p>
<table>{cells}</table>
</section>"""


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)

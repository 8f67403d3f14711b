"""The class mix a run is scored at, shared by Results, Calibration and the Post-hoc explorer.

A test split has one class mix; a clinic has another. The choice is kept in the session and
in the address (?prior=balanced, ?prior=0.97,0.03, plus ?adapt=1), so moving between pages or
sharing a link keeps it. The numbers come from `core.analysis` (`resolve_prior`,
`metrics_at_prior`, `prior_shift_curve`), cached per run and choice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from app import state
from app.fit_tables import wrapping_table
from app.services import get_store, load_bundle
from app.widgets import read_as_written
from core.analysis import adjusted_logits, metrics_at_prior, prior_shift_curve, resolve_prior
from core.run_words import few_cases_words
from core.text import md
from core.viz import SHIFT_METRIC_LABELS, prior_shift_figure

__all__ = ["PriorChoice", "PRIOR_KINDS", "prior_picker", "prior_note", "metrics_at", "shift_curve", "shift_chart", "prior_cards",
           "per_class_at_prior", "per_class_table"]

PRIOR_KINDS = {"test": "the test split as it is", "balanced": "balanced: every class equally common",
               "train": "the training mix", "custom": "my clinic's mix"}
CARD_KEYS = {"accuracy": "Accuracy", "balanced_accuracy": "Balanced accuracy", "f1_macro": "Macro F1",
             "ece": "ECE"}
CARD_HELP = {
    "accuracy": "Share of all cases the model gets right, for a set of cases with this class mix. Changes with the "
                "mix: common classes weigh more.",
    "balanced_accuracy": "The average of each class's hit rate (recall). A hit rate is measured within its class, so "
                         "it does not change with the mix, unless the model is adapted to the mix.",
    "f1_macro": "Per class, the balance of finding its cases (recall) and being right when calling it (precision); "
                "averaged over classes. Precision changes with the mix, so F1 does too.",
    "ece": "Expected calibration error: how far the model's confidence is from how often it is right (lower is "
           "better). Changes with the mix.",
}
_MANY_CLASSES = 12  # more than this: the shares are typed as one list


@dataclass(frozen=True)
class PriorChoice:
    """The class mix chosen on a page: `code` as in the address, `prior` one share per class."""

    code: str  # "test", "balanced", "train" or "0.97,0.03"
    prior: tuple[float, ...]
    adapt: bool
    description: str  # in words, for captions

    @property
    def as_tested(self) -> bool:
        """The stored numbers apply: the test split's own mix, the model unchanged."""
        return self.code == "test" and not self.adapt


def _training_mix(bundle) -> np.ndarray:
    counts = np.asarray(bundle.artifacts.class_counts, dtype=float)
    return counts / max(counts.sum(), 1)


def _describe(prior: np.ndarray, names: list[str]) -> str:
    """'84 % benign, 16 % melanoma' (up to four classes), else the commonest and rarest share."""
    shares = [(float(p), n) for p, n in zip(prior, names)]
    if len(shares) <= 4:
        return ", ".join(f"{_pct(p)} {md(n)}" for p, n in shares)
    order = sorted(shares, reverse=True)
    return (f"commonest class {md(order[0][1])} {_pct(order[0][0])}, rarest {md(order[-1][1])} "
            f"{_pct(order[-1][0])}")


def _pct(p: float) -> str:
    return f"{p:.0%}" if p >= 0.1 or p == 0 else f"{p:.1%}" if p >= 0.01 else f"{p:.2%}"


def _from_address() -> bool:
    """A link's ?prior= / ?adapt= wins over the session's choice when it changed outside the page."""
    address = (st.query_params.get("prior"), st.query_params.get("adapt"))
    if address[0] and address != st.session_state.get(state.PRIOR_IN_ADDRESS):
        st.session_state[state.PRIOR] = address[0]
        st.session_state[state.PRIOR_ADAPT] = address[1] == "1"
        st.session_state[state.PRIOR_IN_ADDRESS] = address
        st.session_state.pop(_FRESH, None)
        return True
    return False


_FRESH = "tailscope.prior_widgets_from"  # (page key, run id, code, adapt) the widgets were last filled from


def _fill_widgets(key: str, bundle, code: str, adapt: bool) -> None:
    """Set the page's widgets to show `code` (before they are drawn)."""
    k, rare = bundle.artifacts.num_classes, _rare_class(bundle)
    st.session_state[f"{key}.prior.kind"] = code if code in PRIOR_KINDS and code != "custom" else "custom"
    st.session_state[f"{key}.prior.adapt"] = adapt
    shares = None
    if code not in PRIOR_KINDS:
        try:
            shares = [float(x) for x in code.split(",")]
        except ValueError:
            shares = None
    if shares is None or len(shares) != k or sum(shares) <= 0:
        shares = np.bincount(bundle.artifacts.labels, minlength=k).tolist()
    total = sum(shares)
    percent = [100 * s / total for s in shares]
    st.session_state[f"{key}.prior.percent.{bundle.record.id}"] = round(percent[rare], 3)
    st.session_state[f"{key}.prior.list.{bundle.record.id}"] = ", ".join(f"{p:.3g}" for p in percent)
    for j, p in enumerate(percent):
        st.session_state[f"{key}.prior.share.{bundle.record.id}.{j}"] = round(p, 3)


def _rare_class(bundle) -> int:
    return int(np.argmin(bundle.artifacts.class_counts))


def _custom_code(key: str, bundle) -> str:
    """Draw the entry of one share per class; returns them as the address writes them."""
    names, k, run_id = bundle.class_names, bundle.artifacts.num_classes, bundle.record.id
    if k == 2:
        rare = _rare_class(bundle)
        p = st.number_input(min_value=0.0, max_value=100.0, step=0.5, format="%g", key=f"{key}.prior.percent.{run_id}",
                            **read_as_written(f"Prevalence of {names[rare]} (%)",
                                              f"Prevalence of {md(names[rare])} (%)"),
                            help=f"How many of every 100 cases in your setting are {md(names[rare])}, e.g. 3.")
        shares = [0.0, 0.0]
        shares[rare], shares[1 - rare] = p / 100, 1 - p / 100
    elif k <= _MANY_CLASSES:
        st.caption("Share of each class in your setting (%); they are scaled to add up to 100.")
        shares = []
        for start in range(0, k, 4):  # rows of four (six leave "33.3" and its +/- no room at 1024 px), in
            row = st.columns(min(k, 4))  # class order however a narrow screen wraps them
            for j, col in zip(range(start, min(start + 4, k)), row):
                with col:
                    shares.append(st.number_input(step=1.0, format="%g", min_value=0.0, max_value=100.0,
                                                  key=f"{key}.prior.share.{run_id}.{j}",
                                                  **read_as_written(names[j], md(names[j]))))
    else:
        text = st.text_input("Share of each class (%), in class order, separated by commas",
                             key=f"{key}.prior.list.{run_id}",
                             help="One number per class, " + ", ".join(md(n) for n in names[:5]) + ", …; they are "
                                  "scaled to add up to 100.")
        try:
            shares = [float(x) for x in text.replace(";", ",").split(",") if x.strip()]
        except ValueError:
            return text.strip() or "test"
    return ",".join(f"{s:.6g}" for s in shares)


def prior_picker(bundle, key: str) -> PriorChoice:
    """The class-mix widget of a page (`key`: the page's widget prefix). Keeps the choice in
    the session and the address; a mix that cannot be used is said so and the test split's
    own mix used instead."""
    art, names = bundle.artifacts, bundle.class_names
    moved = _from_address()
    code = st.session_state.get(state.PRIOR, "test")
    adapt = bool(st.session_state.get(state.PRIOR_ADAPT, False))
    filled_from = (key, bundle.record.id, code, adapt)
    if moved or f"{key}.prior.kind" not in st.session_state or st.session_state.get(_FRESH) != filled_from:
        _fill_widgets(key, bundle, code, adapt)
    with st.container(border=True):
        c1, c2 = st.columns([3, 2])
        kind = c1.radio("Score the model at this class mix", list(PRIOR_KINDS), format_func=PRIOR_KINDS.get,
                        horizontal=True, key=f"{key}.prior.kind",
                        help="The test cases are re-weighted so the numbers are those of a set of cases with this "
                             "mix of classes, such as your clinic's. Kept when you switch pages, and in the address.")
        adapt = c2.toggle("Adapt the model to this mix", key=f"{key}.prior.adapt",
                          help="Moves the model's scores to the new mix (score + log(new share / training share), "
                               "Saerens et al. 2002), as if it had been told how common each class is there. "
                               "This changes its answers, so recall per class changes too.")
        code = _custom_code(key, bundle) if kind == "custom" else kind
    st.session_state[state.PRIOR], st.session_state[state.PRIOR_ADAPT] = code, adapt
    st.session_state[_FRESH] = (key, bundle.record.id, code, adapt)
    _to_address(code, adapt)
    try:
        prior = resolve_prior(code if code in PRIOR_KINDS else [float(x) for x in code.split(",")], art.labels,
                              art.num_classes, _training_mix(bundle))
    except ValueError as exc:
        st.warning(f"That mix cannot be used: {md(exc)}. Showing the test split as it is.", icon="⚠️")
        code, adapt = "test", False
        prior = resolve_prior("test", art.labels, art.num_classes, _training_mix(bundle))
    words = {"test": "the test split's own mix", "balanced": "a balanced mix", "train": "the training mix"}
    description = f"{words.get(code, 'your mix')} ({_describe(prior, names)})"
    return PriorChoice(code, tuple(float(p) for p in prior), bool(adapt), description)


def _to_address(code: str, adapt: bool) -> None:
    if code == "test" and not adapt:
        for name in ("prior", "adapt"):
            if name in st.query_params:
                del st.query_params[name]
    else:
        st.query_params["prior"] = code
        if adapt:
            st.query_params["adapt"] = "1"
        elif "adapt" in st.query_params:
            del st.query_params["adapt"]
    st.session_state[state.PRIOR_IN_ADDRESS] = (st.query_params.get("prior"), st.query_params.get("adapt"))


def prior_note(choice: PriorChoice, *, what: str = "numbers") -> None:
    """What a reader needs to know about the chosen mix, in plain words."""
    if choice.as_tested:
        st.caption("These numbers are for the test split as it is. Choose another mix above to see them for a "
                   "setting where the classes are more or less common (a rare diagnosis at 3 %, say).")
        return
    text = (f"The {what} below are for {choice.description}: the test cases are re-weighted so each class counts as "
            "often as in that mix. **What changes with the mix:** accuracy, precision (PPV: how often a positive call "
            "is right), NPV, F1 and the calibration error (ECE). ")
    text += ("**Adapted:** the model's scores were also moved to this mix, so its answers change, and with them "
             "recall per class and balanced accuracy." if choice.adapt else
             "**What does not:** recall per class (sensitivity: the share of a class's cases found), specificity "
             "and balanced accuracy, because each is measured within its own class. Switch on *Adapt the model* to "
             "also move the model's answers to the mix.")
    st.info(text, icon="⚖️")


@st.cache_data(show_spinner=False, max_entries=256)
def _metrics(home: str, run_id: str, updated: float, prior: tuple, adapt: bool, posthoc: tuple) -> dict[str, Any]:
    bundle = load_bundle(run_id)
    art = bundle.artifacts
    logits = adjusted_logits(art, **dict(posthoc)) if posthoc else art.logits
    return metrics_at_prior(logits, art.labels, np.asarray(prior), train_prior=art.prior, adapt=adapt)


def metrics_at(bundle, choice: PriorChoice | None = None, posthoc: dict | None = None) -> dict[str, Any]:
    """`core.analysis.metrics_at_prior` of the run (after the post-hoc adjustments `posthoc`,
    if any) at the chosen mix, or at the test split's own mix when `choice` is None; cached,
    so moving back to a mix is instant."""
    if choice is None:
        art = bundle.artifacts
        prior, adapt = tuple(float(p) for p in resolve_prior("test", art.labels, art.num_classes)), False
    else:
        prior, adapt = choice.prior, choice.adapt
    return _metrics(str(get_store().home), bundle.record.id, bundle.record.updated, prior, adapt,
                    tuple(sorted((posthoc or {}).items())))


@st.cache_data(show_spinner="Scoring the run at shifted class mixes…", max_entries=64)
def _shift(home: str, run_id: str, updated: float, adapt: bool) -> pd.DataFrame:
    art = load_bundle(run_id).artifacts
    return prior_shift_curve(art.logits, art.labels, art.class_counts, train_prior=art.prior, adapt=adapt)


def shift_curve(bundle, adapt: bool = False) -> pd.DataFrame:
    """`core.analysis.prior_shift_curve` of the run, cached."""
    return _shift(str(get_store().home), bundle.record.id, bundle.record.updated, adapt)


def shift_chart(bundles: dict[str, Any], key: str, default: str, adapt: bool, colors: dict[str, str]):
    """The measure picker and the figure of each run scored as the class mix moves from the
    training order through balanced to reversed (Results: one run; Compare: several)."""
    metric = st.segmented_control("Measure", list(SHIFT_METRIC_LABELS), format_func=SHIFT_METRIC_LABELS.get,
                                  default=default, key=key) or default
    return prior_shift_figure({label: shift_curve(b, adapt) for label, b in bundles.items()}, metric, colors)


def prior_cards(at_prior: dict[str, Any], as_tested: dict[str, Any],
                compared_with: str = "vs the test split as it is") -> None:
    """Accuracy, balanced accuracy, macro F1 and ECE at the chosen mix, each with its change
    from `as_tested` (by default the test split as it is)."""
    cols = st.columns(len(CARD_KEYS))
    for col, (key, label) in zip(cols, CARD_KEYS.items()):
        value, before = at_prior.get(key), as_tested.get(key)
        known = value is not None and math.isfinite(value)
        delta = value - before if known and before is not None and math.isfinite(before) else None
        col.metric(label, f"{value:.3f}" if known else "n/a",
                   delta=(f"{delta:+.3f}" if abs(delta) >= 5e-4 else "no change") if delta is not None else None,
                   delta_color=("inverse" if key == "ece" else "normal") if delta and abs(delta) >= 5e-4 else "off",
                   delta_arrow="auto" if delta and abs(delta) >= 5e-4 else "off",
                   delta_description=compared_with if delta is not None else None,
                   help=CARD_HELP[key], border=True)


def per_class_at_prior(result: dict[str, Any], names: list[str], order: list[int]) -> pd.DataFrame:
    """The per-class rows of `metrics_at_prior` as a table, classes head to tail."""
    rows = {r["class"]: r for r in result["per_class"]}
    return pd.DataFrame([{"class": names[j], **{c: rows[j].get(c) for c in (
        "prevalence", "recall", "specificity", "precision", "npv", "f1")}} for j in order])


_PER_CLASS_HEADERS = {"prevalence": "share of cases", "recall": "recall (sensitivity)", "specificity": "specificity",
                      "precision": "precision (PPV)", "npv": "NPV", "f1": "F1"}


def _per_class_words(table: pd.DataFrame) -> pd.DataFrame:
    """The numbers as read: shares in per cent, F1 to three places, a dash where undefined."""
    def text(value: Any, form: str) -> str:
        return "—" if value is None or not math.isfinite(float(value)) else format(float(value), form)

    shown = table.copy()
    for column in _PER_CLASS_HEADERS:
        shown[column] = [text(v, ".3f" if column == "f1" else ".1%") for v in shown[column]]
    return shown.rename(columns=_PER_CLASS_HEADERS).set_index("class")


def per_class_table(result: dict[str, Any], names: list[str], order: list[int], counts=None) -> None:
    """The per-class table at the chosen mix, with what each column means; with `counts`
    (test cases per class index), a column of them, marking classes with too few to trust.
    Eight columns do not fit a data grid beside the sidebar at 1024 px (it would scroll
    sideways, hiding NPV and F1): they are an HTML table whose headers and cells wrap."""
    table = per_class_at_prior(result, names, order)
    if counts is not None:
        table.insert(1, "test cases", [few_cases_words(int(counts.get(j, 0))) for j in order])
    wrapping_table(_per_class_words(table))
    st.caption("Each class at this mix, from most to fewest training examples: its share of cases; recall, the share "
               "of its cases found; specificity, the share of other cases not called this class; precision (PPV), "
               "how often a call of this class is right; NPV, how often 'not this class' is right."
               + (" A class with fewer than 10 test cases is marked: its numbers rest on very few cases."
                  if counts is not None else ""))

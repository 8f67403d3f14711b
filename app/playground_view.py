"""The Playground's state: its controls' defaults, presets, the address that shares a setup
(``?shape=spirals&noise=0.1&...&hide=loss,ratio``) and the step-through trainers.

Every control's value lives in ``st.session_state`` under ``playground.<name>`` and is
mirrored in the address, so a teacher can copy a link and whoever opens it sees the same
setup, with the controls the link hides left out (as TensorFlow Playground does).
Encoding and decoding are plain functions over dicts of strings, tested without a browser.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import streamlit as st

from app.classroom import CLASSROOM
from app.widgets import explain, params_form
from core.data import TOY_NOISE, TOY_PRESETS, TOY_SHAPES
from core.methods import LOSSES, SAMPLERS

PREFIX = "playground."
ADDRESS = "playground.address"  # the playground part of the address this session last wrote
SAVED = "playground.saved"  # the controls' values, kept while another page is open
TRAINING = "playground.training"  # {"signature": ..., "trainers": [ToyTrainer, ...]}
HIDDEN = "playground.hidden"  # the controls the opened link hides

PROFILES = {"exp": "exponential", "step": "step", "linear": "linear", "none": "none (balanced)"}
STEP_CHOICES = [100, 200, 400, 600, 1000, 1500]
STEP_BY = [1, 10, 50]

DEFAULTS: dict[str, Any] = {
    "shape": "blobs", "classes": 3, "points": 500, "profile": "exp", "ratio": 50, "noise": TOY_NOISE["blobs"],
    "seed": 0, "compare": True, "loss0": "ce", "sampler0": "instance", "loss1": "logit_adjusted",
    "sampler1": "instance", "steps": 400, "tau": 0.0,
}
# Controls a shared link can hide, by the name the address uses, and what a teacher reads.
HIDEABLE = {
    "presets": "Presets", "shape": "Shape", "classes": "Classes", "points": "Points", "profile": "Imbalance profile",
    "ratio": "Imbalance ratio", "noise": "Noise", "seed": "Seed", "loss": "Losses and samplers",
    "compare": "Side by side", "steps": "Training steps", "tau": "Post-hoc tau",
}


def _number(kind, low, high, step=None):
    def parse(text: str):
        value = kind(float(text))
        if not low <= value <= high or (step and abs(round(value / step) * step - value) > 1e-9):
            raise ValueError(text)
        return round(value, 2) if kind is float else value
    return parse


def _choice(options):
    def parse(text: str):
        if text not in options:
            raise ValueError(text)
        return text
    return parse


PARSERS = {
    "shape": _choice(TOY_SHAPES), "classes": _number(int, 2, 6), "points": _number(int, 50, 800, 50),
    "profile": _choice(PROFILES), "ratio": _number(int, 1, 100), "noise": _number(float, 0.0, 1.0, 0.05),
    "seed": _number(int, 0, 9999), "compare": lambda t: {"1": True, "0": False}[t],
    "loss0": _choice(LOSSES.names()), "loss1": _choice(LOSSES.names()), "sampler0": _choice(SAMPLERS.names()),
    "sampler1": _choice(SAMPLERS.names()), "steps": lambda t: _choice([str(s) for s in STEP_CHOICES])(t) and int(t),
    "tau": _number(float, 0.0, 2.0, 0.1),
}
PARAM_KEYS = ("lossp0", "samplerp0", "lossp1", "samplerp1")  # JSON of a fix's non-default parameters


def encode(values: Mapping[str, Any], params: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """The address's playground part: every control, and each fix's changed parameters."""
    out = {name: ("1" if v else "0") if isinstance(v, bool) else f"{v:g}" if isinstance(v, float) else str(v)
           for name, v in values.items() if name in PARSERS}
    out.update({key: json.dumps(dict(p), separators=(",", ":")) for key, p in params.items() if p})
    return out


def decode(query: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, dict], list[str]]:
    """(control values, fix parameters, names of values that could not be read) from an
    address; a value out of range or unknown is left at its default and named."""
    values, params, bad = dict(DEFAULTS), {}, []
    for name, parse in PARSERS.items():
        if name in query:
            try:
                values[name] = parse(query[name])
            except (ValueError, KeyError):
                bad.append(name)
    for key in PARAM_KEYS:
        if key in query:
            try:
                loaded = json.loads(query[key])
                if not isinstance(loaded, dict):
                    raise ValueError(key)
                params[key] = loaded
            except ValueError:
                bad.append(key)
    return values, params, bad


def hidden_controls(query: Mapping[str, str]) -> set[str]:
    return {name for name in query.get("hide", "").split(",") if name in HIDEABLE}


def link_hides() -> set[str]:
    """The controls a shared link hides; kept for the session, since switching pages clears the address."""
    if "hide" in st.query_params:
        st.session_state[HIDDEN] = hidden_controls(st.query_params)
    hide = st.session_state.get(HIDDEN, set())
    if hide:
        st.query_params["hide"] = ",".join(name for name in HIDEABLE if name in hide)
    return hide


def show_all_controls() -> None:
    st.session_state[HIDDEN] = set()
    st.query_params.pop("hide", None)


def share_query(values: Mapping[str, Any], params: Mapping[str, Mapping[str, Any]], hide: list[str]) -> str:
    query = encode(values, params)
    if hide:
        query["hide"] = ",".join(name for name in HIDEABLE if name in hide)
    return urlencode(query, safe=",:")


def fix_params(i: int, kind: str) -> dict[str, Any]:
    """Fix ``i``'s loss (``kind="lossp"``) or sampler (``"samplerp"``) parameters as the
    session holds them, also when a link hides their widgets."""
    plugin = st.session_state.get(f"{PREFIX}{'loss' if kind == 'lossp' else 'sampler'}{i}")
    head = f"{PREFIX}{kind}{i}.{plugin}."
    return {key[len(head):]: value for key, value in st.session_state.items()
            if isinstance(key, str) and key.startswith(head)}


def changed_params(info, given: Mapping[str, Any]) -> dict[str, Any]:
    """Only the parameters that differ from the schema's defaults: a short address."""
    fields = info.params.model_fields
    return {k: v for k, v in given.items()
            if k in fields and v != fields[k].get_default(call_default_factory=True)}


def restore() -> list[str]:
    """Before any widget: fill the controls from the address when it differs from what this
    session last wrote (a shared link, a bookmark), else from the values kept while another
    page was open. Returns the names the address held but could not be used."""
    query = {k: st.query_params[k] for k in (*PARSERS, *PARAM_KEYS) if k in st.query_params}
    bad: list[str] = []
    if query and query != st.session_state.get(ADDRESS):
        values, params, bad = decode(query)
        fix_keys = (PREFIX + "lossp", PREFIX + "samplerp")
        for key in [k for k in st.session_state if isinstance(k, str) and k.startswith(fix_keys)]:
            del st.session_state[key]
        for name, value in values.items():
            st.session_state[PREFIX + name] = value
        for key, given in params.items():
            i, kind = int(key[-1]), key[:-1]
            plugin = st.session_state[f"{PREFIX}{'loss' if kind == 'lossp' else 'sampler'}{i}"]
            registry = LOSSES if kind == "lossp" else SAMPLERS
            for param, value in changed_params(registry.info(plugin), given).items():
                st.session_state[f"{PREFIX}{kind}{i}.{plugin}.{param}"] = value
        st.session_state.pop(TRAINING, None)
    else:
        for name, value in {**DEFAULTS, **st.session_state.get(SAVED, {})}.items():
            st.session_state.setdefault(PREFIX + name, value)
    return bad


def current_values() -> dict[str, Any]:
    return {name: st.session_state.get(PREFIX + name, default) for name, default in DEFAULTS.items()}


def write_address(values: Mapping[str, Any], params: Mapping[str, Mapping[str, Any]]) -> None:
    """Mirror the controls in the address (other parts of it, like ?run= and ?hide=, stay)."""
    query = encode(values, params)
    for key in (*PARSERS, *PARAM_KEYS):
        if key not in query and key in st.query_params:
            del st.query_params[key]
    st.query_params.update(query)
    st.session_state[ADDRESS] = query
    st.session_state[SAVED] = dict(values)


def apply_preset() -> None:
    """on_change of the preset picker: set the data controls to the lesson's values."""
    preset = TOY_PRESETS.get(st.session_state.get(PREFIX + "preset"))
    if preset:
        st.session_state.update({PREFIX + "shape": preset["shape"], PREFIX + "classes": preset["num_classes"],
                                 PREFIX + "points": preset["samples_per_class"], PREFIX + "profile": preset["profile"],
                                 PREFIX + "ratio": int(preset["ratio"]), PREFIX + "noise": preset["noise"]})


def shape_changed() -> None:
    """on_change of the shape picker: each shape starts at the noise that shows it."""
    shape = st.session_state.get(PREFIX + "shape") or DEFAULTS["shape"]
    st.session_state[PREFIX + "shape"] = shape  # clicking the chosen segment again unselects it: keep it
    st.session_state[PREFIX + "noise"] = TOY_NOISE[shape]


def fix_controls(i: int, compare: bool, visible: bool) -> tuple[dict[str, Any], dict[str, dict]]:
    """Setting ``i``'s loss, sampler and their parameters (pickers in display names), or the
    session's values when a link hides them. Returns (the setting, its changed parameters
    for the address)."""
    if visible:
        with st.container(border=True):
            loss = st.selectbox(f"Loss {'AB'[i]}" if compare else "Loss", LOSSES.names(),
                                format_func=lambda n: LOSSES.info(n).label, key=f"{PREFIX}loss{i}")
            st.caption(LOSSES.info(loss).description)
            sampler = st.selectbox("Sampler", SAMPLERS.names(), format_func=lambda n: SAMPLERS.info(n).label,
                                   key=f"{PREFIX}sampler{i}")
            st.caption(SAMPLERS.info(sampler).description)
            with st.expander("Parameters"):
                loss_params = params_form(LOSSES.info(loss), key=f"{PREFIX}lossp{i}")
                sampler_params = params_form(SAMPLERS.info(sampler), key=f"{PREFIX}samplerp{i}")
    else:
        loss, sampler = st.session_state[f"{PREFIX}loss{i}"], st.session_state[f"{PREFIX}sampler{i}"]
        loss_params, sampler_params = fix_params(i, "lossp"), fix_params(i, "samplerp")
    label = LOSSES.info(loss).label + ("" if sampler == "instance" else f" + {SAMPLERS.info(sampler).label}")
    setting = dict(label=label, loss=loss, loss_params=loss_params, sampler=sampler, sampler_params=sampler_params)
    return setting, {f"lossp{i}": changed_params(LOSSES.info(loss), loss_params),
                     f"samplerp{i}": changed_params(SAMPLERS.info(sampler), sampler_params)}


def share_link(base: str, query: str, *, classroom: bool = False) -> str:
    """The Playground's address at `base` (the app's address as the browser sees it) with
    `query`, and ``classroom=1`` when the sender is in classroom mode, so the class's
    screens open with the projector's layout too."""
    link = f"{base.rstrip('/')}/playground?{query}"
    return f"{link}&classroom=1" if classroom else link


def _browser_base() -> str:
    """The app's address in the person's browser (their host name, not the server's
    127.0.0.1): Streamlit's own record of it, else the Host header of the request."""
    if st.context.url:
        return st.context.url
    host = st.context.headers.get("Host") if st.context.headers else None
    return f"http://{host}" if host else ""


def share_box(values: Mapping[str, Any], params: Mapping[str, Mapping[str, Any]], hide: set[str]) -> None:
    """The link to this setup, with the controls the teacher ticks left out of it."""
    with st.expander("Share this setup", icon=":material/link:"):
        hide_now = st.multiselect("Hide from whoever opens the link", list(HIDEABLE), format_func=HIDEABLE.get,
                                  key=PREFIX + "share_hide", default=[h for h in HIDEABLE if h in hide])
        classroom = bool(st.session_state.get(CLASSROOM, False))
        st.code(share_link(_browser_base(), share_query(values, params, hide_now), classroom=classroom),
                language=None, wrap_lines=True)
        explain("Copy the link: it opens this Playground with these settings, without the controls ticked above.")

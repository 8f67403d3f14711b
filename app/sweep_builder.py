"""The Sweeps page's builder: the data, the settings to vary (from the registries) and the
repeats, the number of trainings and a rough time, the same sweep as YAML for the command
line, and a Start button. The sweep itself is built by `core.jobs.sweep_from_choices`."""

from __future__ import annotations

import copy
import os
from typing import Any

import streamlit as st

from app import state
from app.data_forms import current_data_config, data_label, load_dataset
from app.services import get_store
from app.sweep_start import start_sweep_and_follow
from app.widgets import explain
from core.config import ConfigError, DataConfig
from core.data import DataError, is_ordinal, source_label
from core.glossary import plugin_label
from core.jobs import (
    NO_STAGE2, SweepChoices, SweepSpec, estimate_sweep_seconds, estimate_words, expand_sweep, load_sweep,
    sweep_from_choices, sweep_yaml,
)
from core.models import MODELS
from core.registry import registry_for
from core.text import md
from core.train import compatible_models

__all__ = ["sweep_builder"]

KEY = "sweeps.build"
CURRENT = "current"  # the data chosen on the Data page
RATIOS = [2, 5, 10, 20, 50, 100, 200]
NOISE_RATES = [0.0, 0.1, 0.2, 0.3, 0.4]
BUILTIN_IMBALANCE = {"profile": "exp", "ratio": 10}  # a built-in chosen here: made long-tailed, ratio 10
ORDINAL_FIRST = ("separate_logits", "proportional_odds", "presto")  # the reference first, as in the lesson


def _data_choice() -> tuple[dict[str, Any], str, bool] | None:
    """(the data config as a dict, its modality, whether its label is ordered stages), or None
    after saying why it cannot load."""
    current = current_data_config(st.session_state.get(state.DATA_CONFIG))
    builtins = registry_for("dataset").names()
    options = [CURRENT, *builtins]
    choice = st.selectbox("Data", options, key=f"{KEY}.data",
                          format_func=lambda o: f"The data chosen on the Data page: {data_label(current)}"
                          if o == CURRENT else f"Built-in: {source_label(o)} (made long-tailed, ratio 10)",
                          help="Every training of the sweep uses this data and its split; change the Data page's "
                               "choice there, or pick a built-in set to try an idea quickly.")
    data = current if choice == CURRENT else DataConfig.model_validate({"source": choice,
                                                                        "imbalance": BUILTIN_IMBALANCE})
    try:
        modality = load_dataset(data).modality
    except (DataError, ValueError) as exc:
        st.error(f"This data cannot be loaded: {md(exc)}")
        return None
    raw = {"source": data.source, **data.model_dump(mode="json", exclude_defaults=True)}
    imbalance = data.imbalance  # its profile and ratio said in the YAML, whatever their defaults
    raw["imbalance"] = {"profile": imbalance.profile, "ratio": imbalance.ratio,
                        **imbalance.model_dump(mode="json", exclude_defaults=True)}
    return raw, modality, is_ordinal(data)


def _pick(column, label: str, kind: str, default: list[str], help: str, extra: tuple[str, ...] = (),
          key: str = "") -> list[str]:
    names = [*extra, *registry_for(kind).names()]
    return column.multiselect(label, names, default=default, key=key or f"{KEY}.{kind}", help=help,
                              format_func=lambda n: "none (train once)" if n == NO_STAGE2 else plugin_label(kind, n))


def _choices() -> SweepChoices | None:
    chosen = _data_choice()
    if chosen is None:
        return None
    data, modality, ordinal = chosen
    models = compatible_models(modality, ordinal)
    default_model = "small_cnn" if modality == "image" else "mlp"
    c1, c2, c3 = st.columns(3)
    compared: list[str] = []
    if ordinal:  # ordered stages: the ordinal models are compared with each other (and any other model)
        compared = c1.multiselect(
            "Models (the label is ordered stages)", models, key=f"{KEY}.models", format_func=lambda n: plugin_label("model", n),
            default=sorted((n for n in models if MODELS.info(n).capabilities.get("ordinal")),
                           key=lambda n: (n not in ORDINAL_FIRST, ORDINAL_FIRST.index(n) if n in ORDINAL_FIRST else n)),
            help="The models for ordered stages (separate regressions, proportional odds, PRESTO) are offered because "
                 "this data's label is marked as ordered stages; two or more are compared, each on the same folds "
                 "and seeds. They are fitted in one go: losses and samplers do not change them.")
        model = compared[0] if compared else default_model
    else:
        model = c1.selectbox("Model", models, index=models.index(default_model) if default_model in models else 0,
                             key=f"{KEY}.model", format_func=lambda n: plugin_label("model", n),
                             help="Held fixed across the sweep: only models that fit this data's kind are listed.")
    epochs = c2.number_input("Epochs", 1, 10_000, 20, key=f"{KEY}.epochs",
                             help="Passes over the training data, the same for every training of the sweep.")
    seeds = c3.number_input("Seeds per combination", 1, 10, 3, key=f"{KEY}.seeds",
                            help="Every combination is trained once per seed, all combinations on the same seeds, so "
                                 "each is compared with the reference seed by seed. Three or more give an interval.")
    st.markdown("**What to vary**: one value is held fixed; two or more are compared, every combination of them.")
    a, b = st.columns(2)
    losses = _pick(a, "Losses", "loss", ["ce"] if ordinal else ["ce", "balanced_softmax"], "How much each mistake "
                   "costs. Plain cross-entropy is the reference every other square is compared with.",
                   key=f"{KEY}.loss.ordinal" if ordinal else "")  # ordered stages start from one loss of their own
    samplers = _pick(b, "Samplers", "sampler", ["instance"], "How often each class is shown in training.")
    stage2 = _pick(a, "Two-stage fixes", "stage2", [NO_STAGE2], "Re-balance the classifier after training; "
                   "'none' trains once.", extra=(NO_STAGE2,))
    ratios = b.multiselect("Imbalance ratios", RATIOS, default=[], key=f"{KEY}.ratios",
                           help="Most common ÷ rarest class in training. Empty: the data's own.")
    noise = a.multiselect("Label-noise rates", NOISE_RATES, default=[], key=f"{KEY}.noise",
                          format_func=lambda r: f"{r:.0%} of training labels changed",
                          help="Training labels changed at random on purpose (test labels stay clean). Empty: "
                               "the data's own.")
    folds = b.number_input("Folds", 1, 10, 1, key=f"{KEY}.folds",
                           help="1: one split. 5: each combination trained five times, each tested on another fifth "
                                "of the data (times the seeds).")
    name = st.text_input("Sweep name", key=f"{KEY}.name", placeholder="automatic: what varies, on which data")
    return SweepChoices(data=data, model={"name": model}, models=compared, train={"epochs": int(epochs)}, losses=losses,
                        samplers=samplers, stage2=stage2, ratios=ratios, noise_rates=noise, seeds=int(seeds),
                        folds=int(folds), name=name)


def _start(spec: SweepSpec, runs: int) -> None:
    start_sweep_and_follow(spec, refused="Some combinations cannot run", started=(
        f"Started the sweep: {runs} trainings in the background. This page follows them as they finish."))


def sweep_builder() -> None:
    """The form, what it will cost, its YAML and the Start button."""
    choices = _choices()
    if choices is None:
        return
    spec, problem, runs = None, None, 0
    try:
        raw = sweep_from_choices(choices)
        spec = load_sweep(copy.deepcopy(raw))
        cells, problems = expand_sweep(spec)
        if problems:
            problem = "Some combinations cannot run: " + "; ".join(problems)
        runs = sum(len(c.config.experiment_runs()) for c in cells)
    except ConfigError as exc:
        problem = str(exc)
    if problem:
        st.warning(md(problem), icon="✋")
    if spec is not None:
        repeats = runs // max(1, len(cells))
        workers = os.cpu_count() or 1
        past = [(r.config, r.finished - r.started) for r in get_store().list_runs("done") if r.finished and r.started]
        seconds, _ = estimate_sweep_seconds(spec, past, workers)
        st.markdown(f"**{len(cells)} combination{'s' * (len(cells) != 1)} × {repeats} training"
                    f"{'s' * (repeats != 1)} each = {runs} trainings.** {md(estimate_words(seconds, runs, workers))}")
        st.caption("The same sweep as a file: save it as `sweep.yaml` and run `tailscope sweep sweep.yaml` (running it "
                   "again resumes it; so does starting it here again).")
        st.code(sweep_yaml(raw), language="yaml")
    if st.button("Start the sweep", type="primary", key=f"{KEY}.start", disabled=spec is None or bool(problem),
                 icon=":material/play_arrow:"):
        _start(spec, runs)
    explain("The sweep trains in the background, shared among this computer's cores; this page then shows its "
            "progress and, as runs finish, which setting helps.")

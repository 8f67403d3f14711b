"""The Train page's forms: the registries turned into widgets with no per-method code, the
training and evaluation settings, what a resampler does to the training rows, and the chosen
values turned into a validated RunConfig or a one-line reason why it cannot run. The words
(budget, default name, progress) are pure and live in `core.run_words`; the standard-fixes
sweep and the baselines in `core.jobs`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, get_args

import numpy as np
import pandas as pd
import streamlit as st
from pydantic import ValidationError

from app.services import load_splits
from app.sweep_start import start_sweep_and_follow
from app.widgets import params_form, plugin_caption, starting_value, table_height
from core.analysis import resampling_view, synthetic_row_checks
from core.config import DataConfig, RunConfig, TrainConfig, format_validation_error
from core.data import Dataset, labelled_train_labels
from core.jobs import FIXES_SEEDS, standard_fixes_spec, sweep_size
from core.methods import resample
from core.registry import Registry, registry_for
from core.run_words import budget_text, default_run_name
from core.text import md
from core.train import run_problems
from core.viz import resampling_figure

__all__ = ["TRAIN_EXPLAINER", "OPTIMISER_WORDS", "plugin_picker", "train_settings_form", "evaluation_form",
           "resampling_preview", "resampling_panel", "build_run_config", "budget_line", "train_labels", "standard_fixes_button",
           "training_fixes_form", "synthetic_checks_words"]

TRAIN_EXPLAINER = """
**Three places to push back against imbalance**

- **Loss**: how much each mistake costs. Plain cross-entropy treats every example alike, so
  the common classes dominate. Imbalance losses make mistakes on rare classes cost more
  (weights), ask rare classes to win by a wider margin (LDAM), or correct for how often each
  class appears (balanced softmax, logit adjustment). *DRW* switches the re-weighting on only
  late in training, after the features have been learned.
- **Sampler**: how often each class is shown. Instance sampling shows every example once per
  epoch; class-balanced sampling shows every class equally often, repeating rare examples.
- **Two-stage fix**: train normally first, then re-balance only the classifier (the final layer) on the frozen
  features (cRT, LWS, tau-norm, weight balancing). It costs seconds and often helps the tail the most.

Further down, two ways of training that change what the network learns from rather than how
the classes are weighed: **robust training** learns from inputs changed on purpose to fool it
(the Robustness page shows who pays), and **sharpness-aware steps** look for flat minima (ImbSAM
only for the rare classes).

Compare a run with plain cross-entropy and one with a fix to see what changed.
"""
OPTIMISER_WORDS = {"sgd": "SGD with momentum", "adamw": "AdamW"}


# --- the chosen values as a run -------------------------------------------------------------

def build_run_config(raw: dict[str, Any], dataset: Dataset) -> tuple[RunConfig | None, str | None]:
    """(config, None) when it can run, else (None, the reason in one line)."""
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as exc:
        return None, format_validation_error(exc)
    labels = None
    if config.resampler and dataset.modality == "tabular":
        try:
            labels = train_labels(config.data, dataset)
        except ValueError:  # e.g. a bad class order: run_problems names it
            pass
    problems = run_problems(config, dataset, train_labels=labels)
    if problems:
        return None, "; ".join(problems)
    if not config.name.strip():
        config = config.model_copy(update={"name": default_run_name(config)})
    return config, None


def train_labels(data: DataConfig, dataset: Dataset) -> np.ndarray:
    """The training split's labels, split on the labels alone (milliseconds, where preparing
    the features of 5,000 notes for sentence meaning took half a minute on every change of
    the form), or the cached full split when label noise draws on the features."""
    labels = labelled_train_labels(dataset, data)
    return load_splits(data).y_train if labels is None else labels


def budget_line(config: RunConfig, dataset: Dataset, train_counts: Sequence[int] | None = None) -> str:
    """`core.run_words.budget_text` over the training split's class counts (unless the
    resampler's counts are given, or the model is a baseline, which needs no counts)."""
    from core.models import is_baseline

    if train_counts is None and not is_baseline(config.model.name):
        labels = train_labels(config.experiment_runs()[0].data, dataset)
        train_counts = np.bincount(labels, minlength=dataset.num_classes)
    return budget_text(config, train_counts)


# --- resampling preview ---------------------------------------------------------------------

@st.cache_data(show_spinner="Resampling the training rows…", max_entries=8)
def _resampling(data_json: str, name: str, params_json: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    splits = load_splits(DataConfig.model_validate_json(data_json))
    out = resample(name, splits.x_train, splits.y_train, json.loads(params_json), seed=seed)
    checks: dict[str, Any] = {}
    if out.n_synthetic:
        checks = synthetic_row_checks(splits.x_train, splits.y_train, out.x[out.synthetic], out.y[out.synthetic],
                                      splits.x_val, splits.y_val, seed=seed)
    k = splits.num_classes
    counts = pd.DataFrame({
        "class": list(splits.class_names), "before": np.bincount(splits.y_train, minlength=k),
        "removed": np.bincount(splits.y_train[out.removed], minlength=k),
        "synthetic": np.bincount(out.y[out.synthetic], minlength=k), "after": np.bincount(out.y, minlength=k)})
    view = resampling_view(splits.x_train, splits.y_train, out.x, out.y, out.synthetic, out.removed, seed=seed)
    return view, counts, checks


def resampling_preview(data: DataConfig, resampler: dict[str, Any], seed: int) -> tuple[pd.DataFrame, pd.DataFrame,
                                                                                        dict]:
    """What the resampler does to this data's training split, exactly as a run would do it:
    (rows for `resampling_figure`, per-class counts before/removed/synthetic/after, and for
    made rows the closest-record and utility checks). Raises ValueError with the resampler's
    own reason when it cannot run on this data."""
    params = {k: v for k, v in resampler.items() if k != "name"}
    return _resampling(data.model_dump_json(), resampler["name"], json.dumps(params, sort_keys=True), seed)


def resampling_panel(data: DataConfig, resampler: dict[str, Any], class_names: Sequence[str],
                     seed: int) -> list[int] | None:
    """The chosen resampler's effect on the training rows: a picture and the counts.
    Returns the training counts after resampling (None when it cannot run)."""
    label = registry_for("resampler").info(resampler["name"]).label
    with st.expander(f"What {md(label)} does to the training rows", expanded=True):
        try:
            view, counts, checks = resampling_preview(data, resampler, int(seed))
        except ValueError as exc:
            st.error(md(exc))
            return None
        st.plotly_chart(resampling_figure(view, class_names, label), width="stretch", key="train.resampling")
        st.dataframe(counts, hide_index=True, width="stretch", height=table_height(len(counts), 300))
        st.caption("Each dot is a training row, flattened onto its two main directions of variation. Open diamonds "
                   "are rows the resampler made up; crosses are real rows it threw away. Training then sees the "
                   "counts in the 'after' column. (Validation and test rows are never resampled.)")
        if checks:
            st.caption(synthetic_checks_words(checks))
    return counts["after"].astype(int).tolist()


def synthetic_checks_words(checks: dict[str, Any], scored_on: str = "validation") -> str:
    """The made rows' closest-record and utility checks in one paragraph (`scored_on`: which
    real rows the models were scored on)."""
    def ba(value: float | None) -> str:
        return "n/a" if value is None or value != value else f"{value:.2f}"

    checked = checks.get("checked", checks["made"])
    sample = "" if checked == checks["made"] else f" checked (an even share of each class of the {checks['made']:,} made)"
    return (f"**Copies of real rows:** {checks['flagged']:,} of the {checked:,} made rows{sample} "
            f"({checks['share_flagged']:.0%}) lie closer to a real training row than 95 % of real rows lie to their "
            "own nearest neighbour: near copies, which a privacy review would flag. **Useful?** Balanced accuracy "
            f"on the {scored_on} rows of a logistic regression trained on the real rows {ba(checks['train_real'])}, "
            f"on the made rows alone {ba(checks['train_synthetic'])} (they cover only the classes they were made "
            f"for), on both {ba(checks['train_both'])}." + _both_vs_real(checks.get("both_vs_real")))


def _both_vs_real(comparison: dict[str, Any] | None) -> str:
    """The paired verdict on the same rows: real plus made rows against real rows alone."""
    if not comparison:
        return ""
    low, high = comparison["ci"]
    interval = f" [{low:+.3f}, {high:+.3f}]" if np.isfinite([low, high]).all() else ""
    return (f" Both minus real alone: {comparison['difference']:+.3f}{interval}, {comparison['verdict']} "
            f"({comparison['test']}).")


# --- widgets --------------------------------------------------------------------------------

def plugin_picker(label: str, registry: Registry | str, key: str, *, options: Sequence[str] | None = None,
                  optional: bool = False, default: str | None = None, help: str | None = None) -> dict | None:
    """A selectbox over a registry (or a kind of the table of kinds: "loss", "sampler", ...),
    the chosen entry's description and paper, and its parameter widgets. Returns
    `{"name": ..., **params}`, or None for "none"."""
    registry = registry_for(registry) if isinstance(registry, str) else registry
    names = list(options if options is not None else registry.names())
    if optional:
        names = ["none", *names]
    name = st.selectbox(label, names, key=starting_value(key, default if default in names else names[0]), help=help,
                        format_func=lambda n: "none" if n == "none" else registry.info(n).label)
    if name == "none":
        return None
    info = registry.info(name)
    # the choice's whole name first: a select in a half column may end it in "…"
    st.caption(f"**{md(info.label)}**: {plugin_caption(info)}")
    return {"name": name, **params_form(info, key)}


def training_fixes_form(key: str) -> dict[str, Any]:
    """The optional parts of training beside loss and sampler: a two-stage fix after training,
    robust training and sharpness-aware steps; {section: {"name": ..., **params} or None}."""
    fixes = {"stage2": plugin_picker("Two-stage fix (after training)", "stage2", f"{key}.stage2", optional=True)}
    a, b = st.columns(2)
    with a:
        fixes["robust"] = plugin_picker(
            "Robust training (against small changes to the inputs)", "robust", f"{key}.robust", optional=True,
            help="Train on copies of the inputs changed on purpose to fool the network; each attack step costs "
                 "about one more pass. Robustness page: its effect.")
    with b:
        fixes["sharpness"] = plugin_picker(
            "Sharpness-aware steps (flat minima)", "sharpness", f"{key}.sharpness", optional=True,
            help="Each step takes the gradient at the worst weights within a small radius, so training settles "
                 "where the loss is flat; about twice the cost of a plain step.")
    return fixes


def _literal_options(field: str) -> list[str]:
    return list(get_args(TrainConfig.model_fields[field].annotation))


def _more_settings(key: str, d: dict[str, Any]) -> dict[str, Any]:
    """The schedule and the rarer training settings, in an expander."""
    with st.expander("More training settings"):
        c1, c2, c3 = st.columns(3)
        schedule = c1.selectbox("Learning-rate schedule", _literal_options("schedule"), key=f"{key}.schedule",
                                help="cosine: smoothly down to zero; step: × the step factor at 80 % and 90 % of "
                                     "training (the LDAM-DRW recipe); constant: never changes.")
        decay = c2.number_input("Weight decay", 0.0, 1.0, format="%g",
                                key=starting_value(f"{key}.weight_decay", d["weight_decay"]),
                                help="Pulls weights toward zero; the long-tail papers use 2e-4 to 5e-4.")
        warmup = c3.number_input("Warm-up epochs", 0, 10_000,
                                 key=starting_value(f"{key}.warmup_epochs", d["warmup_epochs"]),
                                 help="Learning rate ramps up linearly over these first epochs.")
        augment = c1.selectbox("Augmentation", _literal_options("augment"), key=f"{key}.augment",
                               format_func=lambda v: {"crop_flip": "crop and flip"}.get(v, v),
                               help="auto: random crops and flips for 32x32 images, none otherwise.")
        momentum = c2.number_input("Momentum (sgd)", 0.0, 0.999, format="%g",
                                   key=starting_value(f"{key}.momentum", d["momentum"]))
        min_steps = c3.number_input("Minimum optimiser steps", 0, 1_000_000,
                                    key=starting_value(f"{key}.min_steps", d["min_steps"]),
                                    help="Small training splits repeat within each epoch until training takes at "
                                         "least this many steps; 0 turns it off.")
        select = c1.selectbox("Keep the model of", _literal_options("select"), key=f"{key}.select",
                              format_func=lambda v: {"best": "the best epoch", "last": "the last epoch"}[v],
                              help="best: the epoch with the best validation balanced accuracy (its weights are "
                                   "kept and restored); last: whatever the final epoch gives.")
        patience = c2.number_input("Stop early after (epochs)", 0, 10_000, key=starting_value(f"{key}.patience", 0),
                                   help="Stop when validation balanced accuracy has not improved for this many "
                                        "epochs; 0 never stops early.")
        deterministic = c3.checkbox("Bit-identical repeats", key=f"{key}.deterministic",
                                    help="Deterministic kernels: the same settings, seed, device and thread "
                                         "count give exactly the same numbers (a little slower on a GPU).")
    return {"schedule": schedule, "weight_decay": float(decay), "warmup_epochs": int(warmup), "augment": augment,
            "momentum": float(momentum), "min_steps": int(min_steps), "select": select,
            "patience": int(patience) or None, "deterministic": bool(deterministic)}


def train_settings_form(key: str) -> dict[str, Any]:
    """Optimiser, epochs, batch size, learning rate, seed and device up front, the schedule and
    the rest in an expander; TrainConfig's defaults."""
    d = {name: f.default for name, f in TrainConfig.model_fields.items()}
    c1, c2, c3 = st.columns(3)
    optimizer = c1.selectbox("Optimiser", _literal_options("optimizer"), key=f"{key}.optimizer",
                             format_func=lambda o: OPTIMISER_WORDS.get(o, o),
                             help="sgd: SGD with momentum (the long-tail papers' choice); adamw: Adam with weight decay.")
    epochs = c2.number_input("Epochs", 1, 10_000, key=starting_value(f"{key}.epochs", d["epochs"]),
                             help="Passes over the training data.")
    batch = c3.number_input("Batch size", 2, 65_536, key=starting_value(f"{key}.batch_size", d["batch_size"]))
    lr = c1.number_input("Learning rate", 1e-6, 10.0, format="%g", key=starting_value(f"{key}.lr", d["lr"]))
    seed = c2.number_input("Seed", 0, 2**31 - 1, key=starting_value(f"{key}.seed", d["seed"]),
                           help="Same settings and seed give the same result on the same device.")
    device = c3.selectbox("Device", _literal_options("device"), key=f"{key}.device",
                          help="auto: the GPU when there is one, else the CPU.")
    return {"optimizer": optimizer, "epochs": int(epochs), "batch_size": int(batch), "lr": float(lr),
            "seed": int(seed), "device": device, **_more_settings(key, d)}


def evaluation_form(key: str, seed: int) -> dict[str, Any]:
    """Folds and seeds: how many trainings answer the question (EvaluationConfig)."""
    c1, c2 = st.columns(2)
    folds = int(c1.number_input("Repeat over folds", 1, 10, key=starting_value(f"{key}.folds", 1),
                                help="1: one split, as set on the Data page. 5: five trainings, each tested on a "
                                     "different fifth of the data, so every sample is tested once and one lucky "
                                     "split cannot decide the result."))
    seeds = int(c2.number_input("Repeat over seeds", 1, 10, key=starting_value(f"{key}.seeds", 1),
                                help="Train again with other random starts (seeds from the one above). With folds, "
                                     "each seed also reshuffles the folds."))
    attack = plugin_picker("Also score under an attack", "attack", f"{key}.attack", optional=True,
                           help="Each test case is also changed on purpose, within the budget, to fool the model, and "
                                "the run reports its balanced accuracy, tail accuracy and head − tail gap under that "
                                "attack, so sweeps and Compare can rank by them. Networks only; the Robustness page "
                                "shows one run at several budgets.")
    return {"folds": folds, "seeds": list(range(seed, seed + seeds)) if seeds > 1 else [],
            **({"attack": attack} if attack else {})}


def standard_fixes_button(config: RunConfig | None, modality: str) -> None:
    """"Try the standard fixes": one sweep of plain cross-entropy, the standard fixes and (on
    tables) the baselines on the form's set-up, started in the background; then the Sweeps
    page opens on it. A normal button, not a fragment's: switching pages needs a full run."""
    spec = standard_fixes_spec(config, modality) if config is not None else None
    cells, runs = sweep_size(spec) if spec is not None else (0, 0)
    extra = " and the three classic table baselines" if modality == "tabular" else ""
    evaluation = spec.base["evaluation"] if spec is not None else {"folds": 1, "seeds": [0] * FIXES_SEEDS}
    repeats = (f"the same {evaluation['folds']} folds" + (f" x {len(evaluation['seeds'])} seeds" if len(
        evaluation["seeds"]) > 1 else "") if evaluation["folds"] > 1 else f"the same {len(evaluation['seeds'])} seeds")
    clicked = st.button(
        "Try the standard fixes", key="train.fixes", disabled=spec is None, icon=":material/science:",
        help=f"One click trains plain cross-entropy and five common fixes for imbalance (class weights, class-balanced "
             f"sampling, cRT, balanced softmax, which is logit adjustment, and LDAM-DRW){extra} with this data, model and "
             f"training settings, each over {repeats}: {cells} methods, {runs} trainings in the "
             "background (cRT starts from plain cross-entropy's networks and re-trains only their last layer). "
             "The Sweeps page then maps which fix helps, and by how much.")
    if not clicked:
        return
    start_sweep_and_follow(spec, refused="Some fixes cannot run on this set-up", started=(
        f"Started the standard fixes: {runs} trainings in the background. This page follows them as they finish."))

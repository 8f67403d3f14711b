"""Words about one run, before and while it trains: its default name, its training budget
and its progress. Pure text from a config or a progress report, so the Train page, the run
cards, the sweep and lesson views, the CLI and tests all say the same thing without Streamlit."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from core.analysis import FEW_CASES, few_cases_words
from core.config import RunConfig
from core.data import labelled_train_labels, load_data, source_label, split_data
from core.glossary import method_display, plugin_label, setting_title, setting_value
from core.registry import registry_for

__all__ = ["budget_text", "default_run_name", "kept_epoch_words", "reused_stage_words", "evaluation_words",
           "format_seconds", "progress_text", "scope_words", "SINGLE_RUN_SCOPE", "FEW_CASES", "few_cases_words",
           "sweep_cell_name"]

SINGLE_RUN_SCOPE = "This run"


def format_seconds(seconds: float | None) -> str:
    """"45 s", "3 min 05 s", "1 h 02 min"; "unknown" when there is no estimate."""
    if seconds is None or not math.isfinite(seconds):
        return "unknown"
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def progress_text(progress: dict[str, Any] | None) -> str:
    """One line for a progress bar: stage, epoch and time left."""
    p = progress or {}
    stage = p.get("stage")
    phase = f"{p['phase']} · " if p.get("phase") else ""  # the rounds of semi-supervised training
    if stage is None:
        return "starting…"
    if stage == "train":
        eta = p.get("eta_s")
        left = f" · about {format_seconds(eta)} left" if eta is not None else ""
        return f"{phase}epoch {p.get('epoch', '?')} of {p.get('epochs', '?')}{left}"
    if stage == "pretrain":
        source = "the labelled rows" if p.get("labels") else "the inputs alone, without labels"
        return f"pre-training on {source}: epoch {p.get('epoch', '?')} of {p.get('epochs', '?')}"
    if stage == "resample":
        eta = p.get("eta_s")
        left = f" · about {format_seconds(eta)} left" if eta is not None else ""
        return (f"fitting the resampler's generator of new rows: epoch {p.get('epoch', '?')} of "
                f"{p.get('epochs', '?')}{left}")
    if stage == "encode text":
        what = "tuning MiniLM on the training notes, then turning the notes into numbers" if p.get("tuning") else \
            "turning the notes into numbers"
        return f"{what}: {p.get('epoch', '?'):,} of {p.get('epochs', '?'):,} texts read"
    if stage == "evaluate":
        return "evaluating on the test set"
    if stage == "attack":
        return f"scoring the test set under attack: {p.get('fraction', 0.0):.0%} of its cases"
    if stage == "embedding":
        return "computing the feature map for the Geometry page"
    if stage == "done":
        return "finished"
    if stage == "submitted":
        return "handed to a sweep's worker; waiting for it to finish"
    return f"stage 2 ({stage}): epoch {p.get('epoch', '?')} of {p.get('epochs', '?')}"


def evaluation_words(config: RunConfig) -> str:
    """"5 folds × 3 seeds", "3 seeds", or "" for a single training."""
    ev = config.evaluation
    seeds = len(ev.seeds) or 1
    parts = ([f"{ev.folds} folds"] if ev.folds > 1 else []) + ([f"{seeds} seeds"] if seeds > 1 else [])
    return " × ".join(parts)


def scope_words(evaluation: Any, n_done: int | None = None) -> str:
    """What an experiment's summary is the mean of, in words: "Mean of 5 seeds, with 95 %
    interval", "Mean of 6 runs (3 folds × 2 seeds), ...", "Mean of 4 of 5 seeds, ..." while
    some are missing. `evaluation`: a config's `evaluation` (object or JSON dict)."""
    get = (lambda k, d: evaluation.get(k, d)) if isinstance(evaluation, dict) else \
        (lambda k, d: getattr(evaluation, k, d))
    folds, seeds = int(get("folds", 1) or 1), max(len(get("seeds", []) or []), 1)
    total = folds * seeds
    done = total if n_done is None else n_done
    part = "" if done == total else f"{done} of "
    if folds > 1 and seeds > 1:
        what = f"{part}{total} runs ({folds} folds × {seeds} seeds)"
    elif folds > 1:
        what = f"{part}{folds} folds"
    else:
        what = f"{part}{seeds} seeds"
    return f"Mean of {what}, with 95 % interval"


def default_run_name(config: RunConfig) -> str:
    """"digits exp50 · Small CNN · Focal loss" (+ label noise, unlabelled share, repeats): the
    name a run gets when the person leaves the name empty."""
    data = config.data
    source = source_label(data.source)
    imb = data.imbalance
    profile = "" if imb.profile == "none" else f" {imb.profile}{imb.ratio:g}"
    model, method = plugin_label("model", config.model.name), method_display(config)
    name = f"{source}{profile} · {model}" + ("" if method == model else f" · {method}")
    if data.text_encoder is not None:  # text read another way than the default word counts is another method
        name += f" · {plugin_label('text_encoder', data.text_encoder.name)}"
    if data.label_noise is not None:
        name += f" · {data.label_noise.name} noise {data.label_noise.rate:.0%}"
    if data.unlabeled is not None and data.unlabeled.fraction > 0:
        name += f" · {data.unlabeled.fraction:.0%} unlabelled"
    return f"{name} · {evaluation_words(config)}" if config.evaluation.is_experiment else name


_METHOD_SECTIONS = {"model", "loss", "sampler", "stage2", "resampler", "posthoc", "label_issues", "pretrain", "semi",
                    "robust", "sharpness"}


def _axis_words(axis: str, label: str) -> str:
    if axis == "data.imbalance.ratio":
        return f"imbalance {setting_value(axis, label)}"
    title = setting_title(axis)
    return f"{title[:1].lower()}{title[1:]} {setting_value(axis, label)}"


def _short_label(label: str) -> str:
    """"MLP" for "Multi-layer perceptron (MLP)"; any other label as it is."""
    match = re.fullmatch(r".+ \(([A-Z][A-Z0-9-]+)\)", label)
    return match.group(1) if match else label


def sweep_cell_name(sweep_name: str, grid: dict[str, Any], settings: dict[str, str], config: RunConfig) -> str:
    """A sweep cell's name in words, short enough for a table beside the sidebar: "standard
    fixes · wine · MLP · Balanced softmax", "losses · Focal loss · imbalance 100 : 1". An axis
    that changes the method (model, loss, sampler, two-stage fix, ...) in any of its values is
    said as the cell's method (and its model, where the sweep changes the model too); every
    other axis as its title and value. The config keeps the names."""
    def touches_method(values: Any) -> bool:
        keys = [k for patch in values.values() for k in patch] if isinstance(values, dict) else []
        return any(k.split(".")[0] in _METHOD_SECTIONS for k in keys)

    def sets_model(axis: str, values: Any) -> bool:
        return axis == "model.name" or (isinstance(values, dict) and any("model.name" in p for p in values.values()))

    method_axes = {a for a, values in grid.items() if a.split(".")[0] in _METHOD_SECTIONS or touches_method(values)}
    parts = [sweep_name]
    if method_axes & set(settings):
        model, method = plugin_label("model", config.model.name), method_display(config)
        # the model only where the sweep changes it (a baseline's method words already name it),
        # by its abbreviation when its words end in one: "MLP", not "Multi-layer perceptron (MLP)"
        if any(sets_model(a, v) for a, v in grid.items()) and method != model:
            parts.append(_short_label(model))
        parts += [method] if method else [model]
    parts += [_axis_words(a, v) for a, v in settings.items() if a not in method_axes]
    return " · ".join(parts)


def budget_text(config: RunConfig, train_counts: Sequence[int] | None = None) -> str:
    """The optimiser steps a run will take, in words, and why small data gets more.
    `train_counts`: the rows per class training sees (default: the first run's split, read
    from the data; the app passes its cached split's counts)."""
    from core.methods import create_sampler
    from core.models import is_baseline
    from core.train import step_plan

    runs = len(config.experiment_runs())
    trainings = f"{runs} trainings ({evaluation_words(config)}), each" if runs > 1 else "One training"
    if is_baseline(config.model.name):
        return f"**Budget:** {trainings} fitted in one go on the training split (no epochs)."
    t = config.train
    if train_counts is None:  # the labels alone when they suffice: free text is not encoded (nor MiniLM tuned)
        data = config.experiment_runs()[0].data
        dataset = load_data(data)
        labels = labelled_train_labels(dataset, data)
        train_counts = (split_data(dataset, data).class_counts if labels is None
                        else np.bincount(labels, minlength=dataset.num_classes))
    sampler = create_sampler(config.sampler.name, config.sampler.params)
    epoch_length = int(round(float(sampler.expected_class_counts(np.asarray(train_counts), 0, t.epochs).sum())))
    plan = step_plan(epoch_length, t.batch_size, t.epochs, t.min_steps)
    plain = t.epochs * plan["batches_per_pass"]
    text = (f"**Budget:** {trainings} {t.epochs} epochs × {plan['batches_per_pass']} batch"
            f"{'es' if plan['batches_per_pass'] > 1 else ''} of up to {t.batch_size} rows = {plain} optimiser steps")
    if plan["passes_per_epoch"] > 1:
        text += (f", raised to **{plan['steps']} steps** ({plan['passes_per_epoch']} passes over the "
                 f"{epoch_length} training rows in each epoch) so the small training split is learned, not just "
                 f"glimpsed (minimum steps: {t.min_steps}).")
    else:
        text += "."
    encoder = config.data.text_encoder
    if encoder is not None and encoder.supervised:
        passes = registry_for("text_encoder").validate(encoder.name, encoder.params).epochs
        text += (f" Before that, MiniLM is tuned on the training texts and labels ({passes} passes), the longest "
                 "part of each training without a GPU.")
    return text


def kept_epoch_words(history: Sequence[dict[str, Any]], selected_epoch: int | None) -> str:
    """Which epoch's model the run kept, as the training-curves chart draws it: a dashed line
    when it is not the last epoch of training, no line when it is (so the words must say so)."""
    epochs = [int(r["epoch"]) for r in history if r.get("stage", "train") == "train" and "epoch" in r]
    if not selected_epoch or not epochs:
        return ""
    if selected_epoch == epochs[-1]:
        return f"The model of the last epoch ({selected_epoch}) was kept."
    return f"The dashed line marks the epoch whose model was kept ({selected_epoch}: the best on the validation split)."


def reused_stage_words(training: dict[str, Any]) -> str:
    """Said under a two-stage run's curves when its first stage was read, not trained."""
    if not training.get("stage_one_reused"):
        return ""
    return ("The epochs before the two-stage fix were not trained again: a run with the same settings, seed and "
            "split (without the fix) had trained them in the same sweep, and this run started from its network "
            "(the same weights as training them here).")

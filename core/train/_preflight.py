"""Pre-flight: what makes a well-formed config unable to run on its data or on this machine.

The config schema checks each field on its own; this checks them against each other and
against the data (its kind and class count), so `tailscope train` and the Train page
refuse a run before it is queued rather than letting a worker fail on it later.
"""

from __future__ import annotations

import numpy as np
import torch

from core.config import RunConfig
from core.data import (
    MULTILABEL_DATASETS, UPLOAD_PREFIX, DataError, Dataset, is_ordinal, labelled_train_counts, load_multilabel_data,
    profile_counts, source_problems,
)
from core.methods import LOSSES, check_resampler
from core.models import MODELS, is_baseline
from core.train._data import prepare_run_data

__all__ = ["compatible_models", "run_problems", "run_warnings"]


def compatible_models(modality: str, ordinal: bool = False) -> list[str]:
    """Models whose declared `modality` capability includes the data's modality; the ordinal
    models only for a label marked as ordered stages; never the multi-label baselines."""
    return [info.name for info in MODELS.infos() if modality in info.capabilities.get("modality", ())
            and (ordinal or not info.capabilities.get("ordinal")) and not info.capabilities.get("multilabel")]


def run_problems(config: RunConfig, dataset: Dataset | None = None,
                 train_labels: np.ndarray | None = None) -> list[str]:
    """One line per problem, naming the config field and what to choose instead; empty
    when the run can start. Loads the data unless `dataset` is given, and prepares the
    training split for a resampler check unless `train_labels` are given."""
    data = config.data
    if data.multilabel:
        return _multilabel_problems(config)
    dataset, problems = source_problems(data, dataset)
    if dataset is None:
        return problems
    modality = dataset.modality
    model_modalities = MODELS.info(config.model.name).capabilities.get("modality", ())
    if modality not in model_modalities:
        problems.append(f"model {config.model.name!r} works on {' or '.join(model_modalities)} data and this "
                        f"dataset is {modality}; choose one of: {', '.join(compatible_models(modality))}")
    if config.resampler is not None and modality != "tabular":
        problems.append(f"resampler {config.resampler.name!r} makes new table rows and this dataset is "
                        f"{modality}; choose resampler 'none' and use a sampler (e.g. class_balanced) instead")

    if data.label_column is not None and not data.source.startswith(UPLOAD_PREFIX):
        problems.append(f"data.label_column applies to uploaded tables; {data.source!r} is a built-in dataset with "
                        "its own labels: remove label_column")
    imbalance = data.imbalance
    available = np.bincount(dataset.y, minlength=dataset.num_classes)
    if imbalance.class_order is not None:
        try:
            profile_counts(available, imbalance.profile, imbalance.ratio, imbalance.mu, imbalance.class_order)
        except ValueError as exc:
            problems.append(f"data.imbalance.class_order: {exc} ({dataset.num_classes} classes)")
    largest = _largest_training_class(available, data)
    if imbalance.profile != "none" and imbalance.ratio > 2 * max(largest, 1):
        problems.append(f"data.imbalance.ratio: {imbalance.ratio:g} cannot be realised here: the most common class "
                        f"keeps about {largest} training samples, so the rarest classes would all be cut to one "
                        f"sample; choose a ratio of at most {largest}")
    problems += _baseline_problems(config)
    cleaning = config.label_issues
    if cleaning is not None and cleaning.resolved_params().get("action") == "downweight":
        if is_baseline(config.model.name):
            problems.append(f"label_issues: model {config.model.name!r} is a table baseline, which can drop suspected "
                            "label issues but not down-weight them; choose action drop")
        if config.resampler is not None:
            problems.append("label_issues: down-weighting suspected rows does not combine with a resampler (its new "
                            "rows have no weight); choose action drop, or remove the resampler")
    min_classes = LOSSES.info(config.loss.name).capabilities.get("min_classes", 2)
    if dataset.num_classes < min_classes:
        problems.append(f"loss {config.loss.name!r} needs at least {min_classes} classes and this dataset has "
                        f"{dataset.num_classes}; choose another loss (e.g. ce or weighted_ce)")
    folds = config.evaluation.folds
    if folds > 1:
        pool = dataset.y if dataset.y_test is None else np.concatenate([dataset.y, dataset.y_test])
        counts = np.bincount(pool, minlength=dataset.num_classes)
        small = [(dataset.class_names[j], int(counts[j])) for j in np.flatnonzero(counts < folds)]
        if small:
            listed = ", ".join(f"{name!r} ({n})" for name, n in small[:3]) + (
                f" and {len(small) - 3} more" if len(small) > 3 else "")
            problems.append(f"evaluation.folds: {folds} folds need at least {folds} samples of every class, and "
                            f"{listed} have fewer; choose at most {max(int(counts[counts > 0].min()), 1)} folds "
                            "or use seeds instead")
    if config.train.device == "cuda" and not torch.cuda.is_available():
        problems.append("device 'cuda': no CUDA GPU is visible on this machine; choose auto or cpu")
    if config.resampler is not None and modality == "tabular" and not problems:
        try:  # on the training split the run would get
            first = config.experiment_runs()[0]  # an experiment's folds all split alike
            labels = prepare_run_data(first).y_train if train_labels is None else train_labels
            check_resampler(config.resampler.name, config.resampler.params, labels)
        except ValueError as exc:
            problems.append(f"resampler: {exc}")
    return problems


def _baseline_problems(config: RunConfig) -> list[str]:
    """Table baselines fit their own class-weighted objective: deep-learning settings that
    would silently be ignored are refused instead."""
    if not is_baseline(config.model.name):
        return []
    model, problems = config.model.name, []
    if MODELS.info(model).capabilities.get("ordinal") and not is_ordinal(config.data):
        problems.append(f"model {model!r} is for ordered stages: mark the label as ordinal and order its values "
                        "(data.ordinal, on the Data page), or choose the built-in ordered-stages data")
    why = f"model {model!r} is a table baseline that fits its own class-balanced objective, so"
    if config.loss.name != "ce" or config.loss.drw_epoch is not None:
        problems.append(f"{why} loss {config.method_label.split(' / ')[0]!r} does not apply: choose loss ce "
                        "(its class weighting is a model parameter)")
    if config.sampler.name != "instance":
        problems.append(f"{why} sampler {config.sampler.name!r} does not apply: choose sampler instance "
                        "(or a resampler, which changes the rows it is fitted on)")
    if config.stage2 is not None:
        problems.append(f"{why} the two-stage fix {config.stage2.name!r} does not apply (there is no network "
                        "classifier to re-train): choose none")
    for section, what in (("pretrain", "pre-training trains a network's feature layers"),
                          ("semi", "semi-supervised training retrains a network"),
                          ("robust", "robust training attacks a network through its gradients"),
                          ("sharpness", "sharpness-aware training changes a network's optimiser steps"),
                          ("evaluation.attack", "an attack follows a network's gradients")):
        if _setting(config, section) is not None:
            problems.append(f"{why} {section} does not apply ({what}): remove {section} or choose a network "
                            "model (e.g. mlp)")
    return problems


def _setting(config: RunConfig, dotted: str):
    value = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def _largest_training_class(available: np.ndarray, data) -> int:
    """About how many training samples the most common class keeps after the test and
    validation splits: the most an imbalance profile's head can have."""
    held = 1 / data.fold.k if data.fold is not None else data.test_fraction
    return int(available.max() * (1 - held) * (1 - min(data.val_fraction / (1 - held), 0.5)))


FEW_LABELLED = 5  # fewer labelled training rows than this: a class is all but guessed


def _multilabel_problems(config: RunConfig) -> list[str]:
    """The data (an upload must load) against the model's modality (the config refused the rest)."""
    if config.data.multilabel_upload is None:
        modality = MULTILABEL_DATASETS.info(config.data.source).capabilities.get("modality")
    else:
        try:
            modality = load_multilabel_data(config.data).modality
        except (DataError, ValueError) as exc:
            return [str(exc)]
    model_modalities = MODELS.info(config.model.name).capabilities.get("modality", ())
    if modality in model_modalities:
        return []
    return [f"model {config.model.name!r} works on {' or '.join(model_modalities)} data and this dataset is "
            f"{modality}; choose one of: {', '.join(compatible_models(modality))}"]


def run_warnings(config: RunConfig, dataset: Dataset | None) -> list[str]:
    """What runs but not quite as asked: one line each, shown before queueing."""
    if config.data.multilabel:
        return []
    im = config.data.imbalance
    notes = []
    largest = _largest_training_class(np.bincount(dataset.y, minlength=dataset.num_classes), config.data)
    if im.profile != "none" and largest < im.ratio <= 2 * largest:
        notes.append(f"the most common class keeps about {largest} training samples, so a ratio of {im.ratio:g} is "
                     f"realised as about {largest} : 1 (the rarest classes keep one sample each)")
    if config.stage2 is not None and config.stage2.name == "weight_balancing" and config.train.weight_decay < 1e-3:
        notes.append(f"weight balancing's first stage relies on a tuned, larger weight decay (the paper: 5e-3); "
                     f"train.weight_decay is {config.train.weight_decay:g}")
    thin = _thin_classes(config, dataset)
    return notes + ([thin] if thin else [])


def _thin_classes(config: RunConfig, dataset: Dataset) -> str | None:
    """A warning when the settings leave a class with fewer than FEW_LABELLED labelled
    training rows (the imbalance ratio and the share of hidden labels together): it trains,
    and that class's results are all but guesses."""
    if config.data.fold is None and config.evaluation.folds > 1:
        config = config.experiment_runs()[0]  # folds split alike: the first one speaks for them
    before, labelled = labelled_train_counts(dataset, config.data)
    thin = [(str(dataset.class_names[j]), int(labelled[j])) for j in np.flatnonzero((before > 0) &
                                                                                     (labelled < FEW_LABELLED))]
    if not thin:
        return None
    listed = ", ".join(f"{name!r} {n}" for name, n in thin[:4]) + (f" and {len(thin) - 4} more" if len(thin) > 4 else "")
    data, causes = config.data, []
    if data.imbalance.profile != "none":
        causes.append(f"data.imbalance.ratio {data.imbalance.ratio:g}")
    if data.unlabeled is not None and data.unlabeled.fraction > 0:
        causes.append(f"hiding {data.unlabeled.fraction:.1%} of the labels (data.unlabeled.fraction)")
    why = f" with {' and '.join(causes)}" if causes else ""
    return (f"{len(thin)} class{'es' if len(thin) > 1 else ''} keep{'' if len(thin) > 1 else 's'} fewer than "
            f"{FEW_LABELLED} labelled training rows{why} ({listed}): a class learnt from so few rows is all but a "
            "guess, and its numbers will swing from seed to seed; "
            + ("lower the ratio or hide fewer labels" if causes else "add rows of those classes"))

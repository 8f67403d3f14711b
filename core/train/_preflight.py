"""Pre-flight: what makes a well-formed config unable to run on its data or on this machine.

The config schema checks each field on its own; this checks them against each other and
against the data (its kind and class count), so `tailscope train` and the Train page
refuse a run before it is queued rather than letting a worker fail on it later.
"""

from __future__ import annotations

import numpy as np
import torch

from core.config import RunConfig
from core.data import Dataset, load_source, profile_counts
from core.methods import check_resampler
from core.models import MODELS
from core.train._trainer import prepare_run_data

__all__ = ["compatible_models", "run_problems"]


def compatible_models(modality: str) -> list[str]:
    """Models whose declared `modality` capability includes the data's modality."""
    return [info.name for info in MODELS.infos() if modality in info.capabilities.get("modality", ())]


def run_problems(config: RunConfig, dataset: Dataset | None = None,
                 train_labels: np.ndarray | None = None) -> list[str]:
    """One line per problem, naming the config field and what to choose instead; empty
    when the run can start. Loads the data unless `dataset` is given, and prepares the
    training split for a resampler check unless `train_labels` are given."""
    data = config.data
    if dataset is None:
        try:
            dataset = load_source(data.source, data.params, data.label_column)
        except (ValueError, OSError) as exc:  # DataError and unknown names are ValueErrors
            return [f"data.source: {exc}"]
    problems = []
    modality = dataset.modality
    model_modalities = MODELS.info(config.model.name).capabilities.get("modality", ())
    if modality not in model_modalities:
        problems.append(f"model {config.model.name!r} works on {' or '.join(model_modalities)} data and this "
                        f"dataset is {modality}; choose one of: {', '.join(compatible_models(modality))}")
    if config.resampler is not None and modality != "tabular":
        problems.append(f"resampler {config.resampler.name!r} makes new table rows and this dataset is "
                        f"{modality}; choose resampler 'none' and use a sampler (e.g. class_balanced) instead")

    imbalance = data.imbalance
    if imbalance.class_order is not None:
        try:
            profile_counts(np.bincount(dataset.y, minlength=dataset.num_classes), imbalance.profile,
                           imbalance.ratio, imbalance.mu, imbalance.class_order)
        except ValueError as exc:
            problems.append(f"data.imbalance.class_order: {exc} ({dataset.num_classes} classes)")
    if config.train.device == "cuda" and not torch.cuda.is_available():
        problems.append("device 'cuda': no CUDA GPU is visible on this machine; choose auto or cpu")
    if config.resampler is not None and modality == "tabular" and not problems:
        try:  # on the training split the run would get
            labels = prepare_run_data(config).y_train if train_labels is None else train_labels
            check_resampler(config.resampler.name, config.resampler.params, labels)
        except ValueError as exc:
            problems.append(f"resampler: {exc}")
    return problems

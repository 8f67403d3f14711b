"""The standard fixes for imbalance as one sweep, and the classic table baselines on the same
set-up: what the Train page's "Try the standard fixes" and "Add the baselines" start, built
from a config alone so the CLI and tests can make the same sweep without the app."""

from __future__ import annotations

import json
from typing import Any

from core.config import RunConfig
from core.data import source_label
from core.glossary import plugin_label
from core.jobs._sweeps import SweepSpec, load_sweep

__all__ = ["BASELINES", "FIXES_SEEDS", "STANDARD_FIXES", "baseline_configs", "standard_fixes_spec"]

BASELINES = ("logistic_regression", "balanced_random_forest", "hist_gradient_boosting")

# The standard fixes for imbalance, as one sweep axis `method`: label -> dotted settings
# changed from plain training. "ce" is the reference every other method is compared with.
STANDARD_FIXES: dict[str, dict[str, Any]] = {
    "ce": {},
    "weighted_ce": {"loss.name": "weighted_ce"},
    "class_balanced": {"sampler.name": "class_balanced"},
    "crt": {"stage2.name": "crt"},
    "balanced_softmax": {"loss.name": "balanced_softmax"},  # = logit adjustment (tau 1): the same loss, trained once
    "ldam_drw": {"loss.name": "ldam"},  # drw_epoch: 80 % of the epochs, as the paper
}
FIXES_SEEDS = 6  # seeds per method when the form asks for one: the fewest whose exact paired test can reach p < 0.05


def baseline_configs(config: RunConfig) -> list[RunConfig]:
    """The table baselines on the same data, splits, folds and seeds as `config`: the
    classic answers a deep fix has to beat."""
    raw = json.loads(config.to_json())
    for section in ("loss", "sampler", "resampler", "stage2"):
        raw.pop(section, None)
    name = source_label(config.data.source)
    return [RunConfig.model_validate({**raw, "model": {"name": model}, "name": f"{name} · {plugin_label('model', model)}"})
            for model in BASELINES]


def standard_fixes_spec(config: RunConfig, modality: str) -> SweepSpec:
    """Plain cross-entropy, the five standard fixes and (on tables) the three classic
    baselines, on this config's data, model, training settings and folds, over matched seeds
    (the form's seeds, or FIXES_SEEDS from its seed): one sweep with one axis, `method`."""
    from core.models import is_baseline

    raw = json.loads(config.to_json())
    for section in ("loss", "sampler", "resampler", "stage2", "posthoc"):
        raw.pop(section, None)
    if is_baseline(config.model.name):  # the fixes need a network: the page's default for this kind of data
        raw["model"] = {"name": "small_cnn" if modality == "image" else "mlp"}
    seed, folds = config.train.seed, config.evaluation.folds
    seeds = list(config.evaluation.seeds) if len(config.evaluation.seeds) > 1 or folds > 1 else \
        list(range(seed, seed + FIXES_SEEDS))  # folds on the form: they are the repeats
    raw["evaluation"] = {"folds": folds, "seeds": seeds}
    imb = config.data.imbalance
    profile = "" if imb.profile == "none" else f" {imb.profile}{imb.ratio:g}"
    raw["name"] = f"standard fixes · {source_label(config.data.source)}{profile}"  # each cell adds model and method
    variants = {label: dict(patch) for label, patch in STANDARD_FIXES.items()}
    variants["ldam_drw"]["loss.drw_epoch"] = int(0.8 * config.train.epochs)
    if modality == "tabular":
        variants.update({model: {"model.name": model} for model in BASELINES})
    return load_sweep({**raw, "grid": {"method": variants}})

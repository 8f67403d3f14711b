"""A sweep from a person's choices (the Sweeps page's builder): the settings to vary, turned
into the same mapping a sweep file holds, its YAML for the command line, and a rough time
estimate from the runs this computer has already trained.

Pure: the page only collects the choices, so the CLI, the page and the tests all build the
same sweep, and the YAML shown loads back (`load_sweep`) to exactly the sweep started.
"""

from __future__ import annotations

import copy
import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from core.config import ConfigError
from core.data import source_label
from core.glossary import setting_title
from core.jobs._sweeps import SweepSpec, expand_sweep, load_sweep
from core.run_words import format_seconds

__all__ = ["SweepChoices", "NO_STAGE2", "sweep_from_choices", "sweep_yaml", "estimate_sweep_seconds",
           "estimate_words"]

NO_STAGE2 = "none"  # the two-stage choice "no second stage"


@dataclass(frozen=True)
class SweepChoices:
    """What the builder asks: the data, model and training it holds fixed, and each setting's
    values to try (one value: held fixed; two or more: an axis of the grid)."""

    data: dict[str, Any]  # a DataConfig as a dict
    model: dict[str, Any]  # {"name": ..., **params}
    train: dict[str, Any]  # TrainConfig fields set (the rest: defaults)
    models: Sequence[str] = ()  # models to compare (two or more: an axis, `model` gives the first's params)
    losses: Sequence[str] = ("ce",)
    samplers: Sequence[str] = ("instance",)
    stage2: Sequence[str] = (NO_STAGE2,)  # NO_STAGE2: train once, no second stage
    ratios: Sequence[float] = ()  # imbalance ratios; empty: the data's own
    noise_rates: Sequence[float] = ()  # shares of training labels changed; empty: the data's own, 0: clean
    noise_kind: str = "symmetric"  # which label noise the rates apply to
    seeds: int = 1
    folds: int = 1
    first_seed: int = 0
    name: str = ""


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def _rate_label(rate: float) -> str:
    return f"{float(rate):g}"


def _default_name(base: dict[str, Any], grid: dict[str, Any]) -> str:
    """"loss × imbalance ratio on wine": what varies, on which data, in words."""
    return f"{' × '.join(setting_title(axis).lower() for axis in grid)} on {source_label(base['data']['source'])}"


def sweep_from_choices(choices: SweepChoices) -> dict[str, Any]:
    """The sweep file's mapping (a run config plus `grid:`), checked by `load_sweep` (so a grid
    over MAX_CELLS cells is refused with its words). ConfigError when no setting has two
    values: a sweep compares them."""
    data = copy.deepcopy(choices.data)
    base: dict[str, Any] = {"data": data, "model": dict(choices.model), "train": dict(choices.train),
                            "loss": {"name": choices.losses[0]} if choices.losses else {"name": "ce"},
                            "sampler": {"name": choices.samplers[0]} if choices.samplers else {"name": "instance"}}
    base["train"]["seed"] = int(choices.first_seed)
    seeds = list(range(int(choices.first_seed), int(choices.first_seed) + int(choices.seeds)))
    base["evaluation"] = {"folds": int(choices.folds), "seeds": seeds if len(seeds) > 1 else []}
    grid: dict[str, Any] = {}
    if len(choices.models) > 1:
        base["model"] = {"name": choices.models[0]}
        grid["model.name"] = list(choices.models)
    elif choices.models:
        base["model"] = {"name": choices.models[0]}
    if len(choices.losses) > 1:
        grid["loss.name"] = list(choices.losses)
    if len(choices.samplers) > 1:
        grid["sampler.name"] = list(choices.samplers)
    stage2 = list(choices.stage2) or [NO_STAGE2]
    if len(stage2) > 1:  # variants: "none" leaves the second stage out
        grid["stage2.name"] = {s: {} if s == NO_STAGE2 else {"stage2.name": s} for s in stage2}
    elif stage2[0] != NO_STAGE2:
        base["stage2"] = {"name": stage2[0]}
    if choices.ratios:
        imbalance = data.setdefault("imbalance", {})
        if imbalance.get("profile", "none") == "none":
            imbalance["profile"] = "exp"  # a ratio needs a profile to shape the classes
        if len(choices.ratios) > 1:
            grid["data.imbalance.ratio"] = [_number(r) for r in choices.ratios]
        else:
            imbalance["ratio"] = _number(choices.ratios[0])
    if choices.noise_rates:
        def noise(rate: float) -> dict[str, Any]:
            return {"data.label_noise": None} if rate == 0 else \
                {"data.label_noise": {"name": choices.noise_kind, "rate": float(rate)}}
        if len(choices.noise_rates) > 1:
            grid["data.label_noise.rate"] = {_rate_label(r): noise(r) for r in choices.noise_rates}
        else:
            data["label_noise"] = noise(choices.noise_rates[0])["data.label_noise"]
    if not grid:
        raise ConfigError("Choose at least two values of one setting (two losses, two ratios, ...): a sweep "
                          "compares them.")
    raw = {"name": choices.name.strip() or _default_name(base, grid), **base, "grid": grid}
    load_sweep(copy.deepcopy(raw))  # refuses what a sweep file would refuse, in the same words
    return raw


def sweep_yaml(raw: dict[str, Any]) -> str:
    """The sweep as a file for `tailscope sweep FILE` (the same sweep: the file resumes it)."""
    return yaml.safe_dump(raw, sort_keys=False, allow_unicode=True, default_flow_style=None, width=100)


def _seconds_per_epoch(config: dict[str, Any], past: Iterable[tuple[dict[str, Any], float]]) -> float | None:
    """The median seconds per epoch of finished runs on the same data and model. Two-stage runs
    are left out: one that started from another run's first stage took a fraction of a training."""
    key = (config["data"]["source"], config["model"]["name"])
    rates = [seconds / max(1, int(c.get("train", {}).get("epochs") or 1)) for c, seconds in past
             if (c.get("data", {}).get("source"), c.get("model", {}).get("name")) == key and seconds > 0
             and not c.get("stage2")]
    return statistics.median(rates) if rates else None


def _first_stage(raw: dict[str, Any]) -> str:
    """What a run's first stage is trained from: its config without its name and stage 2."""
    return json.dumps({k: v for k, v in raw.items() if k not in ("name", "stage2")}, sort_keys=True, default=str)


def estimate_sweep_seconds(spec: SweepSpec, past: Sequence[tuple[dict[str, Any], float]],
                           workers: int) -> tuple[float | None, int]:
    """(seconds, trainings timed): the sweep's trainings at the median pace of finished runs
    of the same data and model (`past`: (config, seconds) pairs), shared among `workers`
    processes. None when no finished run matches some training. A two-stage run whose first
    stage an earlier run of the sweep trains starts from it (`core.train.StageOneStore`) and
    counts as nothing: its classifier re-training takes a fraction of a second on these sizes."""
    cells, _ = expand_sweep(spec)
    total, timed, trained = 0.0, 0, set()
    for cell in cells:
        for run in cell.config.experiment_runs():
            raw = run.model_dump(mode="json")
            pace = _seconds_per_epoch(raw, past)
            if pace is None:
                return None, timed
            first = _first_stage(raw)
            if not (raw.get("stage2") and first in trained):
                total += pace * run.train.epochs
            trained.add(first)
            timed += 1
    return total / max(1, min(workers, timed or 1)), timed


def estimate_words(seconds: float | None, trainings: int, workers: int) -> str:
    """The estimate as a person reads it, with what it rests on."""
    if seconds is None:
        return ("No time estimate yet: no run of this data and model has finished on this computer. Once it starts, "
                "the sweep's progress shows the time left.")
    shared = f", shared among {min(workers, trainings)} processes" if min(workers, trainings) > 1 else ""
    return (f"About {format_seconds(seconds)} ({trainings} trainings{shared}; a rough guess from how long "
            "runs of this data and model took on this computer).")


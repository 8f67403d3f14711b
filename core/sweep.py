"""Sweeps: one base config crossed with a grid of settings, each grid cell an experiment.

A sweep file is a run config plus `grid:`. Each grid axis is a dotted key with a list of
values (`loss.name: [ce, ldam]`, `data.imbalance.ratio: [10, 100]`), or a named set of
variants, each a mapping of dotted keys (`method: {ce: {}, crt: {stage2.name: crt}}`), for
settings that change together. Cells cross every axis; the base config's `evaluation`
(folds, seeds) repeats every cell.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from core.config import ConfigError, LossSpec, RunConfig, format_validation_error, read_config_file

__all__ = ["SweepSpec", "SweepCell", "load_sweep", "expand_sweep", "MAX_CELLS"]

MAX_CELLS = 500  # a sweep is a question, not a search: more cells than this is a mistake
_PLUGIN_SECTIONS = {"model", "loss", "sampler", "resampler", "stage2", "label_issues", "pretrain", "semi"}
_OWN_FIELDS = {"loss": set(LossSpec.model_fields) - {"name"}}  # DRW settings survive a change of loss


@dataclass(frozen=True)
class SweepSpec:
    name: str
    base: dict[str, Any]  # the run config without `grid`
    grid: dict[str, Any]  # axis -> list of values, or mapping label -> {dotted key: value}

    @property
    def spec_hash(self) -> str:
        """Same base and grid, same sweep: re-running it resumes instead of starting over."""
        text = json.dumps({"base": self.base, "grid": self.grid}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.base, "grid": self.grid}


@dataclass(frozen=True)
class SweepCell:
    settings: dict[str, str]  # axis -> the value's label, e.g. {"loss.name": "ldam", "data.imbalance.ratio": "100"}
    config: RunConfig

    @property
    def label(self) -> str:
        return ", ".join(f"{axis}={value}" for axis, value in self.settings.items())


def load_sweep(source: str | Path | Mapping) -> SweepSpec:
    """From a YAML/JSON file or a mapping; ConfigError with one readable line."""
    raw = dict(source) if isinstance(source, Mapping) else \
        read_config_file(source, "a run config with a `grid:` section")
    grid = raw.pop("grid", None)
    if not isinstance(grid, dict) or not grid:
        raise ConfigError("grid: a sweep needs a `grid:` mapping of settings to lists of values, e.g. "
                          "{loss.name: [ce, ldam], data.imbalance.ratio: [10, 100]}")
    for axis, values in grid.items():
        if isinstance(values, Mapping):
            if not values or not all(isinstance(v, Mapping) for v in values.values()):
                raise ConfigError(f"grid.{axis}: a set of variants maps each name to its settings, e.g. "
                                  "{crt: {stage2.name: crt}}")
        elif not isinstance(values, list) or not values:
            raise ConfigError(f"grid.{axis}: expected a non-empty list of values")
        elif len({json.dumps(v, sort_keys=True, default=str) for v in values}) != len(values):
            raise ConfigError(f"grid.{axis}: a value is listed twice")
    cells = 1
    for values in grid.values():
        cells *= len(values)
    if cells > MAX_CELLS:
        raise ConfigError(f"grid: {cells} cells is more than {MAX_CELLS}; sweep fewer values at a time")
    return SweepSpec(str(raw.get("name") or "sweep"), raw, grid)


def _label(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _set(raw: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `a.b.c` in a nested config dict. Setting a plug-in's name starts that section
    afresh (another loss takes other parameters), keeping the section's own settings."""
    *parents, last = dotted.split(".")
    node = raw
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    if len(parents) == 1 and parents[0] in _PLUGIN_SECTIONS and last == "name":
        keep = _OWN_FIELDS.get(parents[0], set())
        for key in [k for k in node if k not in keep]:
            del node[key]
    node[last] = value


def expand_sweep(spec: SweepSpec) -> tuple[list[SweepCell], list[str]]:
    """Every cell's validated config, and every problem found (all of them, not the first),
    each naming its cell."""
    axes = list(spec.grid)
    choices = [list(v.items()) if isinstance(v, Mapping) else [(_label(x), {axis: x}) for x in v]
               for axis, v in spec.grid.items()]
    cells, problems = [], []
    for combo in itertools.product(*choices):
        raw = json.loads(json.dumps(spec.base))
        settings = {}
        for axis, (label, patch) in zip(axes, combo, strict=True):
            settings[axis] = str(label)
            for dotted, value in patch.items():
                _set(raw, dotted, value)
        where = ", ".join(f"{a}={v}" for a, v in settings.items())
        raw["name"] = f"{spec.name} · {where}"[:200]
        try:
            cells.append(SweepCell(settings, RunConfig.model_validate(raw)))
        except ValidationError as exc:
            problems.append(f"{where}: {format_validation_error(exc)}")
    return cells, problems

"""One validated config per run (pydantic), saved as `config.json` beside its results.

Plug-in sections (`model`, `loss`, `sampler`, `resampler`, `stage2`) are written flat,
`{name: ldam, max_margin: 0.5}`, and validated against the named entry's parameter
schema, so a typo fails with the field path and the list of valid names or parameters.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.registry import Registry

__all__ = [
    "StrictModel", "ImbalanceConfig", "DataConfig", "ModelSpec", "LossSpec", "SamplerSpec",
    "ResamplerSpec", "Stage2Spec", "TrainConfig", "RunConfig", "ConfigError", "load_config",
    "format_validation_error",
]


class ConfigError(ValueError):
    """A config that cannot run; the message is one line a person can act on."""


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PluginSpec(BaseModel):
    """`name` plus that plug-in's parameters as extra keys, checked against its registry."""

    model_config = ConfigDict(extra="allow", frozen=True)
    registry_path: ClassVar[tuple[str, str]]  # (module, attribute): imported lazily
    name: str

    @classmethod
    def registry(cls) -> Registry:
        import importlib

        module, attr = cls.registry_path
        return getattr(importlib.import_module(module), attr)

    @property
    def params(self) -> dict[str, Any]:
        own = set(type(self).model_fields)
        return {k: v for k, v in (self.model_extra or {}).items() if k not in own}

    @model_validator(mode="after")
    def _check_params(self) -> PluginSpec:
        self.registry().validate(self.name, self.params)
        return self

    def resolved_params(self) -> dict[str, Any]:
        """Parameters with the schema's defaults filled in (what actually runs)."""
        return self.registry().validate(self.name, self.params).model_dump()


class ModelSpec(PluginSpec):
    registry_path = ("core.models", "MODELS")
    name: str = "mlp"  # mlp | small_cnn | resnet32


class LossSpec(PluginSpec):
    registry_path = ("core.methods", "LOSSES")
    name: str = "ce"
    drw_epoch: int | None = Field(None, ge=0)  # deferred re-weighting starts here (Cao et al. 2019)
    drw_beta: float = Field(0.9999, gt=0, lt=1)  # effective-number beta of the DRW weights


class SamplerSpec(PluginSpec):
    registry_path = ("core.methods", "SAMPLERS")
    name: str = "instance"


class ResamplerSpec(PluginSpec):
    registry_path = ("core.methods", "RESAMPLERS")
    name: str


class Stage2Spec(PluginSpec):
    registry_path = ("core.train", "STAGE2")
    name: str


class ImbalanceConfig(StrictModel):
    profile: Literal["none", "exp", "step", "linear"] = "none"  # applied to the training split only
    ratio: float = Field(10.0, ge=1)  # n_max / n_min
    mu: float = Field(0.5, ge=0, le=1)  # step profile: fraction of minority classes
    class_order: list[int] | None = None  # head to tail; default 0..K-1


class DataConfig(StrictModel):
    source: str = "digits"  # built-in dataset name, or "upload:<stored file>"
    params: dict[str, Any] = Field(default_factory=dict)  # built-in dataset parameters
    label_column: str | None = None  # tables: which column holds the label (guessed if unset)
    imbalance: ImbalanceConfig = ImbalanceConfig()
    test_fraction: float = Field(0.25, gt=0, lt=0.9)  # ignored when the source ships a test split
    val_fraction: float = Field(0.15, gt=0, lt=0.5)
    many_shot: int = Field(100, ge=1)  # head: more training samples than this
    few_shot: int = Field(20, ge=1)  # tail: fewer than this
    seed: int = 0  # split and subsampling seed


class TrainConfig(StrictModel):
    epochs: int = Field(20, ge=1, le=10_000)
    batch_size: int = Field(128, ge=2, le=65_536)
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = Field(0.05, gt=0, le=10)
    momentum: float = Field(0.9, ge=0, lt=1)  # sgd only
    weight_decay: float = Field(5e-4, ge=0, le=1)
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    warmup_epochs: int = Field(0, ge=0)  # linear warm-up
    step_milestones: list[float] = [0.8, 0.9]  # step schedule: fractions of training
    step_gamma: float = Field(0.1, gt=0, le=1)
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    augment: Literal["auto", "none", "crop", "crop_flip"] = "auto"  # auto: crop+flip at 32x32, else none
    compile: bool = False  # torch.compile on CUDA
    nc_every: int = Field(5, ge=0)  # neural-collapse metrics every N epochs (0: never)
    train_subset: int = Field(2048, ge=10)  # stored train features (geometry, UMAP)


class RunConfig(StrictModel):
    name: str = ""
    data: DataConfig = DataConfig()
    model: ModelSpec = ModelSpec()
    loss: LossSpec = LossSpec()
    sampler: SamplerSpec = SamplerSpec()
    resampler: ResamplerSpec | None = None
    stage2: Stage2Spec | None = None
    train: TrainConfig = TrainConfig()

    @model_validator(mode="after")
    def _check_combination(self) -> RunConfig:
        drw = self.loss.drw_epoch
        if drw is not None and drw >= self.train.epochs:
            raise ValueError(f"loss.drw_epoch ({drw}) must be below train.epochs ({self.train.epochs})")
        if self.train.warmup_epochs >= self.train.epochs:
            raise ValueError("train.warmup_epochs must be below train.epochs")
        if self.data.few_shot > self.data.many_shot:
            raise ValueError("data.few_shot must not exceed data.many_shot")
        return self

    @property
    def method_label(self) -> str:
        """A short human label: loss [+DRW] / sampler [+ stage 2]."""
        parts = [self.loss.name + ("+drw" if self.loss.drw_epoch is not None else "")]
        if self.sampler.name != "instance":
            parts.append(self.sampler.name)
        if self.resampler:
            parts.append(self.resampler.name)
        if self.stage2:
            parts.append(self.stage2.name)
        return " / ".join(parts)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", exclude_none=True), indent=2)


def format_validation_error(exc: ValidationError) -> str:
    """One line per problem: `loss.gamma: Input should be ...`."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(lines)


def load_config(source: str | Path | dict) -> RunConfig:
    """From a YAML/JSON file path, or a dict; raises ConfigError with one readable line."""
    if isinstance(source, dict):
        raw = source
    else:
        path = Path(source)
        try:
            raw = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping of sections (data, model, loss, ...)")
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None

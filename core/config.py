"""One validated config per run (pydantic), saved as `config.json` beside its results.

Plug-in sections (`model`, `loss`, `sampler`, `resampler`, `stage2`, ...) are written flat,
`{name: ldam, max_margin: 0.5}`, and validated against the named entry's parameter
schema, so a typo fails with the field path and the list of valid names or parameters.
A built-in dataset's `data.params` are checked the same way, before anything is queued.
Each section finds its registry through the table of kinds (`core.registry.registry_for`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from core.registry import Registry, Seed, registry_for

MIN_STEPS_DEFAULT = 300
MAX_NAME = 200  # characters of a run name
MAX_CONFIG_BYTES = 1024**2  # a config file is a page of YAML, not a data file
UPLOAD_PREFIX = "upload:"  # core.data's prefix of a stored upload's source (config sits below data)
SOURCE_FIELDS = ("data.source", "data.unlabeled.source")  # every field naming data to read: one check for all
_STORED_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,199}")  # a stored upload's file name: no folders

__all__ = [
    "StrictModel", "ImbalanceConfig", "FoldSpec", "DataConfig", "ModelSpec", "LossSpec", "SamplerSpec",
    "ResamplerSpec", "Stage2Spec", "LabelNoiseSpec", "TextEncoderSpec", "UnlabeledConfig", "SemiSpec", "PretrainSpec", "RobustSpec", "SharpnessSpec", "AttackSpec", "LabelIssueSpec", "TrainConfig", "EvaluationConfig", "PosthocStep", "RunConfig", "ConfigError",
    "load_config", "read_config_file", "format_validation_error", "config_hash", "SOURCE_FIELDS", "check_source",
    "source_values",
]


class ConfigError(ValueError):
    """A config that cannot run; the message is one line a person can act on."""


class StrictModel(BaseModel):
    # NaN and infinity are never a setting: `lr: .nan` is refused as "not a finite number"
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class PluginSpec(BaseModel):
    """`name` plus that plug-in's parameters as extra keys, checked against its registry."""

    model_config = ConfigDict(extra="allow", frozen=True)
    plugin_kind: ClassVar[str]  # its row in core.registry.KINDS (not `kind`: borderline SMOTE has a `kind`)
    name: str

    @classmethod
    def registry(cls) -> Registry:
        return registry_for(cls.plugin_kind)

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
    plugin_kind = "model"
    name: str = "mlp"  # mlp | small_cnn | resnet32


class LossSpec(PluginSpec):
    """A loss, plus the loss schedules that combine with any loss (DRW): their settings are
    declared with the losses (`core.methods.LOSS_SCHEDULES`) and checked against it here."""

    plugin_kind = "loss"
    name: str = "ce"
    drw_epoch: int | None = None  # deferred re-weighting starts here (Cao et al. 2019); unset: never
    drw_beta: float = 0.9999  # effective-number beta of the DRW weights

    @model_validator(mode="after")
    def _check_schedules(self) -> LossSpec:
        for info in registry_for("loss_schedule").infos():
            info.validate_params({k: getattr(self, k) for k in info.params.model_fields})
        return self


class SamplerSpec(PluginSpec):
    plugin_kind = "sampler"
    name: str = "instance"


class ResamplerSpec(PluginSpec):
    plugin_kind = "resampler"
    name: str


class Stage2Spec(PluginSpec):
    plugin_kind = "stage2"
    name: str


class LabelNoiseSpec(PluginSpec):
    """Training labels corrupted on purpose (`core.data.LABEL_NOISE`); test labels stay clean."""

    plugin_kind = "label_noise"
    name: str  # symmetric | pair | tail
    rate: float = Field(0.2, ge=0, lt=1)  # share of training rows whose label is changed
    seed: Seed = 0  # which rows, and to which class


def _is_file(source: str) -> bool:
    """An upload, or a path the CLI stores as one; anything else names a built-in dataset."""
    return source.startswith(UPLOAD_PREFIX) or any(c in source for c in "./\\")


def check_source(source: str, *, builtin: bool) -> str:
    """The one check of every source-like field (`SOURCE_FIELDS`), made when a config is
    validated, so a bad value is refused before anything is queued, whichever field holds
    it: an upload reference is `upload:` and a stored file's name, never a path out of the
    uploads folder; a path names a file that `tailscope train` stores as an upload and
    reads before queueing; a name is a built-in dataset where `builtin` allows one.
    Whether the file is there and readable is checked with the data (`core.data`)."""
    if not source.strip():
        raise ValueError("is empty; name " + ("a built-in dataset or " if builtin else "") + "an uploaded file")
    if source.startswith(UPLOAD_PREFIX):
        if not _STORED_NAME.fullmatch(source[len(UPLOAD_PREFIX):]):
            raise ValueError(f"{source[:80]!r} is not a valid upload reference (upload: and the stored file's name, "
                             "without folders); upload the file again")
        return source
    if _is_file(source):
        return source
    if not builtin:
        raise ValueError(f"{source[:80]!r} is not a file; unlabelled rows come from an uploaded file (the Data page, "
                         "or the file's path in a config for tailscope train)")
    registry_for("dataset").info(source)  # unknown: fails listing the built-in datasets
    return source


def source_values(config: Any) -> list[tuple[str, str]]:
    """(field, value) of every source-like field a run config sets, as a model or as saved
    (a dict), in `SOURCE_FIELDS` order."""
    raw = config if isinstance(config, dict) else json.loads(config.to_json())
    out = []
    for field in SOURCE_FIELDS:
        value: Any = raw
        for part in field.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, str) and value:
            out.append((field, value))
    return out


class UnlabeledConfig(StrictModel):
    """Training rows whose labels are hidden (or extra rows without labels) for semi- and
    self-supervised methods."""

    fraction: float = Field(0.0, ge=0, lt=1)  # share of the training split whose labels are hidden, per class
    source: str | None = None  # "upload:<stored file>": extra unlabelled rows or images

    @field_validator("source")
    @classmethod
    def _check_source(cls, source: str | None) -> str | None:
        return None if source is None else check_source(source, builtin=False)


class SemiSpec(PluginSpec):
    """Semi-supervised use of the unlabelled rows (`core.train.SEMI`), e.g. pseudo-labels."""

    plugin_kind = "semi"
    name: str


class PretrainSpec(PluginSpec):
    """Self-supervised pre-training of the backbone on every training input (`core.train.PRETRAIN`)."""

    plugin_kind = "pretrain"
    name: str


class RobustSpec(PluginSpec):
    """Training on attacked copies of the inputs (`core.train.ROBUST`): PGD, TRADES, SRAT, MTARD."""

    plugin_kind = "robust"
    name: str


class SharpnessSpec(PluginSpec):
    """Sharpness-aware optimisation steps (`core.train.SHARPNESS`): SAM, ImbSAM."""

    plugin_kind = "sharpness"
    name: str


class AttackSpec(PluginSpec):
    """An attack every test case also meets when the run is scored (`core.methods.ATTACKS`):
    the run then reports its accuracy under it, so sweeps and comparisons can rank by it."""

    plugin_kind = "attack"
    name: str


class LabelIssueSpec(PluginSpec):
    """Find suspected label issues in the training split before training, then drop or
    down-weight them (`core.methods.CLEANERS`)."""

    plugin_kind = "label_issues"
    name: str


class ImbalanceConfig(StrictModel):
    profile: Literal["none", "exp", "step", "linear"] = "none"  # applied to the training split only
    ratio: float = Field(10.0, ge=1, le=1e6)  # n_max / n_min
    mu: float = Field(0.5, ge=0, le=1)  # step profile: fraction of minority classes
    class_order: list[int] | None = None  # head to tail; default 0..K-1


class FoldSpec(StrictModel):
    """One fold of stratified K-fold: the test split is fold `index` of `k`, shuffled by `data.seed`."""

    k: int = Field(ge=2, le=20)  # number of folds
    index: int = Field(ge=0)  # which fold is the test split

    @model_validator(mode="after")
    def _check_index(self) -> FoldSpec:
        if self.index >= self.k:
            raise ValueError(f"fold index {self.index} must be below k = {self.k}")
        return self


class TextEncoderSpec(PluginSpec):
    """How free-text columns become features (`core.data.TEXT_ENCODERS`), fitted on training texts."""
    plugin_kind = "text_encoder"
    name: str = "tfidf"


ColumnRole = Literal["numeric", "categorical", "date", "id", "text", "constant", "ignore"]  # a table column's use


class DataConfig(StrictModel):
    """Where the data comes from and how it is split. A built-in dataset is a plug-in like the
    others (`core.data.DATASETS`): its `params` are checked against its schema here."""

    source: str = "digits"  # built-in dataset name, or "upload:<stored file>"
    params: dict[str, Any] = Field(default_factory=dict)  # built-in dataset parameters
    label_column: str | None = None  # tables: which column holds the label (guessed if unset)
    column_roles: dict[str, ColumnRole] = Field(default_factory=dict)  # uploaded tables: role of a column where it differs from the detected one
    missing: Literal["refuse", "drop", "fill"] = "refuse"  # uploaded tables: empty, non-number or non-finite cells: refuse the file, drop their rows, or fill them (median / most frequent of the training split)
    merge_labels: bool | None = None  # uploads: labels that differ only by capitals, surrounding spaces or number form ('Yes' / 'YES', '1' / '1.0', folders 'Cat' / 'cat'): true counts each group as one class, false keeps them apart, unset refuses such data
    imbalance: ImbalanceConfig = ImbalanceConfig()
    test_fraction: float = Field(0.25, gt=0, lt=0.9)  # ignored when the source ships a test split
    val_fraction: float = Field(0.15, gt=0, lt=0.5)
    many_shot: int = Field(100, ge=1)  # head: more training samples than this
    few_shot: int = Field(20, ge=1)  # tail: fewer than this
    seed: Seed = 0  # split and subsampling seed
    fold: FoldSpec | None = None  # set by an experiment: test on one fold of K instead of test_fraction
    label_noise: LabelNoiseSpec | None = None  # corrupt training labels on purpose (after the imbalance profile)
    unlabeled: UnlabeledConfig | None = None  # hide a share of the training labels, or add unlabelled rows
    ordinal: list[str] | None = Field(None, min_length=2, max_length=100)  # the label's values as ordered stages, first to last (rare); renumbers the classes in that order
    text_encoder: TextEncoderSpec | None = None  # free-text columns (uploads' "text" role, text built-ins): how they become features; unset: word counts (TF-IDF)

    @field_validator("source")
    @classmethod
    def _known_source(cls, source: str) -> str:
        return check_source(source, builtin=True)

    @field_validator("ordinal", mode="before")
    @classmethod
    def _stages_as_text(cls, value: Any) -> Any:
        """`ordinal: [1, 2, 3]` names the label values '1', '2', '3' (class names are text)."""
        if isinstance(value, list):
            return [str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for v in value]
        return value

    @field_validator("params")
    @classmethod
    def _check_dataset_params(cls, params: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        source = info.data.get("source")
        if source is None:  # the source itself was refused
            return params
        if _is_file(source):
            if params:
                raise ValueError("params apply to built-in datasets only; remove them for an uploaded file")
            return params
        registry_for("dataset").validate(source, params)
        return params

    @model_validator(mode="after")
    def _check_table_options(self) -> DataConfig:
        is_file = _is_file(self.source)
        if self.column_roles and not is_file:
            raise ValueError("column_roles apply to uploaded tables only; remove them for a built-in dataset")
        if self.merge_labels is not None and not is_file:
            raise ValueError("merge_labels applies to uploaded files only; remove it for a built-in dataset")
        if self.label_column is not None and self.label_column in self.column_roles:
            raise ValueError(f"column {self.label_column!r} is the label_column; it cannot also have a role")
        if any(not str(name).strip() for name in self.column_roles):
            raise ValueError("column_roles: a column name is empty")
        if self.ordinal is not None and len(set(self.ordinal)) != len(self.ordinal):
            raise ValueError(f"ordinal lists a stage twice: {self.ordinal}")
        return self


class TrainConfig(StrictModel):
    epochs: int = Field(20, ge=1, le=10_000)
    batch_size: int = Field(128, ge=2, le=65_536)
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = Field(0.05, gt=0, le=10)
    momentum: float = Field(0.9, ge=0, lt=1)  # sgd only
    weight_decay: float = Field(5e-4, ge=0, le=1)
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    warmup_epochs: int = Field(0, ge=0)  # linear warm-up
    step_milestones: list[float] = Field([0.8, 0.9], max_length=20)  # step schedule: fractions of training
    step_gamma: float = Field(0.1, gt=0, le=1)
    seed: Seed = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    augment: Literal["auto", "none", "crop", "crop_flip"] = "auto"  # auto: crop+flip at 32x32, else none
    compile: bool = False  # torch.compile on CUDA
    nc_every: int = Field(5, ge=0)  # neural-collapse metrics every N epochs (0: never)
    train_subset: int = Field(2048, ge=10)  # stored train features (geometry, UMAP)
    select: Literal["best", "last"] = "best"  # keep the epoch with the best validation balanced accuracy
    patience: int | None = Field(None, ge=1)  # stop after this many epochs without a better validation score
    min_steps: int = Field(MIN_STEPS_DEFAULT, ge=0, le=1_000_000)  # small data: repeat each epoch's draw up to this many steps
    deterministic: bool = False  # bit-identical results for the same config, seed, device and thread count

    @model_validator(mode="after")
    def _check_milestones(self) -> TrainConfig:
        m = self.step_milestones
        if any(not 0 < x < 1 for x in m) or any(b <= a for a, b in zip(m, m[1:])):
            raise ValueError(f"step_milestones must be increasing fractions of training between 0 and 1 "
                             f"(e.g. [0.8, 0.9] for 80 % and 90 %), got {m}")
        return self


class PosthocStep(StrictModel):
    """One saved post-hoc adjustment (the Post-hoc explorer's sliders), applied after training."""

    logit_tau: float = Field(0.0, ge=0, le=5)  # subtract tau x log(trained prior)
    tau_norm: float = Field(0.0, ge=0, le=5)  # divide head rows by their norm^tau
    temperature: float = Field(1.0, ge=0.05, le=10)  # divide the logits
    prior_threshold: bool = False  # divide probabilities by the trained prior


class EvaluationConfig(StrictModel):
    """How many trainings answer the question: one split and one seed (the default), or an
    experiment over K stratified folds and/or several seeds, whose runs share an id."""

    folds: int = Field(1, ge=1, le=20)  # 1: one split (data.test_fraction); K >= 2: every sample tested once
    seeds: list[Seed] = Field(default_factory=list, max_length=50)  # training seeds; empty: train.seed alone
    attack: AttackSpec | None = None  # also score the test cases attacked (robust accuracy); networks only

    @model_validator(mode="after")
    def _unique_seeds(self) -> EvaluationConfig:
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"evaluation.seeds repeats a seed: {self.seeds}")
        return self

    @property
    def is_experiment(self) -> bool:
        return self.folds > 1 or len(self.seeds) > 1


class RunConfig(StrictModel):
    name: str = Field("", max_length=MAX_NAME)
    # built when a config is made, not when this module is imported: checking them imports their registries
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelSpec = Field(default_factory=ModelSpec)
    loss: LossSpec = Field(default_factory=LossSpec)
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    resampler: ResamplerSpec | None = None
    stage2: Stage2Spec | None = None
    label_issues: LabelIssueSpec | None = None  # drop or down-weight suspected label issues before training
    pretrain: PretrainSpec | None = None  # self-supervised pre-training stage before the usual training
    semi: SemiSpec | None = None  # semi-supervised use of data.unlabeled
    robust: RobustSpec | None = None  # train on attacked copies of the inputs (adversarial training)
    sharpness: SharpnessSpec | None = None  # sharpness-aware steps (SAM, ImbSAM): gradients at the worst nearby weights
    train: TrainConfig = TrainConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    posthoc: list[PosthocStep] = Field(default_factory=list, max_length=10)  # applied in order after training

    @model_validator(mode="after")
    def _check_combination(self) -> RunConfig:
        drw = self.loss.drw_epoch
        if drw is not None and drw >= self.train.epochs:
            raise ValueError(f"loss.drw_epoch ({drw}) must be below train.epochs ({self.train.epochs})")
        if self.train.warmup_epochs >= self.train.epochs:
            raise ValueError("train.warmup_epochs must be below train.epochs")
        if self.data.few_shot > self.data.many_shot:
            raise ValueError("data.few_shot must not exceed data.many_shot")
        if self.data.fold is not None and self.evaluation.folds > 1:
            raise ValueError("data.fold picks one fold and evaluation.folds runs them all; set one of the two")
        unlabeled = self.data.unlabeled
        if self.semi is not None and (unlabeled is None or (unlabeled.fraction == 0 and unlabeled.source is None)):
            raise ValueError("semi needs unlabelled rows: set data.unlabeled.fraction (e.g. 0.9) or data.unlabeled.source")
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
        for extra in (self.label_issues, self.pretrain, self.semi, self.robust, self.sharpness):
            if extra is not None:
                parts.append(extra.name)
        return " / ".join(parts)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", exclude_none=True), indent=2)

    def experiment_runs(self) -> list[RunConfig]:
        """The runs of this config's evaluation, each a plain one-split, one-seed config.

        Seeds alone: the same split, one training per seed (training noise). With K folds:
        for the r-th seed, a stratified K-fold shuffled by `data.seed + r` (repeated K-fold),
        one run per fold, so every sample is tested once per repeat (split noise too).
        """
        ev = self.evaluation
        seeds = ev.seeds or [self.train.seed]
        folds = range(ev.folds) if ev.folds > 1 else [None]
        runs = []
        for r, seed in enumerate(seeds):
            for index in folds:
                data = self.data
                parts = []
                if index is not None:
                    data = data.model_copy(update={"seed": self.data.seed + r,
                                                   "fold": FoldSpec(k=ev.folds, index=index)})
                    parts.append(f"fold {index + 1}/{ev.folds}")
                if len(seeds) > 1:
                    parts.append(f"seed {seed}")
                runs.append(self.model_copy(update={
                    "name": " · ".join([self.name, *parts]) if self.name else " · ".join(parts),
                    "data": data, "train": self.train.model_copy(update={"seed": seed}),
                    "evaluation": EvaluationConfig(attack=ev.attack)}))  # each run is still scored under attack
        return runs


def format_validation_error(exc: ValidationError) -> str:
    """One line per problem: `loss.gamma: Input should be ...`."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "finite_number":
            msg = "not a number (NaN or infinity); give a finite number"
        elif loc.endswith("seed") or ".seeds." in f"{loc}.":
            msg = f"a seed is a whole number from 0 to {2**32 - 1}, got {str(err.get('input'))[:40]}"
        lines.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(lines)


def read_config_file(path: str | Path, expected: str = "a mapping of sections (data, model, loss, ...)") -> dict:
    """A YAML/JSON config file as a dict; ConfigError with one readable line (too large, not
    readable, not UTF-8, not YAML, not a mapping). Shared by run and sweep files."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: {size / 1024**2:.1f} MB is too large for a config (at most "
                              f"{MAX_CONFIG_BYTES // 1024**2} MB); is it a data file? Point data.source at it instead")
        raw = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save the config as UTF-8 YAML or JSON") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected {expected}")
    return raw


def load_config(source: str | Path | dict) -> RunConfig:
    """From a YAML/JSON file path, or a dict; raises ConfigError with one readable line."""
    raw = source if isinstance(source, dict) else read_config_file(source)
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None


def config_hash(config: RunConfig | dict[str, Any]) -> str:
    """What a run computes, without its name: equal hashes, equal runs (a resumed sweep skips
    those already done)."""
    import hashlib

    raw = json.loads(config.to_json()) if isinstance(config, RunConfig) else dict(config)
    raw.pop("name", None)
    return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:16]

"""One validated config per run (pydantic), saved as `config.json` beside its results.

Plug-in sections (`model`, `loss`, `sampler`, `resampler`, `stage2`, ...) are written flat,
`{name: ldam, max_margin: 0.5}`, and validated against the named entry's parameter
schema, so a typo fails with the field path and the list of valid names or parameters.
A built-in dataset's `data.params` are checked the same way, before anything is queued.
Each section finds its registry through the table of kinds (`core.registry.registry_for`).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from core.config_files import (
    MAX_CONFIG_BYTES, SOURCE_FIELDS, UPLOAD_PREFIX, ConfigError, _is_file, baseline_refusals, check_source, config_hash,
    format_validation_error, is_multilabel_data, is_multilabel_source, multilabel_upload_problem, read_config_file,
    scheme_refusals, source_values, data_refusal, with_training_seed,
)
from core.registry import Registry, Seed, registry_for

MIN_STEPS_DEFAULT = 300
MAX_NAME = 200  # characters of a run name

__all__ = [
    "StrictModel", "MAX_CONFIG_BYTES", "MultiLabelLossSpec", "MultiLabelSamplerSpec", "is_multilabel_source",
    "MultiLabelUploadSpec", "is_multilabel_data", "ImbalanceConfig", "FoldSpec", "DataConfig", "ModelSpec", "LossSpec", "SamplerSpec",
    "ResamplerSpec", "Stage2Spec", "LabelNoiseSpec", "TextEncoderSpec", "UnlabeledConfig", "SemiSpec", "PretrainSpec", "RobustSpec", "SharpnessSpec", "AttackSpec", "LabelIssueSpec", "MultiLabelSchemeSpec", "TrainConfig", "EvaluationConfig", "PosthocStep", "RunConfig", "ConfigError",
    "load_config", "read_config_file", "format_validation_error", "config_hash", "SOURCE_FIELDS", "check_source", "source_values",
]


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


class MultiLabelLossSpec(LossSpec):
    """`loss` of a run on multi-label data: an entry of `MULTILABEL_LOSSES` (chosen for the
    section by `RunConfig`, from `data.source`), never a single-label loss."""

    plugin_kind = "multilabel_loss"


class MultiLabelSamplerSpec(SamplerSpec):
    plugin_kind = "multilabel_sampler"


class MultiLabelSchemeSpec(PluginSpec):
    plugin_kind = "multilabel_scheme"  # multi-label training beyond one network (`core.train.MULTILABEL_SCHEMES`)


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

    @property
    def supervised(self) -> bool:  # learns from the training labels too (fine-tuned MiniLM)
        return bool(registry_for(self.plugin_kind).info(self.name).capabilities.get("supervised"))


class MultiLabelUploadSpec(StrictModel):
    """An upload read as multi-label data: a table sets one of the two; an `.npz` (a 2-D `y`) neither."""

    separator: Literal["|", ";", ","] | None = None  # tables: the label column lists labels split by this
    columns: list[str] | None = Field(None, min_length=2, max_length=1000)  # tables: one 0/1 column per label


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
    hide_labels: float = Field(0.0, ge=0, lt=1)  # multi-label: share of each label's training entries made unknown (partial labels)
    unknown_as_absent: bool = False  # multi-label: train reading unknown entries as absent (the common mistake, to measure its cost)
    multilabel_upload: MultiLabelUploadSpec | None = None  # uploads: read the file as multi-label data (several labels per case)

    @property
    def multilabel(self) -> bool:
        return is_multilabel_source(self.source) or self.multilabel_upload is not None

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
        registry_for("multilabel_dataset" if is_multilabel_source(source) else "dataset").validate(source, params)
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
        spec = self.multilabel_upload
        problem = spec and multilabel_upload_problem(self.source, is_file, spec.separator, spec.columns,
                                                     self.label_column, self.column_roles, self.merge_labels)
        if problem:
            raise ValueError(problem)
        if not self.multilabel and (self.hide_labels or self.unknown_as_absent):
            raise ValueError("hide_labels and unknown_as_absent apply to multi-label data only; remove them")
        if problem := data_refusal(self):
            raise ValueError(problem)
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
    scheme: MultiLabelSchemeSpec | None = None  # multi-label only: e.g. PLT-MLC's three branches instead of one network
    train: TrainConfig = TrainConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    posthoc: list[PosthocStep] = Field(default_factory=list, max_length=10)  # applied in order after training

    @model_validator(mode="before")
    @classmethod
    def _multilabel_sections(cls, raw: Any) -> Any:
        """On multi-label data `loss` and `sampler` name multi-label entries; a loss or
        sampler of the other kind is refused here, in one line."""
        if not isinstance(raw, dict):
            return raw
        data = raw.get("data")
        source = data.get("source", "digits") if isinstance(data, dict) else getattr(data, "source", "digits")
        multilabel = is_multilabel_data(data)
        raw = dict(raw)
        for key, spec, own, other, default in (("loss", MultiLabelLossSpec, "multilabel_loss", "loss", "bce"),
                                               ("sampler", MultiLabelSamplerSpec, "multilabel_sampler", "sampler",
                                                "instance")):
            value = raw.get(key, {"name": default} if multilabel else None)
            if isinstance(value, BaseModel):
                value = {**value.model_dump(exclude_none=True), "name": value.name}
            if not isinstance(value, dict) or not isinstance(value.get("name"), str):
                continue
            name = value["name"]
            wanted, wrong = (own, other) if multilabel else (other, own)
            if name not in registry_for(wanted) and name in registry_for(wrong):
                kind = "a single-label" if multilabel else "a multi-label"
                data_words = "multi-label data" if multilabel else "data with one class per case"
                raise ValueError(f"{key}.name: {name!r} is {kind} {key}; {data_words} ({source!r}) takes one of: "
                                 f"{', '.join(registry_for(wanted).names())}")
            if multilabel:
                try:
                    raw[key] = spec.model_validate(value)
                except ValidationError as exc:
                    raise ValueError(f"{key}: {format_validation_error(exc)}") from None
        return raw

    @model_validator(mode="after")
    def _check_combination(self) -> RunConfig:
        if self.data.multilabel:
            self._check_multilabel()
        elif refused := baseline_refusals(self.model.name, self.loss.name, self.sampler.name, multilabel=False) + (
                scheme_refusals(self.scheme, self.model.name, self.loss.name, self.sampler.name, multilabel=False)):
            raise ValueError(f"{self.data.source!r} has one class per case and cannot take {refused[0]}")
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

    def _check_multilabel(self) -> None:
        """What multi-label training does not take (yet): one line naming the settings."""
        refused = [k for k in ("resampler", "stage2", "label_issues", "pretrain", "semi", "robust", "sharpness")
                   if getattr(self, k) is not None]
        refused += ["loss.drw_epoch"] * (self.loss.drw_epoch is not None) + ["posthoc"] * bool(self.posthoc)
        refused += ["evaluation.attack"] * (self.evaluation.attack is not None)
        refused += baseline_refusals(self.model.name, self.loss.name, self.sampler.name, multilabel=True) + (
            scheme_refusals(self.scheme, self.model.name, self.loss.name, self.sampler.name, multilabel=True))
        if refused:
            raise ValueError(f"multi-label runs ({self.data.source!r}) do not take {', '.join(refused)} yet; "
                             "remove them (over several seeds: evaluation.seeds)")

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
        for extra in (self.label_issues, self.pretrain, self.semi, self.robust, self.sharpness, self.scheme):
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
                data, parts = self.data, []
                if index is not None:
                    data = data.model_copy(update={"seed": self.data.seed + r,
                                                   "fold": FoldSpec(k=ev.folds, index=index)})
                    parts.append(f"fold {index + 1}/{ev.folds}")
                if len(seeds) > 1:
                    parts.append(f"seed {seed}")
                    data = with_training_seed(data, seed)  # a text encoder that tunes is seeded like training
                runs.append(self.model_copy(update={
                    "name": " · ".join([self.name, *parts]) if self.name else " · ".join(parts),
                    "data": data, "train": self.train.model_copy(update={"seed": seed}),
                    "evaluation": EvaluationConfig(attack=ev.attack)}))  # each run is still scored under attack
        return runs


def load_config(source: str | Path | dict) -> RunConfig:
    """From a YAML/JSON file path, or a dict; raises ConfigError with one readable line."""
    raw = source if isinstance(source, dict) else read_config_file(source)
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None

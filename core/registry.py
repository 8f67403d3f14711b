"""One registry shape for every plug-in kind, and the one table of those kinds.

An entry is a factory plus a frozen :class:`PluginInfo`: a name, a one-line description,
the paper it comes from, a pydantic model of its parameters and declared capabilities.
Pages and the CLI build their forms and listings from the info alone, so adding a plug-in
is one class plus one decorator line.

`KINDS` lists every kind (dataset, model, loss, ...) with its words, its config setting and
the package that defines its registry; config, glossary, forms, the sweep view and the CLI
ask `registry_for(kind)` and `plugin_label(kind, name)` here rather than each keeping a list.
The table names those packages as strings and imports one on first request. A plain import
cannot work: this module sits below every package that registers plug-ins, and they all
import it for `Registry` and `Params`, so importing them here would close a circle.
Registries adding themselves to the table when their package is imported would not do
either: a kind would then be empty until something happened to import its package, and
whether `plugin_label("loss", ...)` found words would depend on import order. So the one
place that crosses the layers at run time is `registry_for`, and it is here, beside the list.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["Params", "NoParams", "PluginInfo", "Registry", "UnknownPluginError", "describe_params", "Seed",
           "PluginKind", "KINDS", "plugin_kind", "kind_of_setting", "kind_of_section", "registry_for", "all_registries",
           "plugin_label", "listing"]

T = TypeVar("T")
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]  # what numpy and torch generators accept


class Params(BaseModel):
    """Base for parameter schemas: unknown keys and wrong types are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(Params):
    """For plug-ins without parameters."""


class UnknownPluginError(KeyError, ValueError):
    """Raised for a name that is not registered; the message lists the known names."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


@dataclass(frozen=True)
class PluginInfo:
    name: str
    description: str
    paper: str
    params: type[Params]
    capabilities: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    display: str = ""  # what people read in pickers and tables; the name stays for the CLI and JSON

    @property
    def label(self) -> str:
        """The display name, or the registered name where none was given."""
        return self.display or self.name

    def validate_params(self, values: Mapping[str, Any] | None = None) -> Params:
        """Validate raw values against the schema, naming the plug-in in any error."""
        try:
            return self.params(**dict(values or {}))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors()
            )
            known = ", ".join(self.params.model_fields) or "none"
            raise ValueError(f"{self.name}: {problems} (parameters: {known})") from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "display": self.label,
            "description": self.description,
            "paper": self.paper,
            "params": describe_params(self.params),
            **{k: v for k, v in self.capabilities.items()},
        }


def describe_params(schema: type[Params]) -> list[dict[str, Any]]:
    """Parameter list (name, title, type, default, bounds, choices, help) for forms and `--json`;
    `title` is what people read, `name` what the config and the CLI use."""
    out = []
    js = schema.model_json_schema().get("properties", {})
    for name, f in schema.model_fields.items():
        prop = js.get(name, {})
        item = {
            "name": name,
            "title": f.title or name.replace("_", " "),
            "type": prop.get("type") or _any_of_type(prop),
            "default": f.get_default(call_default_factory=True),
            "help": f.description or "",
        }
        for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "enum", "choices"):
            value = prop.get(key) or _any_of(prop, key)
            if value is not None:
                item[key] = value
        out.append(item)
    return out


def _any_of(prop: dict, key: str) -> Any:
    for option in prop.get("anyOf", []):
        if key in option:
            return option[key]
    return None


def _any_of_type(prop: dict) -> str:
    types = [o.get("type") for o in prop.get("anyOf", []) if o.get("type") not in (None, "null")]
    return types[0] if types else "string"


class Registry(Generic[T]):
    """A named collection of factories of one plug-in kind."""

    def __init__(self, kind: str):
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}
        self._infos: dict[str, PluginInfo] = {}

    def register(
        self,
        name: str,
        *,
        description: str,
        paper: str = "",
        params: type[Params] = NoParams,
        display: str = "",
        **capabilities: Any,
    ) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._factories[name] = factory
            self._infos[name] = PluginInfo(
                name, description, paper, params, MappingProxyType(dict(capabilities)), display
            )
            return factory

        return decorator

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def names(self) -> list[str]:
        return sorted(self._factories)

    def infos(self) -> list[PluginInfo]:
        return [self._infos[n] for n in self.names()]

    def info(self, name: str) -> PluginInfo:
        if name not in self._infos:
            raise UnknownPluginError(
                f"unknown {self.kind} {name!r}; known: {', '.join(self.names()) or 'none'}"
            )
        return self._infos[name]

    def validate(self, name: str, values: Mapping[str, Any] | None = None) -> Params:
        return self.info(name).validate_params(values)

    def create(self, name: str, params: Mapping[str, Any] | None = None, **context: Any) -> T:
        """Build an entry from raw `params` (validated) plus keyword `context` the caller
        supplies (class counts, input shape, ...)."""
        validated = self.validate(name, params)
        return self._factories[name](**validated.model_dump(), **context)


# --- the table of plug-in kinds -----------------------------------------------------------

@dataclass(frozen=True)
class PluginKind:
    """One kind of plug-in: how configs and the CLI name it, what people read, where a config
    names an entry and holds its parameters (None: chosen elsewhere, e.g. on a page), and
    which package defines its registry."""

    name: str  # "loss": the glossary's, the forms' and `registry_for`'s key
    listing: str  # "losses": its key in `tailscope methods --json`
    words: str  # "Loss": what people read
    setting: str | None  # "loss.name": the dotted config key whose value is an entry's name
    section: str | None  # "loss": the dotted config key holding the entry's parameters
    home: str  # "core.methods": the package whose import registers the entries
    attribute: str  # "LOSSES": the Registry there


def _kind(name: str, listing: str, words: str, section: str | None, home: str, attribute: str,
          setting: str | None = None) -> PluginKind:
    return PluginKind(name, listing, words, setting or (f"{section}.name" if section else None), section, home,
                      attribute)


KINDS: tuple[PluginKind, ...] = (
    _kind("dataset", "datasets", "Dataset", "data.params", "core.data", "DATASETS", setting="data.source"),
    _kind("model", "models", "Model", "model", "core.models", "MODELS"),
    _kind("loss", "losses", "Loss", "loss", "core.methods", "LOSSES"),
    _kind("loss_schedule", "loss_schedules", "Loss schedule", None, "core.methods", "LOSS_SCHEDULES"),  # in `loss`
    _kind("sampler", "samplers", "Sampler", "sampler", "core.methods", "SAMPLERS"),
    _kind("resampler", "resamplers", "Resampler", "resampler", "core.methods", "RESAMPLERS"),
    _kind("stage2", "stage2", "Two-stage fix", "stage2", "core.train", "STAGE2"),
    _kind("label_noise", "label_noise", "Label noise", "data.label_noise", "core.data", "LABEL_NOISE"),
    _kind("text_encoder", "text_encoders", "Text encoder", "data.text_encoder", "core.data", "TEXT_ENCODERS"),
    _kind("label_issues", "label_issues", "Label-issue cleaning", "label_issues", "core.methods", "CLEANERS"),
    _kind("pretrain", "pretrain", "Pre-training", "pretrain", "core.train", "PRETRAIN"),
    _kind("semi", "semi", "Semi-supervised method", "semi", "core.train", "SEMI"),
    _kind("robust", "robust", "Robust training", "robust", "core.train", "ROBUST"),
    _kind("sharpness", "sharpness", "Sharpness-aware training", "sharpness", "core.train", "SHARPNESS"),
    _kind("posthoc", "posthoc", "Post-hoc adjustment", None, "core.methods", "POSTHOC"),
    _kind("attribution", "attributions", "Attribution method", None, "core.analysis", "ATTRIBUTIONS"),
    _kind("attack", "attacks", "Adversarial attack", "evaluation.attack", "core.methods", "ATTACKS"),
    # multi-label (engine only so far: no config section names them yet)
    _kind("multilabel_loss", "multilabel_losses", "Multi-label loss", None, "core.methods", "MULTILABEL_LOSSES"),
    _kind("multilabel_sampler", "multilabel_samplers", "Multi-label sampler", None, "core.methods",
          "MULTILABEL_SAMPLERS"),
    _kind("multilabel_dataset", "multilabel_datasets", "Multi-label dataset", None, "core.data",
          "MULTILABEL_DATASETS"),
    _kind("multilabel_scheme", "multilabel_schemes", "Multi-label training scheme", "scheme", "core.train",
          "MULTILABEL_SCHEMES"),
)
_BY_NAME = {k.name: k for k in KINDS}
_BY_SETTING = {k.setting: k for k in KINDS if k.setting}
_BY_SECTION = {k.section: k for k in KINDS if k.section}


def plugin_kind(kind: str) -> PluginKind:
    """The table's row for a kind; an unknown kind fails listing the known ones."""
    if kind not in _BY_NAME:
        raise UnknownPluginError(f"unknown plug-in kind {kind!r}; known: {', '.join(_BY_NAME)}")
    return _BY_NAME[kind]


def kind_of_setting(key: str) -> PluginKind | None:
    """The kind whose entry a dotted config key names ('stage2.name' -> stage2), or None."""
    return _BY_SETTING.get(key)


def kind_of_section(section: str) -> PluginKind | None:
    """The kind whose parameters a dotted config key holds ('loss' -> loss,
    'data.params' -> dataset), or None."""
    return _BY_SECTION.get(section)


def registry_for(kind: str) -> Registry:
    """The registry of a kind ('loss', 'sampler', ...), importing its package on first use."""
    row = plugin_kind(kind)
    registry = getattr(importlib.import_module(row.home), row.attribute)
    if not isinstance(registry, Registry):
        raise TypeError(f"{row.home}.{row.attribute} is not a Registry")
    return registry


def all_registries() -> dict[str, Registry]:
    """Every kind's registry, in the table's order."""
    return {k.name: registry_for(k.name) for k in KINDS}


def plugin_label(kind: str, name: str) -> str:
    """What people read for a registered entry; the name itself for an unknown kind or name
    (an upload's source, an entry since removed)."""
    if kind not in _BY_NAME:
        return name
    registry = registry_for(kind)
    return registry.info(name).label if name in registry else name


def listing() -> dict[str, list[dict[str, Any]]]:
    """Every entry of every kind as plain dicts (name, words, description, paper, parameters),
    keyed as `tailscope methods --json` has always keyed them."""
    return {k.listing: [info.to_dict() for info in registry_for(k.name).infos()] for k in KINDS}

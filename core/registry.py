"""One registry shape for every plug-in kind (datasets, models, losses, samplers, ...).

An entry is a factory plus a frozen :class:`PluginInfo`: a name, a one-line description,
the paper it comes from, a pydantic model of its parameters and declared capabilities.
Pages and the CLI build their forms and listings from the info alone, so adding a plug-in
is one class plus one decorator line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = ["Params", "NoParams", "PluginInfo", "Registry", "UnknownPluginError", "describe_params"]

T = TypeVar("T")


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

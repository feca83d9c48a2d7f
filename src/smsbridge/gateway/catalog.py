"""The carrier catalogue: every carrier that can be configured, built-in or plug-in.

For each: where it comes from (smsbridge itself, or the package whose entry point adds it),
its capabilities and the schema of its ``[connections.settings]``, read from its pydantic
``Config``. A carrier that cannot be loaded is listed with the reason, never dropped, so a
broken plug-in is visible where its user looks for it.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import SecretBytes, SecretStr

from ..core.errors import InvalidInput, SmsBridgeError
from ..providers.registry import (
    BUILTIN,
    UnknownProvider,
    get_provider_class,
    plugin_entry_points,
    provider_keys,
)

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo

    from ..providers.base import Provider, ProviderConfig

BUILT_IN: Final = "built-in"
PLUG_IN: Final = "plug-in"
# Keys every carrier has (from ProviderConfig); listed after the carrier's own.
_COMMON_KEYS = ("base_url", "timeout_seconds")

_TYPE_NAMES: dict[Any, str] = {str: "string", SecretStr: "string", SecretBytes: "bytes",
                               int: "integer", float: "number", bool: "boolean"}


@dataclass(frozen=True, slots=True)
class Setting:
    """One key of a carrier's ``[connections.settings]``."""

    key: str
    type: str
    required: bool
    default: Any
    secret: bool
    description: str
    choices: tuple[Any, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form; ``default`` is null for a required key."""
        return {"key": self.key, "type": self.type, "required": self.required,
                "default": self.default, "secret": self.secret,
                "description": self.description, "choices": list(self.choices) or None}


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a carrier comes from: smsbridge itself, or the distribution of a plug-in."""

    kind: Literal["built-in", "plug-in"]
    target: str
    distribution: str | None = None
    version: str | None = None


@dataclass(frozen=True, slots=True)
class CarrierEntry:
    """A carrier of the catalogue; ``error`` says why one that cannot be used is listed bare."""

    key: str
    origin: Origin
    name: str | None = None
    capabilities: dict[str, Any] | None = None
    settings: tuple[Setting, ...] = ()
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form used by ``smsbridge carriers --available --json`` and ``describe``."""
        return {"key": self.key, "name": self.name, "origin": self.origin.kind,
                "distribution": self.origin.distribution, "version": self.origin.version,
                "entry_point": self.origin.target, "capabilities": self.capabilities,
                "settings": [s.to_dict() for s in self.settings], "error": self.error}


def available_carriers() -> list[CarrierEntry]:
    """Every carrier key of the registry, sorted, each loaded or listed with its error."""
    plugins = _plugin_origins()
    return [_entry(key, plugins) for key in provider_keys()]


def describe_carrier(key: str) -> CarrierEntry:
    """One carrier's entry; InvalidInput for an unknown key, SmsBridgeError for a broken one."""
    known = provider_keys()
    if key not in known:
        raise InvalidInput("carrier", f"unknown carrier {key!r}; known: {', '.join(known)}")
    entry = _entry(key, _plugin_origins())
    if entry.error:
        raise SmsBridgeError(f"carrier {key!r} cannot be loaded: {entry.error}")
    return entry


def settings_schema(provider: type[Provider[Any]]) -> tuple[Setting, ...]:
    """The keys of ``provider.Config``, its own first, then base_url and timeout_seconds."""
    config: type[ProviderConfig] = provider.Config
    settings = []
    for name, field in config.model_fields.items():
        kind, choices = _type_of(field.annotation)
        default = None if field.is_required() else _json_default(field)
        description = field.description or ""
        if name == "base_url":
            default = default or provider.default_base_url or None
        settings.append(Setting(field.alias or name, kind, field.is_required(), default,
                                _is_secret(field.annotation), description, choices))
    # pydantic lists inherited fields first; a user reads the carrier's own keys first.
    own = [s for s in settings if s.key not in _COMMON_KEYS]
    return (*own, *(s for s in settings if s.key in _COMMON_KEYS))


def _entry(key: str, plugins: dict[str, Origin]) -> CarrierEntry:
    origin = (Origin(BUILT_IN, BUILTIN[key]) if key in BUILTIN else plugins[key])
    try:
        provider = get_provider_class(key)
    # A plug-in's import runs someone else's code, which may raise anything; the catalogue
    # lists it with the reason rather than failing for every other carrier.
    except Exception as exc:  # noqa: BLE001
        return CarrierEntry(key, origin, error=_reason(exc))
    return CarrierEntry(key, origin, provider.name, capabilities_dict(provider),
                        settings_schema(provider))


def capabilities_dict(provider: type[Provider[Any]]) -> dict[str, Any]:
    """The provider's Capabilities as JSON values (enums by value, tuples as lists)."""
    caps = provider.capabilities
    return {f.name: _json_value(getattr(caps, f.name)) for f in dataclasses.fields(caps)}


def _plugin_origins() -> dict[str, Origin]:
    found: dict[str, Origin] = {}
    for key, ep in plugin_entry_points().items():
        dist = ep.dist
        found[key] = Origin(PLUG_IN, ep.value, dist.name if dist else None,
                            dist.version if dist else None)
    return found


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnknownProvider):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _type_of(annotation: Any) -> tuple[str, tuple[Any, ...]]:
    """A type name a user knows (string, integer, ...) and the allowed values, if a closed set."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        if len(args) == 1:
            return _type_of(args[0])
        return " or ".join(_type_of(a)[0] for a in args), ()
    if origin is Literal:
        values = tuple(typing.get_args(annotation))
        return _TYPE_NAMES.get(type(values[0]), "string"), values
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "string", tuple(_json_value(m) for m in annotation)
    if origin in (list, tuple, set, frozenset):
        return f"list of {_type_of(args[0])[0]}" if args else "list", ()
    if origin is dict:
        return "table", ()
    return _TYPE_NAMES.get(annotation, getattr(annotation, "__name__", str(annotation))), ()


def _is_secret(annotation: Any) -> bool:
    if annotation in (SecretStr, SecretBytes):
        return True
    return any(_is_secret(a) for a in typing.get_args(annotation))


def _json_default(field: FieldInfo) -> Any:
    default = field.get_default(call_default_factory=True)
    if isinstance(default, SecretStr | SecretBytes):
        return None  # a secret's default is no one's business, nor is it ever useful
    return _json_value(default)


def _json_value(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list | set | frozenset):
        return [_json_value(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)

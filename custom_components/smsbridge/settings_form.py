"""A provider's pydantic ``Config`` as a Home Assistant form, and the form's answer back.

The form is derived from the schema, so a carrier (a plug-in too) gets its setup form
without a line here. Settings are kept in the entry as plain JSON values (secrets as
plain strings), only those the user gave: defaults stay the provider's.
"""

from __future__ import annotations

import enum
import types
from collections.abc import Iterable, Mapping
from typing import Any, Literal, Union, get_args, get_origin

import voluptuous as vol
from homeassistant.data_entry_flow import section
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
from pydantic import SecretStr, ValidationError
from pydantic.fields import FieldInfo

from smsbridge.providers import ProviderConfig

from .const import ADVANCED_FIELDS, ADVANCED_SECTION


class InvalidSettings(Exception):
    """The form's answer does not fit the provider's schema; ``errors`` is field -> reason."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in errors.items()))
        self.errors = errors


def secret_fields(config_cls: type[ProviderConfig]) -> list[str]:
    """The fields of ``config_cls`` that hold secrets (typed ``SecretStr``), in schema order."""
    return [name for name, info in config_cls.model_fields.items()
            if _unwrap_optional(info.annotation) is SecretStr]


def form_fields(config_cls: type[ProviderConfig], *, advanced: bool) -> list[str]:
    """The fields the credentials form shows, in schema order."""
    return [name for name in config_cls.model_fields if advanced or name not in ADVANCED_FIELDS]


def field_help(config_cls: type[ProviderConfig], names: Iterable[str]) -> dict[str, str]:
    """Each field's description from the schema, for the form's help placeholders."""
    fields = config_cls.model_fields
    return {name: fields[name].description or "" for name in names}


def settings_schema(
    config_cls: type[ProviderConfig], names: Iterable[str], *, keep_secrets: bool = False,
    advanced_section: bool = False,
) -> vol.Schema:
    """A form of ``names``; with ``keep_secrets`` every secret is optional (blank: unchanged).

    With ``advanced_section`` the ADVANCED_FIELDS among ``names`` sit in a collapsed section
    keyed ADVANCED_SECTION: ``flatten_answer`` takes them out of the answer again.
    """
    wanted = list(names)
    if not advanced_section:
        return vol.Schema(_markers(config_cls, wanted, keep_secrets))
    apart = [name for name in wanted if name in ADVANCED_FIELDS]
    schema = _markers(config_cls, [name for name in wanted if name not in apart], keep_secrets)
    if apart:
        schema[vol.Required(ADVANCED_SECTION)] = section(
            vol.Schema(_markers(config_cls, apart, keep_secrets)), {"collapsed": True})
    return vol.Schema(schema)


def flatten_answer(answer: Mapping[str, Any]) -> dict[str, Any]:
    """A settings form's answer with the advanced section's fields among the others."""
    flat = {name: value for name, value in answer.items() if name != ADVANCED_SECTION}
    flat.update(answer.get(ADVANCED_SECTION) or {})
    return flat


def sectioned_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Settings keyed as a form with the advanced section holds them, for suggested values."""
    nested = {name: value for name, value in values.items() if name not in ADVANCED_FIELDS}
    nested[ADVANCED_SECTION] = {name: value for name, value in values.items()
                                if name in ADVANCED_FIELDS}
    return nested


def parse_settings(
    config_cls: type[ProviderConfig], answer: Mapping[str, Any], *,
    kept: Mapping[str, Any] | None = None, shown: Iterable[str] | None = None,
) -> dict[str, Any]:
    """The settings to store for a form ``answer``; InvalidSettings names each wrong field.

    ``kept`` holds the entry's current settings: fields the form did not show, and
    secrets left blank, keep their value; a shown non-secret field left blank is unset.
    """
    shown_names = set(config_cls.model_fields if shown is None else shown)
    secrets = set(secret_fields(config_cls))
    given = {name: _clean(value) for name, value in answer.items()
             if name in config_cls.model_fields}
    given = {name: value for name, value in given.items() if value not in ("", None)}
    merged = {name: value for name, value in (kept or {}).items()
              if name in config_cls.model_fields
              and (name not in shown_names or name in secrets)}
    merged.update({name: _from_form(config_cls.model_fields[name], value)
                   for name, value in given.items()})
    try:
        config = config_cls(**merged)
    except ValidationError as exc:
        raise InvalidSettings(_field_errors(exc)) from None
    return {name: _plain(getattr(config, name)) for name in config.model_fields_set}


def _markers(config_cls: type[ProviderConfig], names: Iterable[str], keep_secrets: bool
             ) -> dict[vol.Marker, Any]:
    """Each field of ``names`` as the form's marker (required or not, default) and selector."""
    markers: dict[vol.Marker, Any] = {}
    for name in names:
        info = config_cls.model_fields[name]
        secret = _unwrap_optional(info.annotation) is SecretStr
        if info.is_required() and not (secret and keep_secrets):
            marker: vol.Marker = vol.Required(name)
        else:
            default = info.get_default(call_default_factory=True)
            if default is None or secret:
                marker = vol.Optional(name)
            else:
                marker = vol.Optional(name, default=_plain(default))
        markers[marker] = _selector(info)
    return markers


def _field_errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors(include_url=False, include_input=False):
        location = error.get("loc") or ("",)
        errors.setdefault(str(location[0]), str(error.get("msg", "is not valid")))
    return errors


def _selector(info: FieldInfo) -> Any:
    kind = _unwrap_optional(info.annotation)
    if kind is SecretStr:
        return TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
    if kind is bool:
        return BooleanSelector()
    if kind in (int, float):
        config = NumberSelectorConfig(mode=NumberSelectorMode.BOX,
                                      step=1 if kind is int else "any")
        for bound in info.metadata:
            # An exclusive bound is shown as inclusive; the schema still refuses the bound itself.
            low = getattr(bound, "ge", getattr(bound, "gt", None))
            high = getattr(bound, "le", getattr(bound, "lt", None))
            if low is not None:
                config["min"] = float(low)
            if high is not None:
                config["max"] = float(high)
        return NumberSelector(config)
    choices = _choices(kind)
    if choices is not None:
        return SelectSelector(SelectSelectorConfig(options=choices,
                                                   mode=SelectSelectorMode.DROPDOWN))
    return TextSelector(TextSelectorConfig(type=TextSelectorType.TEXT))


def _choices(kind: Any) -> list[str] | None:
    """The values of a Literal or Enum type as the select offers them, else None."""
    if get_origin(kind) is Literal:
        return [str(_plain(value)) for value in get_args(kind)]
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return [str(member.value) for member in kind]
    return None


def _from_form(info: FieldInfo, value: Any) -> Any:
    """A select answer back to the Literal value it stands for (a Literal of ints, say)."""
    kind = _unwrap_optional(info.annotation)
    if get_origin(kind) is Literal:
        for choice in get_args(kind):
            if str(_plain(choice)) == str(value):
                return choice
    return value


def _unwrap_optional(annotation: Any) -> Any:
    """``X`` of ``X | None`` (or ``Optional[X]``); any other annotation as it is."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _clean(value: Any) -> Any:
    # Pasted keys and tokens often carry a stray space or newline.
    return value.strip() if isinstance(value, str) else value


def _plain(value: Any) -> Any:
    """A setting as JSON keeps it: secrets as plain strings, enums as their values."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, enum.Enum):
        return value.value
    return value

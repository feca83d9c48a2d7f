"""Diagnostics of an entry: its data and options with every secret redacted, and runtime facts."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from homeassistant.components.diagnostics import REDACTED
from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import HomeAssistant

from smsbridge.providers import UnknownProvider

from .account_check import provider_class
from .const import CONF_API_KEY, CONF_CARRIER, CONF_SETTINGS, CONF_WEBHOOK_ID, CONF_WEBHOOK_SECRET
from .settings_form import secret_fields

# Whoever holds the webhook id can post forged texts to Home Assistant: it is a secret too.
SECRET_DATA_KEYS = frozenset({CONF_API_KEY, CONF_WEBHOOK_SECRET, CONF_WEBHOOK_ID})


async def async_get_config_entry_diagnostics(hass: HomeAssistant, entry: ConfigEntry
                                             ) -> dict[str, Any]:
    """The entry as saved, secrets redacted, and what the loaded entry knows."""
    data: dict[str, Any] = {key: REDACTED if key in SECRET_DATA_KEYS else value
                            for key, value in entry.data.items()}
    if isinstance(data.get(CONF_SETTINGS), Mapping):
        data[CONF_SETTINGS] = await _redacted_settings(
            hass, entry.data.get(CONF_CARRIER), entry.data[CONF_SETTINGS])
    return {
        "entry": {"title": entry.title, "version": entry.version, "data": data,
                  "options": dict(entry.options)},
        "runtime": _runtime_facts(entry),
    }


async def _redacted_settings(hass: HomeAssistant, carrier: Any, settings: Mapping[str, Any]
                             ) -> dict[str, Any]:
    """The settings with the provider's secret fields redacted; all of them if it is unknown."""
    try:
        cls = await provider_class(hass, str(carrier))
    except (UnknownProvider, ImportError):
        # Without the schema nothing tells a secret apart: show the names only.
        return dict.fromkeys(settings, REDACTED)
    secrets = set(secret_fields(cls.Config))
    return {name: REDACTED if name in secrets else value for name, value in settings.items()}


def _runtime_facts(entry: ConfigEntry) -> dict[str, Any]:
    """What a loaded entry holds, without message texts or secrets."""
    if entry.state is not ConfigEntryState.LOADED:
        return {"state": entry.state.value}
    runtime = getattr(entry, "runtime_data", None)
    facts: dict[str, Any] = {"state": entry.state.value,
                             "numbers": list(getattr(runtime, "numbers", []))}
    provider = getattr(runtime, "provider", None)
    if provider is not None:
        facts["carrier"] = {"key": provider.key, "name": provider.name,
                            "capabilities": dataclasses.asdict(provider.capabilities)}
    seen = getattr(runtime, "seen", None)
    if seen is not None:
        facts["message_ids_remembered"] = len(getattr(seen, "ids", ()))
    last = getattr(runtime, "last_message", None) or {}
    facts["last_message"] = {
        number: {"message_id": message.message_id, "sender": message.sender,
                 "received_at": message.received_at.isoformat(), "media": len(message.media)}
        for number, message in last.items()
    }
    return facts

"""smsbridge for Home Assistant: two-way SMS/MMS on any carrier smsbridge's providers speak."""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeAlias

# By name: in this package ``webhook`` is the .webhook module, not HA's.
from homeassistant.components.webhook import async_register, async_unregister
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.typing import ConfigType
from pydantic import ValidationError

from smsbridge.providers import (
    CredentialsRejected,
    Provider,
    ProviderError,
    UnknownProvider,
)

from .account_check import build_provider, provider_class
from .const import (
    CONF_CARRIER,
    CONF_MODE,
    CONF_NUMBERS,
    CONF_SETTINGS,
    CONF_WEBHOOK_ID,
    DOMAIN,
    MODE_CARRIER,
    MODE_SERVER,
    PLATFORMS,
)
from .entity import device_identifier
from .repairs import async_clear_credentials_issue, async_credentials_rejected
from .server_mode import gateway_provider
from .services import async_setup_services
from .webhook import ReceivedText, SeenIds, async_handle_webhook

_LOGGER = logging.getLogger(__name__)

# Set up from the UI only; the actions exist once for every entry.
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the integration's actions, once for every entry."""
    async_setup_services(hass)
    return True

# How many sent message ids are kept to route their receipts to the number that sent them.
SENT_IDS_KEPT = 1000


@dataclass(slots=True)
class SmsbridgeRuntime:
    """What a loaded entry holds: its provider, its numbers and what the webhook remembers."""

    provider: Provider[Any]
    numbers: list[str]
    seen: SeenIds
    last_message: dict[str, ReceivedText] = field(default_factory=dict)
    sent_from: OrderedDict[str, str] = field(default_factory=OrderedDict)

    def remember_sent(self, carrier_message_ids: list[str], from_number: str) -> None:
        """Note who sent these messages, so their receipts reach that number's event entity."""
        for message_id in carrier_message_ids:
            self.sent_from[message_id] = from_number
        while len(self.sent_from) > SENT_IDS_KEPT:
            self.sent_from.popitem(last=False)


SmsbridgeConfigEntry: TypeAlias = ConfigEntry[SmsbridgeRuntime]


def entry_numbers(entry: ConfigEntry) -> list[str]:
    """The entry's numbers: the options' when set, else those chosen at setup."""
    return list(entry.options.get(CONF_NUMBERS) or entry.data.get(CONF_NUMBERS) or [])


async def async_build_provider(hass: HomeAssistant, entry: ConfigEntry) -> Provider[Any]:
    """The carrier provider an entry's data describes; ConfigEntryError if it cannot be built."""
    if entry.data.get(CONF_MODE) == MODE_SERVER:
        return gateway_provider(entry.data)
    if entry.data.get(CONF_MODE, MODE_CARRIER) != MODE_CARRIER:
        raise ConfigEntryError(f"{entry.title}: mode {entry.data.get(CONF_MODE)!r} is not"
                               " supported by this version")
    key = entry.data[CONF_CARRIER]
    try:
        return build_provider(await provider_class(hass, key), entry.data.get(CONF_SETTINGS, {}))
    except UnknownProvider as exc:
        raise ConfigEntryError(str(exc)) from None
    except ImportError as exc:
        raise ConfigEntryError(f"{entry.title}: the {key} carrier's package does not import"
                               f" ({exc})") from None
    except ValidationError as exc:
        # A plug-in's schema changed under a saved entry: reconfigure fixes it.
        fields = ", ".join(".".join(map(str, err["loc"])) for err in exc.errors())
        raise ConfigEntryError(f"{entry.title}: the saved {key} settings no longer fit"
                               f" ({fields}); reconfigure the entry") from None


async def async_setup_entry(hass: HomeAssistant, entry: SmsbridgeConfigEntry) -> bool:
    """Build the provider, check its credentials, open the webhook and add the entities."""
    provider = await async_build_provider(hass, entry)
    try:
        await provider.check_credentials(async_get_clientsession(hass))
    except CredentialsRejected as exc:
        async_credentials_rejected(hass, entry, exc)
        raise ConfigEntryAuthFailed(exc.reason) from exc
    except ProviderError as exc:
        # Set up all the same: texts still arrive by webhook while the carrier's API is down,
        # and a text not taken now may never be sent again.
        _LOGGER.warning("%s: could not check the credentials: %s", entry.title, exc.reason)
    else:
        async_clear_credentials_issue(hass, entry)
    seen = SeenIds.for_entry(hass, entry.entry_id)
    await seen.async_load()
    entry.runtime_data = SmsbridgeRuntime(provider, entry_numbers(entry), seen)
    _remove_dropped_numbers(hass, entry)

    webhook_id = entry.data[CONF_WEBHOOK_ID]
    async_register(
        hass, DOMAIN, entry.title, webhook_id,
        partial(async_handle_webhook, entry),
        local_only=False,  # carriers call from the internet
        allowed_methods=("GET", "POST"),  # VoIP.ms's URL callback is a GET
    )
    entry.async_on_unload(partial(async_unregister, hass, webhook_id))
    entry.async_on_unload(entry.add_update_listener(_async_options_updated))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


def _remove_dropped_numbers(hass: HomeAssistant, entry: SmsbridgeConfigEntry) -> None:
    """Take the devices of numbers the entry no longer has off the entry."""
    kept = {device_identifier(entry.entry_id, number) for number in entry.runtime_data.numbers}
    registry = dr.async_get(hass)
    for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
        if not device.identifiers & kept:
            registry.async_update_device(device.id, remove_config_entry_id=entry.entry_id)


async def _async_options_updated(hass: HomeAssistant, entry: SmsbridgeConfigEntry) -> None:
    """Numbers may have changed: set the entry up again."""
    await hass.config_entries.async_reload(entry.entry_id)


async def async_unload_entry(hass: HomeAssistant, entry: SmsbridgeConfigEntry) -> bool:
    """Remove the entities; the webhook goes with the entry's unload callbacks."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: SmsbridgeConfigEntry) -> None:
    """Forget the message ids the entry remembered."""
    await SeenIds.for_entry(hass, entry.entry_id).store.async_remove()

"""The integration's actions: send_message, send_sms, send_mms, call and get_webhook_url.

send_sms and send_mms keep the community VoIP.ms integration's fields (recipient, message,
image_path), so its automations move here by changing the domain. Which number sends when
``from`` is left out: see send.py.
"""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.helpers import config_validation as cv
from homeassistant.util.json import JsonObjectType, JsonValueType

from smsbridge.providers import Provider

from .const import DOMAIN, EVENT_WEBHOOK_URL
from .send import (
    async_load_media,
    async_place_calls,
    async_send_messages,
    invalid,
    loaded_entries,
    read_targets,
)
from .server_mode import GatewayProvider
from .webhook import webhook_url

SERVICE_SEND_MESSAGE = "send_message"
SERVICE_SEND_SMS = "send_sms"
SERVICE_SEND_MMS = "send_mms"
SERVICE_CALL = "call"
SERVICE_GET_WEBHOOK_URL = "get_webhook_url"

ATTR_TARGET = "target"
ATTR_MESSAGE = "message"
ATTR_FROM = "from"
ATTR_MEDIA = "media"
ATTR_RECIPIENT = "recipient"
ATTR_IMAGE_PATH = "image_path"

# VoIP.ms's URL-callback placeholder for the text (shared/providers/voipms.md §6). Home
# Assistant's HTTP security filter answers 400 to a query holding a line break, a tab or
# text such as "concat(", so a callback carrying the text in its URL loses such texts:
# a setup line offering one is never shown; the POST webhook and the id-only callback are.
TEXT_IN_URL_PLACEHOLDERS = ("{MESSAGE}",)

_NUMBERS = vol.All(cv.ensure_list, [cv.string])

SEND_MESSAGE_SCHEMA = vol.Schema({
    vol.Required(ATTR_TARGET): _NUMBERS,
    vol.Required(ATTR_MESSAGE): cv.string,
    vol.Optional(ATTR_FROM): cv.string,
    vol.Optional(ATTR_MEDIA): vol.All(cv.ensure_list, [cv.string]),
})
SEND_SMS_SCHEMA = vol.Schema({
    vol.Required(ATTR_RECIPIENT): cv.string,
    vol.Required(ATTR_MESSAGE): cv.string,
    vol.Optional(ATTR_FROM): cv.string,
})
SEND_MMS_SCHEMA = SEND_SMS_SCHEMA.extend({vol.Required(ATTR_IMAGE_PATH): cv.string})
CALL_SCHEMA = vol.Schema({
    vol.Required(ATTR_TARGET): _NUMBERS,
    vol.Required(ATTR_MESSAGE): cv.string,
    vol.Optional(ATTR_FROM): cv.string,
})


async def _async_send_message(call: ServiceCall) -> ServiceResponse:
    """Text one or more numbers, with media if given; the message ids."""
    hass = call.hass
    targets = read_targets(hass, call.data[ATTR_TARGET], ATTR_TARGET)
    media = await async_load_media(hass, call.data.get(ATTR_MEDIA, []), ATTR_MEDIA)
    return await async_send_messages(hass, targets, call.data[ATTR_MESSAGE],
                                     call.data.get(ATTR_FROM), media)


async def _async_send_sms(call: ServiceCall) -> ServiceResponse:
    """Text one number (the community VoIP.ms integration's send_sms)."""
    hass = call.hass
    targets = read_targets(hass, [call.data[ATTR_RECIPIENT]], ATTR_RECIPIENT)
    return await async_send_messages(hass, targets, call.data[ATTR_MESSAGE],
                                     call.data.get(ATTR_FROM))


async def _async_send_mms(call: ServiceCall) -> ServiceResponse:
    """Text one number with a local image (the community VoIP.ms integration's send_mms)."""
    hass = call.hass
    targets = read_targets(hass, [call.data[ATTR_RECIPIENT]], ATTR_RECIPIENT)
    media = await async_load_media(hass, [call.data[ATTR_IMAGE_PATH]], ATTR_IMAGE_PATH)
    return await async_send_messages(hass, targets, call.data[ATTR_MESSAGE],
                                     call.data.get(ATTR_FROM), media)


async def _async_call(call: ServiceCall) -> ServiceResponse:
    """Call one or more numbers and speak the message; the call ids."""
    hass = call.hass
    targets = read_targets(hass, call.data[ATTR_TARGET], ATTR_TARGET)
    return await async_place_calls(hass, targets, call.data[ATTR_MESSAGE],
                                   call.data.get(ATTR_FROM))


async def _async_get_webhook_url(call: ServiceCall) -> ServiceResponse:
    """Each entry's webhook URL and what to paste where; fired as events too."""
    hass = call.hass
    entries = loaded_entries(hass)
    if not entries:
        raise invalid("not_loaded")
    found: list[JsonValueType] = []
    for entry in entries:
        provider = entry.runtime_data.provider
        inbound = webhook_url(hass, entry)
        status = webhook_url(hass, entry, status=True)
        data: JsonObjectType = {
            "entry_id": entry.entry_id,
            "title": entry.title,
            "carrier": provider.name,
            "numbers": list(entry.runtime_data.numbers),
            "webhook_url": inbound,
            "status_url": status if _takes_status_url(provider) else None,
            "setup": paste_hint(provider, inbound, status),
        }
        hass.bus.async_fire(EVENT_WEBHOOK_URL, data)
        found.append(data)
    return {"entries": found}


def _takes_status_url(provider: Provider[Any]) -> bool:
    """Whether the carrier sends receipts to a URL of their own (a gateway sends all to one)."""
    return provider.capabilities.delivery_receipts and not isinstance(provider, GatewayProvider)


def paste_hint(provider: Provider[Any], inbound_url: str, status_url: str) -> str | None:
    """What to paste into the carrier's portal, without a callback that puts text in a URL."""
    hint = provider.setup_hint(inbound_url, status_url)
    if hint is None:
        return None
    kept = [line for line in hint.splitlines()
            if not any(placeholder in line for placeholder in TEXT_IN_URL_PLACEHOLDERS)]
    return "\n".join(kept) or None


SERVICES = (
    (SERVICE_SEND_MESSAGE, _async_send_message, SEND_MESSAGE_SCHEMA),
    (SERVICE_SEND_SMS, _async_send_sms, SEND_SMS_SCHEMA),
    (SERVICE_SEND_MMS, _async_send_mms, SEND_MMS_SCHEMA),
    (SERVICE_CALL, _async_call, CALL_SCHEMA),
    (SERVICE_GET_WEBHOOK_URL, _async_get_webhook_url, vol.Schema({})),
)


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the actions; once per Home Assistant (the integration's async_setup)."""
    for name, handler, schema in SERVICES:
        hass.services.async_register(DOMAIN, name, handler, schema=schema,
                                     supports_response=SupportsResponse.OPTIONAL)


@callback
def async_unload_services(hass: HomeAssistant) -> None:
    """Remove the actions (for an integration that registers them with its first entry)."""
    for name, _, _ in SERVICES:
        hass.services.async_remove(DOMAIN, name)

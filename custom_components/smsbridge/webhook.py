"""The entry's webhook: a carrier's request in, checked and parsed by the provider, events out.

Inbound messages come to the entry's webhook URL; delivery receipts to the same URL with
``?kind=status`` added (HA matches a webhook by its id alone, so the query tells them apart).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from aiohttp import web
from homeassistant.components.webhook import async_generate_path, async_generate_url
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.network import NoURLAvailableError
from homeassistant.helpers.storage import Store

from smsbridge.providers import (
    InboundMessage,
    MalformedWebhook,
    Provider,
    ProviderError,
    Reply,
    StatusUpdate,
    WebhookRejected,
    WebhookRequest,
)

from .const import (
    CONF_ALLOWED_SENDERS,
    CONF_WEBHOOK_ID,
    DOMAIN,
    EVENT_MESSAGE_RECEIVED,
    EVENT_MESSAGE_STATUS,
    SEEN_IDS_KEPT,
    STATUS_QUERY_KEY,
    STATUS_QUERY_VALUE,
)
from .entity import signal_received, signal_status
from .server_mode import is_status_event

if TYPE_CHECKING:
    from . import SmsbridgeConfigEntry

_LOGGER = logging.getLogger(__name__)

# Asked of a carrier that answered a 503: VoIP.ms re-sends callbacks on its own schedule,
# others honour Retry-After or retry with their own backoff.
RETRY_AFTER_SECONDS = "60"
SEEN_STORE_VERSION = 1


@dataclass(frozen=True, slots=True)
class ReceivedText:
    """One inbound message as the integration shows it: bus event, sensor and event entity."""

    entry_id: str
    message_id: str
    sender: str
    recipient: str
    text: str
    media: tuple[str, ...]
    received_at: datetime

    @classmethod
    def from_inbound(cls, entry_id: str, message: InboundMessage) -> ReceivedText:
        """The shown form of a parsed (and completed) inbound message."""
        return cls(entry_id, message.carrier_message_id, message.from_number,
                   message.to_number, message.text or "",
                   tuple(m.url for m in message.media if m.url), message.received_at)

    def event_data(self) -> dict[str, Any]:
        """The payload of the bus event and of the event entity's ``message_received``."""
        return {"from": self.sender, "to": self.recipient, "text": self.text,
                "media": list(self.media), "message_id": self.message_id,
                "entry_id": self.entry_id}


@dataclass(slots=True)
class SeenIds:
    """The carrier message ids an entry handled lately, kept across restarts.

    Carriers re-send a webhook they think failed (VoIP.ms every 30 minutes until it reads
    ``ok``), so an id seen before is answered as usual but fires nothing.
    """

    store: Store[dict[str, list[str]]]
    ids: dict[str, None] = field(default_factory=dict)  # insertion-ordered set
    in_flight: set[str] = field(default_factory=set)

    @classmethod
    def for_entry(cls, hass: HomeAssistant, entry_id: str) -> SeenIds:
        """The (not yet loaded) memory of one entry."""
        return cls(Store(hass, SEEN_STORE_VERSION, f"{DOMAIN}.{entry_id}.seen_ids"))

    async def async_load(self) -> None:
        """Read the ids kept by the last run."""
        data = await self.store.async_load()
        self.ids = dict.fromkeys((data or {}).get("ids", [])[-SEEN_IDS_KEPT:])

    def is_new(self, message_id: str) -> bool:
        """True unless the id was handled before or is being handled right now."""
        return not message_id or (message_id not in self.ids and message_id not in self.in_flight)

    async def async_add(self, message_ids: Iterable[str]) -> None:
        """Remember ids as handled, forgetting the oldest beyond SEEN_IDS_KEPT, and save."""
        for message_id in message_ids:
            if message_id:
                self.ids.pop(message_id, None)
                self.ids[message_id] = None
        for stale in list(self.ids)[:-SEEN_IDS_KEPT]:
            del self.ids[stale]
        await self.store.async_save({"ids": list(self.ids)})


def webhook_url(hass: HomeAssistant, entry: SmsbridgeConfigEntry, *, status: bool = False
                ) -> str:
    """The URL a carrier is given for this entry (receipts: ``status=True``).

    Home Assistant's external URL when it has one; only the path when it has no URL at all.
    """
    webhook_id = entry.data[CONF_WEBHOOK_ID]
    try:
        url = async_generate_url(hass, webhook_id)
    except NoURLAvailableError:
        url = async_generate_path(webhook_id)
    return f"{url}?{STATUS_QUERY_KEY}={STATUS_QUERY_VALUE}" if status else url


async def async_handle_webhook(entry: SmsbridgeConfigEntry, hass: HomeAssistant,
                               webhook_id: str, request: web.Request) -> web.Response:
    """Answer one carrier request to the entry's webhook (bound to its entry by partial)."""
    runtime = entry.runtime_data
    query = parse_qsl(request.query_string, keep_blank_values=True)
    headers = {name.lower(): value for name, value in request.headers.items()}
    if isinstance(request, web.BaseRequest):
        body = await request.read()  # bounded by HA's client_max_size
    else:
        # Relayed by Home Assistant Cloud: a stand-in holding the body it received.
        body = await request.content.read()
    status = ((STATUS_QUERY_KEY, STATUS_QUERY_VALUE) in query
              or is_status_event(runtime.provider, body))
    kind = "status callback" if status else "inbound webhook"
    try:
        carrier_request = _verified(
            runtime.provider,
            [WebhookRequest(request.method, url, headers, query, body)
             for url in await _called_urls(hass, webhook_id, request)])
        if status:
            updates = runtime.provider.parse_status(carrier_request)
            _fire_status(hass, entry, updates)
            return _response(runtime.provider.status_reply(updates))
        messages = runtime.provider.parse_inbound(carrier_request)
        await _receive(hass, entry, messages)
        return _response(runtime.provider.inbound_reply(messages))
    except WebhookRejected as exc:
        _LOGGER.warning("%s: rejected %s: %s", entry.title, kind, exc.reason)
        return web.Response(status=403, text="rejected")
    except MalformedWebhook as exc:
        _LOGGER.warning("%s: malformed %s: %s", entry.title, kind, exc)
        return web.Response(status=400, text="malformed")
    except ProviderError as exc:
        # Nothing was fired; a non-2xx makes the carrier send it again later.
        _LOGGER.warning("%s: could not complete %s: %s", entry.title, kind, exc.reason)
        return web.Response(status=503, text="unavailable",
                            headers={"Retry-After": RETRY_AFTER_SECONDS})
    except Exception:
        # A provider's bug (a plug-in's too): HA's webhook would answer 200 and the carrier
        # would never send the text again; a 500 makes it retry once the bug is fixed.
        _LOGGER.exception("%s: %s failed unexpectedly", entry.title, kind)
        return web.Response(status=500, text="error")


async def _called_urls(hass: HomeAssistant, webhook_id: str, request: web.Request) -> list[str]:
    """The URLs the carrier may have called, the likeliest first: carriers sign that URL.

    Behind a trusted proxy HA's forwarded-headers middleware has put the public scheme and
    host on the request; a proxy that does not forward them leaves HA's own, so the
    configured external and internal URLs with the same path and query are tried too.
    """
    if getattr(request, "mock_source", None) == "cloud":
        # Through Home Assistant Cloud the carrier called the cloudhook URL; the request
        # arrives rebuilt, with no URL of its own. Without a cloudhook URL only an unsigned
        # carrier's request can pass, so the path alone stands in for it.
        query = f"?{request.query_string}" if request.query_string else ""
        return (await _cloudhook_urls(hass, webhook_id, request.query_string)
                or [async_generate_path(webhook_id) + query])
    path_qs = request.raw_path
    urls = [f"{request.scheme}://{request.host}{path_qs}"]
    for base in (hass.config.external_url, hass.config.internal_url):
        if base:
            parts = urlsplit(base)
            urls.append(f"{parts.scheme}://{parts.netloc}{path_qs}")
    return list(dict.fromkeys(urls))


async def _cloudhook_urls(hass: HomeAssistant, webhook_id: str, query_string: str
                          ) -> list[str]:
    """The cloudhook URL (with the query) of a request relayed by Home Assistant Cloud."""
    if "cloud" not in hass.config.components:
        return []
    from homeassistant.components import cloud  # loaded already: it relayed the request

    if not cloud.async_active_subscription(hass):
        return []
    url = await cloud.async_get_or_create_cloudhook(hass, webhook_id)
    return [f"{url}?{query_string}" if query_string else url]


def _verified(provider: Provider, candidates: Sequence[WebhookRequest]) -> WebhookRequest:
    """The first candidate whose signature holds; WebhookRejected (the first reason) if none."""
    refusals: list[WebhookRejected] = []
    for candidate in candidates:
        try:
            provider.verify(candidate)
        except WebhookRejected as exc:
            refusals.append(exc)
            continue
        return candidate
    raise refusals[0]


async def _receive(hass: HomeAssistant, entry: SmsbridgeConfigEntry,
                   messages: Sequence[InboundMessage]) -> None:
    """Complete, de-duplicate, filter and announce parsed inbound messages."""
    runtime = entry.runtime_data
    fresh = [m for m in messages if runtime.seen.is_new(m.carrier_message_id)]
    skipped = len(messages) - len(fresh)
    if skipped:
        _LOGGER.debug("%s: ignored %d message(s) already received", entry.title, skipped)
    if not fresh:
        return
    ids = [m.carrier_message_id for m in fresh if m.carrier_message_id]
    runtime.seen.in_flight.update(ids)
    try:
        completed = await runtime.provider.complete_inbound(
            list(fresh), async_get_clientsession(hass))
        allowed = entry.options.get(CONF_ALLOWED_SENDERS) or {}
        for message in completed:
            received = ReceivedText.from_inbound(entry.entry_id, message)
            senders = allowed.get(received.recipient)
            if senders and received.sender not in senders:
                _LOGGER.warning("%s: dropped a text to %s from %s: not an allowed sender",
                                entry.title, received.recipient, received.sender)
                continue
            runtime.last_message[received.recipient] = received
            hass.bus.async_fire(EVENT_MESSAGE_RECEIVED, received.event_data())
            async_dispatcher_send(hass, signal_received(entry.entry_id, received.recipient),
                                  received)
        await runtime.seen.async_add(ids)
    finally:
        runtime.seen.in_flight.difference_update(ids)


def _fire_status(hass: HomeAssistant, entry: SmsbridgeConfigEntry,
                 updates: Sequence[StatusUpdate]) -> None:
    """Announce receipts on the bus and on the event entity of the number that sent it."""
    runtime = entry.runtime_data
    for update in updates:
        sender = runtime.sent_from.get(update.carrier_message_id)
        if sender is None and len(runtime.numbers) == 1:
            sender = runtime.numbers[0]
        data = {"message_id": update.carrier_message_id, "status": update.status.value,
                "error_code": update.error_code, "error_reason": update.error_reason,
                "from": sender, "entry_id": entry.entry_id}
        hass.bus.async_fire(EVENT_MESSAGE_STATUS, data)
        if sender is not None:
            async_dispatcher_send(hass, signal_status(entry.entry_id, sender), data)


def _response(reply: Reply) -> web.Response:
    """The provider's reply as an aiohttp response."""
    return web.Response(status=reply.status, body=reply.body,
                        headers={"Content-Type": reply.content_type})

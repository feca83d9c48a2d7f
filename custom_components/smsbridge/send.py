"""Sending from Home Assistant: which entry and number send, the text's parts, media, calls.

Which number sends (``from`` left out): the only number set up, when there is one; else the
first number, in the order the entries were added, whose carrier reaches the recipient's
country and can do what is asked (media of that kind, a voice call). ``from`` given: that
number, whichever entry has it, or an error saying why it cannot.

Everything is checked before anything is sent: a bad number, a file outside the allowed
folders, a carrier that cannot take the media or a text too long to send refuse the whole
action, and no recipient gets half of it.
"""

from __future__ import annotations

import base64
import logging
import mimetypes
import os
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from homeassistant.components.camera import async_get_image
from homeassistant.core import HomeAssistant, split_entity_id, valid_entity_id
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from smsbridge.core.errors import InvalidPhoneNumber
from smsbridge.core.messages import new_id
from smsbridge.core.phone import calling_code_allowed, to_e164
from smsbridge.providers import (
    Capabilities,
    Media,
    OutboundCall,
    OutboundMessage,
    Provider,
    ProviderError,
    SendResult,
    UnknownProvider,
)

from .account_check import provider_class
from .const import (
    CONF_LONG_TEXT,
    DEFAULT_LONG_TEXT,
    DOMAIN,
    LONG_TEXT_REFUSE,
    LONG_TEXT_TRUNCATE,
)
from .phone_input import InvalidNumber, read_numbers
from .server_mode import UNKNOWN_MEDIA_TYPE, GatewayProvider
from .webhook import webhook_url

if TYPE_CHECKING:
    from . import SmsbridgeConfigEntry

_LOGGER = logging.getLogger(__name__)

# Read no file larger than this into memory, whatever the carrier would take.
MAX_FILE_BYTES = 10_000_000
# A camera snapshot taking longer than this fails the action.
SNAPSHOT_TIMEOUT_SECONDS = 10


def error(key: str, **placeholders: object) -> HomeAssistantError:
    """A failure shown to the user in words (``exceptions.<key>`` of the translations)."""
    return HomeAssistantError(translation_domain=DOMAIN, translation_key=key,
                              translation_placeholders={k: str(v) for k, v in placeholders.items()})


def invalid(key: str, **placeholders: object) -> ServiceValidationError:
    """Input that cannot be used, in words (``exceptions.<key>`` of the translations)."""
    return ServiceValidationError(translation_domain=DOMAIN, translation_key=key,
                                  translation_placeholders={k: str(v)
                                                            for k, v in placeholders.items()})


@dataclass(frozen=True, slots=True)
class Need:
    """What the sending number's carrier must be able to do."""

    media: Sequence[Media] = ()
    voice: bool = False


@dataclass(frozen=True, slots=True)
class Sender:
    """A number of a loaded entry, and what its carrier can do."""

    entry: SmsbridgeConfigEntry
    number: str
    capabilities: Capabilities

    @property
    def provider(self) -> Provider[Any]:
        """The entry's provider (the carrier's, or the gateway's in server mode)."""
        return self.entry.runtime_data.provider

    @property
    def carrier(self) -> str:
        """The carrier's name, as errors show it."""
        return self.provider.name

    def shortfall(self, to: str, need: Need) -> HomeAssistantError | None:
        """Why this number cannot do ``need`` for ``to``; None when it can."""
        caps = self.capabilities
        if not calling_code_allowed(to, caps.regions):
            return invalid("unreachable", carrier=self.carrier, number=self.number, to=to,
                           regions=", ".join(caps.regions))
        if need.voice and not caps.voice:
            return invalid("calls_unsupported", carrier=self.carrier, number=self.number)
        if not need.media:
            return None
        if not caps.mms:
            return invalid("mms_unsupported", carrier=self.carrier, number=self.number)
        if any(item.url is None for item in need.media) and not caps.inline_media:
            return invalid("media_url_only", carrier=self.carrier, number=self.number)
        if len(need.media) > caps.max_media:
            return invalid("too_many_media", carrier=self.carrier, limit=caps.max_media,
                           count=len(need.media))
        for item in need.media:
            if caps.max_media_bytes and (item.size or 0) > caps.max_media_bytes:
                return invalid("media_too_large", carrier=self.carrier, size=item.size,
                               limit=caps.max_media_bytes)
        return None


def loaded_entries(hass: HomeAssistant) -> list[SmsbridgeConfigEntry]:
    """The entries set up now, in the order they were added."""
    return hass.config_entries.async_loaded_entries(DOMAIN)


def region(hass: HomeAssistant) -> str:
    """Where a national number is read: Home Assistant's country, else the US."""
    return hass.config.country or "US"


def read_targets(hass: HomeAssistant, values: Iterable[str], field: str) -> list[str]:
    """The recipients of an action in E.164, once each; each value may list several."""
    targets: list[str] = []
    for value in values:
        try:
            numbers = read_numbers(value, region(hass))
        except InvalidNumber as exc:
            raise invalid("invalid_number", field=field, value=exc.value) from None
        targets += [number for number in numbers if number not in targets]
    if not targets:
        raise invalid("no_target", field=field)
    return targets


async def async_capabilities(hass: HomeAssistant, provider: Provider[Any], number: str
                             ) -> Capabilities:
    """What the carrier behind ``number`` can do; in server mode, its gateway connection's."""
    if not isinstance(provider, GatewayProvider):
        return provider.capabilities
    key = provider.carrier_of(number)
    if key:
        try:
            return (await provider_class(hass, key)).capabilities
        except (UnknownProvider, ImportError):
            pass  # a plug-in the gateway has and Home Assistant has not: the gateway checks
    return provider.capabilities


async def async_pick_sender(hass: HomeAssistant, to: str, from_number: str | None, need: Need
                            ) -> Sender:
    """The number that sends to ``to`` (see the module's docstring for the rule)."""
    entries = loaded_entries(hass)
    if not entries:
        raise invalid("not_loaded")
    candidates = [(entry, number) for entry in entries for number in entry.runtime_data.numbers]
    if from_number is not None:
        try:
            wanted = to_e164(from_number, region(hass), field="from")
        except InvalidPhoneNumber:
            raise invalid("invalid_number", field="from", value=from_number) from None
        candidates = [(entry, number) for entry, number in candidates if number == wanted]
        if not candidates:
            raise invalid("unknown_sender", number=wanted, numbers=_all_numbers(entries))
    first_refusal: HomeAssistantError | None = None
    for entry, number in candidates:
        sender = Sender(entry, number,
                        await async_capabilities(hass, entry.runtime_data.provider, number))
        refusal = sender.shortfall(to, need)
        if refusal is None:
            return sender
        first_refusal = first_refusal or refusal
    raise first_refusal or invalid("not_loaded")


def _all_numbers(entries: Iterable[SmsbridgeConfigEntry]) -> str:
    return ", ".join(number for entry in entries for number in entry.runtime_data.numbers)


# -------------------------------------------------------------------- text


def split_text(text: str, limit: int) -> list[str]:
    """``text`` in parts of at most ``limit`` characters, cut after a space where one is near."""
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = limit
        for pos in range(limit - 1, limit // 2 - 1, -1):
            if rest[pos].isspace():
                cut = pos + 1
                break
        parts.append(rest[:cut])
        rest = rest[cut:]
    parts.append(rest)
    return parts


def text_parts(sender: Sender, text: str) -> list[str]:
    """The messages ``text`` goes as, by the entry's long-text option (split by default)."""
    limit = sender.capabilities.max_text_length
    if len(text) <= limit:
        return [text]
    mode = sender.entry.options.get(CONF_LONG_TEXT, DEFAULT_LONG_TEXT)
    if mode == LONG_TEXT_TRUNCATE:
        return [text[:limit]]
    if mode == LONG_TEXT_REFUSE:
        raise invalid("text_too_long", length=len(text), carrier=sender.carrier, limit=limit)
    return split_text(text, limit)


# -------------------------------------------------------------------- media


async def async_load_media(hass: HomeAssistant, values: Iterable[str], field: str
                           ) -> list[Media]:
    """Attachments from URLs, camera snapshots and files under the allowed folders.

    ``field`` names the action's field in errors.
    """
    media: list[Media] = []
    for raw in values:
        value = raw.strip()
        if value.lower().startswith(("http://", "https://")):
            guessed, _ = mimetypes.guess_type(urlsplit(value).path)
            media.append(Media(content_type=guessed or UNKNOWN_MEDIA_TYPE, url=value))
        elif valid_entity_id(value) and split_entity_id(value)[0] == "camera":
            media.append(await _async_snapshot(hass, value, field))
        elif os.path.isabs(value):
            media.append(await hass.async_add_executor_job(_read_file, hass, value, field))
        else:
            raise invalid("media_invalid", field=field, value=value)
    return media


async def _async_snapshot(hass: HomeAssistant, entity_id: str, field: str) -> Media:
    try:
        image = await async_get_image(hass, entity_id, timeout=SNAPSHOT_TIMEOUT_SECONDS)
    except HomeAssistantError as exc:
        raise error("camera_failed", field=field, entity_id=entity_id,
                    reason=str(exc) or type(exc).__name__) from None
    return _inline(image.content_type, image.content)


def _read_file(hass: HomeAssistant, path: str, field: str) -> Media:
    """A file's content, if Home Assistant may read it (runs in the executor)."""
    if not hass.config.is_allowed_path(path):
        raise invalid("media_not_allowed", field=field, path=path)
    try:
        size = os.path.getsize(path)
        if size > MAX_FILE_BYTES:
            raise invalid("file_too_large", field=field, path=path, size=size,
                          limit=MAX_FILE_BYTES)
        with open(path, "rb") as file:
            content = file.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise invalid("media_not_found", field=field, path=path) from None
    except OSError as exc:
        raise error("media_unreadable", field=field, path=path,
                    reason=exc.strerror or str(exc)) from None
    guessed, _ = mimetypes.guess_type(path)
    return _inline(guessed or UNKNOWN_MEDIA_TYPE, content)


def _inline(content_type: str, content: bytes) -> Media:
    return Media(content_type=content_type, data_base64=base64.b64encode(content).decode(),
                 size=len(content))


# -------------------------------------------------------------------- sending


@dataclass(frozen=True, slots=True)
class Planned:
    """One recipient, the number that sends to it, and the messages it gets."""

    sender: Sender
    to: str
    parts: list[str]


async def async_send_messages(hass: HomeAssistant, targets: Sequence[str], text: str,
                              from_number: str | None, media: Sequence[Media] = ()
                              ) -> dict[str, Any]:
    """Send ``text`` (and ``media``) to each target; the message ids as response data."""
    if not text.strip() and not media:
        raise invalid("empty_message")
    plan: list[Planned] = []
    for to in targets:
        sender = await async_pick_sender(hass, to, from_number, Need(media=media))
        plan.append(Planned(sender, to, text_parts(sender, text)))
    done: list[dict[str, Any]] = []
    for item in plan:
        ids: list[str] = []
        for index, part in enumerate(item.parts):
            message = OutboundMessage(
                id=new_id("msg"), from_number=item.sender.number, to_number=item.to, text=part,
                media=tuple(media) if index == 0 else (),
                status_callback_url=_status_url(hass, item.sender))
            result = await _async_attempt(item, done, item.sender.provider.send(
                message, async_get_clientsession(hass)))
            ids += [result.carrier_message_id, *result.extra_ids]
        item.sender.entry.runtime_data.remember_sent(ids, item.sender.number)
        done.append({"to": item.to, "from": item.sender.number,
                     "entry_id": item.sender.entry.entry_id, "message_ids": ids})
    return {"message_ids": [i for sent in done for i in sent["message_ids"]], "messages": done}


async def async_place_calls(hass: HomeAssistant, targets: Sequence[str], text: str,
                            from_number: str | None) -> dict[str, Any]:
    """Call each target and speak ``text``; the call ids as response data."""
    if not text.strip():
        raise invalid("empty_message")
    plan = [Planned(await async_pick_sender(hass, to, from_number, Need(voice=True)), to, [text])
            for to in targets]
    done: list[dict[str, Any]] = []
    for item in plan:
        call = OutboundCall(id=new_id("call"), from_number=item.sender.number, to_number=item.to,
                            say=text, status_callback_url=_status_url(hass, item.sender))
        result = await _async_attempt(item, done, item.sender.provider.place_call(
            call, async_get_clientsession(hass)))
        item.sender.entry.runtime_data.remember_sent([result.carrier_message_id],
                                                     item.sender.number)
        done.append({"to": item.to, "from": item.sender.number,
                     "entry_id": item.sender.entry.entry_id,
                     "call_id": result.carrier_message_id})
    return {"call_ids": [call["call_id"] for call in done], "calls": done}


async def _async_attempt(item: Planned, done: Sequence[dict[str, Any]],
                         request: Awaitable[SendResult]) -> SendResult:
    """Await a provider's send or call; a failure says what was done before it."""
    sent = ", ".join(d["to"] for d in done) or "-"
    try:
        return await request
    except ProviderError as exc:
        raise error("send_failed", carrier=item.sender.carrier, to=item.to, reason=exc.reason,
                    sent=sent) from exc
    except Exception as exc:
        # A plug-in's bug: the log keeps the trace, the user gets words.
        _LOGGER.exception("%s failed unexpectedly sending to %s", item.sender.carrier, item.to)
        raise error("send_failed", carrier=item.sender.carrier, to=item.to,
                    reason=type(exc).__name__, sent=sent) from exc


def _status_url(hass: HomeAssistant, sender: Sender) -> str | None:
    """Where the carrier sends receipts and call progress, if it sends any and can reach it."""
    if not sender.capabilities.delivery_receipts:
        return None
    url = webhook_url(hass, sender.entry, status=True)
    # Without an external or internal URL Home Assistant knows only the path.
    return url if url.startswith(("http://", "https://")) else None

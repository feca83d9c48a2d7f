"""Telnyx Messaging API v2: send SMS/MMS with JSON, receive Ed25519-signed JSON webhooks.

Carrier facts and how sure they are: shared/providers/telnyx.md.

Send::

    POST {base}/v2/messages   Authorization: Bearer <api_key>
    {"from": "+15145550100", "to": "+15145550123", "text": "Hi", "media_urls": [...],
     "messaging_profile_id": "...", "webhook_url": "<status url>"}
    -> 200 {"data": {"id": "4031...", "record_type": "message", "to": [{"status": "queued"}]}}

Webhooks (the messaging profile's URL, or the per-message ``webhook_url``)::

    POST <url>   telnyx-signature-ed25519: <base64>   telnyx-timestamp: <unix seconds>
    {"data": {"event_type": "message.received" | "message.sent" | "message.finalized",
              "id": "<event id>", "payload": {"id": "<message id>", ...}}, "meta": {...}}
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import aiohttp
from pydantic import Field, SecretStr, field_validator

from ...core.errors import MalformedWebhook, ProviderError, WebhookRejected
from ...core.messages import InboundMessage, Media, MessageStatus, OutboundMessage, StatusUpdate
from ...core.phone import NumberFormat
from ..base import (
    AccountInfo,
    Capabilities,
    Provider,
    ProviderConfig,
    SendResult,
    WebhookRequest,
    header,
)
from ..http import carrier_request
from ..numbers import inbound_number
from .account import messaging_numbers
from .errors import OPTED_OUT_CODES, delivery_error, send_error
from .signature import decode_public_key, signature_matches

SIGNATURE_TOLERANCE_SECONDS = 300

INBOUND_EVENT = "message.received"
STATUS_EVENTS = frozenset({"message.sent", "message.finalized"})

# payload.to[].status of outbound messages (telnyx.md §4), mapped onto ours.
STATUS_MAP: dict[str, MessageStatus] = {
    "queued": MessageStatus.SENDING,
    "sending": MessageStatus.SENDING,
    "sent": MessageStatus.SENT,
    # Final, but the destination carrier never confirmed: not failed, not delivered.
    "delivery_unconfirmed": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "sending_failed": MessageStatus.FAILED,
    "delivery_failed": MessageStatus.FAILED,
    "expired": MessageStatus.FAILED,
}


class TelnyxConfig(ProviderConfig):
    """Credentials and options of a Telnyx account."""

    api_key: SecretStr = Field(description="API v2 key (Mission Control: API Keys)")
    public_key: str = Field(
        description="the account's base64 Ed25519 public key (Keys & Credentials: Public Key);"
                    " checks the signature of every webhook")
    messaging_profile_id: str | None = Field(
        None, min_length=1,
        description="send through this messaging profile (needed for number pools and"
                    " alphanumeric senders)")

    @field_validator("public_key")
    @classmethod
    def _public_key_is_ed25519(cls, value: str) -> str:
        try:
            decode_public_key(value)
        except ValueError as exc:
            raise ValueError(f"public_key {exc}") from None
        return value.strip()


class TelnyxProvider(Provider[TelnyxConfig]):
    """Telnyx Messaging (SMS and MMS by URL)."""

    key: ClassVar[str] = "telnyx"
    name: ClassVar[str] = "Telnyx"
    Config = TelnyxConfig
    capabilities = Capabilities(
        sms=True, mms=True, max_text_length=1600, max_media=10,
        max_media_bytes=1_000_000,  # total MMS size per the API docs (telnyx.md §2)
        inline_media=False,  # Telnyx fetches media_urls; it takes no uploads in the send call
        number_format=NumberFormat.E164, signature="telnyx-ed25519", delivery_receipts=True,
    )
    default_base_url: ClassVar[str] = "https://api.telnyx.com"

    @property
    def _api_key(self) -> str:
        return self.config.api_key.get_secret_value()

    # --- sending -------------------------------------------------------------------------

    def send_body(self, message: OutboundMessage) -> dict[str, Any]:
        """The JSON body of POST /v2/messages for ``message``."""
        media_urls = self.media_urls(message)
        body: dict[str, Any] = {"from": message.from_number, "to": message.to_number}
        if message.text or not message.media:
            body["text"] = message.text
        if message.media:
            body["media_urls"] = media_urls
        if self.config.messaging_profile_id:
            body["messaging_profile_id"] = self.config.messaging_profile_id
        if message.status_callback_url:
            body["webhook_url"] = message.status_callback_url
        return body

    async def send(self, message: OutboundMessage, http: aiohttp.ClientSession) -> SendResult:
        """Create a message; Telnyx answers with its id in ``data.id``."""
        response = await carrier_request(
            http, "POST", f"{self.base_url}/v2/messages", label="Telnyx",
            timeout=self.config.timeout_seconds, secrets=[self._api_key],
            json=self.send_body(message),
            headers={"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"},
        )
        if not 200 <= response.status < 300:
            raise send_error(response)
        answer = response.json()
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
            # Telnyx may have queued the message; a retry could text the recipient twice.
            raise ProviderError("Telnyx accepted the request but its answer carried no"
                                " message id", retryable=False, code="no_id")
        parts = data.get("parts")
        segments = parts if isinstance(parts, int) and not isinstance(parts, bool) and (
            parts > 0) else None
        return SendResult(data["id"], MessageStatus.SENT, segments)

    # --- setup: the account's numbers (account.py) -----------------------------------------

    def account_identity(self) -> str:
        """The account's public key: not secret, and one per account (the API key is secret)."""
        return self.config.public_key

    async def check_credentials(self, http: aiohttp.ClientSession) -> AccountInfo:
        """Read one page of the numbers with messaging settings: the key must be let in."""
        await messaging_numbers(self, http, pages=1)
        return AccountInfo(self.account_identity())

    async def list_numbers(self, http: aiohttp.ClientSession) -> list[str] | None:
        """Every number whose messaging features include SMS."""
        return await messaging_numbers(self, http)

    # --- webhooks ------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        """Check ``telnyx-signature-ed25519`` over ``timestamp|body``, at most 300 s off."""
        signature = header(request, "telnyx-signature-ed25519")
        stamp = header(request, "telnyx-timestamp")
        if not signature or not stamp:
            raise WebhookRejected(
                "missing telnyx-signature-ed25519 or telnyx-timestamp header")
        stamp = stamp.strip()
        if not stamp.isdigit() or len(stamp) > 12:
            raise WebhookRejected("telnyx-timestamp is not a Unix time in seconds")
        if abs(time.time() - int(stamp)) > SIGNATURE_TOLERANCE_SECONDS:
            raise WebhookRejected(
                "telnyx-timestamp is more than 300 s from now (a replay, or the clocks disagree)")
        key = decode_public_key(self.config.public_key)
        if not signature_matches(key, stamp, request.body, signature):
            raise WebhookRejected(
                "telnyx-signature-ed25519 does not match the body; is public_key the one"
                " shown in the Telnyx portal for this account?")

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        """Read a ``message.received`` event; outbound events sent here are acknowledged."""
        event_type, payload = _event(request)
        if event_type in STATUS_EVENTS:
            # The profile's webhook URL also gets receipts of messages sent without a
            # per-message webhook_url (from the portal, another app): nothing to store.
            return []
        if event_type != INBOUND_EVENT:
            raise MalformedWebhook(f"Telnyx event {event_type!r} is not an inbound message")
        message_id = _string(payload, "id")
        sender = payload.get("from")
        if not isinstance(sender, dict):
            raise MalformedWebhook("Telnyx inbound is missing 'payload.from'")
        from_number = _number(sender.get("phone_number"), "payload.from.phone_number")
        recipients = payload.get("to")
        if not isinstance(recipients, list) or not recipients or not isinstance(
                recipients[0], dict):
            raise MalformedWebhook("Telnyx inbound is missing 'payload.to'")
        to_number = _number(recipients[0].get("phone_number"), "payload.to[0].phone_number")
        text = payload.get("text")
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise MalformedWebhook("Telnyx inbound 'payload.text' is not a string")
        return [InboundMessage(message_id, from_number, to_number, text,
                               tuple(_media(payload.get("media"))))]

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        """Read a ``message.sent`` or ``message.finalized`` event."""
        event_type, payload = _event(request)
        if event_type not in STATUS_EVENTS:
            raise MalformedWebhook(f"Telnyx event {event_type!r} is not a delivery receipt")
        message_id = _string(payload, "id")
        recipients = payload.get("to")
        if not isinstance(recipients, list) or not recipients or not isinstance(
                recipients[0], dict):
            raise MalformedWebhook("Telnyx receipt is missing 'payload.to'")
        raw_status = recipients[0].get("status")
        status = STATUS_MAP.get(raw_status) if isinstance(raw_status, str) else None
        if status is None:
            raise MalformedWebhook(
                f"Telnyx status {raw_status!r} in 'payload.to[0].status' is not one we know")
        code, reason = delivery_error(payload.get("errors"))
        if status is not MessageStatus.FAILED and code is None:
            reason = None
        return [StatusUpdate(message_id, status, code, reason,
                             recipient_opted_out=code in OPTED_OUT_CODES)]

    def setup_hint(self, inbound_url: str, status_url: str) -> str | None:
        """Where the inbound URL goes in the Telnyx portal."""
        return (
            f"In the Telnyx portal, set the messaging profile's inbound webhook URL to"
            f" {inbound_url} and assign your numbers to that profile. Receipts need no setup:"
            f" smsbridge passes {status_url} as webhook_url with every message it sends."
            " Copy the account's public key (Keys & Credentials) into public_key."
        )


def _event(request: WebhookRequest) -> tuple[str, dict[str, Any]]:
    """The event type and payload of a Telnyx webhook."""
    document = request.json()
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, dict):
        raise MalformedWebhook("Telnyx webhook has no 'data' object")
    event_type = data.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise MalformedWebhook("Telnyx webhook is missing 'data.event_type'")
    payload = data.get("payload")
    if not isinstance(payload, dict):
        raise MalformedWebhook("Telnyx webhook has no 'data.payload' object")
    return event_type, payload


def _string(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise MalformedWebhook(f"Telnyx webhook is missing 'payload.{name}'")
    return value


def _number(value: object, field: str) -> str:
    """A number in E.164; short codes and alphanumeric senders pass through."""
    return inbound_number(value, carrier="Telnyx", field=field)


def _media(items: object) -> list[Media]:
    """payload.media[]: url, content_type, size."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise MalformedWebhook("Telnyx 'payload.media' is not a list")
    media: list[Media] = []
    for index, item in enumerate(items):
        url = item.get("url") if isinstance(item, dict) else None
        if not isinstance(url, str) or not url:
            raise MalformedWebhook(f"Telnyx 'payload.media[{index}].url' is missing")
        content_type = item.get("content_type")
        size = item.get("size")
        media.append(Media(
            content_type=content_type if isinstance(content_type, str) and content_type
            else "application/octet-stream",
            url=url,
            size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0
            else None,
        ))
    return media

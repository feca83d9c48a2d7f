"""Server mode: a running smsbridge gateway stands in for the carrier.

The gateway is a provider like any other to the rest of the integration: it sends through
the gateway's REST API and reads the gateway's signed app webhooks. Every event (texts in,
receipts, calls ending) comes to the entry's one webhook URL::

    POST /v1/messages   Authorization: Bearer sbk_...   Idempotency-Key: <message id>
    {"from": "+15145550170", "to": "+14385550123", "text": "...", "media": [{"url": ...}]}

    POST <webhook url>  webhook-id: dlv_...  webhook-timestamp: 1732600000
                        webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">
    {"type": "message.received", "timestamp": "...", "data": {"id": "msg_...", "from": ...}}
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

import aiohttp
from pydantic import SecretStr

from smsbridge.providers import (
    AccountInfo,
    Capabilities,
    CarrierResponse,
    InboundMessage,
    MalformedWebhook,
    Media,
    MessageStatus,
    OutboundCall,
    OutboundMessage,
    Provider,
    ProviderConfig,
    ProviderError,
    Reply,
    SendResult,
    StatusUpdate,
    WebhookRejected,
    WebhookRequest,
    carrier_request,
    read_account,
)

from .const import CONF_API_KEY, CONF_URL, CONF_WEBHOOK_SECRET, MODE_SERVER

# Standard Webhooks: a signature older or newer than this is refused, so a captured request
# cannot be replayed later.
TIMESTAMP_TOLERANCE_SECONDS = 5 * 60
SIGNATURE_SCHEME = "standard-webhooks"

EVENT_RECEIVED = "message.received"
EVENT_STATUS = "message.status"
# A call's end (gateway/events.py); "completed" is the call's ``delivered``.
CALL_ENDINGS = {"call.completed": MessageStatus.DELIVERED, "call.failed": MessageStatus.FAILED}
STATUS_EVENTS = frozenset({EVENT_STATUS, *CALL_ENDINGS})

# The API's own limits (api/models.py SendIn): what a gateway takes whatever its carriers.
API_MAX_TEXT = 5000
API_MAX_MEDIA = 10
# What an attachment's type is called when nothing tells it (a URL without an extension).
UNKNOWN_MEDIA_TYPE = "application/octet-stream"


class GatewayConfig(ProviderConfig):
    """Where the gateway is, the API key it gave Home Assistant, and its webhook secret."""

    base_url: str
    api_key: SecretStr
    webhook_secret: SecretStr


class GatewayProvider(Provider[GatewayConfig]):
    """A running smsbridge gateway, reached by its REST API and its signed app webhooks."""

    key: ClassVar[str] = MODE_SERVER
    name: ClassVar[str] = "smsbridge gateway"
    Config = GatewayConfig
    # The gateway checks each send against the carrier of the connection that sends it;
    # ``carrier_of`` names that carrier, so the integration can check the same first.
    capabilities = Capabilities(
        sms=True, mms=True, max_text_length=API_MAX_TEXT, max_media=API_MAX_MEDIA,
        inline_media=True, signature=SIGNATURE_SCHEME, delivery_receipts=True, voice=True,
    )

    def __init__(self, config: GatewayConfig) -> None:
        super().__init__(config)
        self.carriers: dict[str, str] = {}

    def carrier_of(self, number: str) -> str | None:
        """The provider key of the gateway connection that owns ``number``, once listed."""
        return self.carriers.get(number)

    # ---------------------------------------------------------------- API

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.api_key.get_secret_value()}",
                "Accept": "application/json"}

    def _secrets(self) -> list[str]:
        return [self.config.api_key.get_secret_value()]

    async def check_credentials(self, http: aiohttp.ClientSession) -> AccountInfo:
        """Read ``GET /v1/carriers`` with the API key; learn which carrier owns each number."""
        body = await read_account(
            http, f"{self.base_url}/v1/carriers", carrier=self.name,
            timeout=self.config.timeout_seconds, secrets=self._secrets(),
            refusals={401: "invalid_auth", 403: "invalid_auth"}, headers=self._headers())
        connections = body.get("data") if isinstance(body, dict) else None
        if not isinstance(connections, list):
            raise ProviderError(f"{self.base_url} answered /v1/carriers without its data list;"
                                " is it an smsbridge gateway?", retryable=False,
                                code="not_a_gateway")
        carriers: dict[str, str] = {}
        for connection in connections:
            if not isinstance(connection, dict):
                continue
            numbers = connection.get("numbers")
            for number in numbers if isinstance(numbers, list) else ():
                if isinstance(number, str):
                    carriers.setdefault(number, str(connection.get("carrier", "")))
        self.carriers = carriers
        return AccountInfo(self.base_url)

    async def list_numbers(self, http: aiohttp.ClientSession) -> list[str] | None:
        """Every number of every carrier connection of the gateway."""
        await self.check_credentials(http)
        return list(self.carriers)

    async def send(self, message: OutboundMessage, http: aiohttp.ClientSession) -> SendResult:
        """Queue the message on the gateway; the result's id is the gateway's message id."""
        body: dict[str, Any] = {"from": message.from_number, "to": message.to_number,
                                "text": message.text}
        if message.media:
            body["media"] = [_media_in(item) for item in message.media]
        return await self._queue(http, "/v1/messages", body, message.id)

    async def place_call(self, call: OutboundCall, http: aiohttp.ClientSession) -> SendResult:
        """Queue the call on the gateway; the result's id is the gateway's call id."""
        body: dict[str, Any] = {"from": call.from_number, "to": call.to_number, "say": call.say,
                                "repeat": call.repeat}
        if call.voice:
            body["voice"] = call.voice
        if call.language:
            body["language"] = call.language
        return await self._queue(http, "/v1/calls", body, call.id)

    async def _queue(self, http: aiohttp.ClientSession, path: str, body: Mapping[str, Any],
                     idempotency_key: str) -> SendResult:
        # The key makes a repeated request (a retry after a lost answer) queue nothing twice.
        response = await carrier_request(
            http, "POST", self.base_url + path, label=self.name,
            timeout=self.config.timeout_seconds, secrets=self._secrets(), json=body,
            headers={**self._headers(), "Idempotency-Key": idempotency_key})
        if response.status != 202:
            raise _refusal(response)
        answer = response.json()
        queued_id = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(queued_id, str) or not queued_id:
            raise ProviderError(f"{self.name} queued it but its answer carried no id",
                                retryable=False, code="invalid_response")
        return SendResult(queued_id, MessageStatus.QUEUED)

    # ---------------------------------------------------------------- webhooks

    def verify(self, request: WebhookRequest) -> None:
        """Check the Standard Webhooks signature with the entry's ``whsec_`` secret."""
        msg_id = request.headers.get("webhook-id")
        stamp = request.headers.get("webhook-timestamp")
        signatures = request.headers.get("webhook-signature")
        if not msg_id or not stamp or not signatures:
            raise WebhookRejected("webhook-id, webhook-timestamp or webhook-signature missing")
        try:
            timestamp = int(stamp)
        except ValueError:
            raise WebhookRejected(f"webhook-timestamp {stamp!r} is not a number") from None
        if abs(time.time() - timestamp) > TIMESTAMP_TOLERANCE_SECONDS:
            raise WebhookRejected("webhook-timestamp is more than 5 minutes off")
        expected = signature(self.config.webhook_secret.get_secret_value(), msg_id, timestamp,
                             request.body)
        # The header lists space-separated "v1,<base64>" signatures (one per secret in use).
        for candidate in signatures.split():
            version, _, value = candidate.partition(",")
            if version == "v1" and hmac.compare_digest(value.encode(), expected.encode()):
                return
        raise WebhookRejected("webhook-signature does not match the entry's secret")

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        """A ``message.received`` event's message; no message for any other event."""
        event_type, data = _event(request)
        if event_type != EVENT_RECEIVED:
            return []
        return [InboundMessage(
            carrier_message_id=_text(data, "id"),
            from_number=_text(data, "from"),
            to_number=_text(data, "to"),
            text=data.get("text") if isinstance(data.get("text"), str) else "",
            media=_media_out(data.get("media")),
            **_received_at(data),
        )]

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        """A ``message.status`` event, or a call's end, as a status update; else none."""
        event_type, data = _event(request)
        if event_type not in STATUS_EVENTS:
            return []
        error: dict[str, Any] = data["error"] if isinstance(data.get("error"), dict) else {}
        if event_type == EVENT_STATUS:
            try:
                status = MessageStatus(_text(data, "status"))
            except ValueError:
                raise MalformedWebhook(f"unknown message status {data.get('status')!r}"
                                       ) from None
            code = error.get("code")
        else:
            status = CALL_ENDINGS[event_type]
            # How the phone answered (busy, no-answer...) is what an alarm rule wants to know.
            code = data.get("answer") if status is MessageStatus.FAILED else None
            code = code or error.get("code")
        reason = error.get("reason")
        return [StatusUpdate(_text(data, "id"), status,
                             str(code) if code else None, str(reason) if reason else None)]

    def inbound_reply(self, messages: Sequence[InboundMessage]) -> Reply:
        """Any 2xx tells the gateway the event was taken."""
        return Reply(204)

    def status_reply(self, updates: Sequence[StatusUpdate]) -> Reply:
        """Any 2xx tells the gateway the event was taken."""
        return Reply(204)

    def setup_hint(self, inbound_url: str, status_url: str) -> str | None:
        """The ``[[webhooks]]`` table for the gateway's configuration file."""
        return (f'Add to the gateway\'s configuration file:\n[[webhooks]]\nurl = "{inbound_url}"'
                '\nsecret = "<the whsec_ secret shown when this entry was added>"\n'
                "then restart the gateway. Receipts and calls' ends come to the same URL.")


def gateway_provider(data: Mapping[str, Any]) -> GatewayProvider:
    """The provider of a server-mode entry, from its entry data."""
    return GatewayProvider(GatewayConfig(
        base_url=data[CONF_URL], api_key=data[CONF_API_KEY],
        webhook_secret=data[CONF_WEBHOOK_SECRET]))


def is_status_event(provider: Provider[Any], body: bytes) -> bool:
    """True for a gateway event that carries a receipt or a call's end, not a text.

    Carriers send receipts to the entry's status URL; the gateway sends every event to the
    one URL it was given, so the event's type tells them apart.
    """
    if not isinstance(provider, GatewayProvider):
        return False
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(event, dict) and event.get("type") in STATUS_EVENTS


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The base64 HMAC-SHA256 of ``id.timestamp.body`` under a ``whsec_`` secret."""
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookRejected("the entry's webhook secret is not whsec_ base64") from None
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


# -------------------------------------------------------------------- helpers


def _refusal(response: CarrierResponse) -> ProviderError:
    """The ProviderError of a refused request, in the gateway's words (RFC 9457 detail)."""
    problem = response.json()
    detail = problem.get("detail") if isinstance(problem, dict) else None
    if response.status in (401, 403):
        return response.error(f"the gateway refused the API key ({detail or 'no detail'})",
                              code="invalid_auth")
    if isinstance(detail, str) and detail:
        return response.error(f"the gateway refused it: {detail}")
    return response.error()


def _media_in(item: Media) -> dict[str, str]:
    """An attachment as the API takes it: a URL, or base64 data with its type."""
    if item.url is None:
        return {"data": item.data_base64 or "", "content_type": item.content_type}
    if item.content_type == UNKNOWN_MEDIA_TYPE:
        return {"url": item.url}  # the gateway asks for the type if it cannot tell
    return {"url": item.url, "content_type": item.content_type}


def _event(request: WebhookRequest) -> tuple[str, dict[str, Any]]:
    """The event type and data of an app-webhook body."""
    event = request.json()
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise MalformedWebhook("gateway event without a 'type'")
    data = event.get("data")
    if not isinstance(data, dict):
        raise MalformedWebhook(f"gateway event {event['type']} without its 'data'")
    return event["type"], data


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedWebhook(f"gateway event data without {key!r}")
    return value


def _media_out(value: Any) -> tuple[Media, ...]:
    """The attachments of an event's message that have a URL."""
    items = value if isinstance(value, list) else []
    return tuple(Media(content_type=str(item.get("content_type") or UNKNOWN_MEDIA_TYPE),
                       url=item["url"])
                 for item in items if isinstance(item, dict) and isinstance(item.get("url"), str))


def _received_at(data: Mapping[str, Any]) -> dict[str, datetime]:
    """``received_at`` for InboundMessage when the event says when the gateway took it."""
    created = data.get("created_at")
    if isinstance(created, str):
        try:
            return {"received_at": datetime.fromisoformat(created)}
        except ValueError:
            pass
    return {}

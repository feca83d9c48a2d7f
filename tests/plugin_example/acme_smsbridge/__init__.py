"""Acme Messaging for smsbridge: JSON send API, HMAC-signed JSON webhooks."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any, ClassVar

import aiohttp
from pydantic import Field, SecretStr

from smsbridge.providers import (
    Capabilities,
    InboundMessage,
    MalformedWebhook,
    Media,
    MessageStatus,
    OutboundMessage,
    Provider,
    ProviderConfig,
    ProviderError,
    SendResult,
    StatusUpdate,
    WebhookRejected,
    WebhookRequest,
    carrier_request,
)

RETRYABLE_CODES = frozenset({"rate_limited", "carrier_busy"})
STATUSES = {"queued": MessageStatus.SENDING, "sent": MessageStatus.SENT,
            "delivered": MessageStatus.DELIVERED, "failed": MessageStatus.FAILED}
SIGNATURE_TOLERANCE_SECONDS = 300


class AcmeConfig(ProviderConfig):
    """Credentials of an Acme Messaging account."""

    api_key: SecretStr = Field(description="API key from the Acme dashboard")
    webhook_secret: SecretStr = Field(description="signing secret of the account's webhooks")


class AcmeProvider(Provider[AcmeConfig]):
    """Acme Messaging (SMS and MMS by URL)."""

    key: ClassVar[str] = "acme"
    name: ClassVar[str] = "Acme Messaging"
    Config = AcmeConfig
    capabilities = Capabilities(sms=True, mms=True, max_text_length=1600, max_media=5,
                                max_media_bytes=5_000_000, signature="acme-hmac-sha256",
                                delivery_receipts=True)
    default_base_url: ClassVar[str] = "https://api.acme.example"

    async def send(self, message: OutboundMessage, http: aiohttp.ClientSession) -> SendResult:
        """POST one message; Acme answers 201 with its id."""
        body: dict[str, Any] = {"from": message.from_number, "to": message.to_number,
                                "text": message.text}
        if message.media:
            body["media_urls"] = [m.url for m in message.media if m.url]
        if message.status_callback_url:
            body["status_callback"] = message.status_callback_url
        api_key = self.config.api_key.get_secret_value()
        response = await carrier_request(
            http, "POST", f"{self.base_url}/v1/messages", label="Acme",
            timeout=self.config.timeout_seconds, secrets=[api_key], json=body,
            headers={"Authorization": f"Bearer {api_key}"},
        )
        answer = response.json()
        if response.status != 201:
            error = answer.get("error") if isinstance(answer, dict) else None
            if not isinstance(error, dict):
                raise response.error()  # not Acme's JSON: the HTTP status decides
            code = str(error.get("code", ""))
            retryable = code in RETRYABLE_CODES or None  # None: the HTTP status decides
            raise response.error(f"Acme: {error.get('message') or code}", code=code or None,
                                 retryable=retryable)
        if not isinstance(answer, dict) or not isinstance(answer.get("id"), str):
            # Acme may have taken it: a retry could text the recipient twice.
            raise ProviderError("Acme accepted the message but sent no id", retryable=False,
                                code="no_id")
        return SendResult(answer["id"], MessageStatus.SENT)

    def verify(self, request: WebhookRequest) -> None:
        """Check Acme-Signature: HMAC-SHA256 over "<t>.<body>", at most five minutes old."""
        fields = dict(part.split("=", 1) for part in
                      request.headers.get("acme-signature", "").split(",") if "=" in part)
        stamp, given = fields.get("t", ""), fields.get("v1", "")
        if not stamp.isdigit() or not given:
            raise WebhookRejected("missing or malformed Acme-Signature header")
        if abs(time.time() - int(stamp)) > SIGNATURE_TOLERANCE_SECONDS:
            raise WebhookRejected("Acme-Signature is too old (or the clocks disagree)")
        secret = self.config.webhook_secret.get_secret_value().encode()
        expected = hmac.new(secret, stamp.encode() + b"." + request.body, hashlib.sha256)
        if not hmac.compare_digest(expected.hexdigest(), given):
            raise WebhookRejected("Acme-Signature does not match the body")

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        """Read a message.received event."""
        data = _event_data(request, "message.received")
        media = []
        for item in data.get("media") or []:
            if not isinstance(item, dict) or not isinstance(item.get("url"), str):
                raise MalformedWebhook("each Acme media item needs a 'url'")
            media.append(Media(content_type=str(item.get("content_type") or
                                                 "application/octet-stream"), url=item["url"]))
        text = data.get("text") or ""
        if not isinstance(text, str):
            raise MalformedWebhook("Acme 'data.text' must be a string")
        return [InboundMessage(_string(data, "id"), _string(data, "from"), _string(data, "to"),
                               text, tuple(media))]

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        """Read a message.status event."""
        data = _event_data(request, "message.status")
        status = STATUSES.get(str(data.get("status")))
        if status is None:
            raise MalformedWebhook(f"Acme status {data.get('status')!r} is not one we know")
        code = data.get("error_code")
        return [StatusUpdate(_string(data, "id"), status, str(code) if code else None)]


def _event_data(request: WebhookRequest, kind: str) -> dict[str, Any]:
    event = request.json()
    if not isinstance(event, dict) or event.get("type") != kind:
        raise MalformedWebhook(f"Acme webhook is not a {kind} event")
    data = event.get("data")
    if not isinstance(data, dict):
        raise MalformedWebhook("Acme webhook has no 'data' object")
    return data


def _string(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise MalformedWebhook(f"Acme webhook is missing 'data.{name}'")
    return value

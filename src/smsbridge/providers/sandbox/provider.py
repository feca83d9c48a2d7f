"""The sandbox carrier: runs in-process, costs nothing, needs no account.

Every number works. ``delay_ms`` and ``failure_rate`` make it behave like a slow
or flaky carrier; with ``delivery_receipts`` it confirms delivery at once. It places
voice calls too: nobody's phone rings, and each call is answered at once (with
``delivery_receipts`` off it stays placed until a receipt says how it ended); a call's
answer URL serves what would be spoken, as JSON.

Inbound webhook (what ``smsbridge sandbox receive`` posts)::

    POST /v1/carriers/sandbox/<token>/inbound
    {"id": "sbx-in-1", "from": "+15145550111", "to": "+15555550100", "text": "ARM SV",
     "media": [{"url": "https://example.com/a.jpg", "content_type": "image/jpeg"}]}
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import Sequence
from typing import ClassVar

import aiohttp
from pydantic import Field

from ...core.errors import MalformedWebhook, ProviderError
from ...core.messages import (
    InboundMessage,
    Media,
    MessageStatus,
    OutboundCall,
    OutboundMessage,
    StatusUpdate,
)
from ...core.phone import NumberFormat
from ..base import (
    UNSIGNED,
    AccountInfo,
    Capabilities,
    Provider,
    ProviderConfig,
    Reply,
    SendResult,
    WebhookRequest,
)

# The number a new sandbox connection is given (gateway.config's default connection): the
# sandbox accepts any number, and offers this one to pick.
SANDBOX_NUMBERS = ("+15555550100",)

_RECEIPT_STATUSES = {"sent": MessageStatus.SENT, "delivered": MessageStatus.DELIVERED,
                     "failed": MessageStatus.FAILED}


class SandboxConfig(ProviderConfig):
    """Options of the sandbox carrier."""

    delay_ms: int = Field(0, ge=0, le=60_000, description="wait this long before accepting a send")
    failure_rate: float = Field(0.0, ge=0.0, le=1.0, description="share of sends that fail")
    failure_retryable: bool = Field(False, description="whether simulated failures may be retried")
    delivery_receipts: bool = Field(True, description="confirm delivery as soon as accepted")


class SandboxProvider(Provider[SandboxConfig]):
    """A carrier that lives inside the gateway, for trying smsbridge and for tests."""

    key: ClassVar[str] = "sandbox"
    name: ClassVar[str] = "Sandbox"
    Config = SandboxConfig
    capabilities = Capabilities(
        sms=True, mms=True, max_text_length=1600, max_media=10, max_media_bytes=5_000_000,
        inline_media=True, number_format=NumberFormat.E164, delivery_receipts=True,
        signature=UNSIGNED,  # `smsbridge sandbox receive` posts plain JSON
        voice=True,
    )

    def __init__(self, config: SandboxConfig) -> None:
        super().__init__(config)
        self._random = random.Random()

    def max_send_seconds(self, message: OutboundMessage | None = None) -> float:
        """The configured delay: the sandbox makes no request."""
        return self.config.delay_ms / 1000

    async def send(self, message: OutboundMessage, http: aiohttp.ClientSession) -> SendResult:
        """Accept the message after the configured delay, or fail at the configured rate."""
        return await self._accept("sbx")

    async def place_call(self, call: OutboundCall, http: aiohttp.ClientSession) -> SendResult:
        """Accept the call like a message; with delivery_receipts it is answered at once."""
        return await self._accept("sbx-call")

    def call_answer(self, call: OutboundCall) -> Reply:
        """What the sandbox's phone hears, as JSON: lets anyone try a call's answer URL."""
        spoken = {"say": call.say, "voice": call.voice, "language": call.language,
                  "repeat": call.repeat}
        return Reply(200, json.dumps(spoken, ensure_ascii=False).encode(), "application/json")

    async def _accept(self, id_prefix: str) -> SendResult:
        if self.config.delay_ms:
            await asyncio.sleep(self.config.delay_ms / 1000)
        if self.config.failure_rate and self._random.random() < self.config.failure_rate:
            raise ProviderError(
                "sandbox: simulated carrier failure",
                retryable=self.config.failure_retryable,
                code="sandbox_failure",
            )
        status = MessageStatus.DELIVERED if self.config.delivery_receipts else MessageStatus.SENT
        return SendResult(carrier_message_id=f"{id_prefix}-{uuid.uuid4().hex}", status=status)

    def account_identity(self) -> str:
        """The sandbox has no account: one name for all of it."""
        return self.key

    async def check_credentials(self, http: aiohttp.ClientSession) -> AccountInfo:
        """Nothing to check: the sandbox takes no credentials, so none can be wrong."""
        return AccountInfo(self.key, self.name)

    async def list_numbers(self, http: aiohttp.ClientSession) -> list[str] | None:
        """The sandbox's own number (any other works too, typed in by hand)."""
        return list(SANDBOX_NUMBERS)

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        """Read the sandbox's JSON inbound message."""
        data = request.json()
        if not isinstance(data, dict):
            raise MalformedWebhook("sandbox inbound body must be a JSON object")
        missing = [k for k in ("from", "to") if not isinstance(data.get(k), str) or not data[k]]
        if missing:
            raise MalformedWebhook(f"sandbox inbound is missing {', '.join(missing)}")
        text = data.get("text", "")
        if not isinstance(text, str):
            raise MalformedWebhook("sandbox inbound 'text' must be a string")
        media_in = data.get("media") or []
        if not isinstance(media_in, list):
            raise MalformedWebhook("sandbox inbound 'media' must be a list")
        media: list[Media] = []
        for item in media_in:
            if not isinstance(item, dict) or not isinstance(item.get("url"), str):
                raise MalformedWebhook("each sandbox media item needs a 'url'")
            media.append(Media(content_type=str(item.get("content_type") or
                                                 "application/octet-stream"), url=item["url"]))
        carrier_id = data.get("id") or f"sbx-in-{uuid.uuid4().hex}"
        return [InboundMessage(str(carrier_id), data["from"], data["to"], text, tuple(media))]

    def inbound_reply(self, messages: Sequence[InboundMessage]) -> Reply:
        """Answer with the ids stored, as JSON."""
        ids = ",".join(f'"{m.carrier_message_id}"' for m in messages)
        return Reply(200, f'{{"accepted": [{ids}]}}'.encode(), "application/json")

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        """Read a sandbox receipt: {"id": carrier id, "status": sent|delivered|failed}."""
        data = request.json()
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise MalformedWebhook("sandbox status needs an 'id'")
        status = _RECEIPT_STATUSES.get(str(data.get("status")))
        if status is None:
            raise MalformedWebhook(f"sandbox status must be one of {', '.join(_RECEIPT_STATUSES)}")
        return [StatusUpdate(data["id"], status, data.get("error_code"), data.get("error_reason"))]

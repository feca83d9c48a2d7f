"""Delivery of events to app webhooks, signed per the Standard Webhooks spec, and to MQTT."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

import aiohttp

from ..core.redact import redact_url, redact_urls
from ..store.base import DeliveryRecord, Store
from .backoff import backoff_delay
from .mqtt import MQTT_URL_PREFIX, MqttLink, MqttUnavailable, PublicationRefused
from .worker import PollingWorker

log = logging.getLogger("smsbridge.webhooks")

TWILIO_FORMAT = "twilio"
# How much of an app's answer is read: a TwiML reply is small.
MAX_ANSWER_BYTES = 64 * 1024
# Acts on what an app answered a delivery with (a TwiML reply to a received message).
AnswerHandler = Callable[[DeliveryRecord, bytes], Awaitable[None]]

# While the broker is away a publication is tried again at least this often, so that a
# backlog goes out soon after the broker is back; it is never given up on for that reason.
MQTT_RETRY_CAP_SECONDS = 30.0


def sign_webhook(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` value: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``.

    ``secret`` is a ``whsec_``-prefixed base64 key (Standard Webhooks spec).
    """
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.{body}".encode()
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def _signed_headers(target: WebhookTarget, delivery: DeliveryRecord) -> dict[str, str]:
    """The headers of one attempt, signed as the target's format says."""
    if target.format == TWILIO_FORMAT:
        # Imported here: commands that only read messages need no carrier loaded.
        from ..providers.twilio.signature import compute_signature

        params = parse_qsl(delivery.payload, keep_blank_values=True)
        return {
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": compute_signature(target.secret, delivery.url, params),
            "i-twilio-idempotency-token": delivery.id,
            "user-agent": "smsbridge-webhooks/1",
        }
    timestamp = int(time.time())
    return {
        "content-type": "application/json",
        "webhook-id": delivery.id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_webhook(target.secret, delivery.id, timestamp,
                                          delivery.payload),
        "user-agent": "smsbridge-webhooks/1",
    }


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """What the worker needs to know of one configured app webhook."""

    url: str
    secret: str
    max_attempts: int = 8
    timeout_seconds: float = 10.0
    # "standard": JSON signed per Standard Webhooks; "twilio": a form signed with
    # X-Twilio-Signature (``secret`` is then the account's auth token).
    format: str = "standard"


class WebhookDeliveryWorker(PollingWorker):
    """POSTs each pending event; non-2xx or no answer is retried with backoff, then failed.

    A delivery to ``mqtt:<topic>`` is published through ``mqtt`` instead, and waits in the
    outbox for as long as the broker is unreachable.
    """

    kind = "webhooks"

    def __init__(
        self,
        store: Store,
        targets: Mapping[str, WebhookTarget],
        http: aiohttp.ClientSession,
        *,
        concurrency: int = 20,
        poll_interval: float = 1.0,
        lease_seconds: float = 60.0,
        backoff_base: float = 2.0,
        backoff_max: float = 600.0,
        mqtt: MqttLink | None = None,
        on_answer: AnswerHandler | None = None,
    ) -> None:
        super().__init__(concurrency, poll_interval, lease_seconds)
        self.store = store
        self.targets = targets
        self.http = http
        self.mqtt = mqtt
        self.on_answer = on_answer
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max

    async def _claim(self, limit: int) -> list[object]:
        return list(await self.store.claim_deliveries(self.owner, limit, self.lease_seconds))

    async def _handle(self, item: object) -> None:
        assert isinstance(item, DeliveryRecord)
        await self.deliver(item)

    async def deliver(self, delivery: DeliveryRecord) -> None:
        """Make one attempt and record it."""
        if delivery.url.startswith(MQTT_URL_PREFIX):
            await self.publish(delivery)
            return
        # Webhooks added through the API are known by id (two accounts may share a URL).
        target = self.targets.get(delivery.webhook_id or delivery.url)
        if target is None:
            await self.store.finish_delivery(
                delivery.id, ok=False, error="webhook no longer configured", next_attempt_at=None)
            return
        headers = _signed_headers(target, delivery)
        error: str | None = None
        try:
            async with self.http.post(
                delivery.url, data=delivery.payload.encode(), headers=headers,
                timeout=aiohttp.ClientTimeout(total=target.timeout_seconds),
                allow_redirects=False,
            ) as resp:
                answer = await resp.content.read(MAX_ANSWER_BYTES)
                if 200 <= resp.status < 300:
                    await self.store.finish_delivery(delivery.id, ok=True, error=None,
                                                     next_attempt_at=None)
                    log.info("webhook %s %s delivered to %s", delivery.id, delivery.event_type,
                             redact_url(delivery.url))
                    if (target.format == TWILIO_FORMAT and self.on_answer is not None
                            and delivery.event_type == "message.received" and answer.strip()):
                        await self._answer(delivery, answer)
                    return
                error = f"HTTP {resp.status}"
        except (TimeoutError, aiohttp.ClientError) as exc:
            # Some aiohttp errors name the whole URL, credentials included; the error is both
            # logged and stored for GET /v1/webhook-deliveries.
            error = (f"{type(exc).__name__}: {redact_urls(str(exc))}" if str(exc)
                     else type(exc).__name__)
        if delivery.attempts >= target.max_attempts:
            await self.store.finish_delivery(
                delivery.id, ok=False, next_attempt_at=None,
                error=f"{error} (gave up after {delivery.attempts} attempts)")
            log.warning("webhook %s to %s failed for good: %s", delivery.id,
                        redact_url(delivery.url), error)
            return
        delay = backoff_delay(delivery.attempts, self.backoff_base, self.backoff_max)
        await self.store.finish_delivery(delivery.id, ok=False, error=error,
                                         next_attempt_at=time.time() + delay)
        log.warning("webhook %s to %s: %s; retry in %.1fs", delivery.id,
                    redact_url(delivery.url), error, delay)

    async def _answer(self, delivery: DeliveryRecord, answer: bytes) -> None:
        """Hand a Twilio-format webhook's answer (TwiML) on; the delivery itself succeeded."""
        assert self.on_answer is not None
        try:
            await self.on_answer(delivery, answer)
        except Exception:
            log.warning("the answer to webhook %s could not be acted on", delivery.id,
                        exc_info=True)

    async def publish(self, delivery: DeliveryRecord) -> None:
        """Publish one MQTT delivery and record it; an absent broker only delays it."""
        topic = delivery.url.removeprefix(MQTT_URL_PREFIX)
        error: str | None = None
        if self.mqtt is None:
            error = "MQTT is not configured"
        else:
            try:
                await self.mqtt.publish(topic, delivery.payload.encode())
            except PublicationRefused as exc:
                error = f"refused: {exc}"
            except MqttUnavailable as exc:
                delay = min(backoff_delay(delivery.attempts, self.backoff_base, self.backoff_max),
                            MQTT_RETRY_CAP_SECONDS)
                await self.store.finish_delivery(delivery.id, ok=False, error=str(exc),
                                                 next_attempt_at=time.time() + delay)
                log.debug("MQTT %s to %s waits for the broker; retry in %.1fs", delivery.id,
                          topic, delay)
                return
        if error is not None:
            await self.store.finish_delivery(delivery.id, ok=False, error=error,
                                             next_attempt_at=None)
            log.warning("MQTT %s to %s failed for good: %s", delivery.id, topic, error)
            return
        await self.store.finish_delivery(delivery.id, ok=True, error=None, next_attempt_at=None)
        log.info("MQTT %s %s published to %s", delivery.id, delivery.event_type, topic)

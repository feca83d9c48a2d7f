"""The outbox worker: claims due messages and calls, hands each to its carrier, records results."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp

from ..core.errors import ProviderError
from ..core.messages import Message, OutboundMessage
from ..providers.base import Provider, SendResult
from ..store.base import EventsFor, Store
from .backoff import backoff_delay
from .worker import PollingWorker

log = logging.getLogger("smsbridge.outbox")


class OutboxWorker(PollingWorker):
    """Sends queued messages; retryable failures back off with jitter, others fail at once."""

    kind = "outbox"

    def __init__(
        self,
        store: Store,
        providers: Mapping[str, Provider[Any]],
        http: aiohttp.ClientSession,
        events_for: EventsFor,
        status_url_for: Callable[[str], str | None],
        *,
        answer_url_for: Callable[[str, str], str | None] = lambda _connection, _call: None,
        concurrency: int = 50,
        poll_interval: float = 1.0,
        lease_seconds: float = 60.0,
        max_attempts: int = 8,
        backoff_base: float = 2.0,
        backoff_max: float = 600.0,
        reload_connections: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(concurrency, poll_interval, lease_seconds)
        self.store = store
        self.providers = providers
        # Re-reads the connections added at run time before a message of an unknown one is
        # failed: another process may have added it since this one last looked.
        self.reload_connections = reload_connections
        self.http = http
        self.events_for = events_for
        self.status_url_for = status_url_for
        self.answer_url_for = answer_url_for
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max

    async def _claim(self, limit: int) -> list[object]:
        return list(await self.store.claim_outbound(self.owner, limit, self.lease_seconds))

    async def _handle(self, item: object) -> None:
        assert isinstance(item, Message)
        await self.send_one(item)

    async def send_one(self, message: Message) -> None:
        """Send one claimed message and record what happened."""
        provider = self.providers.get(message.connection)
        if provider is None and self.reload_connections is not None:
            # Added through the API on another process moments ago: read them again first.
            await self.reload_connections()
            provider = self.providers.get(message.connection)
        if provider is None:
            await self.store.mark_failed(
                message.id, "no_connection",
                f"connection {message.connection!r} is no longer configured", self.events_for)
            log.warning("failed %s: connection %s is gone", message.id, message.connection)
            return
        try:
            result = await self._hand_over(provider, message)
        except ProviderError as exc:
            await self._record_failure(message, exc)
            return
        except (TimeoutError, aiohttp.ClientError) as exc:
            # A provider should wrap these; if one leaks, it is a network failure: retry.
            await self._record_failure(
                message, ProviderError(f"network error: {type(exc).__name__}", retryable=True))
            return
        except Exception as exc:
            # A bug in a provider must end in `failed` after the last attempt, not loop forever.
            log.exception("provider %s raised unexpectedly sending %s", message.carrier,
                          message.id)
            await self._record_failure(message, ProviderError(
                f"internal error in the {message.carrier} provider: {type(exc).__name__}",
                retryable=True, code="internal_error"))
            return
        await self.store.mark_sent(message.id, result.carrier_message_id, result.status,
                                   result.segments, self.events_for)
        log.info("sent %s via %s as %s", message.id, message.connection,
                 result.carrier_message_id)

    async def _hand_over(self, provider: Provider[Any], message: Message) -> SendResult:
        """Send the message, or place the call, through its carrier."""
        if message.is_call:
            # A call's outcome always comes back by callback: busy and no-answer are news.
            call = message.to_outbound_call(
                self.status_url_for(message.connection),
                self.answer_url_for(message.connection, message.id))
            return await provider.place_call(call, self.http)
        outbound = OutboundMessage(
            id=message.id, from_number=message.from_number, to_number=message.to_number,
            text=message.text, media=message.media,
            status_callback_url=(self.status_url_for(message.connection)
                                 if provider.capabilities.delivery_receipts else None),
        )
        return await provider.send(outbound, self.http)

    async def _record_failure(self, message: Message, exc: ProviderError) -> None:
        if exc.recipient_opted_out:
            # The carrier keeps its own list; ours must refuse the next send before it goes.
            _, added = await self.store.add_optout(message.from_number, message.to_number,
                                                   "carrier", message.account_id)
            if added:
                log.warning("%s opted out of %s at %s (%s): put on the opt-out list",
                            message.to_number, message.from_number, message.carrier,
                            exc.code)
        if exc.retryable and message.attempts < self.max_attempts:
            delay = backoff_delay(message.attempts, self.backoff_base, self.backoff_max,
                                  exc.retry_after)
            await self.store.mark_retry(message.id, time.time() + delay, exc.code, exc.reason)
            log.warning("retry %s in %.1fs (attempt %d/%d): %s", message.id, delay,
                        message.attempts, self.max_attempts, exc.reason)
            return
        reason = exc.reason if not exc.retryable else (
            f"{exc.reason} (gave up after {message.attempts} attempts)")
        await self.store.mark_failed(message.id, exc.code, reason, self.events_for)
        log.warning("failed %s: %s", message.id, reason)

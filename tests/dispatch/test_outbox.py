"""The outbox worker and the retry policy, on a real SQLite store."""

from __future__ import annotations

import random
from typing import ClassVar

import aiohttp
import pytest

from smsbridge.core.messages import (
    Direction,
    Message,
    MessageStatus,
    OutboundMessage,
    new_id,
)
from smsbridge.dispatch.backoff import backoff_delay
from smsbridge.dispatch.outbox import OutboxWorker
from smsbridge.providers.base import Capabilities, Provider, ProviderConfig, SendResult
from smsbridge.store.sql import SqlStore
from tests.conftest import eventually


class BrokenProvider(Provider[ProviderConfig]):
    """A provider with a bug: every send raises something that is not a ProviderError."""

    key: ClassVar[str] = "broken"
    name: ClassVar[str] = "Broken"
    Config = ProviderConfig
    capabilities = Capabilities()
    calls = 0

    async def send(self, message: OutboundMessage, http: aiohttp.ClientSession) -> SendResult:
        type(self).calls += 1
        raise KeyError("a provider bug")

    def parse_inbound(self, request):  # type: ignore[no-untyped-def]
        return []


async def test_a_provider_bug_ends_in_failed_after_the_last_attempt(sqlite_url: str) -> None:
    store = SqlStore(sqlite_url)
    store.migrate()
    await store.start()
    message = Message(id=new_id("msg"), direction=Direction.OUTBOUND, connection="b",
                      carrier="broken", from_number="+15145550100", to_number="+15145550111",
                      text="x", status=MessageStatus.QUEUED)
    await store.queue_outbound(message, None, lambda *_: [])
    async with aiohttp.ClientSession() as http:
        worker = OutboxWorker(store, {"b": BrokenProvider(ProviderConfig())}, http,
                              lambda *_: [], lambda _: None, poll_interval=0.05,
                              max_attempts=3, backoff_base=0.01, backoff_max=0.02)
        worker.start()
        try:
            async def failed() -> Message | None:
                got = await store.get_message(message.id)
                return got if got and got.status is MessageStatus.FAILED else None

            final = await eventually(failed, timeout=10)
        finally:
            await worker.stop()
    await store.close()
    assert final.error_code == "internal_error"
    assert "internal error in the broken provider: KeyError" in (final.error_reason or "")
    assert final.attempts == 3 and BrokenProvider.calls == 3


@pytest.mark.parametrize("attempt", [1, 2, 3, 6, 12])
def test_backoff_grows_with_jitter_and_stays_under_the_cap(attempt: int) -> None:
    rng = random.Random(attempt)
    nominal = min(600.0, 2.0 * 2 ** (attempt - 1))
    delays = [backoff_delay(attempt, 2.0, 600.0, rng=rng) for _ in range(200)]
    assert all(0.5 * nominal <= d <= min(1.5 * nominal, 600.0) for d in delays)
    if 1.5 * nominal <= 600.0:
        assert len({round(d, 6) for d in delays}) > 150  # jittered, not one fixed delay
    else:
        assert max(delays) == 600.0  # at the cap, the cap holds


def test_retry_after_is_a_floor() -> None:
    assert backoff_delay(1, 2.0, 600.0, retry_after=60.0) >= 60.0

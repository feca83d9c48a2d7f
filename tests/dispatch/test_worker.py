"""The polling loop's seam for tests: counted claims, awaited from any thread."""

from __future__ import annotations

import asyncio
import threading

import pytest

from smsbridge.dispatch.worker import PollingWorker


class EmptyWorker(PollingWorker):
    """A worker that never finds work: each poll is one empty claim."""

    kind = "empty"

    def __init__(self, poll_interval: float) -> None:
        super().__init__(concurrency=4, poll_interval=poll_interval, lease_seconds=30)
        self.claims = 0

    async def _claim(self, limit: int) -> list[object]:
        self.claims += 1
        return []

    async def _handle(self, item: object) -> None:
        raise AssertionError("no work was ever claimed")


async def test_wait_polls_returns_after_that_many_more_claims() -> None:
    worker = EmptyWorker(poll_interval=0.02)
    worker.start()
    try:
        await worker.wait_polls(1, timeout=10)
        before = worker.claims
        await worker.wait_polls(3, timeout=10)
        assert worker.claims >= before + 3
        assert worker.polls == worker.claims
    finally:
        await worker.stop()


async def test_a_wake_up_is_a_poll_too() -> None:
    # Polling only every hour: just the wake-ups make these claims.
    worker = EmptyWorker(poll_interval=3600)
    worker.start()
    try:
        await worker.wait_polls(1, timeout=10)  # the claim at start
        for _ in range(2):
            worker.wake()
            await worker.wait_polls(1, timeout=10)
        assert worker.claims == worker.polls == 3
    finally:
        await worker.stop()


async def test_without_polls_it_times_out() -> None:
    worker = EmptyWorker(poll_interval=3600)
    worker.start()
    try:
        await worker.wait_polls(1, timeout=10)
        with pytest.raises(TimeoutError):
            await worker.wait_polls(1, timeout=0.05)
    finally:
        await worker.stop()


def test_another_thread_waits_on_the_workers_loop() -> None:
    # As in the end-to-end tests: the worker runs in the server's thread, the test in its own.
    worker = EmptyWorker(poll_interval=0.02)
    ready = threading.Event()
    done = threading.Event()

    async def serve() -> None:
        worker.start()
        ready.set()
        await asyncio.to_thread(done.wait, 30)
        await worker.stop()

    server = threading.Thread(target=asyncio.run, args=(serve(),))
    server.start()
    try:
        assert ready.wait(10)
        asyncio.run(worker.wait_polls(3, timeout=10))
        assert worker.claims >= 3
    finally:
        done.set()
        server.join(10)

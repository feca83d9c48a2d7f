"""A polling loop with leases and a wake-up, shared by both workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from abc import ABC, abstractmethod

log = logging.getLogger("smsbridge.dispatch")


def worker_id(kind: str) -> str:
    """A lease owner name that tells which host and process holds a row."""
    return f"{kind}:{socket.gethostname()[:20]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class PollingWorker(ABC):
    """Claims batches of due work, runs each item concurrently, and sleeps until woken or due."""

    kind = "worker"

    def __init__(self, concurrency: int, poll_interval: float, lease_seconds: float) -> None:
        self.owner = worker_id(self.kind)
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.lease_seconds = lease_seconds
        self.last_beat = time.monotonic()
        self._wake = asyncio.Event()
        self._busy = 0
        self._min_claim = max(1, concurrency // 4)
        self._slot_freed = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._event_loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        # Finished claims, so that a caller can wait until the worker has looked at the
        # store again (tests prove "nothing more comes" this way instead of sleeping).
        self.polls = 0
        self._polled = asyncio.Condition()

    def wake(self) -> None:
        """Look for work now instead of at the next poll."""
        self._wake.set()

    @property
    def alive(self) -> bool:
        """True while the loop runs and has beaten recently."""
        return (self._task is not None and not self._task.done()
                and time.monotonic() - self.last_beat < max(30.0, 5 * self.poll_interval))

    def start(self) -> None:
        """Run the loop in the background."""
        self._event_loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._loop(), name=self.owner)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming, let in-flight items finish (up to ``grace`` seconds), then stop."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await asyncio.wait({self._task}, timeout=grace)
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=grace)

    async def wait_polls(self, n: int, timeout: float) -> None:
        """Wait, from any thread, until ``n`` more claims have finished (TimeoutError if not)."""
        loop = self._event_loop
        if loop is None:
            raise RuntimeError(f"{self.kind} worker is not running")
        if asyncio.get_running_loop() is not loop:
            await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(self.wait_polls(n, timeout), loop))
            return
        target = self.polls + n
        async with asyncio.timeout(timeout), self._polled:
            await self._polled.wait_for(lambda: self.polls >= target)

    async def _count_poll(self) -> None:
        async with self._polled:
            self.polls += 1
            self._polled.notify_all()

    async def _loop(self) -> None:
        while not self._stopping:
            self.last_beat = time.monotonic()
            free = self.concurrency - self._busy
            # Claim in chunks: a claim is a committed write, and claiming each slot as it
            # frees would cost one fsync per message.
            if free <= 0 or (free < self._min_claim and self._busy > 0):
                self._slot_freed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._slot_freed.wait(), self.poll_interval)
                continue
            # Cleared before claiming, so a wake-up that lands during the claim is not lost.
            self._wake.clear()
            try:
                items = await self._claim(free)
            except Exception:
                log.exception("%s: claiming work failed; retrying", self.kind)
                await asyncio.sleep(self.poll_interval)
                continue
            # Counted per claim, whatever ended the wait before it (a wake-up or the timer).
            await self._count_poll()
            for item in items:
                self._busy += 1
                task = asyncio.create_task(self._guarded(item))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
            if len(items) == free:
                continue  # a full batch: more may be due right now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    async def _guarded(self, item: object) -> None:
        try:
            await self._handle(item)
        except Exception:
            log.exception("%s: handling an item failed; it will be retried after its lease",
                          self.kind)
        finally:
            self._busy -= 1
            self._slot_freed.set()

    @abstractmethod
    async def _claim(self, limit: int) -> list[object]:
        """Lease up to ``limit`` items."""

    @abstractmethod
    async def _handle(self, item: object) -> None:
        """Work one item and record the outcome."""

"""A polling loop with leases and a wake-up, shared by both workers."""

from __future__ import annotations

import asyncio
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
        self._slots = asyncio.Semaphore(concurrency)
        self._inflight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

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
        self._task = asyncio.create_task(self._loop(), name=self.owner)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming, let in-flight items finish (up to ``grace`` seconds), then stop."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await asyncio.wait({self._task}, timeout=grace)
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=grace)

    async def _loop(self) -> None:
        while not self._stopping:
            self.last_beat = time.monotonic()
            free = self.concurrency - len(self._inflight)
            claimed = 0
            if free > 0:
                try:
                    claimed = await self._claim_and_start(free)
                except Exception:  # noqa: BLE001 - a database blip must not kill the worker
                    log.exception("%s: claiming work failed; retrying", self.kind)
                    await asyncio.sleep(self.poll_interval)
                    continue
            if claimed and claimed == free:
                # Full batch: more may be waiting; go again as soon as a slot frees up.
                await self._slots.acquire()
                self._slots.release()
                continue
            if claimed:
                continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)
            except TimeoutError:
                pass

    async def _claim_and_start(self, free: int) -> int:
        items = await self._claim(free)
        for item in items:
            await self._slots.acquire()
            task = asyncio.create_task(self._guarded(item))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        return len(items)

    async def _guarded(self, item: object) -> None:
        try:
            await self._handle(item)
        except Exception:  # noqa: BLE001 - the lease expires and another try picks it up
            log.exception("%s: handling an item failed; it will be retried after its lease",
                          self.kind)
        finally:
            self._slots.release()

    @abstractmethod
    async def _claim(self, limit: int) -> list[object]:
        """Lease up to ``limit`` items."""

    @abstractmethod
    async def _handle(self, item: object) -> None:
        """Work one item and record the outcome."""

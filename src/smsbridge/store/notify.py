"""PostgreSQL LISTEN/NOTIFY wake-ups, so a worker in another process starts at once."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

OUTBOX_CHANNEL = "smsbridge_outbox"
WEBHOOKS_CHANNEL = "smsbridge_webhooks"


class NotifyListener:
    """Listens on channels in a thread and calls each channel's callback in the event loop.

    A missed notification only costs latency: workers still poll.
    """

    def __init__(self, dsn: str, callbacks: Mapping[str, Callable[[], None]]) -> None:
        self._dsn = dsn
        self._callbacks = dict(callbacks)
        self._loop = asyncio.get_running_loop()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="smsbridge-listen", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop listening (within about a second)."""
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        # Imported here: psycopg costs a read-only CLI command on SQLite a tenth of a second.
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True) as conn:
                    for channel in self._callbacks:
                        conn.execute(f"LISTEN {channel}")
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            callback = self._callbacks.get(note.channel)
                            if callback is not None:
                                self._loop.call_soon_threadsafe(callback)
            except psycopg.Error as exc:
                log.warning("LISTEN connection lost (%s); workers fall back to polling", exc)
                self._stop.wait(2.0)

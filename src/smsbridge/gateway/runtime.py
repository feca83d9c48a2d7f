"""Wiring: store, HTTP client, gateway service and workers, started and stopped together."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp

from ..dispatch.mqtt import MqttLink
from ..dispatch.outbox import OutboxWorker
from ..dispatch.webhooks import WebhookDeliveryWorker, WebhookTarget
from ..store.sql import SqlStore
from .config import Settings
from .mqtt import build_link
from .service import Gateway

log = logging.getLogger("smsbridge")

# How soon a running server honours `smsbridge carriers rotate-token` from another process.
TOKEN_REFRESH_SECONDS = 5.0
# Time past a send's worst case for the worker to record its result before the lease ends.
LEASE_MARGIN_SECONDS = 5.0


class Runtime:
    """Everything a running gateway holds; ``serve`` and ``worker`` both use it."""

    def __init__(self, settings: Settings, *, run_workers: bool = True, migrate: bool = True
                 ) -> None:
        self.settings = settings
        self.run_workers = run_workers
        self.migrate = migrate
        self.store = SqlStore(settings.server.database)
        self.http: aiohttp.ClientSession | None = None
        self.gateway: Gateway | None = None
        self.outbox: OutboxWorker | None = None
        self.webhooks: WebhookDeliveryWorker | None = None
        self.mqtt: MqttLink | None = None
        self._token_refresh: asyncio.Task[None] | None = None
        self.new_tokens: set[str] = set()

    async def start(self) -> Gateway:
        """Migrate, open everything, start the workers; returns the gateway service."""
        if self.migrate:
            await asyncio.to_thread(self.store.migrate)
        await self.store.start()
        # One pooled client for every carrier and webhook call; keep-alive matters for throughput.
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=200, limit_per_host=100),
            timeout=aiohttp.ClientTimeout(total=30),
        )
        gateway = Gateway(self.settings, self.store, self.http)
        before = await self.store.read_tokens()
        await gateway.load_tokens()
        # A token made now means a URL the carrier has never been given: `serve` shows it.
        self.new_tokens = {name for name, token in gateway.tokens.items()
                           if before.get(name) != token}
        self.gateway = gateway
        self._token_refresh = asyncio.create_task(self._refresh_tokens(gateway))
        if self.run_workers:
            w = self.settings.worker
            # A lease shorter than a send can take would let a second worker take over
            # a send that is still waiting for its answer, and send it twice.
            send_seconds = max((c.provider.max_send_seconds()
                                for c in self.settings.connections.values()), default=0.0)
            hook_timeout = max((h.timeout_seconds for h in self.settings.webhooks), default=0.0)
            if self.settings.mqtt is not None:
                # The delivery worker publishes with the broker's connection; it does not
                # wait for it (healthz stays up through a broker outage: the outbox holds on).
                self.mqtt = build_link(self.settings.mqtt, gateway,
                                       reconnect_max=min(w.backoff_max, 30.0))
                hook_timeout = max(hook_timeout, self.mqtt.publish_timeout)
            outbox_lease = max(w.lease_seconds, send_seconds + LEASE_MARGIN_SECONDS)
            hooks_lease = max(w.lease_seconds, hook_timeout + LEASE_MARGIN_SECONDS)
            self.outbox = OutboxWorker(
                self.store,
                {name: c.provider for name, c in self.settings.connections.items()},
                self.http, gateway.events, gateway.status_url,
                answer_url_for=gateway.answer_url, concurrency=w.concurrency,
                poll_interval=w.poll_interval, lease_seconds=outbox_lease,
                max_attempts=w.max_attempts,
                backoff_base=w.backoff_base, backoff_max=w.backoff_max,
            )
            self.webhooks = WebhookDeliveryWorker(
                self.store,
                {h.url: WebhookTarget(h.url, h.secret.get_secret_value(), h.max_attempts,
                                      h.timeout_seconds) for h in self.settings.webhooks},
                self.http, poll_interval=w.poll_interval, lease_seconds=hooks_lease,
                backoff_base=w.backoff_base, backoff_max=w.backoff_max, mqtt=self.mqtt,
            )
            outbox, hooks = self.outbox, self.webhooks

            def wake() -> None:
                outbox.wake()
                hooks.wake()

            gateway.on_queued = wake
            self.store.listen(outbox.wake, hooks.wake)
            self.outbox.start()
            self.webhooks.start()
            if self.mqtt is not None:
                async def publish_backlog() -> None:
                    hooks.wake()

                self.mqtt.add_on_connect(publish_backlog)
                self.mqtt.start()
        return gateway

    async def ensure_first_api_key(self, name: str = "default") -> str | None:
        """On a store with no API key, create one and return it (it is shown once)."""
        assert self.gateway is not None
        if await self.store.count_api_keys() == 0:
            _, key = await self.gateway.create_api_key(name)
            return key
        return None

    def workers_alive(self) -> bool:
        """True when every worker this runtime started is running."""
        if not self.run_workers:
            return True
        return all(w is not None and w.alive for w in (self.outbox, self.webhooks))

    async def _refresh_tokens(self, gateway: Gateway) -> None:
        while True:
            await asyncio.sleep(TOKEN_REFRESH_SECONDS)
            try:
                await gateway.refresh_tokens()
            except Exception:
                log.warning("could not re-read webhook tokens; keeping the current ones",
                            exc_info=True)

    async def stop(self) -> None:
        """Stop the workers, then close the client and the store."""
        if self._token_refresh is not None:
            self._token_refresh.cancel()
        for worker in (self.outbox, self.webhooks):
            if worker is not None:
                await worker.stop()
        if self.mqtt is not None:  # after the worker that publishes through it
            await self.mqtt.stop()
        if self.http is not None:
            await self.http.close()
        await self.store.close()

    async def __aenter__(self) -> Gateway:
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

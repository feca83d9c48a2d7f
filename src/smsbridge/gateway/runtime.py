"""Wiring: store, HTTP client, gateway service and workers, started and stopped together."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import aiohttp

from ..core.errors import SmsBridgeError, StoreUnavailable
from ..dispatch.mqtt import MqttLink
from ..dispatch.outbox import OutboxWorker
from ..dispatch.webhooks import WebhookDeliveryWorker
from ..store.base import Store
from .config import Settings
from .mqtt import build_link
from .secretbox import CHECK_META_KEY, ENV_SECRET_KEY, SecretBox, open_secret_box
from .service import Gateway

log = logging.getLogger("smsbridge")

# How soon a running server honours a connection or webhook added, changed or removed, or a
# token rotated, by another process.
REFRESH_SECONDS = 2.0
# Time past a send's worst case for the worker to record its result before the lease ends.
LEASE_MARGIN_SECONDS = 5.0


class Runtime:
    """Everything a running gateway holds; ``serve`` and ``worker`` both use it."""

    def __init__(self, settings: Settings, store: Store, *, run_workers: bool = True,
                 migrate: bool = True, create_secret_key: bool | None = None,
                 refresh_seconds: float = REFRESH_SECONDS) -> None:
        self.settings = settings
        self.run_workers = run_workers
        self.migrate = migrate
        # Serving makes the key file on first start; a read-only command does without a key
        # until the store holds something encrypted.
        self.create_secret_key = migrate if create_secret_key is None else create_secret_key
        self.refresh_seconds = refresh_seconds
        self.store = store
        self.box: SecretBox | None = None
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
        self.box = await self._secret_box()
        gateway = Gateway(self.settings, self.store, self.http, self.box)
        before = await self.store.read_tokens()
        try:
            await gateway.load()
        except StoreUnavailable:
            if self.migrate:
                raise
            # A read-only database (a copy, say) is still read: without new tokens.
            await gateway.load(make_tokens=False)
        if self.box is None and self.create_secret_key:
            # Made only now that the store took its first writes: a start that fails on
            # the store leaves no key file behind.
            self.box = await open_secret_box(self.store, self.settings.secret_key_path)
            gateway.use_box(self.box)
        # A token made now means a URL the carrier has never been given: `serve` shows it.
        self.new_tokens = {name for name, token in gateway.tokens.items()
                           if before.get(name) != token}
        self.gateway = gateway
        self._token_refresh = asyncio.create_task(self._refresh(gateway))
        if self.run_workers:
            w = self.settings.worker
            # A lease shorter than a send can take would let a second worker take over
            # a send that is still waiting for its answer, and send it twice.
            send_seconds = self._longest_send(gateway)
            hook_timeout = max((h.timeout_seconds for h in self.settings.webhooks), default=0.0)
            if self.settings.mqtt is not None:
                # The delivery worker publishes with the broker's connection; it does not
                # wait for it (healthz stays up through a broker outage: the outbox holds on).
                self.mqtt = build_link(self.settings.mqtt, gateway,
                                       reconnect_max=min(w.backoff_max, 30.0))
                hook_timeout = max(hook_timeout, self.mqtt.publish_timeout)
            outbox_lease = max(w.lease_seconds, send_seconds + LEASE_MARGIN_SECONDS)
            outbox_lease_floor = w.lease_seconds
            hooks_lease = max(w.lease_seconds, hook_timeout + LEASE_MARGIN_SECONDS)
            self.outbox = OutboxWorker(
                self.store,
                gateway.registry.providers,
                self.http, gateway.events, gateway.status_url,
                answer_url_for=gateway.answer_url, concurrency=w.concurrency,
                poll_interval=w.poll_interval, lease_seconds=outbox_lease,
                max_attempts=w.max_attempts,
                backoff_base=w.backoff_base, backoff_max=w.backoff_max,
                reload_connections=gateway.reload_connections,
            )
            outbox_worker = self.outbox

            def resize_lease() -> None:
                # A connection added at run time may take longer to send than those at start.
                outbox_worker.lease_seconds = max(
                    outbox_lease_floor, self._longest_send(gateway) + LEASE_MARGIN_SECONDS)

            gateway.on_registry_loaded.append(resize_lease)
            self.webhooks = WebhookDeliveryWorker(
                self.store, gateway.webhook_targets,
                self.http, poll_interval=w.poll_interval, lease_seconds=hooks_lease,
                backoff_base=w.backoff_base, backoff_max=w.backoff_max, mqtt=self.mqtt,
                on_answer=gateway.handle_twilio_answer,
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

    @staticmethod
    def _longest_send(gateway: Gateway) -> float:
        """The longest a send through any connection may take (0 when none can be built)."""
        longest = 0.0
        for conn in gateway.registry.connections.values():
            try:
                longest = max(longest, conn.provider.max_send_seconds())
            except SmsBridgeError:  # a stored connection this process cannot decrypt
                continue
        return longest

    async def _secret_box(self) -> SecretBox | None:
        """The key there is, checked against the store; None when there is none yet.

        A missing key stops a start (serve, worker, a command storing secrets) once the
        store holds secrets; a read-only command goes on without one, decrypting nothing.
        A key that is not the store's always stops it.
        """
        path = self.settings.secret_key_path
        have_key = os.environ.get(ENV_SECRET_KEY) is not None or path.exists()
        if not have_key:
            check = await self.store.get_meta(CHECK_META_KEY)
            if check is None or not self.create_secret_key:
                return None
        return await open_secret_box(self.store, path, create=False)

    async def ensure_first_api_key(self, name: str = "default") -> str | None:
        """On a store with no API key, create the default account's admin key and return it
        (it is shown once)."""
        assert self.gateway is not None
        if await self.store.count_api_keys() == 0:
            _, key = await self.gateway.create_api_key(name, admin=True)
            return key
        return None

    def workers_alive(self) -> bool:
        """True when every worker this runtime started is running."""
        if not self.run_workers:
            return True
        return all(w is not None and w.alive for w in (self.outbox, self.webhooks))

    async def _refresh(self, gateway: Gateway) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            try:
                await gateway.refresh()
            except Exception:
                log.warning("could not re-read connections, webhooks and tokens; keeping the "
                            "current ones", exc_info=True)

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

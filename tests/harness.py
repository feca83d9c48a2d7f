"""The gateway under test: the real app, store and workers served by uvicorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp

from smsbridge.api import create_app
from smsbridge.api.server import uvicorn_options
from smsbridge.gateway.admin import open_gateway, provision, store_for
from smsbridge.gateway.config import Settings
from smsbridge.gateway.runtime import Runtime
from smsbridge.testing.server import RunningServer, free_port, start_server

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync or async test code (in its own thread)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@dataclass
class GatewayHarness:
    """A running gateway: its URL, an API key, its webhook tokens and its runtime."""

    settings: Settings
    server: RunningServer
    runtime: Runtime
    api_key: str
    tokens: dict[str, str]

    @classmethod
    def start(cls, settings: Settings, *, port: int | None = None, run_workers: bool = True,
              **server_options: Any) -> GatewayHarness:
        """Provision (migrate, tokens, a first API key) and serve ``settings``.

        ``server_options`` override the gateway's uvicorn options (``uvicorn_options()``).
        """
        port = port or free_port()
        settings.config.server = settings.server.model_copy(
            update={"listen": f"127.0.0.1:{port}"})
        tokens, key = run_sync(provision(settings, "test"))
        if key is None:
            async def make() -> str:
                async with open_gateway(settings) as gw:
                    return (await gw.create_api_key("test"))[1]
            key = run_sync(make())
        runtime = Runtime(settings, store_for(settings), run_workers=run_workers)
        server = start_server(create_app(runtime), port,
                              **{**uvicorn_options(), **server_options})
        return cls(settings, server, runtime, key, tokens)

    @property
    def url(self) -> str:
        """The local base URL (what tests call)."""
        return self.server.url

    @property
    def auth(self) -> dict[str, str]:
        """Headers that carry the API key."""
        return {"Authorization": f"Bearer {self.api_key}"}

    def inbound_path(self, connection: str) -> str:
        """The path of a connection's inbound webhook."""
        return f"/v1/carriers/{connection}/{self.tokens[connection]}/inbound"

    def status_path(self, connection: str) -> str:
        """The path of a connection's status webhook."""
        return f"/v1/carriers/{connection}/{self.tokens[connection]}/status"

    def stop(self) -> None:
        """Shut the server (and with it the workers and store) down."""
        self.server.stop()

    async def send(self, http: aiohttp.ClientSession, body: dict[str, Any],
                   headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        """POST /v1/messages; returns the status and the JSON body."""
        async with http.post(f"{self.url}/v1/messages", json=body,
                             headers={**self.auth, **(headers or {})}) as resp:
            return resp.status, await resp.json(content_type=None)

    async def get_message(self, http: aiohttp.ClientSession, message_id: str) -> dict[str, Any]:
        """GET /v1/messages/{id}."""
        async with http.get(f"{self.url}/v1/messages/{message_id}", headers=self.auth) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()  # type: ignore[no-any-return]

    async def list_messages(self, http: aiohttp.ClientSession, **params: Any
                            ) -> dict[str, Any]:
        """GET /v1/messages with query parameters."""
        async with http.get(f"{self.url}/v1/messages", params=params, headers=self.auth) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()  # type: ignore[no-any-return]

    async def wait_status(self, http: aiohttp.ClientSession, message_id: str,
                          statuses: set[str], timeout: float = 10.0) -> dict[str, Any]:
        """Poll a message until its status is one of ``statuses``."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            message = await self.get_message(http, message_id)
            if message["status"] in statuses:
                return message
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{message_id} stayed {message['status']}, wanted {statuses}")
            await asyncio.sleep(0.05)

    async def wait_outbox_polls(self, polls: int = 2, *, after: float | None = None,
                                timeout: float = 10.0) -> None:
        """Wait for ``polls`` outbox claims begun after now (or after epoch time ``after``)."""
        outbox = self.runtime.outbox
        assert outbox is not None, "this gateway runs no workers"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout

        def left() -> float:
            return max(0.0, deadline - loop.time())

        try:
            # Time passes on the worker's side in polls: let them go by until `after`.
            while after is not None and time.time() <= after:
                await outbox.wait_polls(1, left())
            # The claim under way may have begun before: one more makes ``polls`` whole ones.
            await outbox.wait_polls(polls + 1, left())
        except TimeoutError:
            raise AssertionError(f"the outbox worker did not poll {polls} times within "
                                 f"{timeout}s ({outbox.polls} polls so far)") from None

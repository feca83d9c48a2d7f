"""What the voice-call end-to-end tests share: place a call over the API, wait for its end.

Carriers' call tests build on these as the message tests build on ``tests.e2e.carriers``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
from standardwebhooks import Webhook

from tests.conftest import eventually
from tests.e2e.carriers import gateway_starter
from tests.harness import GatewayHarness
from tests.receiver import WebhookReceiver

CALL_EVENTS = ["call.queued", "call.completed", "call.failed"]
# The app webhook's signing secret in the call tests.
APP_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"


async def post_call(gw: GatewayHarness, http: aiohttp.ClientSession, body: dict[str, Any],
                    headers: dict[str, str] | None = None
                    ) -> tuple[int, Mapping[str, str], dict[str, Any]]:
    """POST /v1/calls: status, headers (any case) and JSON body."""
    async with http.post(f"{gw.url}/v1/calls", json=body,
                         headers={**gw.auth, **(headers or {})}) as resp:
        return resp.status, resp.headers.copy(), await resp.json(content_type=None)


async def queue_call(gw: GatewayHarness, http: aiohttp.ClientSession, body: dict[str, Any]
                     ) -> dict[str, Any]:
    """POST /v1/calls, which must answer 202; the queued call."""
    status, _, call = await post_call(gw, http, body)
    assert status == 202, call
    return call


async def get_json(gw: GatewayHarness, http: aiohttp.ClientSession, path: str
                   ) -> tuple[int, dict[str, Any]]:
    """GET ``path`` with the API key: status and JSON body."""
    async with http.get(f"{gw.url}{path}", headers=gw.auth) as resp:
        return resp.status, await resp.json(content_type=None)


async def wait_call(gw: GatewayHarness, http: aiohttp.ClientSession, call_id: str,
                    statuses: set[str]) -> dict[str, Any]:
    """Poll GET /v1/calls/{id} until its status is one of ``statuses``."""

    async def current() -> dict[str, Any] | None:
        status, call = await get_json(gw, http, f"/v1/calls/{call_id}")
        assert status == 200, call
        return call if call["status"] in statuses else None

    return await eventually(current)  # type: ignore[no-any-return]


async def stored(gw: GatewayHarness, http: aiohttp.ClientSession
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(calls, messages) as GET /v1/calls and GET /v1/messages list them."""
    _, calls = await get_json(gw, http, "/v1/calls")
    _, messages = await get_json(gw, http, "/v1/messages")
    return calls["data"], messages["data"]


def signed_events(receiver: WebhookReceiver, secret: str = APP_SECRET) -> list[dict[str, Any]]:
    """Every event the app received, each checked against its signature first."""
    for hit in receiver.received:
        Webhook(secret).verify(hit.body, hit.headers)
    return [json.loads(hit.body) for hit in receiver.received]


def webhook_to(receiver_url: str, secret: str = APP_SECRET, events: list[str] = CALL_EVENTS
               ) -> dict[str, Any]:
    """``make_settings`` options that send ``events`` to an app at ``receiver_url``."""
    return {"webhooks": [{"url": receiver_url, "secret": secret, "events": events}]}


def call_gateway_starter(start_gateway: Callable[..., GatewayHarness], default_database: str,
                         carrier_connection: dict[str, Any], app_url: str
                         ) -> Callable[..., GatewayHarness]:
    """``start(database=None, **options)``: a gateway with that one connection whose call
    events go, signed with APP_SECRET, to the app at ``app_url``."""
    start = gateway_starter(start_gateway, default_database, carrier_connection)

    def started(database: str | None = None, **options: Any) -> GatewayHarness:
        return start(database, **webhook_to(app_url), **options)

    return started


async def event_types(receiver: WebhookReceiver, count: int, secret: str = APP_SECRET
                      ) -> list[str]:
    """The types of the first ``count`` signed events the app received, once they came."""
    await eventually(lambda: len(receiver.received) >= count)
    return [event["type"] for event in signed_events(receiver, secret)]

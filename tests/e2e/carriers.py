"""What every carrier's end-to-end tests set up the same way.

A carrier's test file keeps its own fixtures (``fake``, ``fake_server``, ``<carrier>_gateway``)
and builds them from these: serve the fake, start a gateway whose one connection points at
it, queue a message and wait for a status, list what the gateway stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

import aiohttp
from starlette.types import ASGIApp

from smsbridge.testing.server import RunningServer, start_server
from tests.conftest import make_settings
from tests.harness import GatewayHarness

OUR_NUMBER = "+15145550100"  # the account's number at the carrier
PEER = "+14385550123"  # the other phone


def serve_fake(app: ASGIApp) -> Iterator[RunningServer]:
    """Serve a fake carrier's ``app`` on 127.0.0.1 for one test (``yield from`` it)."""
    server = start_server(app)
    try:
        yield server
    finally:
        server.stop()


def connection(carrier: str, settings: dict[str, Any],
               numbers: Sequence[str] = (OUR_NUMBER,)) -> dict[str, Any]:
    """A [[connections]] table named after ``carrier``, holding ``numbers``."""
    return {"name": carrier, "carrier": carrier, "numbers": list(numbers), "settings": settings}


def gateway_starter(start_gateway: Callable[..., GatewayHarness], default_database: str,
                    carrier_connection: dict[str, Any]) -> Callable[..., GatewayHarness]:
    """``start(database=None, **options)``: a gateway with that one connection.

    ``options`` go to ``make_settings`` (``public_url``, ``worker``, ``webhooks``).
    """

    def start(database: str | None = None, **options: Any) -> GatewayHarness:
        return start_gateway(make_settings(database or default_database, [carrier_connection],
                                           **options))

    return start


async def queue(gw: GatewayHarness, http: aiohttp.ClientSession,
                body: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/messages, which must answer 202; the queued message."""
    status, queued = await gw.send(http, body)
    assert status == 202, queued
    return queued


async def send_and_wait(gw: GatewayHarness, http: aiohttp.ClientSession, body: dict[str, Any],
                        statuses: set[str]) -> dict[str, Any]:
    """Queue a message (202) and wait until it reaches one of ``statuses``."""
    queued = await queue(gw, http, body)
    return await gw.wait_status(http, queued["id"], statuses)


async def inbound(gw: GatewayHarness, http: aiohttp.ClientSession) -> list[dict[str, Any]]:
    """Every inbound message, as GET /v1/messages?direction=inbound shows it."""
    return list((await gw.list_messages(http, direction="inbound"))["data"])


async def everything(gw: GatewayHarness, http: aiohttp.ClientSession) -> list[dict[str, Any]]:
    """Every stored message, either direction."""
    return list((await gw.list_messages(http))["data"])


def assert_failed_at_once(failed: dict[str, Any]) -> None:
    """The message failed on its first attempt (a refusal the worker must not retry)."""
    assert failed["status"] == "failed"
    assert failed["attempts"] == 1


async def assert_never_retried(gw: GatewayHarness, fake: Any, failed: dict[str, Any]) -> None:
    """One send, none accepted, even once the worker has polled past any retry of ``failed``."""
    failed_at = datetime.fromisoformat(failed["updated_at"]).timestamp()
    # No retry is ever scheduled further out than the worker's longest backoff.
    await gw.wait_outbox_polls(2, after=failed_at + gw.settings.worker.backoff_max)
    assert len(fake.requests) == 1
    assert fake.messages == []


def sent_on_second_try(sent: dict[str, Any], fake: Any) -> Any:
    """The message was sent on its second attempt; the one message the fake accepted."""
    assert sent["status"] == "sent", sent["error"]
    assert sent["attempts"] == 2
    assert len(fake.requests) == 2
    (carrier_msg,) = fake.messages
    return carrier_msg


async def assert_delivered_by_receipts(gw: GatewayHarness, fake: Any,
                                       http: aiohttp.ClientSession, sent: dict[str, Any]) -> None:
    """The fake's two receipts are accepted (200 each) and the message ends 'delivered'."""
    answers = await fake.deliver_all()
    assert [status for status, _, _ in answers] == [200, 200]
    delivered = await gw.wait_status(http, sent["id"], {"delivered", "failed"})
    assert delivered["status"] == "delivered"
    assert delivered["error"] is None


async def assert_stays_sent_without_receipts(gw: GatewayHarness, http: aiohttp.ClientSession,
                                             connection_name: str, sent: dict[str, Any],
                                             receipt: dict[str, Any]) -> None:
    """A carrier that sends no receipts: no status URL is shown, a receipt-like POST at the
    status path is refused (400), and the message stays ``sent``."""
    async with http.get(f"{gw.url}/v1/carriers", headers=gw.auth) as resp:
        rows = {row["name"]: row for row in (await resp.json())["data"]}
    row = rows[connection_name]
    assert row["status_url"] is None and row["inbound_url"] in row["setup"]
    async with http.post(f"{gw.url}{gw.status_path(connection_name)}", json=receipt) as resp:
        assert resp.status == 400
    assert (await gw.get_message(http, sent["id"]))["status"] == "sent"

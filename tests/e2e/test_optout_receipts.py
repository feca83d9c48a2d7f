"""A carrier that reports an opt-out only in a later receipt still puts the number on the list.

Bandwidth answers the send 202 and says "destination rejected due to user opt-out" (4775) in
its message-failed callback; the gateway then refuses the next send to that number.
"""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest

from smsbridge.testing.fake_bandwidth import FakeBandwidth
from smsbridge.testing.server import RunningServer
from tests.e2e.carriers import OUR_NUMBER, PEER, connection, gateway_starter, send_and_wait
from tests.harness import GatewayHarness


@pytest.fixture
def fake() -> FakeBandwidth:
    """The fake Bandwidth account."""
    return FakeBandwidth()


@pytest.fixture
def bandwidth_gateway(sqlite_url: str, start_gateway: Callable[..., GatewayHarness],
                      fake_server: RunningServer, fake: FakeBandwidth
                      ) -> Callable[..., GatewayHarness]:
    """A gateway with one Bandwidth connection at the fake."""
    return gateway_starter(start_gateway, sqlite_url, connection("bandwidth", {
        "base_url": fake_server.url, "account_id": fake.account_id,
        "application_id": fake.application_id, "username": fake.username,
        "password": fake.password, "callback_username": fake.callback_username,
        "callback_password": fake.callback_password}))


async def optouts(gw: GatewayHarness, http: aiohttp.ClientSession) -> list[tuple[str, str, str]]:
    """(from, to, source) of each listed pair, as GET /v1/optouts shows them."""
    async with http.get(f"{gw.url}/v1/optouts", headers=gw.auth) as resp:
        assert resp.status == 200
        rows = (await resp.json())["data"]
    return [(row["from"], row["to"], row["source"]) for row in rows]


@pytest.mark.parametrize(("error_code", "listed"), [(4775, True), (4720, False)])
async def test_an_opt_out_receipt_lists_the_recipient_and_refuses_the_next_send(
        bandwidth_gateway: Callable[..., GatewayHarness], fake: FakeBandwidth,
        http: aiohttp.ClientSession, error_code: int, listed: bool) -> None:
    gw = bandwidth_gateway()
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "promo"},
                               {"sent", "failed"})
    assert sent["status"] == "sent", sent["error"]
    status, _, _ = await fake.fire_receipt(f"{gw.url}{gw.status_path('bandwidth')}",
                                           sent["carrier_message_id"], "message-failed",
                                           error_code=error_code, description="rejected")
    assert status == 200
    failed = await gw.wait_status(http, sent["id"], {"failed"})
    assert failed["error"]["code"] == str(error_code)

    # Only the opt-out code lists the number; another failure (4720: invalid) does not.
    assert await optouts(gw, http) == ([(OUR_NUMBER, PEER, "carrier")] if listed else [])
    status, body = await gw.send(http, {"from": OUR_NUMBER, "to": PEER, "text": "again"})
    if listed:
        assert status == 422 and "opted-out" in body["type"], body
        assert len(fake.messages) == 1  # the refused send never reached Bandwidth
    else:
        assert status == 202, body

"""VoIP Number end to end: the real app, worker and store against the fake VoIP Number over HTTP.

Sends go POST /v1/messages -> outbox -> worker -> the fake's send API; inbound messages come
from the fake POSTing VoIP Number's JSON webhook, with its ``Host: api.voipnumber.net``
header, at the URL the gateway hands out. VoIP Number signs nothing and sends no delivery
receipts: the URL token is the only guard, and a sent message stays ``sent``.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import aiohttp
import pytest

from smsbridge.testing.fake_voipnumber import OTHER_ACCOUNTS_NUMBER, FakeVoipNumber
from smsbridge.testing.server import RunningServer, start_server
from tests.e2e.carriers import (
    OUR_NUMBER,
    PEER,
    assert_failed_at_once,
    assert_never_retried,
    assert_stays_sent_without_receipts,
    connection,
    everything,
    gateway_starter,
    inbound,
    send_and_wait,
    sent_on_second_try,
)
from tests.harness import GatewayHarness


@pytest.fixture
def fake() -> FakeVoipNumber:
    """The fake carrier's state and knobs."""
    return FakeVoipNumber()


def settings(fake: FakeVoipNumber, server: RunningServer, **overrides: str) -> dict[str, str]:
    """The connection's settings pointing at ``server``."""
    return {"base_url": server.url, "account_id": fake.account_id,
            "api_token": fake.api_token, **overrides}


@pytest.fixture
def voipnumber_gateway(sqlite_url: str, start_gateway: Callable[..., GatewayHarness],
                       fake_server: RunningServer, fake: FakeVoipNumber
                       ) -> Callable[..., GatewayHarness]:
    """Start a gateway (SQLite unless told) with one VoIP Number connection at the fake."""
    return gateway_starter(start_gateway, sqlite_url,
                           connection("voipnumber", settings(fake, fake_server)))


# ------------------------------------------------------------------------ sending


async def send_sms_that_stays_sent(gw: GatewayHarness, fake: FakeVoipNumber,
                                   http: aiohttp.ClientSession) -> None:
    """Send one SMS, check what VoIP Number got, and see it stay 'sent' (no receipts)."""
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": "438 555 0123",
                                          "text": "Porch motion at 02:14"}, {"sent", "failed"})
    assert sent["status"] == "sent", sent["error"]
    assert sent["attempts"] == 1
    (carrier_msg,) = fake.messages
    assert sent["carrier_message_id"] == carrier_msg.id
    assert (carrier_msg.from_, carrier_msg.to, carrier_msg.body) == (
        OUR_NUMBER, PEER, "Porch motion at 02:14")
    (request,) = fake.requests
    assert request.auth_ok and request.path == "/sms/send"
    assert request.body == {"accountId": fake.account_id, "apiToken": fake.api_token,
                            "from": OUR_NUMBER, "to": PEER, "body": "Porch motion at 02:14"}
    await assert_stays_sent_without_receipts(gw, http, "voipnumber", sent,
                                             {"mdr_id": carrier_msg.id, "status": "delivered"})


async def test_send_sms_is_sent_and_stays_sent(voipnumber_gateway, fake: FakeVoipNumber,
                                               http: aiohttp.ClientSession) -> None:
    await send_sms_that_stays_sent(voipnumber_gateway(), fake, http)


async def test_send_on_postgresql(pg_url: str, voipnumber_gateway, fake: FakeVoipNumber,
                                  http: aiohttp.ClientSession) -> None:
    await send_sms_that_stays_sent(voipnumber_gateway(pg_url), fake, http)


async def test_setup_hint_points_at_the_sms_webhook(voipnumber_gateway,
                                                    http: aiohttp.ClientSession) -> None:
    gw = voipnumber_gateway()
    async with http.get(f"{gw.url}/v1/carriers", headers=gw.auth) as resp:
        (row,) = (await resp.json())["data"]
    assert row["inbound_url"] == f"{gw.url}{gw.inbound_path('voipnumber')}"
    assert row["inbound_url"] in row["setup"] and "SMS Webhook" in row["setup"]


async def test_a_configured_send_path_is_used(
        start_gateway: Callable[..., GatewayHarness], sqlite_url: str,
        http: aiohttp.ClientSession) -> None:
    fake = FakeVoipNumber(send_path="/v1/sms/send")
    server = start_server(fake.app)
    try:
        gw = gateway_starter(start_gateway, sqlite_url, connection(
            "voipnumber", settings(fake, server, send_path="/v1/sms/send")))()
        sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "hi"},
                                   {"sent", "failed"})
    finally:
        server.stop()
    assert sent["status"] == "sent", sent["error"]
    assert [r.path for r in fake.requests] == ["/v1/sms/send"]


# ------------------------------------------------------------------------ send errors


async def test_a_number_of_another_account_fails_at_once_and_is_never_retried(
        start_gateway: Callable[..., GatewayHarness], sqlite_url: str, fake: FakeVoipNumber,
        fake_server: RunningServer, http: aiohttp.ClientSession) -> None:
    gw = gateway_starter(start_gateway, sqlite_url, connection(
        "voipnumber", settings(fake, fake_server), numbers=[OTHER_ACCOUNTS_NUMBER]))()
    failed = await send_and_wait(gw, http, {"from": OTHER_ACCOUNTS_NUMBER, "to": PEER,
                                            "text": "alarm"}, {"failed", "sent"})
    assert_failed_at_once(failed)
    assert failed["error"] == {"code": "NUMBER_OWNERSHIP",
                               "reason": "VoIP Number: Number doesn't belong to this account"}
    await assert_never_retried(gw, fake, failed)


async def test_wrong_api_token_fails_at_once(
        start_gateway: Callable[..., GatewayHarness], sqlite_url: str, fake: FakeVoipNumber,
        fake_server: RunningServer, http: aiohttp.ClientSession) -> None:
    gw = gateway_starter(start_gateway, sqlite_url, connection(
        "voipnumber", settings(fake, fake_server, api_token="not-the-token")))()
    failed = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "x"},
                                 {"failed", "sent"})
    assert_failed_at_once(failed)
    assert failed["error"]["code"] == "API_TOKEN_INVALID"
    assert "not-the-token" not in str(failed)
    await assert_never_retried(gw, fake, failed)


async def test_throttled_once_is_retried_and_sent(
        voipnumber_gateway, fake: FakeVoipNumber, http: aiohttp.ClientSession) -> None:
    gw = voipnumber_gateway()
    fake.fail_next(429, retry_after=0.2)
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "retry me"},
                               {"sent", "failed"})
    carrier_msg = sent_on_second_try(sent, fake)
    assert sent["carrier_message_id"] == carrier_msg.id


# ------------------------------------------------------------------------ receiving


async def test_inbound_sms_is_stored_and_answered_with_an_empty_200(
        voipnumber_gateway, fake: FakeVoipNumber, http: aiohttp.ClientSession) -> None:
    gw = voipnumber_gateway()
    mdr_id = "7e2d9a10-43c5-4b8e-a1f6-93d0c5e7b824"
    status, _, body = await fake.fire_inbound(f"{gw.url}{gw.inbound_path('voipnumber')}",
                                              from_=PEER, to=OUR_NUMBER, body="ARM SV",
                                              mdr_id=mdr_id)
    assert (status, body) == (200, b"")
    (message,) = await inbound(gw, http)
    assert (message["from"], message["to"], message["text"]) == (PEER, OUR_NUMBER, "ARM SV")
    assert message["status"] == "received" and message["connection"] == "voipnumber"
    assert message["carrier_message_id"] == mdr_id


async def test_inbound_mms_keeps_its_text(voipnumber_gateway, fake: FakeVoipNumber,
                                          http: aiohttp.ClientSession) -> None:
    gw = voipnumber_gateway()
    status, _, _ = await fake.fire_inbound(f"{gw.url}{gw.inbound_path('voipnumber')}",
                                           from_=PEER, to=OUR_NUMBER, body="Front door",
                                           kind="mms")
    assert status == 200
    (message,) = await inbound(gw, http)
    assert (message["text"], message["media"]) == ("Front door", [])


async def test_duplicate_inbound_is_stored_once_and_answered_twice(
        voipnumber_gateway, fake: FakeVoipNumber, http: aiohttp.ClientSession) -> None:
    gw = voipnumber_gateway()
    url = f"{gw.url}{gw.inbound_path('voipnumber')}"
    mdr_id = "da84a7b1-1a80-4e96-885e-e719d5ec909c"
    for _ in range(2):
        status, _, _ = await fake.fire_inbound(url, from_=PEER, to=OUR_NUMBER,
                                               body="DISARM JF", mdr_id=mdr_id)
        assert status == 200
    (message,) = await inbound(gw, http)
    assert message["carrier_message_id"] == mdr_id and message["text"] == "DISARM JF"


async def test_the_host_header_without_the_url_token_is_forbidden_and_nothing_stored(
        voipnumber_gateway, fake: FakeVoipNumber, http: aiohttp.ClientSession) -> None:
    gw = voipnumber_gateway()
    token = gw.tokens["voipnumber"]
    forged = f"{gw.url}{gw.inbound_path('voipnumber')}".replace(token, "A" * len(token))
    # Exactly what VoIP Number sends, Host: api.voipnumber.net included, at a wrong token.
    status, _, _ = await fake.fire_inbound(forged, from_=PEER, to=OUR_NUMBER, body="DISARM")
    assert status == 403
    assert await everything(gw, http) == []


async def test_malformed_inbound_is_a_bad_request_and_nothing_stored(
        voipnumber_gateway, fake: FakeVoipNumber, http: aiohttp.ClientSession) -> None:
    gw = voipnumber_gateway()
    payload = fake.inbound_payload(from_=PEER, to=OUR_NUMBER, body="hi")
    del payload["mdr_id"]
    status, _, body = await fake.post_webhook(f"{gw.url}{gw.inbound_path('voipnumber')}",
                                              json.dumps(payload))
    assert status == 400
    assert b"mdr_id" in body
    assert await everything(gw, http) == []

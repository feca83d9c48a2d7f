"""Simwood end to end: the real app, worker and store against the fake Simwood over HTTP.

Sends go POST /v1/messages -> outbox -> worker -> fake v3 SMS endpoint; delivery reports
and inbound SMS come from the fake POSTing Simwood's events at the URLs the gateway hands
out. Simwood signs nothing, so the URL token is the only guard; Simwood repeats a webhook
until it gets a 200 with a body, so every acknowledgement here must have one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from smsbridge.testing.fake_simwood import FakeSimwood
from smsbridge.testing.server import RunningServer
from tests.e2e.carriers import (
    assert_failed_at_once,
    assert_never_retried,
    connection,
    everything,
    gateway_starter,
    inbound,
    send_and_wait,
    sent_on_second_try,
)
from tests.harness import GatewayHarness

OURS = "+447700900123"  # the account's Simwood mobile number
PEER = "+447700900456"


@pytest.fixture
def fake() -> FakeSimwood:
    """The fake carrier's state and knobs."""
    return FakeSimwood()


def settings(fake: FakeSimwood, server: RunningServer, **changes: str) -> dict[str, str]:
    return {"base_url": server.url, "account": fake.account, "username": fake.username,
            "api_key": fake.api_key, **changes}


@pytest.fixture
def simwood_gateway(sqlite_url: str, start_gateway: Callable[..., GatewayHarness],
                    fake_server: RunningServer, fake: FakeSimwood
                    ) -> Callable[..., GatewayHarness]:
    """Start a gateway (SQLite unless told) with one Simwood connection pointed at the fake."""
    return gateway_starter(start_gateway, sqlite_url,
                           connection("simwood", settings(fake, fake_server), [OURS]))


async def send(gw: GatewayHarness, http: aiohttp.ClientSession, text: str,
               to: str = PEER) -> dict[str, Any]:
    return await send_and_wait(gw, http, {"from": OURS, "to": to, "text": text},
                               {"sent", "failed"})


# ------------------------------------------------------------------------ sending


async def send_sms_then_deliver(gw: GatewayHarness, fake: FakeSimwood,
                                http: aiohttp.ClientSession) -> None:
    """Send one SMS, check what Simwood got, then fire its reports and see 'delivered'."""
    sent = await send(gw, http, "Porch motion at 02:14")
    assert sent["status"] == "sent", sent["error"]
    assert sent["attempts"] == 1
    (carrier_msg,) = fake.messages
    assert sent["carrier_message_id"] == carrier_msg.id
    assert (carrier_msg.to, carrier_msg.from_, carrier_msg.message, carrier_msg.concat) == (
        "447700900456", "447700900123", "Porch motion at 02:14", 1)
    (request,) = fake.requests
    assert request.auth_ok and request.path == f"/v3/messaging/{fake.account}/sms"
    # The worker names the connection's status URL, the one GET /v1/carriers shows.
    async with http.get(f"{gw.url}/v1/carriers", headers=gw.auth) as resp:
        (row,) = (await resp.json())["data"]
    assert carrier_msg.report == row["status_url"] == f"{gw.url}{gw.status_path('simwood')}"
    assert row["inbound_url"] in row["setup"]

    answers = await fake.deliver_all()
    assert [(status, body != b"") for status, _, body in answers] == [(200, True)] * 3
    delivered = await gw.wait_status(http, sent["id"], {"delivered", "failed"})
    assert delivered["status"] == "delivered" and delivered["error"] is None


async def test_send_sms_is_sent_then_delivered(simwood_gateway, fake: FakeSimwood,
                                               http: aiohttp.ClientSession) -> None:
    await send_sms_then_deliver(simwood_gateway(), fake, http)


async def test_send_and_delivery_on_postgresql(pg_url: str, simwood_gateway,
                                               fake: FakeSimwood,
                                               http: aiohttp.ClientSession) -> None:
    await send_sms_then_deliver(simwood_gateway(pg_url), fake, http)


async def test_long_text_reaches_the_handset_whole(simwood_gateway, fake: FakeSimwood,
                                                   http: aiohttp.ClientSession) -> None:
    text = "Alarm: motion in the hall, the kitchen and the garage. " * 4  # 220 characters
    sent = await send(simwood_gateway(), http, text)
    assert sent["status"] == "sent", sent["error"]
    (carrier_msg,) = fake.messages
    # Without concat Simwood would stop at 160 characters.
    assert (carrier_msg.message, carrier_msg.concat, carrier_msg.parts) == (text, 2, 2)
    assert sent["segments"] == 2


async def test_rejected_report_fails_the_message_with_simwoods_reason(
        simwood_gateway, fake: FakeSimwood, http: aiohttp.ClientSession) -> None:
    gw = simwood_gateway()
    sent = await send(gw, http, "one")
    status, _, body = await fake.fire_report(f"{gw.url}{gw.status_path('simwood')}",
                                             sent["carrier_message_id"], 12)
    assert (status, body != b"") == (200, True)
    failed = await gw.wait_status(http, sent["id"], {"failed"})
    assert failed["error"] == {
        "code": "12", "reason": "Simwood report 12: rejected: not delivered and will not be"
                                " retried"}


async def test_media_is_refused_before_any_call(simwood_gateway, fake: FakeSimwood,
                                                http: aiohttp.ClientSession) -> None:
    gw = simwood_gateway()
    status, answer = await gw.send(http, {"from": OURS, "to": PEER, "text": "snapshot",
                                          "media": [{"url": "https://cdn.example.com/a.jpg"}]})
    assert status == 422, answer
    assert fake.requests == []


# ------------------------------------------------------------------------ send errors


def bar_the_recipient(fake: FakeSimwood) -> None:
    fake.barred.add("447700900456")


def allow_another_ip_only(fake: FakeSimwood) -> None:
    fake.allowed_ips = {"203.0.113.7"}


@pytest.mark.parametrize(("refuse", "code", "says"), [
    pytest.param(bar_the_recipient, "http_400", "barred", id="barred-recipient"),
    pytest.param(allow_another_ip_only, "http_403", "allowed IP addresses",
                 id="server-ip-not-allowed"),
])
async def test_refusal_fails_at_once_saying_why_and_is_never_retried(
        simwood_gateway, fake: FakeSimwood, http: aiohttp.ClientSession,
        refuse: Callable[[FakeSimwood], None], code: str, says: str) -> None:
    gw = simwood_gateway()
    refuse(fake)
    failed = await send(gw, http, "promo")
    assert_failed_at_once(failed)
    assert failed["error"]["code"] == code
    assert says in failed["error"]["reason"]
    await assert_never_retried(gw, fake, failed)


async def test_unavailable_once_is_retried_and_sent(
        simwood_gateway, fake: FakeSimwood, http: aiohttp.ClientSession) -> None:
    gw = simwood_gateway()
    fake.fail_next(503, "Service temporarily unavailable", retry_after=0.2)
    sent = await send(gw, http, "retry me")
    carrier_msg = sent_on_second_try(sent, fake)
    assert sent["carrier_message_id"] == carrier_msg.id


async def test_wrong_api_key_fails_at_once(
        start_gateway: Callable[..., GatewayHarness], sqlite_url: str, fake: FakeSimwood,
        fake_server: RunningServer, http: aiohttp.ClientSession) -> None:
    gw = gateway_starter(start_gateway, sqlite_url, connection(
        "simwood", settings(fake, fake_server, api_key="not-the-key"), [OURS]))()
    failed = await send(gw, http, "x")
    assert (failed["status"], failed["attempts"], failed["error"]["code"]) == (
        "failed", 1, "http_401")
    assert "not-the-key" not in str(failed)


# ------------------------------------------------------------------------ receiving


@pytest.mark.parametrize("legacy", [False, True], ids=["http_json", "legacy-http-form"])
async def test_inbound_sms_is_stored_and_acknowledged_with_a_body(
        simwood_gateway, fake: FakeSimwood, http: aiohttp.ClientSession, legacy: bool) -> None:
    gw = simwood_gateway()
    status, _, body = await fake.fire_inbound(f"{gw.url}{gw.inbound_path('simwood')}",
                                              from_="447700900456", to="447700900123",
                                              message="ARM SV", legacy=legacy)
    assert status == 200 and body != b""
    (message,) = await inbound(gw, http)
    assert (message["from"], message["to"], message["text"]) == (PEER, OURS, "ARM SV")
    assert message["status"] == "received" and message["connection"] == "simwood"


async def test_duplicate_inbound_is_stored_once_and_answered_twice(
        simwood_gateway, fake: FakeSimwood, http: aiohttp.ClientSession) -> None:
    gw = simwood_gateway()
    url = f"{gw.url}{gw.inbound_path('simwood')}"
    event_id = "ab" * 16
    for _ in range(2):
        status, _, body = await fake.fire_inbound(url, from_="447700900456",
                                                  to="447700900123", message="DISARM JF",
                                                  event_id=event_id)
        assert status == 200 and body != b""
    (message,) = await inbound(gw, http)
    assert message["carrier_message_id"] == event_id and message["text"] == "DISARM JF"


async def test_other_events_at_the_inbound_url_are_acknowledged_and_not_stored(
        simwood_gateway, fake: FakeSimwood, http: aiohttp.ClientSession) -> None:
    gw = simwood_gateway()
    url = f"{gw.url}{gw.inbound_path('simwood')}"
    fax = {"app": "fax_inbound", "id": "fi_" + "cd" * 16,
           "data": {"originator": "07700900123", "destination": "447700900123", "pages": 1}}
    answers = [await fake.fire_json(url, fax),
               await fake.fire_form(url, fake.report_event("ef" * 16, 11))]
    assert [(status, body != b"") for status, _, body in answers] == [(200, True)] * 2
    assert await everything(gw, http) == []


async def test_wrong_token_is_forbidden_and_nothing_stored(
        simwood_gateway, fake: FakeSimwood, http: aiohttp.ClientSession) -> None:
    gw = simwood_gateway()
    token = gw.tokens["simwood"]
    forged = f"{gw.url}{gw.inbound_path('simwood')}".replace(token, "A" * len(token))
    status, _, _ = await fake.fire_inbound(forged, from_="447700900456", to="447700900123",
                                           message="DISARM")
    assert status == 403
    assert await everything(gw, http) == []


async def test_malformed_inbound_is_a_bad_request_and_nothing_stored(
        simwood_gateway, fake: FakeSimwood, http: aiohttp.ClientSession) -> None:
    gw = simwood_gateway()
    event = fake.inbound_event(from_="447700900456", to="447700900123", message="hi")
    del event["data"]["originator"]
    status, _, body = await fake.fire_json(f"{gw.url}{gw.inbound_path('simwood')}", event)
    assert status == 400
    assert b"data.originator" in body
    assert await everything(gw, http) == []

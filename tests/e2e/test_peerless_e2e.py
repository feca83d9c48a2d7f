"""Peerless Network end to end: the real app, worker and store against the fake Peerless.

Sends go POST /v1/messages -> outbox -> worker -> the fake's send URL; inbound messages come
from the fake POSTing Peerless's JSON at the connection's inbound URL, and the fake reads the
gateway's answer as Peerless would (a 200 with a JSON receipt). Peerless signs nothing and
sends no delivery receipts, so the URL token is the only guard and a send stays ``sent``.
"""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest

from smsbridge.testing.fake_peerless import FakePeerless, peerless_receipt
from smsbridge.testing.server import RunningServer
from tests.e2e.carriers import (
    OUR_NUMBER,
    PEER,
    assert_failed_at_once,
    assert_never_retried,
    assert_stays_sent_without_receipts,
    connection,
    gateway_starter,
    inbound,
    send_and_wait,
    sent_on_second_try,
)
from tests.harness import GatewayHarness


@pytest.fixture
def fake() -> FakePeerless:
    """The fake carrier's state and knobs."""
    return FakePeerless()


def settings_for(fake: FakePeerless, server: RunningServer, **overrides: str) -> dict[str, str]:
    """The connection's settings: the fake's send URL and its credentials."""
    return {"url": f"{server.url}{fake.send_path}", "username": fake.username or "",
            "password": fake.password or "", **overrides}


@pytest.fixture
def peerless_gateway(sqlite_url: str, start_gateway: Callable[..., GatewayHarness],
                     fake_server: RunningServer, fake: FakePeerless
                     ) -> Callable[..., GatewayHarness]:
    """Start a gateway (SQLite unless told) with one Peerless connection pointed at the fake."""
    return gateway_starter(start_gateway, sqlite_url,
                           connection("peerless", settings_for(fake, fake_server)))


def inbound_url(gw: GatewayHarness) -> str:
    return f"{gw.url}{gw.inbound_path('peerless')}"


# ------------------------------------------------------------------------ sending


async def send_sms_that_stays_sent(gw: GatewayHarness, fake: FakePeerless,
                                   http: aiohttp.ClientSession) -> None:
    """Send one SMS, check what Peerless got, and see that nothing can move it past 'sent'."""
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": "438 555 0123",
                                          "text": "Porch motion at 02:14"}, {"sent", "failed"})
    assert sent["status"] == "sent", sent["error"]
    assert sent["attempts"] == 1
    # Peerless's answer carries no id: the message's own id stands in for it.
    assert sent["carrier_message_id"] == sent["id"]
    (carrier_msg,) = fake.messages
    assert (carrier_msg.from_, carrier_msg.recipients, carrier_msg.cc_recipients,
            carrier_msg.text, carrier_msg.media_urls) == (
        OUR_NUMBER, [PEER], [], "Porch motion at 02:14", [])
    (request,) = fake.requests
    assert request.auth_ok and request.path == fake.send_path

    await assert_stays_sent_without_receipts(gw, http, "peerless", sent,
                                             {"receipt": sent["id"], "status": "delivered"})


async def test_send_sms_is_sent_and_stays_sent(peerless_gateway, fake: FakePeerless,
                                               http: aiohttp.ClientSession) -> None:
    await send_sms_that_stays_sent(peerless_gateway(), fake, http)


async def test_send_on_postgresql(pg_url: str, peerless_gateway, fake: FakePeerless,
                                  http: aiohttp.ClientSession) -> None:
    await send_sms_that_stays_sent(peerless_gateway(pg_url), fake, http)


async def test_mms_sends_its_media_url_as_a_flat_list(peerless_gateway, fake: FakePeerless,
                                                      http: aiohttp.ClientSession) -> None:
    gw = peerless_gateway()
    url = "https://cdn.example.com/cam1.jpg"
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "media": [{"url": url}]},
                               {"sent", "failed"})
    assert sent["status"] == "sent", sent["error"]
    (carrier_msg,) = fake.messages
    assert (carrier_msg.media_urls, carrier_msg.text) == ([url], None)
    assert "text" not in fake.requests[0].body


async def test_two_media_are_refused_before_any_call(peerless_gateway, fake: FakePeerless,
                                                     http: aiohttp.ClientSession) -> None:
    gw = peerless_gateway()
    status, body = await gw.send(http, {"from": OUR_NUMBER, "to": PEER, "text": "two", "media": [
        {"url": "https://cdn.example.com/a.jpg"}, {"url": "https://cdn.example.com/b.jpg"}]})
    assert status == 422 and "media" in str(body)
    assert fake.requests == []


# ------------------------------------------------------------------------ send errors


async def test_opted_out_recipient_fails_at_once_and_is_never_retried(
        peerless_gateway, fake: FakePeerless, http: aiohttp.ClientSession) -> None:
    gw = peerless_gateway()
    fake.opted_out.add(PEER)
    failed = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "promo"},
                                 {"failed", "sent"})
    assert_failed_at_once(failed)
    assert failed["error"]["code"] == "http_400"
    assert "opted out" in failed["error"]["reason"]
    await assert_never_retried(gw, fake, failed)


async def test_unavailable_once_is_retried_after_retry_after_and_sent(
        peerless_gateway, fake: FakePeerless, http: aiohttp.ClientSession) -> None:
    gw = peerless_gateway()
    fake.fail_next(503, "Service unavailable", retry_after=0.2)
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "retry me"},
                               {"sent", "failed"})
    carrier_msg = sent_on_second_try(sent, fake)
    assert carrier_msg.text == "retry me"


async def test_wrong_password_fails_at_once(
        start_gateway: Callable[..., GatewayHarness], sqlite_url: str, fake: FakePeerless,
        fake_server: RunningServer, http: aiohttp.ClientSession) -> None:
    gw = gateway_starter(start_gateway, sqlite_url, connection(
        "peerless", settings_for(fake, fake_server, password="not-the-password")))()
    failed = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "x"},
                                 {"failed", "sent"})
    assert (failed["status"], failed["attempts"], failed["error"]["code"]) == (
        "failed", 1, "http_401")
    assert "not-the-password" not in str(failed)


# ------------------------------------------------------------------------ receiving


async def test_inbound_sms_is_stored_and_peerless_gets_its_receipt(
        peerless_gateway, fake: FakePeerless, http: aiohttp.ClientSession) -> None:
    gw = peerless_gateway()
    answer = await fake.fire_inbound(inbound_url(gw), from_=PEER, recipients=[OUR_NUMBER],
                                     text="ARM SV")
    (message,) = await inbound(gw, http)
    assert (message["from"], message["to"], message["text"]) == (PEER, OUR_NUMBER, "ARM SV")
    assert message["status"] == "received" and message["connection"] == "peerless"
    assert peerless_receipt(answer) == message["carrier_message_id"]


async def test_inbound_mms_is_stored_with_its_media(
        peerless_gateway, fake: FakePeerless, http: aiohttp.ClientSession) -> None:
    gw = peerless_gateway()
    media_url = "https://mms.peerless.example/media/7f3c2a91/front.jpg"
    answer = await fake.fire_inbound(inbound_url(gw), from_=PEER, recipients=[OUR_NUMBER],
                                     text=None, media_url=media_url, content_id="7f3c2a91")
    assert peerless_receipt(answer)
    (message,) = await inbound(gw, http)
    assert message["text"] == ""
    assert [(m["url"], m["content_type"]) for m in message["media"]] == [
        (media_url, "image/jpeg")]


async def test_group_message_is_stored_once_per_number_and_ours_once(
        peerless_gateway, fake: FakePeerless, http: aiohttp.ClientSession) -> None:
    gw = peerless_gateway()
    friend, other = "+14385550177", "+15145550188"
    # Our number is listed twice (to and cc): a duplicate inside one webhook.
    answer = await fake.fire_inbound(inbound_url(gw), from_=PEER,
                                     recipients=[friend, OUR_NUMBER],
                                     cc_recipients=[OUR_NUMBER, other], text="Dinner at 7?")
    stored = await inbound(gw, http)
    assert sorted(m["to"] for m in stored) == sorted([friend, OUR_NUMBER, other])
    assert {m["text"] for m in stored} == {"Dinner at 7?"}
    receipt = peerless_receipt(answer)
    assert receipt and all(m["carrier_message_id"].startswith(f"{receipt}:") for m in stored)


async def test_the_same_text_twice_is_two_messages(
        peerless_gateway, fake: FakePeerless, http: aiohttp.ClientSession) -> None:
    gw = peerless_gateway()
    receipts = []
    for _ in range(2):
        answer = await fake.fire_inbound(inbound_url(gw), from_=PEER, recipients=[OUR_NUMBER],
                                         text="YES")
        receipts.append(peerless_receipt(answer))
    stored = await inbound(gw, http)
    # Peerless sends no message id: a repeated "YES" is a new message, never a duplicate.
    assert [m["text"] for m in stored] == ["YES", "YES"]
    assert sorted(m["carrier_message_id"] for m in stored) == sorted(r or "" for r in receipts)
    assert None not in receipts and receipts[0] != receipts[1]


async def test_wrong_token_is_forbidden_and_nothing_stored(
        peerless_gateway, fake: FakePeerless, http: aiohttp.ClientSession) -> None:
    gw = peerless_gateway()
    token = gw.tokens["peerless"]
    forged = inbound_url(gw).replace(token, "A" * len(token))
    answer = await fake.fire_inbound(forged, from_=PEER, recipients=[OUR_NUMBER],
                                     text="DISARM")
    assert answer[0] == 403 and peerless_receipt(answer) is None
    assert (await gw.list_messages(http))["data"] == []


async def test_malformed_inbound_is_a_bad_request_and_nothing_stored(
        peerless_gateway, fake: FakePeerless, http: aiohttp.ClientSession) -> None:
    gw = peerless_gateway()
    document = fake.inbound_document(from_=PEER, recipients=[OUR_NUMBER], text="hi")
    del document["recipients"]
    async with http.post(inbound_url(gw), json=document) as resp:
        assert resp.status == 400
        assert "recipients" in await resp.text()
    assert await inbound(gw, http) == []

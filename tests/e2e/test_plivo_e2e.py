"""Plivo end to end: the real app, worker and store against the fake Plivo over HTTP.

Sends go POST /v1/messages -> outbox -> worker -> fake Message API; status callbacks and
inbound messages come from the fake firing Plivo's V3-signed form webhooks at the URLs the
gateway hands out.
"""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest

from smsbridge.testing.fake_plivo import FakePlivo
from smsbridge.testing.server import RunningServer
from tests.e2e.carriers import (
    OUR_NUMBER,
    PEER,
    assert_delivered_by_receipts,
    assert_failed_at_once,
    assert_never_retried,
    connection,
    everything,
    gateway_starter,
    send_and_wait,
    sent_on_second_try,
)
from tests.harness import GatewayHarness


@pytest.fixture
def fake() -> FakePlivo:
    """The fake carrier's state and knobs."""
    return FakePlivo()


@pytest.fixture
def plivo_gateway(sqlite_url: str, start_gateway: Callable[..., GatewayHarness],
                  fake_server: RunningServer, fake: FakePlivo) -> Callable[..., GatewayHarness]:
    """Start a gateway (SQLite unless told) with one Plivo connection pointed at the fake."""
    return gateway_starter(start_gateway, sqlite_url, connection("plivo", {
        "base_url": fake_server.url, "auth_id": fake.auth_id, "auth_token": fake.auth_token}))


# ------------------------------------------------------------------------ sending


async def send_sms_then_deliver(gw: GatewayHarness, fake: FakePlivo,
                                http: aiohttp.ClientSession) -> None:
    """Send one SMS, check what Plivo got, then fire its receipts and see 'delivered'."""
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": "438 555 0123",
                                          "text": "Porch motion at 02:14"}, {"sent", "failed"})
    assert sent["status"] == "sent", sent["error"]
    assert sent["attempts"] == 1
    (request,) = fake.requests
    assert request.auth_ok and request.path == f"/v1/Account/{fake.auth_id}/Message/"
    (carrier_msg,) = fake.messages
    assert sent["carrier_message_id"] == carrier_msg.message_uuid
    assert (carrier_msg.src, carrier_msg.dst, carrier_msg.text, carrier_msg.type) == (
        OUR_NUMBER, PEER, "Porch motion at 02:14", "sms")
    assert (carrier_msg.url, carrier_msg.method) == (f"{gw.url}{gw.status_path('plivo')}",
                                                     "POST")

    await assert_delivered_by_receipts(gw, fake, http, sent)


async def test_send_sms_is_sent_then_delivered(plivo_gateway, fake: FakePlivo,
                                               http: aiohttp.ClientSession) -> None:
    await send_sms_then_deliver(plivo_gateway(), fake, http)


async def test_send_and_delivery_on_postgresql(pg_url: str, plivo_gateway, fake: FakePlivo,
                                               http: aiohttp.ClientSession) -> None:
    await send_sms_then_deliver(plivo_gateway(pg_url), fake, http)


async def test_mms_sends_media_urls(plivo_gateway, fake: FakePlivo,
                                   http: aiohttp.ClientSession) -> None:
    gw = plivo_gateway()
    urls = ["https://cdn.example.com/cam1.jpg", "https://cdn.example.com/cam2.png"]
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "Snapshots",
                                          "media": [{"url": u} for u in urls]},
                               {"sent", "failed"})
    assert sent["status"] == "sent", sent["error"]
    (carrier_msg,) = fake.messages
    assert (carrier_msg.type, carrier_msg.media_urls, carrier_msg.text) == (
        "mms", urls, "Snapshots")


async def test_undelivered_receipt_fails_with_plivos_code(
        plivo_gateway, fake: FakePlivo, http: aiohttp.ClientSession) -> None:
    gw = plivo_gateway()
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "promo"},
                               {"sent", "failed"})
    assert sent["status"] == "sent", sent["error"]
    status, _, _ = await fake.fire_status(f"{gw.url}{gw.status_path('plivo')}",
                                          sent["carrier_message_id"], "undelivered", "200")
    assert status == 200
    failed = await gw.wait_status(http, sent["id"], {"failed"})
    assert failed["error"]["code"] == "200"
    assert "opted out" in failed["error"]["reason"]


async def test_forged_receipt_is_refused_and_changes_nothing(
        plivo_gateway, fake: FakePlivo, http: aiohttp.ClientSession) -> None:
    gw = plivo_gateway()
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "hi"},
                               {"sent", "failed"})
    status, _, _ = await fake.fire_status(f"{gw.url}{gw.status_path('plivo')}",
                                          sent["carrier_message_id"], "failed", "30",
                                          bad_signature=True)
    assert status == 403
    assert (await gw.get_message(http, sent["id"]))["status"] == "sent"


# ------------------------------------------------------------------------ send errors


async def test_refused_send_fails_at_once_and_is_never_retried(
        plivo_gateway, fake: FakePlivo, http: aiohttp.ClientSession) -> None:
    gw = plivo_gateway()
    fake.fail_next(400, "invalid 'dst' parameter")
    failed = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "x"},
                                 {"failed", "sent"})
    assert_failed_at_once(failed)
    assert failed["error"]["code"] == "http_400"
    assert "invalid 'dst' parameter" in failed["error"]["reason"]
    await assert_never_retried(gw, fake, failed)


async def test_rate_limited_once_is_retried_and_sent(
        plivo_gateway, fake: FakePlivo, http: aiohttp.ClientSession) -> None:
    gw = plivo_gateway()
    fake.fail_next(429, "too many requests", retry_after=0.2)
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "retry me"},
                               {"sent", "failed"})
    carrier_msg = sent_on_second_try(sent, fake)
    assert sent["carrier_message_id"] == carrier_msg.message_uuid


# ------------------------------------------------------------------------ receiving


async def test_signed_inbound_mms_is_stored_and_answered_with_xml(
        plivo_gateway, fake: FakePlivo, http: aiohttp.ClientSession) -> None:
    gw = plivo_gateway()
    media = ["https://media.plivo.com/Account/MA1/Message/u1/Media/a.jpg",
             "https://media.plivo.com/Account/MA1/Message/u1/Media/b.png"]
    status, headers, body = await fake.fire_inbound(
        f"{gw.url}{gw.inbound_path('plivo')}", from_=PEER, to=OUR_NUMBER, text="ARM SV",
        media=media, message_uuid="0f9e8d7c-4f3d-11ef-b2a1-0242ac110004")
    assert status == 200, body
    assert headers["content-type"].startswith("application/xml")
    assert body.rstrip().endswith(b"<Response/>")
    (message,) = list((await gw.list_messages(http, direction="inbound"))["data"])
    assert (message["from"], message["to"], message["text"]) == (PEER, OUR_NUMBER, "ARM SV")
    assert message["carrier_message_id"] == "0f9e8d7c-4f3d-11ef-b2a1-0242ac110004"
    assert [m["url"] for m in message["media"]] == media


async def test_inbound_sms_on_postgresql(pg_url: str, plivo_gateway, fake: FakePlivo,
                                         http: aiohttp.ClientSession) -> None:
    gw = plivo_gateway(pg_url)
    status, _, body = await fake.fire_inbound(f"{gw.url}{gw.inbound_path('plivo')}",
                                              from_=PEER, to=OUR_NUMBER, text="DISARM")
    assert status == 200, body
    (message,) = await everything(gw, http)
    assert (message["direction"], message["from"], message["text"]) == (
        "inbound", PEER, "DISARM")


@pytest.mark.parametrize("how", ["bad_signature", "unsigned"])
async def test_forged_or_unsigned_inbound_is_403_and_stores_nothing(
        plivo_gateway, fake: FakePlivo, http: aiohttp.ClientSession, how: str) -> None:
    gw = plivo_gateway()
    status, headers, body = await fake.fire_inbound(
        f"{gw.url}{gw.inbound_path('plivo')}", from_=PEER, to=OUR_NUMBER, text="ARM SV",
        bad_signature=how == "bad_signature", signed=how != "unsigned")
    assert status == 403
    assert headers["content-type"].startswith("application/problem+json")
    assert b"X-Plivo-Signature-V3" in body
    assert fake.auth_token.encode() not in body
    assert await everything(gw, http) == []

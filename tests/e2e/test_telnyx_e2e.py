"""Telnyx end to end: the real app, worker and store against the fake Telnyx over HTTP.

Sends go POST /v1/messages -> outbox -> worker -> fake Messaging API; receipts and inbound
messages come from the fake firing Telnyx's Ed25519-signed JSON webhooks at the URLs the
gateway hands out.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import aiohttp
import pytest

from smsbridge.testing.fake_telnyx import FakeTelnyx
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
def fake() -> FakeTelnyx:
    """The fake carrier's state and knobs."""
    return FakeTelnyx()


@pytest.fixture
def telnyx_gateway(sqlite_url: str, start_gateway: Callable[..., GatewayHarness],
                   fake_server: RunningServer, fake: FakeTelnyx) -> Callable[..., GatewayHarness]:
    """Start a gateway (SQLite unless told) with one Telnyx connection pointed at the fake."""
    return gateway_starter(start_gateway, sqlite_url, connection("telnyx", {
        "base_url": fake_server.url, "api_key": fake.api_key, "public_key": fake.public_key}))


# ------------------------------------------------------------------------ sending


async def send_sms_then_deliver(gw: GatewayHarness, fake: FakeTelnyx,
                                http: aiohttp.ClientSession) -> None:
    """Send one SMS, check what Telnyx got, then fire its receipts and see 'delivered'."""
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": "438 555 0123",
                                          "text": "Porch motion at 02:14"}, {"sent", "failed"})
    assert sent["status"] == "sent", sent["error"]
    assert sent["attempts"] == 1
    (carrier_msg,) = fake.messages
    assert sent["carrier_message_id"] == carrier_msg.id
    (request,) = fake.requests
    assert request.auth_ok and request.path == "/v2/messages"
    status_url = f"{gw.url}{gw.status_path('telnyx')}"
    assert request.body == {"from": OUR_NUMBER, "to": PEER, "text": "Porch motion at 02:14",
                            "webhook_url": status_url}

    await assert_delivered_by_receipts(gw, fake, http, sent)


async def test_send_sms_is_sent_then_delivered(telnyx_gateway, fake: FakeTelnyx,
                                               http: aiohttp.ClientSession) -> None:
    await send_sms_then_deliver(telnyx_gateway(), fake, http)


async def test_send_and_delivery_on_postgresql(pg_url: str, telnyx_gateway, fake: FakeTelnyx,
                                               http: aiohttp.ClientSession) -> None:
    await send_sms_then_deliver(telnyx_gateway(pg_url), fake, http)


async def test_mms_sends_media_urls(telnyx_gateway, fake: FakeTelnyx,
                                    http: aiohttp.ClientSession) -> None:
    gw = telnyx_gateway()
    urls = ["https://cdn.example.com/cam1.jpg", "https://cdn.example.com/cam2.png"]
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "Snapshots",
                                          "media": [{"url": u} for u in urls]},
                               {"sent", "failed"})
    assert sent["status"] == "sent", sent["error"]
    (request,) = fake.requests
    assert request.body["media_urls"] == urls and request.body["text"] == "Snapshots"


async def test_failed_receipt_carries_telnyx_code_and_reason(
        telnyx_gateway, fake: FakeTelnyx, http: aiohttp.ClientSession) -> None:
    gw = telnyx_gateway()
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "one"},
                               {"sent", "failed"})
    assert sent["status"] == "sent", sent["error"]
    status, _, _ = await fake.fire_status(
        f"{gw.url}{gw.status_path('telnyx')}", sent["carrier_message_id"], "message.finalized",
        "delivery_failed", [("40008", "Undeliverable")])
    assert status == 200
    failed = await gw.wait_status(http, sent["id"], {"failed"})
    assert failed["error"]["code"] == "40008"
    assert failed["error"]["reason"] == "undeliverable"


# ------------------------------------------------------------------------ send errors


async def test_opted_out_recipient_fails_at_once_and_is_never_retried(
        telnyx_gateway, fake: FakeTelnyx, http: aiohttp.ClientSession) -> None:
    gw = telnyx_gateway()
    fake.opted_out.add(PEER)
    failed = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "promo"},
                                 {"failed", "sent"})
    assert_failed_at_once(failed)
    assert failed["error"]["code"] == "40300"
    assert "STOP" in failed["error"]["reason"]
    await assert_never_retried(gw, fake, failed)


async def test_rate_limited_once_is_retried_and_sent(
        telnyx_gateway, fake: FakeTelnyx, http: aiohttp.ClientSession) -> None:
    gw = telnyx_gateway()
    fake.fail_next("10011", 429, retry_after=0.2)
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "retry me"},
                               {"sent", "failed"})
    carrier_msg = sent_on_second_try(sent, fake)
    assert sent["carrier_message_id"] == carrier_msg.id


# ------------------------------------------------------------------------ receiving


async def test_signed_inbound_mms_is_stored_and_answered_200(
        telnyx_gateway, fake: FakeTelnyx, http: aiohttp.ClientSession) -> None:
    gw = telnyx_gateway()
    media = [("https://media.telnyx.com/mms/a/front.jpg", "image/jpeg"),
             ("https://media.telnyx.com/mms/a/yard.mp4", "video/mp4")]
    status, _, body = await fake.fire_inbound(
        f"{gw.url}{gw.inbound_path('telnyx')}", from_=PEER, to=OUR_NUMBER, text="ARM SV",
        media=media, message_id="84cca175-9755-4859-b67f-4730d7f58aa3")
    assert status == 200, body
    (message,) = await everything(gw, http)
    assert (message["direction"], message["from"], message["to"], message["text"]) == (
        "inbound", PEER, OUR_NUMBER, "ARM SV")
    assert message["connection"] == "telnyx"
    assert message["carrier_message_id"] == "84cca175-9755-4859-b67f-4730d7f58aa3"
    assert [(m["url"], m["content_type"]) for m in message["media"]] == media


async def test_receipt_posted_to_the_inbound_url_is_acknowledged_and_stores_nothing(
        telnyx_gateway, fake: FakeTelnyx, http: aiohttp.ClientSession) -> None:
    gw = telnyx_gateway()
    event = fake.status_event("40318ad3-7e5b-4a6b-9c1d-2e3f4a5b6c7d", "message.sent", "sent")
    status, _, _ = await fake.fire(f"{gw.url}{gw.inbound_path('telnyx')}", event)
    assert status == 200  # a non-2xx would make Telnyx retry it and try the failover URL
    assert await everything(gw, http) == []


@pytest.mark.parametrize("forgery", ["other-key", "unsigned", "stale"])
async def test_forged_unsigned_or_stale_inbound_is_403_and_stores_nothing(
        telnyx_gateway, fake: FakeTelnyx, http: aiohttp.ClientSession, forgery: str) -> None:
    gw = telnyx_gateway()
    status, headers, body = await fake.fire_inbound(
        f"{gw.url}{gw.inbound_path('telnyx')}", from_=PEER, to=OUR_NUMBER, text="DISARM",
        bad_signature=forgery == "other-key", signed=forgery != "unsigned",
        timestamp=int(time.time()) - 600 if forgery == "stale" else None)
    assert status == 403
    assert headers["content-type"].startswith("application/problem+json")
    assert "telnyx" in json.loads(body)["detail"]
    assert await everything(gw, http) == []


async def test_forged_receipt_is_403_and_changes_nothing(
        telnyx_gateway, fake: FakeTelnyx, http: aiohttp.ClientSession) -> None:
    gw = telnyx_gateway()
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "hi"},
                               {"sent", "failed"})
    status, _, _ = await fake.fire_status(
        f"{gw.url}{gw.status_path('telnyx')}", sent["carrier_message_id"], "message.finalized",
        "delivered", bad_signature=True)
    assert status == 403
    assert (await gw.get_message(http, sent["id"]))["status"] == "sent"

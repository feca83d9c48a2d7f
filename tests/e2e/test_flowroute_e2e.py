"""Flowroute end to end: the real app, worker and store against the fake Flowroute over HTTP.

Sends go POST /v1/messages -> outbox -> worker -> fake Messaging API; delivery receipts and
inbound messages come from the fake POSTing Flowroute's JSON:API webhooks at the URLs the
gateway hands out. Flowroute signs nothing, so the URL token is the only guard.
"""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest

from smsbridge.testing.fake_flowroute import FakeFlowroute
from smsbridge.testing.server import RunningServer
from tests.e2e.carriers import (
    OUR_NUMBER,
    PEER,
    assert_delivered_by_receipts,
    assert_failed_at_once,
    assert_never_retried,
    connection,
    gateway_starter,
    inbound,
    send_and_wait,
    sent_on_second_try,
)
from tests.harness import GatewayHarness


@pytest.fixture
def fake() -> FakeFlowroute:
    """The fake carrier's state and knobs."""
    return FakeFlowroute()


@pytest.fixture
def flowroute_gateway(sqlite_url: str, start_gateway: Callable[..., GatewayHarness],
                      fake_server: RunningServer, fake: FakeFlowroute
                      ) -> Callable[..., GatewayHarness]:
    """Start a gateway (SQLite unless told) with one Flowroute connection pointed at the fake."""
    return gateway_starter(start_gateway, sqlite_url, connection("flowroute", {
        "base_url": fake_server.url, "access_key": fake.access_key,
        "secret_key": fake.secret_key}))


# ------------------------------------------------------------------------ sending


async def send_sms_then_deliver(gw: GatewayHarness, fake: FakeFlowroute,
                                http: aiohttp.ClientSession) -> None:
    """Send one SMS, check what Flowroute got, then fire its receipts and see 'delivered'."""
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": "438 555 0123",
                                          "text": "Porch motion at 02:14"}, {"sent", "failed"})
    assert sent["status"] == "sent", sent["error"]
    assert sent["attempts"] == 1
    (carrier_msg,) = fake.messages
    assert carrier_msg.id.startswith("mdr2-") and sent["carrier_message_id"] == carrier_msg.id
    assert (carrier_msg.to, carrier_msg.from_, carrier_msg.body) == (
        "14385550123", "15145550100", "Porch motion at 02:14")
    (request,) = fake.requests
    assert request.auth_ok and request.content_type == "application/vnd.api+json"
    # The worker hands Flowroute the connection's status URL, the one GET /v1/carriers shows.
    async with http.get(f"{gw.url}/v1/carriers", headers=gw.auth) as resp:
        (row,) = (await resp.json())["data"]
    assert carrier_msg.dlr_callback == row["status_url"] == f"{gw.url}{gw.status_path('flowroute')}"
    assert row["inbound_url"] in row["setup"]

    await assert_delivered_by_receipts(gw, fake, http, sent)


async def test_send_sms_is_sent_then_delivered(flowroute_gateway, fake: FakeFlowroute,
                                               http: aiohttp.ClientSession) -> None:
    await send_sms_then_deliver(flowroute_gateway(), fake, http)


async def test_send_and_delivery_on_postgresql(pg_url: str, flowroute_gateway,
                                               fake: FakeFlowroute,
                                               http: aiohttp.ClientSession) -> None:
    await send_sms_then_deliver(flowroute_gateway(pg_url), fake, http)


async def test_mms_sends_its_media_urls(flowroute_gateway, fake: FakeFlowroute,
                                        http: aiohttp.ClientSession) -> None:
    gw = flowroute_gateway()
    urls = ["https://cdn.example.com/cam1.jpg", "https://cdn.example.com/cam2.png"]
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "Snapshots",
                                          "media": [{"url": u} for u in urls]},
                               {"sent", "failed"})
    assert sent["status"] == "sent", sent["error"]
    (carrier_msg,) = fake.messages
    assert (carrier_msg.media_urls, carrier_msg.is_mms, carrier_msg.body) == (
        urls, True, "Snapshots")
    assert [m["url"] for m in sent["media"]] == urls


async def test_undelivered_receipt_fails_the_message_with_flowroutes_reason(
        flowroute_gateway, fake: FakeFlowroute, http: aiohttp.ClientSession) -> None:
    gw = flowroute_gateway()
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "one"},
                               {"sent", "failed"})
    callback = f"{gw.url}{gw.status_path('flowroute')}"
    status, _, _ = await fake.fire_receipt(callback, sent["carrier_message_id"], "undelivered",
                                           "4505", "Destination handset unreachable")
    assert status == 200
    failed = await gw.wait_status(http, sent["id"], {"failed"})
    assert failed["error"] == {"code": "4505", "reason": "Destination handset unreachable"}


# ------------------------------------------------------------------------ send errors


async def test_opted_out_recipient_fails_at_once_and_is_never_retried(
        flowroute_gateway, fake: FakeFlowroute, http: aiohttp.ClientSession) -> None:
    gw = flowroute_gateway()
    fake.opted_out.add("14385550123")
    failed = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "promo"},
                                 {"failed", "sent"})
    assert_failed_at_once(failed)
    assert failed["error"]["code"] == "http_422"
    assert "opted out" in failed["error"]["reason"]
    await assert_never_retried(gw, fake, failed)


async def test_throttled_once_is_retried_and_sent(
        flowroute_gateway, fake: FakeFlowroute, http: aiohttp.ClientSession) -> None:
    gw = flowroute_gateway()
    fake.fail_next(429, "Too many requests", retry_after=0.2)
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "retry me"},
                               {"sent", "failed"})
    carrier_msg = sent_on_second_try(sent, fake)
    assert sent["carrier_message_id"] == carrier_msg.id


async def test_wrong_secret_key_fails_at_once(
        start_gateway: Callable[..., GatewayHarness], sqlite_url: str, fake: FakeFlowroute,
        fake_server: RunningServer, http: aiohttp.ClientSession) -> None:
    gw = gateway_starter(start_gateway, sqlite_url, connection("flowroute", {
        "base_url": fake_server.url, "access_key": fake.access_key,
        "secret_key": "not-the-secret"}))()
    failed = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "x"},
                                 {"failed", "sent"})
    assert (failed["status"], failed["attempts"], failed["error"]["code"]) == (
        "failed", 1, "http_401")
    assert "not-the-secret" not in str(failed)


# ------------------------------------------------------------------------ receiving


async def test_inbound_mms_is_stored_with_its_media(
        flowroute_gateway, fake: FakeFlowroute, http: aiohttp.ClientSession) -> None:
    gw = flowroute_gateway()
    media = [("https://mms.example.com/front.jpg", "image/jpeg"),
             ("https://mms.example.com/clip.mp4", "video/mp4")]
    status, _, body = await fake.fire_inbound(f"{gw.url}{gw.inbound_path('flowroute')}",
                                              from_="14385550123", to="15145550100",
                                              body="ARM SV", media=media)
    assert status == 200, body
    (message,) = await inbound(gw, http)
    assert (message["from"], message["to"], message["text"]) == (PEER, OUR_NUMBER, "ARM SV")
    assert message["status"] == "received" and message["connection"] == "flowroute"
    assert message["carrier_message_id"].startswith("mdr2-")
    assert [(m["url"], m["content_type"]) for m in message["media"]] == media


async def test_duplicate_inbound_is_stored_once_and_answered_twice(
        flowroute_gateway, fake: FakeFlowroute, http: aiohttp.ClientSession) -> None:
    gw = flowroute_gateway()
    url = f"{gw.url}{gw.inbound_path('flowroute')}"
    message_id = "mdr2-" + "ab" * 16
    for _ in range(2):
        status, _, _ = await fake.fire_inbound(url, from_="+14385550123", to="+15145550100",
                                               body="DISARM JF", message_id=message_id)
        assert status == 200
    (message,) = await inbound(gw, http)
    assert message["carrier_message_id"] == message_id and message["text"] == "DISARM JF"


async def test_wrong_token_is_forbidden_and_nothing_stored(
        flowroute_gateway, fake: FakeFlowroute, http: aiohttp.ClientSession) -> None:
    gw = flowroute_gateway()
    token = gw.tokens["flowroute"]
    forged = f"{gw.url}{gw.inbound_path('flowroute')}".replace(token, "A" * len(token))
    status, _, _ = await fake.fire_inbound(forged, from_="14385550123", to="15145550100",
                                           body="DISARM")
    assert status == 403
    assert (await gw.list_messages(http))["data"] == []


async def test_malformed_inbound_is_a_bad_request_and_nothing_stored(
        flowroute_gateway, fake: FakeFlowroute, http: aiohttp.ClientSession) -> None:
    gw = flowroute_gateway()
    document = fake.inbound_document(from_="14385550123", to="15145550100", body="hi")
    del document["data"]["attributes"]["from"]
    async with http.post(f"{gw.url}{gw.inbound_path('flowroute')}", json=document) as resp:
        assert resp.status == 400
        assert "attributes.from" in await resp.text()
    assert await inbound(gw, http) == []

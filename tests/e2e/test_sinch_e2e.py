"""Sinch end to end: the real app, worker and store against the fake Sinch over HTTP.

Sends go POST /v1/messages -> outbox -> worker -> fake XMS API; per-recipient delivery
reports and inbound messages come from the fake POSTing Sinch's JSON callbacks at the URLs
the gateway hands out. A plan without HMAC callbacks is guarded by the URL token alone; with
``webhook_secret`` set, a callback without Sinch's signature is refused.
"""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest

from smsbridge.testing.fake_sinch import FakeSinch
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
    inbound,
    send_and_wait,
    sent_on_second_try,
)
from tests.harness import GatewayHarness

CALLBACK_SECRET = "e2e-sinch-callback-secret"


@pytest.fixture
def fake() -> FakeSinch:
    """The fake carrier's state and knobs (callbacks signed with the plan's secret)."""
    return FakeSinch(webhook_secret=CALLBACK_SECRET)


def sinch_settings(fake: FakeSinch, server: RunningServer, **extra: str) -> dict[str, str]:
    return {"base_url": server.url, "service_plan_id": fake.service_plan_id,
            "api_token": fake.api_token, "region": "eu", **extra}


@pytest.fixture
def sinch_gateway(sqlite_url: str, start_gateway: Callable[..., GatewayHarness],
                  fake_server: RunningServer, fake: FakeSinch) -> Callable[..., GatewayHarness]:
    """A gateway (SQLite unless told) with one Sinch connection checking HMAC callbacks."""
    return gateway_starter(start_gateway, sqlite_url, connection(
        "sinch", sinch_settings(fake, fake_server, webhook_secret=CALLBACK_SECRET)))


# ------------------------------------------------------------------------ sending


async def send_sms_then_deliver(gw: GatewayHarness, fake: FakeSinch,
                                http: aiohttp.ClientSession) -> None:
    """Send one SMS, check the batch Sinch got, then fire its reports and see 'delivered'."""
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": "438 555 0123",
                                          "text": "Porch motion at 02:14"}, {"sent", "failed"})
    assert sent["status"] == "sent", sent["error"]
    assert sent["attempts"] == 1
    (batch,) = fake.messages
    assert sent["carrier_message_id"] == batch.id and len(batch.id) == 26
    assert (batch.to, batch.from_, batch.type, batch.body) == (
        [PEER], OUR_NUMBER, "mt_text", "Porch motion at 02:14")
    (request,) = fake.requests
    assert request.auth_ok and request.path == f"/xms/v1/{fake.service_plan_id}/batches"
    # Reports go to the connection's status URL, the one GET /v1/carriers shows.
    async with http.get(f"{gw.url}/v1/carriers", headers=gw.auth) as resp:
        (row,) = (await resp.json())["data"]
    assert batch.delivery_report == "per_recipient"
    assert batch.callback_url == row["status_url"] == f"{gw.url}{gw.status_path('sinch')}"
    assert row["inbound_url"] in row["setup"]

    await assert_delivered_by_receipts(gw, fake, http, sent)


async def test_send_sms_is_sent_then_delivered(sinch_gateway, fake: FakeSinch,
                                               http: aiohttp.ClientSession) -> None:
    await send_sms_then_deliver(sinch_gateway(), fake, http)


async def test_send_and_delivery_on_postgresql(pg_url: str, sinch_gateway, fake: FakeSinch,
                                               http: aiohttp.ClientSession) -> None:
    await send_sms_then_deliver(sinch_gateway(pg_url), fake, http)


async def test_mms_sends_its_media_url_with_the_caption(
        sinch_gateway, fake: FakeSinch, http: aiohttp.ClientSession) -> None:
    gw = sinch_gateway()
    url = "https://cdn.example.com/cam1.jpg"
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "Snapshot",
                                          "media": [{"url": url}]}, {"sent", "failed"})
    assert sent["status"] == "sent", sent["error"]
    (batch,) = fake.messages
    assert (batch.type, batch.media_url, batch.body) == ("mt_media", url, "Snapshot")


async def test_two_media_are_refused_before_queueing(
        sinch_gateway, fake: FakeSinch, http: aiohttp.ClientSession) -> None:
    gw = sinch_gateway()
    status, problem = await gw.send(http, {"from": OUR_NUMBER, "to": PEER, "text": "x", "media": [
        {"url": "https://cdn.example.com/a.jpg"}, {"url": "https://cdn.example.com/b.jpg"}]})
    assert status == 422, problem
    assert fake.requests == [] and await everything(gw, http) == []


async def test_failed_report_fails_the_message_with_sinchs_code(
        sinch_gateway, fake: FakeSinch, http: aiohttp.ClientSession) -> None:
    gw = sinch_gateway()
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "one"},
                               {"sent", "failed"})
    callback = f"{gw.url}{gw.status_path('sinch')}"
    status, _, _ = await fake.fire_report(callback, sent["carrier_message_id"], "Failed", 402)
    assert status == 200
    failed = await gw.wait_status(http, sent["id"], {"failed"})
    assert failed["error"] == {"code": "402", "reason": "Sinch delivery report: Failed"}


# ------------------------------------------------------------------------ send errors


async def test_blocked_recipient_fails_at_once_and_is_never_retried(
        sinch_gateway, fake: FakeSinch, http: aiohttp.ClientSession) -> None:
    gw = sinch_gateway()
    fake.blocked.add(PEER)
    failed = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "promo"},
                                 {"failed", "sent"})
    assert_failed_at_once(failed)
    assert failed["error"]["code"] == "syntax_constraint_violation"
    assert "opted out" in failed["error"]["reason"]
    await assert_never_retried(gw, fake, failed)


async def test_throttled_once_is_retried_and_sent(
        sinch_gateway, fake: FakeSinch, http: aiohttp.ClientSession) -> None:
    gw = sinch_gateway()
    fake.fail_next(429, "Too many requests", "too_many_requests", retry_after=0.2)
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "retry me"},
                               {"sent", "failed"})
    batch = sent_on_second_try(sent, fake)
    assert sent["carrier_message_id"] == batch.id


async def test_wrong_api_token_fails_at_once_and_is_not_shown(
        start_gateway: Callable[..., GatewayHarness], sqlite_url: str, fake: FakeSinch,
        fake_server: RunningServer, http: aiohttp.ClientSession) -> None:
    settings = sinch_settings(fake, fake_server) | {"api_token": "not-the-token"}
    gw = gateway_starter(start_gateway, sqlite_url, connection("sinch", settings))()
    failed = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "x"},
                                 {"failed", "sent"})
    assert (failed["status"], failed["attempts"], failed["error"]["code"]) == (
        "failed", 1, "unauthorized")
    assert "not-the-token" not in str(failed)


# ------------------------------------------------------------------------ receiving


async def test_signed_inbound_mms_is_stored_with_its_media(
        sinch_gateway, fake: FakeSinch, http: aiohttp.ClientSession) -> None:
    gw = sinch_gateway()
    media = [("https://mms.example.com/front.jpg", "image/jpeg"),
             ("https://mms.example.com/clip.mp4", "video/mp4")]
    status, _, body = await fake.fire_inbound(f"{gw.url}{gw.inbound_path('sinch')}",
                                              from_="14385550123", to="15145550100",
                                              body="ARM SV", media=media)
    assert status == 200, body
    (message,) = await inbound(gw, http)
    assert (message["from"], message["to"], message["text"]) == (PEER, OUR_NUMBER, "ARM SV")
    assert message["status"] == "received" and message["connection"] == "sinch"
    assert [(m["url"], m["content_type"]) for m in message["media"]] == media


async def test_duplicate_inbound_is_stored_once(
        sinch_gateway, fake: FakeSinch, http: aiohttp.ClientSession) -> None:
    gw = sinch_gateway()
    url = f"{gw.url}{gw.inbound_path('sinch')}"
    for _ in range(2):
        status, _, _ = await fake.fire_inbound(url, from_="+14385550123", to="+15145550100",
                                               body="DISARM JF", message_id="01" + "AB" * 12)
        assert status == 200
    (message,) = await inbound(gw, http)
    assert message["carrier_message_id"] == "01" + "AB" * 12


@pytest.mark.parametrize("forgery", ["unsigned", "other-secret"])
async def test_unsigned_or_forged_inbound_is_403_and_nothing_stored(
        sinch_gateway, fake: FakeSinch, http: aiohttp.ClientSession, forgery: str) -> None:
    gw = sinch_gateway()
    status, _, _ = await fake.fire_inbound(
        f"{gw.url}{gw.inbound_path('sinch')}", from_="14385550123", to="15145550100",
        body="DISARM", signed=forgery != "unsigned", bad_signature=forgery == "other-secret")
    assert status == 403
    assert await everything(gw, http) == []


async def test_forged_report_is_403_and_changes_nothing(
        sinch_gateway, fake: FakeSinch, http: aiohttp.ClientSession) -> None:
    gw = sinch_gateway()
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "one"},
                               {"sent", "failed"})
    status, _, _ = await fake.fire_report(f"{gw.url}{gw.status_path('sinch')}",
                                          sent["carrier_message_id"], "Delivered", 0,
                                          bad_signature=True)
    assert status == 403
    assert (await gw.wait_status(http, sent["id"], {"sent"}))["status"] == "sent"


async def test_plan_without_hmac_takes_unsigned_callbacks_and_refuses_a_wrong_token(
        start_gateway: Callable[..., GatewayHarness], sqlite_url: str,
        fake_server: RunningServer, http: aiohttp.ClientSession) -> None:
    unsigned = FakeSinch()  # same API answers; this plan's callbacks carry no signature
    gw = gateway_starter(start_gateway, sqlite_url,
                         connection("sinch", sinch_settings(unsigned, fake_server)))()
    url = f"{gw.url}{gw.inbound_path('sinch')}"
    token = gw.tokens["sinch"]
    status, _, _ = await unsigned.fire_inbound(url.replace(token, "A" * len(token)),
                                               from_="14385550123", to="15145550100",
                                               body="forged")
    assert status == 403
    status, _, _ = await unsigned.fire_inbound(url, from_="14385550123", to="15145550100",
                                               body="hello")
    assert status == 200
    (message,) = await inbound(gw, http)
    assert message["text"] == "hello"


async def test_malformed_inbound_is_a_bad_request_and_nothing_stored(
        sinch_gateway, fake: FakeSinch, http: aiohttp.ClientSession) -> None:
    gw = sinch_gateway()
    document = fake.inbound_document(from_="14385550123", to="15145550100", body="hi")
    del document["from"]
    status, _, body = await fake.post(f"{gw.url}{gw.inbound_path('sinch')}", document)
    assert status == 400 and b"'from'" in body
    assert await inbound(gw, http) == []

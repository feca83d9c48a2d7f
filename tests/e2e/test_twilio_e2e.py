"""Twilio end to end: the real app, worker and store against the fake Twilio over HTTP.

Sends go POST /v1/messages -> outbox -> worker -> fake Messages API; status callbacks and
inbound messages come from the fake firing Twilio's signed form webhooks at the URLs the
gateway hands out (or, behind a proxy, at 127.0.0.1 but signed over the public URL).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from smsbridge.testing.fake_twilio import FakeTwilio
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
    queue,
    sent_on_second_try,
)
from tests.harness import GatewayHarness

PUBLIC_URL = "https://sms.example.com"


@pytest.fixture
def fake() -> FakeTwilio:
    """The fake carrier's state and knobs."""
    return FakeTwilio()


@pytest.fixture
def twilio_gateway(sqlite_url: str, start_gateway: Callable[..., GatewayHarness],
                   fake_server: RunningServer, fake: FakeTwilio) -> Callable[..., GatewayHarness]:
    """Start a gateway (SQLite unless told) with one Twilio connection pointed at the fake."""
    return gateway_starter(start_gateway, sqlite_url, connection("twilio", {
        "base_url": fake_server.url, "account_sid": fake.account_sid,
        "auth_token": fake.auth_token}))


async def send_and_wait(gw: GatewayHarness, http: aiohttp.ClientSession, body: dict[str, Any],
                        statuses: set[str]) -> dict[str, Any]:
    """Queue a message (202, status "queued") and wait until it reaches one of ``statuses``."""
    queued = await queue(gw, http, body)
    assert queued["status"] == "queued"
    return await gw.wait_status(http, queued["id"], statuses)


# ------------------------------------------------------------------------ sending


async def send_sms_then_deliver(gw: GatewayHarness, fake: FakeTwilio,
                                http: aiohttp.ClientSession) -> None:
    """Send one SMS, check what Twilio got, then fire its receipts and see 'delivered'."""
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": "438 555 0123",
                                          "text": "Porch motion at 02:14"}, {"sent", "failed"})
    assert sent["status"] == "sent", sent["error"]
    assert sent["attempts"] == 1
    (carrier_msg,) = fake.messages
    assert carrier_msg.sid.startswith("SM")
    assert sent["carrier_message_id"] == carrier_msg.sid
    assert (carrier_msg.to, carrier_msg.from_, carrier_msg.body) == (
        PEER, OUR_NUMBER, "Porch motion at 02:14")
    # The worker hands Twilio the connection's status URL, the one GET /v1/carriers shows.
    async with http.get(f"{gw.url}/v1/carriers", headers=gw.auth) as resp:
        (row,) = (await resp.json())["data"]
    assert carrier_msg.status_callback == row["status_url"] == f"{gw.url}{gw.status_path('twilio')}"
    (request,) = fake.requests
    assert request.auth_ok

    await assert_delivered_by_receipts(gw, fake, http, sent)


async def test_send_sms_is_sent_then_delivered(twilio_gateway, fake: FakeTwilio,
                                               http: aiohttp.ClientSession) -> None:
    await send_sms_then_deliver(twilio_gateway(), fake, http)


async def test_send_and_delivery_on_postgresql(pg_url: str, twilio_gateway, fake: FakeTwilio,
                                               http: aiohttp.ClientSession) -> None:
    await send_sms_then_deliver(twilio_gateway(pg_url), fake, http)


async def test_mms_with_two_media_urls_repeats_media_url(
        twilio_gateway, fake: FakeTwilio, http: aiohttp.ClientSession) -> None:
    gw = twilio_gateway()
    urls = ["https://cdn.example.com/cam1.jpg", "https://cdn.example.com/cam2.png"]
    sent = await send_and_wait(gw, http, {
        "from": OUR_NUMBER, "to": PEER, "text": "Snapshots",
        "media": [{"url": u} for u in urls]}, {"sent", "failed"})
    assert sent["status"] == "sent", sent["error"]
    (request,) = fake.requests
    assert request.get_all("MediaUrl") == urls
    assert request.get("Body") == "Snapshots"
    (carrier_msg,) = fake.messages
    assert carrier_msg.sid.startswith("MM") and sent["carrier_message_id"] == carrier_msg.sid
    assert [m["url"] for m in sent["media"]] == urls


async def test_inline_media_is_refused_before_queueing(
        twilio_gateway, fake: FakeTwilio, http: aiohttp.ClientSession) -> None:
    gw = twilio_gateway()
    image = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 64).decode()
    status, problem = await gw.send(http, {
        "from": OUR_NUMBER, "to": PEER, "text": "x",
        "media": [{"data": image, "content_type": "image/png"}]})
    assert status == 422
    assert problem["errors"][0]["field"] == "media[0]"
    assert "by URL only" in problem["errors"][0]["reason"]
    assert await everything(gw, http) == []
    await gw.wait_outbox_polls(3)  # the worker looked for work three times: nothing to send
    assert fake.requests == []


# ------------------------------------------------------------------------ status callbacks


async def test_undelivered_callback_fails_with_twilios_code_and_reason(
        twilio_gateway, fake: FakeTwilio, http: aiohttp.ClientSession) -> None:
    gw = twilio_gateway()
    ok = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "one"},
                             {"sent", "failed"})
    lost = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": "+14385550124",
                                          "text": "two"}, {"sent", "failed"})
    assert ok["status"] == lost["status"] == "sent"
    callback = f"{gw.url}{gw.status_path('twilio')}"

    status, _, _ = await fake.fire_status(callback, lost["carrier_message_id"], "undelivered",
                                          30003)
    assert status == 200
    failed = await gw.wait_status(http, lost["id"], {"failed"})
    assert failed["error"]["code"] == "30003"
    assert "unreachable" in failed["error"]["reason"]
    # The other message is untouched.
    assert (await gw.get_message(http, ok["id"]))["status"] == "sent"


async def test_late_sent_after_delivered_stays_delivered(
        twilio_gateway, fake: FakeTwilio, http: aiohttp.ClientSession) -> None:
    gw = twilio_gateway()
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "hi"},
                               {"sent", "failed"})
    callback = f"{gw.url}{gw.status_path('twilio')}"
    sid = sent["carrier_message_id"]
    assert (await fake.fire_status(callback, sid, "delivered"))[0] == 200
    await gw.wait_status(http, sent["id"], {"delivered"})
    # Twilio's callbacks can arrive out of order; the late one is acknowledged and ignored.
    assert (await fake.fire_status(callback, sid, "sent"))[0] == 200
    assert (await gw.get_message(http, sent["id"]))["status"] == "delivered"


# ------------------------------------------------------------------------ send errors


async def test_opted_out_recipient_fails_at_once_and_is_never_retried(
        twilio_gateway, fake: FakeTwilio, http: aiohttp.ClientSession) -> None:
    gw = twilio_gateway()
    fake.opted_out.add(PEER)
    failed = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "promo"},
                                 {"failed", "sent"})
    assert_failed_at_once(failed)
    assert failed["error"]["code"] == "21610"
    assert "unsubscribed" in failed["error"]["reason"]
    await assert_never_retried(gw, fake, failed)


async def test_rate_limited_once_is_retried_and_sent(
        twilio_gateway, fake: FakeTwilio, http: aiohttp.ClientSession) -> None:
    gw = twilio_gateway()
    fake.fail_next(20429, 429, retry_after=0.2)
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "retry me"},
                               {"sent", "failed"})
    carrier_msg = sent_on_second_try(sent, fake)
    assert sent["carrier_message_id"] == carrier_msg.sid


# ------------------------------------------------------------------------ receiving


async def test_signed_inbound_mms_is_stored_and_answered_with_twiml(
        twilio_gateway, fake: FakeTwilio, http: aiohttp.ClientSession) -> None:
    gw = twilio_gateway()
    media = [
        ("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", "image/jpeg"),
        ("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME2", "video/mp4"),
    ]
    status, headers, body = await fake.fire_inbound(
        f"{gw.url}{gw.inbound_path('twilio')}", from_=PEER, to=OUR_NUMBER, body="ARM SV",
        media=media)
    assert status == 200, body
    assert headers["content-type"].startswith("application/xml")
    assert body.rstrip().endswith(b"<Response/>")

    (message,) = await inbound(gw, http)
    assert (message["from"], message["to"], message["text"]) == (PEER, OUR_NUMBER, "ARM SV")
    assert message["status"] == "received" and message["connection"] == "twilio"
    assert message["carrier_message_id"].startswith("MM")
    assert [(m["url"], m["content_type"]) for m in message["media"]] == media


async def test_duplicate_inbound_is_stored_once_and_answered_twice(
        twilio_gateway, fake: FakeTwilio, http: aiohttp.ClientSession) -> None:
    gw = twilio_gateway()
    url = f"{gw.url}{gw.inbound_path('twilio')}"
    sid = "SM" + "ab" * 16
    first = await fake.fire_inbound(url, from_=PEER, to=OUR_NUMBER, body="DISARM JF",
                                    message_sid=sid)
    again = await fake.fire_inbound(url, from_=PEER, to=OUR_NUMBER, body="DISARM JF",
                                    message_sid=sid)
    assert first[0] == again[0] == 200
    assert again[2].rstrip().endswith(b"<Response/>")
    (message,) = await inbound(gw, http)
    assert message["carrier_message_id"] == sid and message["text"] == "DISARM JF"


async def test_behind_a_proxy_the_public_url_is_what_is_signed(
        twilio_gateway, fake: FakeTwilio, http: aiohttp.ClientSession) -> None:
    gw = twilio_gateway(public_url=PUBLIC_URL)
    path = gw.inbound_path("twilio")
    local = f"{gw.url}{path}"

    # Signed over the local URL: not what Twilio would have called, so rejected.
    status, _, _ = await fake.fire_inbound(local, from_=PEER, to=OUR_NUMBER, body="spoof")
    assert status == 403
    assert await everything(gw, http) == []

    # The proxy forwards to 127.0.0.1; Twilio signed the public URL it called.
    status, _, body = await fake.fire_inbound(local, from_=PEER, to=OUR_NUMBER, body="hello",
                                              signature_url=PUBLIC_URL + path)
    assert status == 200, body
    assert [m["text"] for m in await inbound(gw, http)] == ["hello"]


async def test_bad_signature_is_a_403_problem_and_stores_nothing(
        twilio_gateway, fake: FakeTwilio, http: aiohttp.ClientSession) -> None:
    gw = twilio_gateway()
    url = f"{gw.url}{gw.inbound_path('twilio')}"
    status, headers, body = await fake.fire_inbound(url, from_=PEER, to=OUR_NUMBER,
                                                    body="ARM SV", bad_signature=True)
    assert status == 403
    assert headers["content-type"].startswith("application/problem+json")
    assert b"Webhook rejected" in body and b"X-Twilio-Signature" in body
    assert fake.auth_token.encode() not in body
    assert await everything(gw, http) == []


async def test_missing_signature_header_is_403(
        twilio_gateway, fake: FakeTwilio, http: aiohttp.ClientSession) -> None:
    gw = twilio_gateway()
    params = fake.inbound_params(from_=PEER, to=OUR_NUMBER, body="ARM SV")
    async with http.post(f"{gw.url}{gw.inbound_path('twilio')}", data=params) as resp:
        assert resp.status == 403
        problem = await resp.json(content_type=None)
    assert "missing X-Twilio-Signature" in problem["detail"]
    assert await everything(gw, http) == []

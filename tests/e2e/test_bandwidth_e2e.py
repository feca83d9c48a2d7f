"""Bandwidth end to end: the real app, worker and store against the fake Bandwidth over HTTP.

Sends go POST /v1/messages -> outbox -> worker -> fake Messaging API; inbound messages and
delivery events come from the fake POSTing Bandwidth's JSON event arrays, with the
Application's callback credentials as HTTP Basic auth, at the URLs the gateway hands out.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import aiohttp
import pytest

from smsbridge.testing.fake_bandwidth import FakeBandwidth
from smsbridge.testing.server import RunningServer
from tests.e2e.carriers import (
    OUR_NUMBER,
    PEER,
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


@pytest.fixture
def fake() -> FakeBandwidth:
    """The fake carrier's state and knobs."""
    return FakeBandwidth()


@pytest.fixture
def bandwidth_gateway(sqlite_url: str, start_gateway: Callable[..., GatewayHarness],
                      fake_server: RunningServer, fake: FakeBandwidth
                      ) -> Callable[..., GatewayHarness]:
    """Start a gateway (SQLite unless told) with one Bandwidth connection pointed at the fake."""
    return gateway_starter(start_gateway, sqlite_url, connection("bandwidth", {
        "base_url": fake_server.url, "account_id": fake.account_id,
        "application_id": fake.application_id, "username": fake.username,
        "password": fake.password, "callback_username": fake.callback_username,
        "callback_password": fake.callback_password}))


def start(bandwidth_gateway: Callable[..., GatewayHarness], fake: FakeBandwidth,
          database: str | None = None) -> GatewayHarness:
    """A gateway, with the fake Application's Status Callback URL set to its status URL."""
    gw = bandwidth_gateway(database)
    fake.status_callback_url = f"{gw.url}{gw.status_path('bandwidth')}"
    return gw


# ------------------------------------------------------------------------ sending


async def send_sms_then_deliver(gw: GatewayHarness, fake: FakeBandwidth,
                                http: aiohttp.ClientSession) -> None:
    """Send one SMS, check what Bandwidth got, then fire its receipt and see 'delivered'."""
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": "438 555 0123",
                                          "text": "Porch motion at 02:14"}, {"sent", "failed"})
    assert sent["status"] == "sent", sent["error"]
    assert sent["attempts"] == 1
    (carrier_msg,) = fake.messages
    assert sent["carrier_message_id"] == carrier_msg.id
    assert (carrier_msg.to, carrier_msg.from_, carrier_msg.text, carrier_msg.tag) == (
        [PEER], OUR_NUMBER, "Porch motion at 02:14", sent["id"])
    (request,) = fake.requests
    assert request.auth_ok and request.path == f"/api/v2/users/{fake.account_id}/messages"
    # Both URLs to paste into the Application are the ones GET /v1/carriers shows.
    async with http.get(f"{gw.url}/v1/carriers", headers=gw.auth) as resp:
        (row,) = (await resp.json())["data"]
    assert row["status_url"] == fake.status_callback_url
    assert row["inbound_url"] in row["setup"] and row["status_url"] in row["setup"]

    answers = await fake.deliver_all()
    assert [status for status, _, _ in answers] == [200]
    delivered = await gw.wait_status(http, sent["id"], {"delivered", "failed"})
    assert delivered["status"] == "delivered"
    assert delivered["error"] is None


async def test_send_sms_is_sent_then_delivered(bandwidth_gateway, fake: FakeBandwidth,
                                               http: aiohttp.ClientSession) -> None:
    await send_sms_then_deliver(start(bandwidth_gateway, fake), fake, http)


async def test_send_and_delivery_on_postgresql(pg_url: str, bandwidth_gateway,
                                               fake: FakeBandwidth,
                                               http: aiohttp.ClientSession) -> None:
    await send_sms_then_deliver(start(bandwidth_gateway, fake, pg_url), fake, http)


async def test_mms_sends_its_media_urls(bandwidth_gateway, fake: FakeBandwidth,
                                        http: aiohttp.ClientSession) -> None:
    gw = start(bandwidth_gateway, fake)
    urls = ["https://cdn.example.com/cam1.jpg", "https://cdn.example.com/cam2.png"]
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "Snapshots",
                                          "media": [{"url": u} for u in urls]},
                               {"sent", "failed"})
    assert sent["status"] == "sent", sent["error"]
    (carrier_msg,) = fake.messages
    assert (carrier_msg.media, carrier_msg.text) == (urls, "Snapshots")


async def test_failed_event_fails_the_message_with_bandwidths_code(
        bandwidth_gateway, fake: FakeBandwidth, http: aiohttp.ClientSession) -> None:
    gw = start(bandwidth_gateway, fake)
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "one"},
                               {"sent", "failed"})
    status, _, _ = await fake.fire_receipt(fake.status_callback_url or "",
                                           sent["carrier_message_id"], "message-failed",
                                           error_code=4432, description="forbidden to country")
    assert status == 200
    failed = await gw.wait_status(http, sent["id"], {"failed"})
    assert failed["error"] == {"code": "4432", "reason": "forbidden to country"}


async def test_one_callback_url_for_everything_still_answers_200(
        bandwidth_gateway, fake: FakeBandwidth, http: aiohttp.ClientSession) -> None:
    # An Application without "Use multiple callback URLs" sends receipts to the inbound URL
    # and, pointed at the status URL, messages there: each is acknowledged, so Bandwidth does
    # not retry it for a day, and only what belongs at that URL is stored.
    gw = start(bandwidth_gateway, fake)
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "one"},
                               {"sent", "failed"})
    inbound_url = f"{gw.url}{gw.inbound_path('bandwidth')}"
    status, _, _ = await fake.fire_receipt(inbound_url, sent["carrier_message_id"])
    assert status == 200
    status, _, _ = await fake.fire_inbound(fake.status_callback_url or "", from_=PEER,
                                           to=OUR_NUMBER, text="at the status URL")
    assert status == 200
    status, _, _ = await fake.fire_inbound(inbound_url, from_=PEER, to=OUR_NUMBER,
                                           text="at the inbound URL")
    assert status == 200
    assert [m["text"] for m in await inbound(gw, http)] == ["at the inbound URL"]


# ------------------------------------------------------------------------ send errors


async def test_invalid_request_fails_at_once_and_is_never_retried(
        bandwidth_gateway, fake: FakeBandwidth, http: aiohttp.ClientSession) -> None:
    gw = start(bandwidth_gateway, fake)
    fake.fail_next(400, "'to' is not a valid number")
    failed = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "promo"},
                                 {"failed", "sent"})
    assert_failed_at_once(failed)
    assert failed["error"] == {"code": "request-validation",
                               "reason": "Bandwidth: 'to' is not a valid number"}
    await assert_never_retried(gw, fake, failed)


async def test_queue_full_once_is_retried_and_sent(
        bandwidth_gateway, fake: FakeBandwidth, http: aiohttp.ClientSession) -> None:
    gw = start(bandwidth_gateway, fake)
    fake.fail_next(429, "The SMS queue for your account is full", retry_after=0.2)
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "retry me"},
                               {"sent", "failed"})
    carrier_msg = sent_on_second_try(sent, fake)
    assert sent["carrier_message_id"] == carrier_msg.id


async def test_wrong_api_password_fails_at_once_and_is_not_shown(
        start_gateway: Callable[..., GatewayHarness], sqlite_url: str, fake: FakeBandwidth,
        fake_server: RunningServer, http: aiohttp.ClientSession) -> None:
    gw = gateway_starter(start_gateway, sqlite_url, connection("bandwidth", {
        "base_url": fake_server.url, "account_id": fake.account_id,
        "application_id": fake.application_id, "username": fake.username,
        "password": "not-the-password", "callback_username": fake.callback_username,
        "callback_password": fake.callback_password}))()
    failed = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "x"},
                                 {"failed", "sent"})
    assert (failed["status"], failed["attempts"], failed["error"]["code"]) == (
        "failed", 1, "unauthorized")
    assert "not-the-password" not in str(failed)


# ------------------------------------------------------------------------ receiving


async def test_inbound_mms_is_stored_with_its_media(
        bandwidth_gateway, fake: FakeBandwidth, http: aiohttp.ClientSession) -> None:
    gw = start(bandwidth_gateway, fake)
    media = ["https://messaging.bandwidth.com/api/v2/users/9900001/media/abc/0/front.jpg",
             "https://messaging.bandwidth.com/api/v2/users/9900001/media/abc/1/clip.mp4"]
    status, _, body = await fake.fire_inbound(f"{gw.url}{gw.inbound_path('bandwidth')}",
                                              from_=PEER, to=OUR_NUMBER, text="ARM SV",
                                              media=media)
    assert status == 200, body
    (message,) = await inbound(gw, http)
    assert (message["from"], message["to"], message["text"]) == (PEER, OUR_NUMBER, "ARM SV")
    assert message["status"] == "received" and message["connection"] == "bandwidth"
    # The .smil layout part Bandwidth adds is not media a person wants.
    assert [(m["url"], m["content_type"]) for m in message["media"]] == [
        (media[0], "image/jpeg"), (media[1], "video/mp4")]


async def test_duplicate_inbound_is_stored_once_and_answered_twice(
        bandwidth_gateway, fake: FakeBandwidth, http: aiohttp.ClientSession) -> None:
    gw = start(bandwidth_gateway, fake)
    url = f"{gw.url}{gw.inbound_path('bandwidth')}"
    for _ in range(2):
        status, _, _ = await fake.fire_inbound(url, from_=PEER, to=OUR_NUMBER,
                                               text="DISARM JF", message_id="1716219062000dup")
        assert status == 200
    (message,) = await inbound(gw, http)
    assert message["carrier_message_id"] == "1716219062000dup"


@pytest.mark.parametrize("credentials", [
    pytest.param(("", ""), id="no-authorization"),
    pytest.param(("smsbridge-callbacks", "guessed"), id="wrong-password"),
    pytest.param(("someone-else", "Bw-Callback-Secret-abcdef"), id="wrong-user"),
])
async def test_callback_without_the_credentials_is_forbidden_and_nothing_stored(
        bandwidth_gateway, fake: FakeBandwidth, http: aiohttp.ClientSession,
        credentials: tuple[str, str]) -> None:
    gw = start(bandwidth_gateway, fake)
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "one"},
                               {"sent", "failed"})
    status, _, _ = await fake.fire_inbound(f"{gw.url}{gw.inbound_path('bandwidth')}",
                                           from_=PEER, to=OUR_NUMBER, text="DISARM",
                                           credentials=credentials)
    assert status == 403
    status, _, _ = await fake.fire_receipt(fake.status_callback_url or "",
                                           sent["carrier_message_id"], "message-failed",
                                           error_code=4432, credentials=credentials)
    assert status == 403
    (only,) = await everything(gw, http)
    assert only["id"] == sent["id"] and only["status"] == "sent"


async def test_wrong_token_is_forbidden_even_with_the_credentials(
        bandwidth_gateway, fake: FakeBandwidth, http: aiohttp.ClientSession) -> None:
    gw = start(bandwidth_gateway, fake)
    token = gw.tokens["bandwidth"]
    forged = f"{gw.url}{gw.inbound_path('bandwidth')}".replace(token, "A" * len(token))
    status, _, _ = await fake.fire_inbound(forged, from_=PEER, to=OUR_NUMBER, text="DISARM")
    assert status == 403
    assert await everything(gw, http) == []


async def test_malformed_inbound_is_a_bad_request_and_nothing_stored(
        bandwidth_gateway, fake: FakeBandwidth, http: aiohttp.ClientSession) -> None:
    gw = start(bandwidth_gateway, fake)
    events = fake.inbound_events(from_=PEER, to=OUR_NUMBER, text="hi")
    del events[0]["message"]["from"]
    status, _, body = await fake.post_events(f"{gw.url}{gw.inbound_path('bandwidth')}", events)
    assert status == 400
    assert "message.from" in body.decode()
    assert await inbound(gw, http) == []
    assert json.loads(body)["status"] == 400

"""382 Communications end to end: the real app, worker and store against the fake over HTTP.

Sends go POST /v1/messages -> outbox -> worker -> the fake's sendsms.cgi (GET, credentials in
the query); inbound messages come from the fake POSTing 382's JSON (or its older key=value
lines) at the connection's inbound URL. 382 signs nothing and sends no receipts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import quote

import aiohttp
import pytest

from smsbridge.testing.fake_com382 import FakeCom382
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

KEY = "382com"


@pytest.fixture
def fake() -> FakeCom382:
    """The fake carrier's state and knobs."""
    return FakeCom382()


@pytest.fixture
def com382_gateway(sqlite_url: str, start_gateway: Callable[..., GatewayHarness],
                   fake_server: RunningServer, fake: FakeCom382) -> Callable[..., GatewayHarness]:
    """Start a gateway (SQLite unless told) with one 382com connection pointed at the fake."""
    return gateway_starter(start_gateway, sqlite_url, connection(KEY, {
        "base_url": fake_server.url, "username": fake.username, "password": fake.password}))


def inbound_url(gw: GatewayHarness) -> str:
    return f"{gw.url}{gw.inbound_path(KEY)}"


# ------------------------------------------------------------------------ sending


async def send_sms_that_stays_sent(gw: GatewayHarness, fake: FakeCom382,
                                   http: aiohttp.ClientSession) -> None:
    """Send a text full of query characters; 382 gets it whole, and it stays 'sent'."""
    text = "Tom & Jerry: 2+2=4? #1 at 100% \u00e9t\u00e9"
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": "438 555 0123",
                                          "text": text}, {"sent", "failed"})
    assert sent["status"] == "sent", sent["error"]
    assert sent["attempts"] == 1
    (request,) = fake.requests
    assert request.auth_ok and request.path == "/sendsms.cgi"
    (carrier_msg,) = fake.messages
    assert (carrier_msg.source, carrier_msg.destination, carrier_msg.message,
            carrier_msg.file_url) == ("5145550100", "4385550123", text, None)
    # 382's answer has no id: the message's own id stands in for it.
    assert sent["carrier_message_id"] == sent["id"]

    # 382 sends no receipts.
    await assert_stays_sent_without_receipts(gw, http, KEY, sent,
                                             {"id": sent["id"], "status": "delivered"})


async def test_send_sms_is_sent_with_its_text_intact(com382_gateway, fake: FakeCom382,
                                                     http: aiohttp.ClientSession) -> None:
    await send_sms_that_stays_sent(com382_gateway(), fake, http)


async def test_send_on_postgresql(pg_url: str, com382_gateway, fake: FakeCom382,
                                  http: aiohttp.ClientSession) -> None:
    await send_sms_that_stays_sent(com382_gateway(pg_url), fake, http)


async def test_text_with_a_picture_goes_as_two_requests(com382_gateway, fake: FakeCom382,
                                                        http: aiohttp.ClientSession) -> None:
    gw = com382_gateway()
    picture = "https://cdn.example.com/cam1.jpg?size=large&v=2"
    media = [{"url": picture, "content_type": "image/jpeg"}]
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "Snapshot",
                                          "media": media}, {"sent", "failed"})
    assert sent["status"] == "sent", sent["error"]
    assert [(m.message, m.file_url) for m in fake.messages] == [("Snapshot", None),
                                                                 (None, picture)]


async def test_a_second_picture_is_refused_before_queueing(com382_gateway, fake: FakeCom382,
                                                           http: aiohttp.ClientSession) -> None:
    gw = com382_gateway()
    status, body = await gw.send(http, {"from": OUR_NUMBER, "to": PEER, "text": "two", "media": [
        {"url": "https://cdn.example.com/a.jpg"}, {"url": "https://cdn.example.com/b.jpg"}]})
    assert status == 422 and "media" in str(body)
    assert fake.requests == []


# ------------------------------------------------------------------------ send errors


async def test_refusal_fails_at_once_and_is_never_retried(com382_gateway, fake: FakeCom382,
                                                          http: aiohttp.ClientSession) -> None:
    gw = com382_gateway()
    fake.fail_next(200, "ERROR: destination not SMS capable")
    failed = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "alarm"},
                                 {"failed", "sent"})
    assert_failed_at_once(failed)
    assert failed["error"] == {
        "code": "refused",
        "reason": "382com refused the message: ERROR: destination not SMS capable"}
    await assert_never_retried(gw, fake, failed)


async def test_throttled_once_is_retried_and_sent(com382_gateway, fake: FakeCom382,
                                                  http: aiohttp.ClientSession) -> None:
    gw = com382_gateway()
    fake.fail_next(429, "slow down", retry_after=0.2)
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "retry me"},
                               {"sent", "failed"})
    carrier_msg = sent_on_second_try(sent, fake)
    assert carrier_msg.message == "retry me"


async def test_wrong_password_fails_at_once_and_is_never_shown(
        start_gateway: Callable[..., GatewayHarness], sqlite_url: str, fake: FakeCom382,
        fake_server: RunningServer, http: aiohttp.ClientSession,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "n0t&the=pa55"
    gw = gateway_starter(start_gateway, sqlite_url, connection(KEY, {
        "base_url": fake_server.url, "username": fake.username, "password": wrong}))()
    failed = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "x"},
                                 {"failed", "sent"})
    assert_failed_at_once(failed)
    assert failed["error"]["code"] == "refused"
    (request,) = fake.requests
    assert request.get("pass") == wrong and not request.auth_ok  # it did travel, escaped
    assert "382com refused the message" in caplog.text  # the failure was logged
    for shown in (str(failed), caplog.text):
        assert wrong not in shown and quote(wrong, safe="") not in shown


# ------------------------------------------------------------------------ receiving


async def test_inbound_sms_is_stored_and_answered_with_an_empty_200(
        com382_gateway, fake: FakeCom382, http: aiohttp.ClientSession) -> None:
    gw = com382_gateway()
    status, headers, body = await fake.fire_inbound(inbound_url(gw), source="4385550123",
                                                    destination="5145550100",
                                                    message="ARM SV & lights=on")
    assert (status, body) == (200, b"")
    assert headers["content-type"].startswith("text/plain")
    (message,) = await inbound(gw, http)
    assert (message["from"], message["to"], message["text"]) == (
        PEER, OUR_NUMBER, "ARM SV & lights=on")
    assert message["status"] == "received" and message["connection"] == KEY
    assert message["carrier_message_id"].startswith("382com-")


async def test_inbound_mms_stores_the_url_from_message(com382_gateway, fake: FakeCom382,
                                                       http: aiohttp.ClientSession) -> None:
    gw = com382_gateway()
    picture = "http://picmsg.org/4f1c9a7e2b.jpg"
    status, _, _ = await fake.fire_inbound(inbound_url(gw), source="4385550123",
                                           destination="5145550100", message=picture,
                                           type="mms")
    assert status == 200
    (message,) = await inbound(gw, http)
    assert message["text"] == ""
    assert [(m["url"], m["content_type"]) for m in message["media"]] == [(picture, "image/jpeg")]


async def test_inbound_in_the_line_format_is_stored(com382_gateway, fake: FakeCom382,
                                                    http: aiohttp.ClientSession) -> None:
    gw = com382_gateway()
    status, _, _ = await fake.fire_inbound_lines(inbound_url(gw), source="4385550123",
                                                 destination="5145550100",
                                                 message="DISARM JF\nthen lights=off")
    assert status == 200
    (message,) = await inbound(gw, http)
    assert (message["from"], message["text"]) == (PEER, "DISARM JF\nthen lights=off")


async def test_the_same_text_twice_is_two_messages(com382_gateway, fake: FakeCom382,
                                                   http: aiohttp.ClientSession) -> None:
    # 382 gives no message id, so a repeat cannot be told from a second identical text
    # ("ARM" sent twice on purpose); both are kept rather than one lost (docs/carriers/382com.md).
    gw = com382_gateway()
    for _ in range(2):
        status, _, _ = await fake.fire_inbound(inbound_url(gw), source="4385550123",
                                               destination="5145550100", message="ARM")
        assert status == 200
    messages = await inbound(gw, http)
    assert [m["text"] for m in messages] == ["ARM", "ARM"]
    assert len({m["carrier_message_id"] for m in messages}) == 2


async def test_wrong_token_is_forbidden_and_nothing_stored(com382_gateway, fake: FakeCom382,
                                                           http: aiohttp.ClientSession) -> None:
    gw = com382_gateway()
    token = gw.tokens[KEY]
    forged = inbound_url(gw).replace(token, "A" * len(token))
    status, _, _ = await fake.fire_inbound(forged, source="4385550123",
                                           destination="5145550100", message="DISARM")
    assert status == 403
    assert (await gw.list_messages(http))["data"] == []


async def test_malformed_inbound_is_a_bad_request_and_nothing_stored(
        com382_gateway, http: aiohttp.ClientSession) -> None:
    gw = com382_gateway()
    async with http.post(inbound_url(gw), json={"destination": "5145550100", "type": "sms",
                                                "message": "hi"}) as resp:
        assert resp.status == 400
        assert "'source'" in await resp.text()
    assert await inbound(gw, http) == []

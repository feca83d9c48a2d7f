"""SignalWire end to end: the real gateway, worker and store against the fake SignalWire over HTTP.

A send goes POST /v1/messages -> outbox -> worker -> the fake's Compatibility API; inbound
messages and receipts come from the fake firing SignalWire's form webhooks, signed with
the project's Signing Key in X-SignalWire-Signature, at the URLs the gateway hands out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import pytest

from smsbridge.testing.fake_signalwire import FakeSignalWire
from smsbridge.testing.server import start_server
from tests.conftest import make_settings
from tests.e2e.carriers import assert_never_retried
from tests.harness import GatewayHarness

OURS = "+12089806814"  # the project's SignalWire number
THEIRS = "+12135877632"


class Setup:
    """One fake SignalWire project on 127.0.0.1 and a gateway with a connection to it."""

    def __init__(self, fake: FakeSignalWire, gateway: GatewayHarness) -> None:
        self.fake = fake
        self.gw = gateway

    @property
    def inbound_url(self) -> str:
        """The connection's inbound URL, as pasted into the Space."""
        return self.gw.url + self.gw.inbound_path("signalwire")

    async def queue(self, http: aiohttp.ClientSession, text: str, **extra: Any) -> str:
        """POST /v1/messages from our number to theirs; the new message's id."""
        status, body = await self.gw.send(http, {"from": OURS, "to": THEIRS, "text": text,
                                                 **extra})
        assert status == 202, body
        return str(body["id"])

    async def stored(self, http: aiohttp.ClientSession) -> list[dict[str, Any]]:
        """Every message the gateway holds."""
        return list((await self.gw.list_messages(http))["data"])


@pytest.fixture
def signalwire(sqlite_url: str, start_gateway: Callable[..., GatewayHarness]
               ) -> Iterator[Callable[..., Setup]]:
    """Start the fake and a gateway (SQLite unless given a database URL)."""
    fake = FakeSignalWire()
    server = start_server(fake.app)

    def start(database: str = sqlite_url) -> Setup:
        settings = {"base_url": server.url, "space": "example.signalwire.com",
                    "project_id": fake.project_id, "api_token": fake.auth_token,
                    "signing_key": fake.signing_key}
        connection = {"name": "signalwire", "carrier": "signalwire", "numbers": [OURS],
                      "settings": settings}
        return Setup(fake, start_gateway(make_settings(database, [connection])))

    yield start
    server.stop()


async def test_sent_then_delivered_by_receipt(database_url: str, signalwire: Callable[..., Setup],
                                              http: aiohttp.ClientSession) -> None:
    setup = signalwire(database_url)
    message_id = await setup.queue(http, "Water leak: basement")
    sent = await setup.gw.wait_status(http, message_id, {"sent", "failed"})
    assert sent["status"] == "sent", sent["error"]
    [accepted] = setup.fake.messages
    assert sent["carrier_message_id"] == accepted.sid
    assert (accepted.from_, accepted.to, accepted.body) == (OURS, THEIRS, "Water leak: basement")
    assert accepted.status_callback == setup.gw.url + setup.gw.status_path("signalwire")
    assert [request.auth_ok for request in setup.fake.requests] == [True]

    assert [answer[0] for answer in await setup.fake.deliver_all()] == [200, 200]
    delivered = await setup.gw.wait_status(http, message_id, {"delivered", "failed"})
    assert (delivered["status"], delivered["error"]) == ("delivered", None)


async def test_undelivered_receipt_fails_the_message_with_its_code(
        signalwire: Callable[..., Setup], http: aiohttp.ClientSession) -> None:
    setup = signalwire()
    message_id = await setup.queue(http, "Front door open")
    sent = await setup.gw.wait_status(http, message_id, {"sent", "failed"})
    callback = setup.gw.url + setup.gw.status_path("signalwire")
    answer = await setup.fake.fire_status(callback, sent["carrier_message_id"], "undelivered",
                                          30003)
    assert answer[0] == 200
    failed = await setup.gw.wait_status(http, message_id, {"failed"})
    assert failed["error"]["code"] == "30003"


async def test_signed_inbound_mms_is_stored_and_answered_with_cxml(
        signalwire: Callable[..., Setup], http: aiohttp.ClientSession) -> None:
    setup = signalwire()
    media = [("https://example.signalwire.com/api/laml/2010-04-01/Media/1", "image/jpeg")]
    status, headers, body = await setup.fake.fire_inbound(
        setup.inbound_url, from_=THEIRS, to=OURS, body="ARM away", media=media)
    assert status == 200, body
    assert headers["content-type"].startswith("application/xml")
    assert body.endswith(b"<Response/>")
    [message] = await setup.stored(http)
    assert (message["direction"], message["from"], message["to"], message["text"]) == (
        "inbound", THEIRS, OURS, "ARM away")
    assert [(m["url"], m["content_type"]) for m in message["media"]] == media


@pytest.mark.parametrize("forgery", ["bad-signature", "api-token-key", "unsigned"])
async def test_forged_or_unsigned_inbound_is_403_and_stores_nothing(
        forgery: str, signalwire: Callable[..., Setup], http: aiohttp.ClientSession) -> None:
    setup = signalwire()
    if forgery == "unsigned":
        params = setup.fake.inbound_params(from_=THEIRS, to=OURS, body="DISARM")
        async with http.post(setup.inbound_url, data=params) as resp:
            status = resp.status
    else:
        if forgery == "api-token-key":  # signed Twilio's way, but with the wrong secret
            setup.fake.signing_key = setup.fake.auth_token
        status, _, _ = await setup.fake.fire_inbound(
            setup.inbound_url, from_=THEIRS, to=OURS, body="DISARM",
            bad_signature=forgery == "bad-signature")
    assert status == 403
    assert await setup.stored(http) == []


async def test_opted_out_recipient_fails_at_once(signalwire: Callable[..., Setup],
                                                 http: aiohttp.ClientSession) -> None:
    setup = signalwire()
    setup.fake.opted_out.add(THEIRS)
    message_id = await setup.queue(http, "Weekly report")
    failed = await setup.gw.wait_status(http, message_id, {"failed", "sent"})
    assert (failed["status"], failed["attempts"], failed["error"]["code"]) == (
        "failed", 1, "21610")
    await assert_never_retried(setup.gw, setup.fake, failed)


async def test_server_error_is_retried_then_sent(signalwire: Callable[..., Setup],
                                                 http: aiohttp.ClientSession) -> None:
    setup = signalwire()
    setup.fake.fail_next(20500, 500)
    message_id = await setup.queue(http, "Smoke alarm")
    sent = await setup.gw.wait_status(http, message_id, {"sent", "failed"})
    assert (sent["status"], sent["attempts"]) == ("sent", 2), sent["error"]
    assert len(setup.fake.requests) == 2
    assert sent["carrier_message_id"] == setup.fake.messages[0].sid

"""Vonage end to end: the real app, worker and store against the fake Vonage over HTTP.

Sends go POST /v1/messages -> outbox -> worker -> fake SMS API; delivery receipts and
inbound messages come from the fake firing Vonage's webhooks, signed with ``sig`` when the
connection has a signature secret, at the URLs the gateway hands out.
"""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest

from smsbridge.testing.fake_vonage import FakeVonage
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

SIGNATURE_SECRET = "e2eVonageSignatureSecret0123456789"


@pytest.fixture
def fake() -> FakeVonage:
    """The fake carrier, signing its webhooks with HMAC-SHA256."""
    return FakeVonage(signature_secret=SIGNATURE_SECRET, signature_method="sha256")


def settings(fake: FakeVonage, server: RunningServer, *, signed: bool) -> dict[str, str]:
    values = {"base_url": server.url, "api_key": fake.api_key, "api_secret": fake.api_secret}
    if signed:
        values |= {"signature_secret": SIGNATURE_SECRET, "signature_method": "sha256"}
    return values


@pytest.fixture
def vonage_gateway(sqlite_url: str, start_gateway: Callable[..., GatewayHarness],
                   fake_server: RunningServer, fake: FakeVonage) -> Callable[..., GatewayHarness]:
    """Start a gateway (SQLite unless told) with one signed Vonage connection to the fake."""
    return gateway_starter(start_gateway, sqlite_url,
                           connection("vonage", settings(fake, fake_server, signed=True)))


@pytest.fixture
def unsigned_gateway(sqlite_url: str, start_gateway: Callable[..., GatewayHarness],
                     fake_server: RunningServer, fake: FakeVonage
                     ) -> Callable[..., GatewayHarness]:
    """A gateway whose Vonage connection has no signature secret: the URL token guards it."""
    return gateway_starter(start_gateway, sqlite_url,
                           connection("vonage", settings(fake, fake_server, signed=False)))


# ------------------------------------------------------------------------ sending


async def send_sms_then_deliver(gw: GatewayHarness, fake: FakeVonage,
                                http: aiohttp.ClientSession) -> None:
    """Send one SMS, check what Vonage got, then fire its receipts and see 'delivered'."""
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": "438 555 0123",
                                          "text": "Porch motion at 02:14"}, {"sent", "failed"})
    assert sent["status"] == "sent", sent["error"]
    assert sent["attempts"] == 1
    (request,) = fake.requests
    assert request.auth_ok and request.path == "/sms/json"
    (carrier_msg,) = fake.messages
    assert sent["carrier_message_id"] == carrier_msg.message_id
    assert (carrier_msg.from_, carrier_msg.to, carrier_msg.text, carrier_msg.type) == (
        OUR_NUMBER[1:], PEER[1:], "Porch motion at 02:14", "text")
    assert carrier_msg.callback == f"{gw.url}{gw.status_path('vonage')}"
    assert carrier_msg.client_ref == sent["id"]

    await assert_delivered_by_receipts(gw, fake, http, sent)


async def test_send_sms_is_sent_then_delivered(vonage_gateway, fake: FakeVonage,
                                               http: aiohttp.ClientSession) -> None:
    await send_sms_then_deliver(vonage_gateway(), fake, http)


async def test_send_and_delivery_on_postgresql(pg_url: str, vonage_gateway, fake: FakeVonage,
                                               http: aiohttp.ClientSession) -> None:
    await send_sms_then_deliver(vonage_gateway(pg_url), fake, http)


async def test_unicode_text_goes_as_type_unicode(vonage_gateway, fake: FakeVonage,
                                                 http: aiohttp.ClientSession) -> None:
    gw = vonage_gateway()
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER,
                                          "text": "Alarme armée \u2705"}, {"sent", "failed"})
    assert sent["status"] == "sent", sent["error"]
    (carrier_msg,) = fake.messages
    assert (carrier_msg.type, carrier_msg.text) == ("unicode", "Alarme armée \u2705")


async def test_failed_receipt_fails_the_message_with_vonages_code(
        vonage_gateway, fake: FakeVonage, http: aiohttp.ClientSession) -> None:
    gw = vonage_gateway()
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "promo"},
                               {"sent", "failed"})
    assert sent["status"] == "sent", sent["error"]
    status, _, _ = await fake.fire_receipt(f"{gw.url}{gw.status_path('vonage')}",
                                           sent["carrier_message_id"], "rejected", "6")
    assert status == 200
    failed = await gw.wait_status(http, sent["id"], {"failed"})
    assert failed["error"]["code"] == "6"
    assert "anti-spam" in failed["error"]["reason"]


async def test_forged_receipt_is_refused_and_changes_nothing(
        vonage_gateway, fake: FakeVonage, http: aiohttp.ClientSession) -> None:
    gw = vonage_gateway()
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "hi"},
                               {"sent", "failed"})
    status, _, _ = await fake.fire_receipt(f"{gw.url}{gw.status_path('vonage')}",
                                           sent["carrier_message_id"], "failed", "6",
                                           bad_signature=True)
    assert status == 403
    assert (await gw.get_message(http, sent["id"]))["status"] == "sent"


# ------------------------------------------------------------------------ send errors


async def test_barred_number_fails_at_once_and_is_never_retried(
        vonage_gateway, fake: FakeVonage, http: aiohttp.ClientSession) -> None:
    gw = vonage_gateway()
    fake.fail_next("7", "Number barred.")
    failed = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "x"},
                                 {"failed", "sent"})
    assert_failed_at_once(failed)
    assert failed["error"]["code"] == "7"
    assert "Number barred." in failed["error"]["reason"]
    await assert_never_retried(gw, fake, failed)


async def test_throttled_once_is_retried_and_sent(
        vonage_gateway, fake: FakeVonage, http: aiohttp.ClientSession) -> None:
    gw = vonage_gateway()
    fake.fail_next("1", "Throughput Rate Exceeded - please wait [ 1 ] and retry")
    sent = await send_and_wait(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "retry me"},
                               {"sent", "failed"})
    carrier_msg = sent_on_second_try(sent, fake)
    assert sent["carrier_message_id"] == carrier_msg.message_id


# ------------------------------------------------------------------------ receiving


@pytest.mark.parametrize(("method", "as_json"), [("POST", False), ("GET", False),
                                                 ("POST", True)], ids=["form", "get", "json"])
async def test_signed_inbound_is_stored(vonage_gateway, fake: FakeVonage,
                                        http: aiohttp.ClientSession, method: str,
                                        as_json: bool) -> None:
    gw = vonage_gateway()
    status, _, body = await fake.fire_inbound(
        f"{gw.url}{gw.inbound_path('vonage')}", from_=PEER, to=OUR_NUMBER, text="ARM SV",
        message_id="0A0000001234ABCD", method=method, as_json=as_json)
    assert status == 200, body
    (message,) = await inbound(gw, http)
    assert (message["from"], message["to"], message["text"], message["carrier_message_id"]
            ) == (PEER, OUR_NUMBER, "ARM SV", "0A0000001234ABCD")


async def test_long_inbound_in_two_parts_stores_each_part_once_answered(
        vonage_gateway, fake: FakeVonage, http: aiohttp.ClientSession) -> None:
    # Each 200 means that part is on disk: a restart between the parts loses nothing.
    gw = vonage_gateway()
    url = f"{gw.url}{gw.inbound_path('vonage')}"
    second = await fake.fire_inbound(url, from_=PEER, to=OUR_NUMBER, text="back door open.",
                                     message_id="0C02", concat=("77", 2, 2))
    assert second[0] == 200
    assert [m["text"] for m in await inbound(gw, http)] == ["back door open."]
    first = await fake.fire_inbound(url, from_=PEER, to=OUR_NUMBER, text="Garage motion, ",
                                    message_id="0C01", concat=("77", 2, 1))
    assert first[0] == 200
    stored = {m["carrier_message_id"]: m["text"] for m in await inbound(gw, http)}
    assert stored == {"0C01": "Garage motion, ", "0C02": "back door open."}


async def test_inbound_sms_on_postgresql(pg_url: str, vonage_gateway, fake: FakeVonage,
                                         http: aiohttp.ClientSession) -> None:
    gw = vonage_gateway(pg_url)
    status, _, body = await fake.fire_inbound(f"{gw.url}{gw.inbound_path('vonage')}",
                                              from_=PEER, to=OUR_NUMBER, text="DISARM")
    assert status == 200, body
    (message,) = await everything(gw, http)
    assert (message["direction"], message["from"], message["text"]) == (
        "inbound", PEER, "DISARM")


@pytest.mark.parametrize("how", ["bad_signature", "unsigned"])
async def test_forged_or_unsigned_inbound_is_403_and_stores_nothing(
        vonage_gateway, fake: FakeVonage, http: aiohttp.ClientSession, how: str) -> None:
    gw = vonage_gateway()
    status, headers, body = await fake.fire_inbound(
        f"{gw.url}{gw.inbound_path('vonage')}", from_=PEER, to=OUR_NUMBER, text="ARM SV",
        bad_signature=how == "bad_signature", signed=how != "unsigned")
    assert status == 403
    assert headers["content-type"].startswith("application/problem+json")
    assert b"sig" in body and SIGNATURE_SECRET.encode() not in body
    assert await everything(gw, http) == []


async def test_without_a_signature_secret_the_url_token_guards(
        unsigned_gateway, fake: FakeVonage, http: aiohttp.ClientSession) -> None:
    gw = unsigned_gateway()
    url = f"{gw.url}{gw.inbound_path('vonage')}"
    status, _, _ = await fake.fire_inbound(url, from_=PEER, to=OUR_NUMBER, text="hi",
                                           signed=False)
    assert status == 200
    wrong_token = url.replace("/inbound", "").rsplit("/", 1)[0] + "/not-the-token/inbound"
    status, _, _ = await fake.fire_inbound(wrong_token, from_=PEER, to=OUR_NUMBER,
                                           text="forged", signed=False)
    assert status == 403
    assert [m["text"] for m in await inbound(gw, http)] == ["hi"]

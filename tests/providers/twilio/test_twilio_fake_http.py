"""Twilio over real HTTP: our provider against FakeTwilio, and FakeTwilio's webhooks against us."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator

import aiohttp
import pytest

from smsbridge.core.errors import ProviderError
from smsbridge.core.messages import Media, MessageStatus, OutboundMessage
from smsbridge.providers.twilio.provider import TwilioConfig, TwilioProvider
from smsbridge.testing.fake_twilio import FakeTwilio
from smsbridge.testing.server import RunningServer, free_port, start_server
from tests.providers.receiver import WebhookReceiver as Gateway

ACCOUNT_SID = "AC0d1e2f3a4b5c6d7e8f90a1b2c3d4e5f6"
TOKEN = "c0ffee00c0ffee00c0ffee00c0ffee00"
MG_SID = "MG7a1c9e3b5d2f4a6c8e0b1d3f5a7c9e2b"
PUBLIC = "https://sms.example.com"
FROM = "+15005550006"
TO = "+15145550100"


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[FakeTwilio, RunningServer, Gateway, RunningServer]]:
    fake = FakeTwilio(ACCOUNT_SID, TOKEN)
    gateway = Gateway(TwilioProvider(TwilioConfig(account_sid=ACCOUNT_SID, auth_token=TOKEN)),
                      "/twilio/inbound", "/twilio/status", inbound_methods=("GET", "POST"))
    fake_server, gateway_server = start_server(fake.app), start_server(gateway.app)
    yield fake, fake_server, gateway, gateway_server
    fake_server.stop()
    gateway_server.stop()


@pytest.fixture
def fake(servers: tuple[FakeTwilio, RunningServer, Gateway, RunningServer]) -> FakeTwilio:
    servers[0].reset()
    return servers[0]


@pytest.fixture
def gateway(servers: tuple[FakeTwilio, RunningServer, Gateway, RunningServer]) -> Gateway:
    servers[2].clear()
    return servers[2]


@pytest.fixture
def gateway_url(servers: tuple[FakeTwilio, RunningServer, Gateway, RunningServer]) -> str:
    return servers[3].url


@pytest.fixture
def fake_url(servers: tuple[FakeTwilio, RunningServer, Gateway, RunningServer]) -> str:
    return servers[1].url


def twilio(fake_url: str, token: str = TOKEN, **options: object) -> TwilioProvider:
    return TwilioProvider(TwilioConfig(account_sid=ACCOUNT_SID, auth_token=token,
                                       base_url=fake_url, **options))


def basic_auth() -> dict[str, str]:
    credentials = base64.b64encode(f"{ACCOUNT_SID}:{TOKEN}".encode()).decode()
    return {"Authorization": f"Basic {credentials}"}


def sms(text: str = "Alarm: motion in the garage", to: str = TO, **kw: object) -> OutboundMessage:
    return OutboundMessage("01HZX0", FROM, to, text, **kw)  # type: ignore[arg-type]


# --- sending ------------------------------------------------------------------------------

async def test_send_sms(fake: FakeTwilio, fake_url: str, http: aiohttp.ClientSession) -> None:
    result = await twilio(fake_url).send(sms(), http)
    assert result.carrier_message_id.startswith("SM") and result.status is MessageStatus.SENT
    assert result.segments == 1
    [request] = fake.requests
    assert request.auth_ok
    assert request.form == [("To", TO), ("From", FROM), ("Body", "Alarm: motion in the garage")]
    assert fake.messages[0].sid == result.carrier_message_id


async def test_long_text_reports_twilio_segment_count(
        fake: FakeTwilio, fake_url: str, http: aiohttp.ClientSession) -> None:
    result = await twilio(fake_url).send(sms("x" * 400), http)
    assert result.segments == 3  # 400 GSM-7 characters: 153 + 153 + 94


async def test_send_mms_with_two_media(fake: FakeTwilio, fake_url: str,
                                       http: aiohttp.ClientSession) -> None:
    media = (Media("image/jpeg", "https://cdn.example.com/front.jpg"),
             Media("image/png", "https://cdn.example.com/back.png"))
    result = await twilio(fake_url).send(sms("Front door", media=media), http)
    assert result.carrier_message_id.startswith("MM")
    assert fake.requests[0].get_all("MediaUrl") == ["https://cdn.example.com/front.jpg",
                                                    "https://cdn.example.com/back.png"]
    assert fake.messages[0].resource["num_media"] == "2"


async def test_send_media_only_has_no_body(fake: FakeTwilio, fake_url: str,
                                           http: aiohttp.ClientSession) -> None:
    media = (Media("image/jpeg", "https://cdn.example.com/front.jpg"),)
    await twilio(fake_url).send(sms("", media=media), http)
    assert fake.requests[0].get("Body") is None


async def test_inline_media_refused_before_any_request(
        fake: FakeTwilio, fake_url: str, http: aiohttp.ClientSession) -> None:
    media = (Media("image/jpeg", data_base64="/9j/4AAQ"),)
    with pytest.raises(ProviderError) as caught:
        await twilio(fake_url).send(sms("snapshot", media=media), http)
    assert caught.value.retryable is False
    assert fake.requests == []


async def test_send_through_messaging_service(fake: FakeTwilio, fake_url: str,
                                              http: aiohttp.ClientSession) -> None:
    result = await twilio(fake_url, messaging_service_sid=MG_SID).send(sms(), http)
    form = dict(fake.requests[0].form)
    assert form["MessagingServiceSid"] == MG_SID and "From" not in form
    assert fake.messages[0].resource["status"] == "accepted"
    assert result.segments is None  # Twilio reports 0 segments until the service picks a sender


async def test_status_callback_round_trip(fake: FakeTwilio, fake_url: str, gateway: Gateway,
                                          gateway_url: str, http: aiohttp.ClientSession) -> None:
    callback = f"{gateway_url}/twilio/status"
    result = await twilio(fake_url).send(sms(status_callback_url=callback), http)
    assert fake.requests[0].get("StatusCallback") == callback
    answers = await fake.deliver_all()
    assert [status for status, _, _ in answers] == [200, 200]
    assert [(u.carrier_message_id, u.status) for u in gateway.statuses] == [
        (result.carrier_message_id, MessageStatus.SENT),
        (result.carrier_message_id, MessageStatus.DELIVERED),
    ]


async def test_undelivered_callback_carries_the_reason(
        fake: FakeTwilio, fake_url: str, gateway: Gateway, gateway_url: str,
        http: aiohttp.ClientSession) -> None:
    callback = f"{gateway_url}/twilio/status"
    result = await twilio(fake_url).send(sms(status_callback_url=callback), http)
    status, _, _ = await fake.fire_status(callback, result.carrier_message_id, "undelivered",
                                          30003)
    assert status == 200
    [update] = gateway.statuses
    assert (update.status, update.error_code, update.error_reason) == (
        MessageStatus.FAILED, "30003", "unreachable destination handset")


async def test_forged_status_callback_rejected(fake: FakeTwilio, gateway: Gateway,
                                               gateway_url: str) -> None:
    status, _, _ = await fake.fire_status(f"{gateway_url}/twilio/status",
                                          "SM" + "0" * 32, "delivered", bad_signature=True)
    assert status == 403 and gateway.statuses == []


@pytest.mark.parametrize(("to", "code"), [
    pytest.param("5145550100", "21211", id="to-not-e164"),
    pytest.param("+15145550199", "21610", id="opted-out"),
])
async def test_refused_recipient_not_retryable(fake: FakeTwilio, fake_url: str,
                                               http: aiohttp.ClientSession, to: str,
                                               code: str) -> None:
    fake.opted_out.add("+15145550199")
    with pytest.raises(ProviderError) as caught:
        await twilio(fake_url).send(sms(to=to), http)
    assert (caught.value.code, caught.value.retryable) == (code, False)
    assert fake.messages == []


async def test_body_over_1600_chars_not_retryable(fake: FakeTwilio, fake_url: str,
                                                  http: aiohttp.ClientSession) -> None:
    with pytest.raises(ProviderError) as caught:
        await twilio(fake_url).send(sms("y" * 1601), http)
    assert (caught.value.code, caught.value.retryable) == ("21617", False)


async def test_wrong_token_not_retryable_and_not_leaked(fake_url: str,
                                                        http: aiohttp.ClientSession) -> None:
    wrong = "badbadbadbadbadbadbadbadbadbad00"
    with pytest.raises(ProviderError) as caught:
        await twilio(fake_url, token=wrong).send(sms(), http)
    assert (caught.value.code, caught.value.retryable) == ("20003", False)
    assert wrong not in str(caught.value) and wrong not in repr(caught.value)


@pytest.mark.parametrize(("code", "http_status", "retryable"), [
    pytest.param(20429, 429, True, id="20429"),
    pytest.param(21606, 400, False, id="21606"),
    pytest.param(21608, 400, False, id="21608"),
    pytest.param(21612, 400, False, id="21612"),
    pytest.param(21614, 400, False, id="21614"),
    pytest.param(21408, 400, False, id="21408"),
    pytest.param(20500, 500, True, id="500"),
    pytest.param(20503, 503, True, id="503"),
    # A code Twilio's table does not list: the HTTP status decides, as for every carrier.
    pytest.param(20999, 408, True, id="408"),
    pytest.param(20998, 404, False, id="404"),
])
async def test_injected_errors(fake: FakeTwilio, fake_url: str, http: aiohttp.ClientSession,
                               code: int, http_status: int, retryable: bool) -> None:
    fake.fail_next(code, http_status)
    with pytest.raises(ProviderError) as caught:
        await twilio(fake_url).send(sms(), http)
    assert (caught.value.code, caught.value.retryable) == (str(code), retryable)
    assert TOKEN not in str(caught.value)
    # The failure was used up: the next send goes through.
    assert (await twilio(fake_url).send(sms(), http)).carrier_message_id.startswith("SM")


async def test_rate_limit_passes_retry_after(fake: FakeTwilio, fake_url: str,
                                             http: aiohttp.ClientSession) -> None:
    fake.fail_next(20429, 429, times=2, retry_after=7)
    for _ in range(2):
        with pytest.raises(ProviderError) as caught:
            await twilio(fake_url).send(sms(), http)
        assert (caught.value.retryable, caught.value.retry_after) == (True, 7.0)


async def test_non_json_gateway_error_retryable(fake: FakeTwilio, fake_url: str,
                                                http: aiohttp.ClientSession) -> None:
    fake.fail_next(0, 502, raw_body="<html><body>502 Bad Gateway</body></html>")
    with pytest.raises(ProviderError) as caught:
        await twilio(fake_url).send(sms(), http)
    assert (caught.value.code, caught.value.retryable) == ("http_502", True)


async def test_timeout_retryable(fake: FakeTwilio, fake_url: str,
                                 http: aiohttp.ClientSession) -> None:
    fake.delay_seconds = 1.0
    with pytest.raises(ProviderError) as caught:
        await twilio(fake_url, timeout_seconds=0.2).send(sms(), http)
    assert (caught.value.code, caught.value.retryable) == ("timeout", True)


async def test_connection_refused_retryable(http: aiohttp.ClientSession) -> None:
    with pytest.raises(ProviderError) as caught:
        await twilio(f"http://127.0.0.1:{free_port()}").send(sms(), http)
    assert (caught.value.code, caught.value.retryable) == ("connection_error", True)
    assert TOKEN not in str(caught.value)


# --- the fake as an API -------------------------------------------------------------------

async def test_fake_message_resource_and_fetch(fake: FakeTwilio, fake_url: str,
                                               http: aiohttp.ClientSession) -> None:
    result = await twilio(fake_url).send(sms(), http)
    auth = basic_auth()
    path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages"
    async with http.get(f"{fake_url}{path}/{result.carrier_message_id}.json", headers=auth) as resp:
        resource = await resp.json()
    assert resp.status == 200
    assert (resource["sid"], resource["status"], resource["to"], resource["from"]) == (
        result.carrier_message_id, "queued", TO, FROM)
    assert resource["date_created"].endswith("+0000") and resource["error_code"] is None
    async with http.get(f"{fake_url}{path}/SM{'0' * 32}.json", headers=auth) as resp:
        assert resp.status == 404 and (await resp.json())["code"] == 20404


async def test_fake_requires_body_or_media(fake: FakeTwilio, fake_url: str,
                                           http: aiohttp.ClientSession) -> None:
    async with http.post(f"{fake_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
                         data={"To": TO, "From": FROM},
                         headers=basic_auth()) as resp:
        error = json.loads(await resp.read())
    assert resp.status == 400
    assert set(error) == {"code", "message", "more_info", "status"} and error["code"] == 21602


# --- webhooks fired by the fake at a gateway ----------------------------------------------

async def test_inbound_sms_over_http(fake: FakeTwilio, gateway: Gateway,
                                     gateway_url: str) -> None:
    status, headers, body = await fake.fire_inbound(
        f"{gateway_url}/twilio/inbound", from_="+15145550111", to=TO, body="ARM SV",
        message_sid="SM" + "ab" * 16)
    assert status == 200 and body.startswith(b"<?xml") and b"<Response/>" in body
    assert headers["content-type"].startswith("application/xml")
    [message] = gateway.inbound
    assert (message.carrier_message_id, message.from_number, message.to_number, message.text) == (
        "SM" + "ab" * 16, "+15145550111", TO, "ARM SV")


async def test_inbound_mms_over_http(fake: FakeTwilio, gateway: Gateway,
                                     gateway_url: str) -> None:
    media = [("https://api.twilio.com/m/ME1", "image/jpeg"),
             ("https://api.twilio.com/m/ME2", "video/mp4")]
    status, _, _ = await fake.fire_inbound(f"{gateway_url}/twilio/inbound", from_="+15145550111",
                                           to=TO, body="", media=media,
                                           extra={"OptOutType": "STOP"})
    assert status == 200
    [message] = gateway.inbound
    assert message.carrier_message_id.startswith("MM") and message.text == ""
    assert message.media == (Media("image/jpeg", "https://api.twilio.com/m/ME1"),
                             Media("video/mp4", "https://api.twilio.com/m/ME2"))


async def test_inbound_get_over_http(fake: FakeTwilio, gateway: Gateway,
                                     gateway_url: str) -> None:
    status, _, _ = await fake.fire_inbound(f"{gateway_url}/twilio/inbound", from_="+15145550111",
                                           to=TO, body="DISARM JF & co", method="GET")
    assert status == 200 and gateway.inbound[0].text == "DISARM JF & co"


async def test_inbound_behind_proxy_signed_over_public_url(fake: FakeTwilio, gateway: Gateway,
                                                          gateway_url: str) -> None:
    gateway.public_base = PUBLIC
    status, _, _ = await fake.fire_inbound(
        f"{gateway_url}/twilio/inbound", from_="+15145550111", to=TO, body="via proxy",
        signature_url=f"{PUBLIC}/twilio/inbound")
    assert status == 200 and gateway.inbound[0].text == "via proxy"


async def test_inbound_signed_over_another_url_rejected(fake: FakeTwilio, gateway: Gateway,
                                                        gateway_url: str) -> None:
    gateway.public_base = PUBLIC  # the gateway expects the public URL; Twilio signed the local one
    status, _, body = await fake.fire_inbound(f"{gateway_url}/twilio/inbound",
                                              from_="+15145550111", to=TO, body="hi")
    assert status == 403 and TOKEN.encode() not in body and gateway.inbound == []


async def test_inbound_bad_signature_rejected(fake: FakeTwilio, gateway: Gateway,
                                              gateway_url: str) -> None:
    status, _, _ = await fake.fire_inbound(f"{gateway_url}/twilio/inbound", from_="+15145550111",
                                           to=TO, body="hi", bad_signature=True)
    assert status == 403 and gateway.inbound == []


async def test_concurrent_sends_all_recorded(fake: FakeTwilio, fake_url: str,
                                             http: aiohttp.ClientSession) -> None:
    provider = twilio(fake_url)
    results = await asyncio.gather(*(provider.send(sms(f"n{i}"), http) for i in range(10)))
    assert len({r.carrier_message_id for r in results}) == 10
    assert sorted(m.body for m in fake.messages) == sorted(f"n{i}" for i in range(10))

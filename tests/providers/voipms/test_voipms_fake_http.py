"""VoIP.ms provider against the fake carrier, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import aiohttp
import pytest

from smsbridge.core.errors import ProviderError
from smsbridge.core.messages import InboundMessage, Media, OutboundMessage
from smsbridge.providers.voipms.provider import VoipmsConfig, VoipmsProvider
from smsbridge.testing.fake_voipms import FakeVoipms
from smsbridge.testing.server import RunningServer, free_port, start_server
from tests.providers.receiver import WebhookReceiver as Gateway

PASSWORD = "pa55-w0rd-XYZ"
DID, CONTACT = "+15145550100", "+14385550123"


@pytest.fixture
def fake() -> Iterator[tuple[FakeVoipms, RunningServer]]:
    carrier = FakeVoipms(username="me@example.com", api_password=PASSWORD, dids=["5145550100"])
    server = start_server(carrier.app)
    yield carrier, server
    server.stop()


def voipms(server: RunningServer, password: str = PASSWORD, **options: object) -> VoipmsProvider:
    return VoipmsProvider(VoipmsConfig(username="me@example.com", api_password=password,
                                       base_url=server.url, **options))


def message(text: str, *media: Media) -> OutboundMessage:
    return OutboundMessage("m1", DID, CONTACT, text, tuple(media))


async def test_short_text_goes_by_send_sms_with_ten_digit_numbers(fake) -> None:
    carrier, server = fake
    async with aiohttp.ClientSession() as http:
        result = await voipms(server).send(message("Alarm: front door 🚪"), http)
    [request] = carrier.requests
    assert request.http_method == "POST"
    assert request.method == "sendSMS"
    assert (request.params["did"], request.params["dst"]) == ("5145550100", "4385550123")
    assert request.params["message"] == "Alarm: front door 🚪"
    assert result.carrier_message_id == str(carrier.sent[0].id)
    assert result.segments == 1


async def test_161_bytes_go_by_send_mms(fake) -> None:
    carrier, server = fake
    text = "é" * 80 + "x"  # 80 characters, 161 bytes
    async with aiohttp.ClientSession() as http:
        result = await voipms(server).send(message(text), http)
    [sent] = carrier.sent
    assert (sent.kind, sent.message) == ("mms", text)
    assert result.carrier_message_id == str(sent.id)


async def test_split_mode_sends_parts_that_join_back(fake) -> None:
    carrier, server = fake
    text = "Zoné 3 motion détectée, caméra 2 en ligne. " * 9  # ~430 bytes
    async with aiohttp.ClientSession() as http:
        result = await voipms(server, long_text="split").send(message(text), http)
    assert [s.kind for s in carrier.sent] == ["sms"] * len(carrier.sent)
    assert len(carrier.sent) >= 3
    assert all(len(s.message.encode()) <= 160 for s in carrier.sent)
    assert "".join(s.message for s in carrier.sent) == text
    assert result.segments == len(carrier.sent)
    assert [result.carrier_message_id, *result.extra_ids] == [str(s.id) for s in carrier.sent]


async def test_split_failure_after_first_part_is_final(fake) -> None:
    carrier, server = fake
    carrier.fail_next("sms_failed", after=1)  # part 1 accepted, part 2 refused
    async with aiohttp.ClientSession() as http:
        with pytest.raises(ProviderError) as err:
            await voipms(server, long_text="split").send(message("word " * 60), http)
    assert len(carrier.sent) == 1
    assert err.value.retryable is False  # a retry would send part 1 twice
    assert "part 2" in err.value.reason


async def test_split_failure_on_first_part_keeps_its_class(fake) -> None:
    carrier, server = fake
    carrier.fail_next("sms_failed")
    async with aiohttp.ClientSession() as http:
        with pytest.raises(ProviderError) as err:
            await voipms(server, long_text="split").send(message("word " * 60), http)
    assert carrier.sent == []
    assert (err.value.code, err.value.retryable) == ("sms_failed", True)


async def test_media_url_and_base64_fill_media1_and_media2(fake) -> None:
    carrier, server = fake
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n fake image").decode()
    media = (Media("image/jpeg", url="https://example.com/snap.jpg"),
             Media("image/png", data_base64=png))
    async with aiohttp.ClientSession() as http:
        await voipms(server).send(message("snapshot", *media), http)
    [request] = carrier.requests
    assert request.method == "sendMMS"
    assert request.params["media1"] == "https://example.com/snap.jpg"
    assert request.params["media2"] == f"data:image/png;base64,{png}"
    assert "media3" not in request.params
    assert carrier.sent[0].media == (request.params["media1"], request.params["media2"])


async def test_e164_number_format_is_sent_as_is(fake) -> None:
    carrier, server = fake
    async with aiohttp.ClientSession() as http:
        with pytest.raises(ProviderError) as err:
            await voipms(server, number_format="e164").send(message("hi"), http)
    # The fake (like the documented API) wants 10 digits; the option exists for accounts
    # whose API takes +1 numbers.
    assert carrier.requests[0].params["did"] == "+15145550100"
    assert err.value.code == "invalid_did"


STATUSES = {  # voipms.md §4
    "invalid_credentials": False, "missing_credentials": False, "api_not_enabled": False,
    "ip_not_enabled": False, "api_limit_exceeded": True, "limit_reached": False,
    "missing_method": False, "invalid_method": False, "method_maintenance": True,
    "missing_did": False, "invalid_did": False, "missing_dst": False, "invalid_dst": False,
    "message_empty": False, "sms_toolong": False, "sms_failed": True,
    "exceeds_file_size": False, "no_base64file": False, "sms_apply_regulations": False,
    "sms_wait_message": True, "tls_error": True, "invalid_to_number": False,
    "invalid_from_number": False,
}


async def test_every_error_status_is_classified(fake) -> None:
    carrier, server = fake
    provider = voipms(server)
    async with aiohttp.ClientSession() as http:
        for status, retryable in STATUSES.items():
            carrier.fail_next(status)
            with pytest.raises(ProviderError) as err:
                await provider.send(message("hi"), http)
            assert (err.value.code, err.value.retryable) == (status, retryable), status
            assert PASSWORD not in str(err.value)
    assert carrier.sent == []


async def test_wrong_password_is_final_and_not_echoed(fake) -> None:
    _, server = fake
    async with aiohttp.ClientSession() as http:
        with pytest.raises(ProviderError) as err:
            await voipms(server, password="wrong-Pa55word").send(message("hi"), http)
    assert (err.value.code, err.value.retryable) == ("invalid_credentials", False)
    assert "wrong-Pa55word" not in str(err.value) and "wrong-Pa55word" not in repr(err.value)


async def test_real_refusals_from_the_fake_are_final(fake) -> None:
    _, server = fake
    async with aiohttp.ClientSession() as http:
        with pytest.raises(ProviderError) as err:
            await voipms(server).send(OutboundMessage("m", "+12025550100", CONTACT, "hi"), http)
        assert (err.value.code, err.value.retryable) == ("invalid_did", False)
        with pytest.raises(ProviderError) as err:
            await voipms(server).send(message(""), http)
        assert (err.value.code, err.value.retryable) == ("message_empty", False)


async def test_non_nanp_destination_is_refused_before_sending(fake) -> None:
    carrier, server = fake
    async with aiohttp.ClientSession() as http:
        with pytest.raises(ProviderError) as err:
            await voipms(server).send(OutboundMessage("m", DID, "+447700900123", "hi"), http)
    assert err.value.retryable is False
    assert carrier.requests == []


async def test_http_5xx_and_429_are_retryable(fake) -> None:
    carrier, server = fake
    async with aiohttp.ClientSession() as http:
        carrier.http_error_next(503)
        with pytest.raises(ProviderError) as err:
            await voipms(server).send(message("hi"), http)
        assert (err.value.code, err.value.retryable) == ("http_503", True)
        carrier.http_error_next(429, retry_after="30")
        with pytest.raises(ProviderError) as err:
            await voipms(server).send(message("hi"), http)
        assert (err.value.retryable, err.value.retry_after) == (True, 30.0)
        # The faults are used up: the next send goes through.
        await voipms(server).send(message("hi"), http)
    assert len(carrier.sent) == 1


async def test_timeout_is_retryable(fake) -> None:
    carrier, server = fake
    carrier.delay_seconds = 0.5
    async with aiohttp.ClientSession() as http:
        with pytest.raises(ProviderError) as err:
            await voipms(server, timeout_seconds=0.1).send(message("hi"), http)
    assert (err.value.code, err.value.retryable) == ("timeout", True)


async def test_connection_refused_is_retryable() -> None:
    config = VoipmsConfig(username="me@example.com", api_password=PASSWORD,
                          base_url=f"http://127.0.0.1:{free_port()}")
    async with aiohttp.ClientSession() as http:
        with pytest.raises(ProviderError) as err:
            await VoipmsProvider(config).send(message("hi"), http)
    assert (err.value.code, err.value.retryable) == ("connection_error", True)
    assert PASSWORD not in str(err.value)


# --------------------------------------------------------------------------- inbound


def id_only(msg_id: str, media: tuple[Media, ...] = ()) -> InboundMessage:
    return InboundMessage(msg_id, CONTACT, DID, None, media)


async def test_id_only_callback_is_completed_by_get_sms(fake) -> None:
    carrier, server = fake
    carrier.add_received(700001, "5145550100", "4385550123", "someone else")
    carrier.add_received(700002, "5145550100", "4385550123", "ARM SV\r\nnow 😀")
    async with aiohttp.ClientSession() as http:
        [done] = await voipms(server).complete_inbound([id_only("700002")], http)
    assert done.text == "ARM SV\r\nnow 😀"
    assert carrier.requests[-1].method == "getSMS"
    assert carrier.requests[-1].params["sms"] == "700002"


async def test_id_only_mms_is_completed_by_get_mms(fake) -> None:
    carrier, server = fake
    carrier.add_received(700003, "5145550100", "4385550123", "photo caption",
                         media=["https://voip.ms/media.php?map=1"])
    media = (Media("application/octet-stream", url="https://voip.ms/media.php?map=1"),)
    async with aiohttp.ClientSession() as http:
        [done] = await voipms(server).complete_inbound([id_only("700003", media)], http)
    assert (done.text, done.media) == ("photo caption", media)


@pytest.mark.parametrize("failure", ["no_row", "api_error", "http_500"])
async def test_failed_get_sms_is_retryable(fake, failure: str) -> None:
    carrier, server = fake
    carrier.add_received(700004, "5145550100", "4385550123", "hello")
    if failure == "no_row":
        wanted = "799999"
    else:
        wanted = "700004"
        if failure == "api_error":
            carrier.fail_next("api_limit_exceeded", methods={"getSMS"})
        else:
            carrier.http_error_next(500, methods={"getSMS"})
    async with aiohttp.ClientSession() as http:
        with pytest.raises(ProviderError) as err:
            await voipms(server).complete_inbound([id_only(wanted)], http)
    assert err.value.retryable is True
    assert PASSWORD not in str(err.value)


@pytest.fixture
def gateway(fake) -> Iterator[tuple[Gateway, str]]:
    _, carrier_server = fake
    gw = Gateway(voipms(carrier_server), "/inbound", "/status", inbound_methods=("GET", "POST"))
    server = start_server(gw.app)
    yield gw, f"{server.url}/inbound"
    server.stop()


@pytest.mark.parametrize("text", ["plain", "two\r\nlines\nand a third", "émoji 😀 & = ; % +"])
async def test_fired_url_callback_arrives_intact(fake, gateway, text: str) -> None:
    carrier, _ = fake
    gw, url = gateway
    template = gw.provider.setup_hint(url, url).splitlines()[0]
    status, body = await carrier.fire_url_callback(
        template, from_="4385550123", to="5145550100", message=text, id="900001",
        timestamp="2024-05-20 11:29:45")
    assert (status, body) == (200, "ok")
    [got] = gw.inbound
    assert (got.text, got.from_number, got.to_number) == (text, CONTACT, DID)


async def test_fired_semicolon_callback_arrives_intact(fake, gateway) -> None:
    carrier, _ = fake
    gw, url = gateway
    template = f"{url}?to={{TO}};from={{FROM}};message={{MESSAGE}};id={{ID}}"
    status, body = await carrier.fire_url_callback(
        template, from_="4385550123", to="5145550100", message="a;b=c", id="900002",
        timestamp="")
    assert (status, body) == (200, "ok")
    assert gw.inbound[0].text == "a;b=c"


async def test_fired_id_only_callback_is_completed(fake, gateway) -> None:
    carrier, _ = fake
    gw, url = gateway
    carrier.add_received(900003, "5145550100", "4385550123", "fetched later")
    template = gw.provider.setup_hint(url, url).splitlines()[1].rsplit(": ", 1)[1]
    status, body = await carrier.fire_url_callback(
        template, from_="4385550123", to="5145550100", message="ignored", id="900003",
        timestamp="2024-05-20 11:29:45")
    assert (status, body) == (200, "ok")
    assert gw.inbound[0].text is None
    async with aiohttp.ClientSession() as http:
        [done] = await gw.provider.complete_inbound(gw.inbound, http)
    assert done.text == "fetched later"


async def test_fired_json_webhook_is_read(fake, gateway) -> None:
    carrier, _ = fake
    gw, url = gateway
    status, _ = await carrier.fire_webhook(
        url, from_="+14385550123", to="+15145550100", message="json 😀", id="900004",
        media=[("https://voip.ms/media.php?map=7", "image/png")])
    assert status == 200
    [got] = gw.inbound
    assert (got.carrier_message_id, got.text) == ("900004", "json 😀")
    assert [(m.url, m.content_type) for m in got.media] == [
        ("https://voip.ms/media.php?map=7", "image/png")]

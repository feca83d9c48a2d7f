"""VoIP.ms provider, table-driven: recorded payloads in, messages or the precise error out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smsbridge.core.errors import MalformedWebhook, ProviderError
from smsbridge.core.messages import InboundMessage, OutboundMessage
from smsbridge.providers.base import WebhookRequest
from smsbridge.providers.registry import get_provider_class
from smsbridge.providers.voipms.provider import VoipmsConfig, VoipmsProvider, split_utf8
from smsbridge.testing.server import RunningServer, start_server

FIXTURES = Path(__file__).parent / "fixtures"
GATEWAY = "https://gw.example.com/v1/carriers/voipms/tok123/inbound"
PASSWORD = "s3cr3t-API-pw"
DID, CONTACT = "+15145550100", "+14385550123"


def provider(base_url: str | None = None, **options: Any) -> VoipmsProvider:
    config = VoipmsConfig(username="me@example.com", api_password=PASSWORD,
                          base_url=base_url, **options)
    return VoipmsProvider(config)


def callback_request(name: str) -> WebhookRequest:
    """A GET callback as the web framework hands it over: query split on '&' and decoded."""
    query = (FIXTURES / name).read_text()
    return WebhookRequest("GET", f"{GATEWAY}?{query}", {},
                          parse_qsl(query, keep_blank_values=True))


def json_request(name: str) -> WebhookRequest:
    return WebhookRequest("POST", GATEWAY, {"content-type": "application/json"}, [],
                          (FIXTURES / name).read_bytes())


def form_request(name: str) -> WebhookRequest:
    return WebhookRequest("POST", GATEWAY,
                          {"content-type": "application/x-www-form-urlencoded"}, [],
                          (FIXTURES / name).read_bytes())


# --------------------------------------------------------------------------- inbound table

JPEG, OCTET = "image/jpeg", "application/octet-stream"
INBOUND_CASES = [
    # fixture, request builder, id, from, to, text, media (url, content_type)
    ("callback_plain.query", callback_request, "123456789", CONTACT, DID, "Hello there", []),
    ("callback_multiline.query", callback_request, "123456790", CONTACT, DID,
     "ARM SV\r\nsecond line\nthird line", []),
    ("callback_emoji.query", callback_request, "123456791", CONTACT, DID,
     "Café 😀 👍🏽", []),
    ("callback_mms.query", callback_request, "987654321", CONTACT, DID, "Look at this",
     [("https://voip.ms/media.php?map=AbC123", OCTET),
      ("https://cdn.example.com/mms/photo.jpg", JPEG)]),
    ("callback_id_only.query", callback_request, "123456792", CONTACT, DID, None, []),
    ("callback_empty_message.query", callback_request, "123456793", CONTACT, DID, "", []),
    ("callback_semicolon.query", callback_request, "123456794", CONTACT, DID,
     "Semi;colon text", []),
    ("callback_e164.query", callback_request, "123456795", CONTACT, DID, "E164 dialmode", []),
    ("callback_e164_no_plus.query", callback_request, "123456796", CONTACT, DID,
     "Eleven digits", []),
    ("form_post.form", form_request, "123456800", CONTACT, DID, "Posted form\r\nwith ✓", []),
    ("webhook_sms.json", json_request, "123456801", CONTACT, DID,
     "Hello from the webhook\nsecond line 😀", []),
    ("webhook_mms.json", json_request, "987654322", CONTACT, DID, "",
     [("https://voip.ms/media.php?map=XyZ789", JPEG),
      ("https://cdn.example.com/mms/clip.mp4", "video/mp4")]),
]


@pytest.mark.parametrize(("fixture", "build", "msg_id", "from_", "to", "text", "media"),
                         INBOUND_CASES, ids=[case[0] for case in INBOUND_CASES])
def test_inbound_fixture_parses(fixture, build, msg_id, from_, to, text, media) -> None:
    [message] = provider().parse_inbound(build(fixture))
    assert message.carrier_message_id == msg_id
    assert (message.from_number, message.to_number) == (from_, to)
    assert message.text == text
    assert [(m.url, m.content_type) for m in message.media] == media


MALFORMED_CASES = [
    ("callback_missing_from.query", callback_request, "'from'"),
    ("callback_missing_id.query", callback_request, "'id'"),
    ("callback_missing_to.query", callback_request, "'to'"),
    ("callback_bad_from.query", callback_request, "from"),
    ("webhook_missing_from.json", json_request, "data.payload.from.phone_number"),
    ("webhook_missing_to.json", json_request, "data.payload.to[0].phone_number"),
    ("webhook_no_payload.json", json_request, "data.payload"),
]


@pytest.mark.parametrize(("fixture", "build", "names"), MALFORMED_CASES,
                         ids=[case[0] for case in MALFORMED_CASES])
def test_inbound_fixture_is_malformed(fixture, build, names) -> None:
    with pytest.raises(MalformedWebhook) as err:
        provider().parse_inbound(build(fixture))
    assert names in err.value.reason


def test_webhook_keeps_the_carriers_receive_time() -> None:
    [message] = provider().parse_inbound(json_request("webhook_sms.json"))
    assert message.received_at.isoformat() == "2024-05-20T15:29:45+00:00"


def test_semicolon_query_without_raw_url_is_resplit() -> None:
    # Some front ends hand over the decoded pairs but not the original query string.
    query = (FIXTURES / "callback_semicolon.query").read_text()
    request = WebhookRequest("GET", GATEWAY, {}, parse_qsl(query, keep_blank_values=True))
    [message] = provider().parse_inbound(request)
    assert (message.carrier_message_id, message.text) == ("123456794", "Semi;colon text")
    assert message.from_number == CONTACT


def test_multipart_form_post_is_read() -> None:
    boundary = "b0undary"
    fields = {"to": "5145550100", "from": "4385550123", "message": "Multipart\r\nhé 😀",
              "id": "55501"}
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode()
        + v.encode() + b"\r\n" for k, v in fields.items()
    ) + f"--{boundary}--\r\n".encode()
    request = WebhookRequest("POST", GATEWAY,
                             {"content-type": f"multipart/form-data; boundary={boundary}"}, [],
                             body)
    [message] = provider().parse_inbound(request)
    assert (message.carrier_message_id, message.text) == ("55501", "Multipart\r\nhé 😀")


def test_json_body_that_is_not_json_is_malformed() -> None:
    request = WebhookRequest("POST", GATEWAY, {"content-type": "application/json"}, [],
                             b"{not json")
    with pytest.raises(MalformedWebhook):
        provider().parse_inbound(request)


def test_inbound_reply_is_exactly_ok() -> None:
    reply = provider().inbound_reply([])
    assert (reply.status, reply.body) == (200, b"ok")
    assert reply.content_type.startswith("text/plain")


def test_no_delivery_receipts() -> None:
    with pytest.raises(MalformedWebhook):
        provider().parse_status(json_request("webhook_sms.json"))


def test_setup_hint_prints_the_callback_template_and_alternatives() -> None:
    hint = provider().setup_hint(GATEWAY, GATEWAY.replace("inbound", "status"))
    assert hint is not None
    first, *rest = hint.splitlines()
    assert first == (f"{GATEWAY}?to={{TO}}&from={{FROM}}&message={{MESSAGE}}&id={{ID}}"
                     "&date={TIMESTAMP}&media={MEDIA}")
    others = "\n".join(rest)
    assert f"{GATEWAY}?to={{TO}}&from={{FROM}}&id={{ID}}" in others
    assert "{MESSAGE}" not in others
    assert "Webhook" in others


def test_registry_finds_the_provider() -> None:
    assert get_provider_class("voipms") is VoipmsProvider


def test_config_rejects_unknown_keys_and_hides_the_password() -> None:
    with pytest.raises(ValidationError):
        VoipmsConfig(username="me@example.com", api_password="x", dialmode="e164")
    assert PASSWORD not in repr(provider().config)


# --------------------------------------------------------------------------- split


@pytest.mark.parametrize("text", [
    "word " * 100,
    "é" * 200,  # 2-byte characters, no whitespace: hard cuts between characters
    "😀" * 81,  # 4-byte characters; 160 is a multiple of 4
    "a" + "😀" * 80,  # 4-byte characters that never line up with the 160-byte edge
    "line one\r\n" * 40,
])
def test_split_parts_fit_and_join_back(text: str) -> None:
    parts = split_utf8(text, 160)
    assert len(parts) > 1
    assert "".join(parts) == text
    assert all(0 < len(part.encode("utf-8")) <= 160 for part in parts)


def test_split_prefers_whitespace() -> None:
    text = " ".join(["abcdefghij"] * 30)  # words of 10 letters
    parts = split_utf8(text, 160)
    assert all(part.endswith(" ") for part in parts[:-1])


def test_split_keeps_short_text_whole() -> None:
    assert split_utf8("short", 160) == ["short"]


# --------------------------------------------------------------------------- recorded answers


class Stub:
    """An HTTP server that answers every request with the body a test sets."""

    def __init__(self) -> None:
        self.body = b"{}"
        self.status = 200
        self.headers: dict[str, str] = {}
        self.seen: list[bytes] = []
        self.app = Starlette(routes=[Route("/api/v1/rest.php", self._answer, methods=["POST"])])

    async def _answer(self, request: Request) -> Response:
        self.seen.append(await request.body())
        return Response(self.body, self.status, self.headers, media_type="application/json")

    def answer_with(self, fixture: str, status: int = 200, **headers: str) -> None:
        self.body, self.status, self.headers = (FIXTURES / fixture).read_bytes(), status, headers


@pytest.fixture(scope="module")
def stub_server() -> Iterator[tuple[Stub, RunningServer]]:
    stub = Stub()
    server = start_server(stub.app)
    yield stub, server
    server.stop()


@pytest.fixture
def stub(stub_server: tuple[Stub, RunningServer]) -> Stub:
    stub_server[0].seen.clear()
    return stub_server[0]


@pytest.fixture
def stub_url(stub_server: tuple[Stub, RunningServer]) -> str:
    return stub_server[1].url


def outbound(text: str = "hi") -> OutboundMessage:
    return OutboundMessage("msg-1", DID, CONTACT, text)


async def test_success_answers_give_the_carrier_id(stub: Stub, stub_url: str) -> None:
    async with aiohttp.ClientSession() as http:
        stub.answer_with("send_success_sms.json")
        sms = await provider(stub_url).send(outbound("hi"), http)
        stub.answer_with("send_success_mms.json")
        mms = await provider(stub_url).send(outbound("x" * 161), http)
    assert (sms.carrier_message_id, mms.carrier_message_id) == ("23434", "23435")


# voipms.md §4: which refusals a retry can fix.
RETRYABLE = {"api_limit_exceeded", "sms_failed", "method_maintenance", "tls_error",
             "sms_wait_message"}
ERROR_FIXTURES = sorted(p.name for p in FIXTURES.glob("send_error_*.json"))


@pytest.mark.parametrize("fixture", ERROR_FIXTURES)
async def test_error_answer_is_classified(fixture: str, stub: Stub, stub_url: str) -> None:
    status = json.loads((FIXTURES / fixture).read_text())["status"]
    stub.answer_with(fixture)
    async with aiohttp.ClientSession() as http:
        with pytest.raises(ProviderError) as err:
            await provider(stub_url).send(outbound(), http)
    assert err.value.code == status
    assert err.value.retryable is (status in RETRYABLE)
    assert PASSWORD not in str(err.value)
    assert status in str(err.value)


async def test_html_error_page_is_retryable(stub: Stub, stub_url: str) -> None:
    stub.answer_with("send_html_502.html", status=502)
    async with aiohttp.ClientSession() as http:
        with pytest.raises(ProviderError) as err:
            await provider(stub_url).send(outbound(), http)
    assert (err.value.retryable, err.value.code) == (True, "http_502")


async def test_non_json_body_with_200_is_retryable(stub: Stub, stub_url: str) -> None:
    stub.answer_with("send_html_502.html", status=200)
    async with aiohttp.ClientSession() as http:
        with pytest.raises(ProviderError) as err:
            await provider(stub_url).send(outbound(), http)
    assert (err.value.retryable, err.value.code) == (True, "invalid_response")


async def test_429_carries_retry_after(stub: Stub, stub_url: str) -> None:
    stub.answer_with("send_error_api_limit_exceeded.json", status=429, **{"Retry-After": "17"})
    async with aiohttp.ClientSession() as http:
        with pytest.raises(ProviderError) as err:
            await provider(stub_url).send(outbound(), http)
    assert (err.value.retryable, err.value.retry_after) == (True, 17.0)


def id_only() -> InboundMessage:
    [message] = provider().parse_inbound(callback_request("callback_id_only.query"))
    return message


async def test_id_only_callback_is_completed_from_get_sms(stub: Stub, stub_url: str) -> None:
    stub.answer_with("getsms_success.json")
    async with aiohttp.ClientSession() as http:
        [message] = await provider(stub_url).complete_inbound([id_only()], http)
    assert message.text == "Fetched text\r\nwith a line break ✓"
    assert (message.carrier_message_id, message.from_number) == ("123456792", CONTACT)
    assert b'name="sms"\r\n\r\n123456792\r\n' in stub.seen[-1]
    assert b'name="method"\r\n\r\ngetSMS\r\n' in stub.seen[-1]


@pytest.mark.parametrize("fixture", ["getsms_no_sms.json", "getsms_other_id.json",
                                     "send_error_invalid_credentials.json"])
async def test_failed_get_sms_is_retryable(fixture: str, stub: Stub, stub_url: str) -> None:
    stub.answer_with(fixture)
    async with aiohttp.ClientSession() as http:
        with pytest.raises(ProviderError) as err:
            await provider(stub_url).complete_inbound([id_only()], http)
    assert err.value.retryable is True
    assert PASSWORD not in str(err.value)


async def test_messages_with_text_are_not_fetched(stub: Stub, stub_url: str) -> None:
    [message] = provider().parse_inbound(callback_request("callback_empty_message.query"))
    async with aiohttp.ClientSession() as http:
        assert await provider(stub_url).complete_inbound([message], http) == [message]
    assert stub.seen == []

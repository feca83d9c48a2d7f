"""VoIP Number: documented payloads in, messages/errors out; sends over real HTTP."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from smsbridge.core.errors import MalformedWebhook, ProviderError
from smsbridge.core.messages import Media, MessageStatus, OutboundMessage
from smsbridge.providers import UNSIGNED, Provider, WebhookRequest, get_provider_class
from smsbridge.providers.voipnumber.provider import (
    FINAL_ERROR_CODES,
    VoipNumberConfig,
    VoipNumberProvider,
)
from smsbridge.testing.server import RunningServer
from tests.providers.replay import Replay, path_headers_json

FIXTURES = Path(__file__).parent / "fixtures"
ACCOUNT_ID = "5f0c2a9e-71b4-4d3a-8e62-b1f9c0d4a7e3"
TOKEN = "Vn7qK2xR9mB4tW1zP6yH3jL8eS5aD0fG"
INBOUND_URL = "https://sms.example.com/v1/carriers/voipnumber/Zq3kP9wX/inbound"
STATUS_URL = "https://sms.example.com/v1/carriers/voipnumber/Zq3kP9wX/status"
# The headers VoIP Number's webhook carries (npm README); the Host one proves nothing.
CARRIER_HEADERS = {"content-type": "application/json", "host": "api.voipnumber.net",
                   "x-forwarded-port": "443", "x-forwarded-proto": "https"}


def make_provider(**options: Any) -> VoipNumberProvider:
    return VoipNumberProvider(VoipNumberConfig(account_id=ACCOUNT_ID, api_token=TOKEN,
                                               **options))


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def changed(name: str, key: str, value: Any) -> Any:
    """A fixture with one top-level value replaced (``...`` deletes it)."""
    document = copy.deepcopy(fixture(name))
    if value is ...:
        del document[key]
    else:
        document[key] = value
    return document


def post(document: Any) -> WebhookRequest:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return WebhookRequest("POST", INBOUND_URL, CARRIER_HEADERS, [], body)


def test_registered_and_declared_unsigned() -> None:
    cls = get_provider_class("voipnumber")
    assert cls is VoipNumberProvider
    assert cls.capabilities.signature == UNSIGNED and cls.contract_problems() == []


def test_capabilities_say_sms_only_e164_and_no_receipts() -> None:
    caps = VoipNumberProvider.capabilities
    assert (caps.sms, caps.mms, caps.max_media, caps.delivery_receipts) == (True, False, 0, False)
    assert caps.number_format == "e164"


# --- inbound messages ---------------------------------------------------------------------

INBOUND_CASES = [
    pytest.param(fixture("inbound_sms.json"), {
        "carrier_message_id": "da84a7b1-1a80-4e96-885e-e719d5ec909c",
        "from_number": "+447700900123", "to_number": "+447700900456", "text": "ARM SV",
        "media": (), "received_at": datetime(2024, 5, 20, 11, 29, 45, tzinfo=UTC)},
                 id="sms-as-documented"),
    pytest.param(fixture("inbound_mms.json"), {
        "carrier_message_id": "0b6f3c2e-8d41-4a57-9e2a-5c7d1f0e4b93", "text": "Front door",
        "media": ()}, id="mms-text-kept-media-undocumented"),
    pytest.param(fixture("inbound_sms_unicode.json"), {
        "from_number": "+14385550123", "to_number": "+15145550100",
        "text": "DISARM JF \u00e9t\u00e9 \U0001f512"}, id="nanp-numbers-unicode"),
    pytest.param(changed("inbound_mms.json", "body", ""), {"text": ""}, id="mms-without-text"),
    pytest.param(changed("inbound_sms.json", "body", ...), {"text": ""}, id="no-body-key"),
    pytest.param(changed("inbound_sms.json", "from", "HSBC"), {"from_number": "HSBC"},
                 id="alphanumeric-sender-kept"),
    pytest.param(changed("inbound_sms.json", "from", "60300"), {"from_number": "60300"},
                 id="short-code-sender-kept"),
    pytest.param(changed("inbound_sms.json", "from", "447700900123"),
                 {"from_number": "+447700900123"}, id="sender-without-plus"),
    pytest.param(changed("inbound_sms.json", "type", ...), {"text": "ARM SV"}, id="no-type"),
    pytest.param(changed("inbound_sms.json", "status", ...), {"text": "ARM SV"},
                 id="no-status"),
]


@pytest.mark.parametrize(("document", "expected"), INBOUND_CASES)
def test_parse_inbound(document: Any, expected: dict[str, Any]) -> None:
    [message] = make_provider().parse_inbound(post(document))
    for attribute, value in expected.items():
        assert getattr(message, attribute) == value, attribute


@pytest.mark.parametrize("stamp", [..., "20 May 2024", -5, True])
def test_an_unusable_timestamp_falls_back_to_the_time_of_receipt(stamp: Any) -> None:
    before = datetime.now(UTC)
    [message] = make_provider().parse_inbound(
        post(changed("inbound_sms.json", "mdr_timestamp_s", stamp)))
    assert message.received_at >= before and message.text == "ARM SV"


MALFORMED_INBOUND = [
    pytest.param(b"{not json", "not valid JSON", id="not-json"),
    pytest.param([fixture("inbound_sms.json")], "JSON object", id="a-list"),
    pytest.param(changed("inbound_sms.json", "mdr_id", ...), "mdr_id", id="no-mdr-id"),
    pytest.param(changed("inbound_sms.json", "mdr_id", ""), "mdr_id", id="empty-mdr-id"),
    pytest.param(changed("inbound_sms.json", "from", ...), "'from'", id="no-from"),
    pytest.param(changed("inbound_sms.json", "to", "  "), "'to'", id="blank-to"),
    pytest.param(changed("inbound_sms.json", "to", "HSBC"), "'to'", id="to-not-a-number"),
    pytest.param(changed("inbound_sms.json", "from", "not a number!"), "'from'",
                 id="from-not-a-number"),
    pytest.param(changed("inbound_sms.json", "body", 42), "'body'", id="body-not-a-string"),
    pytest.param(changed("inbound_sms.json", "type", "voice"), "'type'", id="unknown-type"),
    pytest.param(changed("inbound_sms.json", "status", "delivered"), "'status'",
                 id="not-a-received-message"),
]


@pytest.mark.parametrize(("document", "names"), MALFORMED_INBOUND)
def test_malformed_inbound_names_the_field(document: Any, names: str) -> None:
    with pytest.raises(MalformedWebhook, match=names):
        make_provider().parse_inbound(post(document))


def test_inbound_reply_is_an_empty_200() -> None:
    reply = make_provider().inbound_reply([])
    assert (reply.status, reply.body) == (200, b"")


def test_there_are_no_status_callbacks() -> None:
    with pytest.raises(MalformedWebhook, match="no status callbacks"):
        make_provider().parse_status(WebhookRequest("POST", STATUS_URL, CARRIER_HEADERS, [],
                                                    json.dumps({"status": "delivered"}).encode()))


def test_verify_trusts_nothing_in_the_request_the_url_token_guards_it() -> None:
    # verify() passes anything, Host header or not: the gateway's URL token check is the
    # guard (tests/e2e/test_voipnumber_e2e.py shows a forged Host being refused).
    make_provider().verify(post(fixture("inbound_sms.json")))
    assert VoipNumberProvider.verify is Provider.verify


# --- config and setup ---------------------------------------------------------------------

def test_config_never_shows_the_token() -> None:
    config = VoipNumberConfig(account_id=ACCOUNT_ID, api_token=TOKEN)
    assert TOKEN not in repr(config) and TOKEN not in str(config.model_dump())


def test_config_defaults() -> None:
    provider = make_provider()
    assert provider.base_url == "https://api.voipnumber.net"
    assert provider.config.send_path == "/sms/send"


@pytest.mark.parametrize(("options", "names"), [
    pytest.param({"apiToken": "x"}, "apiToken", id="unknown-key"),
    pytest.param({"send_path": "sms/send"}, "send_path", id="path-without-slash"),
    pytest.param({"send_path": "/sms/send?x=1"}, "send_path", id="path-with-query"),
    pytest.param({"send_path": "/sms send"}, "send_path", id="path-with-space"),
])
def test_config_refuses_bad_keys(options: dict[str, Any], names: str) -> None:
    with pytest.raises(ValueError, match=names):
        VoipNumberConfig(account_id=ACCOUNT_ID, api_token=TOKEN, **options)


def test_config_refuses_an_empty_account_id() -> None:
    with pytest.raises(ValueError, match="account_id"):
        VoipNumberConfig(account_id="", api_token=TOKEN)


def test_setup_hint_names_the_sms_webhook() -> None:
    hint = make_provider().setup_hint(INBOUND_URL, STATUS_URL)
    assert hint is not None and INBOUND_URL in hint and "SMS Webhook" in hint
    assert "no delivery receipts" in hint


# --- send: exact requests and recorded answers over real HTTP -------------------------------

@pytest.fixture(scope="module")
def new_replay() -> Replay:
    """The send API: 200 and JSON; keeps path, headers and the parsed body."""
    return Replay(200, "application/json", path_headers_json)


@pytest.fixture
def replay_provider(replay_server: tuple[Replay, RunningServer]) -> VoipNumberProvider:
    return make_provider(base_url=replay_server[1].url)


def load(replay: Replay, name: str, status: int = 200, **headers: str) -> None:
    replay.load(FIXTURES / name, status, **headers)


OUT_ID = "feefcc83-d6ae-4580-b4dc-6ee16b37ff04"
SMS = OutboundMessage("msg_1", "+447700900456", "+447700900123", "Porch motion at 02:14")


@pytest.mark.parametrize("answer", ["send_ok.json", "send_ok_single_wrapper.json"])
async def test_send_makes_the_exact_request(replay: Replay, replay_provider: VoipNumberProvider,
                                            http: aiohttp.ClientSession, answer: str) -> None:
    load(replay, answer)
    result = await replay_provider.send(SMS, http)
    assert (result.carrier_message_id, result.status) == (OUT_ID, MessageStatus.SENT)
    [(path, headers, body)] = replay.seen
    assert path == "/sms/send"
    assert body == {"accountId": ACCOUNT_ID, "apiToken": TOKEN, "from": "+447700900456",
                    "to": "+447700900123", "body": "Porch motion at 02:14"}
    assert headers["content-type"].startswith("application/json")
    assert "authorization" not in headers


async def test_send_path_and_base_url_can_be_overridden(
        replay: Replay, replay_server: tuple[Replay, RunningServer],
        http: aiohttp.ClientSession) -> None:
    load(replay, "send_ok.json")
    provider = make_provider(base_url=replay_server[1].url + "/", send_path="/api/v1/sms")
    await provider.send(SMS, http)
    [(path, _, _)] = replay.seen
    assert path == "/api/v1/sms"


async def test_media_is_refused_without_a_call(
        replay: Replay, replay_provider: VoipNumberProvider, http: aiohttp.ClientSession) -> None:
    mms = OutboundMessage("msg_2", "+447700900456", "+447700900123", "x",
                          (Media("image/jpeg", "https://cdn.example.com/cam1.jpg"),))
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(mms, http)
    assert (caught.value.retryable, caught.value.code) == (False, "no_mms")
    assert replay.seen == []


# Each documented code is final and kept exact, whatever HTTP status carries it.
DOCUMENTED_ERRORS = [
    ("error_user_account_missing.json", "USER_ACCOUNT_MISSING", "AccountId not set or empty"),
    ("error_api_token_missing.json", "API_TOKEN_MISSING", "API token not set or empty"),
    ("error_user_not_found.json", "USER_NOT_FOUND", "User not found"),
    ("error_api_token_invalid.json", "API_TOKEN_INVALID", "API token doesn't match AccountId"),
    ("error_number_not_found.json", "NUMBER_NOT_FOUND", "Number doesn't exist on VoIP Number"),
    ("error_number_ownership.json", "NUMBER_OWNERSHIP", "Number doesn't belong to this account"),
    ("error_message_invalid.json", "MESSAGE_INVALID", "Coding syntax error"),
]


def test_every_documented_code_is_in_the_table() -> None:
    assert {code for _, code, _ in DOCUMENTED_ERRORS} == FINAL_ERROR_CODES


@pytest.mark.parametrize("status", [200, 400, 401, 500, 503])
@pytest.mark.parametrize(("name", "code", "text"), DOCUMENTED_ERRORS)
async def test_documented_errors_are_final(replay: Replay, replay_provider: VoipNumberProvider,
                                           http: aiohttp.ClientSession, name: str, code: str,
                                           text: str, status: int) -> None:
    load(replay, name, status, **{"Retry-After": "5"})
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(SMS, http)
    error = caught.value
    assert (error.retryable, error.code, error.reason) == (False, code, f"VoIP Number: {text}")


def error_body(code: str, text: str, *, wrapped: bool = False) -> bytes:
    error = {"status": "Error", "result": {"error_code": code, "error": text}}
    return json.dumps({"status": "OK", "result": error} if wrapped else error).encode()


SEND_ERRORS = [
    # An SDK-style OK wrapper around the server's error (one more level than documented).
    pytest.param(200, error_body("NUMBER_OWNERSHIP", "Number doesn't belong to this account",
                                 wrapped=True), {}, False, "NUMBER_OWNERSHIP", None,
                 "VoIP Number: Number doesn't belong to this account", id="error-in-ok-wrapper"),
    # A code the docs do not list: the HTTP status decides.
    pytest.param(200, error_body("RATE_LIMITED", "Slow down"), {}, False, "RATE_LIMITED", None,
                 "VoIP Number: Slow down", id="undocumented-code-on-200-is-final"),
    pytest.param(503, error_body("RATE_LIMITED", "Slow down"), {"Retry-After": "9"}, True,
                 "RATE_LIMITED", 9.0, "VoIP Number: Slow down",
                 id="undocumented-code-on-503-is-retried"),
    pytest.param(400, b'{"status": "Error", "result": {}}', {}, False, "http_400", None,
                 "VoIP Number: error", id="error-without-detail"),
]


@pytest.mark.parametrize(("status", "body", "headers", "retryable", "code", "retry_after",
                          "reason"), SEND_ERRORS)
async def test_send_error_shapes(replay: Replay, replay_provider: VoipNumberProvider,
                                 http: aiohttp.ClientSession, status: int, body: bytes,
                                 headers: dict[str, str], retryable: bool, code: str,
                                 retry_after: float | None, reason: str) -> None:
    replay.status, replay.body, replay.headers = status, body, headers
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(SMS, http)
    error = caught.value
    assert (error.retryable, error.code, error.retry_after, error.reason) == (
        retryable, code, retry_after, reason)


HTTP_ERRORS = [
    pytest.param("error_429.html", 429, {"Retry-After": "7"}, True, "http_429", 7.0,
                 id="429-throttled"),
    pytest.param("error_503.html", 503, {}, True, "http_503", None, id="503"),
    pytest.param("error_404.html", 404, {}, False, "http_404", None, id="404-wrong-path"),
]


@pytest.mark.parametrize(("name", "status", "headers", "retryable", "code", "retry_after"),
                         HTTP_ERRORS)
async def test_http_errors_without_an_error_body(
        replay: Replay, replay_provider: VoipNumberProvider, http: aiohttp.ClientSession,
        name: str, status: int, headers: dict[str, str], retryable: bool, code: str,
        retry_after: float | None) -> None:
    load(replay, name, status, **headers)
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(SMS, http)
    error = caught.value
    assert (error.retryable, error.code, error.retry_after) == (retryable, code, retry_after)


async def test_a_404_points_at_the_send_path_setting(
        replay: Replay, replay_provider: VoipNumberProvider, http: aiohttp.ClientSession) -> None:
    load(replay, "error_404.html", 404)
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(SMS, http)
    assert "send_path" in caught.value.reason and "/sms/send" in caught.value.reason


async def test_the_token_echoed_by_an_error_is_masked(
        replay: Replay, replay_provider: VoipNumberProvider, http: aiohttp.ClientSession) -> None:
    replay.body = error_body("API_TOKEN_INVALID", f"token {TOKEN} does not match")
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(SMS, http)
    assert TOKEN not in caught.value.reason and "***" in caught.value.reason


@pytest.mark.parametrize("body", [
    pytest.param((FIXTURES / "send_ok_without_id.json").read_bytes(), id="record-without-id"),
    pytest.param(b"", id="empty"),
    pytest.param(b"{}", id="empty-object"),
    pytest.param(b'{"status": "OK", "result": "queued"}', id="result-not-an-object"),
    pytest.param(b'{"status": "OK", "result": {"status": "OK", "result": {"id": ""}}}',
                 id="blank-id"),
    pytest.param(b"<html>OK</html>", id="html"),
])
async def test_an_answer_without_an_id_is_not_retried(
        replay: Replay, replay_provider: VoipNumberProvider, http: aiohttp.ClientSession,
        body: bytes) -> None:
    replay.body = body
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(SMS, http)
    assert (caught.value.retryable, caught.value.code) == (False, "no_id")


async def test_unreachable_carrier_is_retryable(http: aiohttp.ClientSession) -> None:
    provider = make_provider(base_url="http://127.0.0.1:9", timeout_seconds=2)
    with pytest.raises(ProviderError) as caught:
        await provider.send(SMS, http)
    assert (caught.value.retryable, caught.value.code) == (True, "connection_error")


def test_one_request_per_message_bounds_the_send_time() -> None:
    provider = make_provider(timeout_seconds=12)
    assert provider.max_send_seconds() == provider.max_send_seconds(SMS) == 12

"""Peerless Network: recorded-shape payloads in, messages/replies/errors out; sends over HTTP.

inbound_readme_example.json is the payload in jambonz's messaging-peerless README and
send_200.json the answer jambonz's docs show; the other inbound fixtures vary that shape.
The error bodies are assumed (shaped like the success answer): no Peerless error is public.
"""

from __future__ import annotations

import base64
import copy
import json
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import ValidationError

from smsbridge.core.errors import MalformedWebhook, ProviderError
from smsbridge.core.messages import Media, MessageStatus, OutboundMessage
from smsbridge.providers import UNSIGNED, WebhookRequest, get_provider_class
from smsbridge.providers.peerless.provider import PeerlessConfig, PeerlessProvider
from smsbridge.testing.server import RunningServer
from tests.providers.replay import Replay, path_headers_json

FIXTURES = Path(__file__).parent / "fixtures"
SEND_URL = "https://sms.peerless.example/partners/messageReceiving/300417/submitMessage"
USERNAME = "acme-sms"
PASSWORD = "Qw7eR2tY9uI4oP1aS6dF3gH8"
INBOUND_URL = "https://sms.example.com/v1/carriers/peerless/Zq3kP9wX/inbound"
STATUS_URL = "https://sms.example.com/v1/carriers/peerless/Zq3kP9wX/status"


def make_provider(**options: Any) -> PeerlessProvider:
    settings = {"url": SEND_URL, "username": USERNAME, "password": PASSWORD, **options}
    return PeerlessProvider(PeerlessConfig(**settings))


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def changed(name: str, key: str, value: Any) -> Any:
    """A fixture with one top-level key replaced (``...`` deletes it)."""
    document = copy.deepcopy(fixture(name))
    if value is ...:
        del document[key]
    else:
        document[key] = value
    return document


def post(document: Any) -> WebhookRequest:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return WebhookRequest("POST", INBOUND_URL, {"content-type": "application/json"}, [], body)


def test_registered_declared_unsigned_and_without_receipts() -> None:
    cls = get_provider_class("peerless")
    assert cls is PeerlessProvider
    assert cls.capabilities.signature == UNSIGNED and cls.contract_problems() == []
    assert cls.capabilities.delivery_receipts is False


# --- inbound messages ---------------------------------------------------------------------

MMS_URL = "https://mms.peerless.example/media/7f3c2a91/front.jpg"

INBOUND_CASES = [
    pytest.param(fixture("inbound_readme_example.json"), {
        "from_number": "+15083084809", "to_number": "+17743008772", "text": "Hi there!",
        "media": ()}, id="readme-example"),
    pytest.param(fixture("inbound_sms.json"), {
        "from_number": "+14385550123", "to_number": "+15145550100", "text": "ARM SV"},
                 id="sms"),
    pytest.param(fixture("inbound_mms.json"), {
        "text": "Front door", "media": (Media("image/jpeg", MMS_URL),)}, id="mms-one-url"),
    pytest.param(fixture("inbound_no_plus.json"), {
        "from_number": "+14385550123", "to_number": "+15145550100",
        "text": "DISARM JF \u00e9t\u00e9 \U0001f512"}, id="numbers-without-plus-unicode"),
    pytest.param(changed("inbound_mms.json", "text", None), {
        "text": "", "media": (Media("image/jpeg", MMS_URL),)}, id="mms-text-null"),
    pytest.param(changed("inbound_sms.json", "text", ...), {"text": ""}, id="no-text-key"),
    pytest.param(changed("inbound_mms.json", "mediaURL", "https://mms.peerless.example/m/1"),
                 {"media": (Media("application/octet-stream",
                                  "https://mms.peerless.example/m/1"),)},
                 id="media-type-unknown"),
    pytest.param(changed("inbound_mms.json", "mediaURL", [MMS_URL]),
                 {"media": (Media("image/jpeg", MMS_URL),)}, id="media-as-a-list"),
    pytest.param(changed("inbound_sms.json", "ccRecipients", None), {"text": "ARM SV"},
                 id="cc-null"),
    pytest.param(changed("inbound_sms.json", "from", "72345"), {"from_number": "72345"},
                 id="short-code-sender-kept"),
]


@pytest.mark.parametrize(("document", "expected"), INBOUND_CASES)
def test_parse_inbound(document: Any, expected: dict[str, Any]) -> None:
    [message] = make_provider().parse_inbound(post(document))
    for attribute, value in expected.items():
        assert getattr(message, attribute) == value, attribute


def test_each_webhook_gets_its_own_id_so_a_repeated_text_is_kept() -> None:
    provider = make_provider()
    [first] = provider.parse_inbound(post(fixture("inbound_sms.json")))
    [second] = provider.parse_inbound(post(fixture("inbound_sms.json")))
    assert str(uuid.UUID(first.carrier_message_id)) == first.carrier_message_id
    assert first.carrier_message_id != second.carrier_message_id


def test_group_message_is_one_message_per_distinct_number_recipients_then_cc() -> None:
    messages = make_provider().parse_inbound(post(fixture("inbound_group.json")))
    assert [m.to_number for m in messages] == ["+15145550100", "+14385550177", "+15145550101"]
    assert {(m.from_number, m.text) for m in messages} == {("+14385550123", "Dinner at 7?")}
    receipts = {m.carrier_message_id.partition(":")[0] for m in messages}
    assert len(receipts) == 1 and len({m.carrier_message_id for m in messages}) == 3
    assert [m.carrier_message_id.partition(":")[2] for m in messages] == [
        m.to_number for m in messages]


@pytest.mark.parametrize("name", ["inbound_sms.json", "inbound_group.json"])
def test_inbound_reply_is_the_json_receipt_peerless_requires(name: str) -> None:
    provider = make_provider()
    messages = provider.parse_inbound(post(fixture(name)))
    reply = provider.inbound_reply(messages)
    assert (reply.status, reply.content_type) == (200, "application/json")
    body = json.loads(reply.body)
    assert body == {"receipt": messages[0].carrier_message_id.partition(":")[0],
                    "status": "accepted"}


MALFORMED_INBOUND = [
    pytest.param(b"from=%2B14385550123", "not valid JSON", id="a-form-body"),
    pytest.param([fixture("inbound_sms.json")], "JSON object", id="a-json-array"),
    pytest.param(changed("inbound_sms.json", "from", ...), "'from'", id="no-from"),
    pytest.param(changed("inbound_sms.json", "from", "not a number"), "from", id="bad-from"),
    pytest.param(changed("inbound_sms.json", "recipients", ...), "'recipients' is empty",
                 id="no-recipients"),
    pytest.param(changed("inbound_sms.json", "recipients", []), "'recipients' is empty",
                 id="empty-recipients"),
    pytest.param(changed("inbound_sms.json", "recipients", "+15145550100"),
                 "'recipients' must be a list", id="recipients-not-a-list"),
    pytest.param(changed("inbound_sms.json", "recipients", ["+15145550100", 42]),
                 r"recipients\[1\]", id="recipient-not-a-string"),
    pytest.param(changed("inbound_sms.json", "ccRecipients", {}), "'ccRecipients' must be",
                 id="cc-not-a-list"),
    pytest.param(changed("inbound_sms.json", "text", 7), "'text'", id="text-not-a-string"),
    pytest.param(changed("inbound_mms.json", "mediaURL", "ftp://x/y.jpg"), "'mediaURL'",
                 id="media-not-http"),
    pytest.param(changed("inbound_mms.json", "mediaURL", 3), "'mediaURL'",
                 id="media-not-a-string"),
]


@pytest.mark.parametrize(("document", "names"), MALFORMED_INBOUND)
def test_malformed_inbound_names_the_field(document: Any, names: str) -> None:
    with pytest.raises(MalformedWebhook, match=names):
        make_provider().parse_inbound(post(document))


def test_no_status_callbacks() -> None:
    with pytest.raises(MalformedWebhook, match="no status callbacks"):
        make_provider().parse_status(post(fixture("inbound_sms.json")))


def test_verify_lets_any_request_through_the_url_token_guards_it() -> None:
    make_provider().verify(post(fixture("inbound_sms.json")))


# --- config and setup ---------------------------------------------------------------------

@pytest.mark.parametrize(("settings", "names"), [
    pytest.param({}, "url", id="no-url"),
    pytest.param({"url": "sms.peerless.example/submitMessage"}, "url", id="url-without-scheme"),
    pytest.param({"url": SEND_URL, "username": USERNAME}, "password is missing",
                 id="username-without-password"),
    pytest.param({"url": SEND_URL, "password": PASSWORD}, "username is missing",
                 id="password-without-username"),
    pytest.param({"url": SEND_URL, "base_url": "127.0.0.1:9"}, "base_url",
                 id="base-url-without-scheme"),
    pytest.param({"url": SEND_URL, "api_key": "x"}, "api_key", id="unknown-key"),
])
def test_config_refuses_with_the_key_named(settings: dict[str, Any], names: str) -> None:
    with pytest.raises(ValidationError, match=names):
        PeerlessConfig(**settings)


def test_config_never_shows_the_password() -> None:
    config = PeerlessConfig(url=SEND_URL, username=USERNAME, password=PASSWORD)
    assert PASSWORD not in repr(config) and PASSWORD not in str(config.model_dump())


def test_a_refused_config_does_not_print_the_password() -> None:
    with pytest.raises(ValidationError) as caught:
        PeerlessConfig(url=SEND_URL, password=PASSWORD)
    assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize(("base_url", "expected"), [
    pytest.param(None, SEND_URL, id="url-itself"),
    pytest.param("http://127.0.0.1:9011/",
                 "http://127.0.0.1:9011/partners/messageReceiving/300417/submitMessage",
                 id="base-url-replaces-the-host"),
    pytest.param("https://proxy.example/peerless",
                 "https://proxy.example/peerless/partners/messageReceiving/300417/submitMessage",
                 id="base-url-with-a-path"),
])
def test_send_url(base_url: str | None, expected: str) -> None:
    assert make_provider(base_url=base_url).send_url == expected


def test_base_url_keeps_the_query_of_url() -> None:
    provider = make_provider(url=SEND_URL + "?acct=7", base_url="http://127.0.0.1:9011")
    assert provider.send_url == (
        "http://127.0.0.1:9011/partners/messageReceiving/300417/submitMessage?acct=7")


def test_setup_hint_names_the_inbound_url_and_no_status_url() -> None:
    hint = make_provider().setup_hint(INBOUND_URL, STATUS_URL)
    assert hint is not None and INBOUND_URL in hint and STATUS_URL not in hint


def test_one_request_per_message_bounds_the_send_time() -> None:
    provider = make_provider(timeout_seconds=12)
    assert provider.max_send_seconds() == 12


# --- send: exact requests and recorded answers over real HTTP -------------------------------

@pytest.fixture(scope="module")
def new_replay() -> Replay:
    """Peerless's send URL: 200 and JSON; keeps path, headers and the parsed body."""
    return Replay(200, "application/json", path_headers_json,
                  (FIXTURES / "send_200.json").read_bytes())


@pytest.fixture
def replay_url(replay_server: tuple[Replay, RunningServer]) -> str:
    return replay_server[1].url


def load(replay: Replay, name: str, status: int, **headers: str) -> None:
    replay.load(FIXTURES / name, status, **headers)


SMS = OutboundMessage("msg_1", "+15145550100", "+14385550123", "Porch motion at 02:14")
MMS = OutboundMessage("msg_2", "+15145550100", "+14385550123", "Snapshot",
                      (Media("image/jpeg", "https://cdn.example.com/cam1.jpg"),))
MMS_ONLY = OutboundMessage("msg_3", "+15145550100", "+14385550123", "",
                           (Media("image/jpeg", "https://cdn.example.com/cam1.jpg"),))

SEND_CASES = [
    pytest.param(SMS, {"from": "+15145550100", "recipients": ["+14385550123"],
                       "ccRecipients": [], "text": "Porch motion at 02:14"}, id="sms"),
    pytest.param(MMS, {"from": "+15145550100", "recipients": ["+14385550123"],
                       "ccRecipients": [], "text": "Snapshot",
                       "mediaURL": ["https://cdn.example.com/cam1.jpg"]}, id="mms-flat-list"),
    pytest.param(MMS_ONLY, {"from": "+15145550100", "recipients": ["+14385550123"],
                            "ccRecipients": [], "mediaURL": ["https://cdn.example.com/cam1.jpg"]},
                 id="mms-without-text"),
]


@pytest.mark.parametrize(("message", "body"), SEND_CASES)
async def test_send_makes_the_exact_request(replay: Replay, replay_url: str,
                                            http: aiohttp.ClientSession,
                                            message: OutboundMessage,
                                            body: dict[str, Any]) -> None:
    provider = make_provider(base_url=replay_url)
    result = await provider.send(message, http)
    # Peerless's answer holds no id: our own message id stands in for it.
    assert (result.carrier_message_id, result.status) == (message.id, MessageStatus.SENT)
    [(path, headers, sent)] = replay.seen
    assert path == "/partners/messageReceiving/300417/submitMessage"
    assert sent == body
    assert headers["content-type"].startswith("application/json")
    assert headers["authorization"] == "Basic " + base64.b64encode(
        f"{USERNAME}:{PASSWORD}".encode()).decode()


async def test_no_credentials_no_authorization_header(
        replay: Replay, replay_url: str, http: aiohttp.ClientSession) -> None:
    provider = PeerlessProvider(PeerlessConfig(url=SEND_URL, base_url=replay_url))
    await provider.send(SMS, http)
    [(_, headers, _)] = replay.seen
    assert "authorization" not in headers


async def test_inline_media_is_refused_without_a_call(
        replay: Replay, replay_url: str, http: aiohttp.ClientSession) -> None:
    inline = OutboundMessage("msg_4", "+15145550100", "+14385550123", "x",
                             (Media("image/png", data_base64="iVBORw0KGgo="),))
    with pytest.raises(ProviderError) as caught:
        await make_provider(base_url=replay_url).send(inline, http)
    assert (caught.value.retryable, caught.value.code) == (False, "inline_media")
    assert replay.seen == []


SEND_ERRORS = [
    pytest.param("error_400.json", 400, {}, False, "http_400", None,
                 "Peerless: ERROR. Invalid recipient 1514555", id="400-invalid-recipient"),
    pytest.param("error_401.json", 401, {}, False, "http_401", None,
                 "Peerless: ERROR. Authentication failed", id="401-json"),
    pytest.param("error_429.json", 429, {"Retry-After": "7"}, True, "http_429", 7.0,
                 "Peerless: ERROR. Rate limit exceeded", id="429-throttled"),
    pytest.param("error_500.json", 500, {}, True, "http_500", None,
                 "Peerless: ERROR. Internal error", id="500"),
    pytest.param("error_502.html", 502, {}, True, "http_502", None, "Peerless: HTTP 502",
                 id="non-json-502"),
]


@pytest.mark.parametrize(("name", "status", "headers", "retryable", "code", "retry_after",
                          "reason"), SEND_ERRORS)
async def test_send_error_mapping(replay: Replay, replay_url: str, http: aiohttp.ClientSession,
                                  name: str, status: int, headers: dict[str, str],
                                  retryable: bool, code: str, retry_after: float | None,
                                  reason: str) -> None:
    load(replay, name, status, **headers)
    with pytest.raises(ProviderError) as caught:
        await make_provider(base_url=replay_url).send(SMS, http)
    error = caught.value
    assert (error.retryable, error.code, error.retry_after, error.reason) == (
        retryable, code, retry_after, reason)


async def test_bare_401_says_to_check_the_credentials(
        replay: Replay, replay_url: str, http: aiohttp.ClientSession) -> None:
    replay.status, replay.body = 401, b""
    with pytest.raises(ProviderError) as caught:
        await make_provider(base_url=replay_url).send(SMS, http)
    assert (caught.value.retryable, caught.value.code) == (False, "http_401")
    assert "check username and password" in caught.value.reason


@pytest.mark.parametrize("body", [b"", (FIXTURES / "answer_200_page.html").read_bytes()])
async def test_200_that_is_not_json_fails_without_a_retry(
        replay: Replay, replay_url: str, http: aiohttp.ClientSession, body: bytes) -> None:
    replay.body = body
    with pytest.raises(ProviderError) as caught:
        await make_provider(base_url=replay_url).send(SMS, http)
    assert (caught.value.retryable, caught.value.code) == (False, "not_json")
    assert "url" in caught.value.reason


async def test_password_echoed_by_an_error_is_masked(
        replay: Replay, replay_url: str, http: aiohttp.ClientSession) -> None:
    replay.status = 401
    replay.body = json.dumps({"responseText": f"bad login {USERNAME}:{PASSWORD}"}).encode()
    with pytest.raises(ProviderError) as caught:
        await make_provider(base_url=replay_url).send(SMS, http)
    assert PASSWORD not in caught.value.reason and "***" in caught.value.reason


async def test_unreachable_carrier_is_retryable(http: aiohttp.ClientSession) -> None:
    provider = make_provider(base_url="http://127.0.0.1:9", timeout_seconds=2)
    with pytest.raises(ProviderError) as caught:
        await provider.send(SMS, http)
    assert (caught.value.retryable, caught.value.code) == (True, "connection_error")

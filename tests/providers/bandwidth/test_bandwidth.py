"""Bandwidth: recorded-shape callbacks in, messages/statuses/errors out; sends over real HTTP."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from smsbridge.core.errors import MalformedWebhook, ProviderError, WebhookRejected
from smsbridge.core.messages import Media, MessageStatus, OutboundMessage
from smsbridge.providers import WebhookRequest, get_provider_class
from smsbridge.providers.bandwidth.provider import BandwidthConfig, BandwidthProvider
from smsbridge.testing.server import RunningServer
from tests.providers.replay import Replay, path_headers_json

FIXTURES = Path(__file__).parent / "fixtures"
ACCOUNT = "9900001"
APPLICATION = "93de2206-9669-4e07-948d-329f4b722ee2"
USER = "api-user-test"
PASSWORD = "Api-Pa55word-test-0123"
CALLBACK_USER = "callbacks-test"
CALLBACK_PASSWORD = "Callback-Secret-test-4567"
INBOUND_URL = "https://sms.example.com/v1/carriers/bandwidth/Zq3kP9wX/inbound"
STATUS_URL = "https://sms.example.com/v1/carriers/bandwidth/Zq3kP9wX/status"
MEDIA_BASE = ("https://messaging.bandwidth.com/api/v2/users/9900001/media/"
              "1716219062000p7dq3rx2c4m8zk1a/")


def make_provider(**options: Any) -> BandwidthProvider:
    return BandwidthProvider(BandwidthConfig(
        account_id=ACCOUNT, application_id=APPLICATION, username=USER, password=PASSWORD,
        callback_username=CALLBACK_USER, callback_password=CALLBACK_PASSWORD, **options))


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def changed(name: str, path: str, value: Any) -> Any:
    """A fixture with the value at a dotted path replaced (``...`` deletes it)."""
    document = copy.deepcopy(fixture(name))
    *parents, last = path.split(".")
    node = document
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = int(last) if isinstance(node, list) else last
    if value is ...:
        del node[key]
    else:
        node[key] = value
    return document


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def post(url: str, document: Any, authorization: str | None = None) -> WebhookRequest:
    """A callback as Bandwidth sends it, signed now with the test callback credentials."""
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    headers = {"content-type": "application/json; charset=utf-8",
               "authorization": authorization or basic(CALLBACK_USER, CALLBACK_PASSWORD)}
    return WebhookRequest("POST", url, headers, [], body)


def test_registered_with_its_basic_auth_check() -> None:
    cls = get_provider_class("bandwidth")
    assert cls is BandwidthProvider
    assert cls.capabilities.signature == "bandwidth-basic-auth"
    assert cls.contract_problems() == []


# --- verify: HTTP Basic auth on every callback ---------------------------------------------

def test_verify_accepts_the_callback_credentials() -> None:
    make_provider().verify(post(INBOUND_URL, fixture("inbound_sms.json")))


@pytest.mark.parametrize(("authorization", "names"), [
    pytest.param("", "no Basic Authorization", id="missing"),
    pytest.param(basic(CALLBACK_USER, "wrong"), "do not match", id="wrong-password"),
    pytest.param(basic("someone", CALLBACK_PASSWORD), "do not match", id="wrong-user"),
    pytest.param(basic(USER, PASSWORD), "do not match", id="api-credentials-instead"),
    pytest.param("Bearer " + base64.b64encode(b"x:y").decode(), "no Basic", id="not-basic"),
    pytest.param("Basic !!!not-base64!!!", "not base64", id="garbage"),
    pytest.param("Basic " + base64.b64encode(CALLBACK_USER.encode()).decode(), "do not match",
                 id="no-colon"),
])
def test_verify_refuses(authorization: str, names: str) -> None:
    request = WebhookRequest("POST", INBOUND_URL, {"authorization": authorization} if (
        authorization) else {}, [], json.dumps(fixture("inbound_sms.json")).encode())
    with pytest.raises(WebhookRejected, match=names):
        make_provider().verify(request)


# --- inbound messages ---------------------------------------------------------------------

INBOUND_CASES = [
    pytest.param(fixture("inbound_sms.json"), {
        "carrier_message_id": "14762070468292kw2fuqty55yp2b2", "from_number": "+14385550123",
        "to_number": "+15145550100", "text": "ARM SV", "media": ()}, id="sms"),
    pytest.param(fixture("inbound_mms.json"), {
        "carrier_message_id": "1716219062000p7dq3rx2c4m8zk1a",
        "text": "Front door \u00e9t\u00e9 \U0001f512",
        "media": (Media("image/jpeg", MEDIA_BASE + "0/front.jpg"),
                  Media("video/mp4", MEDIA_BASE + "1/clip.mp4"))}, id="mms-smil-skipped"),
    pytest.param(fixture("inbound_group.json"), {
        "to_number": "+15145550100", "text": "Dinner at 7?"}, id="group-to-is-our-number"),
    pytest.param(changed("inbound_sms.json", "0.to", ...), {
        "to_number": "+15145550100"}, id="no-top-level-to-owner-used"),
    pytest.param(changed("inbound_sms.json", "0.message.text", ...), {"text": ""},
                 id="no-text"),
    pytest.param(changed("inbound_sms.json", "0.message.from", "72345"), {
        "from_number": "72345"}, id="short-code-sender-kept"),
    pytest.param(changed("inbound_mms.json", "0.message.media.0",
                         "https://messaging.bandwidth.com/media/abc/0/noextension"), {
        "media": (Media("application/octet-stream",
                        "https://messaging.bandwidth.com/media/abc/0/noextension"),
                  Media("video/mp4", MEDIA_BASE + "1/clip.mp4"))}, id="unknown-type"),
]


@pytest.mark.parametrize(("document", "expected"), INBOUND_CASES)
def test_parse_inbound(document: Any, expected: dict[str, Any]) -> None:
    [message] = make_provider().parse_inbound(post(INBOUND_URL, document))
    for attribute, value in expected.items():
        assert getattr(message, attribute) == value, attribute


def test_several_events_in_one_callback_are_all_read() -> None:
    document = fixture("inbound_sms.json") + fixture("inbound_mms.json")
    messages = make_provider().parse_inbound(post(INBOUND_URL, document))
    assert [m.carrier_message_id for m in messages] == [
        "14762070468292kw2fuqty55yp2b2", "1716219062000p7dq3rx2c4m8zk1a"]


@pytest.mark.parametrize("name", ["status_delivered.json", "status_failed_4432.json",
                                  "status_sending_mms.json"])
def test_receipts_at_the_inbound_url_are_acknowledged_not_stored(name: str) -> None:
    # An Application with a single callback URL sends everything to the inbound URL.
    assert make_provider().parse_inbound(post(INBOUND_URL, fixture(name))) == []


def test_mixed_callback_at_the_inbound_url_keeps_the_message() -> None:
    document = fixture("status_delivered.json") + fixture("inbound_sms.json")
    [message] = make_provider().parse_inbound(post(INBOUND_URL, document))
    assert message.text == "ARM SV"


NO_TO_NO_OWNER = changed("inbound_sms.json", "0.to", ...)
del NO_TO_NO_OWNER[0]["message"]["owner"]

MALFORMED_INBOUND = [
    pytest.param(b"<xml/>", "not valid JSON", id="not-json"),
    pytest.param(fixture("inbound_sms.json")[0], "not a JSON array", id="an-object-not-array"),
    pytest.param(["x"], r"event \[0\] is not an object", id="event-not-object"),
    pytest.param(changed("inbound_sms.json", "0.type", ...), "'type'", id="no-type"),
    pytest.param(changed("inbound_sms.json", "0.type", "message-exploded"),
                 "message-exploded", id="unknown-type"),
    pytest.param(changed("inbound_sms.json", "0.message", ...), "'message' object",
                 id="no-message"),
    pytest.param(changed("inbound_sms.json", "0.message.id", ...), "message.id", id="no-id"),
    pytest.param(changed("inbound_sms.json", "0.message.from", ...), "message.from",
                 id="no-from"),
    pytest.param(changed("inbound_sms.json", "0.message.from", "not a number"),
                 "message.from", id="bad-from"),
    pytest.param(NO_TO_NO_OWNER, "'to'", id="no-to-no-owner"),
    pytest.param(changed("inbound_sms.json", "0.message.text", 42), "message.text",
                 id="text-not-a-string"),
    pytest.param(changed("inbound_mms.json", "0.message.media", "x"), "message.media",
                 id="media-not-a-list"),
    pytest.param(changed("inbound_mms.json", "0.message.media.1", 7), r"message.media\[1\]",
                 id="media-item-not-a-url"),
]


@pytest.mark.parametrize(("document", "names"), MALFORMED_INBOUND)
def test_malformed_inbound_names_the_field(document: Any, names: str) -> None:
    with pytest.raises(MalformedWebhook, match=names):
        make_provider().parse_inbound(post(INBOUND_URL, document))


def test_inbound_reply_is_an_empty_200() -> None:
    reply = make_provider().inbound_reply([])
    assert (reply.status, reply.body) == (200, b"")


# --- delivery receipts --------------------------------------------------------------------

OUT_ID = "1716219600000xq8wz4y2v7u5t3s1"

STATUS_CASES = [
    pytest.param(fixture("status_sending_mms.json"), MessageStatus.SENDING, None, None,
                 id="sending-mms"),
    pytest.param(fixture("status_delivered.json"), MessageStatus.DELIVERED, None, None,
                 id="delivered"),
    pytest.param(fixture("status_failed_4432.json"), MessageStatus.FAILED, "4432",
                 "forbidden to country", id="failed-4432"),
    pytest.param(fixture("status_failed_9902.json"), MessageStatus.FAILED, "9902",
                 "delivery-receipt-expired", id="failed-9902-dlr-timeout"),
    pytest.param(changed("status_failed_4432.json", "0.description", ""),
                 MessageStatus.FAILED, "4432", "Bandwidth error 4432",
                 id="failed-without-description"),
    pytest.param(changed("status_failed_4432.json", "0.errorCode", "4720"),
                 MessageStatus.FAILED, "4720", "forbidden to country", id="code-as-string"),
]


@pytest.mark.parametrize(("document", "status", "code", "reason"), STATUS_CASES)
def test_parse_status(document: Any, status: MessageStatus, code: str | None,
                      reason: str | None) -> None:
    [update] = make_provider().parse_status(post(STATUS_URL, document))
    assert update.carrier_message_id == OUT_ID
    assert (update.status, update.error_code, update.error_reason) == (status, code, reason)


def test_inbound_message_at_the_status_url_is_acknowledged_not_applied() -> None:
    document = fixture("inbound_sms.json") + fixture("status_delivered.json")
    [update] = make_provider().parse_status(post(STATUS_URL, document))
    assert (update.carrier_message_id, update.status) == (OUT_ID, MessageStatus.DELIVERED)


@pytest.mark.parametrize(("document", "names"), [
    pytest.param(changed("status_delivered.json", "0.type", "message-exploded"),
                 "message-exploded", id="unknown-type"),
    pytest.param(changed("status_delivered.json", "0.message.id", ...), "message.id",
                 id="no-id"),
    pytest.param(changed("status_delivered.json", "0.message", ...), "'message' object",
                 id="no-message"),
    pytest.param({"type": "message-delivered"}, "not a JSON array", id="not-an-array"),
])
def test_malformed_status(document: Any, names: str) -> None:
    with pytest.raises(MalformedWebhook, match=names):
        make_provider().parse_status(post(STATUS_URL, document))


# --- config and setup ---------------------------------------------------------------------

def test_config_never_shows_the_passwords() -> None:
    config = make_provider().config
    for secret in (PASSWORD, CALLBACK_PASSWORD):
        assert secret not in repr(config) and secret not in str(config.model_dump())


def test_config_refuses_unknown_keys() -> None:
    with pytest.raises(ValueError, match="api_token"):
        make_provider(api_token="x")


def test_setup_hint_names_both_callback_urls() -> None:
    hint = make_provider().setup_hint(INBOUND_URL, STATUS_URL)
    assert hint is not None and INBOUND_URL in hint and STATUS_URL in hint
    assert "Use multiple callback URLs" in hint and "callback_username" in hint


# --- send: exact requests and recorded answers over real HTTP -------------------------------

@pytest.fixture(scope="module")
def new_replay() -> Replay:
    """Bandwidth's Messaging API: 202 and JSON; keeps path, headers and the parsed body."""
    return Replay(202, "application/json", path_headers_json)


@pytest.fixture
def replay_provider(replay_server: tuple[Replay, RunningServer]) -> BandwidthProvider:
    return make_provider(base_url=replay_server[1].url)


def load(replay: Replay, name: str, status: int, **headers: str) -> None:
    replay.load(FIXTURES / name, status, **headers)


SMS = OutboundMessage("msg_1", "+15145550100", "+14385550123", "Porch motion at 02:14",
                      status_callback_url=STATUS_URL)
MMS = OutboundMessage("msg_2", "+15145550100", "+14385550123", "Snapshots",
                      (Media("image/jpeg", "https://cdn.example.com/cam1.jpg"),
                       Media("image/png", "https://cdn.example.com/cam2.png")))
MMS_ONLY = OutboundMessage("msg_3", "+15145550100", "+14385550123", "",
                           (Media("image/jpeg", "https://cdn.example.com/cam1.jpg"),))

SEND_CASES = [
    pytest.param(SMS, {"applicationId": APPLICATION, "to": ["+14385550123"],
                       "from": "+15145550100", "text": "Porch motion at 02:14", "tag": "msg_1"},
                 id="sms-no-per-message-callback"),
    pytest.param(MMS, {"applicationId": APPLICATION, "to": ["+14385550123"],
                       "from": "+15145550100", "text": "Snapshots", "tag": "msg_2",
                       "media": ["https://cdn.example.com/cam1.jpg",
                                 "https://cdn.example.com/cam2.png"]}, id="mms-two-urls"),
    pytest.param(MMS_ONLY, {"applicationId": APPLICATION, "to": ["+14385550123"],
                            "from": "+15145550100", "tag": "msg_3",
                            "media": ["https://cdn.example.com/cam1.jpg"]},
                 id="mms-without-text"),
]


@pytest.mark.parametrize(("message", "body"), SEND_CASES)
async def test_send_makes_the_exact_request(replay: Replay, replay_provider: BandwidthProvider,
                                            http: aiohttp.ClientSession, message: OutboundMessage,
                                            body: dict[str, Any]) -> None:
    load(replay, "send_202.json", 202)
    result = await replay_provider.send(message, http)
    assert (result.carrier_message_id, result.status, result.segments) == (
        OUT_ID, MessageStatus.SENT, 2)
    [(path, headers, sent)] = replay.seen
    assert path == f"/api/v2/users/{ACCOUNT}/messages"
    assert sent == body
    assert headers["content-type"].startswith("application/json")
    assert headers["authorization"] == basic(USER, PASSWORD)


async def test_inline_media_is_refused_without_a_call(
        replay: Replay, replay_provider: BandwidthProvider, http: aiohttp.ClientSession) -> None:
    inline = OutboundMessage("msg_4", "+15145550100", "+14385550123", "x",
                             (Media("image/png", data_base64="iVBORw0KGgo="),))
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(inline, http)
    assert (caught.value.retryable, caught.value.code) == (False, "inline_media")
    assert replay.seen == []


SEND_ERRORS = [
    pytest.param("error_400.json", 400, {}, False, "request-validation", None,
                 "Bandwidth: Your request could not be accepted", id="400-invalid"),
    pytest.param("error_401.json", 401, {}, False, "unauthorized", None,
                 "Bandwidth: Authentication Failed", id="401-credentials"),
    pytest.param("error_403.json", 403, {}, False, "forbidden", None,
                 "Bandwidth: Access Denied", id="403-no-messaging-api"),
    pytest.param("error_404.json", 404, {}, False, "http_404", None, "Bandwidth: HTTP 404",
                 id="404-not-bandwidths-error-shape"),
    pytest.param("error_415.json", 415, {}, False, "unsupported-content-type", None,
                 "Bandwidth: Content type 'text/plain;charset=UTF-8' not supported. Please use"
                 " 'application/json'", id="415"),
    pytest.param("error_429.json", 429, {"Retry-After": "7"}, True,
                 "max-message-queue-size-exceeded", 7.0,
                 "Bandwidth: The SMS queue for your account is full and cannot accept more"
                 " messages right now.", id="429-queue-full"),
    pytest.param("error_502.html", 502, {}, True, "http_502", None, "Bandwidth: HTTP 502",
                 id="non-json-502"),
]


@pytest.mark.parametrize(("name", "status", "headers", "retryable", "code", "retry_after",
                          "reason"), SEND_ERRORS)
async def test_send_error_mapping(replay: Replay, replay_provider: BandwidthProvider,
                                  http: aiohttp.ClientSession, name: str, status: int,
                                  headers: dict[str, str], retryable: bool, code: str,
                                  retry_after: float | None, reason: str) -> None:
    load(replay, name, status, **headers)
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(SMS, http)
    error = caught.value
    assert (error.retryable, error.code, error.retry_after, error.reason) == (
        retryable, code, retry_after, reason)


async def test_password_echoed_by_an_error_is_masked(
        replay: Replay, replay_provider: BandwidthProvider, http: aiohttp.ClientSession) -> None:
    replay.status = 401
    replay.body = json.dumps({"type": "unauthorized",
                              "description": f"bad credentials {USER}:{PASSWORD}"}).encode()
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(SMS, http)
    assert PASSWORD not in caught.value.reason and "***" in caught.value.reason


@pytest.mark.parametrize("body", [b"", b"{}", b'{"owner": "+15145550100"}', b"<html/>"])
async def test_202_without_an_id_is_not_retried(
        replay: Replay, replay_provider: BandwidthProvider, http: aiohttp.ClientSession,
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
    assert provider.max_send_seconds() == provider.max_send_seconds(MMS) == 12

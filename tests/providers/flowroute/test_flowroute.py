"""Flowroute: recorded-shape payloads in, messages/statuses/errors out; sends over real HTTP."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from smsbridge.core.errors import MalformedWebhook, ProviderError
from smsbridge.core.messages import Media, MessageStatus, OutboundMessage
from smsbridge.providers import UNSIGNED, WebhookRequest, get_provider_class
from smsbridge.providers.flowroute.provider import FlowrouteConfig, FlowrouteProvider
from smsbridge.testing.server import RunningServer
from tests.providers.replay import Replay, path_headers_json

FIXTURES = Path(__file__).parent / "fixtures"
ACCESS_KEY = "83f2c1d0"
SECRET = "Zx8k2PqR7mN4vB1cT6yH3jL9wE5sA0dF"
INBOUND_URL = "https://sms.example.com/v1/carriers/flowroute/Zq3kP9wX/inbound"
STATUS_URL = "https://sms.example.com/v1/carriers/flowroute/Zq3kP9wX/status"
JSON_API = "application/vnd.api+json"


def make_provider(**options: Any) -> FlowrouteProvider:
    return FlowrouteProvider(FlowrouteConfig(access_key=ACCESS_KEY, secret_key=SECRET, **options))


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def changed(name: str, path: str, value: Any) -> Any:
    """A fixture with the value at a dotted path replaced (``...`` deletes it)."""
    document = copy.deepcopy(fixture(name))
    *parents, last = path.split(".")
    node = document
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return document


def post(url: str, document: Any, content_type: str = "application/json") -> WebhookRequest:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return WebhookRequest("POST", url, {"content-type": content_type}, [], body)


def test_registered_and_declared_unsigned() -> None:
    cls = get_provider_class("flowroute")
    assert cls is FlowrouteProvider
    assert cls.capabilities.signature == UNSIGNED and cls.contract_problems() == []


# --- inbound messages ---------------------------------------------------------------------

MEDIA_BASE = "https://mms-media-prod.s3.amazonaws.com/2024-05-20/"

INBOUND_CASES = [
    pytest.param(fixture("inbound_sms.json"), {
        "carrier_message_id": "mdr2-39cadeace66e11e7aff806cd7f24ba2d",
        "from_number": "+15145550123", "to_number": "+15145550100", "text": "ARM SV",
        "media": ()}, id="sms-digits"),
    pytest.param(fixture("inbound_sms_plus.json"), {
        "carrier_message_id": "mdr2-ca82be46e6ba11e79d08862d092cf73d",
        "from_number": "+14385550123", "to_number": "+18445550100",
        "text": "DISARM JF \u00e9t\u00e9 \U0001f512"}, id="sms-plus-toll-free-unicode"),
    pytest.param(fixture("inbound_mms.json"), {
        "carrier_message_id": "mdr2-5f3e2d1c0b9a48e7aff806cd7f24ba2d",
        "from_number": "+15145550111", "to_number": "+15145550100",
        "text": "Front door & back yard",
        "media": (Media("image/jpeg", MEDIA_BASE + "front.jpg", size=48213),
                  Media("image/png", MEDIA_BASE + "yard.png", size=93120))}, id="mms-two-media"),
    pytest.param(changed("inbound_mms.json", "data.attributes.body", ""), {
        "text": ""}, id="mms-without-text"),
    pytest.param(changed("inbound_mms.json", "included.1.attributes.mime_type", ...), {
        "media": (Media("image/jpeg", MEDIA_BASE + "front.jpg", size=48213),
                  Media("image/png", MEDIA_BASE + "yard.png", size=93120))},
                 id="media-type-guessed-from-extension"),
    pytest.param(changed("inbound_sms.json", "data.attributes.body", ...), {
        "text": ""}, id="no-body-key"),
    pytest.param(changed("inbound_sms.json", "data.attributes.from", "447700900123"), {
        "from_number": "+447700900123"}, id="international-sender-without-plus"),
    pytest.param(changed("inbound_sms.json", "data.attributes.from", "72345"), {
        "from_number": "72345"}, id="short-code-sender-kept"),
    pytest.param(changed("inbound_sms.json", "data.attributes.direction", ...), {
        "text": "ARM SV"}, id="no-direction"),
]


@pytest.mark.parametrize(("document", "expected"), INBOUND_CASES)
def test_parse_inbound(document: Any, expected: dict[str, Any]) -> None:
    [message] = make_provider().parse_inbound(post(INBOUND_URL, document))
    for attribute, value in expected.items():
        assert getattr(message, attribute) == value, attribute


def test_inbound_sent_as_json_api_content_type_is_read() -> None:
    [message] = make_provider().parse_inbound(post(INBOUND_URL, fixture("inbound_sms.json"),
                                                   JSON_API))
    assert message.text == "ARM SV"


MALFORMED_INBOUND = [
    pytest.param(b"<xml/>", "not valid JSON", id="not-json"),
    pytest.param(changed("inbound_sms.json", "data", ...), "'data' object", id="no-data"),
    pytest.param(changed("inbound_sms.json", "data.type", "delivery_receipt"), "data.type",
                 id="a-receipt-at-the-inbound-url"),
    pytest.param(changed("inbound_sms.json", "data.id", ...), "data.id", id="no-id"),
    pytest.param(changed("inbound_sms.json", "data.attributes", ...), "data.attributes",
                 id="no-attributes"),
    pytest.param(changed("inbound_sms.json", "data.attributes.from", ...), "attributes.from",
                 id="no-from"),
    pytest.param(changed("inbound_sms.json", "data.attributes.to", ""), "attributes.to",
                 id="empty-to"),
    pytest.param(changed("inbound_sms.json", "data.attributes.from", "not a number"), "from",
                 id="bad-from"),
    pytest.param(changed("inbound_sms.json", "data.attributes.body", 42), "body",
                 id="body-not-a-string"),
    pytest.param(changed("inbound_sms.json", "data.attributes.direction", "outbound"),
                 "direction", id="outbound-echo"),
    pytest.param(changed("inbound_mms.json", "included.0.attributes.url", ...),
                 "attributes.url", id="media-without-url"),
    pytest.param(changed("inbound_mms.json", "included", {"type": "media"}), "included",
                 id="included-not-a-list"),
]


@pytest.mark.parametrize(("document", "names"), MALFORMED_INBOUND)
def test_malformed_inbound_names_the_field(document: Any, names: str) -> None:
    with pytest.raises(MalformedWebhook, match=names):
        make_provider().parse_inbound(post(INBOUND_URL, document))


def test_inbound_reply_is_an_empty_200() -> None:
    reply = make_provider().inbound_reply([])
    assert (reply.status, reply.body) == (200, b"")


# --- delivery receipts --------------------------------------------------------------------

OUT_ID = "mdr2-39cadeace66e11e7aff806cd7f24ba2d"

STATUS_CASES = [
    pytest.param(fixture("receipt_smsc_submit.json"), MessageStatus.SENT, None, None,
                 id="level1-smsc-submit"),
    pytest.param(fixture("receipt_buffered.json"), MessageStatus.SENT, None, None,
                 id="level2-buffered"),
    pytest.param(fixture("receipt_delivered.json"), MessageStatus.DELIVERED, None, None,
                 id="delivered"),
    pytest.param(fixture("receipt_undelivered.json"), MessageStatus.FAILED, "4505",
                 "Destination handset unreachable", id="undelivered"),
    pytest.param(changed("receipt_undelivered.json", "data.attributes.status", "Expired"),
                 MessageStatus.FAILED, "4505", "Destination handset unreachable",
                 id="expired-any-case"),
    pytest.param(changed("receipt_undelivered.json", "data.attributes.status_code_description",
                         ""), MessageStatus.FAILED, "4505", "Flowroute receipt: undelivered",
                 id="failure-without-description"),
]


@pytest.mark.parametrize(("document", "status", "code", "reason"), STATUS_CASES)
def test_parse_status(document: Any, status: MessageStatus, code: str | None,
                      reason: str | None) -> None:
    [update] = make_provider().parse_status(post(STATUS_URL, document))
    assert update.carrier_message_id == OUT_ID
    assert (update.status, update.error_code, update.error_reason) == (status, code, reason)


@pytest.mark.parametrize(("document", "names"), [
    pytest.param(changed("receipt_delivered.json", "data.attributes.status", "exploded"),
                 "exploded", id="unknown-status"),
    pytest.param(changed("receipt_delivered.json", "data.attributes.status", ...), "status",
                 id="no-status"),
    pytest.param(changed("receipt_delivered.json", "data.id", ...), "data.id", id="no-id"),
    pytest.param(fixture("inbound_sms.json"), "data.type", id="a-message-at-the-status-url"),
])
def test_malformed_status(document: Any, names: str) -> None:
    with pytest.raises(MalformedWebhook, match=names):
        make_provider().parse_status(post(STATUS_URL, document))


def test_verify_lets_any_request_through_the_url_token_guards_it() -> None:
    make_provider().verify(post(INBOUND_URL, fixture("inbound_sms.json")))


# --- config and setup ---------------------------------------------------------------------

def test_config_never_shows_the_secret_key() -> None:
    config = FlowrouteConfig(access_key=ACCESS_KEY, secret_key=SECRET)
    assert SECRET not in repr(config) and SECRET not in str(config.model_dump())


def test_config_refuses_unknown_keys() -> None:
    with pytest.raises(ValueError, match="api_key"):
        FlowrouteConfig(access_key=ACCESS_KEY, secret_key=SECRET, api_key="x")  # type: ignore[call-arg]


def test_setup_hint_names_both_callbacks() -> None:
    hint = make_provider().setup_hint(INBOUND_URL, STATUS_URL)
    assert hint is not None and INBOUND_URL in hint and STATUS_URL in hint
    assert "SMS Callback" in hint and "MMS Callback" in hint


# --- send: exact requests and recorded answers over real HTTP -------------------------------

@pytest.fixture(scope="module")
def new_replay() -> Replay:
    """Flowroute's Messaging API: 202 and JSON:API; keeps path, headers and the parsed body."""
    return Replay(202, JSON_API, path_headers_json)


@pytest.fixture
def replay_provider(replay_server: tuple[Replay, RunningServer]) -> FlowrouteProvider:
    return make_provider(base_url=replay_server[1].url)


def load(replay: Replay, name: str, status: int, **headers: str) -> None:
    replay.load(FIXTURES / name, status, **headers)


CALLBACK = "https://sms.example.com/v1/carriers/flowroute/Zq3kP9wX/status"
SMS = OutboundMessage("msg_1", "+15145550100", "+14385550123", "Porch motion at 02:14",
                      status_callback_url=CALLBACK)
MMS = OutboundMessage("msg_2", "+15145550100", "+14385550123", "Snapshots",
                      (Media("image/jpeg", "https://cdn.example.com/cam1.jpg"),
                       Media("image/png", "https://cdn.example.com/cam2.png")))
MMS_ONLY = OutboundMessage("msg_3", "+15145550100", "+14385550123", "",
                           (Media("image/jpeg", "https://cdn.example.com/cam1.jpg"),))

SEND_CASES = [
    pytest.param(SMS, {"to": "14385550123", "from": "15145550100",
                       "body": "Porch motion at 02:14", "dlr_callback": CALLBACK}, id="sms"),
    pytest.param(MMS, {"to": "14385550123", "from": "15145550100", "body": "Snapshots",
                       "is_mms": "true", "media_urls": ["https://cdn.example.com/cam1.jpg",
                                                        "https://cdn.example.com/cam2.png"]},
                 id="mms-two-urls"),
    pytest.param(MMS_ONLY, {"to": "14385550123", "from": "15145550100", "is_mms": "true",
                            "media_urls": ["https://cdn.example.com/cam1.jpg"]},
                 id="mms-without-text"),
]


@pytest.mark.parametrize(("message", "attributes"), SEND_CASES)
async def test_send_makes_the_exact_request(replay: Replay, replay_provider: FlowrouteProvider,
                                            http: aiohttp.ClientSession, message: OutboundMessage,
                                            attributes: dict[str, Any]) -> None:
    load(replay, "send_202.json", 202)
    result = await replay_provider.send(message, http)
    assert (result.carrier_message_id, result.status) == (OUT_ID, MessageStatus.SENT)
    [(path, headers, body)] = replay.seen
    assert path == "/v2.1/messages"
    assert body == {"data": {"type": "message", "attributes": attributes}}
    assert headers["content-type"].startswith(JSON_API)
    assert headers["authorization"] == "Basic " + base64.b64encode(
        f"{ACCESS_KEY}:{SECRET}".encode()).decode()


async def test_inline_media_is_refused_without_a_call(
        replay: Replay, replay_provider: FlowrouteProvider, http: aiohttp.ClientSession) -> None:
    inline = OutboundMessage("msg_4", "+15145550100", "+14385550123", "x",
                             (Media("image/png", data_base64="iVBORw0KGgo="),))
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(inline, http)
    assert (caught.value.retryable, caught.value.code) == (False, "inline_media")
    assert replay.seen == []


SEND_ERRORS = [
    pytest.param("error_401.json", 401, {}, False, "http_401", None,
                 "Flowroute: There was an issue with your API credentials.", id="401-credentials"),
    pytest.param("error_403.json", 403, {}, False, "http_403", None,
                 "Flowroute: You don't have permission to send from 15145550199.",
                 id="403-not-your-number"),
    pytest.param("error_404.json", 404, {}, False, "http_404", None,
                 "Flowroute: The specified resource was not found", id="404"),
    pytest.param("error_422.json", 422, {}, False, "http_422", None,
                 "Flowroute: Invalid 'to' number: 1514555", id="422-invalid-recipient"),
    pytest.param("error_429.json", 429, {"Retry-After": "7"}, True, "http_429", 7.0,
                 "Flowroute: Messaging rate limit exceeded", id="429-throttled"),
    pytest.param("error_500.json", 500, {}, True, "http_500", None,
                 "Flowroute: An unexpected error occurred", id="500"),
    pytest.param("error_502.html", 502, {}, True, "http_502", None, "Flowroute: HTTP 502",
                 id="non-json-502"),
]


@pytest.mark.parametrize(("name", "status", "headers", "retryable", "code", "retry_after",
                          "reason"), SEND_ERRORS)
async def test_send_error_mapping(replay: Replay, replay_provider: FlowrouteProvider,
                                  http: aiohttp.ClientSession, name: str, status: int,
                                  headers: dict[str, str], retryable: bool, code: str,
                                  retry_after: float | None, reason: str) -> None:
    load(replay, name, status, **headers)
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(SMS, http)
    error = caught.value
    assert (error.retryable, error.code, error.retry_after, error.reason) == (
        retryable, code, retry_after, reason)


async def test_secret_echoed_by_an_error_is_masked(
        replay: Replay, replay_provider: FlowrouteProvider, http: aiohttp.ClientSession) -> None:
    replay.status = 401
    replay.body = json.dumps({"errors": [{"id": "x", "status": 401,
                                          "detail": f"bad key {ACCESS_KEY}:{SECRET}"}]}).encode()
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(SMS, http)
    assert SECRET not in caught.value.reason and "***" in caught.value.reason


@pytest.mark.parametrize("body", [b"", b"{}", b'{"data": {"type": "message"}}', b"<html/>"])
async def test_202_without_an_id_is_not_retried(
        replay: Replay, replay_provider: FlowrouteProvider, http: aiohttp.ClientSession,
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

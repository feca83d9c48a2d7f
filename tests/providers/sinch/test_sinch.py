"""Sinch: recorded-shape payloads in, messages/statuses/errors out; HMAC; sends over HTTP."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from smsbridge.core.errors import MalformedWebhook, ProviderError, WebhookRejected
from smsbridge.core.messages import Media, MessageStatus, OutboundMessage
from smsbridge.providers import WebhookRequest, get_provider_class
from smsbridge.providers.sinch.provider import SinchConfig, SinchProvider
from smsbridge.testing.server import RunningServer
from tests.providers.replay import Replay, path_headers_json

FIXTURES = Path(__file__).parent / "fixtures"
PLAN = "4f8a2c1e9b7d6a5f3e2c1b0a9d8e7f6a"
TOKEN = "Tk9sInchApiT0ken5e6f7a8b9c0d1e2f"
# A test key: signed fixtures are signed with it when the test runs.
CALLBACK_SECRET = "test-callback-secret-0f1e2d3c"
INBOUND_URL = "https://sms.example.com/v1/carriers/sinch/Zq3kP9wX/inbound"
STATUS_URL = "https://sms.example.com/v1/carriers/sinch/Zq3kP9wX/status"
OUT_ID = "01FC66621XXXXX119Z8PMV1QPQ"


def make_provider(**options: Any) -> SinchProvider:
    return SinchProvider(SinchConfig(service_plan_id=PLAN, api_token=TOKEN, **options))


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


def post(url: str, document: Any, headers: dict[str, str] | None = None) -> WebhookRequest:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return WebhookRequest("POST", url, {"content-type": "application/json", **(headers or {})},
                          [], body)


def test_registered_with_its_signature_scheme() -> None:
    cls = get_provider_class("sinch")
    assert cls is SinchProvider
    assert cls.capabilities.signature == "sinch-hmac-sha256" and cls.contract_problems() == []


# --- inbound messages ---------------------------------------------------------------------

MEDIA = "https://mms.sinch.example/01HXM3ZB/"
STORED = (Media("image/jpeg", MEDIA + "front.jpg"), Media("image/png", MEDIA + "yard.png"))

INBOUND_CASES = [
    pytest.param(fixture("inbound_mo_text.json"), {
        "carrier_message_id": "01FC66621VHDBN119Z8PMV1AHY", "from_number": "+14385550123",
        "to_number": "+15145550100", "text": "ARM SV", "media": ()}, id="mo-text-digits"),
    pytest.param(fixture("inbound_mo_text_plus_unicode.json"), {
        "from_number": "+14385550123", "to_number": "+18445550100",
        "text": "DISARM JF \u00e9t\u00e9 \U0001f512"}, id="mo-text-plus-unicode"),
    pytest.param(fixture("inbound_mo_media.json"), {
        "carrier_message_id": "01HXM3ZB5Q0KPT9E7V8S2D4F6G", "from_number": "+15145550111",
        "text": "Front door & back yard",
        "media": STORED},
                 id="mo-media-failed-upload-left-out"),
    pytest.param(changed("inbound_mo_media.json", "body.message", ...), {"text": ""},
                 id="mo-media-without-text"),
    pytest.param(changed("inbound_mo_media.json", "body.media.0.content_type", ...), {
        "media": STORED},
                 id="media-type-guessed-from-extension"),
    pytest.param(fixture("inbound_mo_binary.json"), {"text": "STATUS"},
                 id="mo-binary-utf8-without-udh"),
    pytest.param(changed("inbound_mo_text.json", "from", "447700900123"), {
        "from_number": "+447700900123"}, id="international-sender-without-plus"),
    pytest.param(changed("inbound_mo_text.json", "from", "72345"), {"from_number": "72345"},
                 id="short-code-sender-kept"),
]


@pytest.mark.parametrize(("document", "expected"), INBOUND_CASES)
def test_parse_inbound(document: Any, expected: dict[str, Any]) -> None:
    [message] = make_provider().parse_inbound(post(INBOUND_URL, document))
    for attribute, value in expected.items():
        assert getattr(message, attribute) == value, attribute


MALFORMED_INBOUND = [
    pytest.param(b"<xml/>", "JSON", id="not-json"),
    pytest.param(changed("inbound_mo_text.json", "type", "recipient_delivery_report_sms"),
                 "'type'", id="a-receipt-at-the-inbound-url"),
    pytest.param(changed("inbound_mo_text.json", "type", ...), "'type'", id="no-type"),
    pytest.param(changed("inbound_mo_text.json", "id", ...), "'id'", id="no-id"),
    pytest.param(changed("inbound_mo_text.json", "from", ...), "'from'", id="no-from"),
    pytest.param(changed("inbound_mo_text.json", "to", ""), "'to'", id="empty-to"),
    pytest.param(changed("inbound_mo_text.json", "from", "not a number"), "from",
                 id="bad-from"),
    pytest.param(changed("inbound_mo_text.json", "body", 42), "body", id="body-not-a-string"),
    pytest.param(changed("inbound_mo_binary.json", "udh", "050003CC0201"), "udh",
                 id="binary-with-udh"),
    pytest.param(changed("inbound_mo_binary.json", "body", "//79"), "base64 UTF-8",
                 id="binary-not-utf8"),
    pytest.param(changed("inbound_mo_media.json", "body", "x"), "object",
                 id="media-body-not-an-object"),
    pytest.param(changed("inbound_mo_media.json", "body.media.0.url", ...), "'url'",
                 id="media-without-url"),
    pytest.param(changed("inbound_mo_media.json", "body.media", {"url": "x"}), "array",
                 id="media-not-a-list"),
]


@pytest.mark.parametrize(("document", "names"), MALFORMED_INBOUND)
def test_malformed_inbound_names_the_field(document: Any, names: str) -> None:
    with pytest.raises(MalformedWebhook, match=names):
        make_provider().parse_inbound(post(INBOUND_URL, document))


def test_inbound_reply_is_an_empty_200() -> None:
    reply = make_provider().inbound_reply([])
    assert (reply.status, reply.body) == (200, b"")


# --- delivery reports ---------------------------------------------------------------------

STATUS_CASES = [
    pytest.param(fixture("receipt_dispatched.json"), MessageStatus.SENT, None, None,
                 id="dispatched"),
    pytest.param(fixture("receipt_delivered.json"), MessageStatus.DELIVERED, None, None,
                 id="delivered"),
    pytest.param(fixture("receipt_failed.json"), MessageStatus.FAILED, "402",
                 "Sinch delivery report: Failed", id="failed"),
    pytest.param(changed("receipt_failed.json", "status", "EXPIRED"), MessageStatus.FAILED,
                 "402", "Sinch delivery report: EXPIRED", id="expired-any-case"),
    pytest.param(changed("receipt_failed.json", "status", "Rejected"), MessageStatus.FAILED,
                 "402", "Sinch delivery report: Rejected", id="rejected"),
    pytest.param(changed("receipt_delivered.json", "type", "recipient_delivery_report_mms"),
                 MessageStatus.DELIVERED, None, None, id="mms-report"),
    pytest.param(fixture("receipt_batch_summary.json"), MessageStatus.DELIVERED, None, None,
                 id="batch-summary"),
]


@pytest.mark.parametrize(("document", "status", "code", "reason"), STATUS_CASES)
def test_parse_status(document: Any, status: MessageStatus, code: str | None,
                      reason: str | None) -> None:
    [update] = make_provider().parse_status(post(STATUS_URL, document))
    assert update.carrier_message_id == OUT_ID
    assert (update.status, update.error_code, update.error_reason) == (status, code, reason)


@pytest.mark.parametrize(("document", "names"), [
    pytest.param(changed("receipt_delivered.json", "status", "Exploded"), "Exploded",
                 id="unknown-status"),
    pytest.param(changed("receipt_delivered.json", "status", ...), "'status'",
                 id="no-status"),
    pytest.param(changed("receipt_delivered.json", "batch_id", ...), "'batch_id'",
                 id="no-batch-id"),
    pytest.param(changed("receipt_batch_summary.json", "statuses", []), "'statuses'",
                 id="summary-without-statuses"),
    pytest.param(fixture("inbound_mo_text.json"), "'type'", id="a-message-at-the-status-url"),
])
def test_malformed_status(document: Any, names: str) -> None:
    with pytest.raises(MalformedWebhook, match=names):
        make_provider().parse_status(post(STATUS_URL, document))


# --- signatures ---------------------------------------------------------------------------

def signed_headers(body: bytes, *, secret: str = CALLBACK_SECRET, nonce: str = "01FJA8B4A7",
                   stamp: str = "1717683414", algorithm: str = "HmacSHA256") -> dict[str, str]:
    """Headers as Sinch sends them: base64 HMAC-SHA256 of "<body>.<nonce>.<timestamp>"."""
    digest = hmac.new(secret.encode(), body + f".{nonce}.{stamp}".encode(),
                      hashlib.sha256).digest()
    return {"x-sinch-webhook-signature": base64.b64encode(digest).decode(),
            "x-sinch-webhook-signature-nonce": nonce,
            "x-sinch-webhook-signature-timestamp": stamp,
            "x-sinch-webhook-signature-algorithm": algorithm}


@pytest.mark.parametrize("name", ["inbound_mo_text.json", "inbound_mo_media.json",
                                  "receipt_delivered.json"])
def test_fixture_signed_with_the_test_key_verifies(name: str) -> None:
    body = (FIXTURES / name).read_bytes()
    make_provider(webhook_secret=CALLBACK_SECRET).verify(
        post(INBOUND_URL, body, signed_headers(body)))


def test_hmac_sha512_is_accepted_too() -> None:
    body = (FIXTURES / "inbound_mo_text.json").read_bytes()
    digest = hmac.new(CALLBACK_SECRET.encode(), body + b".n.1", hashlib.sha512).digest()
    make_provider(webhook_secret=CALLBACK_SECRET).verify(post(INBOUND_URL, body, {
        "x-sinch-webhook-signature": base64.b64encode(digest).decode(),
        "x-sinch-webhook-signature-nonce": "n", "x-sinch-webhook-signature-timestamp": "1",
        "x-sinch-webhook-signature-algorithm": "HmacSHA512"}))


BODY = (FIXTURES / "inbound_mo_text.json").read_bytes()
FORGERIES = [
    pytest.param(BODY, {}, "lacks", id="unsigned"),
    pytest.param(BODY, signed_headers(BODY, secret="another-secret"), "does not match",
                 id="other-secret"),
    pytest.param(BODY.replace(b"ARM SV", b"DISARM"), signed_headers(BODY), "does not match",
                 id="body-changed-after-signing"),
    pytest.param(BODY, signed_headers(BODY) | {"x-sinch-webhook-signature-nonce": "other"},
                 "does not match", id="nonce-swapped"),
    pytest.param(BODY, signed_headers(BODY) | {"x-sinch-webhook-signature-timestamp": "1"},
                 "does not match", id="timestamp-swapped"),
    pytest.param(BODY, signed_headers(BODY, algorithm="HmacMD5"), "does not match",
                 id="unknown-algorithm"),
    pytest.param(BODY, {k: v for k, v in signed_headers(BODY).items()
                        if k != "x-sinch-webhook-signature-nonce"}, "nonce", id="no-nonce"),
]


@pytest.mark.parametrize(("body", "headers", "reason"), FORGERIES)
def test_forged_or_unsigned_callback_rejected_when_a_secret_is_set(
        body: bytes, headers: dict[str, str], reason: str) -> None:
    with pytest.raises(WebhookRejected, match=reason):
        make_provider(webhook_secret=CALLBACK_SECRET).verify(post(INBOUND_URL, body, headers))


def test_without_a_secret_the_url_token_alone_guards() -> None:
    make_provider().verify(post(INBOUND_URL, BODY))


# --- config and setup ---------------------------------------------------------------------

def test_config_never_shows_its_secrets() -> None:
    config = SinchConfig(service_plan_id=PLAN, api_token=TOKEN, webhook_secret=CALLBACK_SECRET)
    shown = repr(config) + str(config.model_dump())
    assert TOKEN not in shown and CALLBACK_SECRET not in shown


@pytest.mark.parametrize("options", [
    pytest.param({"region": "jp"}, id="unknown-region"),
    pytest.param({"service_plan_id": ""}, id="empty-plan"),
    pytest.param({"auth_token": "x"}, id="unknown-key"),
])
def test_config_refuses(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SinchConfig(**{"service_plan_id": PLAN, "api_token": TOKEN, **options})


@pytest.mark.parametrize(("region", "host"), [
    ("us", "https://us.sms.api.sinch.com"), ("eu", "https://eu.sms.api.sinch.com"),
    ("au", "https://au.sms.api.sinch.com"), ("br", "https://br.sms.api.sinch.com"),
    ("ca", "https://ca.sms.api.sinch.com")])
def test_region_picks_the_host(region: str, host: str) -> None:
    assert make_provider(region=region).batches_url() == f"{host}/xms/v1/{PLAN}/batches"


def test_base_url_overrides_the_region() -> None:
    provider = make_provider(region="eu", base_url="http://127.0.0.1:9011/")
    assert provider.batches_url() == f"http://127.0.0.1:9011/xms/v1/{PLAN}/batches"


def test_setup_hint_names_both_urls() -> None:
    hint = make_provider().setup_hint(INBOUND_URL, STATUS_URL)
    assert hint is not None and INBOUND_URL in hint and STATUS_URL in hint


# --- send: exact requests and recorded answers over real HTTP -------------------------------

@pytest.fixture(scope="module")
def new_replay() -> Replay:
    """Sinch's XMS API: 201 and JSON; keeps path, headers and the parsed body."""
    return Replay(201, "application/json", path_headers_json)


@pytest.fixture
def replay_provider(replay_server: tuple[Replay, RunningServer]) -> SinchProvider:
    return make_provider(base_url=replay_server[1].url)


def load(replay: Replay, name: str, status: int, **headers: str) -> None:
    replay.load(FIXTURES / name, status, **headers)


SMS = OutboundMessage("msg_1", "+15145550100", "+14385550123", "Porch motion at 02:14",
                      status_callback_url=STATUS_URL)
MMS = OutboundMessage("msg_2", "+15145550100", "+14385550123", "Snapshot",
                      (Media("image/jpeg", "https://cdn.example.com/cam1.jpg"),),
                      status_callback_url=STATUS_URL)
MMS_ONLY = OutboundMessage("msg_3", "+15145550100", "+14385550123", "",
                           (Media("image/jpeg", "https://cdn.example.com/cam1.jpg"),))
NO_CALLBACK = OutboundMessage("msg_4", "+15145550100", "+14385550123", "hi")

SEND_CASES = [
    pytest.param(SMS, {"from": "+15145550100", "to": ["+14385550123"],
                       "body": "Porch motion at 02:14", "delivery_report": "per_recipient",
                       "callback_url": STATUS_URL}, id="sms-with-reports"),
    pytest.param(NO_CALLBACK, {"from": "+15145550100", "to": ["+14385550123"], "body": "hi"},
                 id="sms-without-callback"),
    pytest.param(MMS, {"from": "+15145550100", "to": ["+14385550123"], "type": "mt_media",
                       "body": {"url": "https://cdn.example.com/cam1.jpg", "message": "Snapshot"},
                       "delivery_report": "per_recipient", "callback_url": STATUS_URL},
                 id="mms-with-caption"),
    pytest.param(MMS_ONLY, {"from": "+15145550100", "to": ["+14385550123"], "type": "mt_media",
                            "body": {"url": "https://cdn.example.com/cam1.jpg"}},
                 id="mms-without-text"),
]


@pytest.mark.parametrize(("message", "expected"), SEND_CASES)
async def test_send_makes_the_exact_request(replay: Replay, replay_provider: SinchProvider,
                                            http: aiohttp.ClientSession, message: OutboundMessage,
                                            expected: dict[str, Any]) -> None:
    load(replay, "send_201.json", 201)
    result = await replay_provider.send(message, http)
    assert (result.carrier_message_id, result.status) == (OUT_ID, MessageStatus.SENT)
    [(path, headers, body)] = replay.seen
    assert path == f"/xms/v1/{PLAN}/batches"
    assert body == expected
    assert headers["content-type"].startswith("application/json")
    assert headers["authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize(("message", "code"), [
    pytest.param(OutboundMessage("m", "+15145550100", "+14385550123", "x",
                                 (Media("image/png", data_base64="iVBORw0KGgo="),)),
                 "inline_media", id="inline-media"),
    pytest.param(OutboundMessage("m", "+15145550100", "+14385550123", "x",
                                 (Media("image/png", "https://cdn.example.com/a.png"),
                                  Media("image/png", "https://cdn.example.com/b.png"))),
                 "too_many_media", id="two-media"),
])
async def test_unsendable_media_is_refused_without_a_call(
        replay: Replay, replay_provider: SinchProvider, http: aiohttp.ClientSession,
        message: OutboundMessage, code: str) -> None:
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(message, http)
    assert (caught.value.retryable, caught.value.code) == (False, code)
    assert replay.seen == []


SEND_ERRORS = [
    pytest.param("error_400.json", 400, {}, False, "syntax_invalid_parameter_format", None,
                 "Sinch: Invalid parameter format for 'to': 1514555", id="400-invalid-recipient"),
    pytest.param("error_401.json", 401, {}, False, "unauthorized", None,
                 "Sinch: Invalid or missing token", id="401-token"),
    pytest.param("error_403.json", 403, {}, False, "missing_permission", None,
                 "Sinch: The service plan is not allowed to use this sender", id="403-sender"),
    pytest.param("error_429.json", 429, {"Retry-After": "7"}, True, "too_many_requests", 7.0,
                 "Sinch: Too many requests", id="429-throttled"),
    pytest.param("error_500.json", 500, {}, True, "internal_error", None,
                 "Sinch: Internal error", id="500"),
    pytest.param("error_502.html", 502, {}, True, "http_502", None, "Sinch: HTTP 502",
                 id="non-json-502"),
]


@pytest.mark.parametrize(("name", "status", "headers", "retryable", "code", "retry_after",
                          "reason"), SEND_ERRORS)
async def test_send_errors(replay: Replay, replay_provider: SinchProvider,
                           http: aiohttp.ClientSession, name: str, status: int,
                           headers: dict[str, str], retryable: bool, code: str,
                           retry_after: float | None, reason: str) -> None:
    load(replay, name, status, **headers)
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(SMS, http)
    error = caught.value
    assert (error.retryable, error.code, error.retry_after, error.reason) == (
        retryable, code, retry_after, reason)


async def test_token_echoed_by_an_error_is_masked(
        replay: Replay, replay_provider: SinchProvider, http: aiohttp.ClientSession) -> None:
    replay.status = 401
    replay.body = json.dumps({"code": "unauthorized", "text": f"bad token {TOKEN}"}).encode()
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(SMS, http)
    assert TOKEN not in caught.value.reason and "***" in caught.value.reason


@pytest.mark.parametrize("body", [b"", b"{}", b'{"to": ["+14385550123"]}', b"<html/>"])
async def test_201_without_an_id_is_not_retried(
        replay: Replay, replay_provider: SinchProvider, http: aiohttp.ClientSession,
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

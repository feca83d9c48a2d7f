"""Telnyx: recorded-shape payloads in, messages/statuses/errors out; Ed25519 signatures."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from smsbridge.core.errors import MalformedWebhook, ProviderError, WebhookRejected
from smsbridge.core.messages import Media, MessageStatus, OutboundMessage
from smsbridge.providers.base import WebhookRequest
from smsbridge.providers.registry import get_provider_class
from smsbridge.providers.telnyx.provider import TelnyxConfig, TelnyxProvider
from smsbridge.testing.server import RunningServer, free_port
from tests.providers.replay import Replay, path_headers_json

FIXTURES = Path(__file__).parent / "fixtures"
API_KEY = "KEY0188F2C1A8B94D3EA0C2D7_9bq4Xk2mZ8rT1vW5yN3pL6"
# A fixed test key pair: signed fixtures are re-signed with it at test time.
SIGNING_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUBLIC_KEY = base64.b64encode(SIGNING_KEY.public_key().public_bytes(
    Encoding.Raw, PublicFormat.Raw)).decode()
INBOUND_URL = "https://sms.example.com/v1/carriers/telnyx/Zq3kP9wX/inbound"
STATUS_URL = "https://sms.example.com/v1/carriers/telnyx/Zq3kP9wX/status"
PROFILE = "400176a4-ad2e-4b6b-9f36-1d4a0e7e3c0e"


def make_provider(public_key: str = PUBLIC_KEY, **options: Any) -> TelnyxProvider:
    return TelnyxProvider(TelnyxConfig(api_key=API_KEY, public_key=public_key, **options))


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def mutated(name: str, **payload_changes: Any) -> dict[str, Any]:
    """A fixture's event with some payload fields set (None: removed)."""
    event = fixture(name)
    payload = event["data"]["payload"]
    for key, value in payload_changes.items():
        if value is None:
            payload.pop(key, None)
        else:
            payload[key] = value
    return event


def sign(body: bytes, stamp: str, key: Ed25519PrivateKey = SIGNING_KEY) -> str:
    return base64.b64encode(key.sign(stamp.encode() + b"|" + body)).decode()


def post(url: str, event: dict[str, Any] | bytes, *, signed: bool = True,
         stamp: str | None = None, **headers: str) -> WebhookRequest:
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    all_headers = {"content-type": "application/json"}
    if signed:
        stamp = stamp or str(int(time.time()))
        all_headers |= {"telnyx-timestamp": stamp, "telnyx-signature-ed25519": sign(body, stamp)}
    all_headers |= headers
    return WebhookRequest("POST", url, all_headers, [], body)


# --- inbound messages ---------------------------------------------------------------------

MMS_CDN = "https://media.telnyx.com/mms/9f2e6c1a/"

INBOUND_CASES = [
    pytest.param(fixture("inbound_sms.json"), {
        "carrier_message_id": "84cca175-9755-4859-b67f-4730d7f58aa3",
        "from_number": "+15145550123", "to_number": "+15145550100", "text": "ARM SV",
        "media": ()}, id="sms"),
    pytest.param(fixture("inbound_mms_2_media.json"), {
        "carrier_message_id": "9f2e6c1a-3b4d-4e5f-8a7b-6c5d4e3f2a1b",
        "from_number": "+14385550111", "to_number": "+15145550100",
        "text": "Front door \U0001f4f7 & back yard",
        "media": (Media("image/jpeg", MMS_CDN + "front.jpg", size=182734),
                  Media("video/mp4", MMS_CDN + "yard.mp4", size=604211))}, id="mms-two-media"),
    pytest.param(mutated("inbound_sms.json", **{"from": {"phone_number": "72345"}}),
                 {"from_number": "72345"}, id="short-code-sender-kept"),
    pytest.param(mutated("inbound_sms.json", **{"from": {"phone_number": "ACMEBANK"}}),
                 {"from_number": "ACMEBANK"}, id="alphanumeric-sender-kept"),
    pytest.param(mutated("inbound_sms.json", text=None), {"text": ""}, id="no-text"),
    pytest.param(mutated("inbound_sms.json", media=None), {"media": ()}, id="no-media-key"),
    pytest.param(mutated("inbound_mms_2_media.json", media=[{"url": MMS_CDN + "x"}]),
                 {"media": (Media("application/octet-stream", MMS_CDN + "x"),)},
                 id="media-without-content-type"),
]


@pytest.mark.parametrize(("event", "expected"), INBOUND_CASES)
def test_parse_inbound(event: dict[str, Any], expected: dict[str, Any]) -> None:
    [message] = make_provider().parse_inbound(post(INBOUND_URL, event))
    for attribute, value in expected.items():
        assert getattr(message, attribute) == value, attribute


@pytest.mark.parametrize("name", ["status_sent.json", "status_delivered.json"])
def test_receipts_at_the_inbound_url_are_acknowledged_not_stored(name: str) -> None:
    assert make_provider().parse_inbound(post(INBOUND_URL, fixture(name))) == []


MALFORMED_INBOUND = [
    pytest.param(mutated("inbound_sms.json", id=None), "payload.id", id="no-id"),
    pytest.param(mutated("inbound_sms.json", **{"from": None}), "payload.from", id="no-from"),
    pytest.param(mutated("inbound_sms.json", **{"from": {"carrier": "x"}}),
                 "payload.from.phone_number", id="no-from-number"),
    pytest.param(mutated("inbound_sms.json", to=[]), "payload.to", id="empty-to"),
    pytest.param(mutated("inbound_sms.json", to=[{"phone_number": "not a number!"}]),
                 "payload.to", id="bad-to"),
    pytest.param(mutated("inbound_sms.json", **{"from": {"phone_number": "12"}}),
                 "payload.from.phone_number", id="two-digit-sender"),
    pytest.param(mutated("inbound_sms.json", text=5), "payload.text", id="text-not-string"),
    pytest.param(mutated("inbound_sms.json", media={"url": "x"}), "payload.media",
                 id="media-not-list"),
    pytest.param(mutated("inbound_mms_2_media.json", media=[{"content_type": "image/png"}]),
                 r"payload.media\[0\].url", id="media-without-url"),
    pytest.param({"data": {"event_type": "call.initiated", "payload": {}}}, "call.initiated",
                 id="other-event"),
    pytest.param({"data": {"payload": {}}}, "event_type", id="no-event-type"),
    pytest.param({"meta": {}}, "'data'", id="no-data"),
    pytest.param({"data": {"event_type": "message.received"}}, "payload", id="no-payload"),
    pytest.param(b"not json", "JSON", id="not-json"),
]


@pytest.mark.parametrize(("event", "field"), MALFORMED_INBOUND)
def test_malformed_inbound_names_the_field(event: dict[str, Any] | bytes, field: str) -> None:
    with pytest.raises(MalformedWebhook, match=field):
        make_provider().parse_inbound(post(INBOUND_URL, event))


def test_inbound_reply_is_an_empty_200() -> None:
    reply = make_provider().inbound_reply([])
    assert (reply.status, reply.body) == (200, b"")


# --- delivery receipts --------------------------------------------------------------------

OUT_ID = "40318ad3-7e5b-4a6b-9c1d-2e3f4a5b6c7d"


def with_status(name: str, status: str) -> dict[str, Any]:
    event = fixture(name)
    event["data"]["payload"]["to"][0]["status"] = status
    return event


STATUS_CASES = [
    pytest.param(fixture("status_sent.json"), MessageStatus.SENT, None, None, id="sent"),
    pytest.param(fixture("status_delivered.json"), MessageStatus.DELIVERED, None, None,
                 id="delivered"),
    pytest.param(fixture("status_delivery_failed_40008.json"), MessageStatus.FAILED, "40008",
                 "undeliverable", id="delivery-failed-40008"),
    pytest.param(fixture("status_sending_failed_40300.json"), MessageStatus.FAILED, "40300",
                 "recipient has opted out (sent STOP)", id="sending-failed-40300"),
    pytest.param(with_status("status_sent.json", "queued"), MessageStatus.SENDING, None, None,
                 id="queued"),
    pytest.param(with_status("status_sent.json", "sending"), MessageStatus.SENDING, None, None,
                 id="sending"),
    pytest.param(with_status("status_delivered.json", "delivery_unconfirmed"),
                 MessageStatus.SENT, None, None, id="delivery-unconfirmed"),
    pytest.param(with_status("status_delivered.json", "expired"), MessageStatus.FAILED, None,
                 None, id="expired"),
    pytest.param(mutated("status_delivery_failed_40008.json",
                         errors=[{"code": "40999", "title": "Carrier said no"}]),
                 MessageStatus.FAILED, "40999", "Carrier said no", id="unknown-code-uses-title"),
]


@pytest.mark.parametrize(("event", "status", "code", "reason"), STATUS_CASES)
def test_parse_status(event: dict[str, Any], status: MessageStatus, code: str | None,
                      reason: str | None) -> None:
    [update] = make_provider().parse_status(post(STATUS_URL, event))
    assert update.carrier_message_id == OUT_ID
    assert (update.status, update.error_code, update.error_reason) == (status, code, reason)


@pytest.mark.parametrize(("event", "field"), [
    pytest.param(with_status("status_sent.json", "exploded"), "exploded", id="unknown-status"),
    pytest.param(mutated("status_sent.json", to=[]), "payload.to", id="no-to"),
    pytest.param(mutated("status_sent.json", id=None), "payload.id", id="no-id"),
    pytest.param(fixture("inbound_sms.json"), "message.received", id="inbound-at-status-url"),
])
def test_malformed_status(event: dict[str, Any], field: str) -> None:
    with pytest.raises(MalformedWebhook, match=field):
        make_provider().parse_status(post(STATUS_URL, event))


# --- signatures ---------------------------------------------------------------------------

SIGNED = ["inbound_sms.json", "inbound_mms_2_media.json", "status_delivered.json"]


@pytest.mark.parametrize("name", SIGNED)
def test_fixture_signed_with_the_test_key_verifies(name: str) -> None:
    make_provider().verify(post(INBOUND_URL, (FIXTURES / name).read_bytes()))


def test_signed_string_is_timestamp_pipe_raw_body() -> None:
    """The bytes signed are exactly "<telnyx-timestamp>|<raw body>", as Telnyx's SDKs build."""
    body = (FIXTURES / "inbound_sms.json").read_bytes()
    stamp = str(int(time.time()))
    signature = base64.b64encode(SIGNING_KEY.sign(f"{stamp}|".encode() + body)).decode()
    make_provider().verify(WebhookRequest("POST", INBOUND_URL, {
        "telnyx-timestamp": stamp, "telnyx-signature-ed25519": signature}, [], body))


def _request(body: bytes | None = None, age: int = 0, **headers: str) -> WebhookRequest:
    """The inbound fixture, signed ``age`` seconds ago, with ``body`` and headers swapped in
    after signing ("-" drops a header)."""
    signed_body = (FIXTURES / "inbound_sms.json").read_bytes()
    stamp = str(int(time.time()) - age)
    base = {"telnyx-timestamp": stamp, "telnyx-signature-ed25519": sign(signed_body, stamp)}
    return WebhookRequest("POST", INBOUND_URL, {k: v for k, v in (base | headers).items()
                                                if v != "-"}, [], body or signed_body)


def _other_key_signature() -> str:
    return sign((FIXTURES / "inbound_sms.json").read_bytes(), str(int(time.time())),
                Ed25519PrivateKey.generate())


SMS_BYTES = (FIXTURES / "inbound_sms.json").read_bytes()

# Each case builds its request when the test runs, so its timestamp is fresh.
REJECTED: list[Any] = [
    pytest.param(lambda: _request(SMS_BYTES.replace(b"ARM SV", b"DISARM")), "does not match",
                 id="body-changed"),
    pytest.param(lambda: _request(SMS_BYTES + b" "), "does not match", id="body-reserialised"),
    pytest.param(lambda: _request(**{"telnyx-timestamp": str(int(time.time()) - 1)}),
                 "does not match", id="timestamp-changed"),
    pytest.param(lambda: _request(age=400), "300 s", id="older-than-300s"),
    pytest.param(lambda: _request(age=-400), "300 s", id="from-the-future"),
    pytest.param(lambda: _request(**{"telnyx-signature-ed25519": _other_key_signature()}),
                 "does not match", id="another-key"),
    pytest.param(lambda: _request(**{"telnyx-signature-ed25519": "-"}), "missing",
                 id="no-signature"),
    pytest.param(lambda: _request(**{"telnyx-timestamp": "-"}), "missing", id="no-timestamp"),
    pytest.param(lambda: _request(**{"telnyx-timestamp": "12.5"}), "Unix time",
                 id="bad-timestamp"),
    pytest.param(lambda: _request(**{"telnyx-signature-ed25519": "not base64!"}),
                 "does not match", id="signature-not-base64"),
    pytest.param(lambda: _request(**{"telnyx-signature-ed25519": base64.b64encode(
        b"x" * 63).decode()}), "does not match", id="signature-63-bytes"),
]


@pytest.mark.parametrize(("build", "reason"), REJECTED)
def test_forged_or_stale_request_rejected(build: Any, reason: str) -> None:
    with pytest.raises(WebhookRejected, match=reason):
        make_provider().verify(build())


def test_a_fresh_request_from_the_same_builder_verifies() -> None:
    """The rejections above come from what each case changed, not from the builder."""
    make_provider().verify(_request())
    make_provider().verify(_request(age=290))
    make_provider().verify(_request(age=-290))


# --- config -------------------------------------------------------------------------------

def test_registry_resolves_telnyx() -> None:
    assert get_provider_class("telnyx") is TelnyxProvider


@pytest.mark.parametrize("options", [
    pytest.param({"public_key": "not base64!"}, id="public-key-not-base64"),
    pytest.param({"public_key": base64.b64encode(b"x" * 31).decode()}, id="public-key-31-bytes"),
    pytest.param({"messaging_profile_id": ""}, id="empty-profile"),
    pytest.param({"api_secret": "x"}, id="unknown-key"),
])
def test_config_rejects(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        TelnyxConfig(**{"api_key": API_KEY, "public_key": PUBLIC_KEY, **options})


def test_config_never_shows_the_api_key() -> None:
    config = TelnyxConfig(api_key=API_KEY, public_key=PUBLIC_KEY)
    assert API_KEY not in repr(config) and API_KEY not in str(config.model_dump())


def test_setup_hint_names_the_inbound_url() -> None:
    hint = make_provider().setup_hint(INBOUND_URL, STATUS_URL)
    assert hint is not None and INBOUND_URL in hint and "public_key" in hint


# --- send: the exact request, and recorded API answers replayed over real HTTP -------------

@pytest.fixture(scope="module")
def new_replay() -> Replay:
    """Telnyx's API: 200 and a sent SMS's record; keeps path, headers and the parsed body."""
    return Replay(200, "application/json", path_headers_json,
                  body=(FIXTURES / "send_200_sms.json").read_bytes())


@pytest.fixture
def base_url(replay_server: tuple[Replay, RunningServer]) -> str:
    return replay_server[1].url


FROM, TO = "+15145550100", "+14385550123"
CAM = "https://cdn.example.com/cam1.jpg"

SEND_CASES = [
    pytest.param(OutboundMessage("m1", FROM, TO, "Porch motion"), {},
                 {"from": FROM, "to": TO, "text": "Porch motion"}, id="sms"),
    pytest.param(OutboundMessage("m1", FROM, TO, "Porch", status_callback_url=STATUS_URL), {},
                 {"from": FROM, "to": TO, "text": "Porch", "webhook_url": STATUS_URL},
                 id="sms-with-receipts"),
    pytest.param(OutboundMessage("m1", FROM, TO, "Front door", (Media("image/jpeg", CAM),)), {},
                 {"from": FROM, "to": TO, "text": "Front door", "media_urls": [CAM]}, id="mms"),
    pytest.param(OutboundMessage("m1", FROM, TO, "", (Media("image/jpeg", CAM),)), {},
                 {"from": FROM, "to": TO, "media_urls": [CAM]}, id="media-only-no-text"),
    pytest.param(OutboundMessage("m1", FROM, TO, "hi"), {"messaging_profile_id": PROFILE},
                 {"from": FROM, "to": TO, "text": "hi", "messaging_profile_id": PROFILE},
                 id="messaging-profile"),
]


@pytest.mark.parametrize(("message", "options", "expected"), SEND_CASES)
async def test_send_makes_the_exact_request(replay: Replay, base_url: str,
                                            http: aiohttp.ClientSession, message: OutboundMessage,
                                            options: dict[str, Any],
                                            expected: dict[str, Any]) -> None:
    result = await make_provider(base_url=base_url, **options).send(message, http)
    [(path, headers, body)] = replay.seen
    assert path == "/v2/messages"
    assert headers["authorization"] == f"Bearer {API_KEY}"
    assert headers["content-type"].startswith("application/json")
    assert body == expected
    assert result.carrier_message_id == OUT_ID and result.status is MessageStatus.SENT


@pytest.mark.parametrize(("name", "message_id", "segments"), [
    pytest.param("send_200_sms.json", OUT_ID, 2, id="sms-two-parts"),
    pytest.param("send_200_mms.json", "4031a7c2-5d6e-4f70-8192-a3b4c5d6e7f8", 1, id="mms"),
])
async def test_send_reads_the_message_record(replay: Replay, base_url: str,
                                             http: aiohttp.ClientSession, name: str,
                                             message_id: str, segments: int) -> None:
    replay.body = (FIXTURES / name).read_bytes()
    result = await make_provider(base_url=base_url).send(
        OutboundMessage("m1", FROM, TO, "x"), http)
    assert (result.carrier_message_id, result.segments) == (message_id, segments)


async def test_inline_media_refused_before_any_request(replay: Replay, base_url: str,
                                                       http: aiohttp.ClientSession) -> None:
    message = OutboundMessage("m1", FROM, TO, "x", (Media("image/png", data_base64="iVBO"),))
    with pytest.raises(ProviderError) as caught:
        await make_provider(base_url=base_url).send(message, http)
    assert (caught.value.code, caught.value.retryable) == ("inline_media", False)
    assert replay.seen == []


SEND_ERRORS = [
    pytest.param("error_10009.json", 401, {}, False, "10009", None, id="10009-auth"),
    pytest.param("error_40300.json", 409, {}, False, "40300", None, id="40300-opted-out"),
    pytest.param("error_40310.json", 400, {}, False, "40310", None, id="40310-bad-to"),
    pytest.param("error_40305.json", 400, {}, False, "40305", None, id="40305-bad-from"),
    pytest.param("error_10011.json", 429, {"Retry-After": "7"}, True, "10011", 7.0,
                 id="10011-rate-limited"),
    pytest.param("error_10007.json", 500, {}, True, "10007", None, id="10007-5xx"),
    pytest.param("error_40300.json", 503, {}, False, "40300", None,
                 id="opted-out-never-retried-even-on-5xx"),
    pytest.param("error_10011.json", 400, {}, True, "10011", None, id="rate-code-wins-over-4xx"),
    pytest.param("error_502_gateway.html", 502, {}, True, "http_502", None, id="non-json-502"),
]


@pytest.mark.parametrize(("name", "status", "headers", "retryable", "code", "retry_after"),
                         SEND_ERRORS)
async def test_send_error_mapping(replay: Replay, base_url: str, http: aiohttp.ClientSession,
                                  name: str, status: int, headers: dict[str, str],
                                  retryable: bool, code: str,
                                  retry_after: float | None) -> None:
    replay.body, replay.status, replay.headers = (FIXTURES / name).read_bytes(), status, headers
    with pytest.raises(ProviderError) as caught:
        await make_provider(base_url=base_url).send(OutboundMessage("m1", FROM, TO, "x"), http)
    error = caught.value
    assert (error.retryable, error.code, error.retry_after) == (retryable, code, retry_after)
    if name.endswith(".json"):
        assert json.loads(replay.body)["errors"][0]["title"] in error.reason
    assert API_KEY not in str(error) and API_KEY not in repr(error)


async def test_api_key_echoed_by_an_error_is_masked(replay: Replay, base_url: str,
                                                    http: aiohttp.ClientSession) -> None:
    replay.status = 401
    replay.body = json.dumps({"errors": [{"code": "10009", "title": "Authentication failed",
                                          "detail": f"bad key {API_KEY}"}]}).encode()
    with pytest.raises(ProviderError) as caught:
        await make_provider(base_url=base_url).send(OutboundMessage("m1", FROM, TO, "x"), http)
    assert API_KEY not in caught.value.reason and "***" in caught.value.reason


@pytest.mark.parametrize("body", [b"{}", b'{"data": {}}', b'{"data": {"id": ""}}', b"<html>"])
async def test_success_without_an_id_is_not_retried(replay: Replay, base_url: str,
                                                    http: aiohttp.ClientSession,
                                                    body: bytes) -> None:
    replay.body = body
    with pytest.raises(ProviderError) as caught:
        await make_provider(base_url=base_url).send(OutboundMessage("m1", FROM, TO, "x"), http)
    assert (caught.value.code, caught.value.retryable) == ("no_id", False)


async def test_connection_refused_is_retryable(http: aiohttp.ClientSession) -> None:
    provider = make_provider(base_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ProviderError) as caught:
        await provider.send(OutboundMessage("m1", FROM, TO, "x"), http)
    assert (caught.value.code, caught.value.retryable) == ("connection_error", True)

"""Vonage voice calls: config, the application JWT, the exact Voice API request, signed events."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import jwt as pyjwt  # the independent witness for our tokens
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from smsbridge.core.errors import MalformedWebhook, ProviderError, WebhookRejected
from smsbridge.core.messages import CALL_FAILURE_ANSWERS, MessageStatus, OutboundCall
from smsbridge.providers.base import WebhookRequest
from smsbridge.providers.vonage.provider import VonageConfig, VonageProvider
from smsbridge.providers.vonage.tokens import (
    application_token,
    load_private_key,
    webhook_claims,
)
from smsbridge.testing.server import RunningServer
from tests.providers.replay import Replay, path_headers_json

FIXTURES = Path(__file__).parent / "fixtures"
API_KEY = "a1b2c3d4"
API_SECRET = "Zx9Yw8Vu7Ts6Rq5P"
SIG_SECRET = "ahq1Lg3Zq0yVb8pM2nRkT5sWd7fXe9hJ"
APP_ID = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
STATUS_URL = "https://sms.example.com/v1/carriers/vonage/Zq3kP9wX/status"
CALL_UUID = "63f61863-4a51-4f6b-86e1-46edebcf9356"

CALL = OutboundCall("call_01HZX", "+15145550100", "+14385550123", "Alarm: motion in the garage",
                    language="en-US", repeat=2, status_callback_url=STATUS_URL)


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    """A fresh RSA key standing in for a Vonage application's (made at test time)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(private_key: rsa.RSAPrivateKey) -> str:
    return private_key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()


def make_provider(key: rsa.RSAPrivateKey | None = None, **options: object) -> VonageProvider:
    voice = {} if key is None else {"application_id": APP_ID, "private_key": pem(key)}
    return VonageProvider(VonageConfig(**{"api_key": API_KEY, "api_secret": API_SECRET,
                                          **voice, **options}))


def event(name: str, **changes: object) -> bytes:
    """A recorded call event's body, compact as Vonage sends it, with some fields changed."""
    body = {**json.loads((FIXTURES / name).read_text()), **changes}
    return json.dumps(body, separators=(",", ":")).encode()


def vonage_token(body: bytes, secret: str = SIG_SECRET, **claims: Any) -> str:
    """The HS256 JWT Vonage puts on a call event, made with PyJWT at test time."""
    return pyjwt.encode({"iat": int(time.time()), "jti": "7f9b0d2e-1c3a-4e5f", "iss": "Vonage",
                         "payload_hash": hashlib.sha256(body).hexdigest(), "api_key": API_KEY,
                         "application_id": APP_ID, **claims}, secret, algorithm="HS256")


def post_event(body: bytes, token: str | None = None) -> WebhookRequest:
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return WebhookRequest("POST", STATUS_URL, headers, [], body)


# --- config and capabilities ----------------------------------------------------------------

def test_voice_is_declared_by_the_carrier_and_on_only_when_configured(
        key: rsa.RSAPrivateKey) -> None:
    assert VonageProvider.capabilities.voice is True
    assert make_provider(key).capabilities.voice is True
    assert make_provider().capabilities.voice is False
    assert make_provider().capabilities.sms is True


async def test_place_call_without_the_voice_keys_names_them(http: aiohttp.ClientSession) -> None:
    with pytest.raises(ProviderError) as caught:
        await make_provider().place_call(CALL, http)
    error = caught.value
    assert (error.retryable, error.code) == (False, "calls_unsupported")
    assert "application_id" in error.reason and "private_key" in error.reason


@pytest.mark.parametrize(("options", "field"), [
    pytest.param({"application_id": APP_ID}, "private_key", id="id-without-key"),
    pytest.param({"private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"},
                 "private_key", id="not-a-key"),
    pytest.param({"application_id": "", "private_key": "x"}, "application_id", id="empty-id"),
])
def test_config_rejects_half_or_broken_voice_keys(options: dict[str, str], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        VonageConfig(api_key=API_KEY, api_secret=API_SECRET, **options)


def test_config_refuses_a_non_rsa_key() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    with pytest.raises(ValueError, match="not an RSA key"):
        VonageConfig(api_key=API_KEY, api_secret=API_SECRET, application_id=APP_ID,
                     private_key=ec_pem)


def test_a_key_written_on_one_line_with_escaped_line_breaks_is_read(
        key: rsa.RSAPrivateKey) -> None:
    one_line = pem(key).strip().replace("\n", "\\n")
    assert "\n" not in one_line
    loaded = load_private_key(one_line)
    assert loaded.private_numbers() == key.private_numbers()


def test_config_never_shows_the_private_key(key: rsa.RSAPrivateKey) -> None:
    config = VonageConfig(api_key=API_KEY, api_secret=API_SECRET, application_id=APP_ID,
                          private_key=pem(key))
    body = pem(key).splitlines()[1]
    assert body not in repr(config) and body not in str(config.model_dump())


# --- the application JWT --------------------------------------------------------------------

def test_application_token_verifies_with_the_public_key(key: rsa.RSAPrivateKey) -> None:
    now = time.time()
    token = application_token(APP_ID, key, now)
    signing_input, _, signature = token.rpartition(".")
    padded = signature + "=" * (-len(signature) % 4)
    key.public_key().verify(base64.urlsafe_b64decode(padded), signing_input.encode(),
                            padding.PKCS1v15(), hashes.SHA256())  # raises if it does not hold
    claims = pyjwt.decode(token, key.public_key(), algorithms=["RS256"])
    assert claims["application_id"] == APP_ID
    assert claims["iat"] == int(now) and claims["exp"] == int(now) + 900
    assert pyjwt.get_unverified_header(token) == {"alg": "RS256", "typ": "JWT"}


def test_application_token_signed_by_another_key_does_not_verify(
        key: rsa.RSAPrivateKey) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signing_input, _, signature = application_token(APP_ID, other, time.time()).rpartition(".")
    with pytest.raises(InvalidSignature):
        key.public_key().verify(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)),
                                signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())


def test_each_application_token_is_unique(key: rsa.RSAPrivateKey) -> None:
    now = time.time()
    first, second = (pyjwt.decode(application_token(APP_ID, key, now), key.public_key(),
                                  algorithms=["RS256"]) for _ in range(2))
    assert first["jti"] != second["jti"]


def test_load_private_key_refuses_text_that_is_no_key() -> None:
    with pytest.raises(ValueError, match="PEM"):
        load_private_key("not a key")


# --- the webhook JWT ------------------------------------------------------------------------

def test_webhook_claims_of_a_pyjwt_token() -> None:
    body = event("voice_event_busy.json")
    claims = webhook_claims(vonage_token(body), SIG_SECRET, time.time())
    assert (claims["api_key"], claims["payload_hash"]) == (
        API_KEY, hashlib.sha256(body).hexdigest())


@pytest.mark.parametrize(("token", "words"), [
    pytest.param(vonage_token(b"{}", secret="w" * 32), "signature", id="wrong-secret"),
    pytest.param(pyjwt.encode({"api_key": API_KEY}, "k" * 64, algorithm="HS512"), "HS512",
                 id="other-alg"),
    pytest.param(pyjwt.encode({"api_key": API_KEY}, None, algorithm="none"), "'none'",
                 id="alg-none"),
    pytest.param(vonage_token(b"{}", exp=int(time.time()) - 3600), "expired", id="expired"),
    pytest.param("abc.def", "not a JWT", id="two-parts"),
    pytest.param("eyJhbGciOiJIUzI1NiJ9.e30.***", "base64url", id="bad-signature-part"),
    pytest.param("bm90IGpzb24.e30.c2ln", "not JSON", id="header-not-json"),
])
def test_webhook_claims_refuse(token: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        webhook_claims(token, SIG_SECRET, time.time())


# --- verifying call events ------------------------------------------------------------------

def test_signed_call_event_is_accepted() -> None:
    body = event("voice_event_completed.json")
    make_provider(signature_secret=SIG_SECRET).verify(post_event(body, vonage_token(body)))


def test_token_hashing_the_event_with_other_spacing_is_accepted() -> None:
    compact = event("voice_event_busy.json")
    spaced = json.dumps(json.loads(compact)).encode()  # ", " and ": " separators
    assert spaced != compact
    make_provider(signature_secret=SIG_SECRET).verify(post_event(spaced, vonage_token(compact)))


def _forged() -> list[object]:
    body = event("voice_event_completed.json")
    busy = event("voice_event_busy.json")
    return [
        pytest.param(post_event(body), "sig", id="unsigned"),
        pytest.param(post_event(busy, vonage_token(body)), "payload_hash", id="body-swapped"),
        pytest.param(post_event(body, vonage_token(body, secret="x" * 32)), "signature",
                     id="wrong-secret"),
        pytest.param(post_event(body, vonage_token(body, api_key="ffffffff")), "another API key",
                     id="other-api-key"),
        pytest.param(post_event(body, "Zm9v.YmFy.YmF6"), "not JSON", id="garbage-token"),
    ]


@pytest.mark.parametrize(("request_", "words"), _forged())
def test_forged_call_event_is_rejected(request_: WebhookRequest, words: str) -> None:
    with pytest.raises(WebhookRejected, match=words) as caught:
        make_provider(signature_secret=SIG_SECRET).verify(request_)
    assert SIG_SECRET not in str(caught.value)


def test_without_a_signature_secret_call_events_are_guarded_by_the_url_token() -> None:
    make_provider().verify(post_event(event("voice_event_busy.json")))


# --- parsing call events --------------------------------------------------------------------

EVENT_CASES = [
    pytest.param(event("voice_event_started.json"), MessageStatus.SENT, None, None,
                 id="started"),
    pytest.param(event("voice_event_started.json", status="ringing"), MessageStatus.SENT, None,
                 None, id="ringing"),
    pytest.param(event("voice_event_answered.json"), MessageStatus.SENT, None, None,
                 id="answered-null-fields"),
    pytest.param(event("voice_event_completed.json"), MessageStatus.DELIVERED, None, None,
                 id="completed"),
    pytest.param(event("voice_event_busy.json"), MessageStatus.FAILED, "busy", "busy",
                 id="busy"),
    pytest.param(event("voice_event_unanswered.json"), MessageStatus.FAILED, "no-answer",
                 "unanswered (unavailable)", id="unanswered-with-detail"),
    pytest.param(event("voice_event_busy.json", status="timeout"), MessageStatus.FAILED,
                 "no-answer", "timeout", id="timeout"),
    pytest.param(event("voice_event_busy.json", status="rejected"), MessageStatus.FAILED,
                 "failed", "rejected", id="rejected"),
    pytest.param(event("voice_event_busy.json", status="failed"), MessageStatus.FAILED,
                 "failed", "failed", id="failed"),
    pytest.param(event("voice_event_busy.json", status="cancelled"), MessageStatus.FAILED,
                 "canceled", "cancelled", id="cancelled"),
]


@pytest.mark.parametrize(("body", "status", "answer", "reason"), EVENT_CASES)
def test_call_event_becomes_a_status_update(body: bytes, status: MessageStatus,
                                            answer: str | None, reason: str | None) -> None:
    [update] = make_provider().parse_status(post_event(body))
    assert update.carrier_message_id == CALL_UUID
    assert (update.status, update.error_code, update.error_reason) == (status, answer, reason)
    assert answer is None or answer in CALL_FAILURE_ANSWERS


def test_an_event_without_a_call_status_changes_nothing() -> None:
    body = json.dumps({"uuid": CALL_UUID, "conversation_uuid": "CON-1", "dtmf": {"digits": "1"},
                       "timestamp": "2024-05-20T15:29:55.000Z"}).encode()
    assert make_provider().parse_status(post_event(body)) == []


@pytest.mark.parametrize(("body", "words"), [
    pytest.param(event("voice_event_busy.json", status="exploded"), "exploded", id="unknown"),
    pytest.param(event("voice_event_busy.json", uuid=""), "uuid", id="empty-uuid"),
])
def test_malformed_call_event(body: bytes, words: str) -> None:
    with pytest.raises(MalformedWebhook, match=words):
        make_provider().parse_status(post_event(body))


def test_sms_receipts_still_read_as_receipts() -> None:
    body = json.dumps({"messageId": "0C000000217B7F02", "status": "delivered", "err-code": "0",
                       "msisdn": "14385550123", "to": "15145550100"}).encode()
    [update] = make_provider().parse_status(post_event(body))
    assert (update.carrier_message_id, update.status) == ("0C000000217B7F02",
                                                          MessageStatus.DELIVERED)


# --- placing the call: recorded API answers replayed over real HTTP ---------------------------

@pytest.fixture(scope="module")
def new_replay() -> Replay:
    """Vonage's Voice API: 201 and JSON; keeps each request's path, headers and JSON body."""
    return Replay(201, "application/json", path_headers_json)


@pytest.fixture
def replay_provider(replay_server: tuple[Replay, RunningServer],
                    key: rsa.RSAPrivateKey) -> VonageProvider:
    return make_provider(key, base_url=replay_server[1].url)


async def test_place_call_makes_the_exact_request(replay: Replay, replay_provider: VonageProvider,
                                                  key: rsa.RSAPrivateKey,
                                                  http: aiohttp.ClientSession) -> None:
    replay.load(FIXTURES / "voice_call_201.json", 201)
    call = OutboundCall("call_1", "+15145550100", "+14385550123", 'Alarm <Front> & "back"',
                        voice="2", language="en-GB", repeat=3, status_callback_url=STATUS_URL)
    result = await replay_provider.place_call(call, http)
    assert (result.carrier_message_id, result.status) == (CALL_UUID, MessageStatus.SENT)
    path, headers, body = replay.seen[-1]
    assert path == "/v1/calls"
    scheme, _, token = headers["authorization"].partition(" ")
    assert scheme == "Bearer"
    assert pyjwt.decode(token, key.public_key(), algorithms=["RS256"])["application_id"] == APP_ID
    assert body == {
        "to": [{"type": "phone", "number": "14385550123"}],
        "from": {"type": "phone", "number": "15145550100"},
        "ncco": [{"action": "talk", "text": 'Alarm <Front> & "back"', "loop": 3,
                  "language": "en-GB", "style": 2}],
        "event_url": [STATUS_URL], "event_method": "POST"}


async def test_defaults_leave_language_and_style_to_vonage(
        replay: Replay, replay_provider: VonageProvider, http: aiohttp.ClientSession) -> None:
    replay.load(FIXTURES / "voice_call_201.json", 201)
    await replay_provider.place_call(OutboundCall("c", "+15145550100", "+14385550123", "hi"),
                                     http)
    _, _, body = replay.seen[-1]
    assert body["ncco"] == [{"action": "talk", "text": "hi", "loop": 1}]
    assert "event_url" not in body


async def test_a_voice_name_is_refused_before_any_request(
        replay: Replay, replay_provider: VonageProvider, http: aiohttp.ClientSession) -> None:
    call = OutboundCall("c", "+15145550100", "+14385550123", "hi", voice="Joanna")
    with pytest.raises(ProviderError, match="style number") as caught:
        await replay_provider.place_call(call, http)
    assert (caught.value.retryable, caught.value.code) == (False, "invalid_voice")
    assert replay.seen == []


VOICE_ERRORS = [
    pytest.param("voice_error_400.json", 400, {}, False, "http_400", None,
                 "Vonage Voice: Bad Request: Invalid NCCO: talk action requires text",
                 id="400"),
    pytest.param("voice_error_401.json", 401, {}, False, "http_401", None,
                 "Vonage Voice: Unauthorized: You did not provide correct credentials.",
                 id="401-wrong-application-key"),
    pytest.param("voice_error_429.json", 429, {"Retry-After": "2"}, True, "http_429", 2.0,
                 "Vonage Voice: Throttled: Please wait, then retry your request", id="429"),
    pytest.param("error_502.html", 502, {}, True, "http_502", None,
                 "Vonage Voice answered HTTP 502", id="non-json-502"),
]


@pytest.mark.parametrize(("name", "status", "headers", "retryable", "code", "retry_after",
                          "reason"), VOICE_ERRORS)
async def test_place_call_error_mapping(replay: Replay, replay_provider: VonageProvider,
                                        http: aiohttp.ClientSession, name: str, status: int,
                                        headers: dict[str, str], retryable: bool, code: str,
                                        retry_after: float | None, reason: str) -> None:
    replay.load(FIXTURES / name, status, **headers)
    with pytest.raises(ProviderError) as caught:
        await replay_provider.place_call(CALL, http)
    error = caught.value
    assert (error.retryable, error.code, error.retry_after, error.reason) == (
        retryable, code, retry_after, reason)


@pytest.mark.parametrize("body", [b"{}", b'{"uuid": ""}', b"not json"])
async def test_201_without_uuid_is_not_retried(replay: Replay, replay_provider: VonageProvider,
                                               http: aiohttp.ClientSession, body: bytes) -> None:
    replay.body = body
    with pytest.raises(ProviderError) as caught:
        await replay_provider.place_call(CALL, http)
    assert (caught.value.retryable, caught.value.code) == (False, "no_uuid")

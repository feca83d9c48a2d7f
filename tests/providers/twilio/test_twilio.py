"""Twilio: recorded-shape payloads in, messages/statuses/errors out; signatures vs Twilio's SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import aiohttp
import pytest
from starlette.requests import Request
from twilio.request_validator import RequestValidator

from smsbridge.core.errors import MalformedWebhook, ProviderError, WebhookRejected
from smsbridge.core.messages import Media, MessageStatus, OutboundMessage
from smsbridge.providers.base import WebhookRequest
from smsbridge.providers.http import parse_retry_after
from smsbridge.providers.registry import get_provider_class
from smsbridge.providers.twilio.provider import EMPTY_TWIML, TwilioConfig, TwilioProvider
from smsbridge.providers.twilio.signature import body_sha256, compute_signature
from smsbridge.testing.server import RunningServer
from tests.providers.forms import changed, form_fixture
from tests.providers.replay import Replay

FIXTURES = Path(__file__).parent / "fixtures"
ACCOUNT_SID = "AC3f9c2e8b5d1a4f6e9b0c7d2a1e5f8b3c"
TOKEN = "9b1f2c3d4e5f60718293a4b5c6d7e8f9"
INBOUND_URL = "https://sms.example.com/v1/carriers/twilio/Zq3kP9wX/inbound"
STATUS_URL = "https://sms.example.com/v1/carriers/twilio/Zq3kP9wX/status?msg=01HZX"
FORM = "application/x-www-form-urlencoded"


def make_provider(token: str = TOKEN, **options: object) -> TwilioProvider:
    return TwilioProvider(TwilioConfig(account_sid=ACCOUNT_SID, auth_token=token, **options))


def fixture_pairs(name: str) -> list[tuple[str, str]]:
    return form_fixture(FIXTURES / name)


def mutated(name: str, drop: tuple[str, ...] = (), **changes: str) -> list[tuple[str, str]]:
    """A fixture's fields with some removed and some set (added when absent)."""
    return changed(fixture_pairs(name), drop, **changes)


def post(url: str, pairs: list[tuple[str, str]], signature: str | None = None,
         **headers: str) -> WebhookRequest:
    all_headers = {"content-type": FORM, **headers}
    if signature is not None:
        all_headers["x-twilio-signature"] = signature
    query = parse_qsl(url.partition("?")[2], keep_blank_values=True)
    return WebhookRequest("POST", url, all_headers, query, urlencode(pairs).encode())


def get(url: str, pairs: list[tuple[str, str]], signature: str | None = None) -> WebhookRequest:
    full = f"{url}?{urlencode(pairs)}"
    headers = {} if signature is None else {"x-twilio-signature": signature}
    return WebhookRequest("GET", full, headers, pairs)


def sdk_sign(url: str, pairs: list[tuple[str, str]], token: str = TOKEN) -> str:
    """The signature Twilio's official Python SDK computes for a form POST."""
    return RequestValidator(token).compute_signature(url, dict(pairs))


# --- inbound messages ---------------------------------------------------------------------

MMS_MEDIA = (
    "https://api.twilio.com/2010-04-01/Accounts/AC3f9c2e8b5d1a4f6e9b0c7d2a1e5f8b3c/Messages/"
    "MM9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b/Media/"
)

INBOUND_CASES = [
    pytest.param("POST", fixture_pairs("inbound_sms.txt"), {
        "carrier_message_id": "SM1f6a3c2b9d8e7f0a1b2c3d4e5f6a7b8c", "from_number": "+16175550123",
        "to_number": "+16175550100", "text": "ARM SV", "media": ()}, id="sms"),
    pytest.param("POST", fixture_pairs("inbound_mms_2_media.txt"), {
        "carrier_message_id": "MM9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b", "from_number": "+15145550111",
        "to_number": "+15145550100", "text": "Front door \U0001f4f7 & back yard",
        "media": (
            Media("image/jpeg", MMS_MEDIA + "ME0a1b2c3d4e5f60718293a4b5c6d7e8f9"),
            Media("image/png", MMS_MEDIA + "ME1b2c3d4e5f60718293a4b5c6d7e8f9a0"),
        )}, id="mms-two-media"),
    pytest.param("GET", fixture_pairs("inbound_get.txt"), {
        "carrier_message_id": "SM2b3c4d5e6f708192a3b4c5d6e7f8091a", "from_number": "+14155550142",
        "to_number": "+14155550100", "text": "DISARM JF", "media": ()}, id="get-query"),
    pytest.param("POST", mutated("inbound_sms.txt", drop=("MessageSid",)), {
        "carrier_message_id": "SM1f6a3c2b9d8e7f0a1b2c3d4e5f6a7b8c"}, id="legacy-SmsMessageSid"),
    pytest.param("POST", mutated("inbound_sms.txt", drop=("MessageSid", "SmsMessageSid")), {
        "carrier_message_id": "SM1f6a3c2b9d8e7f0a1b2c3d4e5f6a7b8c"}, id="legacy-SmsSid"),
    pytest.param("POST", mutated("inbound_sms.txt", drop=("NumMedia", "Body")), {
        "text": "", "media": ()}, id="no-body-no-nummedia"),
    pytest.param("POST", mutated("inbound_sms.txt", From="72345"), {
        "from_number": "72345"}, id="short-code-sender-kept"),
    pytest.param("POST", mutated("inbound_mms_2_media.txt", drop=("MediaContentType1",)), {
        "media": (
            Media("image/jpeg", MMS_MEDIA + "ME0a1b2c3d4e5f60718293a4b5c6d7e8f9"),
            Media("application/octet-stream", MMS_MEDIA + "ME1b2c3d4e5f60718293a4b5c6d7e8f9a0"),
        )}, id="media-without-content-type"),
]


@pytest.mark.parametrize(("method", "pairs", "expected"), INBOUND_CASES)
def test_parse_inbound(method: str, pairs: list[tuple[str, str]], expected: dict) -> None:
    request = (get if method == "GET" else post)(INBOUND_URL, pairs)
    [message] = make_provider().parse_inbound(request)
    for attribute, value in expected.items():
        assert getattr(message, attribute) == value, attribute


MALFORMED_INBOUND = [
    pytest.param(mutated("inbound_sms.txt", drop=("MessageSid", "SmsMessageSid", "SmsSid")),
                 "MessageSid", id="no-sid"),
    pytest.param(mutated("inbound_sms.txt", drop=("From",)), "From", id="no-from"),
    pytest.param(mutated("inbound_sms.txt", drop=("To",)), "To", id="no-to"),
    pytest.param(mutated("inbound_sms.txt", From="not a number"), "From", id="bad-from"),
    pytest.param(mutated("inbound_sms.txt", NumMedia="-1"), "NumMedia", id="negative-nummedia"),
    pytest.param(mutated("inbound_sms.txt", NumMedia="two"), "NumMedia", id="word-nummedia"),
    pytest.param(mutated("inbound_sms.txt", NumMedia="1.0"), "NumMedia", id="float-nummedia"),
    pytest.param(mutated("inbound_mms_2_media.txt", drop=("MediaUrl1",)), "MediaUrl1",
                 id="missing-second-media"),
    pytest.param(mutated("inbound_sms.txt", NumMedia="1"), "MediaUrl0", id="nummedia-lies"),
]


@pytest.mark.parametrize(("pairs", "field"), MALFORMED_INBOUND)
def test_malformed_inbound_names_the_field(pairs: list[tuple[str, str]], field: str) -> None:
    with pytest.raises(MalformedWebhook, match=field):
        make_provider().parse_inbound(post(INBOUND_URL, pairs))


def test_inbound_reply_is_empty_twiml() -> None:
    reply = make_provider().inbound_reply([])
    assert (reply.status, reply.content_type) == (200, "application/xml")
    assert reply.body == b'<?xml version="1.0" encoding="UTF-8"?><Response/>' == EMPTY_TWIML


# --- status callbacks ---------------------------------------------------------------------

OUT_SID = "SM5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a"

STATUS_CASES = [
    pytest.param(fixture_pairs("status_sent.txt"), MessageStatus.SENT, None, None, id="sent"),
    pytest.param(fixture_pairs("status_delivered.txt"), MessageStatus.DELIVERED, None, None,
                 id="delivered"),
    pytest.param(fixture_pairs("status_undelivered_30003.txt"), MessageStatus.FAILED, "30003",
                 "unreachable destination handset", id="undelivered-30003"),
    pytest.param(fixture_pairs("status_failed_30007.txt"), MessageStatus.FAILED, "30007",
                 "message filtered by the carrier (spam or content violation)", id="failed-30007"),
    *[
        pytest.param(mutated("status_sent.txt", MessageStatus=word), MessageStatus.SENDING, None,
                     None, id=word)
        for word in ("queued", "accepted", "scheduled", "sending")
    ],
    pytest.param(mutated("status_sent.txt", MessageStatus="read"), MessageStatus.DELIVERED, None,
                 None, id="read"),
    pytest.param(mutated("status_sent.txt", MessageStatus="canceled"), MessageStatus.FAILED, None,
                 None, id="canceled"),
    pytest.param(mutated("status_failed_30007.txt", ErrorCode="30999",
                         ErrorMessage="Carrier rejected the message"),
                 MessageStatus.FAILED, "30999", "Carrier rejected the message",
                 id="unknown-code-uses-error-message"),
    pytest.param(mutated("status_failed_30007.txt", ErrorCode="30999"), MessageStatus.FAILED,
                 "30999", "Twilio error 30999", id="unknown-code-bare"),
]


@pytest.mark.parametrize(("pairs", "status", "code", "reason"), STATUS_CASES)
def test_parse_status(pairs: list[tuple[str, str]], status: MessageStatus, code: str | None,
                      reason: str | None) -> None:
    [update] = make_provider().parse_status(post(STATUS_URL, pairs))
    assert update.carrier_message_id == OUT_SID
    assert (update.status, update.error_code, update.error_reason) == (status, code, reason)


@pytest.mark.parametrize("pairs", [
    pytest.param(mutated("status_sent.txt", MessageStatus="exploded", SmsStatus="exploded"),
                 id="unknown-status"),
    pytest.param(mutated("status_sent.txt", MessageStatus="received", SmsStatus="received"),
                 id="inbound-status"),
    pytest.param(mutated("status_sent.txt", drop=("MessageSid", "SmsSid")), id="no-sid"),
    pytest.param(mutated("status_sent.txt", drop=("MessageStatus", "SmsStatus")), id="no-status"),
])
def test_malformed_status(pairs: list[tuple[str, str]]) -> None:
    with pytest.raises(MalformedWebhook):
        make_provider().parse_status(post(STATUS_URL, pairs))


def test_status_reply_is_empty_200() -> None:
    reply = make_provider().status_reply([])
    assert (reply.status, reply.body) == (200, b"")


# --- signatures ---------------------------------------------------------------------------

# Twilio's published example (api-snippets security/signature_validation): token "12345".
DOCS_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOCS_PARAMS = [("CallSid", "CA1234567890ABCDE"), ("Caller", "+14158675310"), ("Digits", "1234"),
               ("From", "+14158675310"), ("To", "+18005551212")]


def test_twilio_documented_example_verifies() -> None:
    provider = make_provider(token="12345")
    provider.verify(post(DOCS_URL, DOCS_PARAMS, "GvWf1cFY/Q7PnoempGyD5oXAezc="))
    with pytest.raises(WebhookRejected):
        provider.verify(post(DOCS_URL, [*DOCS_PARAMS[:1], ("Caller", "+14158675311"),
                                        *DOCS_PARAMS[2:]], "GvWf1cFY/Q7PnoempGyD5oXAezc="))


SIGNED_PAYLOADS = [
    pytest.param(INBOUND_URL, "inbound_sms.txt", id="inbound-sms"),
    pytest.param(INBOUND_URL, "inbound_mms_2_media.txt", id="inbound-mms-unicode"),
    pytest.param(STATUS_URL, "status_undelivered_30003.txt", id="status-with-query"),
]


@pytest.mark.parametrize(("url", "name"), SIGNED_PAYLOADS)
def test_signed_by_twilio_sdk_accepted_by_us(url: str, name: str) -> None:
    pairs = fixture_pairs(name)
    make_provider().verify(post(url, pairs, sdk_sign(url, pairs)))


@pytest.mark.parametrize(("url", "name"), SIGNED_PAYLOADS)
def test_signed_by_us_accepted_by_twilio_sdk(url: str, name: str) -> None:
    pairs = fixture_pairs(name)
    assert RequestValidator(TOKEN).validate(url, dict(pairs), compute_signature(TOKEN, url, pairs))


class _MultiDict(dict):
    """What the SDK expects for repeated names (the Flask/werkzeug MultiDict interface)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__()
        self._pairs = pairs
        for key, value in pairs:
            self.setdefault(key, value)

    def getall(self, name: str) -> list[str]:
        return [v for k, v in self._pairs if k == name]


def test_repeated_param_names_sign_like_the_sdk() -> None:
    pairs = [("To", "+15145550100"), ("MediaUrl", "https://b.example/2.jpg"),
             ("Body", "x"), ("MediaUrl", "https://a.example/1.jpg")]
    theirs = RequestValidator(TOKEN).compute_signature(INBOUND_URL, _MultiDict(pairs))
    assert compute_signature(TOKEN, INBOUND_URL, pairs) == theirs
    make_provider().verify(post(INBOUND_URL, pairs, theirs))


def _tampered_cases() -> Iterator[object]:
    pairs = fixture_pairs("inbound_sms.txt")
    signature = sdk_sign(INBOUND_URL, pairs)
    yield pytest.param(make_provider(), post(INBOUND_URL, mutated("inbound_sms.txt",
                                                                  Body="ARM SW"), signature),
                       id="param-value")
    yield pytest.param(make_provider(), post(INBOUND_URL, mutated("inbound_sms.txt",
                                                                  FromCity="BOSTON2"), signature),
                       id="other-param")
    yield pytest.param(make_provider(), post(INBOUND_URL + "?x=1", pairs, signature),
                       id="query-added")
    yield pytest.param(make_provider(), post(INBOUND_URL.replace("Zq3k", "Zq3K"), pairs,
                                             signature), id="url-one-char")
    yield pytest.param(make_provider(), post(INBOUND_URL.replace("https:", "http:"), pairs,
                                             signature), id="scheme")
    yield pytest.param(make_provider(token=TOKEN[:-1] + "0"), post(INBOUND_URL, pairs, signature),
                       id="token-one-char")
    yield pytest.param(make_provider(), post(INBOUND_URL, [*pairs, ("Extra", "1")], signature),
                       id="param-added")


@pytest.mark.parametrize(("provider", "request_"), list(_tampered_cases()))
def test_tampered_request_rejected(provider: TwilioProvider, request_: WebhookRequest) -> None:
    with pytest.raises(WebhookRejected) as caught:
        provider.verify(request_)
    # Neither the token nor the signature we expected may leak to logs or the carrier.
    expected = compute_signature(TOKEN, request_.url, request_.form())
    assert TOKEN not in str(caught.value) and expected not in str(caught.value)


PORT_CASES = [
    pytest.param("https://sms.example.com/in", "https://sms.example.com:443/in", True,
                 id="https-port-added"),
    pytest.param("https://sms.example.com:443/in", "https://sms.example.com/in", True,
                 id="https-port-removed"),
    pytest.param("http://sms.example.com/in?a=1", "http://sms.example.com:80/in?a=1", True,
                 id="http-port-added"),
    pytest.param("http://sms.example.com:80/in", "http://sms.example.com/in", True,
                 id="http-port-removed"),
    pytest.param("https://sms.example.com:8443/in", "https://sms.example.com:8443/in", True,
                 id="custom-port-kept"),
    pytest.param("https://sms.example.com/in", "https://sms.example.com:8443/in", False,
                 id="custom-port-is-not-default"),
    pytest.param("https://sms.example.com/in", "https://sms.example.com:80/in", False,
                 id="wrong-default-port"),
]


@pytest.mark.parametrize(("signed_url", "request_url", "accepted"), PORT_CASES)
def test_default_port_variants(signed_url: str, request_url: str, accepted: bool) -> None:
    pairs = fixture_pairs("inbound_sms.txt")
    request = post(request_url, pairs, sdk_sign(signed_url, pairs))
    if accepted:
        make_provider().verify(request)
        # Twilio's own validator agrees on every URL we accept.
        assert RequestValidator(TOKEN).validate(request_url, dict(pairs), sdk_sign(signed_url,
                                                                                   pairs))
    else:
        with pytest.raises(WebhookRejected):
            make_provider().verify(request)


def test_get_webhook_is_signed_over_the_url_only() -> None:
    pairs = fixture_pairs("inbound_get.txt")
    url = f"{INBOUND_URL}?{urlencode(pairs)}"
    good = RequestValidator(TOKEN).compute_signature(url, {})
    make_provider().verify(get(INBOUND_URL, pairs, good))
    with pytest.raises(WebhookRejected):  # signed POST-style, with params appended: not Twilio's
        make_provider().verify(get(INBOUND_URL, pairs, compute_signature(TOKEN, url, pairs)))


# The body of Twilio's JSON signature example (api-snippets signature_validation_json).
DOCS_JSON_BODY = b'{"CallSid":"CA1234567890ABCDE","Caller":"+12349013030"}'


def test_body_sha256_matches_twilio_example() -> None:
    expected = "5ccde7145dfb8f56479710896586cb9d5911809d83afbe34627818790db0aec9"
    assert body_sha256(DOCS_JSON_BODY) == expected


def _json_request(body: bytes, signed_body: bytes | None = None) -> WebhookRequest:
    url = f"{INBOUND_URL}?bodySHA256={body_sha256(signed_body or body)}"
    signature = RequestValidator(TOKEN).compute_signature(url, {})
    assert RequestValidator(TOKEN).validate(url, (signed_body or body).decode(), signature)
    return WebhookRequest("POST", url, {"content-type": "application/json",
                                        "x-twilio-signature": signature},
                          parse_qsl(url.partition("?")[2]), body)


def test_json_body_with_body_sha256_verifies() -> None:
    make_provider().verify(_json_request(DOCS_JSON_BODY))


def test_json_body_changed_after_signing_rejected() -> None:
    with pytest.raises(WebhookRejected, match="bodySHA256"):
        make_provider().verify(_json_request(DOCS_JSON_BODY.replace(b"CA12", b"CA13"),
                                             signed_body=DOCS_JSON_BODY))


def test_json_body_without_body_sha256_rejected() -> None:
    signature = RequestValidator(TOKEN).compute_signature(INBOUND_URL, {})
    request = WebhookRequest("POST", INBOUND_URL, {"content-type": "application/json",
                                                   "x-twilio-signature": signature},
                             [], DOCS_JSON_BODY)
    with pytest.raises(WebhookRejected, match="bodySHA256"):
        make_provider().verify(request)


def test_missing_signature_rejected() -> None:
    with pytest.raises(WebhookRejected, match="X-Twilio-Signature"):
        make_provider().verify(post(INBOUND_URL, fixture_pairs("inbound_sms.txt")))


def test_shared_key_signature_explains_itself() -> None:
    pairs = fixture_pairs("inbound_sms.txt")
    request = post(INBOUND_URL, pairs, sdk_sign(INBOUND_URL, pairs, token="sharedkeysecret"),
                   **{"x-twilio-webhooks-signature-settings": "key=ws_1,algorithm=HMAC_SHA256"})
    with pytest.raises(WebhookRejected, match="shared key"):
        make_provider().verify(request)


# --- config -------------------------------------------------------------------------------

def test_registry_resolves_twilio() -> None:
    assert get_provider_class("twilio") is TwilioProvider


@pytest.mark.parametrize("options", [
    pytest.param({"account_sid": "SK3f9c2e8b5d1a4f6e9b0c7d2a1e5f8b3c"}, id="api-key-not-account"),
    pytest.param({"account_sid": "AC123"}, id="short-sid"),
    pytest.param({"messaging_service_sid": "PN3f9c2e8b5d1a4f6e9b0c7d2a1e5f8b3c"}, id="bad-mg"),
    pytest.param({"timeout_seconds": 0}, id="zero-timeout"),
    pytest.param({"api_key": "x"}, id="unknown-key"),
])
def test_config_rejects(options: dict) -> None:
    with pytest.raises(ValueError):
        TwilioConfig(**{"account_sid": ACCOUNT_SID, "auth_token": TOKEN, **options})


def test_config_never_shows_the_token() -> None:
    config = TwilioConfig(account_sid=ACCOUNT_SID, auth_token=TOKEN)
    assert TOKEN not in repr(config) and TOKEN not in str(config.model_dump())


def test_setup_hint_names_the_inbound_url() -> None:
    hint = make_provider().setup_hint(INBOUND_URL, STATUS_URL)
    assert hint is not None and INBOUND_URL in hint and "POST" in hint


# --- send: recorded API answers replayed over real HTTP -------------------------------------

def path_authorization_form(request: Request, raw: bytes) -> tuple[str, str, list[tuple[str, str]]]:
    """Keep the path, the Authorization header and the form fields."""
    return (request.url.path, request.headers.get("authorization", ""),
            parse_qsl(raw.decode(), keep_blank_values=True))


@pytest.fixture(scope="module")
def new_replay() -> Replay:
    """Twilio's Messages API: 201 and JSON."""
    return Replay(201, "application/json", path_authorization_form)


@pytest.fixture
def replay_provider(replay_server: tuple[Replay, RunningServer]) -> TwilioProvider:
    return make_provider(base_url=replay_server[1].url)


def load(replay: Replay, name: str, status: int | None = None, **headers: str) -> None:
    replay.body = (FIXTURES / name).read_bytes()
    replay.status = status or (json.loads(replay.body).get("status", 201) if name.endswith(
        ".json") else 500)
    replay.headers = headers


SMS = OutboundMessage("01HZX", "+15005550006", "+15145550100", "Alarm: motion in the garage")

SEND_OK = [
    pytest.param("send_201_sms.json", "SM5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a", 2, id="sms"),
    pytest.param("send_201_mms.json", "MM0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f", 1, id="mms"),
    pytest.param("send_201_messaging_service.json", "SM6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b", None,
                 id="messaging-service-0-segments"),
]


@pytest.mark.parametrize(("name", "sid", "segments"), SEND_OK)
async def test_send_reads_message_resource(replay: Replay, replay_provider: TwilioProvider,
                                           http: aiohttp.ClientSession, name: str, sid: str,
                                           segments: int | None) -> None:
    load(replay, name, 201)
    result = await replay_provider.send(SMS, http)
    assert (result.carrier_message_id, result.status, result.segments) == (
        sid, MessageStatus.SENT, segments)
    path, _, form = replay.seen[-1]
    assert path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert dict(form)["To"] == "+15145550100"


SEND_ERRORS = [
    pytest.param("error_20003.json", {}, False, "20003", None, id="20003-auth"),
    pytest.param("error_20429.json", {"Retry-After": "3"}, True, "20429", 3.0, id="20429-rate"),
    pytest.param("error_21211.json", {}, False, "21211", None, id="21211-bad-to"),
    pytest.param("error_21408.json", {}, False, "21408", None, id="21408-geo"),
    pytest.param("error_21606.json", {}, False, "21606", None, id="21606-bad-from"),
    pytest.param("error_21608.json", {}, False, "21608", None, id="21608-trial"),
    pytest.param("error_21610.json", {}, False, "21610", None, id="21610-opted-out"),
    pytest.param("error_21612.json", {}, False, "21612", None, id="21612-unroutable"),
    pytest.param("error_21614.json", {}, False, "21614", None, id="21614-not-mobile"),
    pytest.param("error_21617.json", {}, False, "21617", None, id="21617-too-long"),
    pytest.param("error_21620.json", {}, False, "21620", None, id="unknown-4xx"),
    pytest.param("error_20500.json", {}, True, "20500", None, id="5xx"),
    pytest.param("error_502_gateway.html", {}, True, "http_502", None, id="non-json-502"),
]


@pytest.mark.parametrize(("name", "headers", "retryable", "code", "retry_after"), SEND_ERRORS)
async def test_send_error_mapping(replay: Replay, replay_provider: TwilioProvider,
                                  http: aiohttp.ClientSession, name: str, headers: dict,
                                  retryable: bool, code: str, retry_after: float | None) -> None:
    load(replay, name, 502 if name.endswith(".html") else None, **headers)
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(SMS, http)
    error = caught.value
    assert (error.retryable, error.code, error.retry_after) == (retryable, code, retry_after)
    if name.endswith(".json"):
        assert error.reason == json.loads(replay.body)["message"]
    assert TOKEN not in str(error) and TOKEN not in repr(error)


async def test_opted_out_recipient_is_never_retried_even_on_5xx(
        replay: Replay, replay_provider: TwilioProvider, http: aiohttp.ClientSession) -> None:
    load(replay, "error_21610.json", 503)
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(SMS, http)
    assert caught.value.retryable is False


async def test_429_without_twilio_code_is_retryable(
        replay: Replay, replay_provider: TwilioProvider, http: aiohttp.ClientSession) -> None:
    replay.status, replay.body, replay.headers = 429, b'{"status": 429}', {"Retry-After": "12"}
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(SMS, http)
    assert (caught.value.retryable, caught.value.retry_after) == (True, 12.0)


async def test_token_echoed_by_an_error_is_masked(
        replay: Replay, replay_provider: TwilioProvider, http: aiohttp.ClientSession) -> None:
    replay.status = 401
    replay.body = json.dumps({"code": 20003, "message": f"bad credentials {ACCOUNT_SID}:{TOKEN}",
                              "status": 401}).encode()
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(SMS, http)
    assert TOKEN not in caught.value.reason and "***" in caught.value.reason


async def test_201_with_error_code_is_a_failure(
        replay: Replay, replay_provider: TwilioProvider, http: aiohttp.ClientSession) -> None:
    resource = json.loads((FIXTURES / "send_201_sms.json").read_text())
    resource.update(error_code=21610, error_message="Attempt to send to unsubscribed recipient")
    replay.body = json.dumps(resource).encode()
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(SMS, http)
    assert (caught.value.code, caught.value.retryable) == ("21610", False)


async def test_201_without_sid_is_not_retried(
        replay: Replay, replay_provider: TwilioProvider, http: aiohttp.ClientSession) -> None:
    replay.body = b"{}"
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(SMS, http)
    assert caught.value.retryable is False


def test_retry_after_as_http_date() -> None:
    from datetime import UTC, datetime

    now = datetime(2024, 5, 20, 11, 29, 45, tzinfo=UTC)
    assert parse_retry_after("Mon, 20 May 2024 11:30:15 GMT", now) == 30.0
    assert parse_retry_after("soon", now) is None

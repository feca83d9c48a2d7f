"""Plivo: recorded-shape payloads in, messages/statuses/errors out; V3 signatures vs Plivo's SDK."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import aiohttp
import pytest

from smsbridge.core.errors import MalformedWebhook, ProviderError, WebhookRejected
from smsbridge.core.messages import Media, MessageStatus, OutboundMessage
from smsbridge.providers.base import WebhookRequest
from smsbridge.providers.plivo.provider import EMPTY_XML, PlivoConfig, PlivoProvider
from smsbridge.providers.plivo.signature import compute_signature, signing_string
from smsbridge.providers.registry import get_provider_class
from smsbridge.testing.fake_plivo import plivo_v3_signature
from smsbridge.testing.server import RunningServer
from tests.providers.forms import changed, form_fixture
from tests.providers.replay import Replay, path_headers_body

FIXTURES = Path(__file__).parent / "fixtures"
AUTH_ID = "MA0123456789ABCDEFGH"
TOKEN = "9b1f2c3d4e5f60718293a4b5c6d7e8f9"
NONCE = "05429567804466091622"
INBOUND_URL = "https://sms.example.com/v1/carriers/plivo/Zq3kP9wX/inbound"
STATUS_URL = "https://sms.example.com/v1/carriers/plivo/Zq3kP9wX/status?msg=01HZX"
FORM = "application/x-www-form-urlencoded"


def make_provider(token: str = TOKEN, **options: object) -> PlivoProvider:
    return PlivoProvider(PlivoConfig(auth_id=AUTH_ID, auth_token=token, **options))


def fixture_pairs(name: str) -> list[tuple[str, str]]:
    return form_fixture(FIXTURES / name)


def mutated(name: str, drop: tuple[str, ...] = (), **changes: str) -> list[tuple[str, str]]:
    """A fixture's fields with some removed and some set (added when absent)."""
    return changed(fixture_pairs(name), drop, **changes)


def post(url: str, pairs: list[tuple[str, str]], signature: str | None = None,
         nonce: str = NONCE, **headers: str) -> WebhookRequest:
    all_headers = {"content-type": FORM, **headers}
    if signature is not None:
        all_headers["x-plivo-signature-v3"] = signature
        all_headers["x-plivo-signature-v3-nonce"] = nonce
    query = parse_qsl(url.partition("?")[2], keep_blank_values=True)
    return WebhookRequest("POST", url, all_headers, query, urlencode(pairs).encode())


def get(url: str, pairs: list[tuple[str, str]], signature: str | None = None) -> WebhookRequest:
    full = f"{url}?{urlencode(pairs)}"
    headers = {} if signature is None else {"x-plivo-signature-v3": signature,
                                            "x-plivo-signature-v3-nonce": NONCE}
    return WebhookRequest("GET", full, headers, pairs)


def signed_post(url: str, pairs: list[tuple[str, str]], token: str = TOKEN) -> WebhookRequest:
    """A POST signed at test time with the test token, by the fake carrier's signer."""
    return post(url, pairs, plivo_v3_signature(token, "POST", url, pairs, NONCE))


# --- inbound messages ---------------------------------------------------------------------

MMS_MEDIA = "https://media.plivo.com/Account/MA0123456789ABCDEFGH/Message/7e1c2d3a/Media/"

INBOUND_CASES = [
    pytest.param("POST", fixture_pairs("inbound_sms.form"), {
        "carrier_message_id": "2b7a9c1e-4f3d-11ef-8a6b-0242ac110002",
        "from_number": "+14385550123", "to_number": "+15145550100", "text": "ARM SV",
        "media": ()}, id="sms"),
    pytest.param("POST", fixture_pairs("inbound_mms_2_media.form"), {
        "carrier_message_id": "7e1c2d3a-4f3d-11ef-9c1b-0242ac110003",
        "from_number": "+15145550111", "to_number": "+15145550100",
        "text": "Front door \U0001f4f7 & back yard",
        "media": (Media("application/octet-stream", MMS_MEDIA + "a1.jpg"),
                  Media("application/octet-stream", MMS_MEDIA + "b2.png"))}, id="mms-two-media"),
    pytest.param("GET", fixture_pairs("inbound_get.query"), {
        "carrier_message_id": "0f9e8d7c-4f3d-11ef-b2a1-0242ac110004",
        "from_number": "+14155550142", "to_number": "+14155550100", "text": "DISARM JF"},
        id="get-query"),
    pytest.param("POST", mutated("inbound_sms.form", From="+14385550123"), {
        "from_number": "+14385550123"}, id="number-with-plus"),
    pytest.param("POST", mutated("inbound_sms.form", From="72345"), {
        "from_number": "72345"}, id="short-code-sender-kept"),
    pytest.param("POST", mutated("inbound_sms.form", From="447700900123"), {
        "from_number": "+447700900123"}, id="uk-sender"),
    pytest.param("POST", mutated("inbound_sms.form", drop=("Type",)), {
        "text": "ARM SV"}, id="type-defaults-to-sms"),
    pytest.param("POST", mutated("inbound_mms_2_media.form", drop=("Body",), Text="in Text"), {
        "text": "in Text"}, id="mms-text-in-Text"),
    pytest.param("POST", mutated("inbound_mms_2_media.form", MediaCount="0",
                                 drop=("Media1", "Media2")), {"media": ()}, id="mms-no-media"),
]


@pytest.mark.parametrize(("method", "pairs", "expected"), INBOUND_CASES)
def test_parse_inbound(method: str, pairs: list[tuple[str, str]], expected: dict) -> None:
    request = (get if method == "GET" else post)(INBOUND_URL, pairs)
    [message] = make_provider().parse_inbound(request)
    for attribute, value in expected.items():
        assert getattr(message, attribute) == value, attribute


MALFORMED_INBOUND = [
    pytest.param(mutated("inbound_sms.form", drop=("MessageUUID",)), "MessageUUID", id="no-uuid"),
    pytest.param(mutated("inbound_sms.form", drop=("From",)), "From", id="no-from"),
    pytest.param(mutated("inbound_sms.form", drop=("To",)), "To", id="no-to"),
    pytest.param(mutated("inbound_sms.form", From="not a number"), "From", id="bad-from"),
    pytest.param(mutated("inbound_sms.form", Type="whatsapp"), "Type", id="whatsapp"),
    pytest.param(mutated("inbound_mms_2_media.form", MediaCount="-1"), "MediaCount",
                 id="negative-mediacount"),
    pytest.param(mutated("inbound_mms_2_media.form", MediaCount="two"), "MediaCount",
                 id="word-mediacount"),
    pytest.param(mutated("inbound_mms_2_media.form", MediaCount="99999"), "MediaCount",
                 id="huge-mediacount"),
    pytest.param(mutated("inbound_mms_2_media.form", drop=("Media2",)), "Media2",
                 id="missing-second-media"),
    pytest.param(mutated("inbound_mms_2_media.form", MediaCount="3"), "Media3",
                 id="mediacount-lies"),
]


@pytest.mark.parametrize(("pairs", "field"), MALFORMED_INBOUND)
def test_malformed_inbound_names_the_field(pairs: list[tuple[str, str]], field: str) -> None:
    with pytest.raises(MalformedWebhook, match=field):
        make_provider().parse_inbound(post(INBOUND_URL, pairs))


def test_inbound_reply_is_empty_plivo_xml() -> None:
    reply = make_provider().inbound_reply([])
    assert (reply.status, reply.content_type) == (200, "application/xml")
    assert reply.body == b'<?xml version="1.0" encoding="UTF-8"?><Response/>' == EMPTY_XML


# --- status callbacks ---------------------------------------------------------------------

OUT_UUID = "5b40a428-bfc7-4daf-9d06-726c558bf3b8"

STATUS_CASES = [
    pytest.param(fixture_pairs("status_queued.form"), MessageStatus.SENDING, None, None,
                 id="queued"),
    pytest.param(fixture_pairs("status_sent.form"), MessageStatus.SENT, None, None, id="sent"),
    pytest.param(fixture_pairs("status_delivered.form"), MessageStatus.DELIVERED, None, None,
                 id="delivered-000"),
    pytest.param(fixture_pairs("status_undelivered_200.form"), MessageStatus.FAILED, "200",
                 "recipient has opted out (replied STOP)", id="undelivered-200-opted-out"),
    pytest.param(fixture_pairs("status_failed_900.form"), MessageStatus.FAILED, "900",
                 "insufficient credit on the Plivo account", id="failed-900"),
    pytest.param(mutated("status_sent.form", Status="rejected"), MessageStatus.FAILED, None,
                 None, id="rejected"),
    pytest.param(mutated("status_sent.form", Status="read"), MessageStatus.DELIVERED, None,
                 None, id="read"),
    pytest.param(mutated("status_failed_900.form", ErrorCode="4242"), MessageStatus.FAILED,
                 "4242", "Plivo error 4242", id="unknown-code"),
]


@pytest.mark.parametrize(("pairs", "status", "code", "reason"), STATUS_CASES)
def test_parse_status(pairs: list[tuple[str, str]], status: MessageStatus, code: str | None,
                      reason: str | None) -> None:
    [update] = make_provider().parse_status(post(STATUS_URL, pairs))
    assert update.carrier_message_id == OUT_UUID
    assert (update.status, update.error_code, update.error_reason) == (status, code, reason)


@pytest.mark.parametrize(("pairs", "field"), [
    pytest.param(mutated("status_sent.form", Status="exploded"), "exploded", id="unknown"),
    pytest.param(mutated("status_sent.form", Status="received"), "received", id="inbound"),
    pytest.param(mutated("status_sent.form", drop=("MessageUUID",)), "MessageUUID", id="no-uuid"),
    pytest.param(mutated("status_sent.form", drop=("Status",)), "Status", id="no-status"),
])
def test_malformed_status(pairs: list[tuple[str, str]], field: str) -> None:
    with pytest.raises(MalformedWebhook, match=field):
        make_provider().parse_status(post(STATUS_URL, pairs))


def test_status_reply_is_empty_200() -> None:
    reply = make_provider().status_reply([])
    assert (reply.status, reply.body) == (200, b"")


# --- signatures ---------------------------------------------------------------------------

# Computed once with plivo-python 4.63's own signature_v3 (construct_post_url +
# get_signature_v3) over these fixtures, token TOKEN: they hold without the SDK installed.
KNOWN_ANSWERS = [
    pytest.param(INBOUND_URL, "inbound_sms.form", NONCE,
                 "fCTLGlTGOee5bfUk6LLDU/ym2Q1b3cXgS39M0fwnpx4=", id="inbound-sms"),
    pytest.param(STATUS_URL, "status_undelivered_200.form", "31415926535897932384",
                 "2QTBPTBTdfGEvFii0b7ZZU90IVXile05cLYsE91wBcs=", id="status-with-query"),
]


@pytest.mark.parametrize(("url", "name", "nonce", "signature"), KNOWN_ANSWERS)
def test_signature_known_answers_from_plivos_sdk(url: str, name: str, nonce: str,
                                                 signature: str) -> None:
    pairs = fixture_pairs(name)
    assert compute_signature(TOKEN, "POST", url, pairs, nonce) == signature
    make_provider().verify(post(url, pairs, signature, nonce=nonce))


def test_signing_string_shapes() -> None:
    """The separators the SDKs use: '?' before params, '.' between query and body, '.nonce'."""
    base = "https://gw.example/in"
    assert signing_string("POST", base, [("B", "2"), ("A", "1")], "N") == f"{base}?A1B2.N"
    assert signing_string("POST", base + "?z=1&y=2", [("A", "1")], "N") == (
        f"{base}?y=2&z=1.A1.N")
    assert signing_string("POST", base + "?z=1", [], "N") == f"{base}?z=1.N"
    assert signing_string("POST", base, [], "N") == f"{base}.N"
    assert signing_string("GET", base + "?b=%2B1&a=x", [], "N") == f"{base}?a=x&b=+1.N"


SDK_CASES = [
    pytest.param("POST", INBOUND_URL, "inbound_sms.form", id="inbound-sms"),
    pytest.param("POST", INBOUND_URL, "inbound_mms_2_media.form", id="inbound-mms-unicode"),
    pytest.param("POST", STATUS_URL, "status_delivered.form", id="status-with-query"),
    pytest.param("POST", "https://sms.example.com:8443/in", "status_failed_900.form",
                 id="custom-port"),
]


@pytest.mark.parametrize(("method", "url", "name"), SDK_CASES)
def test_signed_by_plivo_sdk_accepted_by_us_and_back(method: str, url: str, name: str) -> None:
    sdk = pytest.importorskip("plivo.utils.signature_v3")
    pairs = fixture_pairs(name)
    ours = compute_signature(TOKEN, method, url, pairs, NONCE)
    assert sdk.validate_v3_signature(method, url, NONCE, TOKEN, ours, dict(pairs)) is True
    make_provider().verify(post(url, pairs, ours))


def test_get_webhook_is_signed_over_the_sorted_query() -> None:
    sdk = pytest.importorskip("plivo.utils.signature_v3")
    pairs = fixture_pairs("inbound_get.query")
    url = f"{INBOUND_URL}?{urlencode(pairs)}"
    signature = compute_signature(TOKEN, "GET", url, [], NONCE)
    assert sdk.validate_v3_signature("GET", url, NONCE, TOKEN, signature) is True
    make_provider().verify(get(INBOUND_URL, pairs, signature))


def test_one_of_several_comma_separated_signatures_is_enough() -> None:
    pairs = fixture_pairs("inbound_sms.form")
    good = plivo_v3_signature(TOKEN, "POST", INBOUND_URL, pairs, NONCE)
    other = plivo_v3_signature("another-token", "POST", INBOUND_URL, pairs, NONCE)
    make_provider().verify(post(INBOUND_URL, pairs, f"{other}, {good}"))


def test_main_account_header_is_accepted() -> None:
    pairs = fixture_pairs("inbound_sms.form")
    signature = plivo_v3_signature(TOKEN, "POST", INBOUND_URL, pairs, NONCE)
    make_provider().verify(post(INBOUND_URL, pairs, **{
        "x-plivo-signature-ma-v3": signature, "x-plivo-signature-v3-nonce": NONCE}))


def _tampered_cases() -> Iterator[object]:
    pairs = fixture_pairs("inbound_sms.form")
    signature = plivo_v3_signature(TOKEN, "POST", INBOUND_URL, pairs, NONCE)
    yield pytest.param(make_provider(), post(INBOUND_URL, mutated("inbound_sms.form",
                                                                  Text="ARM SW"), signature),
                       id="text")
    yield pytest.param(make_provider(), post(INBOUND_URL, mutated("inbound_sms.form",
                                                                  Units="2"), signature),
                       id="other-param")
    yield pytest.param(make_provider(), post(INBOUND_URL, [*pairs, ("Extra", "1")], signature),
                       id="param-added")
    yield pytest.param(make_provider(), post(INBOUND_URL + "?x=1", pairs, signature),
                       id="query-added")
    yield pytest.param(make_provider(), post(INBOUND_URL.replace("Zq3k", "Zq3K"), pairs,
                                             signature), id="url-one-char")
    yield pytest.param(make_provider(), post(INBOUND_URL.replace("https:", "http:"), pairs,
                                             signature), id="scheme")
    yield pytest.param(make_provider(), post(INBOUND_URL, pairs, signature,
                                             nonce="05429567804466091623"), id="nonce")
    yield pytest.param(make_provider(token=TOKEN[:-1] + "0"), post(INBOUND_URL, pairs,
                                                                   signature), id="token")


@pytest.mark.parametrize(("provider", "request_"), list(_tampered_cases()))
def test_tampered_request_rejected(provider: PlivoProvider, request_: WebhookRequest) -> None:
    with pytest.raises(WebhookRejected) as caught:
        provider.verify(request_)
    # Neither the token nor the signature we expected may leak to logs or the carrier.
    expected = compute_signature(TOKEN, "POST", request_.url, request_.form(), NONCE)
    assert TOKEN not in str(caught.value) and expected not in str(caught.value)


@pytest.mark.parametrize("headers", [
    pytest.param({}, id="no-headers"),
    pytest.param({"x-plivo-signature-v3": "abc="}, id="no-nonce"),
    pytest.param({"x-plivo-signature-v3-nonce": NONCE}, id="no-signature"),
])
def test_missing_signature_headers_rejected(headers: dict[str, str]) -> None:
    with pytest.raises(WebhookRejected, match="X-Plivo-Signature-V3"):
        make_provider().verify(post(INBOUND_URL, fixture_pairs("inbound_sms.form"), **headers))


def test_v2_only_request_is_rejected_and_says_why() -> None:
    request = post(INBOUND_URL, fixture_pairs("inbound_sms.form"), **{
        "x-plivo-signature-v2": "abc=", "x-plivo-signature-v2-nonce": NONCE})
    with pytest.raises(WebhookRejected, match="only the older X-Plivo-Signature-V2"):
        make_provider().verify(request)


def test_json_body_is_rejected() -> None:
    request = WebhookRequest("POST", INBOUND_URL, {
        "content-type": "application/json", "x-plivo-signature-v3": "abc=",
        "x-plivo-signature-v3-nonce": NONCE}, [], b'{"From": "1"}')
    with pytest.raises(WebhookRejected, match="form"):
        make_provider().verify(request)


# --- config -------------------------------------------------------------------------------

def test_registry_resolves_plivo() -> None:
    assert get_provider_class("plivo") is PlivoProvider


@pytest.mark.parametrize("options", [
    pytest.param({"auth_id": "MA123"}, id="short-auth-id"),
    pytest.param({"auth_id": "XX0123456789ABCDEFGH"}, id="not-ma-or-sa"),
    pytest.param({"timeout_seconds": 0}, id="zero-timeout"),
    pytest.param({"api_key": "x"}, id="unknown-key"),
])
def test_config_rejects(options: dict) -> None:
    with pytest.raises(ValueError):
        PlivoConfig(**{"auth_id": AUTH_ID, "auth_token": TOKEN, **options})


def test_subaccount_auth_id_is_accepted() -> None:
    assert PlivoConfig(auth_id="SA0123456789ABCDEFGH", auth_token=TOKEN).auth_id.startswith("SA")


def test_config_never_shows_the_token() -> None:
    config = PlivoConfig(auth_id=AUTH_ID, auth_token=TOKEN)
    assert TOKEN not in repr(config) and TOKEN not in str(config.model_dump())


def test_setup_hint_names_the_inbound_url() -> None:
    hint = make_provider().setup_hint(INBOUND_URL, STATUS_URL)
    assert hint is not None and INBOUND_URL in hint and "Message URL" in hint


# --- send: recorded API answers replayed over real HTTP -------------------------------------

@pytest.fixture(scope="module")
def new_replay() -> Replay:
    """Plivo's Message API: 202 and JSON; keeps each request's path, headers and raw body."""
    return Replay(202, "application/json", path_headers_body)


@pytest.fixture
def replay_provider(replay_server: tuple[Replay, RunningServer]) -> PlivoProvider:
    return make_provider(base_url=replay_server[1].url)


def load(replay: Replay, name: str, status: int, **headers: str) -> None:
    replay.load(FIXTURES / name, status, **headers)


SMS = OutboundMessage("01HZX", "+15145550100", "+14385550123", "Alarm: motion in the garage",
                      status_callback_url=STATUS_URL)
MMS = OutboundMessage("01HZY", "+15145550100", "+14385550123", "Snapshots", (
    Media("image/jpeg", "https://cdn.example.com/cam1.jpg"),
    Media("image/png", "https://cdn.example.com/cam2.png")))

SEND_CASES = [
    pytest.param(SMS, {"src": "+15145550100", "dst": "+14385550123",
                       "text": "Alarm: motion in the garage", "type": "sms", "url": STATUS_URL,
                       "method": "POST"}, id="sms-with-status-url"),
    pytest.param(MMS, {"src": "+15145550100", "dst": "+14385550123", "text": "Snapshots",
                       "type": "mms", "media_urls": ["https://cdn.example.com/cam1.jpg",
                                                     "https://cdn.example.com/cam2.png"]},
                 id="mms"),
    pytest.param(OutboundMessage("01HZZ", "+15145550100", "+14385550123", "",
                                 (Media("image/jpeg", "https://cdn.example.com/a.jpg"),)),
                 {"src": "+15145550100", "dst": "+14385550123", "type": "mms",
                  "media_urls": ["https://cdn.example.com/a.jpg"]}, id="mms-without-text"),
]


@pytest.mark.parametrize(("message", "body"), SEND_CASES)
async def test_send_makes_the_exact_request(replay: Replay, replay_provider: PlivoProvider,
                                            http: aiohttp.ClientSession,
                                            message: OutboundMessage, body: dict) -> None:
    load(replay, "send_202_sms.json", 202)
    result = await replay_provider.send(message, http)
    assert (result.carrier_message_id, result.status) == (
        "5b40a428-bfc7-4daf-9d06-726c558bf3b8", MessageStatus.SENT)
    path, headers, raw = replay.seen[-1]
    assert path == f"/v1/Account/{AUTH_ID}/Message/"
    assert headers["content-type"].startswith("application/json")
    assert headers["authorization"] == "Basic " + base64.b64encode(
        f"{AUTH_ID}:{TOKEN}".encode()).decode()
    assert json.loads(raw) == body


async def test_several_uuids_keep_the_rest_as_extra_ids(
        replay: Replay, replay_provider: PlivoProvider, http: aiohttp.ClientSession) -> None:
    load(replay, "send_202_two_uuids.json", 202)
    result = await replay_provider.send(SMS, http)
    assert result.carrier_message_id == "6c51b539-cfd8-4ebf-ae17-837d669cf4c9"
    assert result.extra_ids == ("7d62c64a-d0e9-4fc0-bf28-948e77adf5da",)


SEND_ERRORS = [
    pytest.param("error_400_invalid_dst.json", 400, {}, False, "http_400", None,
                 "Plivo: invalid 'dst' parameter", id="400-invalid-dst"),
    pytest.param("error_400_no_src.json", 400, {}, False, "http_400", None,
                 "Plivo: src parameter not present", id="400-no-src"),
    pytest.param("error_401_auth.json", 401, {}, False, "http_401", None,
                 "Plivo: Authentication failed", id="401-auth"),
    pytest.param("error_404.json", 404, {}, False, "http_404", None, "Plivo: not found",
                 id="404"),
    pytest.param("error_429.json", 429, {"Retry-After": "3"}, True, "http_429", 3.0,
                 "Plivo: too many requests", id="429-retry-after"),
    pytest.param("error_500.json", 500, {}, True, "http_500", None,
                 "Plivo: internal server error", id="500"),
    pytest.param("error_502_gateway.html", 502, {}, True, "http_502", None,
                 "Plivo answered HTTP 502 without a JSON error", id="non-json-502"),
]


@pytest.mark.parametrize(("name", "status", "headers", "retryable", "code", "retry_after",
                          "reason"), SEND_ERRORS)
async def test_send_error_mapping(replay: Replay, replay_provider: PlivoProvider,
                                  http: aiohttp.ClientSession, name: str, status: int,
                                  headers: dict, retryable: bool, code: str,
                                  retry_after: float | None, reason: str) -> None:
    load(replay, name, status, **headers)
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(SMS, http)
    error = caught.value
    assert (error.retryable, error.code, error.retry_after, error.reason) == (
        retryable, code, retry_after, reason)
    assert TOKEN not in str(error) and TOKEN not in repr(error)


@pytest.mark.parametrize("body", [b"{}", b'{"message_uuid": []}', b"not json",
                                  b'{"message_uuid": [7]}'])
async def test_202_without_uuid_is_not_retried(replay: Replay, replay_provider: PlivoProvider,
                                               http: aiohttp.ClientSession, body: bytes) -> None:
    replay.body = body
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(SMS, http)
    assert (caught.value.retryable, caught.value.code) == (False, "no_uuid")


async def test_token_echoed_by_an_error_is_masked(
        replay: Replay, replay_provider: PlivoProvider, http: aiohttp.ClientSession) -> None:
    replay.status = 401
    replay.body = json.dumps({"error": f"bad credentials {AUTH_ID}:{TOKEN}"}).encode()
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(SMS, http)
    assert TOKEN not in caught.value.reason and "***" in caught.value.reason


def test_inline_media_is_refused() -> None:
    message = OutboundMessage("01HZX", "+15145550100", "+14385550123", "x",
                              (Media("image/png", data_base64="iVBORw0KGgo="),))
    with pytest.raises(ProviderError, match="by URL only") as caught:
        make_provider().send_body(message)
    assert caught.value.retryable is False

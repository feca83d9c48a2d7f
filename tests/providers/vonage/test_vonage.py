"""Vonage: recorded-shape payloads in, messages/statuses/errors out; sig checks vs Vonage's SDK."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import aiohttp
import pytest

from smsbridge.core.errors import MalformedWebhook, ProviderError, WebhookRejected
from smsbridge.core.messages import Media, MessageStatus, OutboundMessage
from smsbridge.providers.base import WebhookRequest
from smsbridge.providers.registry import get_provider_class
from smsbridge.providers.vonage.provider import VonageConfig, VonageProvider
from smsbridge.providers.vonage.signature import compute_signature, signing_string
from smsbridge.testing.fake_vonage import vonage_signature
from smsbridge.testing.server import RunningServer
from tests.providers.forms import changed, form_fixture
from tests.providers.replay import Replay, path_headers_body

FIXTURES = Path(__file__).parent / "fixtures"
API_KEY = "a1b2c3d4"
API_SECRET = "Zx9Yw8Vu7Ts6Rq5P"
SIG_SECRET = "ahq1Lg3Zq0yVb8pM2nRkT5sWd7fXe9hJ"
INBOUND_URL = "https://sms.example.com/v1/carriers/vonage/Zq3kP9wX/inbound"
STATUS_URL = "https://sms.example.com/v1/carriers/vonage/Zq3kP9wX/status"
FORM = "application/x-www-form-urlencoded"
METHODS = ["md5hash", "md5", "sha1", "sha256", "sha512"]


def make_provider(**options: object) -> VonageProvider:
    return VonageProvider(VonageConfig(**{"api_key": API_KEY, "api_secret": API_SECRET,
                                          **options}))


def signed_provider(method: str = "md5hash") -> VonageProvider:
    return make_provider(signature_secret=SIG_SECRET, signature_method=method)


def pairs(name: str) -> list[tuple[str, str]]:
    return form_fixture(FIXTURES / name)


def post(pairs_: list[tuple[str, str]], url: str = INBOUND_URL) -> WebhookRequest:
    return WebhookRequest("POST", url, {"content-type": FORM}, [], urlencode(pairs_).encode())


def get(pairs_: list[tuple[str, str]], url: str = INBOUND_URL) -> WebhookRequest:
    return WebhookRequest("GET", f"{url}?{urlencode(pairs_)}", {}, pairs_)


def post_json(body: object, url: str = INBOUND_URL) -> WebhookRequest:
    return WebhookRequest("POST", url, {"content-type": "application/json"}, [],
                          json.dumps(body).encode())


def signed(pairs_: list[tuple[str, str]], method: str = "md5hash",
           secret: str = SIG_SECRET) -> list[tuple[str, str]]:
    """A fixture re-signed at test time with the test secret, as Vonage signs it."""
    params = dict(pairs_) | {"timestamp": "1716204585", "nonce": "a3f1c9e2-77d1-4b0e"}
    return [*params.items(), ("sig", vonage_signature(secret, method, params))]


# --- inbound messages ---------------------------------------------------------------------

def test_form_post_inbound() -> None:
    [message] = make_provider().parse_inbound(post(pairs("inbound_sms.form")))
    assert (message.carrier_message_id, message.from_number, message.to_number,
            message.text, message.media) == ("030000000926C4C2", "+447700900123",
                                             "+447700900456", "Hello!", ())


def test_get_query_inbound() -> None:
    [message] = make_provider().parse_inbound(get(pairs("inbound_get.query")))
    assert (message.carrier_message_id, message.from_number, message.to_number,
            message.text) == ("0A0000001234ABCD", "+14385550123", "+15145550100", "DISARM JF")


def test_json_unicode_inbound() -> None:
    body = json.loads((FIXTURES / "inbound_unicode.json").read_text())
    [message] = make_provider().parse_inbound(post_json(body))
    assert (message.carrier_message_id, message.text) == (
        "0B00000012AB34CD", "Caf\u00e9 \U0001f4f7 ready")


@pytest.mark.parametrize(("changes", "attribute", "value"), [
    pytest.param({"msisdn": "72345"}, "from_number", "72345", id="short-code-sender"),
    pytest.param({"msisdn": "Vonage"}, "from_number", "Vonage", id="alphanumeric-sender"),
    pytest.param({"msisdn": "+447700900123"}, "from_number", "+447700900123", id="with-plus"),
    pytest.param({"type": "unicode"}, "text", "Hello!", id="unicode-type"),
])
def test_inbound_variants(changes: dict[str, str], attribute: str, value: str) -> None:
    [message] = make_provider().parse_inbound(post(changed(pairs("inbound_sms.form"),
                                                           **changes)))
    assert getattr(message, attribute) == value


def test_binary_inbound_is_kept_without_text() -> None:
    [message] = make_provider().parse_inbound(post(pairs("inbound_binary.form")))
    assert (message.carrier_message_id, message.text) == ("0D0000000000BEEF", "")


@pytest.mark.parametrize(("pairs_", "field"), [
    pytest.param(changed(pairs("inbound_sms.form"), drop=("messageId",)), "messageId",
                 id="no-id"),
    pytest.param(changed(pairs("inbound_sms.form"), drop=("msisdn",)), "msisdn", id="no-from"),
    pytest.param(changed(pairs("inbound_sms.form"), drop=("to",)), "to", id="no-to"),
    pytest.param(changed(pairs("inbound_sms.form"), msisdn="not a number!"), "msisdn",
                 id="bad-from"),
    pytest.param(changed(pairs("inbound_sms.form"), type="whatsapp"), "type", id="bad-type"),
    pytest.param(changed(pairs("inbound_concat_1.form"), drop=("concat-ref",)), "concat-ref",
                 id="concat-no-ref"),
    pytest.param(changed(pairs("inbound_concat_1.form"), **{"concat-part": "0"}),
                 "concat-part", id="concat-part-zero"),
    pytest.param(changed(pairs("inbound_concat_1.form"), **{"concat-part": "3"}),
                 "concat-part", id="concat-part-over-total"),
    pytest.param(changed(pairs("inbound_concat_1.form"), **{"concat-total": "two"}),
                 "concat-total", id="concat-total-word"),
])
def test_malformed_inbound_names_the_field(pairs_: list[tuple[str, str]], field: str) -> None:
    with pytest.raises(MalformedWebhook, match=field):
        make_provider().parse_inbound(post(pairs_))


def test_json_array_is_malformed() -> None:
    with pytest.raises(MalformedWebhook, match="not an object"):
        make_provider().parse_inbound(post_json([1, 2]))


def test_each_part_of_a_long_text_is_stored_as_it_comes() -> None:
    """Nothing is acknowledged that is not stored: no part waits in memory for the others."""
    provider = make_provider()
    [first] = provider.parse_inbound(post(pairs("inbound_concat_1.form")))
    [second] = provider.parse_inbound(post(pairs("inbound_concat_2.form")))
    assert first.carrier_message_id == "0C00000000000001"
    assert second.carrier_message_id != first.carrier_message_id
    assert first.from_number == second.from_number == "+447700900123"
    assert (first.text + second.text) == ("The alarm panel reports motion in the garage and the"
                                          " back door is open. Please check the cameras.")


def test_inbound_reply_is_an_empty_200() -> None:
    reply = make_provider().inbound_reply([])
    assert (reply.status, reply.body) == (200, b"")


# --- delivery receipts --------------------------------------------------------------------

@pytest.mark.parametrize(("name", "status", "code", "reason"), [
    pytest.param("receipt_accepted.form", MessageStatus.SENT, None, None, id="accepted"),
    pytest.param("receipt_delivered.form", MessageStatus.DELIVERED, None, None, id="delivered"),
    pytest.param("receipt_failed.form", MessageStatus.FAILED, "6",
                 "failed: anti-spam rejection by the carrier", id="failed"),
    pytest.param("receipt_expired.form", MessageStatus.FAILED, "2",
                 "expired: absent subscriber (temporary): the handset was unavailable",
                 id="expired"),
])
def test_parse_status(name: str, status: MessageStatus, code: str | None,
                      reason: str | None) -> None:
    [update] = make_provider().parse_status(post(pairs(name), STATUS_URL))
    assert (update.carrier_message_id, update.status, update.error_code, update.error_reason
            ) == ("0E0000001F2A3B4C", status, code, reason)


def test_unknown_receipt_error_code_is_kept() -> None:
    fields = changed(pairs("receipt_failed.form"), **{"err-code": "77"})
    [update] = make_provider().parse_status(post(fields, STATUS_URL))
    assert (update.error_code, update.error_reason) == ("77", "failed: Vonage delivery error 77")


def test_receipt_as_get_query() -> None:
    [update] = make_provider().parse_status(get(pairs("receipt_delivered.form"), STATUS_URL))
    assert update.status is MessageStatus.DELIVERED


@pytest.mark.parametrize(("pairs_", "field"), [
    pytest.param(changed(pairs("receipt_delivered.form"), status="exploded"), "exploded",
                 id="unknown-status"),
    pytest.param(changed(pairs("receipt_delivered.form"), drop=("status",)), "status",
                 id="no-status"),
    pytest.param(changed(pairs("receipt_delivered.form"), drop=("messageId",)), "messageId",
                 id="no-id"),
])
def test_malformed_receipt(pairs_: list[tuple[str, str]], field: str) -> None:
    with pytest.raises(MalformedWebhook, match=field):
        make_provider().parse_status(post(pairs_, STATUS_URL))


# --- signatures ---------------------------------------------------------------------------

def test_md5hash_known_answer_from_vonages_sdk() -> None:
    """The vector of vonage-python's own test_check_signature (secret "secret")."""
    params = {"a": "1", "b": "2", "timestamp": "1461605396"}
    assert compute_signature("secret", "md5hash", params) == "6af838ef94998832dbfc29020b564830"
    provider = make_provider(signature_secret="secret")
    provider.verify(get([*params.items(), ("sig", "6AF838EF94998832DBFC29020B564830")]))


def test_signing_string_replaces_separators_in_values() -> None:
    assert signing_string({"text": "a=b&c", "sig": "x", "B": "1"}) == "&B=1&text=a_b_c"


@pytest.mark.parametrize("method", METHODS[1:])
def test_hmac_methods_are_keyed_hmacs_of_the_signing_string(method: str) -> None:
    params = dict(pairs("inbound_sms.form"))
    expected = hmac.new(SIG_SECRET.encode(), signing_string(params).encode(),
                        getattr(hashlib, method)).hexdigest()
    assert compute_signature(SIG_SECRET, method, params) == expected


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("how", ["form", "get", "json"])
def test_signed_inbound_accepted(method: str, how: str) -> None:
    fields = signed(pairs("inbound_sms.form"), method)
    request = {"form": post, "get": get}[how](fields) if how != "json" else post_json(
        dict(fields))
    provider = signed_provider(method)
    provider.verify(request)
    assert provider.parse_inbound(request)[0].text == "Hello!"


def test_signed_receipt_accepted() -> None:
    signed_provider("sha256").verify(post(signed(pairs("receipt_delivered.form"), "sha256"),
                                          STATUS_URL))


def _tampered() -> list[object]:
    good = signed(pairs("inbound_sms.form"))
    return [
        pytest.param(changed(good, text="Hello?"), id="text"),
        pytest.param(changed(good, timestamp="1716204586"), id="timestamp"),
        pytest.param([*good, ("extra", "1")], id="param-added"),
        pytest.param(changed(good, drop=("sig",)), id="unsigned"),
        pytest.param(changed(good, sig=""), id="empty-sig"),
        pytest.param(signed(pairs("inbound_sms.form"), secret="another-secret"),
                     id="other-secret"),
        pytest.param(signed(pairs("inbound_sms.form"), method="sha256"), id="other-method"),
    ]


@pytest.mark.parametrize("fields", _tampered())
def test_forged_or_unsigned_request_rejected(fields: list[tuple[str, str]]) -> None:
    with pytest.raises(WebhookRejected, match="sig") as caught:
        signed_provider().verify(post(fields))
    assert SIG_SECRET not in str(caught.value)


@pytest.mark.parametrize("options", [{}, {"signature_secret": ""}], ids=["none", "empty"])
def test_without_a_signature_secret_the_url_token_alone_guards(options: dict) -> None:
    """Signed webhooks are off at Vonage: nothing to check, so nothing is refused."""
    make_provider(**options).verify(post(pairs("inbound_sms.form")))


# --- config -------------------------------------------------------------------------------

def test_registry_resolves_vonage() -> None:
    assert get_provider_class("vonage") is VonageProvider


@pytest.mark.parametrize("options", [
    pytest.param({"signature_method": "sha384"}, id="unknown-method"),
    pytest.param({"api_key": ""}, id="empty-key"),
    pytest.param({"auth_token": "x"}, id="unknown-setting"),
])
def test_config_rejects(options: dict) -> None:
    with pytest.raises(ValueError):
        VonageConfig(**{"api_key": API_KEY, "api_secret": API_SECRET, **options})


def test_config_never_shows_secrets() -> None:
    config = VonageConfig(api_key=API_KEY, api_secret=API_SECRET, signature_secret=SIG_SECRET)
    shown = repr(config) + str(config.model_dump())
    assert API_SECRET not in shown and SIG_SECRET not in shown


def test_setup_hint_names_the_inbound_url() -> None:
    hint = make_provider().setup_hint(INBOUND_URL, STATUS_URL)
    assert hint is not None and INBOUND_URL in hint and STATUS_URL in hint


# --- send: recorded API answers replayed over real HTTP -------------------------------------

@pytest.fixture(scope="module")
def new_replay() -> Replay:
    """Vonage's SMS API: 200 and JSON; keeps each request's path, headers and raw body."""
    return Replay(200, "application/json", path_headers_body)


@pytest.fixture
def replay_provider(replay_server: tuple[Replay, RunningServer]) -> VonageProvider:
    return make_provider(base_url=replay_server[1].url)


def load(replay: Replay, name: str, status: int = 200, **headers: str) -> None:
    replay.load(FIXTURES / name, status, **headers)


SMS = OutboundMessage("msg_01HZX", "+15145550100", "+14385550123",
                      "Alarm: motion in the garage", status_callback_url=STATUS_URL)

SEND_CASES = [
    pytest.param(SMS, [
        ("api_key", API_KEY), ("api_secret", API_SECRET), ("from", "15145550100"),
        ("to", "14385550123"), ("text", "Alarm: motion in the garage"), ("type", "text"),
        ("client-ref", "msg_01HZX"), ("callback", STATUS_URL), ("status-report-req", "1"),
    ], id="sms-with-callback"),
    pytest.param(OutboundMessage("msg_01HZY", "Acme", "+447700900123", "Caf\u00e9 \u263a"), [
        ("api_key", API_KEY), ("api_secret", API_SECRET), ("from", "Acme"),
        ("to", "447700900123"), ("text", "Caf\u00e9 \u263a"), ("type", "unicode"),
        ("client-ref", "msg_01HZY"),
    ], id="unicode-alphanumeric-sender-no-callback"),
]


@pytest.mark.parametrize(("message", "form"), SEND_CASES)
async def test_send_makes_the_exact_request(replay: Replay, replay_provider: VonageProvider,
                                            http: aiohttp.ClientSession,
                                            message: OutboundMessage,
                                            form: list[tuple[str, str]]) -> None:
    load(replay, "send_200_one_part.json")
    result = await replay_provider.send(message, http)
    assert (result.carrier_message_id, result.status, result.segments, result.extra_ids) == (
        "0C000000217B7F02", MessageStatus.SENT, 1, ())
    path, headers, raw = replay.seen[-1]
    assert path == "/sms/json"
    assert headers["content-type"].startswith(FORM)
    assert parse_qsl(raw.decode(), keep_blank_values=True) == form


async def test_two_parts_keep_the_second_id(replay: Replay, replay_provider: VonageProvider,
                                            http: aiohttp.ClientSession) -> None:
    load(replay, "send_200_two_parts.json")
    result = await replay_provider.send(SMS, http)
    assert (result.carrier_message_id, result.segments, result.extra_ids) == (
        "0C000000217B7F03", 2, ("0C000000217B7F04",))


SEND_ERRORS = [
    pytest.param("error_200_status_1.json", 200, {}, True, "1", None,
                 "Vonage: Throughput Rate Exceeded - please wait [ 30 ] and retry",
                 id="1-throttled"),
    pytest.param("error_200_status_4.json", 200, {}, False, "4", None,
                 "Vonage: Bad Credentials", id="4-credentials"),
    pytest.param("error_200_status_5.json", 200, {}, True, "5", None,
                 "Vonage: Internal Error", id="5-internal"),
    pytest.param("error_200_status_6.json", 200, {}, False, "6", None,
                 "Vonage: Unroutable message - rejected", id="6-unroutable"),
    pytest.param("error_200_status_7.json", 200, {}, False, "7", None,
                 "Vonage: Number barred.", id="7-barred"),
    pytest.param("error_200_status_9.json", 200, {}, False, "9", None,
                 "Vonage: Partner quota exceeded", id="9-no-credit"),
    pytest.param("error_200_status_15.json", 200, {}, False, "15", None,
                 "Vonage: Illegal Sender Address - rejected", id="15-sender"),
    pytest.param("error_200_status_29.json", 200, {}, False, "29", None,
                 "Vonage: Non White-listed Destination - rejected", id="29-whitelist"),
    pytest.param("error_200_partial.json", 200, {}, False, "9", None,
                 "Vonage accepted 1 of 2 parts, then refused one: Partner quota exceeded",
                 id="partial-never-retried"),
    pytest.param("error_429.html", 429, {"Retry-After": "7"}, True, "http_429", 7.0,
                 "Vonage answered HTTP 429", id="http-429-retry-after"),
    pytest.param("error_502.html", 502, {}, True, "http_502", None,
                 "Vonage answered HTTP 502", id="http-502"),
]


@pytest.mark.parametrize(("name", "status", "headers", "retryable", "code", "retry_after",
                          "reason"), SEND_ERRORS)
async def test_send_error_mapping(replay: Replay, replay_provider: VonageProvider,
                                  http: aiohttp.ClientSession, name: str, status: int,
                                  headers: dict, retryable: bool, code: str,
                                  retry_after: float | None, reason: str) -> None:
    load(replay, name, status, **headers)
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(SMS, http)
    error = caught.value
    assert (error.retryable, error.code, error.retry_after, error.reason) == (
        retryable, code, retry_after, reason)


@pytest.mark.parametrize("body", [b"{}", b'{"messages": []}', b"not json",
                                  b'{"messages": [{"status": "0"}]}'])
async def test_200_without_ids_is_not_retried(replay: Replay, replay_provider: VonageProvider,
                                              http: aiohttp.ClientSession, body: bytes) -> None:
    replay.body = body
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(SMS, http)
    assert caught.value.retryable is False


async def test_secret_echoed_by_an_error_is_masked(
        replay: Replay, replay_provider: VonageProvider, http: aiohttp.ClientSession) -> None:
    replay.body = json.dumps({"message-count": "1", "messages": [
        {"status": "4", "error-text": f"Bad Credentials {API_KEY}/{API_SECRET}"}]}).encode()
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(SMS, http)
    assert API_SECRET not in caught.value.reason and "***" in caught.value.reason


def test_media_is_refused_before_any_call() -> None:
    message = OutboundMessage("m", "+15145550100", "+14385550123", "x",
                              (Media("image/png", "https://cdn.example.com/a.png"),))
    with pytest.raises(ProviderError, match="no media") as caught:
        make_provider().send_form(message)
    assert caught.value.retryable is False
    assert VonageProvider.capabilities.mms is False

"""Plivo voice calls: the exact Call API request, the Speak XML, hangup callbacks in, errors out."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest

from smsbridge.core.errors import MalformedWebhook, ProviderError, WebhookRejected
from smsbridge.core.messages import CALL_FAILURE_ANSWERS, MessageStatus, OutboundCall
from smsbridge.providers.base import WebhookRequest
from smsbridge.providers.plivo.provider import PlivoConfig, PlivoProvider
from smsbridge.testing.fake_plivo import plivo_v3_signature
from smsbridge.testing.server import RunningServer
from tests.providers.forms import changed, form_fixture
from tests.providers.replay import Replay, path_headers_body

FIXTURES = Path(__file__).parent / "fixtures"
AUTH_ID = "MA0123456789ABCDEFGH"
TOKEN = "9b1f2c3d4e5f60718293a4b5c6d7e8f9"
NONCE = "31415926535897932384"
BASE = "https://sms.example.com/v1/carriers/plivo/Zq3kP9wX"
STATUS_URL = f"{BASE}/status"
ANSWER_URL = f"{BASE}/calls/call_01HZX/answer"
REQUEST_UUID = "9834029e-58b6-11e1-b8b7-a5bd0e4e126f"

CALL = OutboundCall("call_01HZX", "+15145550100", "+14385550123", "Alarm: motion in the garage",
                    status_callback_url=STATUS_URL, answer_url=ANSWER_URL)


def make_provider(**options: object) -> PlivoProvider:
    return PlivoProvider(PlivoConfig(auth_id=AUTH_ID, auth_token=TOKEN, **options))


def fields(name: str, drop: tuple[str, ...] = (), **changes: str) -> list[tuple[str, str]]:
    return changed(form_fixture(FIXTURES / name), drop, **changes)


def signed_post(url: str, pairs: list[tuple[str, str]]) -> WebhookRequest:
    """A form POST signed at test time as Plivo signs its voice callbacks (V3)."""
    return WebhookRequest("POST", url, {
        "content-type": "application/x-www-form-urlencoded",
        "x-plivo-signature-v3": plivo_v3_signature(TOKEN, "POST", url, pairs, NONCE),
        "x-plivo-signature-v3-nonce": NONCE}, [], urlencode(pairs).encode())


def test_plivo_declares_voice() -> None:
    assert PlivoProvider.capabilities.voice is True


# --- the answer URL's XML -------------------------------------------------------------------

def test_call_answer_is_the_exact_speak_xml() -> None:
    call = OutboundCall("call_1", "+15145550100", "+14385550123", 'Alarm <Front> & "back"',
                        voice="WOMAN", language="en-GB", repeat=3)
    reply = make_provider().call_answer(call)
    assert (reply.status, reply.content_type) == (200, "application/xml")
    assert reply.body == (
        b'<?xml version="1.0" encoding="UTF-8"?><Response>'
        b'<Speak voice="WOMAN" language="en-GB" loop="3">'
        b'Alarm &lt;Front&gt; &amp; "back"</Speak></Response>')


def test_call_answer_leaves_out_what_was_not_asked_for() -> None:
    reply = make_provider().call_answer(CALL)
    assert reply.body.endswith(b'<Response><Speak loop="1">Alarm: motion in the garage</Speak>'
                               b'</Response>')


def test_attribute_quotes_are_escaped_and_the_text_reads_back_whole() -> None:
    call = OutboundCall("call_1", "+15145550100", "+14385550123", "Zone 3 \u00e9t\u00e9 \u2014 ok",
                        voice='Polly."x"')
    speak = ET.fromstring(make_provider().call_answer(call).body).find("Speak")
    assert speak is not None
    assert (speak.text, speak.get("voice")) == ("Zone 3 \u00e9t\u00e9 \u2014 ok", 'Polly."x"')


def test_plivos_answer_request_is_signed_and_verified() -> None:
    """Plivo signs its answer_url request (V3) like its message webhooks: the same check."""
    pairs = fields("call_answer_request.form")
    make_provider().verify(signed_post(ANSWER_URL, pairs))
    forged = signed_post(ANSWER_URL, pairs)
    with pytest.raises(WebhookRejected):
        make_provider().verify(WebhookRequest(forged.method, forged.url.replace("01HZX", "01HZY"),
                                              forged.headers, [], forged.body))


# --- hangup (and ring) callbacks ------------------------------------------------------------

CALLBACK_CASES = [
    pytest.param(fields("call_hangup_completed.form"), MessageStatus.DELIVERED, None, None,
                 id="completed"),
    pytest.param(fields("call_hangup_busy.form"), MessageStatus.FAILED, "busy",
                 "busy (Busy Line)", id="busy"),
    pytest.param(fields("call_hangup_no_answer.form"), MessageStatus.FAILED, "no-answer",
                 "no-answer (No Answer)", id="no-answer"),
    pytest.param(fields("call_hangup_no_answer.form", drop=("HangupCauseName",),
                        CallStatus="timeout"), MessageStatus.FAILED, "no-answer",
                 "timeout (NO_ANSWER)", id="timeout-is-no-answer"),
    pytest.param(fields("call_hangup_busy.form", CallStatus="failed",
                        HangupCauseName="Invalid Destination"), MessageStatus.FAILED, "failed",
                 "failed (Invalid Destination)", id="failed"),
    pytest.param(fields("call_hangup_busy.form", CallStatus="cancel",
                        drop=("HangupCause", "HangupCauseName")), MessageStatus.FAILED,
                 "canceled", "cancel", id="cancel"),
    pytest.param(fields("call_ring.form"), MessageStatus.SENT, None, None, id="ringing"),
    pytest.param(fields("call_hangup_completed.form", drop=("RequestUUID",)),
                 MessageStatus.DELIVERED, None, None, id="only-ALegRequestUUID"),
]


@pytest.mark.parametrize(("pairs", "status", "answer", "reason"), CALLBACK_CASES)
def test_call_callback_becomes_a_status_update(pairs: list[tuple[str, str]],
                                               status: MessageStatus, answer: str | None,
                                               reason: str | None) -> None:
    provider = make_provider()
    request = signed_post(STATUS_URL, pairs)
    provider.verify(request)
    [update] = provider.parse_status(request)
    assert update.carrier_message_id == REQUEST_UUID  # the id place_call returned, not CallUUID
    assert (update.status, update.error_code, update.error_reason) == (status, answer, reason)
    assert answer is None or answer in CALL_FAILURE_ANSWERS


@pytest.mark.parametrize(("pairs", "field"), [
    pytest.param(fields("call_hangup_completed.form", drop=("RequestUUID", "ALegRequestUUID")),
                 "RequestUUID", id="no-request-uuid"),
    pytest.param(fields("call_hangup_completed.form", drop=("CallStatus",)), "CallStatus",
                 id="no-status"),
    pytest.param(fields("call_hangup_completed.form", CallStatus="exploded"), "exploded",
                 id="unknown-status"),
])
def test_malformed_call_callback_names_the_field(pairs: list[tuple[str, str]],
                                                 field: str) -> None:
    with pytest.raises(MalformedWebhook, match=field):
        make_provider().parse_status(signed_post(STATUS_URL, pairs))


def test_message_receipts_still_read_as_messages() -> None:
    [update] = make_provider().parse_status(signed_post(STATUS_URL,
                                                        fields("status_delivered.form")))
    assert (update.carrier_message_id, update.status) == (
        "5b40a428-bfc7-4daf-9d06-726c558bf3b8", MessageStatus.DELIVERED)


def test_forged_hangup_is_rejected() -> None:
    pairs = fields("call_hangup_completed.form")
    request = signed_post(STATUS_URL, pairs)
    tampered = WebhookRequest("POST", STATUS_URL, request.headers, [], urlencode(
        fields("call_hangup_completed.form", CallStatus="busy")).encode())
    with pytest.raises(WebhookRejected):
        make_provider().verify(tampered)


# --- placing the call: recorded API answers replayed over real HTTP ---------------------------

@pytest.fixture(scope="module")
def new_replay() -> Replay:
    """Plivo's Call API: 201 and JSON; keeps each request's path, headers and raw body."""
    return Replay(201, "application/json", path_headers_body)


@pytest.fixture
def replay_provider(replay_server: tuple[Replay, RunningServer]) -> PlivoProvider:
    return make_provider(base_url=replay_server[1].url)


async def test_place_call_makes_the_exact_request(replay: Replay, replay_provider: PlivoProvider,
                                                  http: aiohttp.ClientSession) -> None:
    replay.load(FIXTURES / "call_201.json", 201)
    result = await replay_provider.place_call(CALL, http)
    assert (result.carrier_message_id, result.status) == (REQUEST_UUID, MessageStatus.SENT)
    path, headers, raw = replay.seen[-1]
    assert path == f"/v1/Account/{AUTH_ID}/Call/"
    assert headers["authorization"] == "Basic " + base64.b64encode(
        f"{AUTH_ID}:{TOKEN}".encode()).decode()
    assert json.loads(raw) == {"from": "15145550100", "to": "14385550123",
                               "answer_url": ANSWER_URL, "answer_method": "POST",
                               "hangup_url": STATUS_URL, "hangup_method": "POST"}


CALL_ERRORS = [
    pytest.param("call_error_400_from.json", 400, {}, False, "http_400", None,
                 "Plivo: invalid 'from' parameter", id="400"),
    pytest.param("error_401_auth.json", 401, {}, False, "http_401", None,
                 "Plivo: Authentication failed", id="401"),
    pytest.param("error_429.json", 429, {"Retry-After": "7"}, True, "http_429", 7.0,
                 "Plivo: too many requests", id="429-retry-after"),
    pytest.param("error_500.json", 500, {}, True, "http_500", None,
                 "Plivo: internal server error", id="500"),
    pytest.param("error_502_gateway.html", 502, {}, True, "http_502", None,
                 "Plivo answered HTTP 502 without a JSON error", id="non-json-502"),
]


@pytest.mark.parametrize(("name", "status", "headers", "retryable", "code", "retry_after",
                          "reason"), CALL_ERRORS)
async def test_place_call_error_mapping(replay: Replay, replay_provider: PlivoProvider,
                                        http: aiohttp.ClientSession, name: str, status: int,
                                        headers: dict[str, str], retryable: bool, code: str,
                                        retry_after: float | None, reason: str) -> None:
    replay.load(FIXTURES / name, status, **headers)
    with pytest.raises(ProviderError) as caught:
        await replay_provider.place_call(CALL, http)
    error = caught.value
    assert (error.retryable, error.code, error.retry_after, error.reason) == (
        retryable, code, retry_after, reason)
    assert TOKEN not in str(error)


@pytest.mark.parametrize("body", [b"{}", b'{"request_uuid": ""}', b"not json"])
async def test_201_without_request_uuid_is_not_retried(replay: Replay,
                                                       replay_provider: PlivoProvider,
                                                       http: aiohttp.ClientSession,
                                                       body: bytes) -> None:
    replay.body = body
    with pytest.raises(ProviderError) as caught:
        await replay_provider.place_call(CALL, http)
    assert (caught.value.retryable, caught.value.code) == (False, "no_uuid")


async def test_a_call_without_an_answer_url_fails_before_any_request(
        replay: Replay, replay_provider: PlivoProvider, http: aiohttp.ClientSession) -> None:
    call = OutboundCall("call_1", "+15145550100", "+14385550123", "hi")
    with pytest.raises(ProviderError) as caught:
        await replay_provider.place_call(call, http)
    assert (caught.value.retryable, caught.value.code) == (False, "no_answer_url")
    assert replay.seen == []

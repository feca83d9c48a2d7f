"""Twilio voice-call alerts: the Calls request out, call-status callbacks in, errors mapped."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import aiohttp
import pytest
from starlette.requests import Request
from twilio.twiml.voice_response import VoiceResponse

from smsbridge.core.errors import MalformedWebhook, ProviderError, WebhookRejected
from smsbridge.core.messages import CALL_FAILURE_ANSWERS, MessageStatus, OutboundCall
from smsbridge.providers.base import WebhookRequest
from smsbridge.providers.twilio.compat import say_twiml
from smsbridge.providers.twilio.provider import TwilioConfig, TwilioProvider
from smsbridge.providers.twilio.signature import compute_signature
from smsbridge.testing.server import RunningServer
from tests.providers.forms import changed, form_fixture
from tests.providers.replay import Replay

FIXTURES = Path(__file__).parent / "fixtures"
ACCOUNT_SID = "AC3f9c2e8b5d1a4f6e9b0c7d2a1e5f8b3c"
TOKEN = "9b1f2c3d4e5f60718293a4b5c6d7e8f9"
STATUS_URL = "https://sms.example.com/v1/carriers/twilio/Zq3kP9wX/status"
CALL_SID = "CA7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b"
CALL = OutboundCall("call_01", "+15005550006", "+15145550100", 'Alarm <Front> & "back"',
                    voice="Polly.Joanna", language="en-US", repeat=2,
                    status_callback_url=STATUS_URL)


def make_provider(**options: object) -> TwilioProvider:
    return TwilioProvider(TwilioConfig(account_sid=ACCOUNT_SID, auth_token=TOKEN, **options))


def signed_post(pairs: list[tuple[str, str]], token: str = TOKEN) -> WebhookRequest:
    """A call-status callback as Twilio posts it, signed with ``token``."""
    headers = {"content-type": "application/x-www-form-urlencoded",
               "x-twilio-signature": compute_signature(token, STATUS_URL, pairs)}
    return WebhookRequest("POST", STATUS_URL, headers, [], urlencode(pairs).encode())


def callback(name: str, **changes: str) -> list[tuple[str, str]]:
    return changed(form_fixture(FIXTURES / name), **changes)


# --- TwiML ----------------------------------------------------------------------------------

def test_twiml_escapes_the_text_and_carries_voice_language_and_loop() -> None:
    assert say_twiml(CALL) == (
        '<Response><Say voice="Polly.Joanna" language="en-US" loop="2">'
        'Alarm &lt;Front&gt; &amp; "back"</Say></Response>')


def test_twiml_leaves_out_what_the_carrier_defaults() -> None:
    call = OutboundCall("call_02", "+15005550006", "+15145550100", "Smoke in the hall")
    assert say_twiml(call) == "<Response><Say>Smoke in the hall</Say></Response>"


def test_twiml_reads_back_as_twilios_own_library_writes_it() -> None:
    # Twilio's SDK builds the same document; an XML parser sees both as one tree.
    from xml.etree import ElementTree

    sdk = VoiceResponse()
    sdk.say('Alarm <Front> & "back"', voice="Polly.Joanna", language="en-US", loop=2)
    ours = ElementTree.fromstring(say_twiml(CALL))
    theirs = ElementTree.fromstring(str(sdk))
    assert (ours.tag, [(e.tag, e.attrib, e.text) for e in ours]) == (
        theirs.tag, [(e.tag, e.attrib, e.text) for e in theirs])


# --- place_call over HTTP -------------------------------------------------------------------

def path_authorization_form(request: Request, raw: bytes) -> tuple[str, str, list[tuple[str, str]]]:
    """Keep the path, the Authorization header and the form fields."""
    return (request.url.path, request.headers.get("authorization", ""),
            parse_qsl(raw.decode(), keep_blank_values=True))


@pytest.fixture(scope="module")
def new_replay() -> Replay:
    """Twilio's Calls API: 201 and JSON."""
    return Replay(201, "application/json", path_authorization_form,
                  (FIXTURES / "call_201.json").read_bytes())


@pytest.fixture
def replay_provider(replay_server: tuple[Replay, RunningServer]) -> TwilioProvider:
    return make_provider(base_url=replay_server[1].url)


async def test_place_call_posts_the_exact_form_and_reads_the_call_sid(
        replay: Replay, replay_provider: TwilioProvider, http: aiohttp.ClientSession) -> None:
    result = await replay_provider.place_call(CALL, http)
    assert (result.carrier_message_id, result.status) == (CALL_SID, MessageStatus.SENT)
    ((path, authorization, form),) = replay.seen
    assert path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    assert authorization.startswith("Basic ")
    assert form == [
        ("To", "+15145550100"), ("From", "+15005550006"),
        ("Twiml", '<Response><Say voice="Polly.Joanna" language="en-US" loop="2">'
                  'Alarm &lt;Front&gt; &amp; "back"</Say></Response>'),
        ("StatusCallback", STATUS_URL),
        ("StatusCallbackEvent", "initiated"), ("StatusCallbackEvent", "ringing"),
        ("StatusCallbackEvent", "answered"), ("StatusCallbackEvent", "completed"),
        ("StatusCallbackMethod", "POST"),
    ]


async def test_a_messaging_service_does_not_replace_the_callers_number(
        replay: Replay, http: aiohttp.ClientSession,
        replay_server: tuple[Replay, RunningServer]) -> None:
    provider = make_provider(base_url=replay_server[1].url,
                             messaging_service_sid="MG" + "0" * 32)
    await provider.place_call(CALL, http)
    ((_, _, form),) = replay.seen
    assert dict(form)["From"] == "+15005550006" and "MessagingServiceSid" not in dict(form)


@pytest.mark.parametrize(("name", "status", "retryable", "code"), [
    pytest.param("error_21211.json", 400, False, "21211", id="21211-bad-to"),
    pytest.param("error_20003.json", 401, False, "20003", id="20003-auth"),
    pytest.param("error_20429.json", 429, True, "20429", id="20429-rate"),
    pytest.param("error_20500.json", 500, True, "20500", id="5xx"),
])
async def test_place_call_errors_go_through_twilios_error_mapping(
        replay: Replay, replay_provider: TwilioProvider, http: aiohttp.ClientSession,
        name: str, status: int, retryable: bool, code: str) -> None:
    replay.load(FIXTURES / name, status)
    with pytest.raises(ProviderError) as raised:
        await replay_provider.place_call(CALL, http)
    assert (raised.value.retryable, raised.value.code) == (retryable, code)
    assert raised.value.reason == json.loads((FIXTURES / name).read_text())["message"]


async def test_a_201_without_a_sid_is_never_retried(
        replay: Replay, replay_provider: TwilioProvider, http: aiohttp.ClientSession) -> None:
    replay.body = b'{"status": "queued"}'
    with pytest.raises(ProviderError) as raised:
        await replay_provider.place_call(CALL, http)
    assert (raised.value.retryable, raised.value.code) == (False, "no_sid")


# --- call-status callbacks ------------------------------------------------------------------

@pytest.mark.parametrize(("pairs", "status", "code"), [
    pytest.param(callback("call_status_ringing.txt"), MessageStatus.SENT, None, id="ringing"),
    *[pytest.param(callback("call_status_ringing.txt", CallStatus=word), MessageStatus.SENT,
                   None, id=word) for word in ("queued", "initiated", "in-progress")],
    pytest.param(callback("call_status_completed.txt"), MessageStatus.DELIVERED, None,
                 id="completed"),
    pytest.param(callback("call_status_busy.txt"), MessageStatus.FAILED, "busy", id="busy"),
    *[pytest.param(callback("call_status_busy.txt", CallStatus=word), MessageStatus.FAILED,
                   word, id=word) for word in ("no-answer", "failed", "canceled")],
])
def test_call_status_callback(pairs: list[tuple[str, str]], status: MessageStatus,
                              code: str | None) -> None:
    provider = make_provider()
    request = signed_post(pairs)
    provider.verify(request)  # call callbacks are signed like every Twilio webhook
    [update] = provider.parse_status(request)
    assert (update.carrier_message_id, update.status, update.error_code) == (
        CALL_SID, status, code)
    assert (update.error_reason is None) == (code is None)
    assert code is None or code in CALL_FAILURE_ANSWERS


def test_busy_says_why() -> None:
    [update] = make_provider().parse_status(signed_post(callback("call_status_busy.txt")))
    assert update.error_reason == "the line was busy"


def test_a_forged_call_callback_is_rejected() -> None:
    request = signed_post(callback("call_status_completed.txt"), token="f" * 32)
    with pytest.raises(WebhookRejected):
        make_provider().verify(request)


@pytest.mark.parametrize("pairs", [
    pytest.param(callback("call_status_busy.txt", CallStatus="exploded"), id="unknown-status"),
    pytest.param(changed(callback("call_status_busy.txt"), drop=("CallStatus",)),
                 id="no-status"),
])
def test_malformed_call_callback(pairs: list[tuple[str, str]]) -> None:
    with pytest.raises(MalformedWebhook):
        make_provider().parse_status(signed_post(pairs))


def test_a_message_receipt_is_not_read_as_a_call() -> None:
    # A message receipt carrying a CallSid too (it never should) is still a message receipt.
    pairs = [*form_fixture(FIXTURES / "status_sent.txt"), ("CallSid", CALL_SID),
             ("CallStatus", "busy")]
    [update] = make_provider().parse_status(signed_post(pairs))
    assert update.carrier_message_id.startswith("SM") and update.status is MessageStatus.SENT

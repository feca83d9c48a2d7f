"""SignalWire: fixture payloads in, messages, receipts or a precise error out; sends over HTTP.

Signed fixtures are signed here, at test time, with a test Signing Key, by Twilio's own
RequestValidator: SignalWire's Python SDK validates its Compatibility API webhooks with
exactly that class (``signalwire.request_validator`` wraps it), keyed with the Signing Key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from smsbridge.core.errors import MalformedWebhook, ProviderError, WebhookRejected
from smsbridge.core.messages import Media, MessageStatus, OutboundMessage
from smsbridge.providers import UNSIGNED, get_provider_class
from smsbridge.providers.base import WebhookRequest
from smsbridge.providers.signalwire.provider import SignalWireConfig, SignalWireProvider
from smsbridge.testing.fake_signalwire import FakeSignalWire
from smsbridge.testing.server import RunningServer, start_server
from tests.providers.forms import form_fixture

FIXTURES = Path(__file__).parent / "fixtures"
# The test project: its id, API token and Signing Key.
PROJECT_ID, API_TOKEN, SIGNING_KEY = ("4b7ae78a-d02e-4889-a63b-08b156d5916e",
                                      "PT3c1d9e0f7a2b4c6d8e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b",
                                      "PSK_Te5tS1gn1ngKeyN0tR3al")
HOOKS = "https://sms.example.com/v1/carriers/signalwire/k9QmT2"
INBOUND_URL, STATUS_URL = HOOKS + "/inbound", HOOKS + "/status"
OUT_SID = "cbad786b-fdcd-4d2a-bcb2-fff9df045008"
MEDIA_BASE = (f"https://example.signalwire.com/api/laml/2010-04-01/Accounts/{PROJECT_ID}"
              "/Messages/7f3a9c1e-2b4d-4e6f-8a0b-1c2d3e4f5a6b/Media/")


def signalwire(**settings: object) -> SignalWireProvider:
    """A provider for the test project; ``settings`` override its config."""
    config = {"space": "example.signalwire.com", "project_id": PROJECT_ID,
              "api_token": API_TOKEN, "signing_key": SIGNING_KEY, **settings}
    return SignalWireProvider(SignalWireConfig(**config))


def fields(name: str, **changes: str | None) -> list[tuple[str, str]]:
    """A fixture's form fields; a change sets a field (None removes it)."""
    original = form_fixture(FIXTURES / name)
    kept = [(k, changes.get(k, v)) for k, v in original]
    added = [(k, v) for k, v in changes.items() if k not in dict(original)]
    return [(k, v) for k, v in kept + added if v is not None]


def webhook(url: str, pairs: list[tuple[str, str]], **headers: str) -> WebhookRequest:
    """A form POST as the gateway hands it to the provider."""
    return WebhookRequest("POST", url, {"content-type": "application/x-www-form-urlencoded",
                                        **headers}, [], urlencode(pairs).encode())


def signed(url: str, pairs: list[tuple[str, str]], key: str = SIGNING_KEY,
           header: str = "x-signalwire-signature") -> WebhookRequest:
    """The same POST, signed the way SignalWire's SDK checks it, with ``key``."""
    signature = RequestValidator(key).compute_signature(url, dict(pairs))
    return webhook(url, pairs, **{header: signature})


# --- inbound messages and receipts: payload in, what the provider reads out -----------------

def read(request: WebhookRequest) -> tuple:
    """What the provider reads from an inbound webhook or (at the status URL) a receipt."""
    if request.url == STATUS_URL:
        return tuple((u.carrier_message_id, u.status, u.error_code, u.error_reason)
                     for u in signalwire().parse_status(request))
    return tuple((m.carrier_message_id, m.from_number, m.to_number, m.text, m.media)
                 for m in signalwire().parse_inbound(request))


SMS_SID = "0da01046-5cca-462f-bc50-adae4e1307e1"
PAYLOADS = [
    (INBOUND_URL, "inbound_sms.txt", {}, (SMS_SID, "+12135877632", "+12089806814",
                                          "DISARM garage", ())),
    (INBOUND_URL, "inbound_mms_2_media.txt", {}, (
        "7f3a9c1e-2b4d-4e6f-8a0b-1c2d3e4f5a6b", "+12135877632", "+12089806814",
        "Café door \U0001f4f7", (
            Media("image/jpeg", MEDIA_BASE + "aff0684c-3445-49bc-802b-3a0a488139f5"),
            Media("video/mp4", MEDIA_BASE + "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e")))),
    (INBOUND_URL, "inbound_sms.txt", {"MessageSid": None}, (
        SMS_SID, "+12135877632", "+12089806814", "DISARM garage", ())),
    (INBOUND_URL, "inbound_sms.txt", {"From": "22395"}, (
        SMS_SID, "22395", "+12089806814", "DISARM garage", ())),
    (INBOUND_URL, "inbound_sms.txt", {"MessageSid": None, "SmsMessageSid": None,
                                      "SmsSid": None}, "missing MessageSid"),
    (INBOUND_URL, "inbound_sms.txt", {"To": None}, "SignalWire webhook is missing 'To'"),
    (INBOUND_URL, "inbound_sms.txt", {"From": "call me maybe"},
     "From' 'call me maybe' is not a phone"),
    (INBOUND_URL, "inbound_sms.txt", {"NumMedia": "x"}, "NumMedia 'x'"),
    (INBOUND_URL, "inbound_mms_2_media.txt", {"MediaUrl1": None}, "no MediaUrl1"),
    (STATUS_URL, "status_sent.txt", {}, (OUT_SID, MessageStatus.SENT, None, None)),
    (STATUS_URL, "status_delivered.txt", {}, (OUT_SID, MessageStatus.DELIVERED, None, None)),
    (STATUS_URL, "status_undelivered_30003.txt", {}, (
        OUT_SID, MessageStatus.FAILED, "30003", "unreachable destination handset")),
    (STATUS_URL, "status_sent.txt", {"MessageStatus": "queued"}, (
        OUT_SID, MessageStatus.SENDING, None, None)),
    (STATUS_URL, "status_undelivered_30003.txt", {"MessageStatus": "failed",
                                                  "ErrorCode": "30999"}, (
        OUT_SID, MessageStatus.FAILED, "30999", "SignalWire error 30999")),
    (STATUS_URL, "status_sent.txt", {"MessageStatus": "received", "SmsStatus": "received"},
     "'received' is not an outbound status"),
    (STATUS_URL, "status_sent.txt", {"MessageStatus": None, "SmsStatus": None},
     "missing MessageStatus"),
]


@pytest.mark.parametrize(("url", "name", "changes", "expected"), PAYLOADS)
def test_payload(url: str, name: str, changes: dict, expected: tuple | str) -> None:
    request = webhook(url, fields(name, **changes))
    if isinstance(expected, str):
        with pytest.raises(MalformedWebhook, match=expected):
            read(request)
    else:
        assert read(request) == (expected,)


def test_inbound_is_answered_with_empty_cxml() -> None:
    reply = signalwire().inbound_reply([])
    assert (reply.status, reply.content_type) == (200, "application/xml")
    assert reply.body.endswith(b"<Response/>")


# --- signatures -----------------------------------------------------------------------------

def test_signalwire_sdk_compatibility_vector_verifies() -> None:
    """The form example of signalwire-python's own RequestValidator tests (key "12345")."""
    pairs = [("CallSid", "CA1234567890ABCDE"), ("Caller", "+14158675309"), ("Digits", "1234"),
             ("From", "+14158675309"), ("To", "+18005551212")]
    request = webhook("https://mycompany.com/myapp.php?foo=1&bar=2", pairs,
                      **{"x-signalwire-signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="})
    signalwire(signing_key="12345").verify(request)


VERIFY = [
    pytest.param(signed(INBOUND_URL, fields("inbound_sms.txt")), None, id="inbound-signed"),
    pytest.param(signed(INBOUND_URL, fields("inbound_mms_2_media.txt")), None, id="mms-unicode"),
    pytest.param(signed(STATUS_URL, fields("status_undelivered_30003.txt")), None, id="receipt"),
    pytest.param(signed("https://sms.example.com:443/v1/carriers/signalwire/k9QmT2/inbound",
                        fields("inbound_sms.txt")), None, id="signed-with-default-port"),
    pytest.param(webhook(INBOUND_URL, fields("inbound_sms.txt")),
                 "missing X-SignalWire-Signature", id="unsigned"),
    pytest.param(signed(INBOUND_URL, fields("inbound_sms.txt"), header="x-twilio-signature"),
                 "missing X-SignalWire-Signature", id="only-x-twilio-signature"),
    pytest.param(signed(INBOUND_URL, fields("inbound_sms.txt"), key=API_TOKEN),
                 "does not match", id="signed-with-api-token-not-signing-key"),
    pytest.param(replace(signed(STATUS_URL, fields("inbound_sms.txt")), url=INBOUND_URL),
                 "does not match", id="signed-for-another-url"),
]


@pytest.mark.parametrize(("request_", "rejected"), VERIFY)
def test_signature(request_: WebhookRequest, rejected: str | None) -> None:
    if rejected is None:
        signalwire().verify(request_)
        return
    with pytest.raises(WebhookRejected, match=rejected) as caught:
        signalwire().verify(request_)
    assert SIGNING_KEY not in str(caught.value) and API_TOKEN not in str(caught.value)


def test_a_field_changed_after_signing_is_rejected() -> None:
    genuine = signed(INBOUND_URL, fields("inbound_sms.txt"))
    forged = webhook(INBOUND_URL, fields("inbound_sms.txt", Body="ARM garage"),
                     **{"x-signalwire-signature": genuine.headers["x-signalwire-signature"]})
    with pytest.raises(WebhookRejected):
        signalwire().verify(forged)


# --- config ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("space", "url"), [
    ("example.signalwire.com", "https://example.signalwire.com"),
    ("example", "https://example.signalwire.com"),
    ("https://Example.signalwire.com/", "https://example.signalwire.com"),
])
def test_space_gives_the_api_address(space: str, url: str) -> None:
    assert signalwire(space=space).messages_url() == (
        f"{url}/api/laml/2010-04-01/Accounts/{PROJECT_ID}/Messages.json")


@pytest.mark.parametrize("settings", [
    {"project_id": "AC3f9c2e8b5d1a4f6e9b0c7d2a1e5f8b3c"},
    {"space": "example.signalwire.com/api"},
    {"space": ""},
    {"auth_token": "x"},
])
def test_config_refuses(settings: dict) -> None:
    with pytest.raises(ValueError):
        signalwire(**settings)


def test_registered_signed_and_secret() -> None:
    assert get_provider_class("signalwire") is SignalWireProvider
    assert SignalWireProvider.capabilities.signature not in (None, UNSIGNED)
    shown = repr(signalwire().config)
    assert API_TOKEN not in shown and SIGNING_KEY not in shown
    hint = signalwire().setup_hint(INBOUND_URL, STATUS_URL)
    assert hint is not None and INBOUND_URL in hint


# --- send: the exact request, against the fake over HTTP ------------------------------------

@pytest.fixture(scope="module")
def fake_api() -> Iterator[tuple[FakeSignalWire, RunningServer]]:
    fake = FakeSignalWire(PROJECT_ID, API_TOKEN, SIGNING_KEY)
    server = start_server(fake.app)
    yield fake, server
    server.stop()


SENDS = [
    pytest.param(OutboundMessage("01J1", "+12089806814", "+12135877632", "Garage open"),
                 [("To", "+12135877632"), ("From", "+12089806814"), ("Body", "Garage open")],
                 id="sms"),
    pytest.param(OutboundMessage("01J2", "+12089806814", "+12135877632", "Snapshots", (
        Media("image/jpeg", "https://cdn.example.com/1.jpg"),
        Media("image/png", "https://cdn.example.com/2.png")), status_callback_url=STATUS_URL),
                 [("To", "+12135877632"), ("From", "+12089806814"), ("Body", "Snapshots"),
                  ("MediaUrl", "https://cdn.example.com/1.jpg"),
                  ("MediaUrl", "https://cdn.example.com/2.png"), ("StatusCallback", STATUS_URL)],
                 id="mms-with-receipts"),
]


@pytest.mark.parametrize(("message", "form"), SENDS)
async def test_send_request(fake_api: tuple[FakeSignalWire, RunningServer],
                            http: aiohttp.ClientSession, message: OutboundMessage,
                            form: list[tuple[str, str]]) -> None:
    fake, server = fake_api
    fake.reset()
    result = await signalwire(base_url=server.url).send(message, http)
    [request] = fake.requests
    assert request.path == f"/api/laml/2010-04-01/Accounts/{PROJECT_ID}/Messages.json"
    assert request.auth_ok and request.form == form
    [accepted] = fake.messages
    assert (result.carrier_message_id, result.status) == (accepted.sid, MessageStatus.SENT)


async def test_inline_media_is_refused_before_any_call(
        fake_api: tuple[FakeSignalWire, RunningServer], http: aiohttp.ClientSession) -> None:
    fake, server = fake_api
    fake.reset()
    message = OutboundMessage("01J3", "+12089806814", "+12135877632", "x",
                              (Media("image/png", data_base64="iVBORw0KGgo="),))
    with pytest.raises(ProviderError, match="by URL only"):
        await signalwire(base_url=server.url).send(message, http)
    assert fake.requests == []


# --- send: recorded answers replayed over HTTP ----------------------------------------------

@pytest.fixture(scope="module")
def answers() -> Iterator[tuple[dict, RunningServer]]:
    """A server that gives every POST the answer in ``state`` (status, body, headers)."""
    state: dict = {}

    async def answer(request: Request) -> Response:
        return Response(state["body"], state["status"], state["headers"],
                        media_type="application/json")

    server = start_server(Starlette(routes=[Route("/{path:path}", answer, methods=["POST"])]))
    yield state, server
    server.stop()


ANSWERS = [
    ("send_201_sms.json", 201, {}, (OUT_SID, 1)),
    ("send_201_mms.json", 201, {}, ("5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9", 1)),
    ("error_20003.json", 401, {}, (False, "20003", None)),
    ("error_21211.json", 400, {}, (False, "21211", None)),
    ("error_21606.json", 400, {}, (False, "21606", None)),
    ("error_21610.json", 400, {}, (False, "21610", None)),
    ("error_21617.json", 400, {}, (False, "21617", None)),
    ("error_20429.json", 429, {"Retry-After": "7"}, (True, "20429", 7.0)),
    ("error_20500.json", 500, {}, (True, "20500", None)),
]


@pytest.mark.parametrize(("name", "status", "headers", "expected"), ANSWERS)
async def test_send_answer(answers: tuple[dict, RunningServer], http: aiohttp.ClientSession,
                           name: str, status: int, headers: dict, expected: tuple) -> None:
    state, server = answers
    state.update(body=(FIXTURES / name).read_bytes(), status=status, headers=headers)
    provider = signalwire(base_url=server.url)
    message = OutboundMessage("01J4", "+12089806814", "+12135877632", "hello")
    if status == 201:
        result = await provider.send(message, http)
        assert (result.carrier_message_id, result.segments) == expected
        return
    with pytest.raises(ProviderError) as caught:
        await provider.send(message, http)
    error = caught.value
    assert (error.retryable, error.code, error.retry_after) == expected
    assert error.reason == json.loads(state["body"])["message"]

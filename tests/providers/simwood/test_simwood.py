"""Simwood: recorded-shape payloads in, messages/statuses/errors out; sends over real HTTP."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from smsbridge.core.errors import MalformedWebhook, ProviderError
from smsbridge.core.messages import Media, MessageStatus, OutboundMessage
from smsbridge.providers import UNSIGNED, WebhookRequest, get_provider_class
from smsbridge.providers.simwood.provider import SimwoodConfig, SimwoodProvider
from smsbridge.testing.server import RunningServer
from tests.providers.replay import Replay, path_headers_json

FIXTURES = Path(__file__).parent / "fixtures"
ACCOUNT = "930123"
USERNAME = "930123-gateway"
API_KEY = "Qm7xV2kP9sT4wL8nR3cY6hJ1dF5gB0aZ"
INBOUND_URL = "https://sms.example.com/v1/carriers/simwood/Zq3kP9wX/inbound"
STATUS_URL = "https://sms.example.com/v1/carriers/simwood/Zq3kP9wX/status"
FORM = "application/x-www-form-urlencoded"


def make_provider(**options: Any) -> SimwoodProvider:
    return SimwoodProvider(SimwoodConfig(account=ACCOUNT, username=USERNAME, api_key=API_KEY,
                                         **options))


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def changed(name: str, path: str, value: Any) -> Any:
    """A fixture with the value at a dotted path replaced (``...`` deletes it)."""
    document = copy.deepcopy(fixture(name))
    *parents, last = path.split(".")
    node = document
    for part in parents:
        node = node[part]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return document


def as_json(document: Any) -> WebhookRequest:
    """A POST as ``http_json`` numbers get it: the event as the JSON body."""
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return WebhookRequest("POST", INBOUND_URL, {"content-type": "application/json"}, [], body)


def as_form(document: Any, url: str = STATUS_URL) -> WebhookRequest:
    """A POST as reports (and the legacy ``http`` mode) come: the event in field payload."""
    body = document if isinstance(document, bytes) else urlencode(
        {"payload": json.dumps(document)}).encode()
    return WebhookRequest("POST", url, {"content-type": FORM}, [], body)


def test_registered_and_declared_unsigned() -> None:
    cls = get_provider_class("simwood")
    assert cls is SimwoodProvider
    assert cls.capabilities.signature == UNSIGNED and cls.contract_problems() == []
    assert (cls.capabilities.mms, cls.capabilities.delivery_receipts) == (False, True)


# --- inbound messages ---------------------------------------------------------------------

INBOUND_CASES = [
    pytest.param(as_json(fixture("inbound_sms.json")), {
        "carrier_message_id": "9a171a847f32e9b8b1b0e43b33120d2a",
        "from_number": "+447700900321", "to_number": "+447700900123", "text": "ARM SV",
        "media": ()}, id="http-json"),
    pytest.param(as_json(fixture("inbound_sms_docs_example.json")), {
        "carrier_message_id": "si_422296075c882529362765a39aa75b19",
        "text": "Hello World."}, id="simwood-docs-example-without-time"),
    pytest.param(as_json(fixture("inbound_sms_unicode.json")), {
        "from_number": "+447700900456", "text": "DISARM JF \u00e9t\u00e9 \U0001f512"},
                 id="unicode"),
    pytest.param(as_form((FIXTURES / "inbound_legacy_http.form").read_bytes().strip(),
                         INBOUND_URL), {
        "carrier_message_id": "fi_422296075c882529362765a39aa75b19",
        "from_number": "+447700900321", "to_number": "+447700900123", "text": "STATUS"},
                 id="legacy-http-form-payload"),
    pytest.param(as_json(changed("inbound_sms.json", "data.originator", "07700900321")), {
        "from_number": "+447700900321"}, id="british-national-originator"),
    pytest.param(as_json(changed("inbound_sms.json", "data.originator", "+447700900321")), {
        "from_number": "+447700900321"}, id="originator-with-plus"),
    pytest.param(as_json(changed("inbound_sms.json", "data.originator", "15083084809")), {
        "from_number": "+15083084809"}, id="american-originator-as-jambonz-saw-it"),
    pytest.param(as_json(changed("inbound_sms.json", "data.originator", "Simwood")), {
        "from_number": "Simwood"}, id="alphanumeric-originator-kept"),
    pytest.param(as_json(changed("inbound_sms.json", "data.originator", "60777")), {
        "from_number": "60777"}, id="short-code-kept"),
    pytest.param(as_json(changed("inbound_sms.json", "data.message", "")), {
        "text": ""}, id="empty-text"),
    pytest.param(as_json(changed("inbound_sms.json", "data.time", ...)), {
        "text": "ARM SV"}, id="no-time"),
]


@pytest.mark.parametrize(("request_", "expected"), INBOUND_CASES)
def test_parse_inbound(request_: WebhookRequest, expected: dict[str, Any]) -> None:
    [message] = make_provider().parse_inbound(request_)
    for attribute, value in expected.items():
        assert getattr(message, attribute) == value, attribute


@pytest.mark.parametrize("request_", [
    pytest.param(as_json(fixture("event_fax_inbound.json")), id="fax"),
    pytest.param(as_form(fixture("report_delivered.json"), INBOUND_URL),
                 id="a-report-at-the-inbound-url"),
    pytest.param(as_json(changed("inbound_sms.json", "app", "call_inbound")), id="unknown-app"),
])
def test_other_simwood_events_at_the_inbound_url_store_nothing(
        request_: WebhookRequest) -> None:
    assert make_provider().parse_inbound(request_) == []


MALFORMED_INBOUND = [
    pytest.param(as_json(b"<xml/>"), "not valid JSON", id="not-json"),
    pytest.param(as_json([fixture("inbound_sms.json")]), "JSON object", id="a-list"),
    pytest.param(as_json(changed("inbound_sms.json", "app", ...)), "'app'", id="no-app"),
    pytest.param(as_json(changed("inbound_sms.json", "id", ...)), "'id'", id="no-id"),
    pytest.param(as_json(changed("inbound_sms.json", "id", "  ")), "'id'", id="blank-id"),
    pytest.param(as_json(changed("inbound_sms.json", "data", ...)), "'data'", id="no-data"),
    pytest.param(as_json(changed("inbound_sms.json", "data.originator", ...)),
                 "data.originator", id="no-originator"),
    pytest.param(as_json(changed("inbound_sms.json", "data.destination", "")),
                 "data.destination", id="empty-destination"),
    pytest.param(as_json(changed("inbound_sms.json", "data.originator", "not a number!")),
                 "originator", id="bad-originator"),
    pytest.param(as_json(changed("inbound_sms.json", "data.originator", "4477009003219999")),
                 "originator", id="too-many-digits"),
    pytest.param(as_json(changed("inbound_sms.json", "data.message", ...)), "data.message",
                 id="no-message"),
    pytest.param(as_json(changed("inbound_sms.json", "data.message", 42)), "data.message",
                 id="message-not-a-string"),
    pytest.param(as_form(b"text=hi", INBOUND_URL), "payload", id="form-without-payload"),
    pytest.param(as_form(b"payload=%7Bnot+json", INBOUND_URL), "payload",
                 id="payload-not-json"),
]


@pytest.mark.parametrize(("request_", "names"), MALFORMED_INBOUND)
def test_malformed_inbound_names_the_field(request_: WebhookRequest, names: str) -> None:
    with pytest.raises(MalformedWebhook, match=names):
        make_provider().parse_inbound(request_)


def test_replies_have_a_body_or_simwood_sends_again() -> None:
    provider = make_provider()
    [message] = provider.parse_inbound(as_json(fixture("inbound_sms.json")))
    for reply in (provider.inbound_reply([message]), provider.inbound_reply([]),
                  provider.status_reply([])):
        assert reply.status == 200 and reply.body != b""


# --- delivery reports ---------------------------------------------------------------------

OUT_ID = "02f150a0690171038624cc9d0e89207d"

STATUS_CASES = [
    pytest.param("report_received.json", MessageStatus.SENT, None, None, id="1-received"),
    pytest.param("report_submitted.json", MessageStatus.SENT, None, None, id="2-submitted"),
    pytest.param("report_delivered.json", MessageStatus.DELIVERED, None, None,
                 id="11-delivered"),
    pytest.param("report_rejected.json", MessageStatus.FAILED, "12",
                 "Simwood report 12: rejected: not delivered and will not be retried",
                 id="12-rejected"),
    pytest.param("report_error.json", MessageStatus.FAILED, "13",
                 "Simwood report 13: error: usually an invalid destination, sometimes a"
                 " disallowed sender", id="13-error"),
    pytest.param("report_queued.json", MessageStatus.SENT, None, None, id="14-queued"),
    pytest.param("report_smsc_accepted.json", MessageStatus.SENT, None, None,
                 id="18-smsc-accepted-is-not-delivery"),
    pytest.param("report_smsc_rejected.json", MessageStatus.FAILED, "26",
                 "Simwood report 26: rejected by the SMSC and will not be retried",
                 id="26-smsc-rejected"),
]


@pytest.mark.parametrize(("name", "status", "code", "reason"), STATUS_CASES)
def test_parse_status(name: str, status: MessageStatus, code: str | None,
                      reason: str | None) -> None:
    [update] = make_provider().parse_status(as_form(fixture(name)))
    assert update.carrier_message_id == OUT_ID
    assert (update.status, update.error_code, update.error_reason) == (status, code, reason)


def test_recorded_form_report_is_read() -> None:
    raw = (FIXTURES / "report_delivered.form").read_bytes().strip()
    [update] = make_provider().parse_status(as_form(raw))
    assert (update.carrier_message_id, update.status) == (OUT_ID, MessageStatus.DELIVERED)


def test_report_as_json_body_and_status_as_digits_are_read() -> None:
    report = changed("report_delivered.json", "data.status", "11")
    [update] = make_provider().parse_status(as_json(report))
    assert update.status is MessageStatus.DELIVERED


def test_undocumented_status_code_changes_nothing() -> None:
    assert make_provider().parse_status(
        as_form(changed("report_delivered.json", "data.status", 99))) == []


@pytest.mark.parametrize(("request_", "names"), [
    pytest.param(as_form(changed("report_delivered.json", "data.status", ...)), "data.status",
                 id="no-status"),
    pytest.param(as_form(changed("report_delivered.json", "data.status", "delivered")),
                 "data.status", id="status-a-word"),
    pytest.param(as_form(changed("report_delivered.json", "data.status", True)),
                 "data.status", id="status-a-boolean"),
    pytest.param(as_form(changed("report_delivered.json", "id", ...)), "'id'", id="no-id"),
    pytest.param(as_form(changed("report_delivered.json", "data", ...)), "'data'",
                 id="no-data"),
    pytest.param(as_json(fixture("inbound_sms.json")), "inbound URL",
                 id="an-inbound-sms-at-the-status-url"),
])
def test_malformed_status(request_: WebhookRequest, names: str) -> None:
    with pytest.raises(MalformedWebhook, match=names):
        make_provider().parse_status(request_)


def test_verify_lets_any_request_through_the_url_token_guards_it() -> None:
    make_provider().verify(as_json(fixture("inbound_sms.json")))


# --- config and setup ---------------------------------------------------------------------

def test_config_never_shows_the_api_key() -> None:
    config = SimwoodConfig(account=ACCOUNT, username=USERNAME, api_key=API_KEY)
    assert API_KEY not in repr(config) and API_KEY not in str(config.model_dump())


def test_config_refuses_unknown_keys() -> None:
    with pytest.raises(ValueError, match="password"):
        SimwoodConfig(account=ACCOUNT, username=USERNAME, api_key=API_KEY,
                      password="x")  # type: ignore[call-arg]


@pytest.mark.parametrize("account", ["", "930123/../../numbers", "930 123"])
def test_config_refuses_an_account_that_is_no_path_segment(account: str) -> None:
    with pytest.raises(ValueError, match="account"):
        SimwoodConfig(account=account, username=USERNAME, api_key=API_KEY)


def test_setup_hint_names_the_mode_and_both_urls() -> None:
    hint = make_provider().setup_hint(INBOUND_URL, STATUS_URL)
    assert hint is not None and INBOUND_URL in hint and STATUS_URL in hint
    assert "http_json" in hint and f"/v3/numbers/{ACCOUNT}/allocated/" in hint


# --- send: exact requests and recorded answers over real HTTP -------------------------------

@pytest.fixture(scope="module")
def new_replay() -> Replay:
    """Simwood's SMS endpoint: 200 and JSON; keeps path, headers and the parsed body."""
    return Replay(200, "application/json", path_headers_json)


@pytest.fixture
def replay_provider(replay_server: tuple[Replay, RunningServer]) -> SimwoodProvider:
    return make_provider(base_url=replay_server[1].url)


def load(replay: Replay, name: str, status: int, **headers: str) -> None:
    replay.load(FIXTURES / name, status, **headers)


OURS, PEER = "+447700900123", "+447700900456"
LONG_GSM = "Alarm: " + "motion in the hall " * 10  # 197 characters: two parts
LONG_UCS2 = "\u00c9t\u00e9 \U0001f512 " * 12  # 84 UTF-16 units: two UCS-2 parts

SEND_CASES = [
    pytest.param(OutboundMessage("msg_1", OURS, PEER, "Porch motion at 02:14",
                                 status_callback_url=STATUS_URL),
                 {"to": "447700900456", "from": "447700900123",
                  "message": "Porch motion at 02:14", "concat": 1, "report": STATUS_URL},
                 id="sms-with-report"),
    pytest.param(OutboundMessage("msg_2", OURS, PEER, "No receipt wanted"),
                 {"to": "447700900456", "from": "447700900123",
                  "message": "No receipt wanted", "concat": 1}, id="sms-without-report"),
    pytest.param(OutboundMessage("msg_3", OURS, PEER, LONG_GSM),
                 {"to": "447700900456", "from": "447700900123", "message": LONG_GSM,
                  "concat": 2}, id="long-text-asks-for-two-parts"),
    pytest.param(OutboundMessage("msg_4", OURS, PEER, LONG_UCS2),
                 {"to": "447700900456", "from": "447700900123", "message": LONG_UCS2,
                  "concat": 2}, id="unicode-text-counts-ucs2-parts"),
    pytest.param(OutboundMessage("msg_5", "HomeAlarm", PEER, "Armed"),
                 {"to": "447700900456", "from": "HomeAlarm", "message": "Armed",
                  "concat": 1}, id="alphanumeric-sender-id"),
]


@pytest.mark.parametrize(("message", "expected_body"), SEND_CASES)
async def test_send_makes_the_exact_request(replay: Replay, replay_provider: SimwoodProvider,
                                            http: aiohttp.ClientSession,
                                            message: OutboundMessage,
                                            expected_body: dict[str, Any]) -> None:
    load(replay, "send_200.json", 200)
    result = await replay_provider.send(message, http)
    assert (result.carrier_message_id, result.status) == (OUT_ID, MessageStatus.SENT)
    assert result.segments == expected_body["concat"]
    [(path, headers, body)] = replay.seen
    assert path == f"/v3/messaging/{ACCOUNT}/sms"
    assert body == expected_body
    assert headers["content-type"].startswith("application/json")
    assert headers["authorization"] == "Basic " + base64.b64encode(
        f"{USERNAME}:{API_KEY}".encode()).decode()


async def test_extended_answer_gives_the_id_and_parts(
        replay: Replay, replay_provider: SimwoodProvider, http: aiohttp.ClientSession) -> None:
    load(replay, "send_200_extended.json", 200)
    result = await replay_provider.send(OutboundMessage("msg_6", OURS, PEER, LONG_GSM), http)
    assert (result.carrier_message_id, result.segments) == (
        "1f40b0ac384cab838acf39a0e3e38bba", 2)


async def test_media_is_refused_without_a_call(
        replay: Replay, replay_provider: SimwoodProvider, http: aiohttp.ClientSession) -> None:
    mms = OutboundMessage("msg_7", OURS, PEER, "x",
                          (Media("image/jpeg", "https://cdn.example.com/cam1.jpg"),))
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(mms, http)
    assert (caught.value.retryable, caught.value.code) == (False, "no_mms")
    assert replay.seen == []


SEND_ERRORS = [
    pytest.param("error_400.json", 400, {}, False, "http_400", None,
                 "Simwood: HTTP 400: Invalid destination number 4477009",
                 id="400-invalid-recipient"),
    pytest.param("error_401.html", 401, {}, False, "http_401", None,
                 "Simwood refused the API username or API key (HTTP 401)",
                 id="401-credentials"),
    pytest.param("error_403.json", 403, {}, False, "http_403", None,
                 "Simwood refused access (HTTP 403). Simwood may accept API calls only from"
                 " allowed IP addresses: check that this server's public address is allowed"
                 " on the account: Access denied from 198.51.100.23", id="403-ip-not-allowed"),
    pytest.param("error_404.json", 404, {}, False, "http_404", None,
                 "Simwood has no SMS endpoint for account '930123' (HTTP 404): check the"
                 " account number: Not found", id="404-wrong-account"),
    pytest.param("error_429.json", 429, {"Retry-After": "7"}, True, "http_429", 7.0,
                 "Simwood: HTTP 429: Rate limit exceeded", id="429-throttled"),
    pytest.param("error_500.json", 500, {}, True, "http_500", None,
                 "Simwood: HTTP 500: Internal error", id="500"),
    pytest.param("error_502.html", 502, {}, True, "http_502", None, "Simwood: HTTP 502",
                 id="non-json-502"),
    pytest.param("error_200_refused.json", 200, {}, False, "rejected", None,
                 "Simwood refused the message: Invalid destination number 4477009",
                 id="200-success-false"),
]


@pytest.mark.parametrize(("name", "status", "headers", "retryable", "code", "retry_after",
                          "reason"), SEND_ERRORS)
async def test_send_error_mapping(replay: Replay, replay_provider: SimwoodProvider,
                                  http: aiohttp.ClientSession, name: str, status: int,
                                  headers: dict[str, str], retryable: bool, code: str,
                                  retry_after: float | None, reason: str) -> None:
    load(replay, name, status, **headers)
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(SEND_CASES[0].values[0], http)
    error = caught.value
    assert (error.retryable, error.code, error.retry_after, error.reason) == (
        retryable, code, retry_after, reason)


async def test_api_key_echoed_by_an_error_is_masked(
        replay: Replay, replay_provider: SimwoodProvider, http: aiohttp.ClientSession) -> None:
    replay.status = 400
    replay.body = json.dumps({"success": False,
                              "errors": [f"bad login {USERNAME}:{API_KEY}"]}).encode()
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(SEND_CASES[0].values[0], http)
    assert API_KEY not in caught.value.reason and "***" in caught.value.reason


@pytest.mark.parametrize("body", [b"", b"[]", b"{}", b'[{"id": ""}]', b'{"success": true}',
                                  b"<html/>"])
async def test_200_without_an_id_is_not_retried(
        replay: Replay, replay_provider: SimwoodProvider, http: aiohttp.ClientSession,
        body: bytes) -> None:
    replay.body = body
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(SEND_CASES[0].values[0], http)
    assert (caught.value.retryable, caught.value.code) == (False, "no_id")


async def test_unreachable_carrier_is_retryable(http: aiohttp.ClientSession) -> None:
    provider = make_provider(base_url="http://127.0.0.1:9", timeout_seconds=2)
    with pytest.raises(ProviderError) as caught:
        await provider.send(SEND_CASES[0].values[0], http)
    assert (caught.value.retryable, caught.value.code) == (True, "connection_error")


def test_one_request_per_message_bounds_the_send_time() -> None:
    provider = make_provider(timeout_seconds=12)
    assert provider.max_send_seconds() == provider.max_send_seconds(
        OutboundMessage("msg_8", OURS, PEER, LONG_GSM)) == 12

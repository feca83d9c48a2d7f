"""382 Communications: webhook payloads in, messages or errors out; sends over real HTTP.

The inbound fixtures are the shapes of the jambonz plug-in's README (JSON) and of its first
version (key=value lines). 382's send answers are not published: the answer fixtures are
the plain-text shapes the provider has to tell apart, not recordings.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

import aiohttp
import pytest
from starlette.requests import Request

from smsbridge.core.errors import MalformedWebhook, ProviderError
from smsbridge.core.messages import Media, MessageStatus, OutboundMessage
from smsbridge.providers import UNSIGNED, WebhookRequest, get_provider_class
from smsbridge.providers.com382.provider import Com382Config, Com382Provider
from smsbridge.testing.server import RunningServer, start_server
from tests.providers.replay import Replay, serve_replay

FIXTURES = Path(__file__).parent / "fixtures"
USERNAME = "acme382"
PASSWORD = "S3cr3t&pass=word+#?%"  # every character the plug-in's encodeURI mishandled
INBOUND_URL = "https://sms.example.com/v1/carriers/382com/Zq3kP9wX/inbound"
STATUS_URL = "https://sms.example.com/v1/carriers/382com/Zq3kP9wX/status"


def make_provider(**options: Any) -> Com382Provider:
    return Com382Provider(Com382Config(username=USERNAME, password=PASSWORD, **options))


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def changed(name: str, **values: Any) -> bytes:
    """A JSON fixture with keys replaced (``...`` deletes the key)."""
    document = json.loads(raw(name))
    for key, value in values.items():
        if value is ...:
            del document[key]
        else:
            document[key] = value
    return json.dumps(document).encode()


def post(body: bytes, content_type: str = "application/json") -> WebhookRequest:
    headers = {"content-type": content_type} if content_type else {}
    return WebhookRequest("POST", INBOUND_URL, headers, [], body)


def test_registered_under_its_key_and_declared_unsigned() -> None:
    cls = get_provider_class("382com")
    assert cls is Com382Provider
    assert cls.capabilities.signature == UNSIGNED and cls.contract_problems() == []
    assert not cls.capabilities.delivery_receipts


# --- inbound ------------------------------------------------------------------------------

JSON = "application/json"
TEXT = "text/plain"
FORM = "application/x-www-form-urlencoded"
PICTURE = "http://picmsg.org/4f1c9a7e2b.jpg"

INBOUND_CASES = [
    pytest.param(raw("inbound_sms.json"), JSON, {
        "from_number": "+15083084809", "to_number": "+13393646057", "text": "Hello there",
        "media": ()}, id="json-sms"),
    pytest.param(raw("inbound_mms.json"), JSON, {
        "from_number": "+15083084809", "to_number": "+13393646057", "text": "",
        "media": (Media("image/jpeg", PICTURE),)}, id="json-mms-url-in-message"),
    pytest.param(raw("inbound_sms.json"), TEXT, {"text": "Hello there"},
                 id="json-sent-as-text-plain"),
    pytest.param(raw("inbound_sms.json"), "", {"text": "Hello there"},
                 id="json-without-content-type"),
    pytest.param(changed("inbound_sms.json", message=PICTURE), JSON, {
        "text": PICTURE, "media": ()}, id="json-sms-that-is-a-link-stays-text"),
    pytest.param(changed("inbound_mms.json", type="MMS"), JSON, {
        "media": (Media("image/jpeg", PICTURE),)}, id="type-in-capitals"),
    pytest.param(changed("inbound_mms.json", message="https://picmsg.org/clip"), JSON, {
        "media": (Media("application/octet-stream", "https://picmsg.org/clip"),)},
                 id="media-type-unknown-without-extension"),
    pytest.param(changed("inbound_sms.json", type=...), JSON, {"text": "Hello there"},
                 id="json-without-type"),
    pytest.param(changed("inbound_sms.json", source=5083084809), JSON, {
        "from_number": "+15083084809"}, id="number-as-json-number"),
    pytest.param(changed("inbound_sms.json", source="+15083084809", destination="13393646057"),
                 JSON, {"from_number": "+15083084809", "to_number": "+13393646057"},
                 id="numbers-with-country-code"),
    pytest.param(changed("inbound_sms.json", source="72345"), JSON, {"from_number": "72345"},
                 id="short-code-kept"),
    pytest.param(changed("inbound_sms.json", message="A & B = C + D # E ? F % 🎉"), JSON, {
        "text": "A & B = C + D # E ? F % 🎉"}, id="json-special-characters"),
    pytest.param(changed("inbound_sms.json", message=""), JSON, {"text": ""},
                 id="empty-sms"),
    pytest.param(raw("inbound_lines_sms.txt"), TEXT, {
        "from_number": "+15083084809", "to_number": "+13393646057", "text": "ARM SV",
        "media": ()}, id="lines-sms"),
    pytest.param(raw("inbound_lines_mms.txt"), TEXT, {
        "text": "", "media": (Media("image/jpeg", PICTURE),)}, id="lines-url-is-media"),
    pytest.param(raw("inbound_lines_multiline.txt"), TEXT, {
        "text": "Gate code: 4=2+2\nsee you at 6"}, id="lines-crlf-multiline-text-with-equals"),
    pytest.param(raw("inbound_lines_sms.txt"), FORM, {"text": "ARM SV"},
                 id="lines-labelled-as-form"),
    pytest.param(raw("inbound_form.txt"), FORM, {
        "from_number": "+15083084809", "to_number": "+13393646057",
        "text": "Front door & garage = open"}, id="form-encoded"),
    pytest.param(raw("inbound_form.txt"), "", {"text": "Front door & garage = open"},
                 id="form-without-content-type"),
]


@pytest.mark.parametrize(("body", "content_type", "expected"), INBOUND_CASES)
def test_parse_inbound(body: bytes, content_type: str, expected: dict[str, Any]) -> None:
    [message] = make_provider().parse_inbound(post(body, content_type))
    for attribute, value in expected.items():
        assert getattr(message, attribute) == value, attribute


def test_each_webhook_gets_a_new_id_so_two_identical_texts_are_two_messages() -> None:
    provider = make_provider()
    first, second = (provider.parse_inbound(post(raw("inbound_sms.json")))[0]
                     for _ in range(2))
    assert first.carrier_message_id.startswith("382com-")
    assert first.carrier_message_id != second.carrier_message_id


MALFORMED_INBOUND = [
    pytest.param(b"", JSON, "empty", id="empty-body"),
    pytest.param(b"  \n", TEXT, "empty", id="blank-body"),
    pytest.param(b'{"source": "5083084809",', JSON, "not valid JSON", id="broken-json"),
    pytest.param(b'["5083084809"]', JSON, "must be an object", id="json-array"),
    pytest.param(changed("inbound_sms.json", source=...), JSON, "'source'", id="no-source"),
    pytest.param(changed("inbound_sms.json", destination=""), JSON, "'destination'",
                 id="empty-destination"),
    pytest.param(changed("inbound_sms.json", message=...), JSON, "'message'", id="no-message"),
    pytest.param(changed("inbound_sms.json", message=42), JSON, "'message' must be a string",
                 id="message-not-a-string"),
    pytest.param(changed("inbound_sms.json", type="fax"), JSON, "'type'", id="unknown-type"),
    pytest.param(changed("inbound_mms.json", message="look at this"), JSON, "URL",
                 id="mms-without-a-url"),
    pytest.param(changed("inbound_sms.json", source="not a number"), JSON, "'source'",
                 id="bad-source"),
    pytest.param(b"source=5083084809\ndestination=3393646057\n", TEXT, "'message'",
                 id="lines-without-message"),
    pytest.param(b"destination=3393646057&message=hi", FORM, "'source'",
                 id="form-without-source"),
    pytest.param("message=caf\u00e9".encode("latin-1"), TEXT, "UTF-8", id="not-utf8"),
]


@pytest.mark.parametrize(("body", "content_type", "names"), MALFORMED_INBOUND)
def test_malformed_inbound_names_the_field(body: bytes, content_type: str, names: str) -> None:
    with pytest.raises(MalformedWebhook, match=names):
        make_provider().parse_inbound(post(body, content_type))


def test_inbound_reply_is_a_plain_empty_200() -> None:
    reply = make_provider().inbound_reply([])
    assert (reply.status, reply.body) == (200, b"")
    assert reply.content_type.startswith("text/plain")


def test_there_are_no_status_callbacks() -> None:
    with pytest.raises(MalformedWebhook, match="no status callbacks"):
        make_provider().parse_status(post(raw("inbound_sms.json")))


def test_verify_lets_any_request_through_the_url_token_guards_it() -> None:
    make_provider().verify(post(raw("inbound_sms.json")))


# --- config and setup ---------------------------------------------------------------------

def test_config_never_shows_the_password() -> None:
    config = Com382Config(username=USERNAME, password=PASSWORD)
    assert PASSWORD not in repr(config) and PASSWORD not in str(config.model_dump())


def test_config_refuses_unknown_keys() -> None:
    with pytest.raises(ValueError, match="api_key"):
        Com382Config(username=USERNAME, password=PASSWORD, api_key="x")  # type: ignore[call-arg]


URL_ERROR = r"\nurl\n(?s:.*)"  # pydantic names the field on its own line


@pytest.mark.parametrize(("options", "names"), [
    pytest.param({"url": "secure1.382com.com/sendsms.cgi"}, URL_ERROR + "http",
                 id="no-scheme"),
    pytest.param({"url": "ftp://secure1.382com.com/sendsms.cgi"}, URL_ERROR + "http",
                 id="not-http"),
    pytest.param({"url": "https://secure1.382com.com/sendsms.cgi?user=me"}, URL_ERROR + "query",
                 id="with-query"),
    pytest.param({"base_url": "127.0.0.1:9382"}, "base_url", id="base-url-without-scheme"),
    pytest.param({"base_url": "http://127.0.0.1:99999"}, "base_url", id="port-out-of-range"),
])
def test_config_refuses_a_bad_url(options: dict[str, str], names: str) -> None:
    with pytest.raises(ValueError, match=names):
        Com382Config(username=USERNAME, password=PASSWORD, **options)


@pytest.mark.parametrize(("options", "expected"), [
    pytest.param({}, "https://secure1.382com.com/sendsms.cgi", id="default"),
    pytest.param({"url": "https://secure2.382com.com/cgi-bin/sendsms.cgi"},
                 "https://secure2.382com.com/cgi-bin/sendsms.cgi", id="own-url"),
    pytest.param({"base_url": "http://127.0.0.1:9382/"}, "http://127.0.0.1:9382/sendsms.cgi",
                 id="base-url-replaces-scheme-and-host"),
    pytest.param({"url": "https://secure2.382com.com/cgi-bin/sendsms.cgi",
                  "base_url": "http://proxy.local/382"},
                 "http://proxy.local/382/cgi-bin/sendsms.cgi", id="base-url-keeps-the-path"),
])
def test_send_url(options: dict[str, str], expected: str) -> None:
    assert make_provider(**options).send_url == expected


def test_setup_hint_names_the_inbound_url_and_no_status_url() -> None:
    hint = make_provider().setup_hint(INBOUND_URL, STATUS_URL)
    assert hint is not None and INBOUND_URL in hint and STATUS_URL not in hint


# --- send: exact requests and answers over real HTTP ---------------------------------------

def path_and_query(request: Request, raw_body: bytes) -> tuple[str, str]:
    """Keep the path and the query string exactly as it came over the wire."""
    return request.url.path, request.scope["query_string"].decode("ascii")


@pytest.fixture(scope="module")
def replay_server() -> Iterator[tuple[Replay, RunningServer]]:
    """sendsms.cgi answers GET: 200 OK by default."""
    yield from serve_replay(Replay(200, "text/plain", path_and_query, b"OK\n"), ("GET",))


@pytest.fixture
def replay_provider(replay_server: tuple[Replay, RunningServer]) -> Com382Provider:
    return make_provider(base_url=replay_server[1].url)


def query(**values: str) -> str:
    """The query the provider must send: user, pass, then ``values``, each %-escaped."""
    pairs = {"user": USERNAME, "pass": PASSWORD, **values}
    return "&".join(f"{key}={quote(value, safe='')}" for key, value in pairs.items())


PICTURE_OUT = "https://cdn.example.com/cam1.jpg?size=large&v=2"
SMS = OutboundMessage("msg_1", "+15145550100", "+14385550123", "Porch motion at 02:14")
TRICKY = OutboundMessage("msg_2", "+15145550100", "+14385550123",
                         "Tom & Jerry: 2+2=4? #1 at 100% \U0001f389\nline two")
MMS_ONLY = OutboundMessage("msg_3", "+15145550100", "+14385550123", "",
                           (Media("image/jpeg", PICTURE_OUT),))
BOTH = OutboundMessage("msg_4", "+15145550100", "+14385550123", "Snapshot",
                       (Media("image/jpeg", PICTURE_OUT),))
BLANK_WITH_PICTURE = OutboundMessage("msg_5", "+15145550100", "+14385550123", "  ",
                                     (Media("image/jpeg", PICTURE_OUT),))

SEND_CASES = [
    pytest.param(SMS, [{"message": "Porch motion at 02:14"}], id="sms"),
    pytest.param(TRICKY, [{"message": TRICKY.text}], id="text-with-query-characters"),
    pytest.param(MMS_ONLY, [{"file_url": PICTURE_OUT}], id="picture-only"),
    pytest.param(BOTH, [{"message": "Snapshot"}, {"file_url": PICTURE_OUT}],
                 id="text-then-picture"),
    pytest.param(BLANK_WITH_PICTURE, [{"file_url": PICTURE_OUT}], id="blank-text-not-sent"),
]


@pytest.mark.parametrize(("message", "parts"), SEND_CASES)
async def test_send_makes_the_exact_requests(replay: Replay, replay_provider: Com382Provider,
                                             http: aiohttp.ClientSession,
                                             message: OutboundMessage,
                                             parts: list[dict[str, str]]) -> None:
    result = await replay_provider.send(message, http)
    assert (result.carrier_message_id, result.status) == (message.id, MessageStatus.SENT)
    numbers = {"source": "5145550100", "destination": "4385550123"}
    assert replay.seen == [("/sendsms.cgi", query(**numbers, **part)) for part in parts]
    # Read back as a CGI reads a query, every value comes out whole.
    for (_, seen), part in zip(replay.seen, parts, strict=True):
        assert dict(parse_qsl(seen)) == {"user": USERNAME, "pass": PASSWORD, **numbers, **part}


def test_send_time_is_one_request_or_two_for_text_and_picture() -> None:
    provider = make_provider(timeout_seconds=12)
    assert provider.max_send_seconds(SMS) == provider.max_send_seconds(MMS_ONLY) == 12
    assert provider.max_send_seconds(BOTH) == provider.max_send_seconds() == 24


@pytest.mark.parametrize(("message", "code"), [
    pytest.param(OutboundMessage("msg_6", "+15145550100", "+14385550123", "x",
                                 (Media("image/png", data_base64="iVBORw0KGgo="),)),
                 "inline_media", id="inline-media"),
    pytest.param(OutboundMessage("msg_7", "+15145550100", "+14385550123", "x",
                                 (Media("image/png", "https://cdn.example.com/a.png"),
                                  Media("image/png", "https://cdn.example.com/b.png"))),
                 "too_many_media", id="two-pictures"),
    pytest.param(OutboundMessage("msg_8", "+442079460000", "+14385550123", "x"),
                 "invalid_from", id="sender-outside-nanp"),
    pytest.param(OutboundMessage("msg_9", "+15145550100", "+14385550123", " "),
                 "empty_message", id="nothing-to-send"),
])
async def test_unsendable_message_is_refused_without_a_request(
        replay: Replay, replay_provider: Com382Provider, http: aiohttp.ClientSession,
        message: OutboundMessage, code: str) -> None:
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(message, http)
    assert (caught.value.retryable, caught.value.code) == (False, code)
    assert replay.seen == []


@pytest.mark.parametrize("name", ["answer_ok.txt", "answer_empty.txt"])
async def test_a_200_answer_is_accepted_under_our_own_id(
        replay: Replay, replay_provider: Com382Provider, http: aiohttp.ClientSession,
        name: str) -> None:
    replay.load(FIXTURES / name, 200)
    result = await replay_provider.send(SMS, http)
    assert (result.carrier_message_id, result.status) == ("msg_1", MessageStatus.SENT)


SEND_ERRORS = [
    pytest.param("answer_error.txt", 200, {}, False, "refused", None,
                 "382com refused the message: ERROR: Invalid destination number",
                 id="200-error-line"),
    pytest.param("answer_error.json", 200, {}, False, "refused", None,
                 '382com refused the message: {"status": "error", "message": "Invalid login"}',
                 id="200-json-error"),
    pytest.param("error_401.txt", 401, {}, False, "http_401", None,
                 "382com: HTTP 401 (Unauthorized)", id="401"),
    pytest.param("error_429.txt", 429, {"Retry-After": "7"}, True, "http_429", 7.0,
                 "382com: HTTP 429 (Too many requests, slow down)", id="429-retry-after"),
    pytest.param("error_500.html", 500, {}, True, "http_500", None, "382com: HTTP 500",
                 id="500-html-page"),
    pytest.param("error_503.txt", 503, {}, True, "http_503", None,
                 "382com: HTTP 503 (Service temporarily unavailable)", id="503"),
]


@pytest.mark.parametrize(("name", "status", "headers", "retryable", "code", "retry_after",
                          "reason"), SEND_ERRORS)
async def test_send_error_mapping(replay: Replay, replay_provider: Com382Provider,
                                  http: aiohttp.ClientSession, name: str, status: int,
                                  headers: dict[str, str], retryable: bool, code: str,
                                  retry_after: float | None, reason: str) -> None:
    replay.load(FIXTURES / name, status, **headers)
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(SMS, http)
    error = caught.value
    assert (error.retryable, error.code, error.retry_after, error.reason) == (
        retryable, code, retry_after, reason)


class FailSecond:
    """Answers the first request 200 OK and every later one 503."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        status, body = (200, b"OK") if self.calls == 1 else (503, b"busy")
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})


async def test_picture_failing_after_the_text_is_not_retried(
        http: aiohttp.ClientSession) -> None:
    app = FailSecond()
    server = start_server(app, lifespan="off")
    try:
        with pytest.raises(ProviderError) as caught:
            await make_provider(base_url=server.url).send(BOTH, http)
    finally:
        server.stop()
    assert app.calls == 2
    assert (caught.value.retryable, caught.value.code) == (False, "http_503")
    assert caught.value.reason.startswith("382com sent the text but not the picture")


async def test_text_failing_first_keeps_its_retryable_error(
        replay: Replay, replay_provider: Com382Provider, http: aiohttp.ClientSession) -> None:
    replay.load(FIXTURES / "error_503.txt", 503)
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(BOTH, http)
    assert (caught.value.retryable, caught.value.code) == (True, "http_503")
    assert len(replay.seen) == 1  # the picture is not tried after the text failed


def assert_no_credentials(text: str) -> None:
    for secret in (PASSWORD, quote(PASSWORD, safe=""), USERNAME):
        assert secret not in text


async def test_credentials_echoed_by_a_failing_request_are_masked(
        replay: Replay, replay_provider: Com382Provider, http: aiohttp.ClientSession) -> None:
    # The carrier quotes the request back: the query as sent, and the decoded password.
    replay.status = 400
    replay.body = (f"Bad request: user={USERNAME}&pass={quote(PASSWORD, safe='')}"
                   f" ({PASSWORD})").encode()
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(SMS, http)
    assert caught.value.code == "http_400" and "***" in caught.value.reason
    assert_no_credentials(caught.value.reason)


async def test_credentials_in_a_refusal_are_masked(
        replay: Replay, replay_provider: Com382Provider, http: aiohttp.ClientSession) -> None:
    replay.body = f"ERROR: wrong pass {PASSWORD} for {USERNAME}".encode()
    with pytest.raises(ProviderError) as caught:
        await replay_provider.send(SMS, http)
    assert caught.value.reason == "382com refused the message: ERROR: wrong pass *** for ***"


async def test_unreachable_carrier_is_retryable_and_names_no_credentials(
        http: aiohttp.ClientSession) -> None:
    provider = make_provider(base_url="http://127.0.0.1:9", timeout_seconds=2)
    with pytest.raises(ProviderError) as caught:
        await provider.send(SMS, http)
    assert (caught.value.retryable, caught.value.code) == (True, "connection_error")
    assert_no_credentials(caught.value.reason)

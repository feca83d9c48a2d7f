"""Hostile and odd input over HTTP: keyless clients, NUL, half emojis, deep JSON, long URLs.

Each test sends what a stranger, a buggy client or a carrier really sends, and checks the
answer a user would see: the status, the problem document, and what was (not) stored.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from smsbridge.testing.fake_twilio import FakeTwilio
from tests.conftest import make_settings
from tests.harness import GatewayHarness

SANDBOX = {"name": "sandbox", "carrier": "sandbox", "numbers": ["+15555550100"],
           "settings": {"delivery_receipts": False}}
OK = {"from": "+15555550100", "to": "+15145550111", "text": "hello"}
FIXTURES = Path(__file__).parent.parent / "providers"
HALF_EMOJI = "\ud83d"  # the first half of U+1F600's surrogate pair


def start(start_gateway: Any, database: str, connections: list[dict[str, Any]] | None = None,
          **server: Any) -> GatewayHarness:
    """A gateway on ``database`` with [server] keys overridden."""
    settings = make_settings(database, connections or [SANDBOX])
    if server:
        settings.config.server = settings.server.model_copy(update=server)
    return start_gateway(settings)


@pytest.fixture
def gw(sqlite_url: str, start_gateway: Any) -> GatewayHarness:
    return start(start_gateway, sqlite_url)


async def raw_request(gw: GatewayHarness, head: str, body: bytes = b"",
                      timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Send ``head`` (and ``body``) on a fresh connection; read the answer until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.server.port)
    try:
        writer.write(head.encode("latin-1") + body)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    header_block, _, payload = rest.partition(b"\r\n\r\n")
    headers = {}
    for line in header_block.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, payload


async def problem_of(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    """The problem document of an error answer (checking that it is one)."""
    assert resp.content_type == "application/problem+json", await resp.text()
    body: dict[str, Any] = await resp.json(content_type=None)
    assert body["status"] == resp.status
    return body


# ------------------------------------------------------------------ keyless clients


@pytest.mark.parametrize("authorization", [None, "Bearer sbk_not-a-real-key"])
async def test_keyless_send_is_refused_from_its_headers_alone(
        gw: GatewayHarness, authorization: str | None) -> None:
    # A 9.6 MB body is announced but never sent: an answer can only come from the headers.
    head = ("POST /v1/messages HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
            "Content-Length: 9600000\r\n")
    if authorization:
        head += f"Authorization: {authorization}\r\n"
    status, headers, payload = await raw_request(gw, head + "\r\n")
    assert status == 401
    assert headers["content-type"] == "application/problem+json"
    assert headers["www-authenticate"].startswith("Bearer")
    assert headers["connection"] == "close"
    assert json.loads(payload)["type"] == "urn:smsbridge:problem:unauthorized"


async def test_invalid_json_without_a_key_is_401_and_with_a_key_422(
        gw: GatewayHarness, http: aiohttp.ClientSession) -> None:
    json_type = {"Content-Type": "application/json"}
    async with http.post(f"{gw.url}/v1/messages", data=b"{not json", headers=json_type) as resp:
        assert resp.status == 401
        assert (await problem_of(resp))["title"] == "Unauthorized"
    async with http.post(f"{gw.url}/v1/messages", data=b"{not json",
                         headers={**json_type, **gw.auth}) as resp:
        assert resp.status == 422
        assert (await problem_of(resp))["errors"] == [
            {"field": "body", "reason": "is not valid JSON"}]


@pytest.mark.parametrize("body", [
    pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested-arrays"),
    pytest.param(json.dumps({**OK, "text": "x"}).replace('"x"', "[" * 5000 + "]" * 5000)
                 .encode(), id="nested-in-a-field"),
    pytest.param(b'{"a":' * 50_000 + b"1" + b"}" * 50_000, id="nested-objects"),
])
async def test_deeply_nested_json_is_422_not_500(gw: GatewayHarness, http: aiohttp.ClientSession,
                                                 body: bytes) -> None:
    async with http.post(f"{gw.url}/v1/messages", data=body,
                         headers={**gw.auth, "Content-Type": "application/json"}) as resp:
        assert resp.status == 422
        problem = await problem_of(resp)
    assert problem["errors"] == [{"field": "body", "reason": "nests too deeply"}]
    assert (await gw.list_messages(http))["data"] == []


async def test_large_valid_body_is_still_accepted(gw: GatewayHarness,
                                                  http: aiohttp.ClientSession) -> None:
    # Over the size parsed on a worker thread, under the body limit: a normal send.
    import base64

    picture = base64.b64encode(b"\x89PNG" + b"\x00" * 3_000_000).decode()
    status, message = await gw.send(http, {**OK, "media": [
        {"data": picture, "content_type": "image/png"}]})
    assert status == 202, message
    assert message["media"] == [{"content_type": "image/png", "size": 3_000_004}]


# ------------------------------------------------------------------ NUL in ids and filters


@pytest.mark.parametrize(("path", "field"), [
    ("/v1/messages/msg_%00abc", "message_id"),
    ("/v1/messages?connection=sand%00box", "connection"),
    ("/v1/messages?number=%2B1514555%000111", "number"),
    ("/v1/messages?cursor=abc%00", "cursor"),
    ("/v1/messages?status=sent%00", "status"),
    ("/v1/messages?direction=%00", "direction"),
    ("/v1/webhook-deliveries?message_id=msg_%00", "message_id"),
    ("/v1/webhook-deliveries?status=%00failed", "status"),
])
async def test_nul_in_an_id_or_filter_is_422_naming_it(
        database_url: str, start_gateway: Any, http: aiohttp.ClientSession,
        path: str, field: str) -> None:
    gw = start(start_gateway, database_url)
    async with http.get(f"{gw.url}{path}", headers=gw.auth) as resp:
        assert resp.status == 422
        problem = await problem_of(resp)
    assert problem["errors"][0]["field"] == field
    assert "NUL" in problem["errors"][0]["reason"]


@pytest.mark.parametrize("field", ["from", "to", "connection"])
async def test_nul_in_a_send_field_is_422_naming_it(
        database_url: str, start_gateway: Any, http: aiohttp.ClientSession, field: str) -> None:
    gw = start(start_gateway, database_url)
    body = {**OK, "connection": "sandbox"}
    body[field] = body[field][:4] + "\x00" + body[field][4:]
    async with http.post(f"{gw.url}/v1/messages", json=body, headers=gw.auth) as resp:
        assert resp.status == 422
        problem = await problem_of(resp)
    assert problem["errors"][0]["field"] == field
    assert "U+0000" in problem["errors"][0]["reason"]
    assert (await gw.list_messages(http))["data"] == []


async def test_half_an_emoji_in_sent_text_is_stored_as_a_replacement_character(
        database_url: str, start_gateway: Any, http: aiohttp.ClientSession) -> None:
    gw = start(start_gateway, database_url)
    body = json.dumps({**OK, "text": "smile " + HALF_EMOJI})  # JSON: "smile \ud83d"
    async with http.post(f"{gw.url}/v1/messages", data=body,
                         headers={**gw.auth, "Content-Type": "application/json"}) as resp:
        assert resp.status == 202, await resp.text()
        queued = await resp.json()
    assert queued["text"] == "smile \ufffd"
    assert (await gw.get_message(http, queued["id"]))["text"] == "smile \ufffd"


# ------------------------------------------------------------------ carrier webhooks


async def test_sandbox_inbound_with_half_an_emoji_is_stored(
        database_url: str, start_gateway: Any, http: aiohttp.ClientSession) -> None:
    gw = start(start_gateway, database_url)
    payload = json.loads((FIXTURES / "sandbox/fixtures/inbound_sms.json").read_text())
    # 70 UCS-2 units: the emoji was split where the carrier's first segment ended.
    payload["text"] = "é" * 5 + "ç" * 64 + HALF_EMOJI
    body = json.dumps(payload)
    assert "\\ud83d" in body
    for _ in range(2):  # a retry of the same webhook is acknowledged, and stored once
        async with http.post(f"{gw.url}{gw.inbound_path('sandbox')}", data=body,
                             headers={"Content-Type": "application/json"}) as resp:
            assert resp.status == 200, await resp.text()
    (message,) = (await gw.list_messages(http, direction="inbound"))["data"]
    assert message["text"] == "é" * 5 + "ç" * 64 + "\ufffd"
    assert (message["encoding"], message["segments"]) == ("UCS-2", 1)


async def test_voipms_json_webhook_with_half_an_emoji_is_stored(
        database_url: str, start_gateway: Any, http: aiohttp.ClientSession) -> None:
    from smsbridge.testing.fake_voipms import FakeVoipms

    gw = start(start_gateway, database_url, [voipms_connection()])
    status, _ = await FakeVoipms().fire_webhook(
        f"{gw.url}{gw.inbound_path('voipms')}", from_="+14385550123", to="+15145550100",
        message="on my way " + HALF_EMOJI, id="987654321")
    assert status == 200
    (message,) = (await gw.list_messages(http, direction="inbound"))["data"]
    assert message["text"] == "on my way \ufffd"


async def test_voipms_json_webhook_with_half_an_emoji_as_the_sender_is_400(
        sqlite_url: str, start_gateway: Any, http: aiohttp.ClientSession) -> None:
    from smsbridge.testing.fake_voipms import FakeVoipms

    gw = start(start_gateway, sqlite_url, [voipms_connection()])
    status, text = await FakeVoipms().fire_webhook(
        f"{gw.url}{gw.inbound_path('voipms')}", from_="+1438555" + HALF_EMOJI, to="+15145550100",
        message="hi", id="987654322")
    assert status == 400, text
    assert json.loads(text)["title"] == "Malformed webhook"


def voipms_connection() -> dict[str, Any]:
    """A VoIP.ms connection; nothing is sent, so its API is never called."""
    return {"name": "voipms", "carrier": "voipms", "numbers": ["+15145550100"],
            "settings": {"username": "me@example.com", "api_password": "s3cret-api-pass",
                         "base_url": "http://127.0.0.1:9"}}


@pytest.mark.parametrize(("field", "value"), [
    ("from", "4385550%00123"), ("to", "51455501%0000"), ("id", "1234%0056789"),
    ("id", "123456789%1B"),
])
async def test_voipms_callback_with_a_control_character_in_an_id_is_400(
        database_url: str, start_gateway: Any, http: aiohttp.ClientSession,
        caplog: pytest.LogCaptureFixture, field: str, value: str) -> None:
    gw = start(start_gateway, database_url, [voipms_connection()])
    params = dict(pair.split("=", 1) for pair in
                  (FIXTURES / "voipms/fixtures/callback_plain.query").read_text().strip()
                  .split("&"))
    params[field] = value
    query = "&".join(f"{k}={v}" for k, v in params.items())
    with caplog.at_level(logging.WARNING, logger="smsbridge.api"):
        async with http.get(f"{gw.url}{gw.inbound_path('voipms')}?{query}") as resp:
            assert resp.status == 400
            problem = await problem_of(resp)
    assert problem["title"] == "Malformed webhook"
    assert any("malformed inbound webhook" in r.getMessage() for r in caplog.records)
    assert (await gw.list_messages(http))["data"] == []


@pytest.mark.parametrize("field", ["from_", "to", "message_sid"])
async def test_signed_twilio_inbound_with_nul_in_an_id_is_400(
        database_url: str, start_gateway: Any, http: aiohttp.ClientSession, field: str) -> None:
    fake = FakeTwilio()
    gw = start(start_gateway, database_url, [{
        "name": "twilio", "carrier": "twilio", "numbers": ["+15145550100"],
        "settings": {"account_sid": fake.account_sid, "auth_token": fake.auth_token,
                     "base_url": "http://127.0.0.1:9"}}])
    ids = {"from_": "+14385550123", "to": "+15145550100",
           "message_sid": "SM" + "0f" * 16}
    ids[field] = ids[field][:5] + "\x00" + ids[field][5:]
    status, _, body = await fake.fire_inbound(f"{gw.url}{gw.inbound_path('twilio')}",
                                              body="ARM SV", **ids)
    assert status == 400, body
    assert json.loads(body)["title"] == "Malformed webhook"
    assert (await gw.list_messages(http))["data"] == []


async def test_sandbox_status_with_nul_in_the_message_id_is_400(
        database_url: str, start_gateway: Any, http: aiohttp.ClientSession) -> None:
    gw = start(start_gateway, database_url)
    receipt = json.loads((FIXTURES / "sandbox/fixtures/status_delivered.json").read_text())
    receipt["id"] = "sbx-\x005c1f"
    async with http.post(f"{gw.url}{gw.status_path('sandbox')}", json=receipt) as resp:
        assert resp.status == 400
        assert "U+0000" in (await problem_of(resp))["detail"]


@pytest.mark.parametrize("path", ["inbound", "status"])
async def test_webhook_the_provider_cannot_parse_is_400_with_a_log_line(
        database_url: str, start_gateway: Any, http: aiohttp.ClientSession,
        caplog: pytest.LogCaptureFixture, path: str) -> None:
    gw = start(start_gateway, database_url)
    webhook = gw.inbound_path("sandbox") if path == "inbound" else gw.status_path("sandbox")
    url = f"{gw.url}{webhook}"
    nested = b'{"id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with caplog.at_level(logging.WARNING, logger="smsbridge.api"):
        for _ in range(2):  # the carrier's retry gets the same answer: it will stop retrying
            async with http.post(url, data=nested,
                                 headers={"Content-Type": "application/json"}) as resp:
                assert resp.status == 400
                await problem_of(resp)
    lines = [r.getMessage() for r in caplog.records if r.name == "smsbridge.api"]
    assert any(f"malformed {path} webhook" in line and "RecursionError" in line
               for line in lines), lines
    assert (await gw.list_messages(http))["data"] == []


# ------------------------------------------------------------------ size limits


async def chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    """``total`` bytes as a chunked body (no Content-Length)."""
    while total > 0:
        yield b"x" * min(size, total)
        total -= size


async def test_chunked_body_over_the_limit_is_413_on_the_api_and_on_webhooks(
        sqlite_url: str, start_gateway: Any, http: aiohttp.ClientSession) -> None:
    gw = start(start_gateway, sqlite_url, max_body_bytes=200_000, max_webhook_bytes=100_000)
    targets = [(f"{gw.url}/v1/messages", gw.auth, 200_000),
               (f"{gw.url}{gw.inbound_path('sandbox')}", {}, 100_000)]
    for url, headers, limit in targets:
        async with http.post(url, data=chunks(limit + 70_000),
                             headers={**headers, "Content-Type": "application/json"}) as resp:
            assert resp.request_info.headers.get("Transfer-Encoding") == "chunked"
            assert resp.status == 413
            problem = await problem_of(resp)
        assert problem["title"] == "Request body too large"
        assert str(limit) in problem["detail"]
    assert (await gw.list_messages(http))["data"] == []


@pytest.mark.parametrize("length", [40_000, 100_000, 1_000_000])
async def test_oversize_url_is_a_414_problem(gw: GatewayHarness, length: int) -> None:
    for path in ("/v1/messages?number=", f"{gw.inbound_path('sandbox')}?x="):
        head = (f"GET {path}{'1' * length} HTTP/1.1\r\nHost: gateway\r\n"
                f"Authorization: Bearer {gw.api_key}\r\n\r\n")
        status, headers, payload = await raw_request(gw, head)
        assert status == 414
        assert headers["content-type"] == "application/problem+json"
        assert json.loads(payload)["type"] == "urn:smsbridge:problem:uri-too-long"


async def test_oversize_url_is_a_414_problem_under_h11_too(
        sqlite_url: str, start_gateway: Any) -> None:
    # Served by h11 (uvicorn without httptools), with room in its head limit for the URL:
    # the app itself answers the 414.
    gw = start_gateway(make_settings(sqlite_url, [SANDBOX]), http="h11",
                       h11_max_incomplete_event_size=256 * 1024)
    for path in ("/v1/messages?number=", f"{gw.inbound_path('sandbox')}?x="):
        head = (f"GET {path}{'1' * 40_000} HTTP/1.1\r\nHost: gateway\r\n"
                f"Authorization: Bearer {gw.api_key}\r\n\r\n")
        status, headers, payload = await raw_request(gw, head)
        assert status == 414
        assert headers["content-type"] == "application/problem+json"
        assert json.loads(payload)["type"] == "urn:smsbridge:problem:uri-too-long"


async def test_a_long_webhook_url_under_the_limit_is_served(
        gw: GatewayHarness, http: aiohttp.ClientSession) -> None:
    # A GET callback with 1,600 characters of percent-encoded emoji: ~19 kB of URL.
    text = quote("\U0001f600" * 1600, safe="")
    async with http.get(f"{gw.url}{gw.inbound_path('sandbox')}?text={text}") as resp:
        assert resp.status != 414


# ------------------------------------------------------------------ media URLs


PRIVATE_MEDIA = ["http://127.0.0.1:8123/local/snap.jpg", "http://169.254.169.254/latest.jpg",
                 "http://[::1]/a.png", "http://10.0.0.7/cam.jpg", "https://192.168.1.20/p.jpg",
                 "http://[fc00::1]/a.jpg", "http://localhost/a.jpg", "http://nas.localhost/a.jpg",
                 "http://0.0.0.0/a.jpg", "http://2130706433/a.jpg", "http://224.0.0.1/a.jpg",
                 "http://[::ffff:10.0.0.1]/a.jpg"]


@pytest.mark.parametrize("url", PRIVATE_MEDIA)
async def test_media_url_on_a_private_address_is_422(
        gw: GatewayHarness, http: aiohttp.ClientSession, url: str) -> None:
    body = {**OK, "media": [{"url": "https://cdn.example.com/ok.jpg"}, {"url": url}]}
    async with http.post(f"{gw.url}/v1/messages", json=body, headers=gw.auth) as resp:
        assert resp.status == 422
        problem = await problem_of(resp)
    assert problem["errors"][0]["field"] == "media[1].url"
    assert "allow_private_media" in problem["errors"][0]["reason"]
    assert (await gw.list_messages(http))["data"] == []


async def test_private_media_urls_pass_when_the_deployment_allows_them(
        sqlite_url: str, start_gateway: Any, http: aiohttp.ClientSession) -> None:
    gw = start(start_gateway, sqlite_url, allow_private_media=True)
    urls = ["http://127.0.0.1:8123/local/snap.jpg", "http://192.168.1.20/porch.jpg"]
    status, message = await gw.send(http, {**OK, "media": [{"url": u} for u in urls]})
    assert status == 202, message
    assert [m["url"] for m in message["media"]] == urls


async def test_public_media_url_is_accepted_by_default(
        gw: GatewayHarness, http: aiohttp.ClientSession) -> None:
    status, message = await gw.send(http, {**OK, "media": [
        {"url": "https://93.184.215.14/snap.jpg"}, {"url": "https://cdn.example.com/a.png"}]})
    assert status == 202, message


@pytest.mark.parametrize(("field", "value"), [("from", "A" * 33), ("id", "sbx-" + "9" * 125)])
async def test_inbound_id_longer_than_any_carrier_uses_is_400(
        database_url: str, start_gateway: Any, http: aiohttp.ClientSession, field: str,
        value: str) -> None:
    # PostgreSQL refused such a row with an error on every retry of the carrier.
    gw = start(start_gateway, database_url)
    payload = json.loads((FIXTURES / "sandbox/fixtures/inbound_sms.json").read_text())
    payload[field] = value
    for _ in range(2):
        async with http.post(f"{gw.url}{gw.inbound_path('sandbox')}", json=payload) as resp:
            assert resp.status == 400
            assert "characters" in (await problem_of(resp))["detail"]
    assert (await gw.list_messages(http))["data"] == []


async def test_receipt_with_an_overlong_message_id_is_400(
        database_url: str, start_gateway: Any, http: aiohttp.ClientSession) -> None:
    gw = start(start_gateway, database_url)
    receipt = json.loads((FIXTURES / "sandbox/fixtures/status_delivered.json").read_text())
    receipt["id"] = "sbx-" + "7" * 200
    async with http.post(f"{gw.url}{gw.status_path('sandbox')}", json=receipt) as resp:
        assert resp.status == 400
        assert "characters" in (await problem_of(resp))["detail"]

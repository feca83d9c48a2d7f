"""The example plug-in of docs/plugins.md, run from the page itself so page and code agree.

The page's code is also the installable package tests/plugin_example/, which
tests/test_plugin_package.py builds, installs and serves; a test here keeps the two equal.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from smsbridge.providers import (
    InboundMessage,
    Media,
    MessageStatus,
    OutboundMessage,
    Provider,
    ProviderError,
    SendResult,
    StatusUpdate,
    WebhookRejected,
    WebhookRequest,
    get_provider_class,
)
from smsbridge.providers.registry import BUILTIN

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "plugins.md"
PACKAGE = ROOT / "tests" / "plugin_example"
API_KEY = "ak_test_0123456789"
SECRET = "whsec_acme_test"


def doc_blocks(language: str) -> list[str]:
    """The page's fenced blocks in ``language``, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", DOC.read_text(), re.S | re.M)


@pytest.fixture(scope="module")
def acme() -> Iterator[ModuleType]:
    """The page's one python block, loaded as the module ``acme_smsbridge``."""
    blocks = doc_blocks("python")
    assert len(blocks) == 1, "docs/plugins.md should hold exactly one python block"
    module = ModuleType("acme_smsbridge")
    sys.modules[module.__name__] = module  # pydantic resolves annotations through it
    try:
        exec(compile(blocks[0], str(DOC), "exec"), module.__dict__)
        yield module
    finally:
        del sys.modules[module.__name__]


def test_the_page_shows_the_example_package_as_it_is() -> None:
    (code,) = doc_blocks("python")
    assert code == (PACKAGE / "acme_smsbridge" / "__init__.py").read_text()
    (pyproject,) = [b for b in doc_blocks("toml") if "[project]" in b]
    assert pyproject == (PACKAGE / "pyproject.toml").read_text()


def provider(acme: ModuleType, base_url: str = "http://127.0.0.1:9") -> Provider:  # type: ignore[type-arg]
    config = acme.AcmeConfig(api_key=API_KEY, webhook_secret=SECRET, base_url=base_url,
                             timeout_seconds=5)
    return acme.AcmeProvider(config)  # type: ignore[no-any-return]


class AcmeApi:
    """Acme's send endpoint: checks the key, records each request and answers as told."""

    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.requests: list[tuple[dict[str, str], Any]] = []
        self.status = 201
        self.answer: Any = {"id": "acme-msg-1"}
        self.headers: dict[str, str] = {}

    async def messages(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.json()))
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"error": {"code": "unauthorized",
                                                "message": "unknown API key"}}, status=401)
        return web.json_response(self.answer, status=self.status, headers=self.headers)

    def app(self) -> web.Application:
        """The aiohttp application serving Acme's routes."""
        app = web.Application()
        app.router.add_post("/v1/messages", self.messages)
        return app


@asynccontextmanager
async def running_acme_api() -> AsyncIterator[tuple[AcmeApi, str]]:
    """A fake Acme API on 127.0.0.1 and its base URL."""
    fake = AcmeApi()
    async with TestServer(fake.app(), host="127.0.0.1") as server:
        yield fake, str(server.make_url("")).rstrip("/")


@pytest.fixture
async def api() -> AsyncIterator[tuple[AcmeApi, str]]:
    async with running_acme_api() as running:
        yield running


def test_the_example_keeps_the_provider_contract(
        acme: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    # Registered the way its entry point would be, the registry takes it.
    monkeypatch.setitem(BUILTIN, "acme", "acme_smsbridge:AcmeProvider")
    assert get_provider_class("acme") is acme.AcmeProvider
    assert acme.AcmeProvider.contract_problems() == []


async def test_send_posts_the_json_acme_expects(
        acme: ModuleType, api: tuple[AcmeApi, str]) -> None:
    fake, url = api
    message = OutboundMessage("msg_1", "+15145550100", "+15145550111", "Alarm: front door",
                              (Media("image/jpeg", url="https://cam.example/snap.jpg"),),
                              "https://gw.example/v1/carriers/acme/tok/status")
    async with aiohttp.ClientSession() as http:
        result = await provider(acme, url).send(message, http)
    assert result == SendResult("acme-msg-1", MessageStatus.SENT)
    (headers, body), = fake.requests
    assert headers["Authorization"] == f"Bearer {API_KEY}"
    assert body == {"from": "+15145550100", "to": "+15145550111", "text": "Alarm: front door",
                    "media_urls": ["https://cam.example/snap.jpg"],
                    "status_callback": "https://gw.example/v1/carriers/acme/tok/status"}


@pytest.mark.parametrize(("status", "answer", "headers", "retryable", "code", "retry_after"), [
    (422, {"error": {"code": "opted_out", "message": "recipient opted out"}}, {}, False,
     "opted_out", None),
    (429, {"error": {"code": "rate_limited"}}, {"Retry-After": "30"}, True, "rate_limited", 30.0),
    (400, {"error": {"code": "carrier_busy"}}, {}, True, "carrier_busy", None),
    (502, "<html>Bad Gateway</html>", {}, True, "http_502", None),
    (201, {"status": "queued"}, {}, False, "no_id", None),
])
async def test_send_errors_say_whether_a_retry_can_help(
        acme: ModuleType, api: tuple[AcmeApi, str], status: int, answer: Any,
        headers: dict[str, str], retryable: bool, code: str, retry_after: float | None) -> None:
    fake, url = api
    fake.status, fake.answer, fake.headers = status, answer, headers
    async with aiohttp.ClientSession() as http:
        with pytest.raises(ProviderError) as caught:
            await provider(acme, url).send(OutboundMessage("m", "+15145550100",
                                                           "+15145550111", "hi"), http)
    assert (caught.value.retryable, caught.value.code, caught.value.retry_after) == (
        retryable, code, retry_after)
    assert API_KEY not in caught.value.reason


def acme_headers(body: bytes, *, secret: str = SECRET, age: float = 0.0) -> dict[str, str]:
    """The headers of a webhook Acme posts, signed now (or ``age`` seconds ago)."""
    stamp = str(int(time.time() - age))
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"content-type": "application/json", "acme-signature": f"t={stamp},v1={digest}"}


def signed(event: dict[str, Any], *, secret: str = SECRET, age: float = 0.0) -> WebhookRequest:
    """The webhook Acme would post, signed now (or ``age`` seconds ago) with ``secret``."""
    body = json.dumps(event).encode()
    return WebhookRequest("POST", "https://gw.example/v1/carriers/acme/tok/inbound",
                          acme_headers(body, secret=secret, age=age), [], body)


INBOUND = {"type": "message.received", "data": {
    "id": "acme-in-7", "from": "+15145550111", "to": "+15145550100", "text": "DISARM JF",
    "media": [{"url": "https://media.acme.example/7.jpg", "content_type": "image/jpeg"}]}}


def test_a_signed_inbound_message_is_verified_and_read(acme: ModuleType) -> None:
    request = signed(INBOUND)
    acme_provider = provider(acme)
    acme_provider.verify(request)
    (message,) = acme_provider.parse_inbound(request)
    assert message == InboundMessage(
        "acme-in-7", "+15145550111", "+15145550100", "DISARM JF",
        (Media("image/jpeg", url="https://media.acme.example/7.jpg"),), message.received_at)


def test_a_signed_receipt_is_read(acme: ModuleType) -> None:
    request = signed({"type": "message.status",
                      "data": {"id": "acme-msg-1", "status": "failed", "error_code": 4301}})
    acme_provider = provider(acme)
    acme_provider.verify(request)
    (update,) = acme_provider.parse_status(request)
    assert update == StatusUpdate("acme-msg-1", MessageStatus.FAILED, "4301",
                                  occurred_at=update.occurred_at)


def forged_body(request: WebhookRequest) -> WebhookRequest:
    return WebhookRequest(request.method, request.url, request.headers, request.query,
                          request.body.replace(b"DISARM", b"ARM"))


# Built when the test runs, not at collection: a signature made minutes before the test runs
# (a long suite) would be refused as too old whatever else is wrong with it.
@pytest.mark.parametrize(("make_request", "reason"), [
    pytest.param(lambda: signed(INBOUND, secret="someone else's"), "does not match",
                 id="wrong-secret"),
    pytest.param(lambda: forged_body(signed(INBOUND)), "does not match", id="forged-body"),
    pytest.param(lambda: signed(INBOUND, age=600), "too old", id="replayed"),
    pytest.param(lambda: WebhookRequest("POST", "https://gw.example/in", {}, [],
                                        json.dumps(INBOUND).encode()), "missing", id="unsigned"),
])
def test_a_forged_or_stale_webhook_is_refused(
        acme: ModuleType, make_request: Callable[[], WebhookRequest], reason: str) -> None:
    with pytest.raises(WebhookRejected, match=reason):
        provider(acme).verify(make_request())


async def test_a_key_acme_does_not_know_fails_for_good(
        acme: ModuleType, api: tuple[AcmeApi, str]) -> None:
    fake, url = api
    fake.api_key = "ak_another_account"
    async with aiohttp.ClientSession() as http:
        with pytest.raises(ProviderError) as caught:
            await provider(acme, url).send(OutboundMessage("m", "+15145550100",
                                                           "+15145550111", "hi"), http)
    assert (caught.value.retryable, caught.value.code) == (False, "unauthorized")
    assert caught.value.reason == "Acme: unknown API key"

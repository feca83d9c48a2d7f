"""The example plug-in of docs/plugins.md, run from the page itself so page and code agree."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
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

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
API_KEY = "ak_test_0123456789"
SECRET = "whsec_acme_test"


@pytest.fixture(scope="module")
def acme() -> Iterator[ModuleType]:
    """The page's one python block, loaded as the module ``acme_smsbridge``."""
    blocks = re.findall(r"^```python\n(.*?)^```", DOC.read_text(), re.S | re.M)
    assert len(blocks) == 1, "docs/plugins.md should hold exactly one python block"
    module = ModuleType("acme_smsbridge")
    sys.modules[module.__name__] = module  # pydantic resolves annotations through it
    try:
        exec(compile(blocks[0], str(DOC), "exec"), module.__dict__)
        yield module
    finally:
        del sys.modules[module.__name__]


def provider(acme: ModuleType, base_url: str = "http://127.0.0.1:9") -> Provider:  # type: ignore[type-arg]
    config = acme.AcmeConfig(api_key=API_KEY, webhook_secret=SECRET, base_url=base_url,
                             timeout_seconds=5)
    return acme.AcmeProvider(config)  # type: ignore[no-any-return]


class AcmeApi:
    """Acme's send endpoint: records each request and answers as told."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], Any]] = []
        self.status = 201
        self.answer: Any = {"id": "acme-msg-1"}
        self.headers: dict[str, str] = {}

    async def messages(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.json()))
        return web.json_response(self.answer, status=self.status, headers=self.headers)


@pytest.fixture
async def api() -> AsyncIterator[tuple[AcmeApi, str]]:
    fake = AcmeApi()
    app = web.Application()
    app.router.add_post("/v1/messages", fake.messages)
    async with TestServer(app, host="127.0.0.1") as server:
        yield fake, str(server.make_url("")).rstrip("/")


def test_the_example_keeps_the_provider_contract(
        acme: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    # Registered the way its entry point would be, the registry takes it.
    monkeypatch.setitem(BUILTIN, "acme", "acme_smsbridge:AcmeProvider")
    assert get_provider_class("acme") is acme.AcmeProvider
    assert acme.AcmeProvider.contract_problems() == []
    entry_point = ('[project.entry-points."smsbridge.providers"]\n'
                   'acme = "acme_smsbridge:AcmeProvider"')
    assert entry_point in DOC.read_text()


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


def signed(event: dict[str, Any], *, secret: str = SECRET, age: float = 0.0) -> WebhookRequest:
    """The webhook Acme would post, signed now (or ``age`` seconds ago) with ``secret``."""
    body = json.dumps(event).encode()
    stamp = str(int(time.time() - age))
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return WebhookRequest("POST", "https://gw.example/v1/carriers/acme/tok/inbound",
                          {"content-type": "application/json",
                           "acme-signature": f"t={stamp},v1={digest}"}, [], body)


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

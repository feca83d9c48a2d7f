"""The HTTP mechanics every carrier shares, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from smsbridge.providers import ProviderError, carrier_request, parse_retry_after, redact
from smsbridge.testing.server import free_port

SECRET = "s3cr3t-token"


async def answer(request: web.Request) -> web.Response:
    """Answer with the status, Retry-After and body the query asks for."""
    if "sleep" in request.query:
        await asyncio.sleep(float(request.query["sleep"]))
    headers = {}
    if "retry_after" in request.query:
        headers["Retry-After"] = request.query["retry_after"]
    return web.Response(status=int(request.query.get("status", "200")), headers=headers,
                        text=request.query.get("body", "{}"))


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    app = web.Application()
    app.router.add_route("*", "/", answer)
    async with TestServer(app, host="127.0.0.1") as running:
        yield running


async def call(server: TestServer, timeout: float = 5.0, **query: str) -> ProviderError:
    """The ProviderError for a non-2xx answer, the way a carrier module raises it."""
    async with aiohttp.ClientSession() as http:
        response = await carrier_request(http, "GET", str(server.make_url("/")),
                                         label="Acme send", timeout=timeout, secrets=[SECRET],
                                         params=query)
    assert response.status >= 300, response.status
    return response.error()


@pytest.mark.parametrize(("status", "retryable"), [
    (500, True), (502, True), (503, True), (429, True), (408, True),
    (400, False), (401, False), (403, False), (404, False), (422, False),
])
async def test_status_decides_whether_a_retry_can_help(
        server: TestServer, status: int, retryable: bool) -> None:
    error = await call(server, status=str(status))
    assert (error.retryable, error.code, error.reason) == (
        retryable, f"http_{status}", f"Acme send: HTTP {status}")


async def test_retry_after_is_passed_on_as_seconds(server: TestServer) -> None:
    assert (await call(server, status="429", retry_after="17")).retry_after == 17.0
    assert (await call(server, status="503", retry_after="soon")).retry_after is None
    assert (await call(server, status="503")).retry_after is None


def test_retry_after_reads_delta_seconds_and_http_dates() -> None:
    now = datetime(2024, 5, 20, 11, 29, 45, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("Mon, 20 May 2024 11:30:15 GMT", now) == 30.0
    assert parse_retry_after("Mon, 20 May 2024 11:00:00 GMT", now) == 0.0  # already past
    assert parse_retry_after("-5", now) == 0.0
    assert parse_retry_after("", now) is None and parse_retry_after(None, now) is None


async def test_a_carrier_that_echoes_a_secret_never_shows_it(server: TestServer) -> None:
    async with aiohttp.ClientSession() as http:
        response = await carrier_request(http, "GET", str(server.make_url("/")),
                                         label="Acme send", timeout=5, secrets=[SECRET],
                                         params={"status": "401"})
    error = response.error(f"Acme send: bad key {SECRET}", code=f"auth-{SECRET}")
    assert SECRET not in error.reason and SECRET not in str(error.code)
    assert error.reason == "Acme send: bad key ***" and not error.retryable


def test_redact_masks_every_secret_and_ignores_empty_ones() -> None:
    text = "sid=ACme token=t0ken again t0ken"
    assert redact(text, ["t0ken", "", "ACme"]) == "sid=*** token=*** again ***"


async def test_no_answer_in_time_is_a_retryable_timeout(server: TestServer) -> None:
    with pytest.raises(ProviderError) as caught:
        await call(server, timeout=0.2, sleep="2")
    assert (caught.value.code, caught.value.retryable) == ("timeout", True)
    assert caught.value.reason == "Acme send: no answer within 0.2 s"


async def test_a_refused_connection_is_retryable_and_redacted() -> None:
    port = free_port()  # nothing listens there
    async with aiohttp.ClientSession() as http:
        with pytest.raises(ProviderError) as caught:
            # The secret stands for a credential in the URL that an error could echo.
            await carrier_request(http, "GET", f"http://127.0.0.1:{port}/", label="Acme send",
                                  timeout=5, secrets=[f"127.0.0.1:{port}"])
    assert (caught.value.code, caught.value.retryable) == ("connection_error", True)
    assert caught.value.reason.startswith("Acme send: connection failed (")
    assert f"127.0.0.1:{port}" not in caught.value.reason

"""Vonage credentials check and number list: the balance and owned-numbers answers in,
AccountInfo, numbers or the refusal out; then the same against the fake carrier over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from starlette.requests import Request

from smsbridge.core.errors import CredentialsRejected, ProviderError
from smsbridge.providers import AccountInfo
from smsbridge.providers.vonage.provider import VonageConfig, VonageProvider
from smsbridge.testing.fake_vonage import FakeVonage
from smsbridge.testing.server import RunningServer
from tests.providers.account_checks import assert_fails, serve_fake, serve_reads, unreachable_url
from tests.providers.replay import Replay

FIXTURES = Path(__file__).parent / "fixtures"
API_KEY, API_SECRET = "a1b2c3d4", "Zx9Yw8Vu7Ts6Rq5P"
CREDENTIALS = {"api_key": API_KEY, "api_secret": API_SECRET}
FIRST_PAGE = ("/account/numbers", {**CREDENTIALS, "size": "100", "index": "1"})


def vonage(base_url: str, secret: str = API_SECRET) -> VonageProvider:
    return VonageProvider(VonageConfig(api_key=API_KEY, api_secret=secret, base_url=base_url))


def path_and_params(request: Request, raw: bytes) -> tuple[str, dict[str, str]]:
    return request.url.path, dict(request.query_params)


@pytest.fixture(scope="module")
def replay_server() -> Iterator[tuple[Replay, RunningServer]]:
    yield from serve_reads(path_and_params)


@pytest.fixture
def api(replay_server: tuple[Replay, RunningServer]) -> VonageProvider:
    return vonage(replay_server[1].url)


ANSWER_CASES = [
    ("check_credentials", "account_balance.json", ("/account/get-balance", CREDENTIALS),
     AccountInfo(API_KEY)),
    # The voice-only toll-free number is left out; msisdn digits gain their '+'.
    ("list_numbers", "account_numbers.json", FIRST_PAGE, ["+447700900000", "+14155550100"]),
    ("list_numbers", "account_numbers_empty.json", FIRST_PAGE, []),
]


@pytest.mark.parametrize(("call", "fixture", "request_seen", "expected"), ANSWER_CASES,
                         ids=[c[1] for c in ANSWER_CASES])
async def test_answers(replay: Replay, api: VonageProvider, http: aiohttp.ClientSession,
                       call: str, fixture: str, request_seen: tuple[str, dict[str, str]],
                       expected: object) -> None:
    replay.load(FIXTURES / fixture, 200)
    assert await getattr(api, call)(http) == expected
    assert replay.seen == [request_seen]


ERROR_CASES = [("account_error_401.json", 401, CredentialsRejected, False, "invalid_auth"),
               ("error_429.html", 429, ProviderError, True, "http_429"),
               ("error_502.html", 502, ProviderError, True, "http_502")]


@pytest.mark.parametrize(("fixture", "status", "error", "retryable", "code"), ERROR_CASES,
                         ids=[c[0] for c in ERROR_CASES])
async def test_errors(replay: Replay, api: VonageProvider, http: aiohttp.ClientSession,
                      fixture: str, status: int, error: type[ProviderError], retryable: bool,
                      code: str) -> None:
    replay.load(FIXTURES / fixture, status)
    await assert_fails([api.check_credentials, api.list_numbers], http, error, retryable, code,
                       secret=API_SECRET)


async def test_cannot_connect_is_retryable(http: aiohttp.ClientSession) -> None:
    # The secret travels in the query string: the connection error must not show the URL's.
    await assert_fails([vonage(unreachable_url()).check_credentials], http,
                       ProviderError, True, "connection_error", secret=API_SECRET)


@pytest.fixture
def fake() -> Iterator[tuple[FakeVonage, RunningServer]]:
    yield from serve_fake(FakeVonage(API_KEY, API_SECRET))


async def test_fake_pages_through_owned_numbers(fake, http: aiohttp.ClientSession) -> None:
    carrier, server = fake
    sms = [f"44770090{i:04d}" for i in range(150)]  # two pages of at most 100
    for msisdn in sms:
        carrier.add_number(msisdn)
    carrier.add_number("12015550123", features=("VOICE",))
    provider = vonage(server.url)
    assert await provider.check_credentials(http) == AccountInfo(API_KEY)
    assert await provider.list_numbers(http) == ["+" + n for n in sms]
    assert [r.path for r in carrier.requests] == ["/account/get-balance"] + [
        "/account/numbers"] * 2


async def test_fake_refuses_a_wrong_secret(fake, http: aiohttp.ClientSession) -> None:
    _, server = fake
    await assert_fails([vonage(server.url, secret="wrong-secret-00").list_numbers], http,
                       CredentialsRejected, False, "invalid_auth")

"""Plivo credentials check and number list: the Account and Number answers in, AccountInfo,
numbers or the refusal out; then the same against the fake carrier over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from smsbridge.core.errors import CredentialsRejected, ProviderError
from smsbridge.providers import AccountInfo
from smsbridge.providers.plivo.provider import PlivoConfig, PlivoProvider
from smsbridge.testing.fake_plivo import FakePlivo
from smsbridge.testing.server import RunningServer
from tests.providers.account_checks import (
    assert_fails,
    path_and_query,
    serve_fake,
    serve_reads,
    unreachable_url,
)
from tests.providers.replay import Replay

FIXTURES = Path(__file__).parent / "fixtures"
AUTH_ID, TOKEN = "MA0123456789ABCDEFGH", "Zm9vYmFyYmF6cXV4cXV1eHF1dXhx"
NUMBERS_PAGE = (f"/v1/Account/{AUTH_ID}/Number/", "limit=20&offset=0")


def plivo(base_url: str, token: str = TOKEN) -> PlivoProvider:
    return PlivoProvider(PlivoConfig(auth_id=AUTH_ID, auth_token=token, base_url=base_url))


@pytest.fixture(scope="module")
def replay_server() -> Iterator[tuple[Replay, RunningServer]]:
    yield from serve_reads(path_and_query)


@pytest.fixture
def api(replay_server: tuple[Replay, RunningServer]) -> PlivoProvider:
    return plivo(replay_server[1].url)


ANSWER_CASES = [
    ("check_credentials", "account.json", (f"/v1/Account/{AUTH_ID}/", ""),
     AccountInfo(AUTH_ID, "Cottage alarm")),
    # The number without SMS is left out; Plivo's digits gain their '+'.
    ("list_numbers", "numbers.json", NUMBERS_PAGE, ["+15145550100", "+442071838750"]),
    ("list_numbers", "numbers_empty.json", NUMBERS_PAGE, []),
]


@pytest.mark.parametrize(("call", "fixture", "request_seen", "expected"), ANSWER_CASES,
                         ids=[c[1] for c in ANSWER_CASES])
async def test_answers(replay: Replay, api: PlivoProvider, http: aiohttp.ClientSession,
                       call: str, fixture: str, request_seen: tuple[str, str],
                       expected: object) -> None:
    replay.load(FIXTURES / fixture, 200)
    assert await getattr(api, call)(http) == expected
    assert replay.seen == [request_seen]


ERROR_CASES = [("error_401_auth.json", 401, CredentialsRejected, False, "invalid_auth"),
               ("error_429.json", 429, ProviderError, True, "http_429"),
               ("error_500.json", 500, ProviderError, True, "http_500"),
               ("error_502_gateway.html", 502, ProviderError, True, "http_502")]


@pytest.mark.parametrize(("fixture", "status", "error", "retryable", "code"), ERROR_CASES,
                         ids=[c[0] for c in ERROR_CASES])
async def test_errors(replay: Replay, api: PlivoProvider, http: aiohttp.ClientSession,
                      fixture: str, status: int, error: type[ProviderError], retryable: bool,
                      code: str) -> None:
    replay.load(FIXTURES / fixture, status)
    await assert_fails([api.check_credentials, api.list_numbers], http, error, retryable, code,
                       secret=TOKEN)


async def test_cannot_connect_is_retryable(http: aiohttp.ClientSession) -> None:
    await assert_fails([plivo(unreachable_url()).list_numbers], http,
                       ProviderError, True, "connection_error")


@pytest.fixture
def fake() -> Iterator[tuple[FakePlivo, RunningServer]]:
    yield from serve_fake(FakePlivo(AUTH_ID, TOKEN))


async def test_fake_follows_meta_next(fake, http: aiohttp.ClientSession) -> None:
    carrier, server = fake
    sms = [f"+1514555{i:04d}" for i in range(45)]  # three pages of at most 20
    for number in sms:
        carrier.add_number(number)
    carrier.add_number("+15145559999", sms=False)
    provider = plivo(server.url)
    assert await provider.list_numbers(http) == sms
    assert len(carrier.requests) == 3
    assert await provider.check_credentials(http) == AccountInfo(AUTH_ID, carrier.name)


async def test_fake_refuses_a_wrong_token(fake, http: aiohttp.ClientSession) -> None:
    _, server = fake
    await assert_fails([plivo(server.url, token="wrong-token").check_credentials], http,
                       CredentialsRejected, False, "invalid_auth")

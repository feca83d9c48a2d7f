"""Flowroute credentials check and number list: the v2/numbers answers in, AccountInfo,
numbers or the refusal out; then the same against the fake carrier over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from smsbridge.core.errors import CredentialsRejected, ProviderError
from smsbridge.providers import AccountInfo
from smsbridge.providers.flowroute.provider import FlowrouteConfig, FlowrouteProvider
from smsbridge.testing.fake_flowroute import FakeFlowroute
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
ACCESS_KEY, SECRET = "83f2c1d0", "Zx8k2PqR7mN4vB1cT6yH3jL9wE5sA0dF"


def flowroute(base_url: str, secret: str = SECRET) -> FlowrouteProvider:
    return FlowrouteProvider(FlowrouteConfig(access_key=ACCESS_KEY, secret_key=secret,
                                             base_url=base_url))


@pytest.fixture(scope="module")
def replay_server() -> Iterator[tuple[Replay, RunningServer]]:
    yield from serve_reads(path_and_query, "application/vnd.api+json")


@pytest.fixture
def api(replay_server: tuple[Replay, RunningServer]) -> FlowrouteProvider:
    return flowroute(replay_server[1].url)


ANSWER_CASES = [
    ("check_credentials", "numbers.json", "limit=1&offset=0", AccountInfo(ACCESS_KEY)),
    ("list_numbers", "numbers.json", "limit=200&offset=0", ["+15145550100", "+12065014377"]),
    ("list_numbers", "numbers_empty.json", "limit=200&offset=0", []),
]


@pytest.mark.parametrize(("call", "fixture", "query", "expected"), ANSWER_CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in ANSWER_CASES])
async def test_answers(replay: Replay, api: FlowrouteProvider, http: aiohttp.ClientSession,
                       call: str, fixture: str, query: str, expected: object) -> None:
    replay.load(FIXTURES / fixture, 200)
    assert await getattr(api, call)(http) == expected
    assert replay.seen == [("/v2/numbers", query)]


ERROR_CASES = [("error_401.json", 401, CredentialsRejected, False, "invalid_auth"),
               ("error_429.json", 429, ProviderError, True, "http_429"),
               ("error_500.json", 500, ProviderError, True, "http_500"),
               ("error_502.html", 502, ProviderError, True, "http_502")]


@pytest.mark.parametrize(("fixture", "status", "error", "retryable", "code"), ERROR_CASES,
                         ids=[c[0] for c in ERROR_CASES])
async def test_errors(replay: Replay, api: FlowrouteProvider, http: aiohttp.ClientSession,
                      fixture: str, status: int, error: type[ProviderError], retryable: bool,
                      code: str) -> None:
    replay.load(FIXTURES / fixture, status)
    await assert_fails([api.check_credentials, api.list_numbers], http, error, retryable, code,
                       secret=SECRET)


async def test_cannot_connect_is_retryable(http: aiohttp.ClientSession) -> None:
    await assert_fails([flowroute(unreachable_url()).list_numbers], http,
                       ProviderError, True, "connection_error")


@pytest.fixture
def fake() -> Iterator[tuple[FakeFlowroute, RunningServer]]:
    yield from serve_fake(FakeFlowroute(ACCESS_KEY, SECRET))


async def test_fake_follows_links_next(fake, http: aiohttp.ClientSession) -> None:
    carrier, server = fake
    carrier.numbers = [f"1514555{i:04d}" for i in range(450)]  # three pages of 200
    provider = flowroute(server.url)
    assert await provider.list_numbers(http) == ["+" + n for n in carrier.numbers]
    assert len(carrier.requests) == 3
    assert await provider.check_credentials(http) == AccountInfo(ACCESS_KEY)


async def test_fake_refuses_a_wrong_secret(fake, http: aiohttp.ClientSession) -> None:
    _, server = fake
    await assert_fails([flowroute(server.url, secret="wrong").check_credentials], http,
                       CredentialsRejected, False, "invalid_auth")

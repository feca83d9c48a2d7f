"""Sinch credentials check: the service plan's batch list in, AccountInfo or the refusal out;
then the same against the fake carrier. A service plan's token lists no numbers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from smsbridge.core.errors import CredentialsRejected, ProviderError
from smsbridge.providers import AccountInfo
from smsbridge.providers.sinch.provider import SinchConfig, SinchProvider
from smsbridge.testing.fake_sinch import FakeSinch
from smsbridge.testing.server import RunningServer
from tests.providers.account_checks import (
    assert_fails,
    path_query_auth,
    serve_fake,
    serve_reads,
    unreachable_url,
)
from tests.providers.replay import Replay

FIXTURES = Path(__file__).parent / "fixtures"
PLAN, TOKEN = "4f8a2c1e9b7d6a5f3e2c1b0a9d8e7f6a", "Tk9sInchApiT0ken-account-0d1e2f"


def sinch(base_url: str, token: str = TOKEN) -> SinchProvider:
    return SinchProvider(SinchConfig(service_plan_id=PLAN, api_token=token, base_url=base_url))


@pytest.fixture(scope="module")
def replay_server() -> Iterator[tuple[Replay, RunningServer]]:
    yield from serve_reads(path_query_auth)


@pytest.fixture
def api(replay_server: tuple[Replay, RunningServer]) -> SinchProvider:
    return sinch(replay_server[1].url)


async def test_batch_list_opens_the_service_plan(replay: Replay, api: SinchProvider,
                                                 http: aiohttp.ClientSession) -> None:
    replay.load(FIXTURES / "batches_list.json", 200)
    assert await api.check_credentials(http) == AccountInfo(PLAN)
    assert await api.list_numbers(http) is None
    assert replay.seen == [(f"/xms/v1/{PLAN}/batches", "page_size=1", f"Bearer {TOKEN}")]


ERROR_CASES = [("error_401.json", 401, CredentialsRejected, False, "invalid_auth"),
               ("error_403.json", 403, CredentialsRejected, False, "invalid_auth"),
               ("error_429.json", 429, ProviderError, True, "http_429"),
               ("error_502.html", 502, ProviderError, True, "http_502")]


@pytest.mark.parametrize(("fixture", "status", "error", "retryable", "code"), ERROR_CASES,
                         ids=[c[0] for c in ERROR_CASES])
async def test_errors(replay: Replay, api: SinchProvider, http: aiohttp.ClientSession,
                      fixture: str, status: int, error: type[ProviderError], retryable: bool,
                      code: str) -> None:
    replay.load(FIXTURES / fixture, status)
    await assert_fails([api.check_credentials], http, error, retryable, code, secret=TOKEN)


async def test_cannot_connect_is_retryable(http: aiohttp.ClientSession) -> None:
    await assert_fails([sinch(unreachable_url()).check_credentials], http,
                       ProviderError, True, "connection_error")


@pytest.fixture
def fake() -> Iterator[tuple[FakeSinch, RunningServer]]:
    yield from serve_fake(FakeSinch(PLAN, TOKEN))


async def test_fake_accepts_and_refuses(fake, http: aiohttp.ClientSession) -> None:
    carrier, server = fake
    assert await sinch(server.url).check_credentials(http) == AccountInfo(PLAN)
    await assert_fails([sinch(server.url, token="wrong-token").check_credentials], http,
                       CredentialsRejected, False, "invalid_auth")
    assert [(r.method, r.auth_ok) for r in carrier.requests] == [("GET", True), ("GET", False)]

"""Bandwidth credentials check: the Messaging API's message list in, AccountInfo or the
refusal out; then the same against the fake carrier. Bandwidth lists no numbers here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from smsbridge.core.errors import CredentialsRejected, ProviderError
from smsbridge.providers import AccountInfo
from smsbridge.providers.bandwidth.provider import BandwidthConfig, BandwidthProvider
from smsbridge.testing.fake_bandwidth import FakeBandwidth
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
ACCOUNT, APPLICATION = "9900001", "93de2206-9669-4e07-948d-329f4b722ee2"
USER, PASSWORD = "api-user-test", "Api-Pa55word-account-0123"


def bandwidth(base_url: str, password: str = PASSWORD) -> BandwidthProvider:
    return BandwidthProvider(BandwidthConfig(
        account_id=ACCOUNT, application_id=APPLICATION, username=USER, password=password,
        callback_username="cb", callback_password="cb-secret", base_url=base_url))


@pytest.fixture(scope="module")
def replay_server() -> Iterator[tuple[Replay, RunningServer]]:
    yield from serve_reads(path_and_query)


@pytest.fixture
def api(replay_server: tuple[Replay, RunningServer]) -> BandwidthProvider:
    return bandwidth(replay_server[1].url)


async def test_message_list_opens_the_account(replay: Replay, api: BandwidthProvider,
                                              http: aiohttp.ClientSession) -> None:
    replay.load(FIXTURES / "messages_list.json", 200)
    assert await api.check_credentials(http) == AccountInfo(ACCOUNT)
    assert await api.list_numbers(http) is None
    assert replay.seen == [(f"/api/v2/users/{ACCOUNT}/messages", "limit=1")]


ERROR_CASES = [("error_401.json", 401, CredentialsRejected, False, "invalid_auth"),
               ("error_403.json", 403, CredentialsRejected, False, "invalid_auth"),
               ("error_429.json", 429, ProviderError, True, "http_429"),
               ("error_502.html", 502, ProviderError, True, "http_502")]


@pytest.mark.parametrize(("fixture", "status", "error", "retryable", "code"), ERROR_CASES,
                         ids=[c[0] for c in ERROR_CASES])
async def test_errors(replay: Replay, api: BandwidthProvider, http: aiohttp.ClientSession,
                      fixture: str, status: int, error: type[ProviderError], retryable: bool,
                      code: str) -> None:
    replay.load(FIXTURES / fixture, status)
    await assert_fails([api.check_credentials], http, error, retryable, code, secret=PASSWORD)


async def test_cannot_connect_is_retryable(http: aiohttp.ClientSession) -> None:
    await assert_fails([bandwidth(unreachable_url()).check_credentials], http,
                       ProviderError, True, "connection_error")


@pytest.fixture
def fake() -> Iterator[tuple[FakeBandwidth, RunningServer]]:
    yield from serve_fake(FakeBandwidth(ACCOUNT, APPLICATION, USER, PASSWORD))


async def test_fake_accepts_and_refuses(fake, http: aiohttp.ClientSession) -> None:
    carrier, server = fake
    assert await bandwidth(server.url).check_credentials(http) == AccountInfo(ACCOUNT)
    await assert_fails([bandwidth(server.url, password="wrong").check_credentials], http,
                       CredentialsRejected, False, "invalid_auth")
    assert [(r.method, r.auth_ok) for r in carrier.requests] == [("GET", True), ("GET", False)]

"""Simwood credentials check: the account-type answer in, AccountInfo or the refusal (with
the address Simwood saw) out; then the same against the fake carrier. Simwood lists numbers
only as a report, so no list is offered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from starlette.requests import Request

from smsbridge.core.errors import CredentialsRejected, ProviderError
from smsbridge.providers import AccountInfo
from smsbridge.providers.simwood.provider import SimwoodConfig, SimwoodProvider
from smsbridge.testing.fake_simwood import FakeSimwood
from smsbridge.testing.server import RunningServer
from tests.providers.account_checks import assert_fails, serve_fake, serve_reads, unreachable_url
from tests.providers.replay import Replay

FIXTURES = Path(__file__).parent / "fixtures"
ACCOUNT, USER, KEY = "930123", "apiuser-930123", "simwood-api-key-account-test"
TYPE_PATH = f"/v3/accounts/{ACCOUNT}/type"


def simwood(base_url: str, key: str = KEY) -> SimwoodProvider:
    return SimwoodProvider(SimwoodConfig(account=ACCOUNT, username=USER, api_key=key,
                                         base_url=base_url))


def path_only(request: Request, raw: bytes) -> str:
    return request.url.path


@pytest.fixture(scope="module")
def replay_server() -> Iterator[tuple[Replay, RunningServer]]:
    yield from serve_reads(path_only)


@pytest.fixture
def api(replay_server: tuple[Replay, RunningServer]) -> SimwoodProvider:
    return simwood(replay_server[1].url)


async def test_account_type_opens_the_account(replay: Replay, api: SimwoodProvider,
                                              http: aiohttp.ClientSession) -> None:
    replay.load(FIXTURES / "account_type.json", 200)
    assert await api.check_credentials(http) == AccountInfo(ACCOUNT)
    assert await api.list_numbers(http) is None
    assert replay.seen == [TYPE_PATH]


ERROR_CASES = [
    ("error_401.html", 401, CredentialsRejected, False, "invalid_auth", [TYPE_PATH]),
    # A 403 asks tools/myip which address Simwood saw; here that answer is a 403 too.
    ("error_403.json", 403, CredentialsRejected, False, "ip_not_allowed",
     [TYPE_PATH, "/v3/tools/myip"]),
    ("error_429.json", 429, ProviderError, True, "http_429", [TYPE_PATH]),
    ("error_502.html", 502, ProviderError, True, "http_502", [TYPE_PATH]),
]


@pytest.mark.parametrize(("fixture", "status", "error", "retryable", "code", "paths"),
                         ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
async def test_errors(replay: Replay, api: SimwoodProvider, http: aiohttp.ClientSession,
                      fixture: str, status: int, error: type[ProviderError], retryable: bool,
                      code: str, paths: list[str]) -> None:
    replay.load(FIXTURES / fixture, status)
    await assert_fails([api.check_credentials], http, error, retryable, code, secret=KEY)
    assert replay.seen == paths


async def test_cannot_connect_is_retryable(http: aiohttp.ClientSession) -> None:
    await assert_fails([simwood(unreachable_url()).check_credentials], http,
                       ProviderError, True, "connection_error")


@pytest.fixture
def fake() -> Iterator[tuple[FakeSimwood, RunningServer]]:
    yield from serve_fake(FakeSimwood(ACCOUNT, USER, KEY))


async def test_fake_accepts_the_right_key(fake, http: aiohttp.ClientSession) -> None:
    _, server = fake
    assert await simwood(server.url).check_credentials(http) == AccountInfo(ACCOUNT)


async def test_fake_refuses_a_wrong_key(fake, http: aiohttp.ClientSession) -> None:
    _, server = fake
    [refused] = await assert_fails([simwood(server.url, key="wrong").check_credentials], http,
                                   CredentialsRejected, False, "invalid_auth")
    assert isinstance(refused, CredentialsRejected) and refused.seen_ip is None


async def test_fake_names_the_address_it_refused(fake, http: aiohttp.ClientSession) -> None:
    carrier, server = fake
    carrier.allowed_ips = {"198.51.100.7"}
    [refused] = await assert_fails([simwood(server.url).check_credentials], http,
                                   CredentialsRejected, False, "ip_not_allowed")
    assert isinstance(refused, CredentialsRejected) and refused.seen_ip == "127.0.0.1"
    assert "127.0.0.1" in refused.reason

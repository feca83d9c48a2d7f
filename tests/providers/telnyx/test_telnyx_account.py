"""Telnyx credentials check and number list: the messaging-settings number list in,
AccountInfo, numbers or the refusal out; then the same against the fake carrier over HTTP."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from starlette.requests import Request

from smsbridge.core.errors import CredentialsRejected, ProviderError
from smsbridge.providers import AccountInfo
from smsbridge.providers.telnyx.provider import TelnyxConfig, TelnyxProvider
from smsbridge.testing.fake_telnyx import FakeTelnyx
from smsbridge.testing.server import RunningServer
from tests.providers.account_checks import assert_fails, serve_fake, serve_reads, unreachable_url
from tests.providers.replay import Replay

FIXTURES = Path(__file__).parent / "fixtures"
API_KEY = "KEY0188F2C1A8B94D3EA0C2D7_account_test"
PUBLIC_KEY = base64.b64encode(bytes(range(32))).decode()


def telnyx(base_url: str, api_key: str = API_KEY, public_key: str = PUBLIC_KEY
           ) -> TelnyxProvider:
    return TelnyxProvider(TelnyxConfig(api_key=api_key, public_key=public_key,
                                       base_url=base_url))


def path_params_auth(request: Request, raw: bytes) -> tuple[str, dict[str, str], str | None]:
    """The page parameters decoded: page[number] travels as page%5Bnumber%5D."""
    return request.url.path, dict(request.query_params), request.headers.get("authorization")


@pytest.fixture(scope="module")
def replay_server() -> Iterator[tuple[Replay, RunningServer]]:
    yield from serve_reads(path_params_auth)


@pytest.fixture
def api(replay_server: tuple[Replay, RunningServer]) -> TelnyxProvider:
    return telnyx(replay_server[1].url)


async def test_check_reads_one_page_with_the_key(replay: Replay, api: TelnyxProvider,
                                                 http: aiohttp.ClientSession) -> None:
    replay.load(FIXTURES / "messaging_numbers.json", 200)
    # The public key names the account: it is the one non-secret value a Telnyx setup has.
    assert await api.check_credentials(http) == AccountInfo(PUBLIC_KEY)
    assert replay.seen == [("/v2/phone_numbers/messaging",
                            {"page[number]": "1", "page[size]": "250"}, f"Bearer {API_KEY}")]


LIST_CASES = [
    # +15145550177 has no SMS feature (null): it cannot be picked to text from.
    ("messaging_numbers.json", ["+18005550001", "+15145550100"]),
    ("messaging_numbers_empty.json", []),
]


@pytest.mark.parametrize(("fixture", "numbers"), LIST_CASES, ids=[c[0] for c in LIST_CASES])
async def test_number_list(replay: Replay, api: TelnyxProvider, http: aiohttp.ClientSession,
                           fixture: str, numbers: list[str]) -> None:
    replay.load(FIXTURES / fixture, 200)
    assert await api.list_numbers(http) == numbers


ERROR_CASES = [
    ("error_10009.json", 401, CredentialsRejected, False, "invalid_auth"),
    ("error_10009.json", 403, CredentialsRejected, False, "invalid_auth"),
    ("error_10011.json", 429, ProviderError, True, "http_429"),
    ("error_502_gateway.html", 502, ProviderError, True, "http_502"),
]


@pytest.mark.parametrize(("fixture", "status", "error", "retryable", "code"), ERROR_CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in ERROR_CASES])
async def test_errors(replay: Replay, api: TelnyxProvider, http: aiohttp.ClientSession,
                      fixture: str, status: int, error: type[ProviderError], retryable: bool,
                      code: str) -> None:
    replay.load(FIXTURES / fixture, status)
    await assert_fails([api.check_credentials, api.list_numbers], http, error, retryable, code,
                       secret=API_KEY)


async def test_cannot_connect_is_retryable(http: aiohttp.ClientSession) -> None:
    await assert_fails([telnyx(unreachable_url()).check_credentials], http,
                       ProviderError, True, "connection_error")


@pytest.fixture
def fake() -> Iterator[tuple[FakeTelnyx, RunningServer]]:
    yield from serve_fake(FakeTelnyx(API_KEY))


async def test_fake_lists_every_page(fake, http: aiohttp.ClientSession) -> None:
    carrier, server = fake
    carrier.max_page_size = 2
    for number in ("+15145550100", "+15145550101", "+15145550102"):
        carrier.add_number(number)
    carrier.add_number("+15145550199", sms=False, mms=False)
    provider = telnyx(server.url, public_key=carrier.public_key)
    assert await provider.list_numbers(http) == ["+15145550100", "+15145550101", "+15145550102"]
    assert len(carrier.requests) == 2
    assert await provider.check_credentials(http) == AccountInfo(carrier.public_key)


async def test_fake_refuses_a_wrong_key(fake, http: aiohttp.ClientSession) -> None:
    _, server = fake
    await assert_fails([telnyx(server.url, api_key="KEY-wrong").check_credentials], http,
                       CredentialsRejected, False, "invalid_auth")

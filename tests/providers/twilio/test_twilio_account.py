"""Twilio credentials check and number list: the Account and IncomingPhoneNumbers answers in,
AccountInfo, numbers or the precise refusal out; then the same against the fake carrier."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from smsbridge.core.errors import CredentialsRejected, ProviderError
from smsbridge.providers import AccountInfo
from smsbridge.providers.twilio.provider import TwilioConfig, TwilioProvider
from smsbridge.testing.fake_twilio import FakeTwilio
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
SID, TOKEN = "AC0123456789abcdef0123456789abcdef", "f00dfeed" * 4


def twilio(base_url: str, token: str = TOKEN) -> TwilioProvider:
    return TwilioProvider(TwilioConfig(account_sid=SID, auth_token=token, base_url=base_url))


@pytest.fixture(scope="module")
def replay_server() -> Iterator[tuple[Replay, RunningServer]]:
    yield from serve_reads(path_query_auth)


@pytest.fixture
def api(replay_server: tuple[Replay, RunningServer]) -> TwilioProvider:
    return twilio(replay_server[1].url)


# ------------------------------------------------------------------ recorded answers

async def test_account_answer_names_the_account(replay: Replay, api: TwilioProvider,
                                                http: aiohttp.ClientSession) -> None:
    replay.load(FIXTURES / "account.json", 200)
    assert await api.check_credentials(http) == AccountInfo(SID, "Cottage alarm")
    [(path, _, auth)] = replay.seen
    assert path == f"/2010-04-01/Accounts/{SID}.json"
    assert auth is not None and auth.startswith("Basic ")


LIST_CASES = [
    # The voice-only number is left out; a number abroad stays in.
    ("incoming_numbers.json", ["+15145550100", "+447700900123"]),
    ("incoming_numbers_empty.json", []),
]


@pytest.mark.parametrize(("fixture", "numbers"), LIST_CASES, ids=[c[0] for c in LIST_CASES])
async def test_number_list(replay: Replay, api: TwilioProvider, http: aiohttp.ClientSession,
                           fixture: str, numbers: list[str]) -> None:
    replay.load(FIXTURES / fixture, 200)
    assert await api.list_numbers(http) == numbers
    [(path, query, _)] = replay.seen
    assert (path, query) == (f"/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers.json",
                             "PageSize=1000")


ERROR_CASES = [
    ("error_20003.json", 401, CredentialsRejected, False, "invalid_auth"),
    ("account_suspended.json", 200, CredentialsRejected, False, "api_disabled"),
    ("error_20429.json", 429, ProviderError, True, "http_429"),
    ("error_502_gateway.html", 502, ProviderError, True, "http_502"),
]


@pytest.mark.parametrize(("fixture", "status", "error", "retryable", "code"), ERROR_CASES,
                         ids=[c[0] for c in ERROR_CASES])
async def test_check_errors(replay: Replay, api: TwilioProvider, http: aiohttp.ClientSession,
                            fixture: str, status: int, error: type[ProviderError],
                            retryable: bool, code: str) -> None:
    replay.load(FIXTURES / fixture, status)
    await assert_fails([api.check_credentials], http, error, retryable, code, secret=TOKEN)


async def test_cannot_connect_is_retryable(http: aiohttp.ClientSession) -> None:
    provider = twilio(unreachable_url())
    await assert_fails([provider.check_credentials, provider.list_numbers], http,
                       ProviderError, True, "connection_error")


# ------------------------------------------------------------------ the fake carrier

@pytest.fixture
def fake() -> Iterator[tuple[FakeTwilio, RunningServer]]:
    yield from serve_fake(FakeTwilio(SID, TOKEN))


async def test_fake_lists_every_page_of_sms_numbers(fake, http: aiohttp.ClientSession) -> None:
    carrier, server = fake
    carrier.max_page_size = 2  # three pages for five numbers
    sms = [f"+1514555010{i}" for i in range(4)]
    for number in sms:
        carrier.add_number(number)
    carrier.add_number("+15145550199", sms=False)
    provider = twilio(server.url)
    assert await provider.check_credentials(http) == AccountInfo(SID, carrier.friendly_name)
    assert await provider.list_numbers(http) == sms
    assert sum(r.path.endswith("IncomingPhoneNumbers.json") for r in carrier.requests) == 3


async def test_fake_refuses_a_wrong_token(fake, http: aiohttp.ClientSession) -> None:
    _, server = fake
    provider = twilio(server.url, token="0" * 32)
    await assert_fails([provider.check_credentials, provider.list_numbers], http,
                       CredentialsRejected, False, "invalid_auth")


async def test_fake_suspended_account(fake, http: aiohttp.ClientSession) -> None:
    carrier, server = fake
    carrier.account_status = "suspended"
    [refused] = await assert_fails([twilio(server.url).check_credentials], http,
                                   CredentialsRejected, False, "api_disabled")
    assert "suspended" in refused.reason

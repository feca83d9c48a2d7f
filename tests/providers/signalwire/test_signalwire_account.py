"""SignalWire credentials check and number list: its Compatibility API's Account and
IncomingPhoneNumbers answers (Twilio's shape under /api/laml) in, AccountInfo, numbers or
the refusal out; then the same against the fake carrier over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from smsbridge.core.errors import CredentialsRejected, ProviderError
from smsbridge.providers import AccountInfo
from smsbridge.providers.signalwire.provider import SignalWireConfig, SignalWireProvider
from smsbridge.testing.fake_signalwire import FakeSignalWire
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
PROJECT, TOKEN, KEY = "b3877c40-da60-4998-90ad-b792e98472af", "PT" + "ab" * 24, "PSK_" + "cd" * 12
ACCOUNT = f"/api/laml/2010-04-01/Accounts/{PROJECT}"


def signalwire(base_url: str | None, token: str = TOKEN) -> SignalWireProvider:
    return SignalWireProvider(SignalWireConfig(space="example", project_id=PROJECT,
                                               api_token=token, signing_key=KEY,
                                               base_url=base_url))


@pytest.fixture(scope="module")
def replay_server() -> Iterator[tuple[Replay, RunningServer]]:
    yield from serve_reads(path_and_query)


@pytest.fixture
def api(replay_server: tuple[Replay, RunningServer]) -> SignalWireProvider:
    return signalwire(replay_server[1].url)


def test_the_project_id_names_the_account() -> None:
    assert signalwire(None).account_identity() == PROJECT


ANSWER_CASES = [
    ("check_credentials", "account.json", f"{ACCOUNT}.json",
     AccountInfo(PROJECT, "Alarm project")),
    ("list_numbers", "incoming_numbers.json", f"{ACCOUNT}/IncomingPhoneNumbers.json",
     ["+13103386745"]),
]


@pytest.mark.parametrize(("call", "fixture", "path", "expected"), ANSWER_CASES,
                         ids=[c[0] for c in ANSWER_CASES])
async def test_answers(replay: Replay, api: SignalWireProvider, http: aiohttp.ClientSession,
                       call: str, fixture: str, path: str, expected: object) -> None:
    replay.load(FIXTURES / fixture, 200)
    assert await getattr(api, call)(http) == expected
    assert [seen[0] for seen in replay.seen] == [path]


ERROR_CASES = [("error_20003.json", 401, CredentialsRejected, False, "invalid_auth"),
               ("error_20429.json", 429, ProviderError, True, "http_429"),
               ("error_20500.json", 500, ProviderError, True, "http_500")]


@pytest.mark.parametrize(("fixture", "status", "error", "retryable", "code"), ERROR_CASES,
                         ids=[c[0] for c in ERROR_CASES])
async def test_errors(replay: Replay, api: SignalWireProvider, http: aiohttp.ClientSession,
                      fixture: str, status: int, error: type[ProviderError], retryable: bool,
                      code: str) -> None:
    replay.load(FIXTURES / fixture, status)
    await assert_fails([api.list_numbers], http, error, retryable, code, secret=TOKEN)


async def test_cannot_connect_is_retryable(http: aiohttp.ClientSession) -> None:
    await assert_fails([signalwire(unreachable_url()).check_credentials], http,
                       ProviderError, True, "connection_error")


@pytest.fixture
def fake() -> Iterator[tuple[FakeSignalWire, RunningServer]]:
    yield from serve_fake(FakeSignalWire(PROJECT, TOKEN, KEY))


async def test_fake_pages_follow_the_laml_uris(fake, http: aiohttp.ClientSession) -> None:
    carrier, server = fake
    carrier.max_page_size = 1
    carrier.add_number("+13103386745")
    carrier.add_number("+13103386746", sms=False)
    carrier.add_number("+13103386747")
    provider = signalwire(server.url)
    assert await provider.list_numbers(http) == ["+13103386745", "+13103386747"]
    assert [r.path for r in carrier.requests] == [f"{ACCOUNT}/IncomingPhoneNumbers.json"] * 3
    assert await provider.check_credentials(http) == AccountInfo(PROJECT, carrier.friendly_name)


async def test_fake_refuses_a_wrong_token(fake, http: aiohttp.ClientSession) -> None:
    _, server = fake
    await assert_fails([signalwire(server.url, token="PT" + "00" * 24).check_credentials], http,
                       CredentialsRejected, False, "invalid_auth")

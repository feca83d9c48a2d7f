"""VoIP.ms credentials check and number list: getDIDsInfo answers in, AccountInfo or the
precise refusal out; then the same against the fake carrier over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from starlette.requests import Request

from smsbridge.core.errors import CredentialsRejected, ProviderError
from smsbridge.providers import AccountInfo
from smsbridge.providers.voipms.provider import VoipmsConfig, VoipmsProvider
from smsbridge.testing.fake_voipms import FakeVoipms
from smsbridge.testing.server import RunningServer
from tests.providers.account_checks import assert_fails, serve_fake, unreachable_url
from tests.providers.replay import Replay

FIXTURES = Path(__file__).parent / "fixtures"
USER, PASSWORD = "me@example.com", "s3cr3t-API-pw"


def voipms(base_url: str, password: str = PASSWORD) -> VoipmsProvider:
    return VoipmsProvider(VoipmsConfig(username=USER, api_password=password, base_url=base_url))


def body_only(request: Request, raw: bytes) -> bytes:
    return raw


@pytest.fixture(scope="module")
def new_replay() -> Replay:
    """The REST/JSON API: HTTP 200 and JSON for every answer, refusals included (§4)."""
    return Replay(200, "application/json", body_only)


@pytest.fixture
def api(replay_server: tuple[Replay, RunningServer]) -> VoipmsProvider:
    return voipms(replay_server[1].url)


# ------------------------------------------------------------------ recorded answers

async def test_dids_answer_opens_the_users_account(replay: Replay, api: VoipmsProvider,
                                                   http: aiohttp.ClientSession) -> None:
    replay.load(FIXTURES / "account_dids.json", 200)
    assert await api.check_credentials(http) == AccountInfo(USER, checked=True)
    [raw] = replay.seen
    assert b'name="method"\r\n\r\ngetDIDsInfo' in raw and USER.encode() in raw


LIST_CASES = [
    # The DID with sms_enabled "0" (a fax line) cannot be picked to text from.
    ("account_dids.json", ["+15145550100", "+14385550199"]),
    ("account_no_did.json", []),
]


@pytest.mark.parametrize(("fixture", "numbers"), LIST_CASES, ids=[c[0] for c in LIST_CASES])
async def test_number_list(replay: Replay, api: VoipmsProvider, http: aiohttp.ClientSession,
                           fixture: str, numbers: list[str]) -> None:
    replay.load(FIXTURES / fixture, 200)
    assert await api.list_numbers(http) == numbers


REFUSAL_CASES = [
    ("account_invalid_credentials.json", "invalid_auth", None),
    ("account_missing_credentials.json", "invalid_auth", None),
    ("account_api_not_enabled.json", "api_disabled", None),
    ("account_ip_not_enabled.json", "ip_not_allowed", None),
    ("account_ip_not_enabled_ip_in_message.json", "ip_not_allowed", "198.51.100.23"),
    ("account_ip_not_enabled_ip_field.json", "ip_not_allowed", "2001:db8::17"),
]


@pytest.mark.parametrize(("fixture", "kind", "seen_ip"), REFUSAL_CASES,
                         ids=[c[0] for c in REFUSAL_CASES])
async def test_refusals_say_how(replay: Replay, api: VoipmsProvider, http: aiohttp.ClientSession,
                                fixture: str, kind: str, seen_ip: str | None) -> None:
    replay.load(FIXTURES / fixture, 200)
    for refused in await assert_fails([api.check_credentials, api.list_numbers], http,
                                      CredentialsRejected, False, kind, secret=PASSWORD):
        assert isinstance(refused, CredentialsRejected) and refused.seen_ip == seen_ip
        assert seen_ip is None or seen_ip in refused.reason


TRANSIENT_CASES = [("account_api_limit_exceeded.json", 200, "api_limit_exceeded"),
                   ("send_html_502.html", 502, "http_502")]


@pytest.mark.parametrize(("fixture", "status", "code"), TRANSIENT_CASES,
                         ids=[c[0] for c in TRANSIENT_CASES])
async def test_a_busy_carrier_is_not_a_refusal(replay: Replay, api: VoipmsProvider,
                                               http: aiohttp.ClientSession, fixture: str,
                                               status: int, code: str) -> None:
    replay.load(FIXTURES / fixture, status)
    await assert_fails([api.check_credentials], http, ProviderError, True, code,
                       secret=PASSWORD)


async def test_cannot_connect_is_retryable(http: aiohttp.ClientSession) -> None:
    await assert_fails([voipms(unreachable_url()).check_credentials], http,
                       ProviderError, True, "connection_error")


# ------------------------------------------------------------------ the fake carrier

@pytest.fixture
def fake() -> Iterator[tuple[FakeVoipms, RunningServer]]:
    yield from serve_fake(FakeVoipms(username=USER, api_password=PASSWORD,
                                     dids=["5145550100", "4385550199", "5145550177"],
                                     sms_disabled_dids=["5145550177"]))


async def test_fake_lists_the_sms_dids(fake, http: aiohttp.ClientSession) -> None:
    carrier, server = fake
    provider = voipms(server.url)
    assert await provider.check_credentials(http) == AccountInfo(USER)
    assert await provider.list_numbers(http) == ["+14385550199", "+15145550100"]
    assert [r.method for r in carrier.requests] == ["getDIDsInfo", "getDIDsInfo"]


async def test_fake_refuses_a_wrong_password(fake, http: aiohttp.ClientSession) -> None:
    _, server = fake
    await assert_fails([voipms(server.url, password="wrong").check_credentials], http,
                       CredentialsRejected, False, "invalid_auth")


async def test_fake_with_the_api_off(fake, http: aiohttp.ClientSession) -> None:
    carrier, server = fake
    carrier.api_enabled = False
    await assert_fails([voipms(server.url).list_numbers], http,
                       CredentialsRejected, False, "api_disabled")


async def test_fake_names_the_refused_ip(fake, http: aiohttp.ClientSession) -> None:
    carrier, server = fake
    carrier.refused_ip = "203.0.113.77"
    [refused] = await assert_fails([voipms(server.url).check_credentials], http,
                                   CredentialsRejected, False, "ip_not_allowed")
    assert isinstance(refused, CredentialsRejected) and refused.seen_ip == "203.0.113.77"

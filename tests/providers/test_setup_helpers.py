"""The provider interface's setup helpers as a plug-in gets them: the defaults (and the
built-in carriers that keep them), the refusal type, and the shared read and number
mechanics."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import aiohttp
import pytest
from pydantic import Field, SecretStr
from starlette.requests import Request

from smsbridge.providers import (
    UNSIGNED,
    AccountInfo,
    Capabilities,
    CredentialsRejected,
    InboundMessage,
    OutboundMessage,
    Provider,
    ProviderConfig,
    ProviderError,
    SendResult,
    WebhookRequest,
    e164_numbers,
    read_account,
)
from smsbridge.providers.com382.provider import Com382Config, Com382Provider
from smsbridge.providers.peerless.provider import PeerlessConfig, PeerlessProvider
from smsbridge.providers.voipnumber.provider import VoipNumberConfig, VoipNumberProvider
from smsbridge.testing.server import RunningServer
from tests.providers.account_checks import closed_session, serve_reads
from tests.providers.replay import Replay


class TokenOnly(ProviderConfig):
    token: SecretStr
    region: str = "eu"


class AccountAndToken(ProviderConfig):
    token: SecretStr = Field(description="secret, so never an identity")
    sender_name: str | None = None
    account: str


def plugin(config_type: type[ProviderConfig]) -> type[Provider[ProviderConfig]]:
    class Plugin(Provider[ProviderConfig]):
        key: ClassVar[str] = "acme"
        name: ClassVar[str] = "Acme SMS"
        Config = config_type
        capabilities = Capabilities(signature=UNSIGNED)

        async def send(self, message: OutboundMessage, http: aiohttp.ClientSession
                       ) -> SendResult:
            raise NotImplementedError

        def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
            raise NotImplementedError

    return Plugin


PEERLESS_URL = "https://sms.peerless.example/partners/messageReceiving/300417/submitMessage"
DEFAULT_CASES = [
    (plugin(AccountAndToken)(AccountAndToken(token="s3cret", account="ac-42")), "ac-42"),
    # Nothing but a secret and an optional setting: the carrier's key is all there is.
    (plugin(TokenOnly)(TokenOnly(token="s3cret", region="us")), "acme"),
    # Built-in carriers with no documented authenticated read keep the defaults. Peerless:
    # the send URL holds the account number; 382: the API user; VoIP Number: accountId.
    (PeerlessProvider(PeerlessConfig(url=PEERLESS_URL, username="acme", password="pw-1")),
     PEERLESS_URL),
    (Com382Provider(Com382Config(username="acme382", password="S3cr3t&pass")), "acme382"),
    (VoipNumberProvider(VoipNumberConfig(account_id="acct-4711", api_token="tok-1")),
     "acct-4711"),
]


@pytest.mark.parametrize(("provider", "identity"), DEFAULT_CASES,
                         ids=["plugin-required-text", "plugin-secrets-only", "peerless",
                              "382com", "voipnumber"])
async def test_defaults_make_no_request(provider: Provider[ProviderConfig],
                                        identity: str) -> None:
    closed = await closed_session()
    assert await provider.check_credentials(closed) == AccountInfo(identity, checked=False)
    assert await provider.list_numbers(closed) is None


def test_credentials_rejected_is_a_final_provider_error() -> None:
    refused = CredentialsRejected("IP not allowed", kind="ip_not_allowed", seen_ip="192.0.2.1")
    assert isinstance(refused, ProviderError)
    assert (refused.retryable, refused.code, refused.seen_ip) == (False, "ip_not_allowed",
                                                                  "192.0.2.1")
    with pytest.raises(ValueError, match="unknown kind"):
        CredentialsRejected("nope", kind="wrong_password")


NUMBER_CASES = [
    (["+15145550100", "5145550100", "+1 514 555 0100"], {}, ["+15145550100"]),
    (["447700900123", "15145550100"], {"international_digits": True},
     ["+447700900123", "+15145550100"]),
    # A short code, a blank, junk and a non-string cannot be picked to send from.
    (["12345", "", "not a number", None, "4385550199"], {}, ["+14385550199"]),
]


@pytest.mark.parametrize(("values", "options", "numbers"), NUMBER_CASES,
                         ids=["duplicates", "international-digits", "unusable"])
def test_e164_numbers(values: list[object], options: dict[str, bool],
                      numbers: list[str]) -> None:
    assert e164_numbers(values, **options) == numbers


def path_only(request: Request, raw: bytes) -> str:
    return request.url.path


@pytest.fixture(scope="module")
def replay_server() -> Iterator[tuple[Replay, RunningServer]]:
    yield from serve_reads(path_only)


READ_CASES = [
    (b'{"ok": true}', 200, None, None),
    (b"<html>maintenance</html>", 200, ProviderError, "invalid_response"),
    (b'{"error": "no"}', 401, CredentialsRejected, "invalid_auth"),
    (b'{"error": "ip"}', 403, CredentialsRejected, "ip_not_allowed"),
    (b'{"error": "later"}', 503, ProviderError, "http_503"),
]


@pytest.mark.parametrize(("body", "status", "error", "code"), READ_CASES,
                         ids=["json", "not-json", "401", "403-as-ip", "503"])
async def test_read_account(replay: Replay, replay_server: tuple[Replay, RunningServer],
                            http: aiohttp.ClientSession, body: bytes, status: int,
                            error: type[ProviderError] | None, code: str | None) -> None:
    replay.body, replay.status = body, status
    read = read_account(http, f"{replay_server[1].url}/account", carrier="Acme", timeout=5,
                        refusals={401: "invalid_auth", 403: "ip_not_allowed"})
    if error is None:
        assert await read == {"ok": True}
        return
    with pytest.raises(ProviderError) as err:
        await read
    assert (type(err.value), err.value.code) == (error, code)
    assert err.value.retryable is (error is ProviderError)

"""The sandbox's setup helpers: no credentials to check, and its own number to offer."""

from __future__ import annotations

from smsbridge.providers import AccountInfo
from smsbridge.providers.sandbox.provider import SandboxConfig, SandboxProvider
from tests.providers.account_checks import closed_session


async def test_sandbox_needs_no_request() -> None:
    provider = SandboxProvider(SandboxConfig())
    closed = await closed_session()
    assert await provider.check_credentials(closed) == AccountInfo("sandbox", "Sandbox")
    assert await provider.list_numbers(closed) == ["+15555550100"]


def test_the_offered_number_is_the_default_connections() -> None:
    from smsbridge.gateway.config import SANDBOX_NUMBER
    from smsbridge.providers.sandbox.provider import SANDBOX_NUMBERS

    assert SANDBOX_NUMBERS == (SANDBOX_NUMBER,)

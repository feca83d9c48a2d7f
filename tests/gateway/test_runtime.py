"""Runtime wiring that protects against double sends."""

from __future__ import annotations

from smsbridge.gateway.runtime import Runtime
from tests.conftest import make_settings


async def test_leases_outlast_the_slowest_request_timeout(sqlite_url: str) -> None:
    settings = make_settings(
        sqlite_url,
        [{"name": "tw", "carrier": "twilio", "numbers": ["+15145550100"],
          "settings": {"account_sid": "AC" + "1" * 32, "auth_token": "t" * 32,
                       "timeout_seconds": 30}}],
        webhooks=[{"url": "http://127.0.0.1:9/hook", "secret": "whsec_" + "A" * 32,
                   "timeout_seconds": 40}],
        worker={"lease_seconds": 5})
    runtime = Runtime(settings)
    await runtime.start()
    try:
        assert runtime.outbox is not None and runtime.webhooks is not None
        # Another worker must not take over a send that may still be answered.
        assert runtime.outbox.lease_seconds == 35
        assert runtime.webhooks.lease_seconds == 45
    finally:
        await runtime.stop()

"""Runtime wiring that protects against double sends."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from smsbridge.core.errors import ConfigError
from smsbridge.core.messages import OutboundMessage
from smsbridge.gateway.admin import store_for
from smsbridge.gateway.runtime import Runtime
from smsbridge.gateway.service import SendRequest
from smsbridge.providers.registry import BUILTIN
from smsbridge.providers.voipms.provider import SMS_MAX_BYTES, VoipmsProvider, split_utf8
from smsbridge.testing.fake_voipms import FakeVoipms
from smsbridge.testing.server import start_server
from tests.conftest import eventually, make_settings


async def test_leases_outlast_the_slowest_request_timeout(sqlite_url: str) -> None:
    settings = make_settings(
        sqlite_url,
        [{"name": "tw", "carrier": "twilio", "numbers": ["+15145550100"],
          "settings": {"account_sid": "AC" + "1" * 32, "auth_token": "t" * 32,
                       "timeout_seconds": 30}}],
        webhooks=[{"url": "http://127.0.0.1:9/hook", "secret": "whsec_" + "A" * 32,
                   "timeout_seconds": 40}],
        worker={"lease_seconds": 5})
    runtime = Runtime(settings, store_for(settings))
    await runtime.start()
    try:
        assert runtime.outbox is not None and runtime.webhooks is not None
        # Another worker must not take over a send that may still be answered.
        assert runtime.outbox.lease_seconds == 35
        assert runtime.webhooks.lease_seconds == 45
    finally:
        await runtime.stop()


DID = "+15145550100"
VOIPMS = {"username": "me@example.com", "api_password": "secret"}


def voipms_split(timeout: float, **settings: object) -> dict[str, object]:
    return {"name": "vm", "carrier": "voipms", "numbers": [DID],
            "settings": {**VOIPMS, "long_text": "split", "timeout_seconds": timeout, **settings}}


def longest_text_parts() -> int:
    """sendSMS parts of the longest text VoIP.ms takes, in plain ASCII and in emoji."""
    limit = VoipmsProvider.capabilities.max_text_length
    return max(len(split_utf8(text, SMS_MAX_BYTES)) for text in ("a" * limit, "😀" * limit))


async def test_a_split_voipms_send_gets_a_lease_longer_than_every_part(sqlite_url: str) -> None:
    settings = make_settings(sqlite_url, [voipms_split(20)], worker={"lease_seconds": 5})
    runtime = Runtime(settings, store_for(settings))
    await runtime.start()
    try:
        assert runtime.outbox is not None
        parts = longest_text_parts()
        assert parts > 1
        # Each part may wait its full timeout; a shorter lease lets a second worker re-send.
        assert runtime.outbox.lease_seconds > parts * 20
    finally:
        await runtime.stop()


def test_voipms_states_the_worst_case_of_each_message() -> None:
    split = VoipmsProvider(VoipmsProvider.Config.model_validate(
        {**VOIPMS, "long_text": "split", "timeout_seconds": 20}))
    one_mms = VoipmsProvider(VoipmsProvider.Config.model_validate(
        {**VOIPMS, "timeout_seconds": 20}))
    text = "word " * 300  # 1500 bytes: ten sendSMS parts in split mode
    message = OutboundMessage("m1", DID, "+15145550111", text)
    parts = len(split_utf8(text, SMS_MAX_BYTES))
    assert split.max_send_seconds(message) == parts * 20
    assert split.max_send_seconds() >= longest_text_parts() * 20
    assert one_mms.max_send_seconds(message) == one_mms.max_send_seconds() == 20


async def test_a_quick_carrier_keeps_the_configured_lease(sqlite_url: str) -> None:
    settings = make_settings(
        sqlite_url, [{"name": "sb", "carrier": "sandbox", "numbers": [DID]}],
        worker={"lease_seconds": 45})
    runtime = Runtime(settings, store_for(settings))
    await runtime.start()
    try:
        assert runtime.outbox is not None and runtime.outbox.lease_seconds == 45
    finally:
        await runtime.stop()


async def test_the_outbox_row_is_leased_past_a_slow_split_send(tmp_path: Path) -> None:
    """Read the real row while its parts are in flight: no other worker may claim it yet."""
    fake = FakeVoipms(username=VOIPMS["username"], api_password=VOIPMS["api_password"])
    fake.delay_seconds = 0.3
    carrier = start_server(fake.app)
    db = tmp_path / "gw.db"
    settings = make_settings(f"sqlite:///{db}", [voipms_split(20, base_url=carrier.url)],
                             worker={"lease_seconds": 5})
    runtime = Runtime(settings, store_for(settings))
    gateway = await runtime.start()
    try:
        message, _ = await gateway.send(SendRequest(DID, "+15145550111", "word " * 100))

        async def leased_until() -> float | None:
            with sqlite3.connect(db) as conn:
                row = conn.execute("SELECT lease_until FROM messages WHERE id = ?",
                                   (message.id,)).fetchone()
            return row[0] if row and row[0] and fake.requests else None

        until = await eventually(leased_until, timeout=10)
        assert until - time.time() > longest_text_parts() * 20
        await eventually(lambda: len(fake.sent) == 4 or None, timeout=10)
    finally:
        await runtime.stop()
        carrier.stop()


def test_a_carrier_that_neither_verifies_nor_declares_unsigned_stops_the_start(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The user hears it at start, naming the connection, before any webhook is taken."""
    monkeypatch.setitem(BUILTIN, "forgetful", "tests.test_structure:ForgetfulProvider")
    with pytest.raises(ConfigError) as caught:
        make_settings(sqlite_url, [{"name": "f", "carrier": "forgetful", "numbers": [DID]}])
    assert caught.value.key == "connections[0].carrier"
    assert "signature" in caught.value.reason


# --- connections added at run time, on another process

SANDBOX_NUMBER = "+15145550777"


async def test_a_message_of_a_connection_added_elsewhere_is_sent_not_failed(
        sqlite_url: str) -> None:
    # Two processes on one store; the worker's own re-read is far off (an hour), so only
    # the outbox's re-read before failing a message can find the new connection.
    settings = make_settings(sqlite_url, [], worker={"lease_seconds": 5})
    worker = Runtime(settings, store_for(settings), refresh_seconds=3600)
    await worker.start()
    adder = Runtime(settings, store_for(settings), run_workers=False, refresh_seconds=3600)
    gateway = await adder.start()
    try:
        scope = gateway.cli_scope
        await gateway.add_connection(scope, "late", "sandbox", [SANDBOX_NUMBER],
                                     {"delivery_receipts": False})
        message, _ = await gateway.send(SendRequest(from_number=SANDBOX_NUMBER,
                                                    to_number="+15145550123", text="hi"))
        assert worker.gateway is not None and "late" not in worker.gateway.registry.connections
        worker.outbox.wake()  # type: ignore[union-attr]

        async def settled() -> str | None:
            stored = await gateway.get_message(message.id)
            status = stored.status.value if stored else None
            return status if status in ("sent", "failed") else None

        assert await eventually(settled) == "sent"
    finally:
        await adder.stop()
        await worker.stop()


async def test_a_slower_connection_added_at_run_time_lengthens_the_outbox_lease(
        sqlite_url: str) -> None:
    settings = make_settings(sqlite_url, [], worker={"lease_seconds": 5})
    runtime = Runtime(settings, store_for(settings))
    gateway = await runtime.start()
    try:
        assert runtime.outbox is not None and runtime.outbox.lease_seconds == 5
        await gateway.add_connection(gateway.cli_scope, "tw", "twilio", ["+15145550100"], {
            "account_sid": "AC" + "1" * 32, "auth_token": "t" * 32, "timeout_seconds": 30})
        # A send through it may take 30 s: no other worker may take it over before that.
        assert runtime.outbox.lease_seconds == 35
    finally:
        await runtime.stop()

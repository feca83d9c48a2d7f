"""Fixtures of the Home Assistant suite: a real HA core (the plugin's ``hass``), the project's
fake carriers served on 127.0.0.1, and config entries written in the entry contract's format.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

# The plugin ships a regular package testing_config/custom_components, and Home Assistant
# imports ``custom_components`` from its config folder; once that one is imported, ours is
# hidden and the integration is "not found". Importing ours first pins it.
import custom_components  # noqa: E402
from pytest_homeassistant_custom_component.common import MockConfigEntry  # noqa: E402

from smsbridge.testing.fake_twilio import FakeTwilio  # noqa: E402
from smsbridge.testing.fake_voipms import FakeVoipms  # noqa: E402
from smsbridge.testing.server import RunningServer, start_server  # noqa: E402

assert Path(next(iter(custom_components.__path__))).resolve() == REPO_ROOT / "custom_components"

DOMAIN = "smsbridge"
VOIPMS_USER = "alarm@example.com"
VOIPMS_PASSWORD = "api-pass-7"
VOIPMS_DID = "5145550100"
VOIPMS_NUMBER = "+15145550100"
TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "f00dfeedf00dfeedf00dfeedf00dfeed"
TWILIO_NUMBER = "+15145550111"
# Long and random in real entries (webhook.async_generate_id); fixed here to read the logs.
VOIPMS_WEBHOOK_ID = "voipms-hook-3b1f0a7c9e2d4f6a8b0c1d2e3f4a5b6c7d8e9f00"
TWILIO_WEBHOOK_ID = "twilio-hook-9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e00"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom_components/smsbridge in every test."""


@pytest.fixture
def serve_fake(socket_enabled: None) -> Iterator[Any]:
    """Start an ASGI app on 127.0.0.1 for one test; every server is stopped at its end.

    Stopped (thread joined) before the plugin's cleanup check, which fails tests that
    leave threads behind.
    """
    running: list[RunningServer] = []

    def serve(app: Any) -> str:
        server = start_server(app)
        running.append(server)
        return server.url

    yield serve
    for server in running:
        server.stop()


@pytest.fixture
def fake_voipms(serve_fake: Any) -> FakeVoipms:
    """A fake VoIP.ms account owning VOIPMS_DID; its URL is ``fake_voipms.url``."""
    fake = FakeVoipms(username=VOIPMS_USER, api_password=VOIPMS_PASSWORD, dids=[VOIPMS_DID])
    fake.url = serve_fake(fake.app)  # type: ignore[attr-defined]
    return fake


@pytest.fixture
def fake_twilio(serve_fake: Any) -> FakeTwilio:
    """A fake Twilio account; its URL is ``fake_twilio.url``."""
    fake = FakeTwilio(TWILIO_SID, TWILIO_TOKEN)
    fake.url = serve_fake(fake.app)  # type: ignore[attr-defined]
    return fake


def carrier_entry(carrier: str, settings: dict[str, Any], numbers: list[str], webhook_id: str,
                  identity: str, options: dict[str, Any] | None = None) -> MockConfigEntry:
    """A carrier-mode entry exactly as the config flow writes it (ha-common's contract)."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"{carrier} {identity}",
        unique_id=f"{carrier}:{identity}",
        data={"mode": "carrier", "carrier": carrier, "settings": settings,
              "numbers": numbers, "webhook_id": webhook_id},
        options=options or {},
    )


@pytest.fixture
def voipms_entry(fake_voipms: FakeVoipms) -> MockConfigEntry:
    """A VoIP.ms entry for VOIPMS_NUMBER, talking to the fake (not yet added to hass)."""
    return carrier_entry(
        "voipms",
        {"username": VOIPMS_USER, "api_password": VOIPMS_PASSWORD,
         "base_url": fake_voipms.url},  # type: ignore[attr-defined]
        [VOIPMS_NUMBER], VOIPMS_WEBHOOK_ID, VOIPMS_USER)


@pytest.fixture
def twilio_entry(fake_twilio: FakeTwilio) -> MockConfigEntry:
    """A Twilio entry for TWILIO_NUMBER, talking to the fake (not yet added to hass)."""
    return carrier_entry(
        "twilio",
        {"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN,
         "base_url": fake_twilio.url},  # type: ignore[attr-defined]
        [TWILIO_NUMBER], TWILIO_WEBHOOK_ID, TWILIO_SID)

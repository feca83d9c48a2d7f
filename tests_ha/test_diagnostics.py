"""Diagnostics, fetched over Home Assistant's HTTP API as the UI's download does."""

from __future__ import annotations

import json
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from smsbridge.testing.fake_voipms import FakeVoipms

from .conftest import (
    DOMAIN,
    TWILIO_TOKEN,
    VOIPMS_NUMBER,
    VOIPMS_PASSWORD,
    VOIPMS_USER,
    VOIPMS_WEBHOOK_ID,
    carrier_entry,
)

REDACTED = "**REDACTED**"


async def load_integration(hass: HomeAssistant) -> None:
    """Load the integration alone, so that diagnostics serves entries that are not set up."""
    assert await async_setup_component(hass, DOMAIN, {})


async def diagnostics(hass: HomeAssistant, client: ClientSessionGenerator,
                      entry: MockConfigEntry) -> tuple[dict[str, Any], str]:
    """The entry's diagnostics, and the JSON text the user would download."""
    data = await get_diagnostics_for_config_entry(hass, client, entry)
    return data, json.dumps(data)  # type: ignore[return-value]


async def test_loaded_voipms_entry(hass: HomeAssistant, hass_client: ClientSessionGenerator,
                                   fake_voipms: FakeVoipms, voipms_entry: MockConfigEntry
                                   ) -> None:
    voipms_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(voipms_entry.entry_id)
    await hass.async_block_till_done()

    data, text = await diagnostics(hass, hass_client, voipms_entry)

    saved = data["entry"]["data"]
    assert saved["settings"]["api_password"] == REDACTED
    assert saved["settings"]["username"] == VOIPMS_USER
    assert saved["webhook_id"] == REDACTED
    assert saved["numbers"] == [VOIPMS_NUMBER] and saved["carrier"] == "voipms"
    assert VOIPMS_PASSWORD not in text and VOIPMS_WEBHOOK_ID not in text
    runtime = data["runtime"]
    assert runtime["state"] == "loaded"
    assert runtime["numbers"] == [VOIPMS_NUMBER]
    assert runtime["carrier"]["name"] == "VoIP.ms"
    assert runtime["carrier"]["capabilities"]["mms"] is True
    assert await hass.config_entries.async_unload(voipms_entry.entry_id)


async def test_every_secret_setting_of_the_carrier_is_redacted(
        hass: HomeAssistant, hass_client: ClientSessionGenerator) -> None:
    # Not set up: diagnostics read what is saved (and say the entry is not loaded).
    entry = carrier_entry(
        "vonage", {"api_key": "vonage-key", "api_secret": "vonage-secret",
                   "signature_secret": "sig-secret", "private_key": "-----BEGIN PRIVATE",
                   "application_id": "app-1"},
        ["+15145550100"], "vonage-hook-" + "2" * 40, "vonage-key")
    await load_integration(hass)
    entry.add_to_hass(hass)

    data, text = await diagnostics(hass, hass_client, entry)

    settings = data["entry"]["data"]["settings"]
    assert {name for name, value in settings.items() if value == REDACTED} == {
        "api_secret", "signature_secret", "private_key"}
    # Vonage's API key is an identifier (its secret is api_secret): shown.
    assert settings["api_key"] == "vonage-key" and settings["application_id"] == "app-1"
    for secret in ("vonage-secret", "sig-secret", "BEGIN PRIVATE", "2" * 40):
        assert secret not in text
    assert data["runtime"] == {"state": "not_loaded"}


async def test_server_mode_secrets_are_redacted(hass: HomeAssistant,
                                                hass_client: ClientSessionGenerator) -> None:
    entry = MockConfigEntry(domain=DOMAIN, unique_id="server:https://gw.example:8080", data={
        "mode": "server", "url": "https://gw.example:8080", "api_key": "sbk_secret_key",
        "numbers": ["+15145550100"], "webhook_id": "gw-hook-" + "3" * 40,
        "webhook_secret": "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="})
    await load_integration(hass)
    entry.add_to_hass(hass)

    data, text = await diagnostics(hass, hass_client, entry)

    saved = data["entry"]["data"]
    assert saved["api_key"] == saved["webhook_secret"] == saved["webhook_id"] == REDACTED
    assert saved["url"] == "https://gw.example:8080"
    for secret in ("sbk_secret_key", "whsec_", "3" * 40):
        assert secret not in text


async def test_settings_of_a_carrier_no_longer_installed_are_all_redacted(
        hass: HomeAssistant, hass_client: ClientSessionGenerator) -> None:
    entry = carrier_entry("gone", {"tenant": "t-1", "token": TWILIO_TOKEN},
                          ["+15145550100"], "gone-hook-" + "4" * 40, "t-1")
    await load_integration(hass)
    entry.add_to_hass(hass)

    data, text = await diagnostics(hass, hass_client, entry)

    assert data["entry"]["data"]["settings"] == {"tenant": REDACTED, "token": REDACTED}
    assert TWILIO_TOKEN not in text

"""Setting up and unloading carrier-mode entries inside a real Home Assistant."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from smsbridge.testing.fake_voipms import FakeVoipms

from .conftest import DOMAIN, TWILIO_NUMBER, VOIPMS_NUMBER


def entity_ids(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, str]:
    """The entry's entity ids by platform."""
    registry = er.async_get(hass)
    return {item.domain: item.entity_id
            for item in er.async_entries_for_config_entry(registry, entry.entry_id)}


@pytest.mark.parametrize(("entry_fixture", "number", "manufacturer"), [
    ("voipms_entry", VOIPMS_NUMBER, "VoIP.ms"),
    ("twilio_entry", TWILIO_NUMBER, "Twilio"),
])
async def test_setup_creates_a_device_with_sensor_event_and_notify_then_unloads(
    hass: HomeAssistant, request: pytest.FixtureRequest, entry_fixture: str, number: str,
    manufacturer: str, hass_client_no_auth: Any,
) -> None:
    entry: MockConfigEntry = request.getfixturevalue(entry_fixture)
    entry.add_to_hass(hass)

    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.LOADED
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    assert [(d.name, d.manufacturer, d.identifiers) for d in devices] == [
        (number, manufacturer, {(DOMAIN, f"{entry.entry_id}_{number}")})]
    ids = entity_ids(hass, entry)
    assert set(ids) == {"sensor", "event", "notify"}
    sensor = hass.states.get(ids["sensor"])
    assert sensor is not None
    assert sensor.attributes["phone_number"] == number
    assert sensor.attributes["webhook_url"].endswith(f"/api/webhook/{entry.data['webhook_id']}")

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED
    # The webhook is gone with the entry: HA answers 200 to unknown ids and runs nothing.
    client = await hass_client_no_auth()
    events: list[Any] = []
    hass.bus.async_listen("smsbridge_message_received", events.append)
    answer = await client.post(f"/api/webhook/{entry.data['webhook_id']}",
                               json={"data": {"payload": {}}})
    assert answer.status == 200
    assert await answer.text() == ""
    assert events == []


async def test_rejected_credentials_stop_setup_and_ask_for_reauth(
    hass: HomeAssistant, fake_voipms: FakeVoipms, voipms_entry: MockConfigEntry,
) -> None:
    fake_voipms.api_password = "rotated"
    voipms_entry.add_to_hass(hass)

    assert not await hass.config_entries.async_setup(voipms_entry.entry_id)
    await hass.async_block_till_done()

    assert voipms_entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == ["reauth"]
    issues = [issue for (domain, _), issue in ir.async_get(hass).issues.items()
              if domain == DOMAIN]
    assert [issue.translation_key for issue in issues] == ["credentials_invalid_auth"]


async def test_carrier_unreachable_at_setup_still_receives(
    hass: HomeAssistant, fake_voipms: FakeVoipms, voipms_entry: MockConfigEntry,
) -> None:
    fake_voipms.http_error_next(503, methods={"getDIDsInfo"})
    voipms_entry.add_to_hass(hass)

    assert await hass.config_entries.async_setup(voipms_entry.entry_id)
    await hass.async_block_till_done()

    assert voipms_entry.state is ConfigEntryState.LOADED
    assert await hass.config_entries.async_unload(voipms_entry.entry_id)


async def test_unknown_carrier_is_a_setup_error(hass: HomeAssistant) -> None:
    entry = MockConfigEntry(domain=DOMAIN, data={
        "mode": "carrier", "carrier": "no-such-carrier", "settings": {},
        "numbers": [VOIPMS_NUMBER], "webhook_id": "x" * 64})
    entry.add_to_hass(hass)

    assert not await hass.config_entries.async_setup(entry.entry_id)

    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert "no-such-carrier" in (entry.reason or "")


async def test_numbers_changed_in_the_options_reload_the_entry_with_their_devices(
    hass: HomeAssistant, voipms_entry: MockConfigEntry,
) -> None:
    voipms_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(voipms_entry.entry_id)
    await hass.async_block_till_done()
    second = "+15145550177"

    hass.config_entries.async_update_entry(
        voipms_entry, options={"numbers": [VOIPMS_NUMBER, second]})
    await hass.async_block_till_done()

    assert voipms_entry.state is ConfigEntryState.LOADED
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), voipms_entry.entry_id)
    assert sorted(d.name for d in devices) == sorted([VOIPMS_NUMBER, second])
    sensors = [s for s in hass.states.async_all("sensor")
               if s.attributes.get("phone_number") == second]
    assert len(sensors) == 1

    hass.config_entries.async_update_entry(voipms_entry, options={"numbers": [second]})
    await hass.async_block_till_done()

    devices = dr.async_entries_for_config_entry(dr.async_get(hass), voipms_entry.entry_id)
    assert [d.name for d in devices] == [second]

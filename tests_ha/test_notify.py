"""The per-number notify entity: notify.send_message texts the number's allowed senders."""

from __future__ import annotations

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from smsbridge.testing.fake_voipms import FakeVoipms

from .action_helpers import setup_entry, shown
from .conftest import VOIPMS_DID, VOIPMS_NUMBER

HOUSEHOLD = ["+14385550123", "+14385550124"]


def notify_entity(hass: HomeAssistant, entry: MockConfigEntry, number: str) -> str:
    """The entity id of the number's notify entity."""
    entity_id = er.async_get(hass).async_get_entity_id(
        "notify", "smsbridge", f"{entry.entry_id}_{number}_allowed_senders")
    assert entity_id is not None
    return entity_id


async def notify(hass: HomeAssistant, entity_id: str, message: str,
                 title: str | None = None) -> None:
    """notify.send_message, as an automation calls it."""
    data = {"entity_id": entity_id, "message": message}
    if title is not None:
        data["title"] = title
    await hass.services.async_call("notify", "send_message", data, blocking=True)


async def test_send_message_texts_each_allowed_sender_from_the_number(
    hass: HomeAssistant, voipms_entry: MockConfigEntry, fake_voipms: FakeVoipms,
) -> None:
    voipms_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        voipms_entry, options={"allowed_senders": {VOIPMS_NUMBER: HOUSEHOLD}})
    await setup_entry(hass, voipms_entry)
    entity_id = notify_entity(hass, voipms_entry, VOIPMS_NUMBER)

    await notify(hass, entity_id, "Front door opened", title="Alarm")

    sends = [(r.method, r.params["did"], r.params["dst"], r.params["message"])
             for r in fake_voipms.requests if r.method == "sendSMS"]
    assert sends == [("sendSMS", VOIPMS_DID, "4385550123", "Alarm\nFront door opened"),
                     ("sendSMS", VOIPMS_DID, "4385550124", "Alarm\nFront door opened")]
    # The entity's state is when it last sent.
    state = hass.states.get(entity_id)
    assert state is not None
    assert state.state not in ("unknown", "unavailable")


async def test_a_number_without_allowed_senders_says_where_to_set_them(
    hass: HomeAssistant, voipms_entry: MockConfigEntry, fake_voipms: FakeVoipms,
) -> None:
    await setup_entry(hass, voipms_entry)

    with pytest.raises(ServiceValidationError) as caught:
        await notify(hass, notify_entity(hass, voipms_entry, VOIPMS_NUMBER), "hello")

    assert shown(caught.value) == (
        f"{VOIPMS_NUMBER} has no allowed senders to text: set them in the entry's options"
        " (Settings > Devices & services > smsbridge > Configure).")
    assert [r for r in fake_voipms.requests if r.method.startswith("send")] == []

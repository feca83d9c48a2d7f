"""Per number, a sensor whose state is the last text received (restored across restarts)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.components.sensor import RestoreSensor
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddEntitiesCallback

from .const import MAX_STATE_LENGTH
from .entity import PhoneNumberEntity, signal_received
from .webhook import ReceivedText, webhook_url

if TYPE_CHECKING:
    from . import SmsbridgeConfigEntry

# The community VoIP.ms integration's attribute names (so its automations keep working),
# plus media; ATTR_MESSAGE holds the whole text where the state is cut at 255 characters.
ATTR_FROM = "from"
ATTR_MESSAGE = "message"
ATTR_MESSAGE_ID = "message_id"
ATTR_LAST_UPDATED = "last_updated"
ATTR_PHONE_NUMBER = "phone_number"
ATTR_WEBHOOK_URL = "webhook_url"
ATTR_MEDIA = "media"
RESTORED_ATTRIBUTES = (ATTR_FROM, ATTR_MESSAGE, ATTR_MESSAGE_ID, ATTR_LAST_UPDATED, ATTR_MEDIA)


async def async_setup_entry(hass: HomeAssistant, entry: SmsbridgeConfigEntry,
                            async_add_entities: AddEntitiesCallback) -> None:
    """One last-message sensor per number of the entry."""
    runtime = entry.runtime_data
    async_add_entities(LastMessageSensor(entry, number, runtime.provider.name)
                       for number in runtime.numbers)


def state_text(text: str) -> str:
    """``text`` cut to fit a state, an ellipsis marking the cut."""
    if len(text) <= MAX_STATE_LENGTH:
        return text
    return text[: MAX_STATE_LENGTH - 1] + "…"


class LastMessageSensor(PhoneNumberEntity, RestoreSensor):
    """The last text a number received, who sent it, and its media."""

    # The webhook URL holds the entry's secret webhook id: shown, but kept out of history.
    _unrecorded_attributes = frozenset({ATTR_WEBHOOK_URL})

    def __init__(self, entry: SmsbridgeConfigEntry, number: str, carrier_name: str) -> None:
        """The sensor of ``number``; no text until one arrives or is restored."""
        super().__init__(entry, number, carrier_name, "last_message")
        self._message: dict[str, Any] = {}

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """The last message's details, the number and the URL carriers call."""
        return {
            ATTR_FROM: self._message.get(ATTR_FROM),
            ATTR_MESSAGE: self._message.get(ATTR_MESSAGE),
            ATTR_MESSAGE_ID: self._message.get(ATTR_MESSAGE_ID),
            ATTR_LAST_UPDATED: self._message.get(ATTR_LAST_UPDATED),
            ATTR_MEDIA: self._message.get(ATTR_MEDIA, []),
            ATTR_PHONE_NUMBER: self.number,
            ATTR_WEBHOOK_URL: webhook_url(self.hass, self.entry),
        }

    async def async_added_to_hass(self) -> None:
        """Restore the last text, then follow the number's inbound messages."""
        await super().async_added_to_hass()
        last = await self.async_get_last_sensor_data()
        last_state = await self.async_get_last_state()
        if last is not None and last_state is not None:
            self._attr_native_value = last.native_value
            self._message = {key: last_state.attributes.get(key) for key in RESTORED_ATTRIBUTES}
        self.async_on_remove(async_dispatcher_connect(
            self.hass, signal_received(self.entry.entry_id, self.number), self._received))

    @callback
    def _received(self, received: ReceivedText) -> None:
        self._attr_native_value = state_text(received.text)
        self._message = {
            ATTR_FROM: received.sender,
            ATTR_MESSAGE: received.text,
            ATTR_MESSAGE_ID: received.message_id,
            ATTR_LAST_UPDATED: received.received_at.isoformat(),
            ATTR_MEDIA: list(received.media),
        }
        self.async_write_ha_state()

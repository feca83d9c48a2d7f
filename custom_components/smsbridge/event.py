"""Per number, an event entity: `message_received` for texts in, `message_status` for receipts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.components.event import EventEntity
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddEntitiesCallback

from .const import EVENT_TYPE_RECEIVED, EVENT_TYPE_STATUS
from .entity import PhoneNumberEntity, signal_received, signal_status
from .webhook import ReceivedText

if TYPE_CHECKING:
    from . import SmsbridgeConfigEntry


async def async_setup_entry(hass: HomeAssistant, entry: SmsbridgeConfigEntry,
                            async_add_entities: AddEntitiesCallback) -> None:
    """One message event entity per number of the entry."""
    runtime = entry.runtime_data
    async_add_entities(MessageEventEntity(entry, number, runtime.provider.name)
                       for number in runtime.numbers)


class MessageEventEntity(PhoneNumberEntity, EventEntity):
    """Fires when the number receives a text, and when a text it sent changes status."""

    _attr_event_types = [EVENT_TYPE_RECEIVED, EVENT_TYPE_STATUS]

    def __init__(self, entry: SmsbridgeConfigEntry, number: str, carrier_name: str) -> None:
        """The event entity of ``number``."""
        super().__init__(entry, number, carrier_name, "messages")

    async def async_added_to_hass(self) -> None:
        """Follow the number's inbound messages and delivery receipts."""
        await super().async_added_to_hass()
        entry_id = self.entry.entry_id
        self.async_on_remove(async_dispatcher_connect(
            self.hass, signal_received(entry_id, self.number), self._received))
        self.async_on_remove(async_dispatcher_connect(
            self.hass, signal_status(entry_id, self.number), self._status))

    @callback
    def _received(self, received: ReceivedText) -> None:
        self._trigger_event(EVENT_TYPE_RECEIVED, received.event_data())
        self.async_write_ha_state()

    @callback
    def _status(self, data: dict[str, Any]) -> None:
        self._trigger_event(EVENT_TYPE_STATUS, data)
        self.async_write_ha_state()

"""What every per-number entity shares: its device, and the signals that update it."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntry
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity

from .const import DOMAIN


def signal_received(entry_id: str, number: str) -> str:
    """The dispatcher signal carrying a ReceivedText for one of an entry's numbers."""
    return f"{DOMAIN}_{entry_id}_{number}_received"


def signal_status(entry_id: str, number: str) -> str:
    """The dispatcher signal carrying a delivery receipt for a message a number sent."""
    return f"{DOMAIN}_{entry_id}_{number}_status"


def device_identifier(entry_id: str, number: str) -> tuple[str, str]:
    """The device registry identifier of one phone number of an entry."""
    return (DOMAIN, f"{entry_id}_{number}")


def number_device(entry: ConfigEntry, number: str, carrier_name: str) -> DeviceInfo:
    """The device standing for one phone number of an entry."""
    return DeviceInfo(
        identifiers={device_identifier(entry.entry_id, number)},
        name=number,
        manufacturer=carrier_name,
        model="Phone number",
        entry_type=DeviceEntryType.SERVICE,
    )


class PhoneNumberEntity(Entity):
    """An entity of one phone number; pushed to by the webhook, never polled."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, entry: ConfigEntry, number: str, carrier_name: str, key: str) -> None:
        """Name the entity by ``key`` (its translation key) on the number's device."""
        self.entry = entry
        self.number = number
        self._attr_translation_key = key
        self._attr_unique_id = f"{entry.entry_id}_{number}_{key}"
        self._attr_device_info = number_device(entry, number, carrier_name)

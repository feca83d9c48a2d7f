"""Per number, a notify entity: ``notify.send_message`` texts the number's allowed senders.

A notify entity has no recipient field, so it texts the people the number already knows:
the allowed senders set for it in the entry's options (the phones allowed to send it
commands are the household's). A number with none set refuses, saying where to set them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.components.notify import NotifyEntity, NotifyEntityFeature
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddEntitiesCallback

from .const import CONF_ALLOWED_SENDERS
from .entity import PhoneNumberEntity
from .send import async_send_messages, invalid

if TYPE_CHECKING:
    from . import SmsbridgeConfigEntry


async def async_setup_entry(hass: HomeAssistant, entry: SmsbridgeConfigEntry,
                            async_add_entities: AddEntitiesCallback) -> None:
    """One notify entity per number of the entry."""
    runtime = entry.runtime_data
    async_add_entities(AllowedSendersNotify(entry, number, runtime.provider.name)
                       for number in runtime.numbers)


def notify_recipients(entry: SmsbridgeConfigEntry, number: str) -> list[str]:
    """Who a number's notify entity texts: its allowed senders."""
    return list((entry.options.get(CONF_ALLOWED_SENDERS) or {}).get(number) or [])


class AllowedSendersNotify(PhoneNumberEntity, NotifyEntity):
    """Texts a number's allowed senders from that number; a title goes on the first line."""

    _attr_supported_features = NotifyEntityFeature.TITLE

    def __init__(self, entry: SmsbridgeConfigEntry, number: str, carrier_name: str) -> None:
        """The notify entity of ``number``."""
        super().__init__(entry, number, carrier_name, "allowed_senders")

    async def async_send_message(self, message: str, title: str | None = None) -> None:
        """Text ``message`` (under ``title``) to each allowed sender of the number."""
        recipients = notify_recipients(self.entry, self.number)
        if not recipients:
            raise invalid("no_allowed_senders", number=self.number)
        text = f"{title}\n{message}" if title else message
        await async_send_messages(self.hass, recipients, text, self.number)

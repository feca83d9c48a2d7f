"""The repair issue raised when a carrier (or the gateway) refuses an entry's credentials.

The fix is the entry's reauth flow, which the issue starts and the flow's success clears;
the issue itself only tells the user, on the Repairs page, what happened and where to go.
"""

from __future__ import annotations

from homeassistant.components.repairs import ConfirmRepairFlow, RepairsFlow
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from smsbridge.providers import CredentialsRejected

from .const import DOMAIN

# The translation key of each way a carrier refuses credentials (CredentialsRejected.kind).
ISSUE_KEYS = {
    "invalid_auth": "credentials_invalid_auth",
    "api_disabled": "credentials_api_disabled",
    "ip_not_allowed": "credentials_ip_not_allowed",
}


def credentials_issue_id(entry: ConfigEntry) -> str:
    """The id of an entry's credentials issue: one per entry."""
    return f"credentials_rejected_{entry.entry_id}"


@callback
def async_credentials_rejected(hass: HomeAssistant, entry: ConfigEntry,
                               error: CredentialsRejected | None = None) -> None:
    """Raise the entry's credentials issue (how they were refused, when known); start reauth."""
    kind = error.kind if error is not None else "invalid_auth"
    ir.async_create_issue(
        hass, DOMAIN, credentials_issue_id(entry),
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=ISSUE_KEYS[kind],
        translation_placeholders={
            "title": entry.title,
            "seen_ip": (error.seen_ip if error is not None else None) or "-",
        },
    )
    entry.async_start_reauth(hass)


@callback
def async_clear_credentials_issue(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Remove the entry's credentials issue, if there is one: the credentials work again."""
    ir.async_delete_issue(hass, DOMAIN, credentials_issue_id(entry))


async def async_create_fix_flow(hass: HomeAssistant, issue_id: str,
                                data: dict[str, str | int | float | None] | None
                                ) -> RepairsFlow:
    """Home Assistant asks every repairs platform for this; no issue here is fixed in place."""
    return ConfirmRepairFlow()

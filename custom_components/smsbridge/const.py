"""Constants of the smsbridge integration: the domain, the config entry's keys, event names."""

from __future__ import annotations

from typing import Final

DOMAIN: Final = "smsbridge"

# Platforms set up for every entry; the notify platform joins the list when it exists.
PLATFORMS: Final[list[str]] = ["sensor", "event", "notify"]

# entry.data, both modes
CONF_MODE: Final = "mode"
CONF_NUMBERS: Final = "numbers"
CONF_WEBHOOK_ID: Final = "webhook_id"
MODE_CARRIER: Final = "carrier"
MODE_SERVER: Final = "server"
# entry.data, carrier mode: the provider key and its Config's fields (secrets as plain strings)
CONF_CARRIER: Final = "carrier"
CONF_SETTINGS: Final = "settings"
# entry.data, server mode
CONF_URL: Final = "url"
CONF_API_KEY: Final = "api_key"
CONF_WEBHOOK_SECRET: Final = "webhook_secret"

# entry.options (all optional); CONF_NUMBERS there overrides entry.data's
CONF_ALLOWED_SENDERS: Final = "allowed_senders"
CONF_LONG_TEXT: Final = "long_text"
LONG_TEXT_SPLIT: Final = "split"
LONG_TEXT_TRUNCATE: Final = "truncate"
LONG_TEXT_REFUSE: Final = "refuse"
LONG_TEXT_CHOICES: Final = (LONG_TEXT_SPLIT, LONG_TEXT_TRUNCATE, LONG_TEXT_REFUSE)
DEFAULT_LONG_TEXT: Final = LONG_TEXT_SPLIT

# Bus events
EVENT_MESSAGE_RECEIVED: Final = "smsbridge_message_received"
EVENT_MESSAGE_STATUS: Final = "smsbridge_message_status"
# Event types of the per-number event entity
EVENT_TYPE_RECEIVED: Final = "message_received"
EVENT_TYPE_STATUS: Final = "message_status"

# Delivery receipts come to the entry's webhook URL with this query added; inbound to the bare URL.
STATUS_QUERY_KEY: Final = "kind"
STATUS_QUERY_VALUE: Final = "status"

# Home Assistant's cap on a state's length; the full text stays in an attribute.
MAX_STATE_LENGTH: Final = 255
# How many carrier message ids each entry remembers to drop a re-sent webhook.
SEEN_IDS_KEPT: Final = 1000

# Bus event of the get_webhook_url action: one per entry, with its URL and what to paste where.
EVENT_WEBHOOK_URL: Final = "smsbridge_webhook_url"

# Settings forms: the settings nearly everyone leaves alone, offered apart (a collapsed section,
# or on Home Assistant before 2026.6 advanced mode), and that section's key. Plain Python, so
# scripts/ha-translations reads them without Home Assistant.
ADVANCED_FIELDS: Final = frozenset({"base_url"})
ADVANCED_SECTION: Final = "advanced"

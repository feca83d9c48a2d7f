"""The tables, as SQLAlchemy Core metadata; Alembic migrations must produce exactly this."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    false,
)

from .base import (
    MAX_CARRIER_ID_CHARS,
    MAX_ERROR_CODE_CHARS,
    MAX_NUMBER_CHARS,
    MAX_VOICE_CHARS,
)

metadata = MetaData()

_ESCAPED = re.compile(r"\\(.)", re.DOTALL)


def escape_nul(value: str) -> str:
    """PostgreSQL's text cannot hold U+0000: write NUL as backslash-0 and a backslash as two."""
    # Containment tests first: nearly every text has neither, and then costs no copy.
    if "\\" not in value and "\x00" not in value:
        return value
    return value.replace("\\", "\\\\").replace("\x00", "\\0")


def unescape_nul(value: str) -> str:
    """The inverse of ``escape_nul``."""
    if "\\" not in value:
        return value
    return _ESCAPED.sub(lambda m: "\x00" if m.group(1) == "0" else m.group(1), value)


class _PgNulSafeText(TypeDecorator[str]):
    """TEXT on PostgreSQL holding any Python string, NUL included (see ``escape_nul``)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return escape_nul(value) if isinstance(value, str) else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return unescape_nul(value) if isinstance(value, str) else value


# Free text from users and carriers. SQLite stores NUL as is, so only PostgreSQL escapes.
NulSafeText = Text().with_variant(_PgNulSafeText(), "postgresql")

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a bigint identity.
_SEQ = BigInteger().with_variant(Integer(), "sqlite")

messages = Table(
    "messages",
    metadata,
    Column("seq", _SEQ, primary_key=True, autoincrement=True),
    Column("id", String(40), nullable=False, unique=True),
    Column("direction", String(10), nullable=False),
    Column("connection", String(64), nullable=False),
    Column("carrier", String(32), nullable=False),
    Column("from_number", String(MAX_NUMBER_CHARS), nullable=False),
    Column("to_number", String(MAX_NUMBER_CHARS), nullable=False),
    Column("text", NulSafeText, nullable=False),
    Column("media", Text, nullable=False, default="[]"),  # JSON list
    Column("status", String(16), nullable=False),
    Column("segments", Integer, nullable=False),
    Column("encoding", String(8), nullable=False),
    Column("carrier_message_id", String(MAX_CARRIER_ID_CHARS)),
    # "<connection>:<carrier id>" for inbound rows only: stores each carrier message once.
    Column("inbound_key", String(200), unique=True),
    # An Idempotency-Key is unique within its scope (the API key, or "cli") while it is kept;
    # the fingerprint tells a retry of the same request from a different one.
    Column("idempotency_scope", String(64)),
    Column("idempotency_key", String(300)),
    Column("idempotency_fingerprint", String(64)),
    Column("error_code", String(MAX_ERROR_CODE_CHARS)),
    Column("error_reason", NulSafeText),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float),  # epoch seconds; set while queued
    Column("lease_owner", String(64)),
    Column("lease_until", Float),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    # "message", or "call": a voice call that speaks ``text`` (see core.messages.KIND_CALL).
    Column("kind", String(8), nullable=False, server_default="message"),
    Column("voice", String(MAX_VOICE_CHARS)),
    Column("language", String(MAX_VOICE_CHARS)),
    Column("repeat", Integer),
    Column("account_id", String(40)),  # accounts.id; NULL only for rows of no account (probes)
    # Where the Twilio-compatible face posts this message's status changes (its StatusCallback).
    Column("status_callback", Text),
)
Index("ix_messages_outbox", messages.c.status, messages.c.next_attempt_at)
Index("ix_messages_carrier_id", messages.c.connection, messages.c.carrier_message_id)
Index("ix_messages_numbers", messages.c.from_number, messages.c.to_number)
Index("ix_messages_account", messages.c.account_id, messages.c.seq)
Index("ux_messages_idempotency", messages.c.idempotency_scope, messages.c.idempotency_key,
      unique=True)

deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("seq", _SEQ, primary_key=True, autoincrement=True),
    Column("id", String(40), nullable=False, unique=True),  # the webhook-id header
    Column("url", Text, nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("message_id", String(40)),
    Column("payload", Text, nullable=False),  # the exact body that is signed and sent
    Column("status", String(16), nullable=False),  # pending, delivered, failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float),
    Column("lease_owner", String(64)),
    Column("lease_until", Float),
    Column("last_error", NulSafeText),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("account_id", String(40)),
    # The run-time webhook (app_webhooks.id) it goes to; NULL for config-file webhooks and MQTT.
    Column("webhook_id", String(40)),
)
Index("ix_deliveries_account", deliveries.c.account_id)
Index("ix_deliveries_queue", deliveries.c.status, deliveries.c.next_attempt_at)
Index("ix_deliveries_message", deliveries.c.message_id)

# Receipts that arrived before the send that they describe was recorded (the carrier
# answered the send, then called back faster than the outbox committed).
early_receipts = Table(
    "early_receipts",
    metadata,
    Column("seq", _SEQ, primary_key=True, autoincrement=True),
    Column("connection", String(64), nullable=False),
    Column("carrier_message_id", String(MAX_CARRIER_ID_CHARS), nullable=False),
    Column("status", String(16), nullable=False),
    Column("error_code", String(MAX_ERROR_CODE_CHARS)),
    Column("error_reason", NulSafeText),
    Column("created_at", Float, nullable=False),
)
Index("ix_early_receipts_carrier_id", early_receipts.c.carrier_message_id)

# What each inbound rule did with a message (see store/rule_runs.py): one row per rule and
# action, so that running the rules again on a retried webhook updates instead of adding.
rule_runs = Table(
    "rule_runs",
    metadata,
    Column("seq", _SEQ, primary_key=True, autoincrement=True),
    Column("message_id", String(40), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("action", String(16), nullable=False),  # match, reply, forward
    Column("target", String(MAX_NUMBER_CHARS), nullable=False),  # "" for the match itself
    Column("status", String(24), nullable=False),
    Column("detail", NulSafeText),
    Column("captures", NulSafeText),  # JSON object of the pattern's named groups
    Column("outbound_message_id", String(40)),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
Index("ux_rule_runs_action", rule_runs.c.message_id, rule_runs.c.rule, rule_runs.c.action,
      rule_runs.c.target, unique=True)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),  # hex SHA-256 of the whole key
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
    Column("account_id", String(40)),
    # An admin key manages accounts; every other key acts within its own account only.
    Column("admin", Boolean, nullable=False, server_default=false()),
)
Index("ix_api_keys_account", api_keys.c.account_id)
# A name picks one live key of an account (`smsbridge keys revoke NAME`); revoked keys free
# their name.
Index("ux_api_keys_live_name", api_keys.c.account_id, api_keys.c.name, unique=True,
      sqlite_where=api_keys.c.revoked_at.is_(None),
      postgresql_where=api_keys.c.revoked_at.is_(None))

carrier_tokens = Table(
    "carrier_tokens",
    metadata,
    Column("connection", String(64), primary_key=True),
    Column("token", String(128), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
)

# The opt-out (suppression) list: nothing is sent from ``from_number`` to ``to_number``.
# ``source`` says who put the pair there: keyword (a STOP), carrier (its opted-out error),
# api or cli.
optouts = Table(
    "optouts",
    metadata,
    Column("seq", _SEQ, primary_key=True, autoincrement=True),
    Column("from_number", String(MAX_NUMBER_CHARS), nullable=False),
    Column("to_number", String(MAX_NUMBER_CHARS), nullable=False),
    Column("source", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("account_id", String(40)),  # the account of the number that sends
)
Index("ix_optouts_account", optouts.c.account_id)
Index("ux_optouts_pair", optouts.c.from_number, optouts.c.to_number, unique=True)

# Tenants. The default account (its id in meta "default_account") owns the config file's
# connections and webhooks and everything stored before accounts existed.
accounts = Table(
    "accounts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("created_at", Float, nullable=False),
    # The Twilio-style auth token (a Fernet token of it): signs Twilio-format webhooks.
    Column("auth_token", Text),
)

# Carrier connections added at run time (the config file's live only in the config).
# ``settings`` is a Fernet token of the settings' JSON: the carrier secrets are in it.
connections = Table(
    "connections",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("account_id", String(40), nullable=False),
    Column("carrier", String(32), nullable=False),
    Column("numbers", Text, nullable=False),  # JSON list of E.164 numbers
    Column("settings", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
Index("ix_connections_account", connections.c.account_id)

# A number belongs to at most one run-time connection: the primary key says so.
connection_numbers = Table(
    "connection_numbers",
    metadata,
    Column("number", String(MAX_NUMBER_CHARS), primary_key=True),
    Column("connection", String(64), nullable=False),
)
Index("ix_connection_numbers_connection", connection_numbers.c.connection)

# App webhooks added at run time; ``secret`` is a Fernet token of the signing secret.
app_webhooks = Table(
    "app_webhooks",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("account_id", String(40), nullable=False),
    Column("url", Text, nullable=False),
    Column("events", Text, nullable=False),  # JSON list of event types
    Column("secret", Text, nullable=False),
    Column("format", String(16), nullable=False, server_default="standard"),
    Column("created_at", Float, nullable=False),
)
Index("ix_app_webhooks_account", app_webhooks.c.account_id)

# Small runtime facts shared between processes, such as the address `serve` listens on.
meta = Table(
    "meta",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)

"""The tables, as SQLAlchemy Core metadata; Alembic migrations must produce exactly this."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

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
    Column("from_number", String(32), nullable=False),
    Column("to_number", String(32), nullable=False),
    Column("text", Text, nullable=False),
    Column("media", Text, nullable=False, default="[]"),  # JSON list
    Column("status", String(16), nullable=False),
    Column("segments", Integer, nullable=False),
    Column("encoding", String(8), nullable=False),
    Column("carrier_message_id", String(128)),
    # "<connection>:<carrier id>" for inbound rows only: stores each carrier message once.
    Column("inbound_key", String(200), unique=True),
    Column("idempotency_key", String(300), unique=True),
    Column("error_code", String(64)),
    Column("error_reason", Text),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float),  # epoch seconds; set while queued
    Column("lease_owner", String(64)),
    Column("lease_until", Float),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
Index("ix_messages_outbox", messages.c.status, messages.c.next_attempt_at)
Index("ix_messages_carrier_id", messages.c.connection, messages.c.carrier_message_id)
Index("ix_messages_numbers", messages.c.from_number, messages.c.to_number)

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
    Column("last_error", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
Index("ix_deliveries_queue", deliveries.c.status, deliveries.c.next_attempt_at)
Index("ix_deliveries_message", deliveries.c.message_id)

# Receipts that arrived before the send that they describe was recorded (the carrier
# answered the send, then called back faster than the outbox committed).
early_receipts = Table(
    "early_receipts",
    metadata,
    Column("seq", _SEQ, primary_key=True, autoincrement=True),
    Column("connection", String(64), nullable=False),
    Column("carrier_message_id", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("error_code", String(64)),
    Column("error_reason", Text),
    Column("created_at", Float, nullable=False),
)
Index("ix_early_receipts_carrier_id", early_receipts.c.carrier_message_id)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),  # hex SHA-256 of the whole key
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
)

carrier_tokens = Table(
    "carrier_tokens",
    metadata,
    Column("connection", String(64), primary_key=True),
    Column("token", String(128), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
)

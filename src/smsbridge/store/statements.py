"""The store's prebuilt SQL statements, and the conversions between rows and records."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..core.messages import Direction, Media, Message, MessageStatus
from .base import MAX_ERROR_CODE_CHARS, ApiKeyRecord, DeliveryRecord
from .schema import deliveries, early_receipts, messages
from .schema import meta as meta_table

# Built once: SQLAlchemy caches the compiled form of a statement object, not of a
# fresh ``insert().values(...)`` per row (measured: ~50 vs ~325 µs a row).
INSERT_MESSAGE = insert(messages)
INSERT_DELIVERY = insert(deliveries)
BY_ID = select(messages).where(messages.c.id == bindparam("k"))
# A row per scoped idempotency key: the second insert with a kept key returns no row.
INSERT_ONCE_PER_KEY = {
    name: dialect_insert(messages)
    .on_conflict_do_nothing(
        index_elements=[messages.c.idempotency_scope, messages.c.idempotency_key])
    .returning(messages.c.seq)
    for name, dialect_insert in (("sqlite", sqlite_insert), ("postgresql", pg_insert))
}
_META_SQLITE, _META_PG = sqlite_insert(meta_table), pg_insert(meta_table)
# Keeps the value already there (two processes starting together agree on the first).
INSERT_META_ONCE = {
    "sqlite": _META_SQLITE.on_conflict_do_nothing(index_elements=[meta_table.c.key]),
    "postgresql": _META_PG.on_conflict_do_nothing(index_elements=[meta_table.c.key]),
}
UPSERT_META = {
    "sqlite": _META_SQLITE.on_conflict_do_update(
        index_elements=[meta_table.c.key],
        set_={"value": _META_SQLITE.excluded.value,
              "updated_at": _META_SQLITE.excluded.updated_at}),
    "postgresql": _META_PG.on_conflict_do_update(
        index_elements=[meta_table.c.key],
        set_={"value": _META_PG.excluded.value, "updated_at": _META_PG.excluded.updated_at}),
}
INSERT_INBOUND_SQLITE = sqlite_insert(messages).on_conflict_do_nothing(
    index_elements=[messages.c.inbound_key])
BY_INBOUND_KEYS = select(messages).where(
    messages.c.inbound_key.in_(bindparam("keys", expanding=True)))
BY_IDEMPOTENCY_KEY = select(messages).where(messages.c.idempotency_scope == bindparam("scope"),
                                            messages.c.idempotency_key == bindparam("k"))
BY_IDS = select(messages).where(messages.c.id.in_(bindparam("ids", expanding=True)))
BY_CARRIER_ID = select(messages).where(
    messages.c.connection == bindparam("connection"),
    messages.c.carrier_message_id == bindparam("carrier_id"),
    messages.c.direction == Direction.OUTBOUND.value)
INSERT_EARLY_RECEIPT = insert(early_receipts)
EARLY_RECEIPT_TTL = 7 * 86400.0
EARLY_RECEIPTS = select(early_receipts).where(
    early_receipts.c.carrier_message_id.in_(bindparam("ids", expanding=True)))
MARK_SENT_MANY = (
    update(messages)
    # Not IN (...): an expanding IN cannot run as executemany.
    .where(messages.c.id == bindparam("k"),
           or_(messages.c.status == MessageStatus.QUEUED.value,
               messages.c.status == MessageStatus.SENDING.value))
    .values(status=bindparam("new_status"), carrier_message_id=bindparam("carrier_id"),
            segments=bindparam("new_segments"), lease_owner=None, lease_until=None,
            next_attempt_at=None, error_code=None, error_reason=None,
            updated_at=bindparam("now"))
)
CLAIM_QUEUED = (
    select(messages.c.seq)
    .where(messages.c.status == MessageStatus.QUEUED.value,
           messages.c.next_attempt_at <= bindparam("now"))
    .order_by(messages.c.next_attempt_at)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
CLAIM_EXPIRED = (
    select(messages.c.seq)
    .where(messages.c.status == MessageStatus.SENDING.value,
           messages.c.lease_until < bindparam("now"))
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)


def code(error_code: str | None) -> str | None:
    """A carrier's error code cut to its column: a label, and a longer one must not fail the row."""
    return None if error_code is None else error_code[:MAX_ERROR_CODE_CHARS]


def media_to_json(media: Sequence[Media]) -> str:
    """The ``media`` column's JSON for a message's attachments."""
    return json.dumps(
        [
            {k: v for k, v in (("content_type", m.content_type), ("url", m.url),
                               ("data_base64", m.data_base64), ("size", m.size)) if v is not None}
            for m in media
        ],
        separators=(",", ":"),
    )


def media_from_json(raw: str) -> tuple[Media, ...]:
    """A message's attachments from its ``media`` column."""
    return tuple(Media(**item) for item in json.loads(raw or "[]"))


def row_to_message(row: Any) -> Message:
    """The message a ``messages`` row holds."""
    m = row._mapping
    return Message(
        id=m["id"],
        direction=Direction(m["direction"]),
        connection=m["connection"],
        carrier=m["carrier"],
        from_number=m["from_number"],
        to_number=m["to_number"],
        text=m["text"],
        status=MessageStatus(m["status"]),
        media=media_from_json(m["media"]),
        segments=m["segments"],
        encoding=m["encoding"],
        carrier_message_id=m["carrier_message_id"],
        error_code=m["error_code"],
        error_reason=m["error_reason"],
        attempts=m["attempts"],
        created_at=datetime.fromtimestamp(m["created_at"], UTC),
        updated_at=datetime.fromtimestamp(m["updated_at"], UTC),
        kind=m["kind"],
        voice=m["voice"],
        language=m["language"],
        repeat=m["repeat"],
        account_id=m["account_id"],
        status_callback=m["status_callback"],
    )


def message_values(msg: Message, now: float) -> dict[str, Any]:
    """A ``messages`` row for ``msg``, updated at ``now``, without key, lease or schedule."""
    return {
        "id": msg.id,
        "direction": msg.direction.value,
        "connection": msg.connection,
        "carrier": msg.carrier,
        "from_number": msg.from_number,
        "to_number": msg.to_number,
        "text": msg.text,
        "media": media_to_json(msg.media),
        "status": msg.status.value,
        "segments": msg.segments,
        "encoding": msg.encoding,
        "carrier_message_id": msg.carrier_message_id,
        "attempts": msg.attempts,
        "created_at": msg.created_at.timestamp(),
        "updated_at": now,
        "inbound_key": None,
        "idempotency_scope": None,
        "idempotency_key": None,
        "idempotency_fingerprint": None,
        "error_code": msg.error_code,
        "error_reason": msg.error_reason,
        "next_attempt_at": None,
        "lease_owner": None,
        "lease_until": None,
        "kind": msg.kind,
        "voice": msg.voice,
        "language": msg.language,
        "repeat": msg.repeat,
        "account_id": msg.account_id,
        "status_callback": msg.status_callback,
    }


def row_to_delivery(row: Any) -> DeliveryRecord:
    """The webhook delivery a ``deliveries`` row holds."""
    m = row._mapping
    return DeliveryRecord(
        id=m["id"], url=m["url"], event_type=m["event_type"], message_id=m["message_id"],
        payload=m["payload"], status=m["status"], attempts=m["attempts"],
        next_attempt_at=m["next_attempt_at"], last_error=m["last_error"],
        created_at=m["created_at"], updated_at=m["updated_at"], webhook_id=m["webhook_id"],
    )


def row_to_key(row: Any) -> ApiKeyRecord:
    """The API key an ``api_keys`` row holds (never its hash)."""
    m = row._mapping
    return ApiKeyRecord(m["id"], m["name"], m["prefix"], m["created_at"], m["revoked_at"],
                        m["account_id"] or "", bool(m["admin"]))

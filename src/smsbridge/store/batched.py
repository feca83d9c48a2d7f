"""Writes that the group-commit writer runs many at a time, in a few statements per batch."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import Connection, delete, update

from ..core.errors import RecipientOptedOut
from ..core.messages import STATUS_RANK, Message, MessageStatus, StatusUpdate
from .base import DeliveryDraft, EventsFor
from .notify import OUTBOX_CHANNEL
from .optouts import listed_pairs
from .schema import early_receipts, messages
from .statements import (
    BY_IDS,
    BY_INBOUND_KEYS,
    EARLY_RECEIPTS,
    INSERT_INBOUND_SQLITE,
    INSERT_MESSAGE,
    MARK_SENT_MANY,
    message_values,
    row_to_message,
)
from .writer import BulkWrite

R = TypeVar("R")


class BatchStore(Protocol):
    """What these writes use of the store (SqlStore), inside the writer's transaction."""

    is_postgres: bool
    clock: Callable[[], float]

    def _notify(self, conn: Connection, channel: str) -> None: ...

    def _add_events(self, conn: Connection, drafts: Sequence[DeliveryDraft],
                    now: float) -> None: ...


class TypedBulkWrite(BulkWrite, Generic[R]):
    """A BulkWrite whose result type is known, so that ``SqlStore._write`` returns it typed."""

    @classmethod
    @abstractmethod
    def run_bulk(cls, conn: Connection, ops: list[Any]) -> list[R]:
        """Run every op of this class in the batch; one result per op, in order."""

    def __call__(self, conn: Connection) -> R:
        return type(self).run_bulk(conn, [self])[0]


def apply_receipt(conn: Connection, store: BatchStore, msg: Message, upd: StatusUpdate,
                  now: float, events_for: EventsFor) -> Message | None:
    """Move ``msg`` to the receipt's status unless it is final or already further along."""
    if msg.status.is_final or STATUS_RANK[upd.status] <= STATUS_RANK[msg.status]:
        return None
    changed = replace(msg, status=upd.status, updated_at=datetime.fromtimestamp(now, UTC))
    values: dict[str, Any] = {"status": upd.status.value, "updated_at": now}
    if upd.status is MessageStatus.FAILED:
        changed = replace(changed, error_code=upd.error_code, error_reason=upd.error_reason)
        values.update(error_code=upd.error_code, error_reason=upd.error_reason)
    conn.execute(update(messages).where(messages.c.id == msg.id).values(values))
    store._add_events(conn, events_for("message.status", changed), now)
    return changed


class OutboundInsert(TypedBulkWrite[tuple[Message, bool] | RecipientOptedOut]):
    """A queued message without an idempotency key; a batch of them is one INSERT."""

    def __init__(self, store: BatchStore, message: Message, events_for: EventsFor,
                 honour_optouts: bool = True) -> None:
        self.store = store
        self.message = message
        self.events_for = events_for
        self.honour_optouts = honour_optouts

    @classmethod
    def run_bulk(cls, conn: Connection, ops: list[OutboundInsert]
                 ) -> list[tuple[Message, bool] | RecipientOptedOut]:
        """Insert every message of the batch that may be sent, and wake the workers once.

        A recipient who opted out of the sender gets RecipientOptedOut as its result (one
        query for the whole batch, in its transaction), and the others go on.
        """
        store = ops[0].store
        now = store.clock()
        listed = listed_pairs(conn, [(op.message.from_number, op.message.to_number)
                                     for op in ops if op.honour_optouts])
        results: list[tuple[Message, bool] | RecipientOptedOut] = []
        rows = []
        drafts: list[DeliveryDraft] = []
        for op in ops:
            pair = (op.message.from_number, op.message.to_number)
            if op.honour_optouts and pair in listed:
                results.append(RecipientOptedOut(*pair))
                continue
            values = message_values(op.message, now)
            values["next_attempt_at"] = now
            rows.append(values)
            drafts.extend(op.events_for("message.queued", op.message))
            results.append((op.message, True))
        if rows:
            conn.execute(INSERT_MESSAGE, rows)
            store._add_events(conn, drafts, now)
            store._notify(conn, OUTBOX_CHANNEL)
        return results


class MarkSent(TypedBulkWrite[Message | None]):
    """The carrier accepted a message; a batch of acceptances is one SELECT and one UPDATE."""

    def __init__(self, store: BatchStore, message_id: str, carrier_message_id: str,
                 status: MessageStatus, segments: int | None, events_for: EventsFor) -> None:
        self.store = store
        self.message_id = message_id
        self.carrier_message_id = carrier_message_id
        self.status = status
        self.segments = segments
        self.events_for = events_for

    @classmethod
    def run_bulk(cls, conn: Connection, ops: list[MarkSent]) -> list[Message | None]:
        """Move each message to sent (or delivered); a message a receipt moved on stays put."""
        store = ops[0].store
        now = store.clock()
        stamp = datetime.fromtimestamp(now, UTC)
        ids = list({op.message_id for op in ops})
        current: dict[str, Message] = {}
        for start in range(0, len(ids), 500):
            for row in conn.execute(BY_IDS, {"ids": ids[start:start + 500]}):
                current[row._mapping["id"]] = row_to_message(row)
        params: list[dict[str, Any]] = []
        drafts: list[DeliveryDraft] = []
        results: list[Message | None] = []
        pending = (MessageStatus.QUEUED, MessageStatus.SENDING)
        for op in ops:
            msg = current.get(op.message_id)
            if msg is None or msg.status not in pending:
                results.append(msg)
                continue
            sent = replace(msg, status=MessageStatus.SENT, updated_at=stamp,
                           carrier_message_id=op.carrier_message_id,
                           segments=op.segments or msg.segments, error_code=None,
                           error_reason=None)
            drafts.extend(op.events_for("message.status", sent))
            final = sent
            if op.status is MessageStatus.DELIVERED:
                final = replace(sent, status=MessageStatus.DELIVERED)
                drafts.extend(op.events_for("message.status", final))
            current[op.message_id] = final
            params.append({"k": msg.id, "new_status": final.status.value, "now": now,
                           "carrier_id": final.carrier_message_id,
                           "new_segments": final.segments})
            results.append(final)
        if params:
            conn.execute(MARK_SENT_MANY, params)
        if drafts:
            store._add_events(conn, drafts, now)
        if params:
            cls._apply_early_receipts(conn, store, ops, results, now)
        return results

    @staticmethod
    def _apply_early_receipts(conn: Connection, store: BatchStore, ops: list[MarkSent],
                              results: list[Message | None], now: float) -> None:
        wanted = {(m.connection, m.carrier_message_id): (i, ops[i])
                  for i, m in enumerate(results) if m is not None and m.carrier_message_id}
        if not wanted:
            return
        ids = [carrier_id for _, carrier_id in wanted]
        early = conn.execute(EARLY_RECEIPTS, {"ids": ids}).fetchall()
        used: list[int] = []
        for row in sorted(early, key=lambda r: r._mapping["seq"]):
            m = row._mapping
            hit = wanted.get((m["connection"], m["carrier_message_id"]))
            if hit is None:
                continue
            index, op = hit
            current = results[index]
            assert current is not None
            upd = StatusUpdate(m["carrier_message_id"], MessageStatus(m["status"]),
                               m["error_code"], m["error_reason"])
            moved = apply_receipt(conn, store, current, upd, now, op.events_for)
            if moved is not None:
                results[index] = moved
            used.append(m["seq"])
        if used:
            conn.execute(delete(early_receipts).where(early_receipts.c.seq.in_(used)))


class InboundInsert(TypedBulkWrite[list[tuple[Message, bool]]]):
    """Inbound messages of one webhook; a batch of them is one SELECT and one INSERT."""

    def __init__(self, store: BatchStore, batch: Sequence[Message],
                 events_for: EventsFor) -> None:
        self.store = store
        self.batch = batch
        self.events_for = events_for

    @classmethod
    def run_bulk(cls, conn: Connection, ops: list[InboundInsert]
                 ) -> list[list[tuple[Message, bool]]]:
        """Store each carrier message once: known keys and repeats within the batch are dups."""
        store = ops[0].store
        now = store.clock()
        keyed = [(index, msg, f"{msg.connection}:{msg.carrier_message_id}")
                 for index, op in enumerate(ops) for msg in op.batch]
        first: dict[str, Message] = {}
        for _, msg, key in keyed:
            first.setdefault(key, msg)
        existing: dict[str, Message] = {}
        if store.is_postgres:
            existing = cls._stored(conn, list(first))
        fresh = {key: msg for key, msg in first.items() if key not in existing}
        if fresh:
            rows = []
            for key, msg in fresh.items():
                values = message_values(msg, now)
                values["inbound_key"] = key
                rows.append(values)
            if store.is_postgres:
                # A row another process inserted since the SELECT fails the batch; the
                # writer then retries each webhook alone, which finds it as a duplicate.
                conn.execute(INSERT_MESSAGE, rows)
            else:
                # SQLite: insert first, look only when a row was skipped (a duplicate is rare).
                result = conn.execute(INSERT_INBOUND_SQLITE, rows)
                if result.rowcount != len(rows):
                    for key, row in cls._stored(conn, list(fresh)).items():
                        if row.id != fresh[key].id:
                            existing[key] = row
        results: list[list[tuple[Message, bool]]] = [[] for _ in ops]
        drafts: list[DeliveryDraft] = []
        for index, msg, key in keyed:
            if key in existing:
                results[index].append((existing[key], False))
            elif first[key] is msg:
                drafts.extend(ops[index].events_for("message.received", msg))
                results[index].append((msg, True))
            else:
                results[index].append((first[key], False))
        if drafts:
            store._add_events(conn, drafts, now)
        return results

    @staticmethod
    def _stored(conn: Connection, keys: list[str]) -> dict[str, Message]:
        found: dict[str, Message] = {}
        for start in range(0, len(keys), 500):
            for row in conn.execute(BY_INBOUND_KEYS, {"keys": keys[start:start + 500]}):
                found[row._mapping["inbound_key"]] = row_to_message(row)
        return found

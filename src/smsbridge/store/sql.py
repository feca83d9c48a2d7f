"""The SQLAlchemy Core store for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from sqlalchemy import Connection, delete, func, insert, or_, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from ..core.errors import (
    IdempotencyKeyReused,
    InvalidInput,
    RecipientOptedOut,
    StoreUnavailable,
)
from ..core.messages import (
    Direction,
    Message,
    MessageStatus,
    StatusUpdate,
    new_id,
)
from .accounts import AccountQueries
from .app_webhooks import AppWebhookQueries
from .base import (
    IDEMPOTENCY_KEY_TTL_SECONDS,
    ApiKeyRecord,
    DeliveryDraft,
    DeliveryRecord,
    EventsFor,
    IdempotencyKey,
    MessageFilter,
    MessagePage,
    Store,
    WriteFailure,
)
from .batched import InboundInsert, MarkSent, OutboundInsert, apply_receipt
from .connections import ConnectionQueries
from .engine import create_db_engine, short_reason, unusable_reason
from .notify import OUTBOX_CHANNEL, WEBHOOKS_CHANNEL, NotifyListener
from .optouts import OptoutQueries, listed_pairs
from .paging import newest_first
from .rule_runs import RuleRunQueries
from .schema import api_keys, carrier_tokens, deliveries, early_receipts, messages
from .schema import meta as meta_table
from .statements import (
    BY_CARRIER_ID,
    BY_ID,
    BY_IDEMPOTENCY_KEY,
    CLAIM_EXPIRED,
    CLAIM_QUEUED,
    EARLY_RECEIPT_TTL,
    INSERT_DELIVERY,
    INSERT_EARLY_RECEIPT,
    INSERT_MESSAGE,
    INSERT_META_ONCE,
    INSERT_ONCE_PER_KEY,
    UPSERT_META,
    code,
    message_values,
    row_to_delivery,
    row_to_key,
    row_to_message,
)
from .writer import GroupCommitWriter

__all__ = ["SqlStore", "open_store"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class SqlStore(AccountQueries, ConnectionQueries, AppWebhookQueries, OptoutQueries,
               RuleRunQueries, Store):
    """SQLite or PostgreSQL through SQLAlchemy Core; writes go through one group-commit thread."""

    def __init__(self, database_url: str, *, clock: Callable[[], float] = time.time) -> None:
        self.database_url = database_url
        # Every "now" the store writes or compares (leases, due times, stamps, expiry) comes
        # from here, so that tests can move time on instead of sleeping.
        self.clock = clock
        self.engine = create_db_engine(database_url)
        self.is_postgres = self.engine.dialect.name == "postgresql"
        self._writer: GroupCommitWriter | None = None
        self._listener: NotifyListener | None = None
        self._write_failure: WriteFailure | None = None

    def _unavailable(self, exc: BaseException) -> StoreUnavailable | None:
        reason = unusable_reason(self.engine.url, exc)
        return StoreUnavailable(reason) if reason is not None else None

    # --- lifecycle
    async def start(self) -> None:
        """Check that the database answers, then start the writer thread."""
        if self._writer is None:
            await self.ping()
            self._writer = GroupCommitWriter(self.engine)

    async def close(self) -> None:
        """Stop listening, drain the writer and dispose of the pool."""
        if self._listener is not None:
            listener, self._listener = self._listener, None
            await asyncio.to_thread(listener.close)
        if self._writer is not None:
            writer, self._writer = self._writer, None
            await asyncio.to_thread(writer.close)
        await asyncio.to_thread(self.engine.dispose)

    def listen(self, on_outbox: Callable[[], None], on_webhooks: Callable[[], None]
               ) -> NotifyListener | None:
        """On PostgreSQL, wake the workers when another process queues work; else None."""
        if not self.is_postgres:
            return None
        dsn = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._listener = NotifyListener(
            dsn, {OUTBOX_CHANNEL: on_outbox, WEBHOOKS_CHANNEL: on_webhooks})
        return self._listener

    async def ping(self) -> None:
        """Run a trivial query."""
        await self._read(lambda c: c.execute(text("SELECT 1")).scalar_one())

    def migrate(self) -> None:
        """Bring the schema to the newest migration (blocking); StoreUnavailable if it cannot."""
        from .migrate import upgrade

        try:
            upgrade(self.engine)
        except DBAPIError as exc:
            unavailable = self._unavailable(exc)
            if unavailable is None:
                raise
            raise unavailable from exc

    @property
    def write_failure(self) -> WriteFailure | None:
        """The last write failure, until a message write commits again."""
        return self._write_failure

    async def recheck_writes(self) -> WriteFailure | None:
        """While writes fail, probe with a write; the failure that remains, or None."""
        if self._write_failure is None:
            return None
        try:
            await self._probe_write()
        except Exception:  # _write recorded why; that is the answer
            log.debug("store write probe failed", exc_info=True)
        return self._write_failure

    async def _probe_write(self) -> None:
        # A message row inserted and deleted in one committed transaction: it goes where every
        # accepted message goes (the messages table, its indexes, triggers and constraints,
        # pages on disk), so it fails when storing a message would, and is never seen.

        def op(conn: Connection) -> None:
            now = self.clock()
            probe = Message(id=new_id("probe"), direction=Direction.OUTBOUND,
                            connection="-", carrier="-", from_number="-", to_number="-",
                            text="health probe", status=MessageStatus.FAILED)
            conn.execute(INSERT_MESSAGE, message_values(probe, now))
            conn.execute(delete(messages).where(messages.c.id == probe.id))

        await self._write(op)
        self._message_stored()

    def _message_stored(self) -> None:
        # Only a stored message proves the gateway can accept messages again.
        if self._write_failure is not None:
            self._write_failure = None
            log.warning("store writes work again")

    async def _write(self, op: Callable[[Connection], T]) -> T:
        if self._writer is None:
            await self.start()
        assert self._writer is not None
        try:
            result = await self._writer.submit(op)
        except DBAPIError as exc:
            unavailable = self._unavailable(exc)
            reason = unavailable.reason if unavailable is not None else short_reason(exc)
            if self._write_failure is None:
                log.warning("store writes failing: %s", reason)
            self._write_failure = WriteFailure(reason, self.clock())
            if unavailable is not None:
                raise unavailable from exc
            raise
        return result

    async def _read(self, op: Callable[[Connection], T]) -> T:
        def run() -> T:
            with self.engine.connect() as conn:
                return op(conn)

        try:
            return await asyncio.to_thread(run)
        except DBAPIError as exc:
            unavailable = self._unavailable(exc)
            if unavailable is None:
                raise
            raise unavailable from exc

    # --- helpers run inside a transaction
    def _notify(self, conn: Connection, channel: str) -> None:
        # Delivered at commit, and only if the transaction commits.
        if self.is_postgres:
            conn.execute(text("SELECT pg_notify(:c, '')"), {"c": channel})

    def _add_events(self, conn: Connection, drafts: Sequence[DeliveryDraft], now: float) -> None:
        if not drafts:
            return
        self._notify(conn, WEBHOOKS_CHANNEL)
        conn.execute(
            INSERT_DELIVERY,
            [
                {
                    "id": new_id("evt"), "url": d.url, "event_type": d.event_type,
                    "message_id": d.message_id, "payload": d.payload, "status": "pending",
                    "account_id": d.account_id, "webhook_id": d.webhook_id,
                    "attempts": 0, "next_attempt_at": now, "created_at": now, "updated_at": now,
                }
                for d in drafts
            ],
        )

    @staticmethod
    def _fetch(conn: Connection, message_id: str) -> Message | None:
        row = conn.execute(BY_ID, {"k": message_id}).first()
        return row_to_message(row) if row else None


    # --- messages
    async def queue_outbound(
        self, message: Message, idempotency: IdempotencyKey | None, events_for: EventsFor,
        *, honour_optouts: bool = True,
    ) -> tuple[Message, bool]:
        """Insert a queued message, or return the one stored under the same idempotency key.

        A key is kept for IDEMPOTENCY_KEY_TTL_SECONDS after the message it first made; a key
        kept for a request with another fingerprint raises IdempotencyKeyReused.
        """
        if idempotency is None:
            queued: tuple[Message, bool] | RecipientOptedOut = await self._write(
                OutboundInsert(self, message, events_for, honour_optouts))
            if isinstance(queued, RecipientOptedOut):
                raise queued
            self._message_stored()
            return queued
        if len(idempotency.scope) > 64 or len(idempotency.key) > 300:
            raise ValueError("idempotency scope or key too long for the store")
        key = {"scope": idempotency.scope, "k": idempotency.key}

        def op(conn: Connection) -> tuple[Message, bool, bool] | RecipientOptedOut:
            now = self.clock()
            values = message_values(message, now)
            values.update(idempotency_scope=idempotency.scope, idempotency_key=idempotency.key,
                          idempotency_fingerprint=idempotency.fingerprint, next_attempt_at=now)
            insert_once = INSERT_ONCE_PER_KEY[conn.dialect.name]
            refused = honour_optouts and bool(listed_pairs(
                conn, [(message.from_number, message.to_number)]))
            # A second round only when the key expired and a concurrent request renewed it.
            for _ in range(2):
                # An opted-out recipient: a replay of the key still answers with its message.
                if not refused and conn.execute(insert_once, values).first() is not None:
                    self._add_events(conn, events_for("message.queued", message), now)
                    self._notify(conn, OUTBOX_CHANNEL)
                    return message, True, False
                row = conn.execute(BY_IDEMPOTENCY_KEY, key).first()
                if row is None:
                    continue
                kept = row._mapping
                if kept["created_at"] >= now - IDEMPOTENCY_KEY_TTL_SECONDS:
                    return (row_to_message(row), False,
                            kept["idempotency_fingerprint"] != idempotency.fingerprint)
                # Expired: the old message keeps its key for the record but leaves the scope.
                conn.execute(update(messages).where(messages.c.seq == kept["seq"])
                             .values(idempotency_scope=None))
            if refused:  # returned, not raised: the rest of the writer's batch goes on
                return RecipientOptedOut(message.from_number, message.to_number)
            raise RuntimeError("idempotency key conflict without a row")

        outcome = await self._write(op)
        if isinstance(outcome, RecipientOptedOut):
            raise outcome
        stored, created, reused = outcome
        if created:
            self._message_stored()
        if reused:
            hours = round(IDEMPOTENCY_KEY_TTL_SECONDS / 3600)
            raise IdempotencyKeyReused(
                f"was used for a different request ({stored.kind} {stored.id}) within the last "
                f"{hours} hours; use a new key for a new message")
        return stored, created

    async def record_inbound(
        self, batch: Sequence[Message], events_for: EventsFor
    ) -> list[tuple[Message, bool]]:
        """Insert inbound messages once each; duplicates come back with False."""

        stored: list[tuple[Message, bool]] = await self._write(
            InboundInsert(self, batch, events_for))
        if any(created for _, created in stored):
            self._message_stored()
        return stored

    async def claim_outbound(self, owner: str, limit: int, lease_seconds: float) -> list[Message]:
        """Lease due queued messages, and sending ones whose lease ran out (a crashed worker)."""

        def op(conn: Connection) -> list[Message]:
            now = self.clock()
            # Two index range scans; one OR of both made SQLite sort the whole backlog.
            seqs = [r[0] for r in conn.execute(CLAIM_QUEUED, {"now": now, "limit": limit})]
            if len(seqs) < limit:
                seqs += [r[0] for r in conn.execute(
                    CLAIM_EXPIRED, {"now": now, "limit": limit - len(seqs)})]
            if not seqs:
                return []
            rows = conn.execute(
                update(messages)
                .where(messages.c.seq.in_(seqs))
                .values(
                    status=MessageStatus.SENDING.value,
                    lease_owner=owner,
                    lease_until=now + lease_seconds,
                    attempts=messages.c.attempts + 1,
                    updated_at=now,
                )
                .returning(*messages.c)
            ).fetchall()
            return [row_to_message(r) for r in rows]

        return await self._write(op)

    async def mark_sent(
        self,
        message_id: str,
        carrier_message_id: str,
        status: MessageStatus,
        segments: int | None,
        events_for: EventsFor,
    ) -> Message | None:
        """Record the carrier's acceptance (and, for synchronous carriers, delivery)."""

        return await self._write(MarkSent(
            self, message_id, carrier_message_id, status, segments, events_for))

    async def mark_retry(
        self, message_id: str, next_attempt_at: float, error_code: str | None, reason: str
    ) -> Message | None:
        """Queue the message again for ``next_attempt_at``."""

        def op(conn: Connection) -> Message | None:
            conn.execute(
                update(messages)
                .where(messages.c.id == message_id,
                       messages.c.status == MessageStatus.SENDING.value)
                .values(status=MessageStatus.QUEUED.value, next_attempt_at=next_attempt_at,
                        lease_owner=None, lease_until=None, error_code=code(error_code),
                        error_reason=reason, updated_at=self.clock())
            )
            return self._fetch(conn, message_id)

        return await self._write(op)

    async def mark_failed(
        self, message_id: str, error_code: str | None, reason: str, events_for: EventsFor
    ) -> Message | None:
        """Fail the message for good, with the carrier's reason."""

        def op(conn: Connection) -> Message | None:
            now = self.clock()
            result = conn.execute(
                update(messages)
                .where(messages.c.id == message_id,
                       messages.c.status.in_([MessageStatus.QUEUED.value,
                                              MessageStatus.SENDING.value]))
                .values(status=MessageStatus.FAILED.value, next_attempt_at=None,
                        lease_owner=None, lease_until=None, error_code=code(error_code),
                        error_reason=reason, updated_at=now)
            )
            msg = self._fetch(conn, message_id)
            if msg is not None and result.rowcount:
                self._add_events(conn, events_for("message.status", msg), now)
            return msg

        return await self._write(op)

    async def apply_status(
        self, connection: str, updates: Sequence[StatusUpdate], events_for: EventsFor
    ) -> list[Message]:
        """Apply receipts in rank order; a late 'sent' after 'delivered' changes nothing."""

        def op(conn: Connection) -> list[Message]:
            now = self.clock()
            changed: list[Message] = []
            for upd in updates:
                row = conn.execute(BY_CARRIER_ID, {
                    "connection": connection, "carrier_id": upd.carrier_message_id}).first()
                if row is None:
                    # Possibly faster than the outbox recording the send: keep it for then.
                    # Receipts for sends that are never recorded (another system's) expire.
                    conn.execute(delete(early_receipts).where(
                        early_receipts.c.created_at < now - EARLY_RECEIPT_TTL))
                    conn.execute(INSERT_EARLY_RECEIPT, {
                        "connection": connection, "carrier_message_id": upd.carrier_message_id,
                        "status": upd.status.value, "error_code": upd.error_code,
                        "error_reason": upd.error_reason, "created_at": now})
                    continue
                msg = apply_receipt(conn, self, row_to_message(row), upd, now, events_for)
                if msg is not None:
                    changed.append(msg)
            return changed

        return await self._write(op)

    async def get_message(self, message_id: str) -> Message | None:
        """One message by id."""
        return await self._read(lambda c: self._fetch(c, message_id))

    async def list_messages(
        self, filter: MessageFilter, limit: int, cursor: str | None
    ) -> MessagePage:
        """Messages newest first, ``limit`` at a time."""
        query = select(messages).where(messages.c.kind == filter.kind)
        if filter.number:
            query = query.where(or_(messages.c.from_number == filter.number,
                                    messages.c.to_number == filter.number))
        if filter.direction:
            query = query.where(messages.c.direction == filter.direction.value)
        if filter.status:
            query = query.where(messages.c.status == filter.status.value)
        if filter.connection:
            query = query.where(messages.c.connection == filter.connection)
        if filter.account_id is not None:
            query = query.where(messages.c.account_id == filter.account_id)
        page = newest_first(query, messages.c.seq, limit, cursor, row_to_message)
        found, next_cursor = await self._read(page)
        return MessagePage(found, next_cursor)

    # --- deliveries
    async def claim_deliveries(
        self, owner: str, limit: int, lease_seconds: float
    ) -> list[DeliveryRecord]:
        """Lease due pending deliveries (and ones whose lease ran out)."""

        def op(conn: Connection) -> list[DeliveryRecord]:
            now = self.clock()
            picked = (
                select(deliveries.c.seq)
                .where(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= now,
                       or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < now))
                .order_by(deliveries.c.next_attempt_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            seqs = [r[0] for r in conn.execute(picked)]
            if not seqs:
                return []
            rows = conn.execute(
                update(deliveries)
                .where(deliveries.c.seq.in_(seqs))
                .values(lease_owner=owner, lease_until=now + lease_seconds,
                        attempts=deliveries.c.attempts + 1, updated_at=now)
                .returning(*deliveries.c)
            ).fetchall()
            return [row_to_delivery(r) for r in rows]

        return await self._write(op)

    async def finish_delivery(
        self, delivery_id: str, *, ok: bool, error: str | None, next_attempt_at: float | None
    ) -> None:
        """Record one attempt's outcome."""
        if ok:
            status = "delivered"
        elif next_attempt_at is not None:
            status = "pending"
        else:
            status = "failed"

        def op(conn: Connection) -> None:
            conn.execute(
                update(deliveries).where(deliveries.c.id == delivery_id).values(
                    status=status, last_error=error, next_attempt_at=next_attempt_at,
                    lease_owner=None, lease_until=None, updated_at=self.clock())
            )

        await self._write(op)

    async def list_deliveries(
        self, message_id: str | None = None, status: str | None = None, limit: int = 100,
        account_id: str | None = None,
    ) -> list[DeliveryRecord]:
        """Deliveries newest first (of one account when ``account_id`` is given)."""
        query = select(deliveries).order_by(deliveries.c.seq.desc()).limit(limit)
        if account_id is not None:
            query = query.where(deliveries.c.account_id == account_id)
        if message_id:
            query = query.where(deliveries.c.message_id == message_id)
        if status:
            query = query.where(deliveries.c.status == status)
        return await self._read(
            lambda c: [row_to_delivery(r) for r in c.execute(query)])

    # --- API keys
    async def create_api_key(self, name: str, prefix: str, key_hash: str, account_id: str,
                             admin: bool = False) -> ApiKeyRecord:
        """Store a key's hash under a new id; a live key's name cannot be taken again within
        its account."""
        record = ApiKeyRecord(new_id("key"), name, prefix, self.clock(), None, account_id, admin)
        live_named = select(api_keys.c.id).where(api_keys.c.name == name,
                                                 api_keys.c.account_id == account_id,
                                                 api_keys.c.revoked_at.is_(None))

        def name_taken(existing_id: str) -> InvalidInput:
            return InvalidInput("name", f"a live key named {name!r} exists ({existing_id}); "
                                        "pick another name, or revoke that key first")

        def op(conn: Connection) -> ApiKeyRecord:
            existing = conn.execute(live_named).scalar()
            if existing is not None:
                raise name_taken(existing)
            try:
                with conn.begin_nested():
                    conn.execute(insert(api_keys).values(
                        id=record.id, name=name, prefix=prefix, key_hash=key_hash,
                        created_at=record.created_at, account_id=account_id, admin=admin))
            except IntegrityError:
                # Another process took the name since the check (the unique index says so).
                existing = conn.execute(live_named).scalar()
                if existing is None:
                    raise
                raise name_taken(existing) from None
            return record

        return await self._write(op)

    async def find_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        """The unrevoked key with this hash."""

        def run(conn: Connection) -> ApiKeyRecord | None:
            row = conn.execute(select(api_keys).where(
                api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None))).first()
            return row_to_key(row) if row else None

        return await self._read(run)

    async def list_api_keys(self, account_id: str | None = None) -> list[ApiKeyRecord]:
        """Every key (of one account when given)."""
        query = select(api_keys).order_by(api_keys.c.created_at)
        if account_id is not None:
            query = query.where(api_keys.c.account_id == account_id)
        return await self._read(lambda c: [row_to_key(r) for r in c.execute(query)])

    async def count_api_keys(self) -> int:
        """How many keys are live."""
        return await self._read(
            lambda c: c.execute(select(func.count()).select_from(api_keys)
                                .where(api_keys.c.revoked_at.is_(None))).scalar_one())

    async def find_live_api_keys(self, id_or_name: str) -> list[ApiKeyRecord]:
        """Unrevoked keys with this id or this name, oldest first."""
        query = (select(api_keys)
                 .where(or_(api_keys.c.id == id_or_name, api_keys.c.name == id_or_name),
                        api_keys.c.revoked_at.is_(None))
                 .order_by(api_keys.c.created_at, api_keys.c.id))
        return await self._read(
            lambda c: [row_to_key(r) for r in c.execute(query)])

    async def revoke_api_key(self, key_id: str) -> ApiKeyRecord | None:
        """Revoke the live key with this id; None when no live key has it."""

        def op(conn: Connection) -> ApiKeyRecord | None:
            row = conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=self.clock())
                .returning(*api_keys.c)).first()
            return row_to_key(row) if row else None

        return await self._write(op)

    # --- carrier tokens
    async def read_tokens(self) -> dict[str, str]:
        """Every stored connection token."""
        return await self._read(lambda c: {
            r[0]: r[1] for r in c.execute(
                select(carrier_tokens.c.connection, carrier_tokens.c.token))})

    async def ensure_tokens(
        self, connections: Sequence[str], make_token: Callable[[], str]
    ) -> dict[str, str]:
        """Each connection's token, created once and kept."""

        def op(conn: Connection) -> dict[str, str]:
            found = {r[0]: r[1] for r in conn.execute(
                select(carrier_tokens.c.connection, carrier_tokens.c.token))}
            for name in connections:
                if name in found and len(found[name]) < 16:
                    # An unusable token (an empty one was once possible): replace it.
                    token = make_token()
                    conn.execute(update(carrier_tokens)
                                 .where(carrier_tokens.c.connection == name)
                                 .values(token=token, created_at=self.clock()))
                    found[name] = token
            for name in connections:
                if name not in found:
                    token = make_token()
                    if len(token) < 16:
                        raise ValueError("a webhook token must be long and random")
                    try:
                        with conn.begin_nested():
                            conn.execute(insert(carrier_tokens).values(
                                connection=name, token=token, created_at=self.clock()))
                        found[name] = token
                    except IntegrityError:
                        # Another process created it first: keep theirs.
                        found[name] = conn.execute(
                            select(carrier_tokens.c.token)
                            .where(carrier_tokens.c.connection == name)).scalar_one()
            return {name: found[name] for name in connections}

        return await self._write(op)

    async def rotate_token(self, connection: str, token: str) -> None:
        """Replace (or create) a connection's token."""

        def op(conn: Connection) -> None:
            result = conn.execute(update(carrier_tokens)
                                  .where(carrier_tokens.c.connection == connection)
                                  .values(token=token, created_at=self.clock()))
            if not result.rowcount:
                conn.execute(insert(carrier_tokens).values(
                    connection=connection, token=token, created_at=self.clock()))

        await self._write(op)

    # --- runtime facts
    async def get_meta(self, key: str) -> str | None:
        """A stored runtime fact, or None."""
        query = select(meta_table.c.value).where(meta_table.c.key == key)
        return await self._read(lambda c: c.execute(query).scalar())

    async def set_meta(self, key: str, value: str) -> None:
        """Store or replace a runtime fact."""

        def op(conn: Connection) -> None:
            conn.execute(UPSERT_META[conn.dialect.name],
                         {"key": key, "value": value, "updated_at": self.clock()})

        await self._write(op)


    async def claim_meta(self, key: str, value: str) -> str:
        """Store ``value`` under ``key`` unless a value is there; return the stored one."""

        def op(conn: Connection) -> str:
            conn.execute(INSERT_META_ONCE[conn.dialect.name],
                         {"key": key, "value": value, "updated_at": self.clock()})
            return str(conn.execute(select(meta_table.c.value).where(meta_table.c.key == key)
                                    ).scalar_one())

        return await self._write(op)


def open_store(database_url: str, *, migrate: bool = True) -> SqlStore:
    """A store for ``database_url``, migrated to the newest schema unless told not to."""
    store = SqlStore(database_url)
    if migrate:
        store.migrate()
    return store

"""The SQLAlchemy Core store for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError

from ..core.errors import (
    IdempotencyKeyReused,
    InvalidInput,
    RecipientOptedOut,
    StoreUnavailable,
)
from ..core.messages import (
    STATUS_RANK,
    Direction,
    Media,
    Message,
    MessageStatus,
    StatusUpdate,
    new_id,
)
from .base import (
    IDEMPOTENCY_KEY_TTL_SECONDS,
    MAX_ERROR_CODE_CHARS,
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
from .notify import OUTBOX_CHANNEL, WEBHOOKS_CHANNEL, NotifyListener
from .optouts import OptoutQueries, listed_pairs
from .paging import newest_first
from .rule_runs import RuleRunQueries
from .schema import api_keys, carrier_tokens, deliveries, early_receipts, messages
from .schema import meta as meta_table
from .writer import BulkWrite, GroupCommitWriter

log = logging.getLogger(__name__)

WRITE_OPTION = "smsbridge_write"

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


def _code(error_code: str | None) -> str | None:
    """A carrier's error code cut to its column: a label, and a longer one must not fail the row."""
    return None if error_code is None else error_code[:MAX_ERROR_CODE_CHARS]


def _media_to_json(media: Sequence[Media]) -> str:
    return json.dumps(
        [
            {k: v for k, v in (("content_type", m.content_type), ("url", m.url),
                               ("data_base64", m.data_base64), ("size", m.size)) if v is not None}
            for m in media
        ],
        separators=(",", ":"),
    )


def _media_from_json(raw: str) -> tuple[Media, ...]:
    return tuple(Media(**item) for item in json.loads(raw or "[]"))


def _row_to_message(row: Any) -> Message:
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
        media=_media_from_json(m["media"]),
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
    )


def _message_values(msg: Message, now: float) -> dict[str, Any]:
    return {
        "id": msg.id,
        "direction": msg.direction.value,
        "connection": msg.connection,
        "carrier": msg.carrier,
        "from_number": msg.from_number,
        "to_number": msg.to_number,
        "text": msg.text,
        "media": _media_to_json(msg.media),
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
    }


def _row_to_delivery(row: Any) -> DeliveryRecord:
    m = row._mapping
    return DeliveryRecord(
        id=m["id"], url=m["url"], event_type=m["event_type"], message_id=m["message_id"],
        payload=m["payload"], status=m["status"], attempts=m["attempts"],
        next_attempt_at=m["next_attempt_at"], last_error=m["last_error"],
        created_at=m["created_at"], updated_at=m["updated_at"],
    )


def _row_to_key(row: Any) -> ApiKeyRecord:
    m = row._mapping
    return ApiKeyRecord(m["id"], m["name"], m["prefix"], m["created_at"], m["revoked_at"])


def _sqlite_path(url: URL) -> Path | None:
    if not url.database or url.database == ":memory:":
        return None
    # SQLite's URI form (sqlite:///file:/srv/sms.db?mode=ro&uri=true) names the file after
    # "file:"; read as a plain path it would be a folder called "file:" in the cwd.
    return Path(url.database.removeprefix("file:")).expanduser().absolute()


def _sqlite_unusable(path: Path, message: str) -> str | None:
    if "unable to open database file" not in message and "readonly database" not in message:
        return None
    folder = path.parent
    if not folder.is_dir():
        why = f"the folder {folder} does not exist"
    elif os.statvfs(folder).f_flag & os.ST_RDONLY:
        why = "read-only file system"
    elif not os.access(folder, os.W_OK):
        # WAL mode creates its -wal and -shm files beside the database.
        why = f"read-only folder {folder}"
    elif path.exists() and not os.access(path, os.W_OK):
        why = "read-only file"
    else:
        why = message
    return (f"cannot write the SQLite database at {path}: {why}; fix its permissions or "
            "server.database")


def _postgres_unusable(url: URL, message: str) -> str | None:
    place = f"{url.host or 'localhost'}:{url.port or 5432}"
    missing = re.search(r'database "([^"]+)" does not exist', message)
    if missing:
        name = missing.group(1)
        return (f'database "{name}" does not exist on {place}; create it (createdb {name}) '
                "or fix server.database")
    lowered = message.lower()
    if "connection refused" in lowered:
        return f"cannot reach PostgreSQL at {place}: connection refused; is it running?"
    if "authentication failed" in lowered or re.search(r'role "[^"]+" does not exist', message):
        return (f'PostgreSQL at {place} refused the login of user "{url.username or ""}"; '
                "fix the user or password in server.database")
    if "could not translate host name" in lowered or "name or service not known" in lowered:
        return f"cannot resolve the PostgreSQL host {url.host!r}; fix server.database"
    if "timeout expired" in lowered or "timed out" in lowered:
        return f"cannot reach PostgreSQL at {place}: timed out; is it running and reachable?"
    if "connection failed" in lowered or "server closed the connection" in lowered:
        first = message.strip().splitlines()[0] if message.strip() else message
        return f"cannot reach PostgreSQL at {place}: {first}"
    return None


def unusable_reason(url: URL, exc: BaseException) -> str | None:
    """One line saying why the database cannot be used at all, or None for other errors."""
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    message = str(orig)
    if url.get_backend_name() == "postgresql":
        return _postgres_unusable(url, message)
    path = _sqlite_path(url)
    return _sqlite_unusable(path, message) if path is not None else None


def _short_reason(exc: BaseException) -> str:
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {lines[0] if lines else ''}"[:300]


def _drop_row_details(context: ExceptionContext) -> None:
    """PostgreSQL's DETAIL quotes the failing row (message text, numbers): keep it out of logs."""
    orig = context.original_exception
    diag = getattr(orig, "diag", None)
    primary = getattr(diag, "message_primary", None)
    if not primary or not getattr(diag, "message_detail", None):
        return
    orig.args = (primary,)  # the driver's str() and SQLAlchemy's message both come from args
    wrapped = context.sqlalchemy_exception
    if wrapped is not None:
        wrapped.args = (f"({type(orig).__module__}.{type(orig).__name__}) {primary}",)


def create_db_engine(database_url: str) -> Engine:
    """An engine for ``sqlite:///path`` or ``postgresql://...``, tuned for the gateway.

    SQL parameters never appear in error messages (``hide_parameters``): they hold message
    text and phone numbers, and errors get logged.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        path = _sqlite_path(url)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnavailable(
                    f"cannot create the folder {path.parent} of the SQLite database: "
                    f"{exc.strerror or exc}; fix its permissions or server.database") from exc
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=8, max_overflow=8, hide_parameters=True,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # pysqlite opens transactions lazily and lets a SAVEPOINT commit on its own;
            # take BEGIN over (below) so a batch is one real transaction.
            dbapi_conn.isolation_level = None
            # WAL lets readers run beside the single writer; FULL survives power loss.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            # The writer takes the write lock up front: a deferred transaction that reads
            # first could not upgrade once another process has written (SQLITE_BUSY).
            write = conn.get_execution_options().get(WRITE_OPTION, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    if url.get_backend_name() == "postgresql":
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        engine = create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True,
                               hide_parameters=True)
        event.listen(engine, "handle_error", _drop_row_details)
        return engine
    raise ValueError(f"unsupported database {url.get_backend_name()!r}; use sqlite or postgresql")


class SqlStore(OptoutQueries, RuleRunQueries, Store):
    """SQLite or PostgreSQL through SQLAlchemy Core; writes go through one group-commit thread."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
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
            now = time.time()
            probe = Message(id=new_id("probe"), direction=Direction.OUTBOUND,
                            connection="-", carrier="-", from_number="-", to_number="-",
                            text="health probe", status=MessageStatus.FAILED)
            conn.execute(INSERT_MESSAGE, _message_values(probe, now))
            conn.execute(delete(messages).where(messages.c.id == probe.id))

        await self._write(op)
        self._message_stored()

    def _message_stored(self) -> None:
        # Only a stored message proves the gateway can accept messages again.
        if self._write_failure is not None:
            self._write_failure = None
            log.warning("store writes work again")

    async def _write(self, op: Callable[[Connection], Any]) -> Any:
        if self._writer is None:
            await self.start()
        assert self._writer is not None
        try:
            result = await self._writer.submit(op)
        except DBAPIError as exc:
            unavailable = self._unavailable(exc)
            reason = unavailable.reason if unavailable is not None else _short_reason(exc)
            if self._write_failure is None:
                log.warning("store writes failing: %s", reason)
            self._write_failure = WriteFailure(reason, time.time())
            if unavailable is not None:
                raise unavailable from exc
            raise
        return result

    async def _read(self, op: Callable[[Connection], Any]) -> Any:
        def run() -> Any:
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
                    "attempts": 0, "next_attempt_at": now, "created_at": now, "updated_at": now,
                }
                for d in drafts
            ],
        )

    @staticmethod
    def _fetch(conn: Connection, message_id: str) -> Message | None:
        row = conn.execute(BY_ID, {"k": message_id}).first()
        return _row_to_message(row) if row else None


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
                _OutboundInsert(self, message, events_for, honour_optouts))
            if isinstance(queued, RecipientOptedOut):
                raise queued
            self._message_stored()
            return queued
        if len(idempotency.scope) > 64 or len(idempotency.key) > 300:
            raise ValueError("idempotency scope or key too long for the store")
        key = {"scope": idempotency.scope, "k": idempotency.key}

        def op(conn: Connection) -> tuple[Message, bool, bool] | RecipientOptedOut:
            now = time.time()
            values = _message_values(message, now)
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
                    return (_row_to_message(row), False,
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
            _InboundInsert(self, batch, events_for))
        if any(created for _, created in stored):
            self._message_stored()
        return stored

    async def claim_outbound(self, owner: str, limit: int, lease_seconds: float) -> list[Message]:
        """Lease due queued messages, and sending ones whose lease ran out (a crashed worker)."""

        def op(conn: Connection) -> list[Message]:
            now = time.time()
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
            return [_row_to_message(r) for r in rows]

        return await self._write(op)  # type: ignore[no-any-return]

    async def mark_sent(
        self,
        message_id: str,
        carrier_message_id: str,
        status: MessageStatus,
        segments: int | None,
        events_for: EventsFor,
    ) -> Message | None:
        """Record the carrier's acceptance (and, for synchronous carriers, delivery)."""

        return await self._write(_MarkSent(  # type: ignore[no-any-return]
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
                        lease_owner=None, lease_until=None, error_code=_code(error_code),
                        error_reason=reason, updated_at=time.time())
            )
            return self._fetch(conn, message_id)

        return await self._write(op)  # type: ignore[no-any-return]

    async def mark_failed(
        self, message_id: str, error_code: str | None, reason: str, events_for: EventsFor
    ) -> Message | None:
        """Fail the message for good, with the carrier's reason."""

        def op(conn: Connection) -> Message | None:
            now = time.time()
            result = conn.execute(
                update(messages)
                .where(messages.c.id == message_id,
                       messages.c.status.in_([MessageStatus.QUEUED.value,
                                              MessageStatus.SENDING.value]))
                .values(status=MessageStatus.FAILED.value, next_attempt_at=None,
                        lease_owner=None, lease_until=None, error_code=_code(error_code),
                        error_reason=reason, updated_at=now)
            )
            msg = self._fetch(conn, message_id)
            if msg is not None and result.rowcount:
                self._add_events(conn, events_for("message.status", msg), now)
            return msg

        return await self._write(op)  # type: ignore[no-any-return]

    async def apply_status(
        self, connection: str, updates: Sequence[StatusUpdate], events_for: EventsFor
    ) -> list[Message]:
        """Apply receipts in rank order; a late 'sent' after 'delivered' changes nothing."""

        def op(conn: Connection) -> list[Message]:
            now = time.time()
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
                msg = _apply_receipt(conn, self, _row_to_message(row), upd, now, events_for)
                if msg is not None:
                    changed.append(msg)
            return changed

        return await self._write(op)  # type: ignore[no-any-return]

    async def get_message(self, message_id: str) -> Message | None:
        """One message by id."""
        return await self._read(lambda c: self._fetch(c, message_id))  # type: ignore[no-any-return]

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
        page = newest_first(query, messages.c.seq, limit, cursor, _row_to_message)
        found, next_cursor = await self._read(page)
        return MessagePage(found, next_cursor)

    # --- deliveries
    async def claim_deliveries(
        self, owner: str, limit: int, lease_seconds: float
    ) -> list[DeliveryRecord]:
        """Lease due pending deliveries (and ones whose lease ran out)."""

        def op(conn: Connection) -> list[DeliveryRecord]:
            now = time.time()
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
            return [_row_to_delivery(r) for r in rows]

        return await self._write(op)  # type: ignore[no-any-return]

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
                    lease_owner=None, lease_until=None, updated_at=time.time())
            )

        await self._write(op)

    async def list_deliveries(
        self, message_id: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[DeliveryRecord]:
        """Deliveries newest first."""
        query = select(deliveries).order_by(deliveries.c.seq.desc()).limit(limit)
        if message_id:
            query = query.where(deliveries.c.message_id == message_id)
        if status:
            query = query.where(deliveries.c.status == status)
        return await self._read(  # type: ignore[no-any-return]
            lambda c: [_row_to_delivery(r) for r in c.execute(query)])

    # --- API keys
    async def create_api_key(self, name: str, prefix: str, key_hash: str) -> ApiKeyRecord:
        """Store a key's hash under a new id; a live key's name cannot be taken again."""
        record = ApiKeyRecord(new_id("key"), name, prefix, time.time(), None)
        live_named = select(api_keys.c.id).where(api_keys.c.name == name,
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
                        created_at=record.created_at))
            except IntegrityError:
                # Another process took the name since the check (the unique index says so).
                existing = conn.execute(live_named).scalar()
                if existing is None:
                    raise
                raise name_taken(existing) from None
            return record

        return await self._write(op)  # type: ignore[no-any-return]

    async def find_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        """The unrevoked key with this hash."""

        def run(conn: Connection) -> ApiKeyRecord | None:
            row = conn.execute(select(api_keys).where(
                api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None))).first()
            return _row_to_key(row) if row else None

        return await self._read(run)  # type: ignore[no-any-return]

    async def list_api_keys(self) -> list[ApiKeyRecord]:
        """Every key."""
        return await self._read(  # type: ignore[no-any-return]
            lambda c: [_row_to_key(r) for r in c.execute(
                select(api_keys).order_by(api_keys.c.created_at))])

    async def count_api_keys(self) -> int:
        """How many keys are live."""
        return await self._read(  # type: ignore[no-any-return]
            lambda c: c.execute(select(func.count()).select_from(api_keys)
                                .where(api_keys.c.revoked_at.is_(None))).scalar_one())

    async def find_live_api_keys(self, id_or_name: str) -> list[ApiKeyRecord]:
        """Unrevoked keys with this id or this name, oldest first."""
        query = (select(api_keys)
                 .where(or_(api_keys.c.id == id_or_name, api_keys.c.name == id_or_name),
                        api_keys.c.revoked_at.is_(None))
                 .order_by(api_keys.c.created_at, api_keys.c.id))
        return await self._read(  # type: ignore[no-any-return]
            lambda c: [_row_to_key(r) for r in c.execute(query)])

    async def revoke_api_key(self, key_id: str) -> ApiKeyRecord | None:
        """Revoke the live key with this id; None when no live key has it."""

        def op(conn: Connection) -> ApiKeyRecord | None:
            row = conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
                .returning(*api_keys.c)).first()
            return _row_to_key(row) if row else None

        return await self._write(op)  # type: ignore[no-any-return]

    # --- carrier tokens
    async def read_tokens(self) -> dict[str, str]:
        """Every stored connection token."""
        return await self._read(lambda c: {  # type: ignore[no-any-return]
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
                                 .values(token=token, created_at=time.time()))
                    found[name] = token
            for name in connections:
                if name not in found:
                    token = make_token()
                    if len(token) < 16:
                        raise ValueError("a webhook token must be long and random")
                    try:
                        with conn.begin_nested():
                            conn.execute(insert(carrier_tokens).values(
                                connection=name, token=token, created_at=time.time()))
                        found[name] = token
                    except IntegrityError:
                        # Another process created it first: keep theirs.
                        found[name] = conn.execute(
                            select(carrier_tokens.c.token)
                            .where(carrier_tokens.c.connection == name)).scalar_one()
            return {name: found[name] for name in connections}

        return await self._write(op)  # type: ignore[no-any-return]

    async def rotate_token(self, connection: str, token: str) -> None:
        """Replace (or create) a connection's token."""

        def op(conn: Connection) -> None:
            result = conn.execute(update(carrier_tokens)
                                  .where(carrier_tokens.c.connection == connection)
                                  .values(token=token, created_at=time.time()))
            if not result.rowcount:
                conn.execute(insert(carrier_tokens).values(
                    connection=connection, token=token, created_at=time.time()))

        await self._write(op)

    # --- runtime facts
    async def get_meta(self, key: str) -> str | None:
        """A stored runtime fact, or None."""
        query = select(meta_table.c.value).where(meta_table.c.key == key)
        return await self._read(lambda c: c.execute(query).scalar())  # type: ignore[no-any-return]

    async def set_meta(self, key: str, value: str) -> None:
        """Store or replace a runtime fact."""

        def op(conn: Connection) -> None:
            conn.execute(UPSERT_META[conn.dialect.name],
                         {"key": key, "value": value, "updated_at": time.time()})

        await self._write(op)


def _apply_receipt(conn: Connection, store: SqlStore, msg: Message, upd: StatusUpdate,
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


class _OutboundInsert(BulkWrite):
    """A queued message without an idempotency key; a batch of them is one INSERT."""

    def __init__(self, store: SqlStore, message: Message, events_for: EventsFor,
                 honour_optouts: bool = True) -> None:
        self.store = store
        self.message = message
        self.events_for = events_for
        self.honour_optouts = honour_optouts

    @classmethod
    def run_bulk(cls, conn: Connection, ops: list[Any]) -> list[Any]:
        """Insert every message of the batch that may be sent, and wake the workers once.

        A recipient who opted out of the sender gets RecipientOptedOut as its result (one
        query for the whole batch, in its transaction), and the others go on.
        """
        now = time.time()
        listed = listed_pairs(conn, [(op.message.from_number, op.message.to_number)
                                     for op in ops if op.honour_optouts])
        results: list[Any] = []
        rows = []
        drafts: list[DeliveryDraft] = []
        for op in ops:
            pair = (op.message.from_number, op.message.to_number)
            if op.honour_optouts and pair in listed:
                results.append(RecipientOptedOut(*pair))
                continue
            values = _message_values(op.message, now)
            values["next_attempt_at"] = now
            rows.append(values)
            drafts.extend(op.events_for("message.queued", op.message))
            results.append((op.message, True))
        if rows:
            conn.execute(INSERT_MESSAGE, rows)
            store: SqlStore = ops[0].store
            store._add_events(conn, drafts, now)
            store._notify(conn, OUTBOX_CHANNEL)
        return results


class _MarkSent(BulkWrite):
    """The carrier accepted a message; a batch of acceptances is one SELECT and one UPDATE."""

    def __init__(self, store: SqlStore, message_id: str, carrier_message_id: str,
                 status: MessageStatus, segments: int | None, events_for: EventsFor) -> None:
        self.store = store
        self.message_id = message_id
        self.carrier_message_id = carrier_message_id
        self.status = status
        self.segments = segments
        self.events_for = events_for

    @classmethod
    def run_bulk(cls, conn: Connection, ops: list[Any]) -> list[Any]:
        """Move each message to sent (or delivered); a message a receipt moved on stays put."""
        now = time.time()
        stamp = datetime.fromtimestamp(now, UTC)
        ids = list({op.message_id for op in ops})
        current: dict[str, Message] = {}
        for start in range(0, len(ids), 500):
            for row in conn.execute(BY_IDS, {"ids": ids[start:start + 500]}):
                current[row._mapping["id"]] = _row_to_message(row)
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
        store: SqlStore = ops[0].store
        if drafts:
            store._add_events(conn, drafts, now)
        if params:
            cls._apply_early_receipts(conn, store, ops, results, now)
        return results

    @staticmethod
    def _apply_early_receipts(conn: Connection, store: SqlStore, ops: list[Any],
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
            moved = _apply_receipt(conn, store, current, upd, now, op.events_for)
            if moved is not None:
                results[index] = moved
            used.append(m["seq"])
        if used:
            conn.execute(delete(early_receipts).where(early_receipts.c.seq.in_(used)))


class _InboundInsert(BulkWrite):
    """Inbound messages of one webhook; a batch of them is one SELECT and one INSERT."""

    def __init__(self, store: SqlStore, batch: Sequence[Message], events_for: EventsFor) -> None:
        self.store = store
        self.batch = batch
        self.events_for = events_for

    @classmethod
    def run_bulk(cls, conn: Connection, ops: list[Any]) -> list[Any]:
        """Store each carrier message once: known keys and repeats within the batch are dups."""
        store: SqlStore = ops[0].store
        now = time.time()
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
                values = _message_values(msg, now)
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
                found[row._mapping["inbound_key"]] = _row_to_message(row)
        return found


def open_store(database_url: str, *, migrate: bool = True) -> SqlStore:
    """A store for ``database_url``, migrated to the newest schema unless told not to."""
    store = SqlStore(database_url)
    if migrate:
        store.migrate()
    return store

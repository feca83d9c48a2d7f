"""The opt-out (suppression) list's queries, mixed into SqlStore."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..core.messages import Direction
from .base import rfc3339
from .paging import newest_first
from .schema import messages, optouts

# Who put a pair on the list: a STOP keyword, the carrier's opted-out error, or a user.
OPTOUT_SOURCES = ("keyword", "carrier", "api", "cli")

# A pair is listed once: adding it again keeps the first row (and its source).
INSERT_OPTOUT_ONCE = {
    name: dialect_insert(optouts)
    .on_conflict_do_nothing(index_elements=[optouts.c.from_number, optouts.c.to_number])
    .returning(*optouts.c)
    for name, dialect_insert in (("sqlite", sqlite_insert), ("postgresql", pg_insert))
}

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class OptoutRecord:
    """One pair on the list: nothing is sent from ``from_number`` to ``to_number``."""

    from_number: str
    to_number: str
    source: str
    created_at: float

    def to_dict(self) -> dict[str, object]:
        """The public JSON form."""
        return {"from": self.from_number, "to": self.to_number, "source": self.source,
                "created_at": rfc3339(self.created_at)}


@dataclass(frozen=True, slots=True)
class OptoutPage:
    """Listed pairs, newest first, and the cursor of the next page."""

    entries: list[OptoutRecord]
    next_cursor: str | None


def _record(row: Any) -> OptoutRecord:
    m = row._mapping
    return OptoutRecord(m["from_number"], m["to_number"], m["source"], m["created_at"])


class OptoutQueries:
    """SqlStore's opt-out list methods."""

    if TYPE_CHECKING:  # provided by SqlStore
        clock: Callable[[], float]

        async def _write(self, op: Callable[[Connection], T]) -> T: ...

        async def _read(self, op: Callable[[Connection], T]) -> T: ...

    async def add_optout(self, from_number: str, to_number: str, source: str,
                         account_id: str | None = None) -> tuple[OptoutRecord, bool]:
        """List the pair; the row and True, or the row already there and False."""
        if source not in OPTOUT_SOURCES:
            raise ValueError(f"unknown opt-out source {source!r}")

        def op(conn: Connection) -> tuple[OptoutRecord, bool]:
            values = {"from_number": from_number, "to_number": to_number, "source": source,
                      "created_at": self.clock(), "account_id": account_id}
            row = conn.execute(INSERT_OPTOUT_ONCE[conn.dialect.name], values).first()
            if row is not None:
                return _record(row), True
            kept = conn.execute(select(optouts).where(optouts.c.from_number == from_number,
                                                      optouts.c.to_number == to_number)).one()
            return _record(kept), False

        return await self._write(op)

    async def remove_optout(self, from_number: str, to_number: str,
                            account_id: str | None = None) -> OptoutRecord | None:
        """Take the pair off the list (only the account's, when given); the row removed, or
        None when it was not listed."""
        query = delete(optouts).where(optouts.c.from_number == from_number,
                                      optouts.c.to_number == to_number)
        if account_id is not None:
            query = query.where(optouts.c.account_id == account_id)

        def op(conn: Connection) -> OptoutRecord | None:
            row = conn.execute(query.returning(*optouts.c)).first()
            return _record(row) if row is not None else None

        return await self._write(op)

    async def is_opted_out(self, from_number: str, to_number: str) -> bool:
        """Whether the pair is on the list."""
        query = select(optouts.c.seq).where(optouts.c.from_number == from_number,
                                            optouts.c.to_number == to_number)
        return await self._read(
            lambda c: c.execute(query).first() is not None)

    async def list_optouts(self, from_number: str | None, to_number: str | None, limit: int,
                           cursor: str | None, account_id: str | None = None) -> OptoutPage:
        """Listed pairs newest first, of one sending number and/or recipient when given.

        ValueError for a cursor this store did not give out.
        """
        query = select(optouts)
        if account_id is not None:
            query = query.where(optouts.c.account_id == account_id)
        if from_number is not None:
            query = query.where(optouts.c.from_number == from_number)
        if to_number is not None:
            query = query.where(optouts.c.to_number == to_number)
        found, next_cursor = await self._read(
            newest_first(query, optouts.c.seq, limit, cursor, _record))
        return OptoutPage(found, next_cursor)

    async def inbound_texts_after(self, message_id: str, max_chars: int) -> list[str]:
        """Texts of at most ``max_chars`` of the inbound messages stored after this one on the
        same pair of numbers (same sender, same receiving number), oldest first."""
        this = select(messages.c.seq, messages.c.from_number, messages.c.to_number).where(
            messages.c.id == message_id).subquery()
        query = (
            select(messages.c.text)
            .where(messages.c.direction == Direction.INBOUND.value,
                   messages.c.from_number == this.c.from_number,
                   messages.c.to_number == this.c.to_number,
                   messages.c.seq > this.c.seq,
                   func.length(messages.c.text) <= max_chars)
            .order_by(messages.c.seq))
        return await self._read(
            lambda c: [row[0] for row in c.execute(query)])


def listed_pairs(conn: Connection, pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of these (sending number, recipient) pairs are on the list, in one query."""
    wanted = set(pairs)
    if not wanted:
        return set()
    senders = {sender for sender, _ in wanted}
    recipients = {recipient for _, recipient in wanted}
    rows = conn.execute(select(optouts.c.from_number, optouts.c.to_number).where(
        optouts.c.from_number.in_(senders), optouts.c.to_number.in_(recipients))).all()
    return {(row[0], row[1]) for row in rows} & wanted

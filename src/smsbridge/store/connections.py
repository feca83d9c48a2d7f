"""Carrier connections added at run time, and the version every process watches, mixed into
SqlStore.

A number belongs to at most one stored connection (``connection_numbers``' primary key);
each change moves ``registry_version`` on, in the same transaction, so that every running
process sees there is something to re-read.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.exc import IntegrityError

from ..core.errors import Conflict
from .schema import carrier_tokens, connection_numbers, connections, meta

T = TypeVar("T")
REGISTRY_VERSION_KEY = "registry_version"


@dataclass(frozen=True, slots=True)
class StoredConnection:
    """A connection as stored: ``settings`` is the encrypted token of its settings' JSON."""

    name: str
    account_id: str
    carrier: str
    numbers: tuple[str, ...]
    settings: str
    created_at: float
    updated_at: float


def _record(row: Any) -> StoredConnection:
    m = row._mapping
    return StoredConnection(m["name"], m["account_id"], m["carrier"],
                            tuple(json.loads(m["numbers"])), m["settings"], m["created_at"],
                            m["updated_at"])


def bump_registry(conn: Connection, now: float) -> None:
    """Tell every process that connections or webhooks changed (inside the change's write)."""
    conn.execute(delete(meta).where(meta.c.key == REGISTRY_VERSION_KEY))
    conn.execute(meta.insert().values(key=REGISTRY_VERSION_KEY, value=uuid.uuid4().hex,
                                      updated_at=now))


def _taken_numbers(conn: Connection, numbers: Sequence[str], but: str | None) -> list[str]:
    query = select(connection_numbers.c.number).where(connection_numbers.c.number.in_(numbers))
    if but is not None:
        query = query.where(connection_numbers.c.connection != but)
    return sorted(row[0] for row in conn.execute(query))


def _claim_numbers(conn: Connection, name: str, numbers: Sequence[str]) -> None:
    taken = _taken_numbers(conn, numbers, but=name)
    if taken:
        raise Conflict("numbers", f"{taken[0]} already belongs to another connection")
    conn.execute(delete(connection_numbers).where(connection_numbers.c.connection == name))
    if numbers:
        conn.execute(connection_numbers.insert(),
                     [{"number": number, "connection": name} for number in numbers])


class ConnectionQueries:
    """SqlStore's methods for connections added at run time."""

    if TYPE_CHECKING:  # provided by SqlStore
        clock: Callable[[], float]

        async def _write(self, op: Callable[[Connection], T]) -> T: ...

        async def _read(self, op: Callable[[Connection], T]) -> T: ...

    async def add_connection(self, record: StoredConnection, token: str) -> StoredConnection:
        """Store a new connection and its webhook token; Conflict when its name or a number is
        taken."""

        def op(conn: Connection) -> StoredConnection:
            exists = conn.execute(select(connections.c.name).where(
                connections.c.name == record.name)).first()
            if exists is not None:
                raise Conflict("name", f"a connection named {record.name!r} exists")
            _claim_numbers(conn, record.name, record.numbers)
            conn.execute(connections.insert().values(
                name=record.name, account_id=record.account_id, carrier=record.carrier,
                numbers=json.dumps(list(record.numbers)), settings=record.settings,
                created_at=record.created_at, updated_at=record.updated_at))
            # A token left by a removed connection of the same name must not open the new one.
            conn.execute(delete(carrier_tokens).where(carrier_tokens.c.connection == record.name))
            conn.execute(carrier_tokens.insert().values(connection=record.name, token=token,
                                                        created_at=record.created_at))
            bump_registry(conn, self.clock())
            return record

        try:
            return await self._write(op)
        except IntegrityError:
            # Another process added the same name or number between our check and insert.
            raise Conflict("name", f"{record.name!r} or one of its numbers was just taken"
                           ) from None

    async def update_connection(self, name: str, account_id: str, *,
                                numbers: Sequence[str] | None = None,
                                settings: str | None = None) -> StoredConnection | None:
        """Change a stored connection's numbers and/or settings; None when the account has
        no such connection."""

        def op(conn: Connection) -> StoredConnection | None:
            row = conn.execute(select(connections).where(
                connections.c.name == name, connections.c.account_id == account_id)).first()
            if row is None:
                return None
            record = _record(row)
            changes: dict[str, Any] = {"updated_at": self.clock()}
            if numbers is not None:
                _claim_numbers(conn, name, numbers)
                changes["numbers"] = json.dumps(list(numbers))
            if settings is not None:
                changes["settings"] = settings
            conn.execute(update(connections).where(connections.c.name == name).values(changes))
            bump_registry(conn, self.clock())
            return replace(record, numbers=tuple(numbers) if numbers is not None else
                           record.numbers, settings=settings or record.settings,
                           updated_at=changes["updated_at"])

        try:
            return await self._write(op)
        except IntegrityError:
            raise Conflict("numbers", "one of the numbers was just taken") from None

    async def remove_connection(self, name: str, account_id: str) -> bool:
        """Delete a stored connection, its numbers and its webhook token (its URLs stop
        working); False when the account has no such connection."""

        def op(conn: Connection) -> bool:
            gone = conn.execute(delete(connections).where(
                connections.c.name == name, connections.c.account_id == account_id)).rowcount
            if not gone:
                return False
            conn.execute(delete(connection_numbers).where(connection_numbers.c.connection == name))
            conn.execute(delete(carrier_tokens).where(carrier_tokens.c.connection == name))
            bump_registry(conn, self.clock())
            return True

        return await self._write(op)

    async def list_stored_connections(self) -> list[StoredConnection]:
        """Every stored connection of every account, by name."""
        query = select(connections).order_by(connections.c.name)
        return await self._read(lambda c: [_record(row) for row in c.execute(query)])

    async def registry_version(self) -> str:
        """Changes whenever a stored connection or app webhook does."""

        def run(conn: Connection) -> str:
            value = conn.execute(select(meta.c.value).where(
                meta.c.key == REGISTRY_VERSION_KEY)).scalar()
            return "" if value is None else str(value)

        return await self._read(run)

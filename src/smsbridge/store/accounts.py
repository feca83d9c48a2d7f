"""Accounts (tenants), mixed into SqlStore."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, select

from ..core.messages import new_id
from .base import rfc3339
from .schema import accounts, meta

T = TypeVar("T")
DEFAULT_ACCOUNT_KEY = "default_account"


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """One account: what its keys see, its connections, webhooks and opt-outs."""

    id: str
    name: str
    created_at: float

    def to_dict(self) -> dict[str, object]:
        """The public JSON form."""
        return {"id": self.id, "name": self.name, "created_at": rfc3339(self.created_at)}


def _record(row: Any) -> AccountRecord:
    m = row._mapping
    return AccountRecord(m["id"], m["name"], m["created_at"])


class AccountQueries:
    """SqlStore's account methods."""

    if TYPE_CHECKING:  # provided by SqlStore
        clock: Callable[[], float]

        async def _write(self, op: Callable[[Connection], T]) -> T: ...

        async def _read(self, op: Callable[[Connection], T]) -> T: ...

    async def default_account_id(self) -> str:
        """The id of the default account (made by the migration that added accounts)."""

        def run(conn: Connection) -> str | None:
            value = conn.execute(select(meta.c.value).where(meta.c.key == DEFAULT_ACCOUNT_KEY)
                                 ).scalar()
            return None if value is None else str(value)

        found = await self._read(run)
        if found is None:
            raise RuntimeError("the store has no default account; run `smsbridge migrate`")
        return found

    async def create_account(self, name: str) -> AccountRecord:
        """Make an account ``acc_...`` named ``name``."""
        record = AccountRecord(new_id("acc"), name, self.clock())

        def op(conn: Connection) -> None:
            conn.execute(accounts.insert().values(id=record.id, name=record.name,
                                                  created_at=record.created_at))

        await self._write(op)
        return record

    async def get_account(self, account_id: str) -> AccountRecord | None:
        """The account with this id, or None."""
        query = select(accounts).where(accounts.c.id == account_id)

        def run(conn: Connection) -> AccountRecord | None:
            row = conn.execute(query).first()
            return None if row is None else _record(row)

        return await self._read(run)

    async def list_accounts(self) -> list[AccountRecord]:
        """Every account, oldest first."""
        query = select(accounts).order_by(accounts.c.created_at, accounts.c.id)
        return await self._read(lambda c: [_record(row) for row in c.execute(query)])

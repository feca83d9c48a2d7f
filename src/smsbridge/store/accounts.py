"""Accounts (tenants), mixed into SqlStore."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, select, update

from ..core.messages import new_id
from .base import rfc3339
from .connections import bump_registry
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

    async def create_account(self, name: str, auth_token: str | None = None) -> AccountRecord:
        """Make an account ``acc_...`` named ``name`` (with its encrypted auth token)."""
        record = AccountRecord(new_id("acc"), name, self.clock())

        def op(conn: Connection) -> None:
            conn.execute(accounts.insert().values(id=record.id, name=record.name,
                                                  created_at=record.created_at,
                                                  auth_token=auth_token))

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

    async def set_account_token(self, account_id: str, auth_token: str) -> bool:
        """Store an account's (encrypted) auth token; False when there is no such account."""

        def op(conn: Connection) -> bool:
            changed = conn.execute(update(accounts).where(accounts.c.id == account_id)
                                   .values(auth_token=auth_token)).rowcount
            if changed:
                bump_registry(conn, self.clock())  # every process signs with the new one
            return bool(changed)

        return await self._write(op)

    async def claim_account_token(self, account_id: str, auth_token: str) -> str | None:
        """The account's (encrypted) auth token, storing ``auth_token`` if it has none;
        None when there is no such account."""

        def op(conn: Connection) -> str | None:
            made = conn.execute(update(accounts).where(accounts.c.id == account_id,
                                                       accounts.c.auth_token.is_(None))
                                .values(auth_token=auth_token)).rowcount
            if made:
                bump_registry(conn, self.clock())
            found = conn.execute(select(accounts.c.auth_token).where(
                accounts.c.id == account_id)).first()
            return None if found is None else str(found[0])

        return await self._write(op)

    async def account_tokens(self) -> dict[str, str]:
        """Every account's (encrypted) auth token, by account id; accounts without one left out."""
        query = select(accounts.c.id, accounts.c.auth_token).where(
            accounts.c.auth_token.is_not(None))
        return await self._read(lambda c: {row[0]: row[1] for row in c.execute(query)})

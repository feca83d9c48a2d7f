"""App webhooks added at run time, mixed into SqlStore."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, delete, select

from .connections import bump_registry
from .schema import app_webhooks

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StoredWebhook:
    """An app webhook as stored: ``secret`` is the encrypted token of its signing secret."""

    id: str
    account_id: str
    url: str
    events: tuple[str, ...]
    secret: str
    format: str
    created_at: float


def _record(row: Any) -> StoredWebhook:
    m = row._mapping
    return StoredWebhook(m["id"], m["account_id"], m["url"], tuple(json.loads(m["events"])),
                         m["secret"], m["format"], m["created_at"])


class AppWebhookQueries:
    """SqlStore's methods for app webhooks added at run time."""

    if TYPE_CHECKING:  # provided by SqlStore
        clock: Callable[[], float]

        async def _write(self, op: Callable[[Connection], T]) -> T: ...

        async def _read(self, op: Callable[[Connection], T]) -> T: ...

    async def add_app_webhook(self, record: StoredWebhook) -> StoredWebhook:
        """Store a new app webhook."""

        def op(conn: Connection) -> StoredWebhook:
            conn.execute(app_webhooks.insert().values(
                id=record.id, account_id=record.account_id, url=record.url,
                events=json.dumps(list(record.events)), secret=record.secret,
                format=record.format, created_at=record.created_at))
            bump_registry(conn, self.clock())
            return record

        return await self._write(op)

    async def remove_app_webhook(self, webhook_id: str, account_id: str) -> bool:
        """Delete one of the account's app webhooks; False when it has none with this id."""

        def op(conn: Connection) -> bool:
            gone = conn.execute(delete(app_webhooks).where(
                app_webhooks.c.id == webhook_id, app_webhooks.c.account_id == account_id)
            ).rowcount
            if gone:
                bump_registry(conn, self.clock())
            return bool(gone)

        return await self._write(op)

    async def list_app_webhooks(self) -> list[StoredWebhook]:
        """Every stored app webhook of every account, oldest first."""
        query = select(app_webhooks).order_by(app_webhooks.c.created_at, app_webhooks.c.id)
        return await self._read(lambda c: [_record(row) for row in c.execute(query)])

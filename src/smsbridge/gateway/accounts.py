"""Accounts and their API keys, as the gateway service manages them (mixed into Gateway).

An admin key manages accounts; every other key acts within its own account. The CLI acts
as the default account's admin unless told an account.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING

from ..core.errors import Forbidden, InvalidInput, NotFound
from ..core.scope import Scope
from ..store.accounts import AccountRecord
from ..store.base import ApiKeyRecord, Store

if TYPE_CHECKING:
    from .registry import ConnectionRegistry

log = logging.getLogger("smsbridge.gateway")

API_KEY_PREFIX = "sbk_"
MAX_NAME_CHARS = 100


def clean_name(field: str, name: str) -> str:
    """``name`` trimmed; InvalidInput when empty, too long or holding control characters."""
    name = name.strip() if isinstance(name, str) else ""
    if not name:
        raise InvalidInput(field, "must not be empty")
    if len(name) > MAX_NAME_CHARS or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidInput(field, f"must be at most {MAX_NAME_CHARS} characters, none of them "
                                  "control characters")
    return name


def require_admin(scope: Scope) -> None:
    """Forbidden unless ``scope`` is an admin key's."""
    if not scope.admin:
        raise Forbidden("managing accounts takes an admin key (the default account's key "
                        "printed on first start, or `smsbridge keys create --admin`)")


class AccountAdmin:
    """Gateway's account and API key operations."""

    if TYPE_CHECKING:  # provided by Gateway
        store: Store
        registry: ConnectionRegistry

        @property
        def default_account(self) -> str: ...

        def _hash_key(self, key: str) -> str: ...

    @property
    def cli_scope(self) -> Scope:
        """What the CLI may do: everything, as the default account's admin."""
        return Scope(self.default_account, admin=True)

    async def create_account(self, scope: Scope, name: str) -> AccountRecord:
        """Make an account (admin only)."""
        require_admin(scope)
        record = await self.store.create_account(clean_name("name", name))
        log.info("account %s (%s) created", record.id, record.name)
        return record

    async def list_accounts(self, scope: Scope) -> list[AccountRecord]:
        """Every account (admin only)."""
        require_admin(scope)
        return await self.store.list_accounts()

    async def get_account(self, scope: Scope, account_id: str) -> AccountRecord:
        """One account: any for an admin, else only the caller's own."""
        if not scope.admin and account_id != scope.account_id:
            raise NotFound("account", account_id)
        record = await self.store.get_account(account_id)
        if record is None:
            raise NotFound("account", account_id)
        return record

    async def create_api_key(self, name: str, *, account: str | None = None,
                             admin: bool = False) -> tuple[ApiKeyRecord, str]:
        """Make a key of ``account`` (default: the default account); the key itself is
        returned once and only its hash is kept."""
        name = clean_name("name", name)
        account_id = account or self.default_account
        if await self.store.get_account(account_id) is None:
            raise NotFound("account", account_id)
        if admin and account_id != self.default_account:
            raise InvalidInput("admin", "only keys of the default account can be admin keys")
        key = API_KEY_PREFIX + secrets.token_urlsafe(32)
        record = await self.store.create_api_key(name, key[:12], self._hash_key(key),
                                                 account_id, admin)
        return record, key

    async def list_api_keys(self, account: str | None = None) -> list[ApiKeyRecord]:
        """Every key, revoked ones included (of one account when given)."""
        return await self.store.list_api_keys(account)

    async def revoke_api_key(self, id_or_name: str, account: str | None = None
                             ) -> ApiKeyRecord:
        """Revoke the live key with this id, or the one live key with this name (within
        ``account`` when given); else InvalidInput."""
        return await revoke_api_key(self.store, id_or_name, account)


async def revoke_api_key(store: Store, id_or_name: str, account: str | None = None
                         ) -> ApiKeyRecord:
    """Revoke the live key with this id, or the one live key with this name (within
    ``account`` when given); else InvalidInput."""
    found = [record for record in await store.find_live_api_keys(id_or_name)
             if account is None or record.account_id == account]
    by_id = [record for record in found if record.id == id_or_name]
    if by_id:
        target = by_id[0]
    elif len(found) == 1:
        target = found[0]
    elif not found:
        raise InvalidInput("key", f"no active key with id or name {id_or_name!r}")
    else:
        ids = ", ".join(record.id for record in found)
        raise InvalidInput("key", f"{len(found)} active keys are named {id_or_name!r} "
                                  f"({ids}); revoke one by its id")
    revoked = await store.revoke_api_key(target.id)
    if revoked is None:  # revoked by someone else since the lookup
        raise InvalidInput("key", f"no active key with id or name {id_or_name!r}")
    return revoked

"""Accounts and their API keys, as the gateway service manages them (mixed into Gateway).

An admin key manages accounts; every other key acts within its own account. The CLI acts
as the default account's admin unless told an account.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import TYPE_CHECKING

from ..core.errors import Forbidden, InvalidInput, NotFound
from ..core.scope import Scope
from ..store.accounts import AccountRecord
from ..store.base import ApiKeyRecord, Store

if TYPE_CHECKING:
    from .registry import ConnectionRegistry
    from .secretbox import SecretBox

log = logging.getLogger("smsbridge.gateway")

API_KEY_PREFIX = "sbk_"
MAX_NAME_CHARS = 100


def new_auth_token() -> str:
    """A Twilio-style auth token: 32 lowercase hex digits."""
    return secrets.token_hex(16)


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

        box: SecretBox | None
        _account_tokens: dict[str, str]

        async def sealing_box(self) -> SecretBox: ...

        async def authenticate(self, key: str) -> ApiKeyRecord | None: ...

    @property
    def cli_scope(self) -> Scope:
        """What the CLI may do: everything, as the default account's admin."""
        return Scope(self.default_account, admin=True)

    async def create_account(self, scope: Scope, name: str) -> AccountRecord:
        """Make an account (admin only); its auth token is made now when the secret key is
        loaded, else on first ask (``account_auth_token``)."""
        if self.box is None:
            require_admin(scope)
            record = await self.store.create_account(clean_name("name", name))
            log.info("account %s (%s) created", record.id, record.name)
            return record
        return (await self.create_account_with_token(scope, name))[0]

    async def create_account_with_token(self, scope: Scope, name: str
                                        ) -> tuple[AccountRecord, str]:
        """Make an account (admin only); the record and its auth token, shown this once."""
        require_admin(scope)
        name = clean_name("name", name)
        token = new_auth_token()
        box = await self.sealing_box()
        record = await self.store.create_account(name, box.encrypt(token))
        log.info("account %s (%s) created", record.id, record.name)
        return record, token

    async def account_auth_token(self, scope: Scope, account_id: str, *, rotate: bool = False
                                 ) -> str:
        """The account's Twilio-style auth token (made on first ask); with ``rotate`` a new one,
        and the old one stops working. Admin, or the account's own key."""
        await self.get_account(scope, account_id)  # NotFound for someone else's
        box = await self.sealing_box()
        if rotate:
            token = new_auth_token()
            await self.store.set_account_token(account_id, box.encrypt(token))
            log.info("auth token of account %s rotated", account_id)
        else:
            stored = await self.store.claim_account_token(account_id, box.encrypt(new_auth_token()))
            if stored is None:
                raise NotFound("account", account_id)
            token = box.decrypt(stored)
        self._account_tokens[account_id] = token
        return token

    async def authenticate_account(self, account_sid: str, secret: str) -> Scope | None:
        """The scope of HTTP Basic ``account_sid:secret`` as a Twilio client sends it: the
        account's auth token, or a live API key of that very account; None otherwise."""
        if secret.startswith(API_KEY_PREFIX):
            record = await self.authenticate(secret)
            if record is None or record.account_id != account_sid:
                return None
            return record.scope
        known = self._account_tokens.get(account_sid)
        if known is None or not hmac.compare_digest(known.encode(), secret.encode()):
            # Made or rotated by another process since this one last read them.
            known = await self._read_account_token(account_sid)
        if known is None or not hmac.compare_digest(known.encode(), secret.encode()):
            return None
        return Scope(account_sid, admin=False)

    async def _read_account_token(self, account_id: str) -> str | None:
        if self.box is None:
            return None
        stored = (await self.store.account_tokens()).get(account_id)
        if stored is None:
            return None
        token = self.box.decrypt(stored)
        self._account_tokens[account_id] = token
        return token

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

"""Carrier connections added, changed and removed at run time (mixed into Gateway).

Their settings are checked against the carrier's schema, encrypted (gateway/secretbox.py)
and never shown again; the config file's connections are listed too, read-only.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr, ValidationError

from ..core.errors import Conflict, InvalidInput, NotFound, SecretKeyError
from ..core.phone import to_e164
from ..core.scope import Scope
from ..store.base import Store
from ..store.connections import StoredConnection
from .config import Connection, Settings

if TYPE_CHECKING:
    from .registry import ConnectionRegistry
    from .secretbox import SecretBox

log = logging.getLogger("smsbridge.gateway")

CONNECTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_NUMBERS = 1000


def _settings_error(exc: ValidationError) -> InvalidInput:
    """The first problem pydantic found, as InvalidInput naming ``settings.<field>``."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "is not a setting of this carrier"
    return InvalidInput(f"settings.{where}" if where else "settings", message)


class ConnectionAdmin:
    """Gateway's connection operations, within the caller's account."""

    if TYPE_CHECKING:  # provided by Gateway
        settings: Settings
        store: Store
        registry: ConnectionRegistry
        box: SecretBox | None
        tokens: dict[str, str]

        def inbound_url(self, connection: str) -> str: ...

        def status_url(self, connection: str) -> str: ...

        async def _load_registry(self) -> None: ...

        async def load_tokens(self) -> dict[str, str]: ...

        async def rotate_token(self, connection: str, account: str | None = None) -> str: ...

        async def sealing_box(self) -> SecretBox: ...

    def describe(self, conn: Connection) -> dict[str, Any]:
        """A connection as the API and the CLI show it: URLs and setup hint, no secret."""
        caps = conn.provider_class.capabilities
        token = self.tokens.get(conn.name)
        inbound = self.inbound_url(conn.name) if token else None
        status = self.status_url(conn.name) if token else None
        out: dict[str, Any] = {
            "name": conn.name,
            "carrier": conn.carrier,
            "numbers": list(conn.numbers),
            "source": conn.origin,
            "inbound_url": inbound,
            "status_url": status if caps.delivery_receipts else None,
            "setup": conn.setup_hint(inbound, status or "") if inbound else None,
        }
        if conn.origin == "api":
            out["settings"] = self._public_settings(conn)
        return out

    def _public_settings(self, conn: Connection) -> dict[str, Any]:
        """The settings a user gave, secrets left out (only that they are set is shown)."""
        try:
            given = conn._settings_for_provider("raise")
        except SecretKeyError:
            return {}
        fields = conn.provider_class.Config.model_fields
        public: dict[str, Any] = {}
        for name, value in given.items():
            info = fields.get(name)
            if info is not None and info.annotation is SecretStr:
                public[name] = "(set)"
            else:
                public[name] = value
        return public

    def _own(self, scope: Scope, name: str) -> Connection:
        conn = self.registry.get(name, scope.account_id)
        if conn is None:
            raise NotFound("connection", name)
        return conn

    def _numbers(self, numbers: Any, name: str) -> list[str]:
        if not isinstance(numbers, list) or not all(isinstance(n, str) for n in numbers):
            raise InvalidInput("numbers", "must be a list of phone numbers")
        if len(numbers) > MAX_NUMBERS:
            raise InvalidInput("numbers", f"at most {MAX_NUMBERS} numbers per connection")
        out: list[str] = []
        for index, raw in enumerate(numbers):
            number = to_e164(raw, self.settings.server.default_region,
                             field=f"numbers[{index}]")
            if number in out:
                raise InvalidInput(f"numbers[{index}]", f"{number} is given twice")
            owner = self.registry.owner_of(number)
            if owner is not None and owner.name != name:
                raise Conflict("numbers", f"{number} already belongs to another connection")
            out.append(number)
        return out

    def _checked_settings(self, carrier: str, settings: Any) -> tuple[type[Any], dict[str, Any]]:
        from ..providers.registry import UnknownProvider, get_provider_class

        try:
            cls = get_provider_class(carrier)
        except UnknownProvider as exc:
            raise InvalidInput("carrier", str(exc)) from None
        if not isinstance(settings, dict):
            raise InvalidInput("settings", "must be an object of the carrier's settings")
        try:
            cls.Config.model_validate(settings)
        except ValidationError as exc:
            raise _settings_error(exc) from None
        return cls, settings

    async def _encrypt(self, settings: dict[str, Any]) -> str:
        box = await self.sealing_box()
        return box.encrypt_json(settings)

    async def add_connection(self, scope: Scope, name: Any, carrier: Any, numbers: Any,
                             settings: Any) -> dict[str, Any]:
        """Add a carrier connection to the caller's account; its description with the URLs
        to give the carrier. InvalidInput names a bad field; Conflict a taken name or number."""
        if not isinstance(name, str) or not CONNECTION_NAME.fullmatch(name):
            raise InvalidInput("name", "must be 1 to 64 letters, digits, _ or -")
        if not isinstance(carrier, str):
            raise InvalidInput("carrier", "must be a carrier key such as voipms")
        if self.registry.get(name) is not None:
            raise Conflict("name", f"a connection named {name!r} exists")
        checked = self._numbers(numbers if numbers is not None else [], name)
        _, clean = self._checked_settings(carrier, settings if settings is not None else {})
        now = time.time()
        record = StoredConnection(name, scope.account_id, carrier, tuple(checked),
                                  await self._encrypt(clean), now, now)
        await self.store.add_connection(record, secrets.token_urlsafe(32))
        await self._load_registry()
        await self.load_tokens()
        log.info("connection %r (%s) added to account %s with %d number(s)", name, carrier,
                 scope.account_id, len(checked))
        return self.describe(self._own(scope, name))

    def list_connections(self, scope: Scope) -> list[dict[str, Any]]:
        """The caller's connections, the config file's first."""
        return [self.describe(conn) for conn in self.registry.of_account(scope.account_id)]

    def get_connection(self, scope: Scope, name: str) -> dict[str, Any]:
        """One of the caller's connections; NotFound for another account's."""
        return self.describe(self._own(scope, name))

    def _writable(self, scope: Scope, name: str) -> Connection:
        conn = self._own(scope, name)
        if conn.origin != "api":
            raise Conflict("name", f"connection {name!r} is defined in the config file; change "
                                   "it there")
        return conn

    async def update_connection(self, scope: Scope, name: str, *, numbers: Any = None,
                                settings: Any = None) -> dict[str, Any]:
        """Change a connection's numbers and/or settings (given settings replace those
        of the same name; null removes one)."""
        conn = self._writable(scope, name)
        checked = self._numbers(numbers, name) if numbers is not None else None
        token: str | None = None
        if settings is not None:
            if not isinstance(settings, dict):
                raise InvalidInput("settings", "must be an object of the carrier's settings")
            merged = {**conn._settings_for_provider("raise"), **settings}
            merged = {k: v for k, v in merged.items() if v is not None}
            _, clean = self._checked_settings(conn.carrier, merged)
            token = await self._encrypt(clean)
        updated = await self.store.update_connection(name, scope.account_id, numbers=checked,
                                                     settings=token)
        if updated is None:
            raise NotFound("connection", name)
        await self._load_registry()
        log.info("connection %r of account %s changed", name, scope.account_id)
        return self.describe(self._own(scope, name))

    async def remove_connection(self, scope: Scope, name: str) -> None:
        """Remove a connection: its URLs stop working at once, on every process within
        seconds."""
        self._writable(scope, name)
        if not await self.store.remove_connection(name, scope.account_id):
            raise NotFound("connection", name)
        await self._load_registry()
        await self.load_tokens()
        log.info("connection %r of account %s removed", name, scope.account_id)

    async def rotate_connection_token(self, scope: Scope, name: str) -> dict[str, Any]:
        """Give one of the caller's connections new webhook URLs; the old ones stop working."""
        self._own(scope, name)
        await self.rotate_token(name, scope.account_id)
        return self.describe(self._own(scope, name))

"""Every connection the gateway serves: the config file's and those added by the API.

The config file's belong to the default account and change only with a restart; stored
ones are re-read whenever the store's registry version moves (see Gateway.refresh), so a
connection added, changed or removed through one process reaches every other within seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any, Literal

from ..core.errors import SecretKeyError
from ..providers.base import Provider
from ..store.connections import StoredConnection
from .config import Connection, ConnectionConfig, Settings
from .secretbox import SecretBox

log = logging.getLogger("smsbridge.gateway")


class StoredConnectionEntry(Connection):
    """A connection added by the API: its settings are decrypted when the provider is built."""

    origin = "api"

    def __init__(self, record: StoredConnection, provider_class: type[Provider[Any]],
                 box: SecretBox | None) -> None:
        config = ConnectionConfig.model_construct(name=record.name, carrier=record.carrier,
                                                  numbers=list(record.numbers), settings={})
        super().__init__(config, provider_class, list(record.numbers),
                         f"connections.{record.name}", record.account_id)
        self.record = record
        self._box = box

    def _settings_for_provider(self, missing: Literal["raise", "omit"]) -> dict[str, Any]:
        # Stored settings are taken as given: a password may well contain "${".
        if self._box is None:
            if missing == "omit":
                return {}
            raise SecretKeyError("the secret key is not loaded: stored carrier settings "
                                 "cannot be read")
        return self._box.decrypt_json(self.record.settings)


class _Providers(Mapping[str, Provider[Any]]):
    """The provider of every connection by name, as the registry holds them now."""

    def __init__(self, registry: ConnectionRegistry) -> None:
        self._registry = registry

    def __getitem__(self, name: str) -> Provider[Any]:
        return self._registry.connections[name].provider

    def __iter__(self) -> Iterator[str]:
        return iter(self._registry.connections)

    def __len__(self) -> int:
        return len(self._registry.connections)


class ConnectionRegistry:
    """Connections by name and by number, config file's first, then the stored ones."""

    def __init__(self, settings: Settings, box: SecretBox | None = None) -> None:
        self.settings = settings
        self.box = box
        self.default_account = ""
        self._stored: dict[str, StoredConnectionEntry] = {}
        self.connections: dict[str, Connection] = dict(settings.connections)
        self.number_owner: dict[str, Connection] = dict(settings.number_owner)
        self.providers: Mapping[str, Provider[Any]] = _Providers(self)

    def set_default_account(self, account_id: str) -> None:
        """Give the config file's connections to the default account."""
        self.default_account = account_id
        for conn in self.settings.connections.values():
            conn.account_id = account_id

    def load(self, records: list[StoredConnection]) -> None:
        """Take the stored connections as they are now (unchanged ones keep their provider)."""
        from ..providers.registry import UnknownProvider, get_provider_class

        stored: dict[str, StoredConnectionEntry] = {}
        for record in records:
            if record.name in self.settings.connections:
                log.warning("stored connection %r has the name of one in the config file; "
                            "the config file's is used", record.name)
                continue
            kept = self._stored.get(record.name)
            if kept is not None and kept.record == record:
                stored[record.name] = kept
                continue
            try:
                cls = get_provider_class(record.carrier)
            except UnknownProvider:
                log.warning("stored connection %r uses carrier %r, which is not installed; "
                            "it is skipped", record.name, record.carrier)
                continue
            stored[record.name] = StoredConnectionEntry(record, cls, self.box)
        connections: dict[str, Connection] = dict(self.settings.connections)
        number_owner: dict[str, Connection] = dict(self.settings.number_owner)
        for name, entry in stored.items():
            connections[name] = entry
            for number in entry.numbers:
                number_owner.setdefault(number, entry)
        # Swapped whole: a request in flight sees the old set or the new, never a mix.
        self._stored = stored
        self.connections = connections
        self.number_owner = number_owner

    def get(self, name: str, account_id: str | None = None) -> Connection | None:
        """The connection of this name (within the account, when given), or None."""
        conn = self.connections.get(name)
        if conn is None or (account_id is not None and conn.account_id != account_id):
            return None
        return conn

    def owner_of(self, number: str, account_id: str | None = None) -> Connection | None:
        """The connection that owns ``number`` (within the account, when given), or None."""
        conn = self.number_owner.get(number)
        if conn is None or (account_id is not None and conn.account_id != account_id):
            return None
        return conn

    def of_account(self, account_id: str) -> list[Connection]:
        """The account's connections, config file's first."""
        return [c for c in self.connections.values() if c.account_id == account_id]

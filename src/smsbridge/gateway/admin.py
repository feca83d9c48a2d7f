"""The gateway as CLI commands use it: no workers, no HTTP server, no migrations.

Only ``serve``, ``worker`` and ``migrate`` migrate the database. Every other command opens
an existing, up-to-date one and otherwise says what to do, in one line. This module
imports the store, the providers and the HTTP client only inside the functions that need
them, so that a read-only command starts quickly.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import StoreUnavailable
from .config import Connection, Settings, sqlite_path

if TYPE_CHECKING:
    from ..store.base import ApiKeyRecord, Store
    from ..store.sql import SqlStore
    from .service import Gateway

# The address the running `serve` listens on, as HOST:PORT (it may differ from the config's).
LISTEN_META_KEY = "serve.listen"
START_HINT = "start `smsbridge serve` or run `smsbridge migrate`"


@dataclass(frozen=True, slots=True)
class Provisioned:
    """What a start of ``serve`` prepared."""

    tokens: dict[str, str]
    new_tokens: frozenset[str]  # connections whose webhook token this start created
    first_key: str | None  # the API key made because the store had none


def shipped_revisions() -> list[str]:
    """The migration revisions this smsbridge ships, oldest first (no Alembic import)."""
    from .. import store as store_package

    versions = Path(store_package.__file__ or "").parent / "migrations" / "versions"
    down_of: dict[str, str | None] = {}
    for file in versions.glob("*.py"):
        text = file.read_text(encoding="utf-8")
        rev = re.search(r"^revision\s*=\s*['\"]([^'\"]+)['\"]", text, re.M)
        down = re.search(r"^down_revision\s*=\s*(?:['\"]([^'\"]+)['\"]|None)", text, re.M)
        if rev and down:
            down_of[rev.group(1)] = down.group(1)
    ordered: list[str] = []
    current: str | None = None
    while True:
        following = [r for r, d in down_of.items() if d == current]
        if len(following) != 1:
            break
        current = following[0]
        ordered.append(current)
    return ordered


def _read_revision(store: SqlStore) -> str | None:
    from sqlalchemy import inspect, text

    with store.engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


async def _revision(store: SqlStore) -> str | None:
    from ..store.sql import unusable_reason

    try:
        return await asyncio.to_thread(_read_revision, store)
    except Exception as exc:
        reason = unusable_reason(store.engine.url, exc)
        if reason is None:
            raise
        raise StoreUnavailable(reason) from None


async def check_schema(store: SqlStore, settings: Settings) -> None:
    """Raise StoreUnavailable unless the database has the schema this smsbridge needs."""
    revision = await _revision(store)
    if revision is None:
        raise StoreUnavailable(f"no smsbridge database at {settings.data_location}; "
                               f"{START_HINT}")
    shipped = shipped_revisions()
    if revision not in shipped:
        raise StoreUnavailable(f"the database at {settings.data_location} is at revision "
                               f"{revision}, newer than this smsbridge knows (newest "
                               f"{shipped[-1] if shipped else '?'}); upgrade smsbridge")
    if revision != shipped[-1]:
        raise StoreUnavailable(f"the database at {settings.data_location} is at revision "
                               f"{revision}; this smsbridge needs {shipped[-1]}: run "
                               "`smsbridge migrate` (or start `smsbridge serve`)")


async def migrate_database(settings: Settings) -> tuple[str | None, str | None]:
    """Apply the migrations (creating a SQLite file); the revisions before and after."""
    from ..store.sql import SqlStore

    store = SqlStore(settings.server.database)
    try:
        before = await _revision(store)
        await asyncio.to_thread(store.migrate)
        return before, await _revision(store)
    finally:
        await store.close()


def _require_database_file(settings: Settings) -> None:
    # Checked before connecting: SQLite would create an empty file, and the command would
    # then report a database that the user never made.
    path = sqlite_path(settings.server.database)
    if path is not None and not Path(path).exists():
        raise StoreUnavailable(f"no smsbridge database at {path}; {START_HINT}")


@asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[Store]:
    """The store of an existing, up-to-date database, closed on exit; never migrates."""
    _require_database_file(settings)
    from ..store.sql import SqlStore

    store = SqlStore(settings.server.database)
    try:
        await check_schema(store, settings)
        yield store
    finally:
        await store.close()


@asynccontextmanager
async def open_gateway(settings: Settings) -> AsyncIterator[Gateway]:
    """A started gateway without workers on an up-to-date database, closed on exit."""
    from .runtime import Runtime

    _require_database_file(settings)
    runtime = Runtime(settings, run_workers=False, migrate=False)
    try:
        await check_schema(runtime.store, settings)
        gateway = await runtime.start()
        yield gateway
    finally:
        await runtime.stop()


async def prepare_serving(settings: Settings, key_name: str = "default", *,
                          listening_on: str | None = None) -> Provisioned:
    """Migrate, create webhook tokens, a first API key if none, and record the listen address."""
    from .runtime import Runtime

    runtime = Runtime(settings, run_workers=False)
    try:
        gateway = await runtime.start()
        key = await runtime.ensure_first_api_key(key_name)
        if listening_on is not None:
            await runtime.store.set_meta(LISTEN_META_KEY, listening_on)
        return Provisioned(dict(gateway.tokens), frozenset(runtime.new_tokens), key)
    finally:
        await runtime.stop()


async def provision(
    settings: Settings, key_name: str = "default"
) -> tuple[dict[str, str], str | None]:
    """Migrate, create webhook tokens, and create a first API key if the store has none."""
    done = await prepare_serving(settings, key_name)
    return done.tokens, done.first_key


def url_of(listen: str) -> str:
    """The URL a client on this machine uses to reach a server listening on ``listen``."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def gateway_url(settings: Settings, store: Store) -> str:
    """Where the running gateway answers: the address `serve` recorded, else server.listen."""
    recorded = await store.get_meta(LISTEN_META_KEY)
    return url_of(recorded or settings.server.listen)


async def carrier_base_url(settings: Settings, store: Store) -> str:
    """What the webhook URLs start with: public_url, else the running gateway's address."""
    return settings.server.public_url or await gateway_url(settings, store)


def describe(conn: Connection, base_url: str, token: str) -> dict[str, Any]:
    """A connection as `smsbridge carriers` shows it (no secret of the carrier is needed)."""
    inbound = f"{base_url}/v1/carriers/{conn.name}/{token}/inbound"
    status = f"{base_url}/v1/carriers/{conn.name}/{token}/status"
    return {
        "name": conn.name,
        "carrier": conn.carrier,
        "numbers": conn.numbers,
        "inbound_url": inbound,
        "status_url": status if conn.provider_class.capabilities.delivery_receipts else None,
        "setup": conn.setup_hint(inbound, status),
    }


async def describe_connections(settings: Settings) -> tuple[str, list[dict[str, Any]]]:
    """The webhook base URL and each connection with its URLs (tokens made where missing)."""
    import secrets

    async with open_store(settings) as store:
        base = await carrier_base_url(settings, store)
        tokens = await store.ensure_tokens(list(settings.connections),
                                           lambda: secrets.token_urlsafe(32))
    return base, [describe(c, base, tokens[c.name]) for c in settings.connections.values()]


async def revoke_key(settings: Settings, id_or_name: str) -> ApiKeyRecord:
    """Revoke one live API key by id or unique name; InvalidInput when none or several match."""
    from .service import revoke_api_key

    async with open_store(settings) as store:
        return await revoke_api_key(store, id_or_name)

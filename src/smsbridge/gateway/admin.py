"""The gateway as CLI commands use it: no workers, no HTTP server, no migrations.

Only ``serve``, ``worker`` and ``migrate`` migrate the database. Every other command opens
an existing, up-to-date one through the gateway service (``open_gateway``), where account
scoping lives, and otherwise says what to do, in one line. This module imports the store,
the providers and the HTTP client only inside the functions that need them.
"""

from __future__ import annotations

import asyncio
import copy
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.errors import StoreUnavailable
from .config import Settings, sqlite_path

if TYPE_CHECKING:
    from ..store.base import Store
    from ..store.sql import SqlStore
    from .runtime import Runtime
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
    # Connections added through the API: (name, carrier, numbers, account id)
    stored: tuple[tuple[str, str, tuple[str, ...], str], ...] = ()


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
    from ..store.engine import unusable_reason

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


def store_for(settings: Settings) -> SqlStore:
    """The store of the configured database (not yet started or migrated)."""
    from ..store.sql import SqlStore

    return SqlStore(settings.server.database)


@asynccontextmanager
async def open_runtime(settings: Settings, *, create_secret_key: bool = False
                       ) -> AsyncIterator[Runtime]:
    """A started runtime without workers on an up-to-date database, stopped on exit.

    Its gateway builds webhook URLs on the address the running ``serve`` recorded (a
    ``--listen`` may have moved it from the config's); ``create_secret_key``: for a command
    that stores secrets, make the key file if there is none.
    """
    from .runtime import Runtime

    _require_database_file(settings)
    store = store_for(settings)
    try:
        await check_schema(store, settings)
        served = await _as_served(settings, store)
    except BaseException:
        await store.close()
        raise
    runtime = Runtime(served, store, run_workers=False, migrate=False,
                      create_secret_key=create_secret_key)
    try:
        await runtime.start()
        yield runtime
    finally:
        await runtime.stop()


@asynccontextmanager
async def open_gateway(settings: Settings, *, create_secret_key: bool = False
                       ) -> AsyncIterator[Gateway]:
    """A started gateway without workers on an up-to-date database, closed on exit.

    ``create_secret_key``: for a command that stores secrets, make the key file if none.
    """
    async with open_runtime(settings, create_secret_key=create_secret_key) as runtime:
        assert runtime.gateway is not None
        yield runtime.gateway


async def _as_served(settings: Settings, store: Store) -> Settings:
    """``settings`` with the listen address the running ``serve`` recorded, if another.

    A copy: the caller's settings keep the config's address.
    """
    recorded = await store.get_meta(LISTEN_META_KEY)
    if not recorded or recorded == settings.server.listen:
        return settings
    served = copy.copy(settings)
    served.config = settings.config.model_copy(
        update={"server": settings.server.model_copy(update={"listen": recorded})})
    return served


async def prepare_serving(settings: Settings, key_name: str = "default", *,
                          listening_on: str | None = None) -> Provisioned:
    """Migrate, create webhook tokens, a first API key if none, and record the listen address."""
    from .runtime import Runtime

    runtime = Runtime(settings, store_for(settings), run_workers=False)
    try:
        gateway = await runtime.start()
        key = await runtime.ensure_first_api_key(key_name)
        if listening_on is not None:
            await runtime.store.set_meta(LISTEN_META_KEY, listening_on)
        stored = tuple((c.name, c.carrier, tuple(c.numbers), c.account_id)
                       for c in gateway.registry.connections.values() if c.origin == "api")
        return Provisioned(dict(gateway.tokens), frozenset(runtime.new_tokens), key, stored)
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


def served_url(settings: Settings) -> str:
    """Where the running gateway answers, for a client on this machine (``settings`` as
    ``open_runtime`` gives them: the address ``serve`` recorded, else server.listen)."""
    return url_of(settings.server.listen)

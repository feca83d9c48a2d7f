"""The shipped Alembic migrations build exactly the schema the store's metadata describes."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from smsbridge.core.messages import Direction, Message, MessageStatus
from smsbridge.store import SqlStore
from smsbridge.store.migrate import current_revision, head_revision
from smsbridge.store.schema import metadata


def schema_differences(engine: Engine) -> list[object]:
    """What autogenerate would still have to change to reach ``metadata``."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def test_empty_database_has_no_revision(database_url: str) -> None:
    store = SqlStore(database_url)
    try:
        assert current_revision(store.engine) is None
        assert head_revision() is not None
    finally:
        store.engine.dispose()


def test_migrations_build_exactly_the_metadata_schema(database_url: str) -> None:
    store = SqlStore(database_url)
    try:
        store.migrate()
        assert schema_differences(store.engine) == []
        tables = set(inspect(store.engine).get_table_names())
        assert tables == set(metadata.tables) | {"alembic_version"}
        assert current_revision(store.engine) == head_revision()
    finally:
        store.engine.dispose()


async def test_migrate_twice_is_a_no_op_and_keeps_data(database_url: str) -> None:
    store = SqlStore(database_url)
    store.migrate()
    await store.start()
    try:
        msg = Message(id="msg_kept", direction=Direction.INBOUND, connection="main",
                      carrier="sandbox", from_number="+15145550111", to_number="+15555550100",
                      text="still here", status=MessageStatus.RECEIVED, carrier_message_id="SM1")
        await store.record_inbound([msg], lambda _e, _m: ())
        store.migrate()
        assert current_revision(store.engine) == head_revision()
        assert schema_differences(store.engine) == []
        kept = await store.get_message("msg_kept")
        assert kept is not None and kept.text == "still here"
    finally:
        await store.close()


async def test_concurrent_migrations_on_postgres_both_succeed(pg_url: str) -> None:
    one, two = SqlStore(pg_url), SqlStore(pg_url)
    try:
        await asyncio.gather(asyncio.to_thread(one.migrate), asyncio.to_thread(two.migrate))
        assert current_revision(one.engine) == head_revision()
        assert schema_differences(one.engine) == []
    finally:
        one.engine.dispose()
        two.engine.dispose()

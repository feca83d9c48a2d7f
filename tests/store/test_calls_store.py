"""Voice calls in the store, on SQLite and PostgreSQL: kept apart from messages, migrated in."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from alembic import command
from sqlalchemy import text

from smsbridge.core.messages import KIND_CALL, Direction, Message, MessageStatus, new_id
from smsbridge.store import MessageFilter, SqlStore
from smsbridge.store.base import IdempotencyKey
from smsbridge.store.migrate import alembic_config, upgrade
from tests.store.test_store import ALICE, HOME, no_events, open_started, outbound


def call(say: str = "Alarm: garage", **fields: object) -> Message:
    """A freshly queued call as the gateway builds it."""
    values: dict[str, object] = {"voice": "Polly.Joanna", "language": "en-US", "repeat": 2,
                                 **fields}
    return Message(id=new_id("call"), kind=KIND_CALL, direction=Direction.OUTBOUND,
                   connection="main", carrier="sandbox", from_number=HOME, to_number=ALICE,
                   text=say, status=MessageStatus.QUEUED, **values)  # type: ignore[arg-type]


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlStore]:
    s = await open_started(database_url)
    yield s
    await s.close()


async def test_a_call_keeps_its_kind_voice_language_and_repeat(store: SqlStore) -> None:
    queued, created = await store.queue_outbound(call(), None, no_events)
    assert created
    kept = await store.get_message(queued.id)
    assert kept is not None and kept.is_call
    assert (kept.text, kept.voice, kept.language, kept.repeat) == (
        "Alarm: garage", "Polly.Joanna", "en-US", 2)
    [claimed] = await store.claim_outbound("w", 10, 30)
    assert claimed.id == queued.id and claimed.is_call and claimed.repeat == 2


async def test_calls_and_messages_are_listed_apart(store: SqlStore) -> None:
    message, _ = await store.queue_outbound(outbound("Door open"), None, no_events)
    first, _ = await store.queue_outbound(call("first"), None, no_events)
    second, _ = await store.queue_outbound(call("second"), None, no_events)
    messages = await store.list_messages(MessageFilter(), 10, None)
    assert [m.id for m in messages.messages] == [message.id]
    calls = await store.list_messages(MessageFilter(kind=KIND_CALL), 1, None)
    assert [c.id for c in calls.messages] == [second.id] and calls.next_cursor
    rest = await store.list_messages(MessageFilter(kind=KIND_CALL), 10, calls.next_cursor)
    assert [c.id for c in rest.messages] == [first.id]


async def test_an_idempotency_key_of_a_call_replays_only_that_call(store: SqlStore) -> None:
    first = call()
    stored, _ = await store.queue_outbound(
        first, IdempotencyKey.for_message("cli", "k", first), no_events)
    retry = call()
    again, created = await store.queue_outbound(
        retry, IdempotencyKey.for_message("cli", "k", retry), no_events)
    assert not created and again.id == stored.id and again.is_call


def test_the_fingerprint_of_a_call_covers_what_is_spoken_and_how() -> None:
    base = IdempotencyKey.for_message("s", "k", call()).fingerprint
    assert IdempotencyKey.for_message("s", "k", call()).fingerprint == base
    for changed in (call("other text"), call(voice="man"), call(language="fr-CA"),
                    call(repeat=3)):
        assert IdempotencyKey.for_message("s", "k", changed).fingerprint != base
    # A message with the same text is a different request.
    same_text = outbound("Alarm: garage")
    assert IdempotencyKey.for_message("s", "k", same_text).fingerprint != base


async def test_rows_from_before_0004_are_messages(database_url: str) -> None:
    store = SqlStore(database_url)
    try:
        upgrade(store.engine, "0003")
        with store.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO messages (id, direction, connection, carrier, from_number, "
                "to_number, text, media, status, segments, encoding, attempts, created_at, "
                "updated_at) VALUES ('msg_old', 'outbound', 'main', 'sandbox', '+15555550100', "
                "'+15145550111', 'sent before calls', '[]', 'sent', 1, 'GSM-7', 1, 1, 1)"))
        store.migrate()
        kept = await store.get_message("msg_old")
        assert kept is not None and not kept.is_call and kept.repeat is None
        listed = await store.list_messages(MessageFilter(), 10, None)
        assert [m.id for m in listed.messages] == ["msg_old"]
    finally:
        await store.close()


async def test_downgrading_0004_drops_the_calls_and_keeps_the_messages(database_url: str
                                                                       ) -> None:
    store = await open_started(database_url)
    message, _ = await store.queue_outbound(outbound("kept"), None, no_events)
    await store.queue_outbound(call(), None, no_events)
    await store.close()
    config = alembic_config()
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0003")
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT id FROM messages")).scalars().all()
    store.engine.dispose()
    assert rows == [message.id]

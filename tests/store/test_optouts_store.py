"""The opt-out list in the store, on SQLite and PostgreSQL: one row per pair, scoped by sender."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from smsbridge.core.errors import RecipientOptedOut
from smsbridge.store import SqlStore
from smsbridge.store.base import IdempotencyKey, MessageFilter
from tests.store.test_store import ALICE, HOME, inbound, no_events, open_started, outbound

BOB = "+15145550112"
OTHER_DID = "+15555550101"


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlStore]:
    s = await open_started(database_url)
    yield s
    await s.close()


async def test_a_pair_is_listed_once_and_keeps_its_first_source(store: SqlStore) -> None:
    first, added = await store.add_optout(HOME, ALICE, "keyword")
    again, added_again = await store.add_optout(HOME, ALICE, "carrier")
    assert (added, added_again) == (True, False)
    assert (again.source, again.created_at) == ("keyword", first.created_at)
    assert again.to_dict() == {"from": HOME, "to": ALICE, "source": "keyword",
                               "created_at": first.to_dict()["created_at"]}
    page = await store.list_optouts(None, None, 10, None)
    assert [(e.from_number, e.to_number) for e in page.entries] == [(HOME, ALICE)]


async def test_the_list_is_per_sending_number(store: SqlStore) -> None:
    await store.add_optout(HOME, ALICE, "api")
    assert await store.is_opted_out(HOME, ALICE)
    assert not await store.is_opted_out(OTHER_DID, ALICE)
    assert not await store.is_opted_out(HOME, BOB)
    await store.add_optout(OTHER_DID, BOB, "cli")
    mine = await store.list_optouts(HOME, None, 10, None)
    assert [e.to_number for e in mine.entries] == [ALICE]
    bobs = await store.list_optouts(None, BOB, 10, None)
    assert [e.from_number for e in bobs.entries] == [OTHER_DID]


async def test_remove_takes_the_pair_off_and_says_when_it_was_not_there(
        store: SqlStore) -> None:
    await store.add_optout(HOME, ALICE, "keyword")
    removed = await store.remove_optout(HOME, ALICE)
    assert removed is not None and removed.source == "keyword"
    assert not await store.is_opted_out(HOME, ALICE)
    assert await store.remove_optout(HOME, ALICE) is None
    # Listed again later, it is a new row.
    _, added = await store.add_optout(HOME, ALICE, "keyword")
    assert added


async def test_pages_run_newest_first_until_the_cursor_runs_out(store: SqlStore) -> None:
    recipients = [f"+1514555{n:04d}" for n in range(5)]
    for number in recipients:
        await store.add_optout(HOME, number, "api")
    first = await store.list_optouts(HOME, None, 2, None)
    second = await store.list_optouts(HOME, None, 2, first.next_cursor)
    last = await store.list_optouts(HOME, None, 2, second.next_cursor)
    seen = [e.to_number for page in (first, second, last) for e in page.entries]
    assert seen == list(reversed(recipients))
    assert first.next_cursor and second.next_cursor and last.next_cursor is None
    with pytest.raises(ValueError, match="cursor"):
        await store.list_optouts(HOME, None, 2, "not-a-cursor")


async def test_an_unknown_source_is_refused(store: SqlStore) -> None:
    with pytest.raises(ValueError, match="source"):
        await store.add_optout(HOME, ALICE, "rumour")


async def test_later_short_texts_on_the_same_pair_are_found(store: SqlStore) -> None:
    stop = inbound("c1", "STOP")
    await store.record_inbound([stop], no_events)
    await store.record_inbound([inbound("c2", "other sender", sender=BOB)], no_events)
    await store.record_inbound([inbound("c3", "a long message that is no keyword at all")],
                               no_events)
    await store.record_inbound([inbound("c4", " start ")], no_events)
    assert await store.inbound_texts_after(stop.id, 20) == [" start "]
    assert await store.inbound_texts_after(stop.id, 100) == [
        "a long message that is no keyword at all", " start "]
    assert await store.inbound_texts_after("msg_unknown", 20) == []


async def test_queueing_refuses_a_listed_recipient_without_holding_up_the_others(
        store: SqlStore) -> None:
    """Checked in the insert's transaction: one refusal in a batch, the rest queued."""
    await store.add_optout(HOME, ALICE, "keyword")
    results = await asyncio.gather(
        *(store.queue_outbound(outbound(to=to), None, no_events) for to in (ALICE, BOB, BOB)),
        return_exceptions=True)
    refused, *queued = results
    assert isinstance(refused, RecipientOptedOut)
    assert [r[0].to_number for r in queued] == [BOB, BOB]  # type: ignore[index]
    page = await store.list_messages(MessageFilter(), 10, None)
    assert sorted(m.to_number for m in page.messages) == [BOB, BOB]
    # The STOP confirmation itself goes past the list.
    answer, created = await store.queue_outbound(outbound("You are unsubscribed", to=ALICE),
                                                 None, no_events, honour_optouts=False)
    assert created and answer.to_number == ALICE


async def test_an_idempotency_key_replays_its_message_after_the_recipient_opted_out(
        store: SqlStore) -> None:
    first = outbound(to=ALICE)
    key = IdempotencyKey.for_message("api", "k1", first)
    stored, created = await store.queue_outbound(first, key, no_events)
    assert created
    await store.add_optout(HOME, ALICE, "keyword")
    replay, created_again = await store.queue_outbound(outbound(to=ALICE), key, no_events)
    assert (replay.id, created_again) == (stored.id, False)
    fresh = outbound(to=ALICE)
    with pytest.raises(RecipientOptedOut):
        await store.queue_outbound(fresh, IdempotencyKey.for_message("api", "k2", fresh),
                                   no_events)

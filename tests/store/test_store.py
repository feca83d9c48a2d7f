"""The SQL store on SQLite and on the real PostgreSQL server: what the gateway relies on."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import threading
import time
from collections.abc import AsyncIterator, Sequence

import pytest
from sqlalchemy.exc import IntegrityError

from smsbridge.core.messages import Direction, Message, MessageStatus, StatusUpdate, new_id
from smsbridge.store import DeliveryDraft, MessageFilter, SqlStore
from smsbridge.store.base import EventsFor, IdempotencyKey
from smsbridge.store.statements import EARLY_RECEIPT_TTL
from tests.store.clock import FakeClock

HOME = "+15555550100"
ALICE = "+15145550111"
BOB = "+15145550122"


def outbound(text: str = "Porch motion", *, to: str = ALICE, connection: str = "main") -> Message:
    """A freshly queued outbound message as the gateway builds it."""
    return Message(id=new_id("msg"), direction=Direction.OUTBOUND, connection=connection,
                   carrier="sandbox", from_number=HOME, to_number=to, text=text,
                   status=MessageStatus.QUEUED)


def inbound(carrier_id: str, text: str = "ARM SV", *, sender: str = ALICE,
            connection: str = "main") -> Message:
    """An inbound message as a provider parsed it from a carrier webhook."""
    return Message(id=new_id("msg"), direction=Direction.INBOUND, connection=connection,
                   carrier="sandbox", from_number=sender, to_number=HOME, text=text,
                   status=MessageStatus.RECEIVED, carrier_message_id=carrier_id)


def no_events(_event: str, _msg: Message) -> Sequence[DeliveryDraft]:
    return ()


def app_events(event: str, msg: Message) -> Sequence[DeliveryDraft]:
    """One app-webhook delivery per event, as the gateway's router would create it."""
    return [DeliveryDraft("http://127.0.0.1:9/hook", event, msg.id,
                          f'{{"type":"{event}","id":"{msg.id}","status":"{msg.status}"}}')]


async def open_started(url: str, clock: FakeClock | None = None) -> SqlStore:
    store = SqlStore(url) if clock is None else SqlStore(url, clock=clock)
    store.migrate()
    await store.start()
    return store


@pytest.fixture
def clock() -> FakeClock:
    """The time the ``store`` fixture sees; tests move it on instead of sleeping."""
    return FakeClock()


@pytest.fixture
async def store(database_url: str, clock: FakeClock) -> AsyncIterator[SqlStore]:
    """A migrated, started store on SQLite and on PostgreSQL, on the test's clock."""
    s = await open_started(database_url, clock)
    yield s
    await s.close()


async def hold_writer(store: SqlStore, seconds: float = 0.3) -> asyncio.Task[object]:
    """Keep the writer thread busy so that the writes submitted next share one batch."""
    started = threading.Event()

    def slow(_conn: object) -> None:
        started.set()
        time.sleep(seconds)  # the writes the test submits meanwhile queue up behind this one

    task = asyncio.ensure_future(store._write(slow))
    assert await asyncio.to_thread(started.wait, 10), "the writer never ran the slow write"
    return task


async def sent_message(store: SqlStore, carrier_id: str, *, connection: str = "main") -> Message:
    """An outbound message the carrier accepted under ``carrier_id``."""
    msg, _ = await store.queue_outbound(outbound(connection=connection), None, no_events)
    claimed = await store.claim_outbound("w1", 100, 30)
    assert msg.id in {m.id for m in claimed}
    done = await store.mark_sent(msg.id, carrier_id, MessageStatus.SENT, None, no_events)
    assert done is not None and done.status is MessageStatus.SENT
    return done


# --- outbound idempotency

def keyed(message: Message, key: str, scope: str = "cli") -> IdempotencyKey:
    """The idempotency key of the request that prepared ``message``."""
    return IdempotencyKey.for_message(scope, key, message)


async def queue_keyed(store: SqlStore, message: Message, key: str, scope: str = "cli",
                      events_for: EventsFor = no_events) -> tuple[Message, bool]:
    return await store.queue_outbound(message, keyed(message, key, scope), events_for)


async def test_idempotency_key_returns_the_first_message(store: SqlStore) -> None:
    first, created = await queue_keyed(store, outbound("one"), "key-1", events_for=app_events)
    # A retry of the same request builds a new message (new id) with the same contents.
    again, created_again = await queue_keyed(store, outbound("one"), "key-1",
                                             events_for=app_events)
    assert created is True and created_again is False
    assert again.id == first.id and again.text == "one"
    other, created_other = await queue_keyed(store, outbound("three"), "key-2",
                                             events_for=app_events)
    assert created_other is True and other.id != first.id
    page = await store.list_messages(MessageFilter(), 10, None)
    assert sorted(m.text for m in page.messages) == ["one", "three"]
    # Only the message that was really queued announces itself.
    assert len(await store.list_deliveries(message_id=first.id)) == 1


async def test_concurrent_submissions_with_one_key_store_one_row(store: SqlStore) -> None:
    results = await asyncio.gather(
        *(queue_keyed(store, outbound("try"), "same-key") for _ in range(20)))
    assert sum(created for _, created in results) == 1
    assert len({msg.id for msg, _ in results}) == 1
    page = await store.list_messages(MessageFilter(), 100, None)
    assert len(page.messages) == 1


# --- inbound deduplication

async def test_inbound_is_stored_once_per_connection_and_carrier_id(store: SqlStore) -> None:
    [(first, new)] = await store.record_inbound([inbound("SM1")], app_events)
    [(again, new_again)] = await store.record_inbound([inbound("SM1", "retry")], app_events)
    assert new is True and new_again is False
    assert again.id == first.id and again.text == "ARM SV"

    [(elsewhere, new_elsewhere)] = await store.record_inbound(
        [inbound("SM1", connection="backup")], app_events)
    assert new_elsewhere is True and elsewhere.id != first.id

    page = await store.list_messages(MessageFilter(), 10, None)
    assert len(page.messages) == 2
    assert len(await store.list_deliveries(message_id=first.id)) == 1
    assert len(await store.list_deliveries(message_id=elsewhere.id)) == 1
    assert len(await store.list_deliveries()) == 2


async def test_duplicate_within_one_batch_is_stored_once(store: SqlStore) -> None:
    result = await store.record_inbound(
        [inbound("SM7", "first"), inbound("SM8"), inbound("SM7", "redelivered")], app_events)
    assert [new for _, new in result] == [True, True, False]
    assert result[2][0].id == result[0][0].id
    page = await store.list_messages(MessageFilter(), 10, None)
    assert sorted(m.text for m in page.messages) == ["ARM SV", "first"]
    assert {d.message_id for d in await store.list_deliveries()} == {
        result[0][0].id, result[1][0].id}


async def test_concurrent_duplicates_are_stored_once(store: SqlStore) -> None:
    results = await asyncio.gather(
        *(store.record_inbound([inbound("SM9", f"copy {i}")], app_events) for i in range(20)))
    flat = [pair for result in results for pair in result]
    assert sum(new for _, new in flat) == 1
    assert len({msg.id for msg, _ in flat}) == 1
    assert len((await store.list_messages(MessageFilter(), 100, None)).messages) == 1
    assert len(await store.list_deliveries()) == 1


async def test_text_round_trips_exactly(store: SqlStore) -> None:
    text = "Alarm armed 🔒\nZone 3: 'back door' \"open\"\r\n\tcafé — ✅ 👨‍👩‍👧 end  "
    [(msg, _)] = await store.record_inbound([inbound("SM-utf", text)], no_events)
    stored = await store.get_message(msg.id)
    assert stored is not None
    assert stored.text.encode("utf-8") == text.encode("utf-8")
    listed = (await store.list_messages(MessageFilter(), 1, None)).messages[0]
    assert listed.text == text


# --- outbox claims

async def test_claim_marks_sending_and_counts_the_attempt(store: SqlStore) -> None:
    msg, _ = await store.queue_outbound(outbound(), None, no_events)
    [claimed] = await store.claim_outbound("w1", 10, 30)
    assert claimed.id == msg.id
    assert claimed.status is MessageStatus.SENDING and claimed.attempts == 1
    stored = await store.get_message(msg.id)
    assert stored is not None and stored.status is MessageStatus.SENDING
    assert await store.claim_outbound("w2", 10, 30) == []


async def test_expired_lease_is_claimed_by_another_owner(store: SqlStore,
                                                         clock: FakeClock) -> None:
    msg, _ = await store.queue_outbound(outbound(), None, no_events)
    assert [m.id for m in await store.claim_outbound("w1", 10, 30)] == [msg.id]
    assert await store.claim_outbound("w2", 10, 30) == []
    clock.advance(29)  # the lease still holds
    assert await store.claim_outbound("w2", 10, 30) == []
    clock.advance(2)
    [again] = await store.claim_outbound("w2", 10, 30)
    assert again.id == msg.id and again.attempts == 2


async def test_claim_respects_limit(store: SqlStore) -> None:
    for i in range(5):
        await store.queue_outbound(outbound(f"m{i}"), None, no_events)
    first = await store.claim_outbound("w1", 3, 30)
    rest = await store.claim_outbound("w1", 3, 30)
    assert len(first) == 3 and len(rest) == 2
    assert not {m.id for m in first} & {m.id for m in rest}
    assert await store.claim_outbound("w1", 3, 30) == []


async def test_retry_waits_for_next_attempt_at(store: SqlStore, clock: FakeClock) -> None:
    msg, _ = await store.queue_outbound(outbound(), None, no_events)
    await store.claim_outbound("w1", 10, 30)
    retried = await store.mark_retry(msg.id, clock() + 60, "503", "carrier busy")
    assert retried is not None and retried.status is MessageStatus.QUEUED
    assert retried.error_code == "503" and retried.error_reason == "carrier busy"
    assert await store.claim_outbound("w1", 10, 30) == []
    clock.advance(59)
    assert await store.claim_outbound("w1", 10, 30) == []
    clock.advance(2)
    [again] = await store.claim_outbound("w1", 10, 30)
    assert again.id == msg.id and again.attempts == 2


async def test_two_workers_on_postgres_never_claim_the_same_message(pg_url: str) -> None:
    one, two = await open_started(pg_url), await open_started(pg_url)
    try:
        queued = await asyncio.gather(
            *(one.queue_outbound(outbound(f"m{i}"), None, no_events) for i in range(200)))

        async def drain(store: SqlStore, owner: str) -> list[str]:
            got: list[str] = []
            while batch := await store.claim_outbound(owner, 10, 60):
                got.extend(m.id for m in batch)
            return got

        a, b = await asyncio.gather(drain(one, "w1"), drain(two, "w2"))
        assert not set(a) & set(b)
        assert len(a) + len(b) == 200
        assert set(a) | set(b) == {m.id for m, _ in queued}
        assert a and b  # both workers really competed
    finally:
        await one.close()
        await two.close()


# --- statuses

async def test_status_never_moves_backwards(store: SqlStore) -> None:
    msg = await sent_message(store, "SM-out-1")
    changed = await store.apply_status(
        "main", [StatusUpdate("SM-out-1", MessageStatus.DELIVERED)], app_events)
    assert [m.status for m in changed] == [MessageStatus.DELIVERED]
    late = await store.apply_status(
        "main", [StatusUpdate("SM-out-1", MessageStatus.SENT)], app_events)
    assert late == []
    stored = await store.get_message(msg.id)
    assert stored is not None and stored.status is MessageStatus.DELIVERED
    # mark_sent arriving after the receipt does not undo it either.
    again = await store.mark_sent(msg.id, "SM-out-1", MessageStatus.SENT, None, no_events)
    assert again is not None and again.status is MessageStatus.DELIVERED
    # One status event, for the one real change.
    assert [d.event_type for d in await store.list_deliveries(message_id=msg.id)] == [
        "message.status"]


async def test_late_mark_sent_announces_nothing(store: SqlStore) -> None:
    msg = await sent_message(store, "SM-out-3")
    await store.apply_status("main", [StatusUpdate("SM-out-3", MessageStatus.DELIVERED)],
                             app_events)
    # A worker whose lease ran out reports the same send after the receipt came in.
    await store.mark_sent(msg.id, "SM-out-3", MessageStatus.SENT, None, app_events)
    events = await store.list_deliveries(message_id=msg.id)
    assert len(events) == 1


async def test_mark_sent_with_synchronous_delivery(store: SqlStore) -> None:
    msg, _ = await store.queue_outbound(outbound(), None, no_events)
    await store.claim_outbound("w1", 10, 30)
    done = await store.mark_sent(msg.id, "SM-sync", MessageStatus.DELIVERED, 2, no_events)
    assert done is not None
    assert done.status is MessageStatus.DELIVERED
    assert done.carrier_message_id == "SM-sync" and done.segments == 2
    assert await store.claim_outbound("w2", 10, 30) == []


async def test_failed_keeps_the_reason_and_stays_failed(store: SqlStore) -> None:
    msg, _ = await store.queue_outbound(outbound(), None, no_events)
    await store.claim_outbound("w1", 10, 30)
    failed = await store.mark_failed(msg.id, "21610", "recipient opted out", app_events)
    assert failed is not None and failed.status is MessageStatus.FAILED
    assert (failed.error_code, failed.error_reason) == ("21610", "recipient opted out")
    stored = await store.get_message(msg.id)
    assert stored is not None
    assert (stored.status, stored.error_code, stored.error_reason) == (
        MessageStatus.FAILED, "21610", "recipient opted out")
    assert await store.claim_outbound("w1", 10, 30) == []
    # A second final verdict does not overwrite the first or announce anything.
    again = await store.mark_failed(msg.id, "x", "other", app_events)
    assert again is not None and again.error_code == "21610"
    assert len(await store.list_deliveries(message_id=msg.id)) == 1


async def test_an_overlong_carrier_error_code_still_records_the_failure(store: SqlStore) -> None:
    # PostgreSQL refuses a value wider than its column; the failure must still be recorded.
    msg, _ = await store.queue_outbound(outbound(), None, no_events)
    await store.claim_outbound("w1", 10, 30)
    retried = await store.mark_retry(msg.id, 0.0, "E" * 100, "try later")
    assert retried is not None and retried.error_code == "E" * 64
    await store.claim_outbound("w1", 10, 30)
    failed = await store.mark_failed(msg.id, "F" * 100, "refused", no_events)
    assert failed is not None and failed.status is MessageStatus.FAILED
    assert failed.error_code == "F" * 64 and failed.error_reason == "refused"


async def test_failed_receipt_records_the_carrier_error(store: SqlStore) -> None:
    msg = await sent_message(store, "SM-out-2")
    [changed] = await store.apply_status("main", [StatusUpdate(
        "SM-out-2", MessageStatus.FAILED, "30003", "Unreachable destination handset")], no_events)
    assert changed.id == msg.id
    assert (changed.status, changed.error_code, changed.error_reason) == (
        MessageStatus.FAILED, "30003", "Unreachable destination handset")
    assert await store.apply_status(
        "main", [StatusUpdate("SM-out-2", MessageStatus.DELIVERED)], no_events) == []


async def test_status_updates_only_touch_outbound_messages_of_that_connection(
        store: SqlStore) -> None:
    ours = await sent_message(store, "SM-shared", connection="main")
    theirs = await sent_message(store, "SM-shared", connection="backup")
    [(received, _)] = await store.record_inbound([inbound("SM-in", connection="main")], no_events)

    assert await store.apply_status(
        "main", [StatusUpdate("SM-unknown", MessageStatus.DELIVERED)], app_events) == []
    # An inbound message with that carrier id is not a message we sent.
    assert await store.apply_status(
        "main", [StatusUpdate("SM-in", MessageStatus.FAILED, "1", "x")], app_events) == []
    changed = await store.apply_status(
        "main", [StatusUpdate("SM-shared", MessageStatus.DELIVERED)], app_events)
    assert [m.id for m in changed] == [ours.id]

    after = {m.id: m for m in (await store.list_messages(MessageFilter(), 10, None)).messages}
    assert after[ours.id].status is MessageStatus.DELIVERED
    assert after[theirs.id].status is MessageStatus.SENT
    assert after[received.id].status is MessageStatus.RECEIVED
    assert after[received.id].error_code is None
    assert [d.message_id for d in await store.list_deliveries()] == [ours.id]


# --- listing

async def test_list_messages_filters_newest_first(store: SqlStore) -> None:
    to_alice, _ = await store.queue_outbound(outbound("to alice"), None, no_events)
    to_bob, _ = await store.queue_outbound(outbound("to bob", to=BOB), None, no_events)
    [(from_alice, _)] = await store.record_inbound([inbound("SM1", "from alice")], no_events)
    [(from_bob, _)] = await store.record_inbound([inbound("SM2", "from bob", sender=BOB)],
                                                 no_events)
    await store.claim_outbound("w1", 1, 30)  # the oldest: to_alice
    await store.mark_failed(to_alice.id, None, "rejected", no_events)

    async def ids(flt: MessageFilter) -> list[str]:
        return [m.id for m in (await store.list_messages(flt, 50, None)).messages]

    assert await ids(MessageFilter()) == [from_bob.id, from_alice.id, to_bob.id, to_alice.id]
    assert await ids(MessageFilter(number=ALICE)) == [from_alice.id, to_alice.id]
    assert await ids(MessageFilter(number=BOB, direction=Direction.INBOUND)) == [from_bob.id]
    assert await ids(MessageFilter(direction=Direction.OUTBOUND)) == [to_bob.id, to_alice.id]
    assert await ids(MessageFilter(status=MessageStatus.FAILED)) == [to_alice.id]
    assert await ids(MessageFilter(status=MessageStatus.QUEUED)) == [to_bob.id]
    assert await ids(MessageFilter(number="+15005550006")) == []


async def test_cursor_walks_every_message_once(store: SqlStore) -> None:
    recorded = await store.record_inbound([inbound(f"SM{i}", f"n{i}") for i in range(23)],
                                          no_events)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await store.list_messages(MessageFilter(), 5, cursor)
        seen.extend(m.id for m in page.messages)
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == 5
    assert seen == [msg.id for msg, _ in reversed(recorded)]


async def test_exact_page_has_no_next_cursor(store: SqlStore) -> None:
    await store.record_inbound([inbound(f"SM{i}") for i in range(4)], no_events)
    first = await store.list_messages(MessageFilter(), 2, None)
    second = await store.list_messages(MessageFilter(), 2, first.next_cursor)
    assert len(second.messages) == 2 and second.next_cursor is None


@pytest.mark.parametrize("cursor", ["garbage!", "%%%", "YWJj", "🙂", "MS41"])
async def test_garbage_cursor_raises_value_error(store: SqlStore, cursor: str) -> None:
    with pytest.raises(ValueError):
        await store.list_messages(MessageFilter(), 10, cursor)


async def test_oversized_cursor_raises_value_error_on_sqlite(sqlite_url: str) -> None:
    store = await open_started(sqlite_url)
    try:
        cursor = base64.urlsafe_b64encode(b"9" * 30).decode().rstrip("=")
        with pytest.raises(ValueError):
            await store.list_messages(MessageFilter(), 10, cursor)
    finally:
        await store.close()


# --- app-webhook deliveries

async def test_delivery_lifecycle(store: SqlStore, clock: FakeClock) -> None:
    await store.record_inbound([inbound(f"SM{i}") for i in range(3)], app_events)
    claimed = await store.claim_deliveries("d1", 10, 30)
    assert len(claimed) == 3 and all(d.attempts == 1 for d in claimed)
    assert await store.claim_deliveries("d2", 10, 30) == []
    ok, retry, give_up = claimed

    await store.finish_delivery(ok.id, ok=True, error=None, next_attempt_at=None)
    await store.finish_delivery(retry.id, ok=False, error="HTTP 503",
                                next_attempt_at=clock() + 60)
    await store.finish_delivery(give_up.id, ok=False, error="HTTP 410", next_attempt_at=None)

    by_id = {d.id: d for d in await store.list_deliveries()}
    assert by_id[ok.id].status == "delivered"
    assert by_id[retry.id].status == "pending" and by_id[retry.id].last_error == "HTTP 503"
    assert by_id[give_up.id].status == "failed" and by_id[give_up.id].last_error == "HTTP 410"
    assert by_id[give_up.id].next_attempt_at is None
    assert [d.id for d in await store.list_deliveries(status="failed")] == [give_up.id]

    assert await store.claim_deliveries("d2", 10, 30) == []
    clock.advance(59)
    assert await store.claim_deliveries("d2", 10, 30) == []
    clock.advance(2)
    [again] = await store.claim_deliveries("d2", 10, 30)
    assert again.id == retry.id and again.attempts == 2
    assert again.payload == retry.payload


async def test_expired_delivery_lease_is_claimed_again(store: SqlStore,
                                                        clock: FakeClock) -> None:
    await store.record_inbound([inbound("SM1")], app_events)
    [first] = await store.claim_deliveries("d1", 10, 30)
    assert await store.claim_deliveries("d2", 10, 30) == []
    clock.advance(29)
    assert await store.claim_deliveries("d2", 10, 30) == []
    clock.advance(2)
    [again] = await store.claim_deliveries("d2", 10, 30)
    assert again.id == first.id and again.attempts == 2


# --- API keys

async def test_api_keys(store: SqlStore) -> None:
    ci = await store.create_api_key("ci", "sb_ci", "a" * 64, "acc_test")
    phone = await store.create_api_key("phone", "sb_ph", "b" * 64, "acc_test")
    found = await store.find_api_key("a" * 64)
    assert found is not None and (found.id, found.name, found.prefix) == (ci.id, "ci", "sb_ci")
    assert await store.find_api_key("c" * 64) is None

    assert await store.find_live_api_keys("ci") == [ci]
    assert await store.find_live_api_keys(phone.id) == [phone]
    revoked = await store.revoke_api_key(ci.id)
    assert revoked is not None and revoked.id == ci.id and revoked.revoked_at is not None
    assert await store.find_api_key("a" * 64) is None
    assert await store.find_live_api_keys("ci") == []
    assert await store.revoke_api_key(ci.id) is None
    assert await store.revoke_api_key("ci") is None  # by id only
    assert await store.revoke_api_key(phone.id) is not None
    assert await store.find_api_key("b" * 64) is None

    listed = {k.id: k for k in await store.list_api_keys()}
    assert set(listed) == {ci.id, phone.id}
    assert all(k.revoked_at is not None for k in listed.values())
    assert await store.count_api_keys() == 0


async def test_revoked_key_name_can_be_reused(store: SqlStore) -> None:
    old = await store.create_api_key("ci", "sb_1", "1" * 64, "acc_test")
    await store.revoke_api_key(old.id)
    new = await store.create_api_key("ci", "sb_2", "2" * 64, "acc_test")
    found = await store.find_api_key("2" * 64)
    assert found is not None and found.id == new.id != old.id
    assert await store.count_api_keys() == 1


# --- carrier webhook tokens

async def test_tokens_are_created_once_and_survive_a_restart(database_url: str) -> None:
    counter = itertools.count()

    def make_token() -> str:
        return f"token-{next(counter):016d}"

    first = await open_started(database_url)
    try:
        tokens = await first.ensure_tokens(["main", "backup"], make_token)
        assert tokens == {"main": f"token-{0:016d}", "backup": f"token-{1:016d}"}
        assert await first.ensure_tokens(["main", "backup"], make_token) == tokens
    finally:
        await first.close()

    restarted = await open_started(database_url)
    try:
        again = await restarted.ensure_tokens(["main", "backup", "new"], make_token)
        assert again == {**tokens, "new": f"token-{2:016d}"}
        await restarted.rotate_token("main", "token-rotated-by-hand")
        after = await restarted.ensure_tokens(["main", "backup", "new"], make_token)
        assert after == {**again, "main": "token-rotated-by-hand"}
        assert next(counter) == 3  # no token was made beyond the three new connections
    finally:
        await restarted.close()


# --- group commit

async def test_many_concurrent_writes_all_commit(store: SqlStore) -> None:
    results = await asyncio.gather(
        *(store.record_inbound([inbound(f"SM{i}", f"n{i}")], app_events) for i in range(500)))
    assert all(new for [(_, new)] in results)
    page = await store.list_messages(MessageFilter(), 1000, None)
    assert len(page.messages) == 500
    assert {m.text for m in page.messages} == {f"n{i}" for i in range(500)}
    assert len(await store.list_deliveries(limit=1000)) == 500


async def test_one_failing_write_does_not_fail_its_batch(store: SqlStore) -> None:
    [(taken, _)] = await store.record_inbound([inbound("SM-first")], no_events)
    clash = inbound("SM-clash")
    clash.id = taken.id  # same primary id: this insert must fail
    blocker = await hold_writer(store)
    results = await asyncio.gather(
        store.record_inbound([inbound("SM-a", "a")], app_events),
        store.record_inbound([clash], app_events),
        store.record_inbound([inbound("SM-b", "b")], app_events),
        return_exceptions=True)
    await blocker
    assert isinstance(results[1], IntegrityError)
    assert [new for [(_, new)] in (results[0], results[2])] == [True, True]  # type: ignore[misc]
    texts = sorted(m.text for m in (await store.list_messages(MessageFilter(), 10, None)).messages)
    assert texts == ["ARM SV", "a", "b"]
    assert len(await store.list_deliveries()) == 2


async def _queue_beside_a_failing_write(url: str) -> None:
    store = await open_started(url)
    try:
        [(taken, _)] = await store.record_inbound([inbound("SM-first")], no_events)
        clash = inbound("SM-clash")
        clash.id = taken.id
        blocker = await hold_writer(store)
        queued, failed = await asyncio.gather(
            queue_keyed(store, outbound("Porch motion"), "key-1", events_for=app_events),
            store.record_inbound([clash], app_events),
            return_exceptions=True)
        await blocker
        assert isinstance(failed, IntegrityError)
        assert not isinstance(queued, BaseException)
        msg, created = queued
        assert created is True
        assert [d.event_type for d in await store.list_deliveries(message_id=msg.id)] == [
            "message.queued"]
    finally:
        await store.close()


async def test_queue_beside_a_failing_write_on_postgres(pg_url: str) -> None:
    await _queue_beside_a_failing_write(pg_url)


async def test_queue_beside_a_failing_write_on_sqlite(sqlite_url: str) -> None:
    await _queue_beside_a_failing_write(sqlite_url)


async def test_a_batch_of_every_kind_commits_together(
        store: SqlStore, caplog: pytest.LogCaptureFixture) -> None:
    """Inbound, queued and sent writes that land in one batch run as one transaction."""
    for i in range(10):
        await store.queue_outbound(outbound(f"out {i}"), None, no_events)
    claimed = await store.claim_outbound("w", 10, 30)
    caplog.set_level("DEBUG", logger="smsbridge.store.writer")
    blocker = await hold_writer(store)
    await asyncio.gather(
        *(store.mark_sent(m.id, f"C{i}", MessageStatus.SENT, None, app_events)
          for i, m in enumerate(claimed)),
        *(store.record_inbound([inbound(f"SM{i}", f"in {i}")], app_events) for i in range(10)),
        *(store.queue_outbound(outbound(f"more {i}"), None, app_events) for i in range(10)))
    await blocker
    assert not [r for r in caplog.records if "failed" in r.getMessage()]
    page = await store.list_messages(MessageFilter(), 100, None)
    statuses = sorted((m.direction.value, m.status.value) for m in page.messages)
    assert statuses.count(("outbound", "sent")) == 10
    assert statuses.count(("inbound", "received")) == 10
    assert statuses.count(("outbound", "queued")) == 10
    assert {m.carrier_message_id for m in page.messages if m.status is MessageStatus.SENT} == {
        f"C{i}" for i in range(10)}


async def test_an_unusable_stored_token_is_replaced(store: SqlStore) -> None:
    await store.rotate_token("home", "")  # what an early sandbox client could leave behind
    tokens = await store.ensure_tokens(["home"], lambda: "t" * 43)
    assert tokens == {"home": "t" * 43}
    assert await store.read_tokens() == {"home": "t" * 43}


async def test_a_receipt_that_beats_the_send_record_is_applied_when_it_lands(
        store: SqlStore) -> None:
    await store.queue_outbound(outbound("race"), None, no_events)
    [claimed] = await store.claim_outbound("w", 1, 30)
    # The carrier answered the send and called back before the outbox committed "sent".
    early = await store.apply_status(
        "main", [StatusUpdate("SM-fast", MessageStatus.DELIVERED)], app_events)
    assert early == []
    final = await store.mark_sent(claimed.id, "SM-fast", MessageStatus.SENT, None, app_events)
    assert final is not None and final.status is MessageStatus.DELIVERED
    stored = await store.get_message(claimed.id)
    assert stored is not None and stored.status is MessageStatus.DELIVERED
    events = [json.loads(d.payload)["status"]
              for d in reversed(await store.list_deliveries(message_id=claimed.id))]
    assert events == ["sent", "delivered"]
    # Consumed: a second message with another id is not touched by it.
    await store.queue_outbound(outbound("other"), None, no_events)
    [other] = await store.claim_outbound("w", 1, 30)
    again = await store.mark_sent(other.id, "SM-other", MessageStatus.SENT, None, no_events)
    assert again is not None and again.status is MessageStatus.SENT


async def test_an_early_receipt_nobody_claims_expires(store: SqlStore, clock: FakeClock) -> None:
    # A receipt for a send this gateway never records (another system's) is not kept forever.
    await store.apply_status("main", [StatusUpdate("SM-stray", MessageStatus.DELIVERED)],
                             no_events)
    clock.advance(EARLY_RECEIPT_TTL + 1)
    await store.apply_status("main", [StatusUpdate("SM-later", MessageStatus.DELIVERED)],
                             no_events)
    await store.queue_outbound(outbound("late"), None, no_events)
    [claimed] = await store.claim_outbound("w", 1, 30)
    sent = await store.mark_sent(claimed.id, "SM-stray", MessageStatus.SENT, None, no_events)
    assert sent is not None and sent.status is MessageStatus.SENT
    # The receipt that came in after the clock moved is still kept for its send.
    await store.queue_outbound(outbound("fresh"), None, no_events)
    [fresh] = await store.claim_outbound("w", 1, 30)
    done = await store.mark_sent(fresh.id, "SM-later", MessageStatus.SENT, None, no_events)
    assert done is not None and done.status is MessageStatus.DELIVERED

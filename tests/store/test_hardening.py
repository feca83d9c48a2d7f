"""Store hardening on SQLite and real PostgreSQL: NUL-safe text, scoped idempotency keys,
honest write health, clear errors for unusable databases, unique key names, runtime facts."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from alembic import command
from sqlalchemy import text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from smsbridge.core.errors import IdempotencyKeyReused, InvalidInput, StoreUnavailable
from smsbridge.core.messages import MessageStatus, StatusUpdate
from smsbridge.gateway.accounts import revoke_api_key
from smsbridge.store import MessageFilter, SqlStore
from smsbridge.store.base import (
    IDEMPOTENCY_KEY_TTL_SECONDS,
    ApiKeyRecord,
    DeliveryRecord,
    IdempotencyKey,
)
from smsbridge.store.migrate import alembic_config, upgrade
from smsbridge.store.schema import messages
from smsbridge.testing.server import free_port
from tests.store.test_store import app_events, inbound, no_events, open_started, outbound

# What carriers and users really send: GSM-7 '@' delivered as NUL, Windows paths, and the
# very sequences the PostgreSQL escaping uses, so that a mix-up would show.
AWKWARD_TEXTS = [
    "a\x00b",
    "\x00",
    "@\x00@ at the start\x00 and end\x00",
    "C:\\Users\\alarm\\0.log",
    "\\0 is not NUL",
    "\\\\0 and \\\x00 and \x00\\",
    "trailing backslash \\",
    "plain text",
]


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlStore]:
    """A migrated, started store on SQLite and on PostgreSQL."""
    s = await open_started(database_url)
    yield s
    await s.close()


# --- NUL and backslashes

@pytest.mark.parametrize("body", AWKWARD_TEXTS)
async def test_awkward_text_round_trips_in_every_free_text_column(
        store: SqlStore, body: str) -> None:
    [(received, created)] = await store.record_inbound([inbound("SM-nul", body)], no_events)
    assert created is True
    assert (await store.get_message(received.id)).text == body  # type: ignore[union-attr]
    listed = (await store.list_messages(MessageFilter(), 10, None)).messages
    assert [m.text for m in listed] == [body]

    queued, _ = await store.queue_outbound(outbound(body), None, app_events)
    await store.claim_outbound("w1", 10, 30)
    failed = await store.mark_failed(queued.id, "refused", body, no_events)
    assert failed is not None and failed.text == body and failed.error_reason == body

    [delivery] = await store.claim_deliveries("d1", 1, 30)
    await store.finish_delivery(delivery.id, ok=False, error=body, next_attempt_at=None)
    [finished] = await store.list_deliveries(message_id=queued.id, status="failed")
    assert finished.last_error == body

    # A failed receipt for a send not recorded yet is kept with its reason, then applied.
    await store.apply_status("main", [StatusUpdate("SM-early", MessageStatus.FAILED, "x", body)],
                             no_events)
    early, _ = await store.queue_outbound(outbound("early"), None, no_events)
    await store.claim_outbound("w1", 10, 30)
    sent = await store.mark_sent(early.id, "SM-early", MessageStatus.SENT, None, no_events)
    assert sent is not None and sent.status is MessageStatus.FAILED and sent.error_reason == body


async def test_texts_stored_before_0003_read_back_the_same(database_url: str) -> None:
    store = SqlStore(database_url)
    try:
        upgrade(store.engine, "0002")
        old_text = "C:\\temp\\0 and \\\\ and \\n"
        with store.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO messages (id, direction, connection, carrier, from_number, "
                "to_number, text, media, status, segments, encoding, inbound_key, "
                "idempotency_key, error_reason, attempts, created_at, updated_at) VALUES "
                "('msg_old', 'inbound', 'main', 'sandbox', '+15145550111', '+15555550100', "
                ":t, '[]', 'received', 1, 'GSM-7', 'main:SM-old', 'old-key', :t, 0, 1, 1)"),
                {"t": old_text})
        store.migrate()
        kept = await store.get_message("msg_old")
        assert kept is not None
        assert kept.text == old_text and kept.error_reason == old_text
    finally:
        await store.close()


async def test_0003_downgrades_and_upgrades_again_keeping_texts(database_url: str) -> None:
    store = await open_started(database_url)
    body = "C:\\alarm\\log and \\0"
    message = outbound(body)
    await store.queue_outbound(message, IdempotencyKey.for_message("cli", "k", message),
                               no_events)
    await store.close()
    config = alembic_config()
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0002")
    again = await open_started(database_url)
    try:
        assert [m.text for m in (await again.list_messages(MessageFilter(), 10, None)).messages
                ] == [body]
    finally:
        await again.close()


# --- idempotency keys

async def test_a_key_replays_only_the_same_request_in_its_scope(store: SqlStore) -> None:
    first = outbound("Porch motion")
    stored, created = await store.queue_outbound(
        first, IdempotencyKey.for_message("key_a", "k-1", first), no_events)
    retry = outbound("Porch motion")
    again, created_again = await store.queue_outbound(
        retry, IdempotencyKey.for_message("key_a", "k-1", retry), no_events)
    assert created and not created_again and again.id == stored.id

    other = outbound("Back door open")
    with pytest.raises(IdempotencyKeyReused) as refused:
        await store.queue_outbound(other, IdempotencyKey.for_message("key_a", "k-1", other),
                                   no_events)
    assert isinstance(refused.value, InvalidInput)
    assert refused.value.field == "Idempotency-Key"
    assert "different request" in refused.value.reason and stored.id in refused.value.reason

    elsewhere, created_elsewhere = await store.queue_outbound(
        other, IdempotencyKey.for_message("key_b", "k-1", other), no_events)
    assert created_elsewhere and elsewhere.id != stored.id
    texts = sorted(m.text for m in (await store.list_messages(MessageFilter(), 10, None)).messages)
    assert texts == ["Back door open", "Porch motion"]


async def test_a_key_starts_a_new_message_once_it_expired(store: SqlStore) -> None:
    first = outbound("monday")
    old, _ = await store.queue_outbound(first, IdempotencyKey.for_message("cli", "daily", first),
                                        no_events)
    with store.engine.begin() as conn:
        conn.execute(update(messages).where(messages.c.id == old.id).values(
            created_at=time.time() - IDEMPOTENCY_KEY_TTL_SECONDS - 60))
    later = outbound("tuesday")
    new, created = await store.queue_outbound(
        later, IdempotencyKey.for_message("cli", "daily", later), no_events)
    assert created is True and new.id != old.id
    replay = outbound("tuesday")
    again, created_again = await store.queue_outbound(
        replay, IdempotencyKey.for_message("cli", "daily", replay), no_events)
    assert created_again is False and again.id == new.id
    kept = await store.get_message(old.id)
    assert kept is not None and kept.text == "monday"


def test_the_fingerprint_covers_what_is_sent() -> None:
    base = outbound("hello")
    same = outbound("hello")
    assert base.id != same.id
    fingerprint = IdempotencyKey.for_message("s", "k", base).fingerprint
    assert IdempotencyKey.for_message("s", "k", same).fingerprint == fingerprint
    for changed in (outbound("hello!"), outbound("hello", to="+15145550199"),
                    outbound("hello", connection="other")):
        assert IdempotencyKey.for_message("s", "k", changed).fingerprint != fingerprint


# --- write failures and health

@contextlib.contextmanager
def refusing_message_inserts(store: SqlStore) -> Iterator[None]:
    """A trigger in the database that refuses every new messages row, dropped on exit."""
    with store.engine.begin() as conn:
        if store.is_postgres:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse_messages() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'messages refused by the test'; END $$")
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON messages FOR EACH ROW "
                "EXECUTE FUNCTION refuse_messages()")
        else:
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON messages "
                "BEGIN SELECT RAISE(ABORT, 'messages refused by the test'); END")
    try:
        yield
    finally:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER refuse" + (" ON messages" if store.is_postgres
                                                          else ""))


async def test_a_failing_write_is_remembered_until_a_message_is_stored(store: SqlStore) -> None:
    assert store.write_failure is None
    assert await store.recheck_writes() is None
    with refusing_message_inserts(store):
        before = time.time()
        with pytest.raises(DBAPIError):
            await store.queue_outbound(outbound("refused"), None, no_events)
        failure = store.write_failure
        assert failure is not None and "messages refused by the test" in failure.reason
        assert before <= failure.at <= time.time()
        # Writes that store no message do not prove messages can be stored.
        await store.set_meta("x", "y")
        assert store.write_failure is not None
        # The probe fails as a message write does.
        assert await store.recheck_writes() is not None
        with pytest.raises(DBAPIError):
            await store.record_inbound([inbound("SM-refused")], no_events)
    assert await store.recheck_writes() is None
    assert store.write_failure is None
    # The probe left nothing behind.
    assert (await store.list_messages(MessageFilter(), 10, None)).messages == []
    await store.record_inbound([inbound("SM-ok")], no_events)
    assert store.write_failure is None


async def test_postgres_errors_never_carry_the_row(pg_url: str) -> None:
    store = await open_started(pg_url)
    try:
        with store.engine.begin() as conn:
            conn.exec_driver_sql(
                "ALTER TABLE messages ADD CONSTRAINT refuse_all CHECK (false) NOT VALID")
        secret_text, secret_number = "my bank PIN is 4471", "+15145550177"
        with pytest.raises(IntegrityError) as refused:
            await store.queue_outbound(outbound(secret_text, to=secret_number), None, no_events)
        shown = "".join(traceback.format_exception(refused.value))
        assert "violates check constraint" in shown
        assert secret_text not in shown and secret_number not in shown
        assert store.write_failure is not None
        assert secret_text not in store.write_failure.reason
    finally:
        await store.close()


# --- databases that cannot be used

async def test_a_missing_postgres_database_says_to_create_it(pg_admin: str) -> None:
    name = f"smsbridge_missing_{uuid.uuid4().hex[:8]}"
    url = pg_admin.rsplit("/", 1)[0].replace("postgres@", "postgres:s3cret-pw@") + "/" + name
    info = psycopg.conninfo.conninfo_to_dict(pg_admin)
    place = f"{info.get('host', '127.0.0.1')}:{info.get('port', '5432')}"
    store = SqlStore(url)
    try:
        with pytest.raises(StoreUnavailable) as missing:
            store.migrate()
        assert missing.value.reason == (
            f'database "{name}" does not exist on {place}; create it (createdb {name}) '
            "or fix server.database")
        with pytest.raises(StoreUnavailable):
            await store.start()
        assert "s3cret-pw" not in str(missing.value)
    finally:
        await store.close()


async def test_a_postgres_server_that_is_down_says_so() -> None:
    port = free_port()  # nothing listens there
    store = SqlStore(f"postgresql://postgres:s3cret-pw@127.0.0.1:{port}/smsbridge")
    try:
        with pytest.raises(StoreUnavailable) as down:
            store.migrate()
        assert down.value.reason == (
            f"cannot reach PostgreSQL at 127.0.0.1:{port}: connection refused; is it running?")
        with pytest.raises(StoreUnavailable) as down_at_start:
            await store.start()
        assert down_at_start.value.reason == down.value.reason
    finally:
        await store.close()


@contextlib.contextmanager
def read_only_folder(folder: Path) -> Iterator[str]:
    """``folder`` holding a migrated SQLite database, then made read-only; yields the reason.

    As root, permissions do not stop writes, so the folder is a tmpfs remounted read-only;
    otherwise the folder and the file lose their write permission.
    """
    folder.mkdir()
    mounted = False
    if os.geteuid() == 0:
        mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)],
                               capture_output=True, text=True, check=False)
        if mount.returncode != 0:
            pytest.fail(f"running as root, and cannot mount a tmpfs to make a read-only "
                        f"folder: {mount.stderr.strip()}")
        mounted = True
    db = folder / "smsbridge.db"
    setup = SqlStore(f"sqlite:///{db}")
    setup.migrate()
    setup.engine.dispose()  # an open file would keep the mount from turning read-only
    try:
        if mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
            yield "read-only file system"
        else:
            db.chmod(0o444)
            folder.chmod(0o555)
            yield f"read-only folder {folder}"
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], check=False)
        else:
            folder.chmod(0o755)


async def test_a_read_only_sqlite_database_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    with read_only_folder(folder) as why:
        db = folder / "smsbridge.db"
        store = SqlStore(f"sqlite:///{db}")
        try:
            with pytest.raises(StoreUnavailable) as read_only:
                store.migrate()
            assert read_only.value.reason == (
                f"cannot write the SQLite database at {db}: {why}; fix its permissions or "
                "server.database")
            with pytest.raises(StoreUnavailable):
                await store.start()
        finally:
            await store.close()
        # A database to be created under a read-only folder fails as clearly, at once.
        with pytest.raises(StoreUnavailable) as no_folder:
            SqlStore(f"sqlite:///{folder}/new/smsbridge.db")
        assert no_folder.value.reason.startswith(
            f"cannot create the folder {folder}/new of the SQLite database: ")


# --- API keys

async def test_a_live_key_name_is_taken_until_revoked(store: SqlStore) -> None:
    ha = await store.create_api_key("ha", "sbk_1", "1" * 64, "acc_test")
    with pytest.raises(InvalidInput) as taken:
        await store.create_api_key("ha", "sbk_2", "2" * 64, "acc_test")
    assert taken.value.field == "name" and ha.id in taken.value.reason
    assert await store.count_api_keys() == 1
    assert await revoke_api_key(store, "ha") == await _revoked(store, ha.id)
    again = await store.create_api_key("ha", "sbk_3", "3" * 64, "acc_test")
    assert again.id != ha.id


async def _revoked(store: SqlStore, key_id: str) -> ApiKeyRecord:
    [record] = [k for k in await store.list_api_keys() if k.id == key_id]
    assert record.revoked_at is not None
    return record


async def test_revoke_by_id_or_unique_name(store: SqlStore) -> None:
    ci = await store.create_api_key("ci", "sbk_1", "1" * 64, "acc_test")
    phone = await store.create_api_key("phone", "sbk_2", "2" * 64, "acc_test")
    # A key named like another key's id: the id wins, as documented.
    named_like_id = await store.create_api_key(ci.id, "sbk_3", "3" * 64, "acc_test")

    revoked = await revoke_api_key(store, ci.id)
    assert revoked.id == ci.id and revoked.revoked_at is not None
    assert await store.find_api_key("3" * 64) is not None  # the look-alike is untouched
    assert (await revoke_api_key(store, ci.id)).id == named_like_id.id  # now only a name
    assert (await revoke_api_key(store, "phone")).id == phone.id

    with pytest.raises(InvalidInput) as missing:
        await revoke_api_key(store, "phone")
    assert missing.value.field == "key"
    assert missing.value.reason == "no active key with id or name 'phone'"
    assert await store.count_api_keys() == 0


async def test_duplicate_live_names_from_before_0003_are_renamed(database_url: str) -> None:
    store = SqlStore(database_url)
    try:
        upgrade(store.engine, "0002")
        with store.engine.begin() as conn:
            for n, created in enumerate((1.0, 2.0, 3.0)):
                conn.execute(text(
                    "INSERT INTO api_keys (id, name, prefix, key_hash, created_at) "
                    "VALUES (:id, 'ha', 'sbk_', :hash, :created)"),
                    {"id": f"key_{n}", "hash": str(n) * 64, "created": created})
        store.migrate()
        names = {k.id: k.name for k in await store.list_api_keys()}
        assert names == {"key_0": "ha", "key_1": "ha (key_1)", "key_2": "ha (key_2)"}
        assert (await revoke_api_key(store, "ha")).id == "key_0"
    finally:
        await store.close()


# --- runtime facts

async def test_meta_values_are_kept_and_replaced(database_url: str) -> None:
    store = await open_started(database_url)
    try:
        assert await store.get_meta("serve.address") is None
        await store.set_meta("serve.address", "http://127.0.0.1:8080")
        await store.set_meta("serve.address", "http://127.0.0.1:8081")
        await store.set_meta("other", "x")
    finally:
        await store.close()
    reopened = await open_started(database_url)
    try:
        assert await reopened.get_meta("serve.address") == "http://127.0.0.1:8081"
        assert await reopened.get_meta("other") == "x"
    finally:
        await reopened.close()


# --- JSON forms

def test_delivery_json_has_rfc3339_times_and_a_redacted_url() -> None:
    record = DeliveryRecord(
        id="evt_1", url="https://user:pw@example.com/hook?token=abc", event_type="message.status",
        message_id="msg_1", payload="{}", status="pending", attempts=1,
        next_attempt_at=1795669200.123456, last_error=None, created_at=1.0, updated_at=1.0)
    shown = record.to_dict()
    assert shown["next_attempt_at"] == "2026-11-26T05:00:00.123456+00:00"
    assert datetime.fromisoformat(str(shown["next_attempt_at"])).timestamp() == 1795669200.123456
    assert shown["url"] == "https://example.com/hook?token=***"
    assert replace(record, next_attempt_at=None).to_dict()["next_attempt_at"] is None


def test_api_key_json_has_rfc3339_times() -> None:
    live = ApiKeyRecord("key_1", "ha", "sbk_abcdefgh", 1795669200.0, None, "acc_1")
    assert live.to_dict() == {"id": "key_1", "name": "ha", "prefix": "sbk_abcdefgh",
                              "account_id": "acc_1", "admin": False,
                              "created_at": "2026-11-26T05:00:00+00:00", "revoked_at": None}
    revoked = ApiKeyRecord("key_1", "ha", "sbk_abcdefgh", 1795669200.0, 1795672800.5)
    assert revoked.to_dict()["revoked_at"] == "2026-11-26T06:00:00.500000+00:00"

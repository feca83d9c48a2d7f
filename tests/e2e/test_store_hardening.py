"""Store hardening over real HTTP, on SQLite and PostgreSQL: NUL in text, scoped idempotency
keys, SQL errors without the row in the logs, and health that reflects failing writes."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from smsbridge.gateway.admin import open_gateway
from smsbridge.store import SqlStore
from tests.conftest import make_settings
from tests.harness import GatewayHarness, run_sync
from tests.store.test_hardening import refusing_message_inserts

SANDBOX = {"name": "sandbox", "carrier": "sandbox", "numbers": ["+15555550100"]}
HOME, ALICE = "+15555550100", "+15145550111"


async def health(gw: GatewayHarness, http: aiohttp.ClientSession) -> tuple[int, dict[str, Any]]:
    """GET /healthz: status and body."""
    async with http.get(f"{gw.url}/healthz") as resp:
        return resp.status, await resp.json()


async def test_nul_in_sent_text_is_stored_and_read_back(
        database_url: str, start_gateway, http: aiohttp.ClientSession) -> None:
    gw = start_gateway(make_settings(database_url, [SANDBOX]))
    for text in ("a\u0000b", "GSM @ as NUL: \u0000\u0000", "C:\\alarm\\0 is no NUL"):
        status, sent = await gw.send(http, {"from": HOME, "to": ALICE, "text": text})
        assert status == 202, sent
        assert sent["text"] == text
        assert (await gw.get_message(http, sent["id"]))["text"] == text
    listed = await gw.list_messages(http, direction="outbound")
    assert sorted(m["text"] for m in listed["data"]) == sorted(
        ["a\u0000b", "GSM @ as NUL: \u0000\u0000", "C:\\alarm\\0 is no NUL"])


async def test_nul_in_an_inbound_webhook_is_stored_once(
        database_url: str, start_gateway, http: aiohttp.ClientSession) -> None:
    gw = start_gateway(make_settings(database_url, [SANDBOX]))
    body = {"id": "sbx-in-nul", "from": ALICE, "to": HOME, "text": "\u0000RM SV \\0"}
    for _ in range(2):  # the carrier's retry is acknowledged and not stored twice
        async with http.post(f"{gw.url}{gw.inbound_path('sandbox')}", json=body) as resp:
            assert resp.status == 200, await resp.text()
    inbound = await gw.list_messages(http, direction="inbound")
    assert [m["text"] for m in inbound["data"]] == ["\u0000RM SV \\0"]


async def test_idempotency_keys_are_scoped_and_bound_to_their_request(
        database_url: str, start_gateway, http: aiohttp.ClientSession) -> None:
    settings = make_settings(database_url, [SANDBOX])
    gw = start_gateway(settings)
    porch = {"from": HOME, "to": ALICE, "text": "Porch motion"}
    key = {"Idempotency-Key": "alarm-2026-11-26-0500"}

    async with http.post(f"{gw.url}/v1/messages", json=porch,
                         headers={**gw.auth, **key}) as resp:
        assert resp.status == 202 and "Idempotent-Replayed" not in resp.headers
        first = await resp.json()
    # The same request again (numbers written another way normalise the same): a replay.
    async with http.post(f"{gw.url}/v1/messages", json={**porch, "to": "(514) 555-0111"},
                         headers={**gw.auth, **key}) as resp:
        assert resp.status == 202 and resp.headers["Idempotent-Replayed"] == "true"
        assert (await resp.json())["id"] == first["id"]

    # The same key for another message: refused, and nothing is stored.
    async with http.post(f"{gw.url}/v1/messages", json={**porch, "text": "Back door open"},
                         headers={**gw.auth, **key}) as resp:
        assert resp.status == 422
        assert resp.headers["Content-Type"].startswith("application/problem+json")
        problem = await resp.json(content_type=None)
    assert problem["errors"][0]["field"] == "Idempotency-Key"
    assert "different request" in problem["errors"][0]["reason"]
    assert [m["id"] for m in (await gw.list_messages(http))["data"]] == [first["id"]]

    # Another API key's client that happens to pick the same key gets its own message.
    async def second_key() -> str:
        async with open_gateway(settings) as gateway:
            return (await gateway.create_api_key("second"))[1]

    other_auth = {"Authorization": f"Bearer {run_sync(second_key())}"}
    async with http.post(f"{gw.url}/v1/messages", json={**porch, "text": "Back door open"},
                         headers={**other_auth, **key}) as resp:
        assert resp.status == 202 and "Idempotent-Replayed" not in resp.headers
        theirs = await resp.json()
    assert theirs["id"] != first["id"] and theirs["text"] == "Back door open"
    assert len((await gw.list_messages(http))["data"]) == 2


async def test_sql_errors_are_logged_without_the_row(
        pg_url: str, start_gateway, http: aiohttp.ClientSession,
        caplog: pytest.LogCaptureFixture) -> None:
    gw = start_gateway(make_settings(pg_url, [SANDBOX]))
    admin = SqlStore(pg_url)
    with admin.engine.begin() as conn:
        # Refuses every new messages row; rows already stored are not checked.
        conn.exec_driver_sql(
            "ALTER TABLE messages ADD CONSTRAINT refuse_all CHECK (false) NOT VALID")
    admin.engine.dispose()
    caplog.set_level(logging.DEBUG)
    secret_text, secret_number = "the safe code is 4471-9902", "+15145550177"
    status, _ = await gw.send(http, {"from": HOME, "to": secret_number, "text": secret_text})
    assert 500 <= status < 600
    logged = "\n".join(r.getMessage() + "\n" + (logging.Formatter().formatException(r.exc_info)
                                              if r.exc_info else "")
                       for r in caplog.records)
    assert 'violates check constraint "refuse_all"' in logged  # the error is logged
    assert secret_text not in logged
    assert secret_number not in logged and "5145550177" not in logged


async def test_healthz_is_503_while_writes_fail_and_recovers_by_itself(
        database_url: str, start_gateway, http: aiohttp.ClientSession) -> None:
    gw = start_gateway(make_settings(database_url, [SANDBOX]))
    assert (await health(gw, http))[0] == 200
    admin = SqlStore(database_url)
    try:
        with refusing_message_inserts(admin):
            status, _ = await gw.send(http, {"from": HOME, "to": ALICE, "text": "refused"})
            assert 500 <= status < 600
            status, body = await health(gw, http)
            assert status == 503
            assert body["status"] == "unhealthy"
            assert body["store"].startswith("writes failing: ")
            assert "messages refused by the test" in body["store"]
            # Still failing: the health probe writes where a message would, and fails too.
            assert (await health(gw, http))[0] == 503
        # The cause is gone: health says so without any user traffic first.
        status, body = await health(gw, http)
        assert (status, body["status"], body["store"]) == (200, "ok", "ok")
        assert (await gw.list_messages(http))["data"] == []  # the probe leaves nothing behind
        status, _ = await gw.send(http, {"from": HOME, "to": ALICE, "text": "works again"})
        assert status == 202
    finally:
        admin.engine.dispose()


@contextlib.contextmanager
def small_filesystem(folder: Path) -> Iterator[Path]:
    """A 4 MB tmpfs at ``folder``, unmounted on exit (root only: mounting needs it)."""
    folder.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)],
                           capture_output=True, text=True, check=False)
    if mount.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the full-disk test: {mount.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Write a file into ``folder`` until the file system is full; returns the file."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    return filler


@pytest.mark.skipif(os.geteuid() != 0, reason="a real full disk needs a tmpfs mount (root); "
                    "test_healthz_is_503_while_writes_fail_and_recovers_by_itself covers the "
                    "same with a refusing trigger")
async def test_healthz_is_503_on_a_full_disk_until_space_is_freed(
        tmp_path: Path, start_gateway, http: aiohttp.ClientSession) -> None:
    with small_filesystem(tmp_path / "disk") as disk:
        gw = start_gateway(make_settings(f"sqlite:///{disk}/smsbridge.db", [SANDBOX]))
        assert (await health(gw, http))[0] == 200
        filler = fill(disk)
        statuses = []
        for n in range(200):  # the WAL may still hold a few writes before the disk says no
            status, _ = await gw.send(http, {"from": HOME, "to": ALICE, "text": f"{n} " * 400})
            statuses.append(status)
            if status != 202:
                break
        assert 500 <= statuses[-1] < 600, statuses
        status, body = await health(gw, http)
        assert status == 503 and body["store"].startswith("writes failing: "), body
        assert "full" in body["store"]
        filler.unlink()
        status, body = await health(gw, http)
        assert (status, body["store"]) == (200, "ok")
        status, _ = await gw.send(http, {"from": HOME, "to": ALICE, "text": "room again"})
        assert status == 202
        gw.stop()

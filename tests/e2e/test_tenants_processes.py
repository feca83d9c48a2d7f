"""Tenants across real processes: two `smsbridge serve` on one PostgreSQL database.

A connection added through one process's API works on the other within seconds, without a
restart; rotating or deleting it shuts its old URL there too. The secret key guards the
carrier passwords: a start without it, or with another key, stops with one clear line and
prints no secret, and the database alone holds no password in clear.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from cryptography.fernet import Fernet, InvalidToken

from smsbridge.testing.fake_voipms import FakeVoipms
from smsbridge.testing.server import RunningServer, free_port
from tests.conftest import eventually
from tests.processes import SmsbridgeProcess, write_config

pytestmark = pytest.mark.postgres

DID = "+15145550100"
PEER = "+14385550123"
USERNAME = "pbx-tenant@example.com"
PASSWORD = "hunter2-very-secret"
WHEN = "2024-05-01 12:00:00"
FAST_WORKER = {"poll_interval": 0.1, "backoff_base": 0.05, "backoff_max": 0.5,
               "lease_seconds": 5.0}
# The gateway re-reads connections every 2 s; this leaves room for a slow machine.
PROPAGATION_SECONDS = 15.0
START_SECONDS = 30.0


@dataclass
class Served:
    """One `smsbridge serve` process and the base URL it listens on."""

    proc: SmsbridgeProcess
    url: str


@pytest.fixture
def fake() -> FakeVoipms:
    """The fake VoIP.ms, knowing the tenant's API credentials."""
    return FakeVoipms(username=USERNAME, api_password=PASSWORD)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start `smsbridge serve` processes; every one is stopped after the test."""
    started: list[SmsbridgeProcess] = []

    def start(config: Path, name: str, *, env: dict[str, str] | None = None,
              workdir: Path | None = None, options: tuple[str, ...] = ()) -> Served:
        port = free_port()
        proc = SmsbridgeProcess(["serve", "--config", str(config), "--listen",
                                 f"127.0.0.1:{port}", *options], workdir or tmp_path, name,
                                env=env)
        started.append(proc)
        return Served(proc, f"http://127.0.0.1:{port}")

    yield start
    for proc in started:
        proc.terminate()


def pg_config(tmp_path: Path, pg_url: str) -> Path:
    """A config on the shared PostgreSQL database with no connection of its own."""
    return write_config(tmp_path / "smsbridge.toml", database=pg_url,
                        listen=f"127.0.0.1:{free_port()}", connections=[],
                        worker=FAST_WORKER)


async def wait_ready(http: aiohttp.ClientSession, gw: Served) -> None:
    """Wait until ``gw`` answers /healthz; fail at once with its output if it exited."""

    async def healthy() -> bool:
        if gw.proc.proc.poll() is not None:
            raise AssertionError(f"serve exited {gw.proc.proc.returncode}: "
                                 f"{gw.proc.output()[-2000:]}")
        try:
            async with http.get(f"{gw.url}/healthz") as resp:
                return resp.status == 200
        except aiohttp.ClientError:
            return False

    await eventually(healthy, timeout=START_SECONDS)


def admin_key(gw: Served) -> str:
    """The admin key the first start printed on stdout."""
    gw.proc.wait_for("sbk_", timeout=START_SECONDS, stream="stdout")
    return gw.proc.output("stdout").split()[0]


async def call(http: aiohttp.ClientSession, method: str, url: str, key: str,
               body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """An API request with ``key``; its status and JSON body (None when it has none)."""
    async with http.request(method, url, json=body,
                            headers={"Authorization": f"Bearer {key}"}) as resp:
        text = await resp.text()
        return resp.status, json.loads(text) if text else None


async def tenant_key(http: aiohttp.ClientSession, gw: Served, admin: str, name: str
                     ) -> tuple[str, str]:
    """A new account made with the admin key, and an API key of that account."""
    status, account = await call(http, "POST", f"{gw.url}/v1/accounts", admin, {"name": name})
    assert status == 201, account
    status, made = await call(http, "POST", f"{gw.url}/v1/accounts/{account['id']}/keys",
                              admin, {"name": f"{name}-key"})
    assert status == 201, made
    assert made["account_id"] == account["id"] and not made["admin"]
    return account["id"], made["key"]


def voipms_connection(name: str, fake_url: str) -> dict[str, Any]:
    """The body of POST /v1/connections for a VoIP.ms account on the fake."""
    return {"name": name, "carrier": "voipms", "numbers": [DID],
            "settings": {"base_url": fake_url, "username": USERNAME, "api_password": PASSWORD}}


def callback_template(described: dict[str, Any]) -> str:
    """The full URL-callback template the setup hint tells the user to paste at VoIP.ms."""
    urls = re.findall(r"https?://\S+", described["setup"])
    full = next(u for u in urls if "{MESSAGE}" in u)
    assert full.startswith(described["inbound_url"] + "?")
    return str(full)


async def fire(fake: FakeVoipms, template: str, carrier_id: str, text: str = "hello") -> int:
    """VoIP.ms calling ``template`` for one inbound SMS; the HTTP status it got."""
    status, _ = await fake.fire_url_callback(template, from_="4385550123", to="5145550100",
                                             message=text, id=carrier_id, timestamp=WHEN)
    return status


async def inbound(http: aiohttp.ClientSession, gw: Served, key: str) -> list[dict[str, Any]]:
    """The inbound messages ``key`` sees through ``gw``'s API."""
    status, page = await call(http, "GET", f"{gw.url}/v1/messages?direction=inbound", key)
    assert status == 200, page
    return list(page["data"])


async def start_pair(http: aiohttp.ClientSession, serve: Callable[..., Served],
                     tmp_path: Path, pg_url: str) -> tuple[Served, Served, str]:
    """Two gateways on one database with the same secret key, and the admin key.

    Only B runs the workers, so whatever is sent is sent by B.
    """
    config = pg_config(tmp_path, pg_url)
    env = {"SMSBRIDGE_SECRET_KEY": Fernet.generate_key().decode()}
    a = serve(config, "a", env=env, options=("--no-worker",))
    key = admin_key(a)
    await wait_ready(http, a)
    # Started once A has migrated and made the admin key, so B has nothing to race for.
    b = serve(config, "b", env=env)
    await wait_ready(http, b)
    assert "sbk_" not in b.proc.output("stdout")
    return a, b, key


# ------------------------------------------------------------- connections at run time


async def test_a_connection_added_on_one_process_receives_on_another_without_restart(
        pg_url: str, tmp_path: Path, serve: Callable[..., Served], fake: FakeVoipms,
        fake_server: RunningServer, http: aiohttp.ClientSession) -> None:
    a, b, admin = await start_pair(http, serve, tmp_path, pg_url)
    _, key = await tenant_key(http, a, admin, "tenant-a")
    _, other_key = await tenant_key(http, a, admin, "tenant-b")

    status, created = await call(http, "POST", f"{a.url}/v1/connections", key,
                                 voipms_connection("pbx-a", fake_server.url))
    assert status == 201, created
    assert PASSWORD not in json.dumps(created)
    assert created["inbound_url"].startswith(f"{a.url}/v1/carriers/pbx-a/")
    on_b = callback_template(created).replace(a.url, b.url, 1)
    assert on_b != callback_template(created)

    # B was started before the connection existed and is not restarted: it answers 403
    # (unknown connection) until it has re-read the connections, then ok.
    await eventually(lambda: _accepted(fake, on_b, "9001", "Porch motion"),
                     timeout=PROPAGATION_SECONDS)
    (got,) = await eventually(lambda: inbound(http, b, key), timeout=5)
    assert (got["from"], got["to"], got["text"]) == (PEER, DID, "Porch motion")
    assert got["connection"] == "pbx-a" and got["carrier_message_id"] == "9001"
    status, one = await call(http, "GET", f"{b.url}/v1/messages/{got['id']}", key)
    assert status == 200 and one["text"] == "Porch motion"
    # Another account's key sees nothing of it, on either process.
    assert await inbound(http, b, other_key) == []
    status, _ = await call(http, "GET", f"{b.url}/v1/messages/{got['id']}", other_key)
    assert status == 404

    # B decrypted the password with the shared key: a reply sent through B reaches VoIP.ms.
    status, queued = await call(http, "POST", f"{b.url}/v1/messages", key,
                                {"from": DID, "to": PEER, "text": "Seen, thanks"})
    assert status == 202, queued
    sent = await eventually(lambda: _final(http, b, key, queued["id"]),
                            timeout=PROPAGATION_SECONDS)
    assert sent["status"] == "sent", sent.get("error")
    assert [(m.did, m.dst, m.message) for m in fake.sent] == [
        ("5145550100", "4385550123", "Seen, thanks")]
    for proc in (a.proc, b.proc):
        assert PASSWORD not in proc.output() + proc.output("stdout")


async def test_rotated_then_deleted_connection_url_is_refused_on_the_other_process(
        pg_url: str, tmp_path: Path, serve: Callable[..., Served], fake: FakeVoipms,
        fake_server: RunningServer, http: aiohttp.ClientSession) -> None:
    a, b, admin = await start_pair(http, serve, tmp_path, pg_url)
    _, key = await tenant_key(http, a, admin, "tenant-a")
    status, created = await call(http, "POST", f"{a.url}/v1/connections", key,
                                 voipms_connection("pbx-a", fake_server.url))
    assert status == 201, created
    old_on_a = callback_template(created)
    old_on_b = old_on_a.replace(a.url, b.url, 1)
    await eventually(lambda: _accepted(fake, old_on_b, "9101"), timeout=PROPAGATION_SECONDS)

    status, rotated = await call(http, "POST", f"{a.url}/v1/connections/pbx-a/rotate-token",
                                 key)
    assert status == 200, rotated
    assert rotated["inbound_url"] != created["inbound_url"]
    new_on_a = callback_template(rotated)
    new_on_b = new_on_a.replace(a.url, b.url, 1)
    assert await fire(fake, old_on_a, "9102") == 403  # on A at once
    # Same carrier id while B may still take the old URL: a late acceptance stores nothing new.
    await eventually(lambda: _refused(fake, old_on_b, "9101"), timeout=PROPAGATION_SECONDS)
    assert await fire(fake, old_on_b, "9103", "forged") == 403
    await eventually(lambda: _accepted(fake, new_on_b, "9104", "after rotation"),
                     timeout=PROPAGATION_SECONDS)
    texts = {m["carrier_message_id"]: m["text"] for m in await inbound(http, b, key)}
    assert texts == {"9101": "hello", "9104": "after rotation"}

    status, _ = await call(http, "DELETE", f"{a.url}/v1/connections/pbx-a", key)
    assert status == 204
    assert await fire(fake, new_on_a, "9105") == 403  # on A at once
    await eventually(lambda: _refused(fake, new_on_b, "9104"), timeout=PROPAGATION_SECONDS)
    assert await fire(fake, new_on_b, "9106", "after delete") == 403
    status, _ = await call(http, "GET", f"{b.url}/v1/connections/pbx-a", key)
    assert status == 404
    ids = {m["carrier_message_id"] for m in await inbound(http, b, key)}
    assert ids == {"9101", "9104"}


async def _accepted(fake: FakeVoipms, template: str, carrier_id: str, text: str = "hello"
                    ) -> bool:
    return await fire(fake, template, carrier_id, text) == 200


async def _refused(fake: FakeVoipms, template: str, carrier_id: str) -> bool:
    status = await fire(fake, template, carrier_id)
    assert status in (200, 403), status  # accepted until B catches up, then forbidden
    return status == 403


async def _final(http: aiohttp.ClientSession, gw: Served, key: str, message_id: str
                 ) -> dict[str, Any] | None:
    status, message = await call(http, "GET", f"{gw.url}/v1/messages/{message_id}", key)
    assert status == 200, message
    return message if message["status"] in ("sent", "failed") else None


# ------------------------------------------------------------------------ secret key


async def _store_with_a_secret(http: aiohttp.ClientSession, serve: Callable[..., Served],
                               tmp_path: Path, pg_url: str, key: str, fake_url: str
                               ) -> tuple[Path, str]:
    """Start with ``key``, add a connection holding PASSWORD, stop; the config and admin key."""
    config = pg_config(tmp_path, pg_url)
    gw = serve(config, "first", env={"SMSBRIDGE_SECRET_KEY": key})
    admin = admin_key(gw)
    await wait_ready(http, gw)
    status, created = await call(http, "POST", f"{gw.url}/v1/connections", admin,
                                 voipms_connection("pbx-a", fake_url))
    assert status == 201, created
    gw.proc.terminate()
    assert PASSWORD not in gw.proc.output() + gw.proc.output("stdout")
    return config, admin


def _refused_start(gw: Served, *secrets: str) -> str:
    """The one line a start that must fail printed; it exits non-zero and shows no secret."""
    try:
        code = gw.proc.proc.wait(START_SECONDS)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"serve did not stop: {gw.proc.output()[-2000:]}") from None
    stderr, stdout = gw.proc.output(), gw.proc.output("stdout")
    assert code != 0, stderr
    assert "Traceback" not in stderr + stdout, stderr
    for secret in secrets:
        assert secret not in stderr + stdout, "a secret was printed"
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "SMSBRIDGE_SECRET_KEY" in lines[0], stderr
    return lines[0]


async def test_missing_or_wrong_secret_key_stops_the_start_with_one_clear_line(
        pg_url: str, tmp_path: Path, serve: Callable[..., Served], fake_server: RunningServer,
        http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch) -> None:
    k1 = Fernet.generate_key().decode()
    config, admin = await _store_with_a_secret(http, serve, tmp_path, pg_url, k1,
                                               fake_server.url)

    # (a) No key at all: no variable, and a data folder without a key file.
    monkeypatch.delenv("SMSBRIDGE_SECRET_KEY", raising=False)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    line = _refused_start(serve(config, "nokey", workdir=fresh), PASSWORD, k1)
    assert str(fresh / "data" / "secret.key") in line
    assert not (fresh / "data" / "secret.key").exists()  # no new key made for this store

    # (b) A valid key, but not the store's.
    k2 = Fernet.generate_key().decode()
    line = _refused_start(serve(config, "wrongkey", env={"SMSBRIDGE_SECRET_KEY": k2}),
                          PASSWORD, k1, k2)
    assert "not the key" in line

    # (c) The right key again: it serves, the connection is back, its secret still hidden.
    gw = serve(config, "again", env={"SMSBRIDGE_SECRET_KEY": k1})
    await wait_ready(http, gw)
    status, shown = await call(http, "GET", f"{gw.url}/v1/connections/pbx-a", admin)
    assert status == 200, shown
    assert shown["settings"]["username"] == USERNAME
    assert shown["settings"]["api_password"] == "(set)"
    assert PASSWORD not in json.dumps(shown)
    printed = gw.proc.output() + gw.proc.output("stdout")
    assert "sbk_" not in printed and "Traceback" not in printed and PASSWORD not in printed


async def test_the_database_alone_gives_no_password_away(
        pg_url: str, tmp_path: Path, serve: Callable[..., Served], fake_server: RunningServer,
        http: aiohttp.ClientSession) -> None:
    k1 = Fernet.generate_key().decode()
    await _store_with_a_secret(http, serve, tmp_path, pg_url, k1, fake_server.url)

    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT settings FROM connections WHERE name = 'pbx-a'").fetchone()
        tables = [name for (name,) in conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'")]
        # Every row of every table, as a copy of the database would hold it.
        dump = "\n".join(text for table in tables for (text,) in conn.execute(
            f'SELECT row_to_json(t)::text FROM "{table}" t'))
    assert row is not None
    settings = row[0]
    assert "connections" in tables and settings in dump
    assert PASSWORD not in dump
    assert k1 not in dump  # the key is not kept with the data it protects
    # Sealed, not lost: the store's key opens the settings, another key does not.
    assert json.loads(Fernet(k1.encode()).decrypt(settings.encode()))["api_password"] == PASSWORD
    with pytest.raises(InvalidToken):
        Fernet(Fernet.generate_key()).decrypt(settings.encode())

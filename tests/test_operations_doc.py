"""docs/operations.md and docs/deploy/ hold what a user runs: the systemd unit and the backups.

The commands are taken from the documents themselves, so a document and its test cannot drift.
"""

from __future__ import annotations

import asyncio
import grp
import os
import pwd
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import aiohttp
import psycopg
import pytest

from smsbridge.testing.server import free_port
from tests.conftest import eventually, make_settings
from tests.processes import SmsbridgeProcess, write_config

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "operations.md"
UNIT = ROOT / "docs" / "deploy" / "smsbridge.service"
SANDBOX = {"name": "sandbox", "carrier": "sandbox", "numbers": ["+15555550100"]}

# The places the documents name, replaced by temporary ones in the tests.
DOC_VENV_BIN = "/opt/smsbridge/.venv/bin"
DOC_CONFIG = "/etc/smsbridge/smsbridge.toml"
DOC_ENV_FILE = "/etc/smsbridge/smsbridge.env"
DOC_DATA = "/var/lib/smsbridge"
DOC_BACKUPS = "/var/backups/smsbridge"


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: `apt-get install -y {package}` "
                    "(scripts/services installs it on Debian)")
    return path


def _documented_blocks() -> dict[str, str]:
    """The shell blocks of docs/operations.md that a comment marks as run by this file."""
    text = DOC.read_text(encoding="utf-8")
    marked = dict(re.findall(r"<!-- tests/test_operations_doc\.py runs this block[^>]*: "
                             r"([a-z-]+) -->\s*```sh\n(.*?)```", text, flags=re.DOTALL))
    expected = {"sqlite-backup", "sqlite-vacuum", "sqlite-restore", "postgresql-backup",
                "postgresql-restore"}
    assert set(marked) == expected, f"docs/operations.md marks {sorted(marked)}"
    return marked


def _run_block(block: str, replacements: dict[str, str]) -> str:
    """Run a documented shell block with bash, its paths swapped for the test's."""
    for doc_path, test_path in replacements.items():
        block = block.replace(doc_path, test_path)
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", block], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, f"{block}\n-> {result.stderr}"
    return result.stdout


# ------------------------------------------------------------------ systemd unit
def _unit_for_this_machine(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A copy of the unit whose paths exist here; returns the unit, its config and its data."""
    data = tmp_path / "data"
    data.mkdir()
    env_file = tmp_path / "smsbridge.env"
    env_file.write_text("APP_WEBHOOK_SECRET=whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD\n")
    config = write_config(tmp_path / "smsbridge.toml", database=f"sqlite:///{data}/smsbridge.db",
                          listen=f"127.0.0.1:{free_port()}", connections=[SANDBOX])
    unit = UNIT.read_text(encoding="utf-8")
    for doc_path, here in ((DOC_VENV_BIN, str(Path(sys.executable).parent)),
                           (DOC_CONFIG, str(config)), (DOC_ENV_FILE, str(env_file)),
                           (DOC_DATA, str(data))):
        assert doc_path in unit, f"{UNIT.name} no longer names {doc_path}"
        unit = unit.replace(doc_path, here)
    copy = tmp_path / "smsbridge.service"
    copy.write_text(unit, encoding="utf-8")
    return copy, config, data


def test_the_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = _tool("systemd-analyze", "systemd")
    unit, _, _ = _unit_for_this_machine(tmp_path)
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    # verify exits 0 even on an unknown key or a bad value: it only warns. Any output fails.
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
    # And it is hardened: systemd's own rating, 0 (locked down) to 10 (exposed), at most 2.
    rated = subprocess.run([analyze, "security", "--offline=yes", "--threshold=20", str(unit)],
                           capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert rated.returncode == 0, rated.stdout[-2000:] + rated.stderr


def test_the_doc_shows_the_unit_as_it_is() -> None:
    unit_lines = {line.strip() for line in UNIT.read_text(encoding="utf-8").splitlines()}
    shown = re.search(r"```ini\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert shown is not None
    for line in shown.group(1).splitlines():
        if line.strip() and not line.startswith("#"):
            assert line.strip() in unit_lines, f"docs/operations.md shows {line!r}"


async def test_the_units_command_serves_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    unit, config, data = _unit_for_this_machine(tmp_path)
    settings = dict(line.split("=", 1) for line in unit.read_text().splitlines()
                    if "=" in line and not line.startswith("#"))
    env = dict(os.environ)
    for line in Path(settings["EnvironmentFile"]).read_text().splitlines():
        env.update([line.split("=", 1)])
    listen = re.search(r'listen = "([^"]+)"', config.read_text())
    assert listen is not None
    proc = subprocess.Popen(shlex.split(settings["ExecStart"]), env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        async with aiohttp.ClientSession() as http:
            async def healthy() -> bool:
                assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
                try:
                    async with http.get(f"http://{listen.group(1)}/healthz") as resp:
                        return resp.status == 200
                except aiohttp.ClientConnectionError:
                    return False

            await eventually(healthy, timeout=30)
        assert (data / "smsbridge.db").exists()  # the database is in the writable folder
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        stderr = proc.communicate()[1].decode()
        # uvicorn shuts down, then re-raises the signal: systemd counts an exit by SIGTERM
        # as clean, so Restart=on-failure does not fire.
        assert code in (0, -signal.SIGTERM), stderr[-2000:]
        assert "Traceback" not in stderr and "ERROR" not in stderr, stderr[-2000:]
        # The store was closed, not cut off: the last connection folds the log back and
        # removes it.
        assert not (data / "smsbridge.db-wal").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


# ------------------------------------------------------------------ SQLite backups
async def _all_messages(http: aiohttp.ClientSession, base: str, auth: dict[str, str]
                        ) -> set[tuple[str, str, str]]:
    """Every message GET /v1/messages lists, page by page: (id, direction, text)."""
    seen: set[tuple[str, str, str]] = set()
    params: dict[str, str | int] = {"limit": 500}
    while True:
        async with http.get(f"{base}/v1/messages", params=params, headers=auth) as resp:
            assert resp.status == 200, await resp.text()
            page = await resp.json()
        seen |= {(m["id"], m["direction"], m["text"]) for m in page["data"]}
        if not page.get("next_cursor"):
            return seen
        params["cursor"] = page["next_cursor"]


async def _serve(tmp_path: Path, database: str, name: str, http: aiohttp.ClientSession
                 ) -> tuple[SmsbridgeProcess, str]:
    """`smsbridge serve` on a restored database, as a user starts it; returns it and its URL."""
    port = free_port()
    config = write_config(tmp_path / f"{name}.toml", database=database,
                          listen=f"127.0.0.1:{port}", connections=[SANDBOX])
    # Restored on the same machine: the secret key file in the data folder is still there
    # (the live gateway above ran in this process, with this data folder).
    proc = SmsbridgeProcess(["serve", "--config", str(config)], tmp_path, name,
                            env={"SMSBRIDGE_DATA_DIR": os.environ["SMSBRIDGE_DATA_DIR"]})
    base = f"http://127.0.0.1:{port}"

    async def healthy() -> bool:
        assert proc.proc.poll() is None, proc.output()[-2000:]
        try:
            async with http.get(f"{base}/healthz") as resp:
                return resp.status == 200
        except aiohttp.ClientConnectionError:
            return False

    await eventually(healthy, timeout=30)
    return proc, base


def _restore(block: str, backup: Path, into: Path) -> Path:
    """Run the documented restore (without systemctl) into a fresh data folder."""
    into.mkdir()
    me, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    lines = [line for line in block.splitlines() if not line.startswith("systemctl ")]
    lines = [f"backup={shlex.quote(str(backup))}" if line.startswith("backup=") else line
             for line in lines]
    _run_block("\n".join(lines), {"-o smsbridge -g smsbridge": f"-o {me} -g {group}",
                                  DOC_DATA: str(into)})
    return into / "smsbridge.db"


async def test_the_documented_backup_and_restore_keep_every_message(
        tmp_path: Path, start_gateway, http: aiohttp.ClientSession) -> None:
    _tool("sqlite3", "sqlite3")
    blocks = _documented_blocks()
    backup_block, vacuum_block, restore_block = (
        blocks["sqlite-backup"], blocks["sqlite-vacuum"], blocks["sqlite-restore"])
    live = tmp_path / "live"
    live.mkdir()
    db = live / "smsbridge.db"
    gw = start_gateway(make_settings(f"sqlite:///{db}", [SANDBOX]))

    answered: list[str] = []
    attempted: list[str] = []
    stop = asyncio.Event()

    async def traffic() -> None:
        # Inbound texts arrive while the backup runs, as they would on a live server.
        i = 0
        while not stop.is_set():
            text = f"motion {i}"
            attempted.append(text)
            async with http.post(f"{gw.url}{gw.inbound_path('sandbox')}", json={
                    "id": f"carrier-{i}", "from": "+15145550111", "to": "+15555550100",
                    "text": text}) as resp:
                assert resp.status == 200, await resp.text()
            answered.append(text)
            i += 1

    writer = asyncio.create_task(traffic())
    for n in range(3):
        status, _ = await gw.send(http, {"from": "+15555550100", "to": "+15145550111",
                                         "text": f"alert {n}"})
        assert status == 202
    await eventually(lambda: len(answered) >= 100)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert (live / "smsbridge.db-wal").exists()  # recent commits are in the log, not the file

    # 1. The .backup command, while messages keep arriving.
    before_backup = set(answered)
    first = tmp_path / "backups-1"
    first.mkdir()
    out = await asyncio.to_thread(_run_block, backup_block,
                                  {DOC_DATA: str(live), DOC_BACKUPS: str(first)})
    assert out.split() == ["ok"]  # PRAGMA integrity_check, as the doc says
    await eventually(lambda: len(answered) >= len(before_backup) + 50)
    stop.set()
    await writer

    (copy,) = first.glob("smsbridge-*.db")
    restored_db = _restore(restore_block, copy, tmp_path / "r1")
    restored, base = await _serve(tmp_path, f"sqlite:///{restored_db}", "r1", http)
    try:
        # The API keys come back with the database: the live gateway's key works.
        texts = {text for _, direction, text in await _all_messages(http, base, gw.auth)
                 if direction == "inbound"}
        assert before_backup <= texts <= set(attempted)
        # So do the webhook tokens: the URL given to the carrier keeps working.
        async with http.post(f"{base}{gw.inbound_path('sandbox')}", json={
                "id": "after-restore", "from": "+15145550111", "to": "+15555550100",
                "text": "after restore"}) as resp:
            assert resp.status == 200, await resp.text()
    finally:
        restored.terminate()

    # 2. VACUUM INTO, once the traffic has stopped: the copy lists exactly what the live one does.
    second = tmp_path / "backups-2"
    second.mkdir()
    out = await asyncio.to_thread(_run_block, vacuum_block,
                                  {DOC_DATA: str(live), DOC_BACKUPS: str(second)})
    assert out.split() == ["ok"]
    (copy,) = second.glob("smsbridge-*.db")
    live_messages = await _all_messages(http, gw.url, gw.auth)
    assert len(live_messages) == len(answered) + 3
    restored_db = _restore(restore_block, copy, tmp_path / "r2")
    restored, base = await _serve(tmp_path, f"sqlite:///{restored_db}", "r2", http)
    try:
        assert await _all_messages(http, base, gw.auth) == live_messages
    finally:
        restored.terminate()


# ------------------------------------------------------------------ PostgreSQL backups
async def test_the_documented_pg_dump_and_restore_keep_every_message(
        tmp_path: Path, pg_admin: str, pg_url: str, start_gateway,
        http: aiohttp.ClientSession) -> None:
    _tool("pg_dump", "postgresql-client")
    blocks = _documented_blocks()
    gw = start_gateway(make_settings(pg_url, [SANDBOX]))
    for i in range(40):
        async with http.post(f"{gw.url}{gw.inbound_path('sandbox')}", json={
                "id": f"carrier-{i}", "from": "+15145550111", "to": "+15555550100",
                "text": f"door {i}"}) as resp:
            assert resp.status == 200, await resp.text()
    status, _ = await gw.send(http, {"from": "+15555550100", "to": "+15145550111",
                                     "text": "alert"})
    assert status == 202
    live_messages = await _all_messages(http, gw.url, gw.auth)
    assert len(live_messages) == 41

    backups = tmp_path / "backups"
    backups.mkdir()
    server, live_name = pg_url.rsplit("/", 1)
    restored_name = f"{live_name}_restored"
    restored_url = f"{server}/{restored_name}"
    # The dump is taken while the gateway runs.
    await asyncio.to_thread(_run_block, blocks["postgresql-backup"], {
        "postgresql://smsbridge@db.example.com/smsbridge": pg_url, DOC_BACKUPS: str(backups)})
    (dump,) = backups.glob("smsbridge-*.dump")
    admin = psycopg_admin_options(pg_admin)
    try:
        restore = re.sub(r"^backup=.*$", f"backup={shlex.quote(str(dump))}",
                         blocks["postgresql-restore"], flags=re.MULTILINE)
        _run_block(restore, {
            "createdb --owner=smsbridge 'smsbridge_restored'":
                f"createdb {admin} '{restored_name}'",
            "postgresql://smsbridge@db.example.com/smsbridge_restored": restored_url})
        proc, base = await _serve(tmp_path, restored_url, "restored", http)
        try:
            # The live key, the token and every message came back.
            assert await _all_messages(http, base, gw.auth) == live_messages
            async with http.post(f"{base}{gw.inbound_path('sandbox')}", json={
                    "id": "after-restore", "from": "+15145550111", "to": "+15555550100",
                    "text": "after restore"}) as resp:
                assert resp.status == 200, await resp.text()
        finally:
            proc.terminate()
    finally:
        with psycopg.connect(pg_admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{restored_name}" WITH (FORCE)')


def psycopg_admin_options(pg_admin: str) -> str:
    """createdb's connection options for the admin URL (host, port, user)."""
    info = psycopg.conninfo.conninfo_to_dict(pg_admin)
    return (f"--host={info.get('host', '127.0.0.1')} --port={info.get('port', 5432)} "
            f"--username={info.get('user', 'postgres')}")


def _anchors(markdown: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file."""
    headings = re.findall(r"^#+ (.+)$", markdown.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", ["README.md", "docs/operations.md"])
def test_relative_links_point_at_files_and_headings_that_exist(page: str) -> None:
    source = ROOT / page
    links = re.findall(r"\]\(([^)\s]+)\)", source.read_text(encoding="utf-8"))
    for link in links:
        if re.match(r"[a-z]+:", link):
            continue  # https://, mailto: ...
        path, _, anchor = link.partition("#")
        target = (source.parent / path).resolve() if path else source
        assert target.exists(), f"{page} links to {link}, which does not exist"
        if anchor:
            assert anchor in _anchors(target), f"{page} links to {link}: no such heading"

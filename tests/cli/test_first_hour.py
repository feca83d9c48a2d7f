"""The first hour of a new user, command by command: real processes, real databases, no mocks."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

import aiohttp
import pytest

from smsbridge.gateway.admin import shipped_revisions
from smsbridge.testing.server import free_port
from tests.cli.test_cli import SANDBOX, smsbridge
from tests.conftest import eventually
from tests.processes import SmsbridgeProcess, write_config

MISSING = "${SMSBRIDGE_TEST_UNSET_PASSWORD}"
VOIPMS = {"name": "home", "carrier": "voipms", "numbers": ["+15145550100"],
          "settings": {"username": "me@example.com", "api_password": MISSING}}
TWILIO = {"name": "office", "carrier": "twilio", "numbers": ["+16175550100"],
          "settings": {"account_sid": "${SMSBRIDGE_TEST_UNSET_SID}", "auth_token": MISSING}}


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a command that failed with exit 2 (never a traceback)."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def is_rfc3339(value: object) -> bool:
    """An RFC 3339 timestamp with its offset, as datetime.fromisoformat reads one."""
    return isinstance(value, str) and "T" in value and \
        datetime.fromisoformat(value).utcoffset() is not None


# ---------------------------------------------------------------- unusable databases
@pytest.mark.postgres
@pytest.mark.parametrize("command", [["migrate"], ["messages"], ["serve"], ["keys", "list"],
                                     ["carriers"], ["worker"]])
def test_a_postgresql_database_that_does_not_exist_is_one_line(tmp_path: Path,
                                                              command: list[str]) -> None:
    config = write_config(tmp_path / "c.toml", listen=f"127.0.0.1:{free_port()}",
                          database="postgresql://postgres@127.0.0.1:5432/smsbridge_never_made",
                          connections=[SANDBOX])
    line = one_line_error(smsbridge(*command, "-c", str(config), cwd=tmp_path))
    assert 'database "smsbridge_never_made" does not exist' in line
    assert "createdb smsbridge_never_made" in line


@pytest.mark.parametrize("command", [["migrate"], ["messages"], ["serve"], ["keys", "list"],
                                     ["sandbox", "receive", "--to", "+15555550100", "--from",
                                      "+15145550111", "-t", "hi"]])
def test_a_postgresql_server_that_is_down_is_one_line(tmp_path: Path,
                                                     command: list[str]) -> None:
    closed = free_port()  # nothing listens there
    config = write_config(tmp_path / "c.toml", listen=f"127.0.0.1:{free_port()}",
                          database=f"postgresql://postgres:pw@127.0.0.1:{closed}/sms",
                          connections=[SANDBOX])
    line = one_line_error(smsbridge(*command, "-c", str(config), cwd=tmp_path))
    assert f"cannot reach PostgreSQL at 127.0.0.1:{closed}" in line and "pw" not in line


def test_a_read_only_sqlite_database_at_start_is_one_clear_error(tmp_path: Path) -> None:
    assert smsbridge("migrate", cwd=tmp_path).returncode == 0
    database = tmp_path / "data" / "smsbridge.db"
    # SQLite's own read-only mode: the file is there and readable, and no write succeeds.
    config = write_config(tmp_path / "ro.toml", listen=f"127.0.0.1:{free_port()}",
                          database=f"sqlite:///file:{database}?mode=ro&uri=true",
                          connections=[SANDBOX])
    result = smsbridge("serve", "-c", str(config), cwd=tmp_path)
    last = one_line_error(result)
    assert last.startswith(f"error: cannot write the SQLite database at {database}:")
    assert "readonly" in last
    assert not (tmp_path / "file:").exists()  # the URI form is not read as a folder name
    assert "sbk_" not in result.stdout
    # Reading still works: the messages of a read-only copy can be listed.
    listed = smsbridge("messages", "--json", "-c", str(config), cwd=tmp_path)
    assert listed.returncode == 0 and json.loads(listed.stdout)["data"] == []


def test_read_only_commands_never_create_or_migrate_the_database(tmp_path: Path) -> None:
    for command in (["messages"], ["keys", "list"], ["carriers"], ["keys", "revoke", "x"]):
        line = one_line_error(smsbridge(*command, cwd=tmp_path))
        assert line == (f"error: no smsbridge database at {tmp_path / 'data' / 'smsbridge.db'}"
                        "; start `smsbridge serve` or run `smsbridge migrate`")
    assert not (tmp_path / "data" / "smsbridge.db").exists()


def test_a_database_behind_this_version_says_to_migrate(tmp_path: Path) -> None:
    from smsbridge.store.engine import create_db_engine
    from smsbridge.store.migrate import upgrade

    # A database made by the first release: only the first migration applied.
    oldest, newest = shipped_revisions()[0], shipped_revisions()[-1]
    engine = create_db_engine(f"sqlite:///{tmp_path / 'data' / 'smsbridge.db'}")
    upgrade(engine, oldest)
    engine.dispose()
    line = one_line_error(smsbridge("messages", cwd=tmp_path))
    assert f"is at revision {oldest}; this smsbridge needs {newest}: run `smsbridge migrate`" \
        in line
    migrated = smsbridge("migrate", cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert f"at revision {newest} (was {oldest})" in migrated.stdout
    assert smsbridge("messages", cwd=tmp_path).returncode == 0


def test_shipped_revisions_agree_with_alembic() -> None:
    from smsbridge.store.migrate import head_revision

    assert shipped_revisions()[-1] == head_revision()


# ---------------------------------------------------------------- serve's start
def test_a_busy_port_fails_before_anything_is_written_or_printed(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line_error(smsbridge("serve", "--listen", f"127.0.0.1:{port}", cwd=tmp_path))
    assert f"cannot listen on 127.0.0.1:{port}: the address is already in use" in line
    assert "--listen" in line
    assert not (tmp_path / "data").exists()  # no database, so no API key was made


async def test_serve_listen_is_found_by_the_other_commands(tmp_path: Path) -> None:
    """`serve --listen` on another port than the config's; sandbox receive finds it."""
    configured, actual = free_port(), free_port()
    config = write_config(tmp_path / "c.toml", listen=f"127.0.0.1:{configured}",
                          database=f"sqlite:///{tmp_path}/db.sqlite", connections=[SANDBOX])
    server = SmsbridgeProcess(["serve", "-c", str(config), "--listen", f"127.0.0.1:{actual}"],
                              tmp_path, "serve")
    try:
        server.wait_for("sbk_", stream="stdout")
        assert f"listening on http://127.0.0.1:{actual}" in server.output()
        assert f"data:   {tmp_path / 'db.sqlite'}" in server.output()
        received = smsbridge("sandbox", "receive", "--to", "+15555550100", "--from",
                             "+15145550111", "-t", "found you", "-c", str(config),
                             cwd=tmp_path)
        assert received.returncode == 0, received.stderr

        async def stored() -> bool:
            listed = smsbridge("messages", "--json", "-c", str(config), cwd=tmp_path)
            return [m["text"] for m in json.loads(listed.stdout)["data"]] == ["found you"]

        await eventually(stored, timeout=10)
        carriers = json.loads(smsbridge("carriers", "--json", "-c", str(config),
                                        cwd=tmp_path).stdout)
        url = carriers["data"][0]["inbound_url"]
        assert url.startswith(f"http://127.0.0.1:{actual}/v1/carriers/sandbox/")
        async with aiohttp.ClientSession() as http, http.post(url, json={
                "id": "direct", "from": "+15145550111", "to": "+15555550100", "text": "x"}) as r:
            assert r.status == 200
    finally:
        server.terminate()


async def test_serve_answers_an_oversize_url_with_a_problem_document(tmp_path: Path) -> None:
    """The real `smsbridge serve`, not only the test harness, answers 414 as the API does."""
    port = free_port()
    server = SmsbridgeProcess(["serve", "--listen", f"127.0.0.1:{port}"], tmp_path, "serve")
    try:
        server.wait_for("sbk_", stream="stdout")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET /v1/messages?number={'1' * 100_000} HTTP/1.1\r\n"
                     "Host: gateway\r\n\r\n".encode())
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 10)
        writer.close()
    finally:
        server.terminate()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 414"), raw[:300]
    assert b"content-type: application/problem+json" in head.lower()
    assert json.loads(body)["type"] == "urn:smsbridge:problem:uri-too-long"


def test_the_start_log_shows_no_webhook_token(tmp_path: Path) -> None:
    """Not on the first start without a terminal, and never on a later start."""
    port = free_port()
    for name in ("first", "second"):
        server = SmsbridgeProcess(["serve", "--listen", f"127.0.0.1:{port}"], tmp_path, name)
        try:
            server.wait_for("smsbridge carriers")
        finally:
            server.terminate()
        carriers = json.loads(smsbridge("carriers", "--json", cwd=tmp_path).stdout)
        token = carriers["data"][0]["inbound_url"].split("/")[-2]
        assert len(token) >= 32
        printed = server.output() + server.output("stdout")
        assert token not in printed
        assert "connection sandbox (sandbox): +15555550100" in printed


def test_the_first_start_on_a_terminal_shows_the_new_webhook_urls(tmp_path: Path) -> None:
    import pty

    leader, follower = pty.openpty()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "smsbridge.cli.main", "serve", "--listen", f"127.0.0.1:{port}"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=follower, start_new_session=True,
        env={**os.environ, "SMSBRIDGE_DATA_DIR": str(tmp_path / "data")})
    os.close(follower)
    try:
        assert proc.stdout is not None
        key_lines = []
        while not any("sbk_" in line for line in key_lines):
            key_lines.append(proc.stdout.readline().decode())
        seen = b""
        while b"Bearer" not in seen:
            seen += os.read(leader, 65536)
    finally:
        proc.terminate()
        proc.wait(15)
        os.close(leader)
    carriers = json.loads(smsbridge("carriers", "--json", cwd=tmp_path).stdout)
    assert carriers["data"][0]["inbound_url"].encode() in seen.replace(b"\r\n", b"\n")
    # The key comes last, after the connections: the lines before it are the start report.
    assert seen.index(b"inbound:") < seen.index(b"New API key")


# ---------------------------------------------------------------- where the data lives
def test_a_relative_sqlite_path_is_beside_the_config_file(tmp_path: Path) -> None:
    home, elsewhere = tmp_path / "etc", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    config = write_config(home / "smsbridge.toml", listen="127.0.0.1:8080",
                          database="sqlite:///db/smsbridge.db", connections=[SANDBOX])
    assert smsbridge("migrate", "-c", str(config), cwd=elsewhere).returncode == 0
    assert (home / "db" / "smsbridge.db").exists()
    assert not (elsewhere / "db").exists()
    created = smsbridge("keys", "create", "--name", "a", "-c", str(config), cwd=elsewhere)
    assert created.returncode == 0, created.stderr
    listed = smsbridge("keys", "list", "--json", "-c", str(config), cwd=home)
    assert [k["name"] for k in json.loads(listed.stdout)["data"]] == ["a"]


def test_without_a_config_the_data_lives_in_one_place_whatever_the_directory(
        tmp_path: Path) -> None:
    home, one, two = tmp_path / "home", tmp_path / "one", tmp_path / "two"
    for folder in (home, one, two):
        folder.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("SMSBRIDGE_DATA_DIR", "XDG_DATA_HOME", "SMSBRIDGE_CONFIG")}
    env["HOME"] = str(home)

    def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "smsbridge.cli.main", *args], cwd=cwd,
                              capture_output=True, text=True, timeout=60, env=env)

    assert run("migrate", cwd=one).returncode == 0
    assert (home / ".local" / "share" / "smsbridge" / "smsbridge.db").exists()
    assert run("keys", "create", "--name", "k", cwd=two).returncode == 0
    assert "k" in run("keys", "list", cwd=one).stdout
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    checked = run("config", "check", cwd=one)
    assert f"data {tmp_path / 'xdg' / 'smsbridge' / 'smsbridge.db'}" in checked.stdout


# ---------------------------------------------------------------- URLs and secrets
def test_carriers_warns_that_a_loopback_url_cannot_work_and_says_how_to_fix_it(
        tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", listen="127.0.0.1:8080",
                          database=f"sqlite:///{tmp_path}/db.sqlite", connections=[VOIPMS])
    assert smsbridge("migrate", "-c", str(config), cwd=tmp_path).returncode == 0
    shown = smsbridge("carriers", "-c", str(config), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "http://127.0.0.1:8080 is this machine's loopback address" in shown.stderr
    assert "voipms cannot call" in shown.stderr and "server.public_url" in shown.stderr
    assert "http://127.0.0.1:8080/v1/carriers/home/" in shown.stdout
    public = config.read_text().replace('[server]\n', '[server]\npublic_url = '
                                        '"https://sms.example.com"\n')
    config.write_text(public)
    shown = smsbridge("carriers", "-c", str(config), cwd=tmp_path)
    assert shown.returncode == 0 and shown.stderr == ""
    assert "https://sms.example.com/v1/carriers/home/" in shown.stdout


def test_read_only_commands_need_no_carrier_secret(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", listen="127.0.0.1:8080",
                          database=f"sqlite:///{tmp_path}/db.sqlite",
                          connections=[VOIPMS, TWILIO])
    for command in (["migrate"], ["messages"], ["carriers", "--json"], ["keys", "list"],
                    ["keys", "create", "--name", "a"], ["keys", "revoke", "a"]):
        result = smsbridge(*command, "-c", str(config), cwd=tmp_path)
        assert result.returncode == 0, (command, result.stderr)
    carriers = json.loads(smsbridge("carriers", "--json", "-c", str(config),
                                    cwd=tmp_path).stdout)
    assert [c["name"] for c in carriers["data"]] == ["home", "office"]
    assert "${" not in json.dumps(carriers)
    # Where the secret is used, the missing variable is named with its key.
    for command in (["config", "check"], ["serve", "--listen", f"127.0.0.1:{free_port()}"],
                    ["worker"], ["send", "--from", "+15145550100", "--to", "+15145550111",
                                 "-t", "x"]):
        line = one_line_error(smsbridge(*command, "-c", str(config), cwd=tmp_path))
        assert line == ("config error connections[0].settings.api_password: environment "
                        "variable SMSBRIDGE_TEST_UNSET_PASSWORD is not set"), command
    # A placeholder is never validated as a value: a real bad one still is.
    config.write_text(config.read_text().replace("${SMSBRIDGE_TEST_UNSET_SID}", "not-a-sid"))
    line = one_line_error(smsbridge("config", "check", "-c", str(config), cwd=tmp_path,
                                    env={"SMSBRIDGE_TEST_UNSET_PASSWORD": "x"}))
    assert line.startswith("config error connections[1].settings.account_sid:")


# ---------------------------------------------------------------- keys, JSON, config, version
def test_keys_revoke_by_id_or_unique_name_and_rfc3339_dates(tmp_path: Path) -> None:
    assert smsbridge("migrate", cwd=tmp_path).returncode == 0
    made = [json.loads(smsbridge("keys", "create", "--name", name, "--json",
                                 cwd=tmp_path).stdout) for name in ("ha", "ci")]
    assert all(is_rfc3339(k["created_at"]) and k["revoked_at"] is None for k in made)
    taken = one_line_error(smsbridge("keys", "create", "--name", "ha", cwd=tmp_path))
    assert "invalid name:" in taken and "'ha'" in taken
    revoked = smsbridge("keys", "revoke", made[0]["id"], cwd=tmp_path)
    assert revoked.returncode == 0 and made[0]["id"] in revoked.stdout
    assert smsbridge("keys", "revoke", "ci", cwd=tmp_path).returncode == 0
    line = one_line_error(smsbridge("keys", "revoke", "ci", cwd=tmp_path))
    assert line == "invalid key: no active key with id or name 'ci'"
    listed = json.loads(smsbridge("keys", "list", "--json", cwd=tmp_path).stdout)["data"]
    assert {k["name"] for k in listed} == {"ha", "ci"}
    assert all(is_rfc3339(k["created_at"]) and is_rfc3339(k["revoked_at"]) for k in listed)
    sent = smsbridge("send", "--from", "+15555550100", "--to", "+15145550111", "-t", "hi",
                     "--json", cwd=tmp_path)
    message = json.loads(sent.stdout)
    assert is_rfc3339(message["created_at"]) and is_rfc3339(message["updated_at"])
    page = json.loads(smsbridge("messages", "--json", cwd=tmp_path).stdout)
    assert all(is_rfc3339(m["created_at"]) for m in page["data"])


def test_config_with_no_connections_is_accepted_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('[server]\nlisten = "127.0.0.1:8080"\n')
    result = smsbridge("config", "check", "-c", "c.toml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "no [[connections]] configured: nothing can be sent or received" in result.stderr


def test_an_unknown_default_region_is_refused(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('[server]\ndefault_region = "XX"\n')
    line = one_line_error(smsbridge("config", "check", "-c", "c.toml", cwd=tmp_path))
    assert line == ("config error server.default_region: 'XX' is not a known region; use an "
                    "ISO 3166 code such as US, CA, GB or FR")


def test_version_is_the_package_version(tmp_path: Path) -> None:
    result = smsbridge("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout == f"smsbridge {version('smsbridge')}\n"


def test_help_reads_well_for_every_command(tmp_path: Path) -> None:
    commands = [["serve"], ["worker"], ["migrate"], ["send"], ["messages"], ["carriers"],
                ["carriers", "rotate-token"], ["keys", "create"], ["keys", "list"],
                ["keys", "revoke"], ["sandbox", "receive"], ["config", "check"]]
    for command in commands:
        result = smsbridge(*command, "--help", cwd=tmp_path, env={"COLUMNS": "100"})
        assert result.returncode == 0 and "Traceback" not in result.stderr, command
        assert "--config" in result.stdout and "Usage:" in result.stdout, command
    top = smsbridge("--help", cwd=tmp_path, env={"COLUMNS": "100"}).stdout
    assert "--version" in top and "SMSBRIDGE_DATA_DIR" in top


def imported_modules(*args: str, cwd: Path) -> set[str]:
    """The modules `smsbridge ARGS` imports, as `python -X importtime` lists them."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "smsbridge.cli.main",
                             *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "SMSBRIDGE_DATA_DIR": str(cwd / "data")})
    assert result.returncode == 0, result.stderr[-2000:]
    return {line.rpartition("|")[2].strip() for line in result.stderr.splitlines()
            if line.startswith("import time:")}


def test_each_command_imports_only_what_it_uses(tmp_path: Path) -> None:
    assert smsbridge("migrate", cwd=tmp_path).returncode == 0
    server_stack = {"fastapi", "uvicorn", "alembic", "smsbridge.api"}
    for command in (["messages", "--json"], ["keys", "list", "--json"]):
        modules = imported_modules(*command, cwd=tmp_path)
        assert "sqlalchemy" in modules  # the listing really read the store
        assert "smsbridge.gateway.service" in modules  # through the gateway service
        assert not modules & server_stack, command
        # No carrier is loaded to list: the providers' shared modules at most.
        carriers = {m for m in modules if m.startswith("smsbridge.providers.")
                    and m.split(".")[2] not in ("base", "http", "numbers", "registry")}
        assert not carriers, command
    assert not imported_modules("carriers", "--json", cwd=tmp_path) & server_stack
    assert not imported_modules("--version", cwd=tmp_path) & {"sqlalchemy", "aiohttp"}

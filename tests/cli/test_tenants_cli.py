"""Accounts, per-account keys and connections added at run time, from the command line.

Real processes on a real SQLite file, as an operator runs them; one test adds a connection
to a running gateway and posts to the URL the command printed.
"""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from smsbridge.cli.connections import parse_settings
from smsbridge.core.errors import InvalidInput
from smsbridge.testing.server import free_port
from tests.cli.test_cli import SANDBOX
from tests.conftest import eventually
from tests.processes import SmsbridgeProcess, write_config

PASSWORD = "hunter2-never-shown"
FREE_NUMBER = "+15145550100"


def run(cwd: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """`smsbridge ARGS -c c.toml` with ``stdin`` as its (non-terminal) standard input."""
    return subprocess.run([sys.executable, "-m", "smsbridge.cli.main", *args,
                           "-c", str(cwd / "c.toml")], cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=60,
                          # A wide terminal: table cells hold whole ids.
                          env={**os.environ, "SMSBRIDGE_DATA_DIR": str(cwd / "data"),
                               "COLUMNS": "200"})


def ok(cwd: Path, *args: str, stdin: str = "") -> Any:
    """Run a command with --json; it must succeed; its JSON."""
    result = run(cwd, *args, "--json", stdin=stdin)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def one_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The single stderr line of a command that failed with ``code`` (never a traceback)."""
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A migrated SQLite database and a config file with one sandbox connection."""
    write_config(tmp_path / "c.toml", database=f"sqlite:///{tmp_path}/db.sqlite",
                 listen="127.0.0.1:8080", connections=[SANDBOX])
    assert run(tmp_path, "migrate").returncode == 0
    return tmp_path


def make_account(home: Path, name: str) -> str:
    """`accounts create NAME`; the id it printed."""
    result = run(home, "accounts", "create", name)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


# ---------------------------------------------------------------- accounts and keys
def test_accounts_create_list_and_show(home: Path) -> None:
    first = run(home, "accounts", "create", "Acme Dental")
    assert first.returncode == 0, first.stderr
    acme = first.stdout.strip()
    assert acme.startswith("acc_")
    # Its auth token is encrypted under the secret key, made now: the user is told to keep it.
    key_file = home / "data" / "secret.key"
    assert f"created the secret key file {key_file}: back it up" in first.stderr
    made = ok(home, "accounts", "create", "Bravo Clinic")
    assert made["name"] == "Bravo Clinic" and made["id"].startswith("acc_")
    assert len(made["auth_token"]) == 32
    token = run(home, "accounts", "token", made["id"])
    assert token.stdout.strip() == made["auth_token"] and "secret key" not in token.stderr
    rotated = ok(home, "accounts", "token", made["id"], "--rotate")["auth_token"]
    assert rotated != made["auth_token"]
    assert run(home, "accounts", "token", made["id"]).stdout.strip() == rotated

    listed = ok(home, "accounts", "list")["data"]
    assert [a["name"] for a in listed] == ["default", "Acme Dental", "Bravo Clinic"]
    assert listed[1]["id"] == acme
    table = run(home, "accounts", "list")
    assert acme in table.stdout and "default" in table.stdout

    shown = ok(home, "accounts", "show", acme)
    assert (shown["id"], shown["name"], shown["default"]) == (acme, "Acme Dental", False)
    assert shown["keys"] == [] and shown["connections"] == []
    line = one_line(run(home, "accounts", "show", "acc_nope"), 1)
    assert line == "error: no account 'acc_nope'"
    assert "invalid name:" in one_line(run(home, "accounts", "create", " "), 2)


def test_keys_belong_to_the_account_they_were_made_for(home: Path) -> None:
    acme = make_account(home, "Acme Dental")
    key = ok(home, "keys", "create", "--name", "acme-pbx", "--account", acme)
    assert key["key"].startswith("sbk_")
    assert (key["account_id"], key["admin"]) == (acme, False)
    root = ok(home, "keys", "create", "--name", "root", "--admin")
    assert root["admin"] is True and root["account_id"] != acme

    theirs = ok(home, "keys", "list", "--account", acme)["data"]
    assert [(k["name"], k["account_id"]) for k in theirs] == [("acme-pbx", acme)]
    everyone = ok(home, "keys", "list")["data"]
    assert {k["name"] for k in everyone} == {"acme-pbx", "root"}
    table = run(home, "keys", "list")
    assert acme in table.stdout and "admin" in table.stdout
    assert key["key"] not in table.stdout + json.dumps(everyone)

    refused = one_line(run(home, "keys", "create", "--name", "x", "--account", acme,
                           "--admin"), 2)
    assert refused == "invalid admin: only keys of the default account can be admin keys"
    unknown = one_line(run(home, "keys", "create", "--name", "y", "--account", "acc_nope"), 1)
    assert unknown == "error: no account 'acc_nope'"
    assert one_line(run(home, "keys", "list", "--account", "acc_nope"), 1) == unknown


# ---------------------------------------------------------------- connections
def test_connections_add_list_update_remove_never_show_the_password(home: Path) -> None:
    acme = make_account(home, "Acme Dental")
    (home / "voipms-password.txt").write_text(PASSWORD + "\n")
    added = run(home, "connections", "add", "acme-voipms", "--carrier", "voipms",
                "--number", "514 555 0100", "--setting", "username=me@example.com",
                "--setting", "api_password=@voipms-password.txt", "--account", acme)
    assert added.returncode == 0, added.stderr
    assert "http://127.0.0.1:8080/v1/carriers/acme-voipms/" in added.stdout
    assert "URL Callback Retry" in added.stdout  # the carrier's setup hint
    assert "+15145550100" in added.stdout
    # The key that encrypts the password was made beside the data, readable by its owner only.
    key_file = home / "data" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    listed = ok(home, "connections", "list", "--account", acme)["data"]
    assert [(c["name"], c["carrier"], c["numbers"], c["source"]) for c in listed] == [
        ("acme-voipms", "voipms", ["+15145550100"], "api")]
    url = listed[0]["inbound_url"]
    assert url.startswith("http://127.0.0.1:8080/v1/carriers/acme-voipms/")
    assert url in run(home, "connections", "list", "--account", acme).stdout
    shown = ok(home, "connections", "show", "acme-voipms", "--account", acme)
    assert shown["settings"] == {"username": "me@example.com", "api_password": "(set)"}
    # The default account has only the config file's connection; the other is not its.
    assert [c["name"] for c in ok(home, "connections", "list")["data"]] == ["sandbox"]
    missing = one_line(run(home, "connections", "show", "acme-voipms"), 1)
    assert "no connection 'acme-voipms' in the default account" in missing
    assert ok(home, "accounts", "show", acme)["connections"] == ["acme-voipms"]

    # A new password from stdin, and a second number: the username is kept.
    updated = ok(home, "connections", "update", "acme-voipms", "--account", acme,
                 "--number", FREE_NUMBER, "--number", "+15145550101",
                 "--setting", "api_password=-", stdin="new-" + PASSWORD + "\n")
    assert updated["numbers"] == [FREE_NUMBER, "+15145550101"]
    assert updated["settings"] == {"username": "me@example.com", "api_password": "(set)"}
    assert updated["inbound_url"] == url  # the URL given to the carrier stays

    outputs = [run(home, *args, "--account", acme) for args in (
        ["connections", "list"], ["connections", "list", "--json"],
        ["connections", "show", "acme-voipms"], ["connections", "show", "acme-voipms",
                                                 "--json"])]
    for result in [added, *outputs]:
        assert PASSWORD not in result.stdout + result.stderr
    assert PASSWORD.encode() not in (home / "db.sqlite").read_bytes()

    unconfirmed = one_line(run(home, "connections", "remove", "acme-voipms", "--account",
                               acme), 2)
    assert "--yes" in unconfirmed
    removed = run(home, "connections", "remove", "acme-voipms", "--account", acme, "--yes")
    assert removed.returncode == 0, removed.stderr
    assert ok(home, "connections", "list", "--account", acme)["data"] == []


def test_taken_numbers_and_names_and_read_only_connections_are_one_line(home: Path) -> None:
    acme = make_account(home, "Acme Dental")
    # The config file's sandbox connection owns +15555550100, whatever the account.
    taken = one_line(run(home, "connections", "add", "acme", "--carrier", "sandbox",
                         "--number", "+15555550100", "--account", acme), 2)
    assert taken == "conflict on numbers: +15555550100 already belongs to another connection"
    assert ok(home, "connections", "list", "--account", acme)["data"] == []
    name = one_line(run(home, "connections", "add", "sandbox", "--carrier", "sandbox",
                        "--number", FREE_NUMBER), 2)
    assert name == "conflict on name: a connection named 'sandbox' exists"
    config_file = one_line(run(home, "connections", "update", "sandbox", "--number",
                               FREE_NUMBER), 2)
    assert "defined in the config file" in config_file
    bad = one_line(run(home, "connections", "add", "acme", "--carrier", "voipms", "--number",
                       FREE_NUMBER, "--setting", "username=me@example.com",
                       "--account", acme), 2)
    assert bad == "invalid settings.api_password: Field required"
    unknown = one_line(run(home, "connections", "add", "acme", "--carrier", "sandbox",
                           "--number", FREE_NUMBER, "--account", "acc_nope"), 1)
    assert unknown == "error: no account 'acc_nope'"
    assert one_line(run(home, "connections", "list", "--account", "acc_nope"), 1) == unknown


async def test_a_connection_added_by_the_cli_receives_on_a_running_gateway(
        tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path / "c.toml", database=f"sqlite:///{tmp_path}/db.sqlite",
                          listen=f"127.0.0.1:{port}", connections=[SANDBOX])
    server = SmsbridgeProcess(["serve", "-c", str(config)], tmp_path, "serve")
    try:
        server.wait_for("smsbridge carriers")
        acme = make_account(tmp_path, "Acme Dental")
        added = ok(tmp_path, "connections", "add", "acme-sandbox", "--carrier", "sandbox",
                   "--number", FREE_NUMBER, "--account", acme)
        url = added["inbound_url"]
        assert url.startswith(f"http://127.0.0.1:{port}/v1/carriers/acme-sandbox/")
        body = {"from": "+15145550111", "to": FREE_NUMBER, "text": "Cleaning at 3?"}
        async with aiohttp.ClientSession() as http:
            async def accepted() -> bool:
                async with http.post(url, json={**body, "id": "in-1"}) as resp:
                    return resp.status == 200

            await eventually(accepted, timeout=15, interval=0.2)  # no restart
        texts = [m["text"] for m in ok(tmp_path, "messages", "--account", acme)["data"]]
        assert texts == ["Cleaning at 3?"]
        assert ok(tmp_path, "messages", "--account",
                  ok(tmp_path, "accounts", "list")["data"][0]["id"])["data"] == []
    finally:
        server.terminate()


# ---------------------------------------------------------------- settings and help
def test_settings_come_from_files_stdin_and_the_environment(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    (tmp_path / "pw").write_text("from-a-file\n")
    (tmp_path / "s.json").write_text('{"username": "json-user", "number_format": "e164"}')
    monkeypatch.setenv("ACME_VOIPMS_PASSWORD", "from-the-env")
    assert parse_settings([f"api_password=@{tmp_path / 'pw'}", "username=cli-user"],
                          str(tmp_path / "s.json"), io.StringIO()) == {
        "username": "cli-user", "number_format": "e164", "api_password": "from-a-file"}
    assert parse_settings(["api_password=env:ACME_VOIPMS_PASSWORD"], None,
                          io.StringIO()) == {"api_password": "from-the-env"}
    assert parse_settings(["api_password=-", "a=b=c"], None, io.StringIO("typed\nrest\n"),
                          ["long_text"]) == {"api_password": "typed", "a": "b=c",
                                             "long_text": None}
    # Standard input is read once: by one setting, or by the JSON.
    for pairs, settings_json, stdin, field in (
            (["api_password=env:NOT_SET_ANYWHERE_42"], None, "", "settings.api_password"),
            (["a=-", "b=-"], None, "x\ny\n", "settings.b"),
            (["a=-"], "-", '{"b": "c"}', "settings.a"),
            (["novalue"], None, "", "setting"),
            ([f"a=@{tmp_path / 'missing'}"], None, "", "settings.a"),
            ([], str(tmp_path / "pw"), "", "settings-json"),
            ([], "-", '["not", "an", "object"]', "settings-json")):
        with pytest.raises(InvalidInput) as caught:
            parse_settings(pairs, settings_json, io.StringIO(stdin))
        assert caught.value.field == field


@pytest.mark.parametrize("command", [
    ["accounts", "create"], ["accounts", "list"], ["accounts", "show"],
    ["connections", "add"], ["connections", "list"], ["connections", "show"],
    ["connections", "update"], ["connections", "remove"], ["keys", "create"]])
def test_each_new_command_says_what_it_does_with_an_example(tmp_path: Path,
                                                            command: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", "smsbridge.cli.main", *command, "--help"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert "Usage:" in result.stdout and f"smsbridge {' '.join(command)}" in result.stdout
    assert "Example: smsbridge " in result.stdout
    if command[-1] in ("add", "update"):
        assert "KEY=@FILE" in result.stdout  # secrets from a file, not the command line

"""`smsbridge optouts list|add|remove` as a user runs them, and `send` refusing a listed phone."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.cli.test_cli import smsbridge
from tests.conftest import make_settings
from tests.processes import write_config

DID = "+15555550100"
PHONE = "+15145550111"
SANDBOX = {"name": "sandbox", "carrier": "sandbox", "numbers": [DID]}


def configured(tmp_path: Path, database: str) -> Path:
    """A migrated database and a config file with one sandbox number."""
    config = write_config(tmp_path / "c.toml", database=database, listen="127.0.0.1:8080",
                          connections=[SANDBOX])
    assert smsbridge("migrate", "-c", str(config), cwd=tmp_path).returncode == 0
    return config


def run_json(tmp_path: Path, config: Path, *args: str, env: dict[str, str] | None = None
             ) -> Any:
    """Run a command with --json; it must succeed."""
    result = smsbridge(*args, "--json", "-c", str(config), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_add_list_remove(store: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    database = request.getfixturevalue("sqlite_url" if store == "sqlite" else "pg_url")
    config = configured(tmp_path, database)
    added = run_json(tmp_path, config, "optouts", "add", "--from", DID, "--to", "514 555 0111")
    assert (added["from"], added["to"], added["source"]) == (DID, PHONE, "cli")

    listed = run_json(tmp_path, config, "optouts", "list", "--from", DID)
    assert [(e["to"], e["source"]) for e in listed["data"]] == [(PHONE, "cli")]
    assert run_json(tmp_path, config, "optouts", "list", "--to", "+15145550112")["data"] == []
    table = smsbridge("optouts", "list", "-c", str(config), cwd=tmp_path)
    assert table.returncode == 0 and PHONE in table.stdout and "cli" in table.stdout

    again = smsbridge("optouts", "add", "--from", DID, "--to", PHONE, "-c", str(config),
                      cwd=tmp_path)
    assert again.returncode == 0
    assert f"{PHONE} was already opted out (cli) of {DID}" in again.stdout

    removed = smsbridge("optouts", "remove", PHONE, "--from", DID, "-c", str(config),
                        cwd=tmp_path)
    assert removed.returncode == 0, removed.stderr
    assert f"{PHONE} taken off the opt-out list of {DID}" in removed.stdout
    assert run_json(tmp_path, config, "optouts", "list")["data"] == []


def test_send_to_a_listed_phone_says_it_opted_out_and_queues_nothing(tmp_path: Path) -> None:
    config = configured(tmp_path, f"sqlite:///{tmp_path}/db.sqlite")
    run_json(tmp_path, config, "optouts", "add", "--from", DID, "--to", PHONE)
    sent = smsbridge("send", "--from", DID, "--to", PHONE, "--text", "Porch motion",
                     "-c", str(config), cwd=tmp_path)
    assert sent.returncode == 2
    assert f"invalid to: {PHONE} has opted out of messages from {DID}" in sent.stderr
    assert "Traceback" not in sent.stderr
    assert run_json(tmp_path, config, "messages")["data"] == []


def test_refusals_are_one_clear_line(tmp_path: Path) -> None:
    config = configured(tmp_path, f"sqlite:///{tmp_path}/db.sqlite")
    for args, code, line in (
        (["add", "--from", "+15145550999", "--to", PHONE], 2,
         "invalid from: +15145550999 is not a number of any connection"),
        (["add", "--from", DID, "--to", "hello"], 2, "invalid to: 'hello' is not a phone number"),
        (["remove", PHONE, "--from", DID], 1, f"{PHONE} is not on the opt-out list of {DID}"),
    ):
        result = smsbridge("optouts", *args, "-c", str(config), cwd=tmp_path)
        assert result.returncode == code, result.stdout
        assert line in result.stderr and "Traceback" not in result.stderr


async def test_a_phone_added_by_the_cli_is_refused_by_a_running_gateway(
        tmp_path: Path, start_gateway: Any, http: aiohttp.ClientSession) -> None:
    database = f"sqlite:///{tmp_path}/db.sqlite"
    gw = start_gateway(make_settings(database, [SANDBOX]))
    config = write_config(tmp_path / "c.toml", database=database, listen="127.0.0.1:8080",
                          connections=[SANDBOX])
    # The command shares the running gateway's data folder, and so its secret key.
    run_json(tmp_path, config, "optouts", "add", "--from", DID, "--to", PHONE,
             env={"SMSBRIDGE_DATA_DIR": os.environ["SMSBRIDGE_DATA_DIR"]})
    status, problem = await gw.send(http, {"from": DID, "to": PHONE, "text": "x"})
    assert (status, problem["type"]) == (422, "urn:smsbridge:problem:opted-out")


def test_help_lists_the_optouts_commands(tmp_path: Path) -> None:
    result = smsbridge("optouts", "--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("list", "add", "remove"):
        assert command in result.stdout

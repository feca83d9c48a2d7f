"""`smsbridge call` as a user runs it: a real process queues the call, a gateway places it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

from tests.cli.test_cli import smsbridge
from tests.conftest import make_settings
from tests.e2e.calls import get_json, wait_call
from tests.processes import write_config

SANDBOX = {"name": "sandbox", "carrier": "sandbox", "numbers": ["+15555550100"]}
VOIPMS = {"name": "office", "carrier": "voipms", "numbers": ["+15145550100"],
          "settings": {"username": "me@example.com", "api_password": "not-a-real-password"}}


def configured(tmp_path: Path) -> tuple[Path, str]:
    """A migrated SQLite database and a config file with a sandbox and a VoIP.ms connection."""
    database = f"sqlite:///{tmp_path}/db.sqlite"
    config = write_config(tmp_path / "c.toml", database=database, listen="127.0.0.1:8080",
                          connections=[SANDBOX, VOIPMS])
    assert smsbridge("migrate", "-c", str(config), cwd=tmp_path).returncode == 0
    return config, database


async def test_call_queues_and_a_running_gateway_places_it(
        tmp_path: Path, start_gateway: Any, http: aiohttp.ClientSession) -> None:
    config, database = configured(tmp_path)
    result = smsbridge("call", "--from", "+15555550100", "--to", "514 555 0111", "--say",
                       "Alarm: garage door open", "--voice", "Polly.Joanna", "--repeat", "3",
                       "--json", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    queued = json.loads(result.stdout)
    assert queued["id"].startswith("call_") and queued["status"] == "queued"
    assert (queued["to"], queued["say"], queued["voice"], queued["repeat"]) == (
        "+15145550111", "Alarm: garage door open", "Polly.Joanna", 3)

    plain = smsbridge("call", "--from", "+15555550100", "--to", "+15145550111", "--say",
                      "Second alarm", "-c", str(config), cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.startswith("queued call call_") and "via sandbox" in plain.stdout

    # The gateway started afterwards finds the call in the outbox and places it.
    gw = start_gateway(make_settings(database, [SANDBOX]))
    done = await wait_call(gw, http, queued["id"], {"completed", "failed"})
    assert (done["status"], done["answer"]) == ("completed", "answered")
    _, messages = await get_json(gw, http, "/v1/messages")
    assert messages["data"] == []


def test_call_with_the_same_idempotency_key_is_queued_once(tmp_path: Path) -> None:
    config, _ = configured(tmp_path)
    args = ["call", "--from", "+15555550100", "--to", "+15145550111", "--say", "Smoke",
            "--idempotency-key", "smoke-1", "-c", str(config)]
    first = smsbridge(*args, "--json", cwd=tmp_path)
    again = smsbridge(*args, cwd=tmp_path)
    assert first.returncode == again.returncode == 0, again.stderr
    call_id = json.loads(first.stdout)["id"]
    assert again.stdout.startswith(f"call already queued (same idempotency key) {call_id}")


def test_call_refusals_are_one_clear_line(tmp_path: Path) -> None:
    config, _ = configured(tmp_path)
    base = ["call", "--to", "+15145550111", "-c", str(config)]
    for args, line in (
        (["--from", "+15555550100", "--say", "x", "--repeat", "11"], "invalid repeat:"),
        (["--from", "+15555550100", "--say", " "], "invalid say: must not be empty"),
        (["--from", "+15145550100", "--say", "x"],
         "invalid from: carrier voipms (connection 'office') cannot place voice calls"),
    ):
        result = smsbridge(*base, *args, cwd=tmp_path)
        assert result.returncode == 2, result.stdout
        assert line in result.stderr and "Traceback" not in result.stderr


def test_help_lists_the_call_command(tmp_path: Path) -> None:
    assert "call" in smsbridge("--help", cwd=tmp_path).stdout
    call_help = smsbridge("call", "--help", cwd=tmp_path).stdout
    for option in ("--say", "--voice", "--language", "--repeat", "--connection",
                   "--idempotency-key", "--json"):
        assert option in call_help

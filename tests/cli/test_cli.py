"""The command line as a user runs it: real processes, a real config file, a running gateway."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from smsbridge.testing.server import free_port
from tests.conftest import eventually
from tests.processes import SmsbridgeProcess, write_config


def smsbridge(*args: str, cwd: Path, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess[str]:
    """Run `smsbridge ARGS` and capture its output; the data folder is ``cwd/data``."""
    return subprocess.run([sys.executable, "-m", "smsbridge.cli.main", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "SMSBRIDGE_DATA_DIR": str(cwd / "data"),
                               **(env or {})})


SANDBOX = {"name": "sandbox", "carrier": "sandbox", "numbers": ["+15555550100"]}


@pytest.mark.parametrize(
    ("toml", "key", "reason"),
    [
        ('[server]\nlisten = "nope"\n', "server.listen", "HOST:PORT"),
        ('[[connections]]\nname = "a"\ncarrier = "carrier-pigeon"\n',
         "connections[0].carrier", "unknown carrier 'carrier-pigeon'"),
        ('[[connections]]\nname = "a"\ncarrier = "voipms"\n[connections.settings]\n'
         'username = "me@example.com"\n', "connections[0].settings.api_password", "is required"),
        ('[[connections]]\nname = "a"\ncarrier = "sandbox"\nnumbers = ["hello"]\n',
         "connections[0].numbers[0]", "not a phone number"),
        ('[[webhooks]]\nurl = "https://app.example.com/sms"\nsecret = "${NOT_SET_ANYWHERE}"\n',
         "webhooks[0].secret", "environment variable NOT_SET_ANYWHERE is not set"),
        ('[[webhooks]]\nurl = "https://app.example.com/sms"\nsecret = "plain"\n',
         "webhooks[0].secret", "whsec_"),
        ('[server]\ncolour = "red"\n', "server.colour", "unknown key"),
        ("[server\n", "(file)", "not valid TOML"),
    ],
)
def test_config_check_names_the_bad_key_and_why(tmp_path: Path, toml: str, key: str,
                                               reason: str) -> None:
    (tmp_path / "c.toml").write_text(toml)
    result = smsbridge("config", "check", "--config", "c.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert key in result.stderr and reason in result.stderr
    assert "Traceback" not in result.stderr


def test_config_check_expands_env_and_hides_secrets(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(
        '[[connections]]\nname = "home"\ncarrier = "voipms"\nnumbers = ["5145550100"]\n'
        '[connections.settings]\nusername = "me@example.com"\n'
        'api_password = "${VOIPMS_API_PASSWORD}"\n')
    result = smsbridge("config", "check", cwd=tmp_path,
                       env={"SMSBRIDGE_CONFIG": "c.toml", "VOIPMS_API_PASSWORD": "hunter2-xyz"})
    assert result.returncode == 0, result.stderr
    assert "connection home: voipms, numbers +15145550100" in result.stdout
    assert "hunter2-xyz" not in result.stdout + result.stderr


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", database=f"sqlite:///{tmp_path}/db.sqlite",
                          listen="127.0.0.1:8080", connections=[SANDBOX])
    assert smsbridge("migrate", "-c", str(config), cwd=tmp_path).returncode == 0
    created = smsbridge("keys", "create", "--name", "ci", "--config", str(config), "--json",
                        cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert key["key"].startswith("sbk_") and key["name"] == "ci"
    listed = json.loads(smsbridge("keys", "list", "--json", "-c", str(config), cwd=tmp_path).stdout)
    assert [(k["name"], k["revoked_at"]) for k in listed["data"]] == [("ci", None)]
    assert key["key"] not in json.dumps(listed)  # only the hash and a prefix are kept
    assert smsbridge("keys", "revoke", "ci", "-c", str(config), cwd=tmp_path).returncode == 0
    again = smsbridge("keys", "revoke", "ci", "-c", str(config), cwd=tmp_path)
    assert again.returncode == 2 and "no active key" in again.stderr
    listed = json.loads(smsbridge("keys", "list", "--json", "-c", str(config), cwd=tmp_path).stdout)
    assert listed["data"][0]["revoked_at"] is not None


def test_send_with_bad_input_is_one_clear_line(tmp_path: Path) -> None:
    assert smsbridge("migrate", cwd=tmp_path).returncode == 0
    result = smsbridge("send", "--from", "+15555550100", "--to", "banana", "--text", "x",
                       cwd=tmp_path)
    assert result.returncode == 2
    assert "invalid to:" in result.stderr and "Traceback" not in result.stderr
    missing = smsbridge("send", "--from", "+15555550100", "--to", "+15145550111",
                        "--media", "no-such-file.jpg", cwd=tmp_path)
    assert missing.returncode == 2
    assert "neither an http(s) URL nor a readable file" in missing.stderr


def test_help_explains_each_command(tmp_path: Path) -> None:
    result = smsbridge("--help", cwd=tmp_path)
    for command in ("serve", "worker", "send", "messages", "carriers", "keys", "sandbox",
                    "migrate", "config"):
        assert command in result.stdout
    send_help = smsbridge("send", "--help", cwd=tmp_path).stdout
    assert "--media" in send_help and "--idempotency-key" in send_help


async def test_quick_start_flow_send_receive_and_list(tmp_path: Path) -> None:
    """Serve on the embedded default, then send, sandbox receive and list, as in the README."""
    port = free_port()
    server = SmsbridgeProcess(["serve", "--listen", f"127.0.0.1:{port}"], tmp_path, "serve")
    try:
        server.wait_for("sbk_", stream="stdout")
        key = server.output("stdout").split()[0]
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            async def healthy() -> bool:
                try:
                    async with http.get(f"{base}/healthz") as resp:
                        return resp.status == 200
                except aiohttp.ClientError:
                    return False

            await eventually(healthy, timeout=20)
            assert (tmp_path / "data" / "smsbridge.db").exists()

            image = tmp_path / "snap.png"
            image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
            sent = smsbridge("send", "--from", "+15555550100", "--to", "5145550111", "--text",
                             "Porch motion", "--media", str(image), "--json", cwd=tmp_path)
            assert sent.returncode == 0, sent.stderr
            message = json.loads(sent.stdout)
            assert message["media"] == [{"content_type": "image/png", "size": 72}]

            async def delivered() -> bool:
                async with http.get(f"{base}/v1/messages/{message['id']}",
                                    headers={"Authorization": f"Bearer {key}"}) as resp:
                    return (await resp.json())["status"] == "delivered"

            await eventually(delivered, timeout=15)  # the server's worker picked it up

            received = smsbridge("sandbox", "receive", "--to", "+15555550100", "--from",
                                 "+15145550111", "--text", "ARM SV", "--server", base,
                                 cwd=tmp_path)
            assert received.returncode == 0, received.stderr
            listed = json.loads(smsbridge("messages", "--json", cwd=tmp_path).stdout)
            assert [(m["direction"], m["text"], m["status"]) for m in listed["data"]] == [
                ("inbound", "ARM SV", "received"), ("outbound", "Porch motion", "delivered")]
            table = smsbridge("messages", "--direction", "inbound", cwd=tmp_path).stdout
            assert "ARM SV" in table

            # The URLs are built on the address serve listens on, not the config's 8080.
            carriers = json.loads(smsbridge("carriers", "--json", cwd=tmp_path).stdout)
            assert carriers["data"][0]["inbound_url"].startswith(
                f"http://127.0.0.1:{port}/v1/carriers/sandbox/")
    finally:
        server.terminate()
    # A restart keeps the key (no new one printed) and the webhook token.
    restart = SmsbridgeProcess(["serve", "--listen", f"127.0.0.1:{port}"], tmp_path, "again")
    try:
        restart.wait_for("smsbridge carriers")
        assert "sbk_" not in restart.output("stdout")
        again = json.loads(smsbridge("carriers", "--json", cwd=tmp_path).stdout)
        assert again["data"][0]["inbound_url"] == carriers["data"][0]["inbound_url"]
    finally:
        restart.terminate()


async def test_rotate_token_replaces_the_webhook_url_of_a_running_gateway(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path / "c.toml", database=f"sqlite:///{tmp_path}/db.sqlite",
                          listen=f"127.0.0.1:{port}", connections=[SANDBOX])
    server = SmsbridgeProcess(["serve", "--config", str(config)], tmp_path, "serve")
    try:
        server.wait_for("smsbridge carriers")
        before = json.loads(smsbridge("carriers", "--json", "-c", str(config),
                                      cwd=tmp_path).stdout)["data"][0]["inbound_url"]
        rotated = smsbridge("carriers", "rotate-token", "sandbox", "-c", str(config),
                            cwd=tmp_path)
        assert rotated.returncode == 0, rotated.stderr
        after = rotated.stdout.split()[-1]
        assert after != before and after.startswith(f"http://127.0.0.1:{port}/v1/carriers/")
        body = {"from": "+15145550111", "to": "+15555550100", "text": "hi"}
        async with aiohttp.ClientSession() as http:
            async def old_refused_new_accepted() -> bool:
                async with http.post(before, json={**body, "id": "a"}) as old:
                    if old.status != 403:
                        return False
                async with http.post(after, json={**body, "id": "b"}) as new:
                    return new.status == 200

            await eventually(old_refused_new_accepted, timeout=15, interval=0.5)
    finally:
        server.terminate()


def test_messages_follow_streams_new_messages(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", database=f"sqlite:///{tmp_path}/db.sqlite",
                          listen="127.0.0.1:8080", connections=[SANDBOX])
    assert smsbridge("migrate", "-c", str(config), cwd=tmp_path).returncode == 0

    def send(text: str) -> None:
        sent = smsbridge("send", "--from", "+15555550100", "--to", "+15145550111", "--text",
                         text, "-c", str(config), cwd=tmp_path)
        assert sent.returncode == 0, sent.stderr

    send("Front door")
    follower = SmsbridgeProcess(["messages", "--follow", "--json", "-c", str(config)],
                                tmp_path, "follow")
    try:
        # The backlog printed: from here on the follower is polling for what is new.
        follower.wait_for('"text": "Front door"', stream="stdout", timeout=15)
        send("Back door")
        follower.wait_for('"text": "Back door"', stream="stdout", timeout=15)
        lines = [json.loads(x) for x in follower.output("stdout").splitlines() if x.strip()]
        assert [(m["text"], m["status"]) for m in lines] == [
            ("Front door", "queued"), ("Back door", "queued")]
    finally:
        follower.terminate()


def test_sandbox_receive_before_the_gateway_ever_ran_says_so(tmp_path: Path) -> None:
    result = smsbridge("sandbox", "receive", "--to", "+15555550100", "--from", "+15145550111",
                       "--text", "hi", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: no smsbridge database at {tmp_path / 'data' / 'smsbridge.db'}; start "
        "`smsbridge serve` or run `smsbridge migrate`"]
    # A client of the gateway creates nothing: the first real start makes the database.
    assert not (tmp_path / "data" / "smsbridge.db").exists()
    assert smsbridge("migrate", cwd=tmp_path).returncode == 0
    again = smsbridge("sandbox", "receive", "--to", "+15555550100", "--from", "+15145550111",
                      "--text", "hi", cwd=tmp_path)
    assert again.returncode == 1
    assert "has no webhook URL yet" in again.stderr and "smsbridge serve" in again.stderr

"""App webhook URLs carry credentials: they are used for delivery and never shown or logged."""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from smsbridge.testing.server import start_server
from tests.conftest import eventually, make_settings
from tests.receiver import WebhookReceiver

SANDBOX = {"name": "sandbox", "carrier": "sandbox", "numbers": ["+15555550100"]}
SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
PASSWORD = "s3cretpass"
TOKEN = "t0psecret"


def _recording_query_strings(app: Any, seen: list[bytes]) -> Any:
    """Wrap an ASGI app so the query string of each request is kept (the receiver drops it)."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append(scope["query_string"])
        await app(scope, receive, send)

    return wrapped


async def test_webhook_url_credentials_reach_the_app_but_no_log_or_listing(
        database_url: str, start_gateway, http: aiohttp.ClientSession,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    receiver = WebhookReceiver(fail_first=1, fail_status=500)  # one failure, then a retry
    queries: list[bytes] = []
    app_server = start_server(_recording_query_strings(receiver.app, queries))
    port = app_server.url.rsplit(":", 1)[1]
    try:
        gw = start_gateway(make_settings(database_url, [SANDBOX], webhooks=[
            {"url": f"http://user:{PASSWORD}@127.0.0.1:{port}/hook?token={TOKEN}",
             "secret": SECRET, "events": ["message.received"]},
            # aiohttp refuses this URL with an error that quotes it whole, credentials and all:
            # that error is both logged and kept as the delivery's last_error.
            {"url": f"http://user:{PASSWORD}@127.0.0.1:99999/hook?token={TOKEN}",
             "secret": SECRET, "events": ["message.received"], "max_attempts": 2},
        ]))
        async with http.post(f"{gw.url}{gw.inbound_path('sandbox')}", json={
                "id": "in-redact-1", "from": "+15145550111", "to": "+15555550100",
                "text": "Front door open"}) as resp:
            assert resp.status == 200, await resp.text()

        async def settled() -> list[dict[str, Any]] | None:
            async with http.get(f"{gw.url}/v1/webhook-deliveries", headers=gw.auth) as resp:
                assert resp.status == 200
                rows: list[dict[str, Any]] = (await resp.json())["data"]
            done = sorted(row["status"] for row in rows)
            return rows if done == ["delivered", "failed"] else None

        rows = await eventually(settled)
        listing = str(rows)
    finally:
        app_server.stop()

    # The app got the event through the credentials and the token in the URL.
    assert [hit.answered for hit in receiver.received] == [500, 200]
    basic = base64.b64encode(f"user:{PASSWORD}".encode()).decode()
    assert all(hit.headers["authorization"] == f"Basic {basic}" for hit in receiver.received)
    assert queries == [f"token={TOKEN}".encode()] * 2

    # The listing still says where each delivery went and why one failed.
    by_status = {row["status"]: row for row in rows}
    assert by_status["delivered"]["attempts"] == 2
    assert by_status["delivered"]["url"] == f"http://127.0.0.1:{port}/hook?token=***"
    assert by_status["failed"]["url"] == "http://127.0.0.1:99999/hook?token=***"
    assert "gave up after 2" in by_status["failed"]["last_error"]

    logged = "\n".join(r.getMessage() + str(r.exc_info or "") for r in caplog.records)
    assert f"127.0.0.1:{port}/hook" in logged  # deliveries, the retry and the failure are logged
    assert "retry in" in logged and "failed for good" in logged
    for secret in (PASSWORD, TOKEN):
        assert secret not in logged
        assert secret not in listing


def test_config_check_shows_webhook_urls_without_their_secrets(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(
        "[[webhooks]]\n"
        f'url = "https://user:{PASSWORD}@app.example.com/sms?token={TOKEN}&tenant=7"\n'
        'secret = "${APP_WEBHOOK_SECRET}"\n', encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "smsbridge.cli.main", "config", "check", "--config", "c.toml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={**os.environ, "APP_WEBHOOK_SECRET": SECRET})
    assert result.returncode == 0, result.stderr
    assert "webhook https://app.example.com/sms?token=***&tenant=***" in result.stdout
    for secret in (PASSWORD, TOKEN, SECRET):
        assert secret not in result.stdout + result.stderr

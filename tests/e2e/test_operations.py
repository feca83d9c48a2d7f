"""Operations: health reflects the store, and no secret reaches a log line."""

from __future__ import annotations

import logging

import aiohttp
import psycopg
import pytest

from smsbridge.testing.fake_voipms import FakeVoipms
from smsbridge.testing.server import start_server
from tests.conftest import eventually, make_settings

SANDBOX = {"name": "sandbox", "carrier": "sandbox", "numbers": ["+15555550100"]}


async def test_healthz_is_503_when_the_database_is_gone(
        pg_admin: str, pg_url: str, start_gateway, http: aiohttp.ClientSession) -> None:
    gw = start_gateway(make_settings(pg_url, [SANDBOX]))
    async with http.get(f"{gw.url}/healthz") as resp:
        assert resp.status == 200
    name = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')

    async def unhealthy() -> dict | None:
        async with http.get(f"{gw.url}/healthz") as resp:
            return await resp.json() if resp.status == 503 else None

    body = await eventually(unhealthy, timeout=15)
    assert body["status"] == "unhealthy" and body["store"].startswith("unreachable")


async def test_secrets_never_reach_the_logs(
        sqlite_url, start_gateway, http: aiohttp.ClientSession,
        caplog: pytest.LogCaptureFixture) -> None:
    password = "voipms-pass-7f3a9c"
    fake = FakeVoipms(username="me@example.com", api_password="the-real-one")
    carrier = start_server(fake.app)
    caplog.set_level(logging.DEBUG)
    try:
        gw = start_gateway(make_settings(sqlite_url, [SANDBOX, {
            "name": "home", "carrier": "voipms", "numbers": ["+15145550100"],
            "settings": {"base_url": carrier.url, "username": "me@example.com",
                         "api_password": password}}]))
        # A send the carrier refuses for bad credentials, a rejected and a good webhook.
        _, sent = await gw.send(http, {"from": "+15145550100", "to": "+15145550111",
                                       "text": "x"})
        failed = await gw.wait_status(http, sent["id"], {"failed"})
        assert failed["error"]["code"] == "invalid_credentials"
        assert password not in str(failed)
        async with http.get(f"{gw.url}/v1/carriers/home/wrong-token/inbound",
                            params={"to": "5145550100", "from": "5145550111", "id": "1",
                                    "message": "x"}) as resp:
            assert resp.status == 403
        async with http.get(f"{gw.url}{gw.inbound_path('home')}",
                            params={"to": "5145550100", "from": "5145550111", "id": "2",
                                    "message": "y"}) as resp:
            assert await resp.text() == "ok"
        await eventually(lambda: any("received" in r.getMessage() for r in caplog.records))
    finally:
        carrier.stop()
    logged = "\n".join(r.getMessage() + str(r.exc_info or "") for r in caplog.records)
    assert "invalid_credentials" in logged or "failed" in logged  # the failure was logged
    for secret in (password, gw.api_key, gw.tokens["home"], gw.tokens["sandbox"]):
        assert secret not in logged


async def test_healthz_is_503_when_the_worker_has_stopped(
        sqlite_url, start_gateway, http: aiohttp.ClientSession) -> None:
    gw = start_gateway(make_settings(sqlite_url, [SANDBOX]))
    async with http.get(f"{gw.url}/healthz") as resp:
        assert resp.status == 200
    task = gw.runtime.outbox._task  # the worker loop, as a crash would end it
    assert task is not None
    task.get_loop().call_soon_threadsafe(task.cancel)

    async def unhealthy() -> dict | None:
        async with http.get(f"{gw.url}/healthz") as resp:
            return await resp.json() if resp.status == 503 else None

    assert (await eventually(unhealthy, timeout=10))["worker"] is False

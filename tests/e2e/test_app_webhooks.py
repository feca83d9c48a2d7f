"""App webhooks: signed per Standard Webhooks, retried with backoff, failed after the last try."""

from __future__ import annotations

import json

import aiohttp
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from smsbridge.testing.server import start_server
from tests.conftest import eventually, make_settings
from tests.receiver import WebhookReceiver

SANDBOX = {"name": "sandbox", "carrier": "sandbox", "numbers": ["+15555550100"]}
SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"


async def _inbound(gw, http: aiohttp.ClientSession, carrier_id: str, text: str) -> None:
    async with http.post(f"{gw.url}{gw.inbound_path('sandbox')}", json={
            "id": carrier_id, "from": "+15145550111", "to": "+15555550100", "text": text}) as r:
        assert r.status == 200, await r.text()


async def test_webhook_is_retried_until_the_app_answers_2xx(
        sqlite_url, start_gateway, http: aiohttp.ClientSession) -> None:
    receiver = WebhookReceiver(fail_first=2, fail_status=500)
    app_server = start_server(receiver.app)
    try:
        gw = start_gateway(make_settings(sqlite_url, [SANDBOX], webhooks=[{
            "url": f"{app_server.url}/hook", "secret": SECRET,
            "events": ["message.received"]}]))
        await _inbound(gw, http, "in-1", "Garage door open")
        await eventually(lambda: len(receiver.received) >= 3)
        assert [r.answered for r in receiver.received[:3]] == [500, 500, 200]
        # The same event each time: same webhook-id and body, a fresh valid signature.
        ids = {r.headers["webhook-id"] for r in receiver.received}
        bodies = {r.body for r in receiver.received}
        assert len(ids) == 1 and len(bodies) == 1
        for hit in receiver.received:
            Webhook(SECRET).verify(hit.body, hit.headers)

        async with http.get(f"{gw.url}/v1/webhook-deliveries", headers=gw.auth) as resp:
            rows = (await resp.json())["data"]
        assert rows[0]["status"] == "delivered" and rows[0]["attempts"] == 3
    finally:
        app_server.stop()


async def test_webhook_is_marked_failed_after_the_last_try(
        sqlite_url, start_gateway, http: aiohttp.ClientSession) -> None:
    receiver = WebhookReceiver(fail_first=100, fail_status=503)
    app_server = start_server(receiver.app)
    try:
        gw = start_gateway(make_settings(sqlite_url, [SANDBOX], webhooks=[{
            "url": f"{app_server.url}/hook", "secret": SECRET, "max_attempts": 3,
            "events": ["message.received"]}]))
        await _inbound(gw, http, "in-2", "Water leak")

        async def failed_rows() -> list[dict]:
            async with http.get(f"{gw.url}/v1/webhook-deliveries", params={"status": "failed"},
                                headers=gw.auth) as resp:
                return (await resp.json())["data"]

        rows = await eventually(failed_rows)
        assert rows[0]["attempts"] == 3
        assert "HTTP 503" in rows[0]["last_error"] and "gave up after 3" in rows[0]["last_error"]
        assert len(receiver.received) == 3
    finally:
        app_server.stop()


async def test_a_tampered_event_fails_verification(
        sqlite_url, start_gateway, http: aiohttp.ClientSession) -> None:
    receiver = WebhookReceiver()
    app_server = start_server(receiver.app)
    try:
        gw = start_gateway(make_settings(sqlite_url, [SANDBOX], webhooks=[{
            "url": f"{app_server.url}/hook", "secret": SECRET}]))
        await _inbound(gw, http, "in-3", "DISARM JF")
        await eventually(lambda: receiver.received)
        hit = receiver.received[0]
        event = json.loads(hit.body)
        assert event["type"] == "message.received" and event["data"]["text"] == "DISARM JF"
        with pytest.raises(WebhookVerificationError):
            Webhook(SECRET).verify(hit.body.replace(b"DISARM", b"ARM"), hit.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook("whsec_" + "A" * 32).verify(hit.body, hit.headers)
    finally:
        app_server.stop()

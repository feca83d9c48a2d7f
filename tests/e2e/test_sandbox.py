"""The sandbox carrier end to end: send, delivery receipt, inbound, app webhook, over real HTTP."""

from __future__ import annotations

import json

import aiohttp
from standardwebhooks import Webhook

from smsbridge.testing.server import start_server
from tests.conftest import eventually, make_settings
from tests.receiver import WebhookReceiver

SANDBOX = {"name": "sandbox", "carrier": "sandbox", "numbers": ["+15555550100"]}
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


async def test_send_moves_to_delivered_and_receive_reaches_the_app(
        sqlite_url, start_gateway, http: aiohttp.ClientSession) -> None:
    receiver = WebhookReceiver()
    app_server = start_server(receiver.app)
    try:
        gw = start_gateway(make_settings(sqlite_url, [SANDBOX], webhooks=[{
            "url": f"{app_server.url}/hook", "secret": SECRET,
            "events": ["message.received", "message.status"]}]))

        status, sent = await gw.send(http, {"from": "+15555550100", "to": "5145550111",
                                            "text": "Porch motion"})
        assert status == 202
        assert sent["status"] == "queued" and sent["to"] == "+15145550111"
        delivered = await gw.wait_status(http, sent["id"], {"delivered"})
        assert delivered["carrier_message_id"].startswith("sbx-")
        assert delivered["attempts"] == 1

        async with http.post(f"{gw.url}{gw.inbound_path('sandbox')}", json={
                "id": "sbx-in-1", "from": "+15145550111", "to": "+15555550100",
                "text": "ARM SV"}) as resp:
            assert resp.status == 200
        inbound = await gw.list_messages(http, direction="inbound")
        assert [m["text"] for m in inbound["data"]] == ["ARM SV"]

        def received_event() -> list[dict]:
            return [json.loads(r.body) for r in receiver.received
                    if json.loads(r.body)["type"] == "message.received"]

        events = await eventually(received_event)
        assert events[0]["data"]["text"] == "ARM SV"
        assert events[0]["data"]["from"] == "+15145550111"
        # Any Standard Webhooks library accepts the signature.
        hit = next(r for r in receiver.received if b"message.received" in r.body)
        verified = Webhook(SECRET).verify(hit.body, hit.headers)
        assert verified["data"]["id"] == inbound["data"][0]["id"]

        def status_events() -> list[str] | None:
            got = [json.loads(r.body)["data"]["status"] for r in receiver.received
                   if b'"message.status"' in r.body]
            return got if len(got) >= 2 else None

        # Deliveries run concurrently, so the two may arrive in either order.
        assert sorted(await eventually(status_events)) == ["delivered", "sent"]
    finally:
        app_server.stop()


async def test_sandbox_failure_rate_fails_with_the_carrier_reason(
        sqlite_url, start_gateway, http: aiohttp.ClientSession) -> None:
    gw = start_gateway(make_settings(sqlite_url, [{
        **SANDBOX, "settings": {"failure_rate": 1.0}}]))
    _, sent = await gw.send(http, {"from": "+15555550100", "to": "+15145550111", "text": "x"})
    failed = await gw.wait_status(http, sent["id"], {"failed"})
    assert failed["error"] == {"code": "sandbox_failure",
                               "reason": "sandbox: simulated carrier failure"}
    assert failed["attempts"] == 1  # permanent: never retried


async def test_retryable_failures_back_off_then_fail_after_the_last_attempt(
        sqlite_url, start_gateway, http: aiohttp.ClientSession) -> None:
    gw = start_gateway(make_settings(
        sqlite_url, [{**SANDBOX, "settings": {"failure_rate": 1.0, "failure_retryable": True}}],
        worker={"max_attempts": 3}))
    _, sent = await gw.send(http, {"from": "+15555550100", "to": "+15145550111", "text": "x"})
    failed = await gw.wait_status(http, sent["id"], {"failed"})
    assert failed["attempts"] == 3
    assert "gave up after 3 attempts" in failed["error"]["reason"]

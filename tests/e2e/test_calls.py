"""Voice-call alerts through the API, the outbox and the sandbox carrier, over real HTTP.

POST /v1/calls -> stored -> 202 -> the worker places the call -> GET /v1/calls/{id}, with
call.* events signed to an app webhook; on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from smsbridge.testing.server import RunningServer
from tests.conftest import eventually, make_settings
from tests.e2e.calls import (
    CALL_EVENTS,
    get_json,
    post_call,
    signed_events,
    stored,
    wait_call,
    webhook_to,
)
from tests.harness import GatewayHarness
from tests.receiver import WebhookReceiver

OURS = "+15555550100"
CALLEE = "+15145550111"


def sandbox(**settings: Any) -> dict[str, Any]:
    """A sandbox connection owning OURS."""
    return {"name": "sandbox", "carrier": "sandbox", "numbers": [OURS], "settings": settings}


def with_hook(app_server: RunningServer, events: list[str] = CALL_EVENTS) -> dict[str, Any]:
    """make_settings options that send ``events`` to the receiver."""
    return webhook_to(f"{app_server.url}/hook", events=events)


# ------------------------------------------------------------------ the happy path


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_a_call_is_queued_placed_and_completed_with_signed_events(
        store: str, request: pytest.FixtureRequest, start_gateway: Any,
        app_server: RunningServer, receiver: WebhookReceiver,
        http: aiohttp.ClientSession) -> None:
    database = request.getfixturevalue("sqlite_url" if store == "sqlite" else "pg_url")
    gw = start_gateway(make_settings(database, [sandbox()], **with_hook(app_server)))

    status, headers, queued = await post_call(gw, http, {
        "from": OURS, "to": "514 555 0111", "say": "Alarm: motion in the garage",
        "voice": "Polly.Joanna", "language": "en-US", "repeat": 2})
    assert status == 202, queued
    assert queued["id"].startswith("call_")
    assert headers["Location"] == f"/v1/calls/{queued['id']}"
    assert (queued["from"], queued["to"], queued["say"]) == (
        OURS, CALLEE, "Alarm: motion in the garage")
    assert (queued["voice"], queued["language"], queued["repeat"]) == ("Polly.Joanna", "en-US", 2)
    assert queued["status"] == "queued" and queued["answer"] is None
    assert (queued["connection"], queued["carrier"]) == ("sandbox", "sandbox")

    done = await wait_call(gw, http, queued["id"], {"completed", "failed"})
    assert done["status"] == "completed", done["error"]
    assert done["answer"] == "answered"
    assert done["carrier_call_id"].startswith("sbx-call-")
    assert done["attempts"] == 1 and done["error"] is None

    await eventually(lambda: len(receiver.received) >= 2)
    events = signed_events(receiver)
    assert [e["type"] for e in events] == ["call.queued", "call.completed"]
    assert events[0]["data"]["status"] == "queued"
    assert events[1]["data"]["id"] == queued["id"]
    assert events[1]["data"]["answer"] == "answered"
    assert events[1]["data"]["say"] == "Alarm: motion in the garage"

    calls, messages = await stored(gw, http)
    assert [c["id"] for c in calls] == [queued["id"]]
    assert messages == []


async def test_repeat_voice_and_language_default_to_the_carriers(
        sqlite_url: str, start_gateway: Any, http: aiohttp.ClientSession) -> None:
    gw = start_gateway(make_settings(sqlite_url, [sandbox()]))
    status, _, queued = await post_call(gw, http, {"from": OURS, "to": CALLEE, "say": "Smoke"})
    assert status == 202, queued
    assert (queued["voice"], queued["language"], queued["repeat"]) == (None, None, 1)


# ------------------------------------------------------------------ idempotency


async def test_idempotency_key_replays_the_call_and_refuses_a_different_one(
        sqlite_url: str, start_gateway: Any, http: aiohttp.ClientSession) -> None:
    gw = start_gateway(make_settings(sqlite_url, [sandbox()]))
    body = {"from": OURS, "to": CALLEE, "say": "Water leak in the basement"}
    key = {"Idempotency-Key": "leak-2026-03-01"}

    first_status, first_headers, first = await post_call(gw, http, body, key)
    again_status, again_headers, again = await post_call(gw, http, body, key)
    assert (first_status, again_status) == (202, 202)
    assert again["id"] == first["id"]
    assert "Idempotent-Replayed" not in first_headers
    assert again_headers["Idempotent-Replayed"] == "true"

    status, _, problem = await post_call(gw, http, {**body, "say": "Fire in the kitchen"}, key)
    assert status == 422
    assert problem["errors"][0]["field"] == "Idempotency-Key"
    assert first["id"] in problem["errors"][0]["reason"]

    # The key belongs to the call: a message with it is a different request too.
    status, problem = await gw.send(http, {"from": OURS, "to": CALLEE, "text": "leak"}, key)
    assert status == 422 and problem["errors"][0]["field"] == "Idempotency-Key"

    calls, messages = await stored(gw, http)
    assert [c["id"] for c in calls] == [first["id"]] and messages == []


# ------------------------------------------------------------------ reading


async def test_calls_and_messages_are_apart(sqlite_url: str, start_gateway: Any,
                                            http: aiohttp.ClientSession) -> None:
    gw = start_gateway(make_settings(sqlite_url, [sandbox()]))
    _, _, call = await post_call(gw, http, {"from": OURS, "to": CALLEE, "say": "Door open"})
    status, message = await gw.send(http, {"from": OURS, "to": CALLEE, "text": "Door open"})
    assert status == 202

    assert (await get_json(gw, http, f"/v1/calls/{call['id']}"))[1]["say"] == "Door open"
    status, problem = await get_json(gw, http, f"/v1/calls/{message['id']}")
    assert status == 404 and problem["title"] == "Not found"
    status, problem = await get_json(gw, http, f"/v1/messages/{call['id']}")
    assert status == 404
    status, problem = await get_json(gw, http, "/v1/calls/call_0123456789abcdef0123456789abcdef")
    assert status == 404 and "call_0123456789abcdef" in problem["detail"]

    calls, messages = await stored(gw, http)
    assert [c["id"] for c in calls] == [call["id"]]
    assert [m["id"] for m in messages] == [message["id"]]


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize(("change", "field", "reason"), [
    ({"say": ""}, "say", "must not be empty"),
    ({"say": "   "}, "say", "must not be empty"),
    ({"say": "x" * 1001}, "say", "at most 1000"),
    ({"say": "bell\x07"}, "say", "U+0007"),
    ({"repeat": 0}, "repeat", "1 to 10"),
    ({"repeat": 11}, "repeat", "1 to 10"),
    ({"voice": "Polly Joanna"}, "voice", "letters, digits"),
    ({"voice": "<Say>"}, "voice", "letters, digits"),
    ({"language": "e" * 65}, "language", "1 to 64"),
    ({"to": "not a number"}, "to", ""),
    ({"from": "+15145550199"}, "from", "no connection owns"),
    ({"connection": "elsewhere"}, "connection", "no connection named"),
    ({"say": None}, "say", ""),
    ({"ring": 3}, "ring", "not a known field"),
])
async def test_a_bad_request_is_refused_naming_the_field_and_nothing_is_stored(
        change: dict[str, Any], field: str, reason: str, sqlite_url: str, start_gateway: Any,
        http: aiohttp.ClientSession) -> None:
    gw = start_gateway(make_settings(sqlite_url, [sandbox()]))
    body = {"from": OURS, "to": CALLEE, "say": "Alarm", **change}
    status, _, problem = await post_call(gw, http, body)
    assert status == 422, problem
    (error,) = problem["errors"]
    assert error["field"] == field
    assert reason in error["reason"]
    assert await stored(gw, http) == ([], [])


async def test_line_breaks_in_the_text_are_kept(sqlite_url: str, start_gateway: Any,
                                                http: aiohttp.ClientSession) -> None:
    gw = start_gateway(make_settings(sqlite_url, [sandbox()]))
    status, _, queued = await post_call(gw, http, {"from": OURS, "to": CALLEE,
                                                   "say": "Alarm.\nZone 3:\tgarage"})
    assert status == 202, queued
    assert queued["say"] == "Alarm.\nZone 3:\tgarage"


async def test_a_carrier_without_calls_is_named_and_nothing_is_stored(
        sqlite_url: str, start_gateway: Any, http: aiohttp.ClientSession) -> None:
    voipms = {"name": "office", "carrier": "voipms", "numbers": ["+15145550100"],
              "settings": {"username": "me@example.com", "api_password": "secret-api-pw"}}
    gw = start_gateway(make_settings(sqlite_url, [sandbox(), voipms]))
    for body, field in (({"from": "+15145550100"}, "from"),
                        ({"from": "+15145550100", "connection": "office"}, "connection")):
        status, _, problem = await post_call(gw, http, {"to": CALLEE, "say": "Alarm", **body})
        assert status == 422, problem
        (error,) = problem["errors"]
        assert error["field"] == field
        assert "voipms" in error["reason"] and "'office'" in error["reason"]
        assert "cannot place voice calls" in error["reason"]
    assert await stored(gw, http) == ([], [])


# ------------------------------------------------------------------ failures and receipts


async def test_retryable_failures_are_retried_then_the_call_fails_with_an_event(
        sqlite_url: str, start_gateway: Any, app_server: RunningServer,
        receiver: WebhookReceiver, http: aiohttp.ClientSession) -> None:
    gw = start_gateway(make_settings(
        sqlite_url, [sandbox(failure_rate=1.0, failure_retryable=True)],
        worker={"max_attempts": 3}, **with_hook(app_server, ["call.failed"])))
    _, _, queued = await post_call(gw, http, {"from": OURS, "to": CALLEE, "say": "Alarm"})
    failed = await wait_call(gw, http, queued["id"], {"failed"})
    assert failed["attempts"] == 3
    assert failed["error"]["code"] == "sandbox_failure"
    assert "gave up after 3 attempts" in failed["error"]["reason"]
    assert failed["answer"] is None  # the phone never rang

    await eventually(lambda: receiver.received)
    (event,) = signed_events(receiver)
    assert event["type"] == "call.failed" and event["data"]["id"] == queued["id"]


async def test_a_receipt_says_how_a_placed_call_ended(
        sqlite_url: str, start_gateway: Any, app_server: RunningServer,
        receiver: WebhookReceiver, http: aiohttp.ClientSession) -> None:
    gw = start_gateway(make_settings(sqlite_url, [sandbox(delivery_receipts=False)],
                                     **with_hook(app_server)))
    _, _, queued = await post_call(gw, http, {"from": OURS, "to": CALLEE, "say": "Alarm"})
    placed = await wait_call(gw, http, queued["id"], {"placed"})
    assert placed["answer"] is None

    async with http.post(f"{gw.url}{gw.status_path('sandbox')}", json={
            "id": placed["carrier_call_id"], "status": "failed",
            "error_code": "no-answer", "error_reason": "nobody answered"}) as resp:
        assert resp.status == 200, await resp.text()
    failed = await wait_call(gw, http, queued["id"], {"failed"})
    assert failed["answer"] == "no-answer"
    assert failed["error"] == {"code": "no-answer", "reason": "nobody answered"}

    await eventually(lambda: len(receiver.received) >= 2)
    events = signed_events(receiver)
    # No event while the phone rings: the app hears of the call when queued and when ended.
    assert [e["type"] for e in events] == ["call.queued", "call.failed"]
    assert events[1]["data"]["answer"] == "no-answer"


# ------------------------------------------------------------------ the answer URL


def answer_path(gw: GatewayHarness, connection: str, call_id: str, token: str | None = None
                ) -> str:
    """Where a carrier that fetches its call instructions gets them."""
    return (f"/v1/carriers/{connection}/{token or gw.tokens[connection]}/calls/{call_id}"
            "/answer")


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_the_answer_url_serves_the_calls_instructions(
        method: str, sqlite_url: str, start_gateway: Any, http: aiohttp.ClientSession) -> None:
    gw = start_gateway(make_settings(sqlite_url, [sandbox()]))
    _, _, call = await post_call(gw, http, {"from": OURS, "to": CALLEE, "say": "Gate <open>",
                                            "language": "fr-CA", "repeat": 3})
    async with http.request(method, f"{gw.url}{answer_path(gw, 'sandbox', call['id'])}",
                            data=b"CallUUID=abc") as resp:
        assert resp.status == 200, await resp.text()
        assert resp.content_type == "application/json"
        assert await resp.json() == {"say": "Gate <open>", "voice": None, "language": "fr-CA",
                                     "repeat": 3}


async def test_the_answer_url_refuses_a_wrong_token_and_unknown_calls(
        sqlite_url: str, start_gateway: Any, http: aiohttp.ClientSession) -> None:
    other = {"name": "other", "carrier": "sandbox", "numbers": ["+15555550101"]}
    gw = start_gateway(make_settings(sqlite_url, [sandbox(), other]))
    _, _, call = await post_call(gw, http, {"from": OURS, "to": CALLEE, "say": "Alarm"})
    status, message = await gw.send(http, {"from": OURS, "to": CALLEE, "text": "Alarm"})
    assert status == 202

    async def fetch(path: str) -> tuple[int, dict[str, Any]]:
        async with http.post(f"{gw.url}{path}") as resp:
            return resp.status, await resp.json(content_type=None)

    status, problem = await fetch(answer_path(gw, "sandbox", call["id"], token="x" * 43))
    assert status == 403 and problem["title"] == "Webhook rejected"
    for path in (answer_path(gw, "sandbox", "call_" + "0" * 32),
                 answer_path(gw, "sandbox", message["id"]),
                 # Another connection's token does not open this connection's calls.
                 answer_path(gw, "other", call["id"])):
        status, problem = await fetch(path)
        assert status == 404, (path, problem)
        assert problem["title"] == "Not found"

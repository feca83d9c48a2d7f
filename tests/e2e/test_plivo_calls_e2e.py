"""Plivo voice-call alerts end to end: API -> outbox -> the fake's Call API -> answer URL -> hangup.

The fake Plivo fetches the gateway's answer URL when the callee picks up, as Plivo does, and
plays the <Speak> it gets; its answer request and hangup callback are V3-signed with the
account's Auth Token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from smsbridge.testing.fake_plivo import FakePlivo
from smsbridge.testing.server import RunningServer
from tests.e2e.calls import (
    APP_SECRET,
    call_gateway_starter,
    event_types,
    queue_call,
    signed_events,
    stored,
    wait_call,
)
from tests.e2e.carriers import OUR_NUMBER, PEER, connection
from tests.harness import GatewayHarness
from tests.receiver import WebhookReceiver

ALARM = 'Alarm <Front> & "back"'
ALARM_XML = (b'<Response><Speak voice="WOMAN" language="en-GB" loop="2">'
             b'Alarm &lt;Front&gt; &amp; "back"</Speak></Response>')


@pytest.fixture
def fake() -> FakePlivo:
    return FakePlivo()


@pytest.fixture
def plivo_gateway(sqlite_url: str, start_gateway: Callable[..., GatewayHarness],
                  fake_server: RunningServer, fake: FakePlivo, app_server: RunningServer
                  ) -> Callable[..., GatewayHarness]:
    """Start a gateway with one Plivo connection at the fake and the app webhook receiver."""
    return call_gateway_starter(start_gateway, sqlite_url, connection("plivo", {
        "base_url": fake_server.url, "auth_id": fake.auth_id, "auth_token": fake.auth_token}),
        f"{app_server.url}/hook")


async def call_and_wait_placed(gw: GatewayHarness, http: aiohttp.ClientSession
                               ) -> dict[str, Any]:
    """Queue the alarm call to PEER and wait until Plivo took it (or it failed)."""
    queued = await queue_call(gw, http, {"from": OUR_NUMBER, "to": PEER, "say": ALARM,
                                         "voice": "WOMAN", "language": "en-GB", "repeat": 2})
    return await wait_call(gw, http, queued["id"], {"placed", "failed"})


def answer_url(gw: GatewayHarness, call_id: str) -> str:
    return f"{gw.url}/v1/carriers/plivo/{gw.tokens['plivo']}/calls/{call_id}/answer"


# ------------------------------------------------------------------ placing and answering


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_plivo_fetches_the_exact_speak_xml_and_an_answered_call_completes(
        store: str, request: pytest.FixtureRequest, plivo_gateway, fake: FakePlivo,
        receiver: WebhookReceiver, http: aiohttp.ClientSession) -> None:
    database = request.getfixturevalue("sqlite_url" if store == "sqlite" else "pg_url")
    gw = plivo_gateway(database)
    placed = await call_and_wait_placed(gw, http)
    assert placed["status"] == "placed", placed["error"]

    (api_request,), (call,) = fake.requests, fake.calls
    assert api_request.auth_ok and api_request.path == f"/v1/Account/{fake.auth_id}/Call/"
    assert api_request.body == {
        "from": OUR_NUMBER.lstrip("+"), "to": PEER.lstrip("+"),
        "answer_url": answer_url(gw, placed["id"]), "answer_method": "POST",
        "hangup_url": f"{gw.url}{gw.status_path('plivo')}", "hangup_method": "POST"}
    assert placed["carrier_call_id"] == call.request_uuid

    status, headers, body = await fake.answer(call)
    assert status == 200, body
    assert headers["content-type"].startswith("application/xml")
    assert body.endswith(ALARM_XML)
    assert call.spoken == [{"voice": "WOMAN", "language": "en-GB", "loop": "2", "text": ALARM}]

    status, _, _ = await fake.hang_up(call, "completed")
    assert status == 200
    done = await wait_call(gw, http, placed["id"], {"completed", "failed"})
    assert (done["status"], done["answer"], done["error"]) == ("completed", "answered", None)

    assert await event_types(receiver, 2) == ["call.queued", "call.completed"]
    completed = signed_events(receiver, APP_SECRET)[1]["data"]
    assert (completed["id"], completed["answer"]) == (placed["id"], "answered")
    assert (await stored(gw, http))[1] == []  # no message was made of the call


@pytest.mark.parametrize(("ending", "answer"), [("busy", "busy"), ("no-answer", "no-answer"),
                                                ("timeout", "no-answer")])
async def test_a_busy_or_unanswered_phone_fails_the_call_with_that_answer(
        ending: str, answer: str, plivo_gateway, fake: FakePlivo, receiver: WebhookReceiver,
        http: aiohttp.ClientSession) -> None:
    gw = plivo_gateway()
    placed = await call_and_wait_placed(gw, http)
    status, _, _ = await fake.hang_up(fake.calls[0], ending)
    assert status == 200
    failed = await wait_call(gw, http, placed["id"], {"failed", "completed"})
    assert (failed["status"], failed["answer"], failed["error"]["code"]) == (
        "failed", answer, answer)
    assert await event_types(receiver, 2) == ["call.queued", "call.failed"]
    assert signed_events(receiver, APP_SECRET)[1]["data"]["answer"] == answer


async def test_forged_answer_fetches_and_hangups_are_refused_and_change_nothing(
        plivo_gateway, fake: FakePlivo, receiver: WebhookReceiver,
        http: aiohttp.ClientSession) -> None:
    gw = plivo_gateway()
    placed = await call_and_wait_placed(gw, http)
    call = fake.calls[0]

    status, headers, body = await fake.answer(call, bad_signature=True)
    assert status == 403 and headers["content-type"].startswith("application/problem+json")
    assert b"Front" not in body and call.spoken == []
    status, _, _ = await fake.answer(call, signed=False)
    assert status == 403
    for how in ({"bad_signature": True}, {"signed": False}):
        status, _, _ = await fake.hang_up(call, "busy", **how)
        assert status == 403
    assert (await wait_call(gw, http, placed["id"], {"placed"}))["answer"] is None
    assert await event_types(receiver, 1) == ["call.queued"]

    # The genuine hangup that follows is applied.
    status, _, _ = await fake.hang_up(call, "busy")
    assert status == 200
    assert (await wait_call(gw, http, placed["id"], {"failed"}))["answer"] == "busy"


async def test_an_answer_url_of_another_call_id_is_not_found(
        plivo_gateway, fake: FakePlivo, http: aiohttp.ClientSession) -> None:
    gw = plivo_gateway()
    await call_and_wait_placed(gw, http)
    call = fake.calls[0]
    call.answer_url = answer_url(gw, "call_0000000000000000000000000000dead")
    status, _, body = await fake.answer(call)
    assert status == 404 and b"Front" not in body


# ------------------------------------------------------------------ carrier errors


async def test_a_5xx_from_the_call_api_is_retried(plivo_gateway, fake: FakePlivo,
                                                  http: aiohttp.ClientSession) -> None:
    gw = plivo_gateway()
    fake.fail_next(503, "service unavailable")
    placed = await call_and_wait_placed(gw, http)
    assert placed["status"] == "placed", placed["error"]
    assert placed["attempts"] == 2
    assert len(fake.requests) == 2 and len(fake.calls) == 1
    assert placed["carrier_call_id"] == fake.calls[0].request_uuid


async def test_a_permanent_refusal_fails_the_call_at_once(
        plivo_gateway, fake: FakePlivo, receiver: WebhookReceiver,
        http: aiohttp.ClientSession) -> None:
    gw = plivo_gateway()
    fake.fail_next(400, "invalid 'to' parameter")
    failed = await call_and_wait_placed(gw, http)
    assert (failed["status"], failed["attempts"]) == ("failed", 1)
    assert failed["error"]["code"] == "http_400"
    assert "invalid 'to' parameter" in failed["error"]["reason"]
    assert failed["answer"] is None  # the phone never rang
    assert await event_types(receiver, 2) == ["call.queued", "call.failed"]
    assert len(fake.requests) == 1 and fake.calls == []

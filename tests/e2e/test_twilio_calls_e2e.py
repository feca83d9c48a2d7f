"""Twilio voice-call alerts end to end: API -> outbox -> the fake's Calls API -> signed callbacks.

The fake Twilio reads the TwiML it gets; its call-status callbacks are signed with the
account's Auth Token and posted to the status URL the gateway gave with the call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import pytest

from smsbridge.testing.fake_signalwire import FakeSignalWire
from smsbridge.testing.fake_twilio import FakeTwilio
from smsbridge.testing.server import RunningServer
from tests.e2e.calls import (
    call_gateway_starter,
    event_types,
    queue_call,
    signed_events,
    stored,
    wait_call,
)
from tests.e2e.carriers import OUR_NUMBER, PEER, connection, gateway_starter, serve_fake
from tests.harness import GatewayHarness
from tests.receiver import WebhookReceiver

ALARM = 'Alarm <Front> & "back"'
ALARM_TWIML = ('<Response><Say voice="Polly.Joanna" language="en-US" loop="2">'
               'Alarm &lt;Front&gt; &amp; "back"</Say></Response>')


@pytest.fixture
def fake() -> FakeTwilio:
    return FakeTwilio()


@pytest.fixture
def twilio_gateway(sqlite_url: str, start_gateway: Callable[..., GatewayHarness],
                   fake_server: RunningServer, fake: FakeTwilio, app_server: RunningServer
                   ) -> Callable[..., GatewayHarness]:
    """Start a gateway with one Twilio connection at the fake and the app webhook receiver."""
    return call_gateway_starter(start_gateway, sqlite_url, connection("twilio", {
        "base_url": fake_server.url, "account_sid": fake.account_sid,
        "auth_token": fake.auth_token}), f"{app_server.url}/hook")


async def call_and_wait_placed(gw: GatewayHarness, http: aiohttp.ClientSession,
                               say: str = ALARM) -> dict[str, Any]:
    """Queue a call to PEER and wait until the carrier took it (or it failed)."""
    queued = await queue_call(gw, http, {"from": OUR_NUMBER, "to": PEER, "say": say,
                                         "voice": "Polly.Joanna", "language": "en-US",
                                         "repeat": 2})
    return await wait_call(gw, http, queued["id"], {"placed", "failed"})


# ------------------------------------------------------------------ placing and answering


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_the_call_carries_the_exact_twiml_and_an_answered_call_completes(
        store: str, request: pytest.FixtureRequest, twilio_gateway, fake: FakeTwilio,
        receiver: WebhookReceiver, http: aiohttp.ClientSession) -> None:
    database = request.getfixturevalue("sqlite_url" if store == "sqlite" else "pg_url")
    gw = twilio_gateway(database)
    placed = await call_and_wait_placed(gw, http)
    assert placed["status"] == "placed", placed["error"]

    (call,) = fake.calls
    (api_request,) = fake.requests
    assert api_request.auth_ok
    assert api_request.path == f"/2010-04-01/Accounts/{fake.account_sid}/Calls.json"
    assert (call.to, call.from_) == (PEER, OUR_NUMBER)
    assert call.twiml == ALARM_TWIML
    assert call.say == ALARM  # what the phone speaks, read back by an XML parser
    assert call.say_attributes == {"voice": "Polly.Joanna", "language": "en-US", "loop": "2"}
    assert call.status_callback == f"{gw.url}{gw.status_path('twilio')}"
    assert call.status_callback_events == ["initiated", "ringing", "answered", "completed"]
    assert call.status_callback_method == "POST"
    assert placed["carrier_call_id"] == call.sid and call.sid.startswith("CA")

    answers = await fake.end_call(call, "completed")
    assert [status for status, _, _ in answers] == [200, 200, 200]
    done = await wait_call(gw, http, placed["id"], {"completed", "failed"})
    assert (done["status"], done["answer"], done["error"]) == ("completed", "answered", None)

    assert await event_types(receiver, 2) == ["call.queued", "call.completed"]
    completed = signed_events(receiver)[1]["data"]
    assert (completed["id"], completed["answer"]) == (placed["id"], "answered")
    assert (await stored(gw, http))[1] == []  # no message was made of the call


@pytest.mark.parametrize("ending", ["busy", "no-answer"])
async def test_a_busy_or_unanswered_phone_fails_the_call_with_that_answer(
        ending: str, twilio_gateway, fake: FakeTwilio, receiver: WebhookReceiver,
        http: aiohttp.ClientSession) -> None:
    gw = twilio_gateway()
    placed = await call_and_wait_placed(gw, http)
    answers = await fake.end_call(fake.calls[0], ending)
    assert [status for status, _, _ in answers] == [200, 200]
    failed = await wait_call(gw, http, placed["id"], {"failed", "completed"})
    assert (failed["status"], failed["answer"]) == ("failed", ending)
    assert failed["error"]["code"] == ending
    assert await event_types(receiver, 2) == ["call.queued", "call.failed"]
    assert signed_events(receiver)[1]["data"]["answer"] == ending


async def test_a_forged_or_unsigned_callback_is_refused_and_changes_nothing(
        twilio_gateway, fake: FakeTwilio, receiver: WebhookReceiver,
        http: aiohttp.ClientSession) -> None:
    gw = twilio_gateway()
    placed = await call_and_wait_placed(gw, http)
    status_url = f"{gw.url}{gw.status_path('twilio')}"
    sid = fake.calls[0].sid

    status, headers, _ = await fake.fire_call_status(status_url, sid, "busy",
                                                     bad_signature=True)
    assert status == 403 and headers["content-type"].startswith("application/problem+json")
    async with http.post(status_url, data={"CallSid": sid, "CallStatus": "completed",
                                           "AccountSid": fake.account_sid}) as resp:
        assert resp.status == 403
    assert (await wait_call(gw, http, placed["id"], {"placed"}))["answer"] is None
    assert await event_types(receiver, 1) == ["call.queued"]

    # The genuine callback that follows is applied.
    status, _, _ = await fake.fire_call_status(status_url, sid, "busy")
    assert status == 200
    assert (await wait_call(gw, http, placed["id"], {"failed"}))["answer"] == "busy"


# ------------------------------------------------------------------ carrier errors


async def test_a_5xx_from_the_calls_api_is_retried(
        twilio_gateway, fake: FakeTwilio, http: aiohttp.ClientSession) -> None:
    gw = twilio_gateway()
    fake.fail_next(20500, 500)
    placed = await call_and_wait_placed(gw, http)
    assert placed["status"] == "placed", placed["error"]
    assert placed["attempts"] == 2
    assert len(fake.requests) == 2 and len(fake.calls) == 1
    assert placed["carrier_call_id"] == fake.calls[0].sid


async def test_a_permanent_refusal_fails_the_call_at_once(
        twilio_gateway, fake: FakeTwilio, receiver: WebhookReceiver,
        http: aiohttp.ClientSession) -> None:
    gw = twilio_gateway()
    fake.fail_next(21211, 400)
    failed = await call_and_wait_placed(gw, http)
    assert (failed["status"], failed["attempts"]) == ("failed", 1)
    assert failed["error"]["code"] == "21211"
    assert failed["answer"] is None  # the phone never rang
    assert await event_types(receiver, 2) == ["call.queued", "call.failed"]
    assert len(fake.requests) == 1 and fake.calls == []


# ------------------------------------------------------------------ SignalWire


@pytest.fixture
def signalwire() -> FakeSignalWire:
    return FakeSignalWire()


@pytest.fixture
def signalwire_server(signalwire: FakeSignalWire) -> Iterator[RunningServer]:
    yield from serve_fake(signalwire.app)


async def test_signalwire_places_the_call_at_its_space_and_signs_the_outcome(
        sqlite_url: str, start_gateway: Callable[..., GatewayHarness],
        signalwire: FakeSignalWire, signalwire_server: RunningServer,
        http: aiohttp.ClientSession) -> None:
    gw = gateway_starter(start_gateway, sqlite_url, connection("signalwire", {
        "space": "example.signalwire.com", "base_url": signalwire_server.url,
        "project_id": signalwire.project_id, "api_token": signalwire.auth_token,
        "signing_key": signalwire.signing_key}))()
    queued = await queue_call(gw, http, {"from": OUR_NUMBER, "to": PEER, "say": "Water leak"})
    placed = await wait_call(gw, http, queued["id"], {"placed", "failed"})
    assert placed["status"] == "placed", placed["error"]

    ((api_request,), (call,)) = signalwire.requests, signalwire.calls
    assert api_request.auth_ok
    assert api_request.path == f"/api/laml/2010-04-01/Accounts/{signalwire.project_id}/Calls.json"
    assert call.twiml == "<Response><Say>Water leak</Say></Response>"
    assert placed["carrier_call_id"] == call.sid

    # Signed with the Signing Key in X-SignalWire-Signature, not with the API token.
    answers = await signalwire.end_call(call, "completed")
    assert [status for status, _, _ in answers] == [200, 200, 200]
    done = await wait_call(gw, http, placed["id"], {"completed", "failed"})
    assert done["answer"] == "answered"

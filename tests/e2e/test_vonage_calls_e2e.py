"""Vonage voice-call alerts end to end: API -> outbox -> the fake's Voice API -> signed events.

The gateway authenticates to the fake with an RS256 JWT of a Voice application (the fake holds
its public key); the fake's call events carry an HS256 JWT keyed with the signature secret.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from smsbridge.testing.fake_vonage import FakeVonage, application_key_pair
from smsbridge.testing.server import RunningServer
from tests.e2e.calls import (
    APP_SECRET,
    call_gateway_starter,
    event_types,
    post_call,
    queue_call,
    signed_events,
    stored,
    wait_call,
)
from tests.e2e.carriers import OUR_NUMBER, PEER, connection, gateway_starter
from tests.harness import GatewayHarness
from tests.receiver import WebhookReceiver

SIGNATURE_SECRET = "ahq1Lg3Zq0yVb8pM2nRkT5sWd7fXe9hJ"
APP_ID = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
ALARM = 'Alarm <Front> & "back"'


@pytest.fixture(scope="module")
def application_key() -> tuple[str, str]:
    """The Voice application's key pair (private PEM, public PEM), made at test time."""
    return application_key_pair()


@pytest.fixture
def fake(application_key: tuple[str, str]) -> FakeVonage:
    return FakeVonage(signature_secret=SIGNATURE_SECRET, signature_method="sha256",
                      application_id=APP_ID, application_public_key=application_key[1])


def vonage_settings(fake: FakeVonage, fake_server: RunningServer, **voice: str
                    ) -> dict[str, Any]:
    return {"base_url": fake_server.url, "api_key": fake.api_key, "api_secret": fake.api_secret,
            "signature_secret": SIGNATURE_SECRET, "signature_method": "sha256", **voice}


@pytest.fixture
def vonage_gateway(sqlite_url: str, start_gateway: Callable[..., GatewayHarness],
                   fake_server: RunningServer, fake: FakeVonage, app_server: RunningServer,
                   application_key: tuple[str, str]) -> Callable[..., GatewayHarness]:
    """Start a gateway with one voice-ready Vonage connection at the fake, and the app."""
    return call_gateway_starter(start_gateway, sqlite_url, connection("vonage", vonage_settings(
        fake, fake_server, application_id=APP_ID, private_key=application_key[0])),
        f"{app_server.url}/hook")


async def call_and_wait_placed(gw: GatewayHarness, http: aiohttp.ClientSession
                               ) -> dict[str, Any]:
    """Queue the alarm call to PEER and wait until Vonage took it (or it failed)."""
    queued = await queue_call(gw, http, {"from": OUR_NUMBER, "to": PEER, "say": ALARM,
                                         "voice": "2", "language": "en-GB", "repeat": 3})
    return await wait_call(gw, http, queued["id"], {"placed", "failed"})


# ------------------------------------------------------------------ placing and ending


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_the_call_carries_the_exact_ncco_and_an_answered_call_completes(
        store: str, request: pytest.FixtureRequest, vonage_gateway, fake: FakeVonage,
        receiver: WebhookReceiver, http: aiohttp.ClientSession) -> None:
    database = request.getfixturevalue("sqlite_url" if store == "sqlite" else "pg_url")
    gw = vonage_gateway(database)
    placed = await call_and_wait_placed(gw, http)
    assert placed["status"] == "placed", placed["error"]

    (api_request,), (call,) = fake.requests, fake.calls
    assert api_request.auth_ok and api_request.path == "/v1/calls"
    assert api_request.body == {
        "to": [{"type": "phone", "number": PEER.lstrip("+")}],
        "from": {"type": "phone", "number": OUR_NUMBER.lstrip("+")},
        "ncco": [{"action": "talk", "text": ALARM, "loop": 3, "language": "en-GB",
                  "style": 2}],
        "event_url": [f"{gw.url}{gw.status_path('vonage')}"], "event_method": "POST"}
    assert placed["carrier_call_id"] == call.uuid

    answers = await fake.end_call(call, "completed")
    assert [status for status, _, _ in answers] == [200, 200, 200, 200]
    done = await wait_call(gw, http, placed["id"], {"completed", "failed"})
    assert (done["status"], done["answer"], done["error"]) == ("completed", "answered", None)

    assert await event_types(receiver, 2) == ["call.queued", "call.completed"]
    completed = signed_events(receiver, APP_SECRET)[1]["data"]
    assert (completed["id"], completed["answer"]) == (placed["id"], "answered")
    assert (await stored(gw, http))[1] == []  # no message was made of the call


@pytest.mark.parametrize(("ending", "answer"), [("busy", "busy"), ("timeout", "no-answer"),
                                                ("unanswered", "no-answer")])
async def test_a_busy_or_unanswered_phone_fails_the_call_with_that_answer(
        ending: str, answer: str, vonage_gateway, fake: FakeVonage, receiver: WebhookReceiver,
        http: aiohttp.ClientSession) -> None:
    gw = vonage_gateway()
    placed = await call_and_wait_placed(gw, http)
    answers = await fake.end_call(fake.calls[0], ending)
    assert [status for status, _, _ in answers] == [200, 200, 200]
    failed = await wait_call(gw, http, placed["id"], {"failed", "completed"})
    assert (failed["status"], failed["answer"], failed["error"]["code"]) == (
        "failed", answer, answer)
    assert await event_types(receiver, 2) == ["call.queued", "call.failed"]


async def test_forged_or_unsigned_events_are_refused_and_change_nothing(
        vonage_gateway, fake: FakeVonage, receiver: WebhookReceiver,
        http: aiohttp.ClientSession) -> None:
    gw = vonage_gateway()
    placed = await call_and_wait_placed(gw, http)
    call = fake.calls[0]
    for bad_signature, signed in ((True, True), (False, False)):
        status, headers, _ = await fake.fire_call_event(call, "busy", signed=signed,
                                                        bad_signature=bad_signature)
        assert status == 403 and headers["content-type"].startswith("application/problem+json")
    assert (await wait_call(gw, http, placed["id"], {"placed"}))["answer"] is None
    assert await event_types(receiver, 1) == ["call.queued"]

    # The genuine event that follows is applied.
    status, _, _ = await fake.fire_call_event(call, "busy")
    assert status == 200
    assert (await wait_call(gw, http, placed["id"], {"failed"}))["answer"] == "busy"


async def test_a_connection_without_a_voice_application_refuses_calls_and_stores_nothing(
        sqlite_url: str, start_gateway: Callable[..., GatewayHarness], fake: FakeVonage,
        fake_server: RunningServer, http: aiohttp.ClientSession) -> None:
    gw = gateway_starter(start_gateway, sqlite_url,
                         connection("vonage", vonage_settings(fake, fake_server)))()
    status, _, problem = await post_call(gw, http, {"from": OUR_NUMBER, "to": PEER,
                                                    "say": "Leak"})
    assert status == 422, problem
    assert "vonage" in problem["detail"].lower()
    assert await stored(gw, http) == ([], [])
    assert fake.requests == []


# ------------------------------------------------------------------ carrier errors


async def test_a_5xx_from_the_voice_api_is_retried(vonage_gateway, fake: FakeVonage,
                                                   http: aiohttp.ClientSession) -> None:
    gw = vonage_gateway()
    fake.fail_next_call(503, "Service temporarily unavailable")
    placed = await call_and_wait_placed(gw, http)
    assert placed["status"] == "placed", placed["error"]
    assert placed["attempts"] == 2
    assert len(fake.requests) == 2 and len(fake.calls) == 1
    assert placed["carrier_call_id"] == fake.calls[0].uuid


async def test_a_permanent_refusal_fails_the_call_at_once(
        vonage_gateway, fake: FakeVonage, receiver: WebhookReceiver,
        http: aiohttp.ClientSession) -> None:
    gw = vonage_gateway()
    fake.fail_next_call(402, "This request could not be performed due to your account"
                             " balance being low.")
    failed = await call_and_wait_placed(gw, http)
    assert (failed["status"], failed["attempts"]) == ("failed", 1)
    assert failed["error"]["code"] == "http_402"
    assert "balance being low" in failed["error"]["reason"]
    assert failed["answer"] is None  # the phone never rang
    assert await event_types(receiver, 2) == ["call.queued", "call.failed"]
    assert len(fake.requests) == 1 and fake.calls == []

"""Opt-out end to end: the real app, worker and store against the fake Twilio over HTTP.

A phone texts STOP, START or HELP through the fake's signed inbound webhook; the gateway
answers through the fake's Messages API and refuses (422, type opted-out) what the API
would send to a phone on the list. The fake's own opted-out error (21610) lists the phone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from smsbridge.core.messages import Message
from smsbridge.gateway.config import OPTOUT_START_REPLY, OPTOUT_STOP_REPLY, settings_from_dict
from smsbridge.testing.fake_twilio import FakeTwilio
from smsbridge.testing.server import RunningServer
from tests.conftest import FAST_WORKER, eventually
from tests.e2e.carriers import OUR_NUMBER, PEER, connection, inbound, queue
from tests.harness import GatewayHarness
from tests.receiver import WebhookReceiver

OPTED_OUT = "urn:smsbridge:problem:opted-out"
SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"


@pytest.fixture
def fake() -> FakeTwilio:
    """The fake carrier's state and knobs."""
    return FakeTwilio()


@pytest.fixture
def start(start_gateway: Callable[..., GatewayHarness], fake_server: RunningServer,
          fake: FakeTwilio) -> Callable[..., GatewayHarness]:
    """``start(database, optout=None, webhooks=None)``: a gateway on the fake Twilio."""

    def run(database: str, *, optout: dict[str, Any] | None = None,
            webhooks: list[dict[str, Any]] | None = None) -> GatewayHarness:
        raw: dict[str, Any] = {
            "server": {"database": database}, "worker": FAST_WORKER,
            "connections": [connection("twilio", {
                "base_url": fake_server.url, "account_sid": fake.account_sid,
                "auth_token": fake.auth_token})],
            "webhooks": webhooks or []}
        if optout is not None:
            raw["optout"] = optout
        return start_gateway(settings_from_dict(raw))

    return run


async def text(gw: GatewayHarness, fake: FakeTwilio, body: str, *, sid: str | None = None,
               sender: str = PEER) -> None:
    """``sender`` texts ``body`` to our number; the gateway must take it (200)."""
    status, _, answer = await fake.fire_inbound(
        f"{gw.url}{gw.inbound_path('twilio')}", from_=sender, to=OUR_NUMBER, body=body,
        message_sid=sid)
    assert status == 200, answer


async def texts_reaching(fake: FakeTwilio, count: int) -> list[tuple[str, str, str]]:
    """Wait until the fake has accepted ``count`` messages: (from, to, body) of each."""
    await eventually(lambda: len(fake.messages) >= count)
    return [(m.from_ or "", m.to, m.body) for m in fake.messages]


async def outbound(gw: GatewayHarness, http: aiohttp.ClientSession) -> list[dict[str, Any]]:
    """Every outbound message the gateway stored (queued, sent or failed), oldest first."""
    return list(reversed((await gw.list_messages(http, direction="outbound"))["data"]))


async def optouts(gw: GatewayHarness, http: aiohttp.ClientSession, **params: str
                  ) -> list[dict[str, Any]]:
    """GET /v1/optouts."""
    async with http.get(f"{gw.url}/v1/optouts", params=params, headers=gw.auth) as resp:
        assert resp.status == 200, await resp.text()
        return list((await resp.json())["data"])


def assert_opted_out_problem(status: int, problem: dict[str, Any]) -> None:
    """A 422 whose type names opt-out, and whose error names the recipient field."""
    assert status == 422, problem
    assert problem["type"] == OPTED_OUT
    assert problem["errors"][0]["field"] == "to"
    assert "opted out" in problem["detail"]


class Recorder:
    """An inbound handler after opt-out (where rules go): records what reaches it."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def on_inbound(self, gateway: Any, conn: Any, message: Message, created: bool
                         ) -> bool:
        self.seen.append(message.text)
        return False


# ------------------------------------------------------------------ STOP, START, HELP


async def test_stop_refuses_sends_until_start(database_url: str, start, fake: FakeTwilio,
                                              http: aiohttp.ClientSession) -> None:
    gw = start(database_url)
    await text(gw, fake, "  Stop ")
    assert await texts_reaching(fake, 1) == [(OUR_NUMBER, PEER, OPTOUT_STOP_REPLY)]
    (listed,) = await optouts(gw, http)
    assert (listed["from"], listed["to"], listed["source"]) == (OUR_NUMBER, PEER, "keyword")

    status, problem = await gw.send(http, {"from": OUR_NUMBER, "to": "438 555 0123",
                                           "text": "Porch motion"})
    assert_opted_out_problem(status, problem)
    assert PEER in problem["detail"] and OUR_NUMBER in problem["detail"]
    # Nothing was queued: the only outbound message is the STOP's confirmation.
    assert [m["text"] for m in await outbound(gw, http)] == [OPTOUT_STOP_REPLY]

    await text(gw, fake, "START")
    await texts_reaching(fake, 2)
    assert await optouts(gw, http) == []
    await queue(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "Porch motion"})
    sent = await texts_reaching(fake, 3)
    assert sent[1:] == [(OUR_NUMBER, PEER, OPTOUT_START_REPLY),
                        (OUR_NUMBER, PEER, "Porch motion")]
    # Both keywords are stored like any inbound message.
    assert [m["text"] for m in await inbound(gw, http)] == ["START", "  Stop "]


async def test_help_is_answered_with_the_configured_text(
        sqlite_url: str, start, fake: FakeTwilio, http: aiohttp.ClientSession) -> None:
    help_text = "Acme alarms: reply STOP to stop. Help: +1 514 555 0100"
    gw = start(sqlite_url, optout={"numbers": {OUR_NUMBER: {"help_reply": help_text}}})
    await text(gw, fake, "help")
    await text(gw, fake, " INFO")
    assert await texts_reaching(fake, 2) == [(OUR_NUMBER, PEER, help_text)] * 2
    assert await optouts(gw, http) == []


async def test_keywords_are_consumed_but_stored_and_posted_to_the_app(
        sqlite_url: str, start, fake: FakeTwilio, http: aiohttp.ClientSession,
        receiver: WebhookReceiver, app_server: RunningServer) -> None:
    gw = start(sqlite_url, webhooks=[{"url": f"{app_server.url}/hook", "secret": SECRET,
                                      "events": ["message.received"]}])
    later = Recorder()
    assert gw.runtime.gateway is not None
    gw.runtime.gateway.inbound_handlers.append(later)
    for body in ("STOP", "stop please", "START", "HELP", "Yes!"):
        await text(gw, fake, body)
    # Only what is no keyword reaches the handlers after opt-out (the rules).
    assert later.seen == ["stop please", "Yes!"]
    await eventually(lambda: len(receiver.received) >= 5)
    posted = [json.loads(hit.body)["data"]["text"] for hit in receiver.received]
    assert sorted(posted) == sorted(["STOP", "stop please", "START", "HELP", "Yes!"])


async def test_a_repeated_stop_webhook_sends_one_confirmation(
        sqlite_url: str, start, fake: FakeTwilio, http: aiohttp.ClientSession) -> None:
    gw = start(sqlite_url)
    sid = "SM" + "5e" * 16
    await text(gw, fake, "STOP", sid=sid)
    await text(gw, fake, "STOP", sid=sid)
    # Each webhook is answered only after its reply is queued: one reply, queued once.
    replies = await outbound(gw, http)
    assert [m["text"] for m in replies] == [OPTOUT_STOP_REPLY]
    assert len(await inbound(gw, http)) == 1
    assert len(await optouts(gw, http)) == 1


async def test_a_stop_retried_after_start_does_not_list_the_phone_again(
        sqlite_url: str, start, fake: FakeTwilio, http: aiohttp.ClientSession) -> None:
    gw = start(sqlite_url)
    stop_sid = "SM" + "01" * 16
    await text(gw, fake, "STOP", sid=stop_sid)
    await text(gw, fake, "START")
    await text(gw, fake, "STOP", sid=stop_sid)  # the carrier retries the first webhook
    assert await optouts(gw, http) == []
    assert [m["text"] for m in await outbound(gw, http)] == [OPTOUT_STOP_REPLY,
                                                            OPTOUT_START_REPLY]


async def test_opt_out_turned_off_for_a_connection_leaves_stop_to_the_rules(
        sqlite_url: str, start, fake: FakeTwilio, http: aiohttp.ClientSession) -> None:
    gw = start(sqlite_url, optout={"connections": {"twilio": {"enabled": False}}})
    later = Recorder()
    assert gw.runtime.gateway is not None
    gw.runtime.gateway.inbound_handlers.append(later)
    await text(gw, fake, "STOP")
    assert later.seen == ["STOP"]
    assert await optouts(gw, http) == []
    assert await outbound(gw, http) == []
    # The list itself still holds: a phone put on it by hand is refused.
    async with http.post(f"{gw.url}/v1/optouts", headers=gw.auth,
                         json={"from": OUR_NUMBER, "to": PEER}) as resp:
        assert resp.status == 201
    assert_opted_out_problem(*await gw.send(http, {"from": OUR_NUMBER, "to": PEER,
                                                   "text": "x"}))


async def test_an_empty_reply_lists_the_phone_without_answering(
        sqlite_url: str, start, fake: FakeTwilio, http: aiohttp.ClientSession) -> None:
    gw = start(sqlite_url, optout={"stop_reply": ""})
    await text(gw, fake, "QUIT")
    assert [e["to"] for e in await optouts(gw, http)] == [PEER]
    assert await outbound(gw, http) == []


# ------------------------------------------------------------------ the carrier's list


async def test_the_carriers_opted_out_error_lists_the_recipient(
        database_url: str, start, fake: FakeTwilio, http: aiohttp.ClientSession) -> None:
    gw = start(database_url)
    fake.opted_out.add(PEER)
    queued = await queue(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "Porch motion"})
    failed = await gw.wait_status(http, queued["id"], {"failed", "sent"})
    assert failed["status"] == "failed" and failed["error"]["code"] == "21610"
    (listed,) = await optouts(gw, http, **{"from": OUR_NUMBER})
    assert (listed["to"], listed["source"]) == (PEER, "carrier")

    assert_opted_out_problem(*await gw.send(http, {"from": OUR_NUMBER, "to": PEER,
                                                   "text": "again"}))
    assert len(fake.requests) == 1  # the second send never left the gateway
    assert fake.messages == []


async def test_a_call_to_an_opted_out_recipient_is_refused(
        sqlite_url: str, start, fake: FakeTwilio, http: aiohttp.ClientSession) -> None:
    gw = start(sqlite_url)
    await text(gw, fake, "STOP")
    async with http.post(f"{gw.url}/v1/calls", headers=gw.auth, json={
            "from": OUR_NUMBER, "to": PEER, "say": "Alarm"}) as resp:
        assert_opted_out_problem(resp.status, await resp.json(content_type=None))
    assert fake.calls == []


# ------------------------------------------------------------------ /v1/optouts


async def test_the_api_lists_adds_and_removes_per_sending_number(
        database_url: str, start, fake: FakeTwilio, http: aiohttp.ClientSession) -> None:
    gw = start(database_url)
    url = f"{gw.url}/v1/optouts"
    async with http.post(url, headers=gw.auth, json={"from": OUR_NUMBER,
                                                     "to": "(438) 555-0123"}) as resp:
        assert resp.status == 201
        added = await resp.json()
    assert (added["from"], added["to"], added["source"]) == (OUR_NUMBER, PEER, "api")
    async with http.post(url, headers=gw.auth, json={"from": OUR_NUMBER, "to": PEER}) as resp:
        assert resp.status == 200 and (await resp.json())["created_at"] == added["created_at"]

    assert [e["to"] for e in await optouts(gw, http, **{"from": OUR_NUMBER})] == [PEER]
    assert await optouts(gw, http, **{"from": "+15145550999"}) == []
    assert_opted_out_problem(*await gw.send(http, {"from": OUR_NUMBER, "to": PEER,
                                                   "text": "x"}))

    async with http.delete(f"{url}/{PEER}", params={"from": OUR_NUMBER},
                           headers=gw.auth) as resp:
        assert resp.status == 204
    async with http.delete(f"{url}/{PEER}", params={"from": OUR_NUMBER},
                           headers=gw.auth) as resp:
        assert resp.status == 404
        assert resp.content_type == "application/problem+json"
    assert await optouts(gw, http) == []
    await queue(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "allowed again"})


@pytest.mark.parametrize(("body", "field"), [
    ({"from": "+15145550999", "to": PEER}, "from"),  # not one of our numbers
    ({"from": OUR_NUMBER, "to": "not a number"}, "to"),
    ({"from": OUR_NUMBER}, "to"),
    ({"from": OUR_NUMBER, "to": PEER, "note": "x"}, "note"),
])
async def test_a_bad_add_names_the_field(sqlite_url: str, start, http: aiohttp.ClientSession,
                                         body: dict[str, str], field: str) -> None:
    gw = start(sqlite_url)
    async with http.post(f"{gw.url}/v1/optouts", headers=gw.auth, json=body) as resp:
        assert resp.status == 422
        problem = await resp.json(content_type=None)
    assert problem["type"] == "urn:smsbridge:problem:invalid-input"
    assert problem["errors"][0]["field"] == field
    assert await optouts(gw, http) == []


async def test_the_list_needs_an_api_key(sqlite_url: str, start,
                                         http: aiohttp.ClientSession) -> None:
    gw = start(sqlite_url)
    for method in ("GET", "POST"):
        async with http.request(method, f"{gw.url}/v1/optouts",
                                json={"from": OUR_NUMBER, "to": PEER}) as resp:
            assert resp.status == 401
    async with http.delete(f"{gw.url}/v1/optouts/{PEER}", params={"from": OUR_NUMBER}) as resp:
        assert resp.status == 401
    assert await optouts(gw, http) == []

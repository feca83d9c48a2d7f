"""Inbound rules end to end: Twilio's signed webhooks in, rule webhooks, replies and forwards out.

The fake Twilio fires real inbound webhooks at the gateway and records what the worker sends
through its Messages API; the app webhooks are a receiver on 127.0.0.1, and GET
/v1/messages/{id} shows what each rule did.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import aiomqtt
import pytest
from standardwebhooks import Webhook

from smsbridge.gateway.config import Settings, settings_from_dict
from smsbridge.testing.fake_twilio import FakeTwilio, SentMessage
from smsbridge.testing.server import RunningServer, start_server
from tests.conftest import FAST_WORKER, eventually
from tests.e2e.carriers import OUR_NUMBER, PEER, connection
from tests.harness import GatewayHarness
from tests.receiver import WebhookReceiver

FAMILY = "+15145550111"
MOBILE = "+15145550199"
STRANGER = PEER
ALARM_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
APP_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ALARM_RULE = {
    "name": "alarm", "to": [OUR_NUMBER], "from": "family",
    "pattern": r"^(?P<verb>ARM|DISARM) (?P<who>[A-Z]{2})$",
    "webhooks": ["alarm"], "reply": "{verb} by {who}: done",
}
FORWARD_ALL = {"name": "to-my-mobile", "forward_to": [MOBILE]}


@pytest.fixture
def fake() -> FakeTwilio:
    """The fake carrier's state and knobs."""
    return FakeTwilio()


def served_receiver() -> Iterator[tuple[WebhookReceiver, RunningServer]]:
    """An app webhook receiver served on 127.0.0.1 for one test (``yield from`` it)."""
    receiver = WebhookReceiver()
    server = start_server(receiver.app)
    try:
        yield receiver, server
    finally:
        server.stop()


@pytest.fixture
def alarm_app() -> Iterator[tuple[WebhookReceiver, RunningServer]]:
    """The alarm's webhook receiver: the webhook the alarm rule names."""
    yield from served_receiver()


@pytest.fixture
def other_app() -> Iterator[tuple[WebhookReceiver, RunningServer]]:
    """An app webhook that no rule names."""
    yield from served_receiver()


@pytest.fixture
def rules_gateway(sqlite_url: str, start_gateway: Callable[..., GatewayHarness],
                  fake_server: RunningServer, fake: FakeTwilio,
                  alarm_app: tuple[WebhookReceiver, RunningServer],
                  other_app: tuple[WebhookReceiver, RunningServer]
                  ) -> Callable[..., GatewayHarness]:
    """``start(rules, database=None, **config)``: a gateway on the fake Twilio with ``rules``.

    Two app webhooks: "alarm" (named by the alarm rule) and one that no rule names.
    """

    def start(rules: list[dict[str, Any]], database: str | None = None,
              alarm_hook: dict[str, Any] | None = None, **config: Any) -> GatewayHarness:
        settings = rules_settings(
            database or sqlite_url, fake, fake_server, rules,
            webhooks=[{"name": "alarm", "url": f"{alarm_app[1].url}/hook",
                       "secret": ALARM_SECRET, **(alarm_hook or {})},
                      {"url": f"{other_app[1].url}/hook", "secret": APP_SECRET}],
            **config)
        return start_gateway(settings)

    return start


def rules_settings(database: str, fake: FakeTwilio, fake_server: RunningServer,
                   rules: list[dict[str, Any]], **config: Any) -> Settings:
    """A config with one Twilio connection on the fake, the family group and ``rules``."""
    return settings_from_dict({
        "server": {"database": database},
        "worker": FAST_WORKER,
        "connections": [connection("twilio", {
            "base_url": fake_server.url, "account_sid": fake.account_sid,
            "auth_token": fake.auth_token})],
        "sender_groups": {"family": [FAMILY, "+15145550112"]},
        "rules": rules,
        **config,
    })


async def text_in(gw: GatewayHarness, fake: FakeTwilio, http: aiohttp.ClientSession,
                  from_: str, body: str, sid: str | None = None) -> dict[str, Any]:
    """Fire Twilio's inbound webhook (answered 200) and return the stored message."""
    sid = sid or "SM" + uuid.uuid4().hex
    status, _, answer = await fake.fire_inbound(f"{gw.url}{gw.inbound_path('twilio')}",
                                                from_=from_, to=OUR_NUMBER, body=body,
                                                message_sid=sid)
    assert status == 200, answer
    found = (await gw.list_messages(http, direction="inbound"))["data"]
    (message,) = [m for m in found if m["carrier_message_id"] == sid]
    return message


async def outbound(gw: GatewayHarness, http: aiohttp.ClientSession) -> list[dict[str, Any]]:
    """Every message the gateway queued to send, oldest first."""
    return list(reversed((await gw.list_messages(http, direction="outbound"))["data"]))


async def deliveries_of(gw: GatewayHarness, http: aiohttp.ClientSession, message_id: str
                        ) -> list[dict[str, Any]]:
    """GET /v1/webhook-deliveries for one message."""
    async with http.get(f"{gw.url}/v1/webhook-deliveries", params={"message_id": message_id},
                        headers=gw.auth) as resp:
        assert resp.status == 200
        return list((await resp.json())["data"])


def carrier_got(fake: FakeTwilio, to: str) -> list[SentMessage]:
    """What the fake Twilio accepted for ``to``."""
    return [m for m in fake.messages if m.to == to]


def received_events(app: WebhookReceiver) -> list[dict[str, Any]]:
    """The message.received events ``app`` got."""
    events = [json.loads(hit.body) for hit in app.received]
    return [event for event in events if event["type"] == "message.received"]


async def rules_of(gw: GatewayHarness, http: aiohttp.ClientSession, message_id: str
                   ) -> list[dict[str, Any]]:
    """The ``rules`` GET /v1/messages/{id} shows."""
    return list((await gw.get_message(http, message_id))["rules"])


# ------------------------------------------------------------------ an allowed sender


async def allowed_arm_command(gw: GatewayHarness, fake: FakeTwilio,
                              http: aiohttp.ClientSession, alarm: WebhookReceiver) -> None:
    message = await text_in(gw, fake, http, FAMILY, "  arm sv ")

    # The alarm's webhook: the usual event plus the rule and what the pattern captured.
    # (It hears of the reply's status changes too, as a webhook subscribed to them.)
    (event,) = await eventually(lambda: received_events(alarm))
    for hit in alarm.received:  # signed with the alarm webhook's own secret
        Webhook(ALARM_SECRET).verify(hit.body, hit.headers)
    assert event["rule"] == "alarm"
    assert event["captures"] == {"verb": "arm", "who": "sv"}
    assert event["data"]["id"] == message["id"] and event["data"]["from"] == FAMILY

    # The templated reply, from the number texted, reaches the carrier.
    (reply,) = await eventually(lambda: carrier_got(fake, FAMILY))
    assert (reply.from_, reply.body) == (OUR_NUMBER, "arm by sv: done")

    # The match stopped there: the forward-everything rule after it did not run.
    assert [m["to"] for m in await outbound(gw, http)] == [FAMILY]

    async def reported() -> list[dict[str, Any]] | None:
        rules = await rules_of(gw, http, message["id"])
        statuses = {a["action"]: a["status"] for r in rules for a in r["actions"]}
        return rules if statuses == {"webhook": "delivered", "reply": "sent"} else None

    (alarm_rule,) = await eventually(reported)
    assert alarm_rule["status"] == "matched"
    assert alarm_rule["captures"] == {"verb": "arm", "who": "sv"}
    webhook, sent = alarm_rule["actions"]
    assert (webhook["action"], webhook["target"], webhook["error"]) == ("webhook", "alarm",
                                                                         None)
    assert (sent["action"], sent["target"]) == ("reply", FAMILY)
    assert sent["message_id"] == (await outbound(gw, http))[0]["id"]


async def test_allowed_senders_arm_command_fires_the_rule_webhook_and_is_answered(
        rules_gateway, fake: FakeTwilio, http: aiohttp.ClientSession,
        alarm_app: tuple[WebhookReceiver, RunningServer]) -> None:
    gw = rules_gateway([ALARM_RULE, FORWARD_ALL])
    await allowed_arm_command(gw, fake, http, alarm_app[0])


async def test_allowed_senders_arm_command_on_postgresql(
        pg_url: str, rules_gateway, fake: FakeTwilio, http: aiohttp.ClientSession,
        alarm_app: tuple[WebhookReceiver, RunningServer]) -> None:
    gw = rules_gateway([ALARM_RULE, FORWARD_ALL], database=pg_url)
    await allowed_arm_command(gw, fake, http, alarm_app[0])


async def test_a_message_no_rule_matches_goes_to_the_apps_no_rule_names(
        rules_gateway, fake: FakeTwilio, http: aiohttp.ClientSession,
        alarm_app: tuple[WebhookReceiver, RunningServer],
        other_app: tuple[WebhookReceiver, RunningServer]) -> None:
    gw = rules_gateway([ALARM_RULE])
    message = await text_in(gw, fake, http, FAMILY, "Dinner at 7?")
    (delivery,) = await deliveries_of(gw, http, message["id"])
    assert delivery["url"] == f"{other_app[1].url}/hook"
    (event,) = await eventually(lambda: received_events(other_app[0]))
    assert event["data"]["text"] == "Dinner at 7?" and "rule" not in event
    assert await rules_of(gw, http, message["id"]) == []
    assert alarm_app[0].received == []


# ------------------------------------------------------------------ a stranger


async def test_a_strangers_arm_command_does_nothing_and_is_logged_and_visible(
        rules_gateway, fake: FakeTwilio, http: aiohttp.ClientSession,
        alarm_app: tuple[WebhookReceiver, RunningServer],
        other_app: tuple[WebhookReceiver, RunningServer],
        caplog: pytest.LogCaptureFixture) -> None:
    gw = rules_gateway([ALARM_RULE])
    with caplog.at_level(logging.WARNING, logger="smsbridge.rules"):
        message = await text_in(gw, fake, http, STRANGER, "ARM SV")

    # Everything a rule does is queued before the webhook is answered: nothing was.
    assert await outbound(gw, http) == []
    (delivery,) = await deliveries_of(gw, http, message["id"])
    assert delivery["url"] == f"{other_app[1].url}/hook"  # never the alarm's

    (attempt,) = await rules_of(gw, http, message["id"])
    assert attempt["rule"] == "alarm" and attempt["status"] == "sender_not_allowed"
    assert STRANGER in attempt["detail"] and "family" in attempt["detail"]
    assert attempt["actions"] == [] and attempt["captures"] == {}

    logged = [r.getMessage() for r in caplog.records if r.name == "smsbridge.rules"]
    assert any(STRANGER in line and "alarm" in line and message["id"] in line
               for line in logged), logged
    await eventually(lambda: other_app[0].received)
    assert alarm_app[0].received == [] and fake.messages == []


# ------------------------------------------------------------------ forwarding, continue


async def test_forwarding_reaches_the_carrier_with_the_senders_number_first(
        rules_gateway, fake: FakeTwilio, http: aiohttp.ClientSession) -> None:
    gw = rules_gateway([FORWARD_ALL])
    message = await text_in(gw, fake, http, PEER, "Your code is 481516")
    (copy,) = await eventually(lambda: carrier_got(fake, MOBILE))
    assert (copy.from_, copy.body) == (OUR_NUMBER, f"From {PEER}: Your code is 481516")
    (rule,) = await rules_of(gw, http, message["id"])
    assert rule["rule"] == "to-my-mobile"
    (action,) = rule["actions"]
    assert (action["action"], action["target"]) == ("forward", MOBILE)


async def test_continue_runs_the_next_matching_rule_too(
        rules_gateway, fake: FakeTwilio, http: aiohttp.ClientSession,
        alarm_app: tuple[WebhookReceiver, RunningServer]) -> None:
    gw = rules_gateway([{**ALARM_RULE, "continue": True}, FORWARD_ALL])
    message = await text_in(gw, fake, http, FAMILY, "DISARM JF")
    await eventually(lambda: len(fake.messages) == 2)
    assert {(m.to, m.body) for m in fake.messages} == {
        (FAMILY, "DISARM by JF: done"), (MOBILE, f"From {FAMILY}: DISARM JF")}
    assert [r["rule"] for r in await rules_of(gw, http, message["id"])] == [
        "alarm", "to-my-mobile"]
    (event,) = await eventually(lambda: received_events(alarm_app[0]))
    assert event["rule"] == "alarm"


# ------------------------------------------------------------------ once, and refusals


async def test_a_duplicate_inbound_webhook_does_not_send_the_reply_twice(
        rules_gateway, fake: FakeTwilio, http: aiohttp.ClientSession) -> None:
    gw = rules_gateway([ALARM_RULE])
    sid = "SM" + "cd" * 16
    first = await text_in(gw, fake, http, FAMILY, "ARM SV", sid=sid)
    again = await text_in(gw, fake, http, FAMILY, "ARM SV", sid=sid)
    assert first["id"] == again["id"]
    (queued,) = await outbound(gw, http)
    await gw.wait_status(http, queued["id"], {"sent"})
    assert [m.body for m in fake.messages] == ["ARM by SV: done"]
    (rule,) = await rules_of(gw, http, first["id"])
    assert [a["action"] for a in rule["actions"]] == ["webhook", "reply"]


async def test_opt_out_keywords_never_reach_the_rules(
        rules_gateway, fake: FakeTwilio, http: aiohttp.ClientSession,
        other_app: tuple[WebhookReceiver, RunningServer]) -> None:
    gw = rules_gateway([{**FORWARD_ALL, "webhooks": ["alarm"]}])
    message = await text_in(gw, fake, http, PEER, " stop ")
    assert [m["to"] for m in await outbound(gw, http)] == [PEER]  # the confirmation only
    assert await rules_of(gw, http, message["id"]) == []
    # Nor do the rule's webhooks get it: it takes the default route.
    (delivery,) = await deliveries_of(gw, http, message["id"])
    assert delivery["url"] == f"{other_app[1].url}/hook"
    other = await text_in(gw, fake, http, PEER, "stop the car")
    assert [m["to"] for m in await outbound(gw, http)] == [PEER, MOBILE]
    assert [r["rule"] for r in await rules_of(gw, http, other["id"])] == ["to-my-mobile"]


async def test_a_reply_to_an_opted_out_sender_is_refused_and_shown(
        rules_gateway, fake: FakeTwilio, http: aiohttp.ClientSession,
        alarm_app: tuple[WebhookReceiver, RunningServer]) -> None:
    gw = rules_gateway([ALARM_RULE])
    await text_in(gw, fake, http, FAMILY, "STOP")  # answered by opt-out, not by rules
    message = await text_in(gw, fake, http, FAMILY, "ARM SV")
    (rule,) = await rules_of(gw, http, message["id"])
    reply = next(a for a in rule["actions"] if a["action"] == "reply")
    assert reply["status"] == "refused" and reply["message_id"] is None
    assert "opted out" in reply["error"]
    # The alarm still hears of it: only the reply was refused.
    (event,) = await eventually(lambda: received_events(alarm_app[0]))
    assert event["captures"] == {"verb": "ARM", "who": "SV"}


async def test_a_rule_webhook_that_fails_shows_its_error(
        rules_gateway, fake: FakeTwilio, http: aiohttp.ClientSession,
        alarm_app: tuple[WebhookReceiver, RunningServer]) -> None:
    alarm_app[0].fail_first, alarm_app[0].fail_status = 100, 503
    gw = rules_gateway([{**ALARM_RULE, "reply": None}], alarm_hook={"max_attempts": 1})
    message = await text_in(gw, fake, http, FAMILY, "ARM SV")

    async def failed() -> dict[str, Any] | None:
        (rule,) = await rules_of(gw, http, message["id"])
        (action,) = rule["actions"]
        return action if action["status"] == "failed" else None

    action = await eventually(failed)
    assert action["target"] == "alarm" and "HTTP 503" in action["error"]


# ------------------------------------------------------------------ MQTT


async def test_a_rule_with_mqtt_publishes_its_event_to_the_rules_topic(
        rules_gateway, fake: FakeTwilio, http: aiohttp.ClientSession) -> None:
    prefix = f"smsbridge-test-{uuid.uuid4().hex[:8]}"
    gw = rules_gateway([{**ALARM_RULE, "mqtt": True}],
                       mqtt={"url": "mqtt://127.0.0.1:1883", "topic_prefix": prefix,
                             "discovery": False})
    async with aiomqtt.Client("127.0.0.1", 1883) as client:
        await client.subscribe(f"{prefix}/rules/alarm", qos=1)
        message = await text_in(gw, fake, http, FAMILY, "DISARM JF")
        async with asyncio.timeout(10):  # fail rather than hang when nothing comes
            published = await anext(aiter(client.messages))
    assert isinstance(published.payload, bytes)
    event = json.loads(published.payload)
    assert event["rule"] == "alarm" and event["captures"] == {"verb": "DISARM", "who": "JF"}
    assert event["data"]["id"] == message["id"]

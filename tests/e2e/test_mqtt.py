"""MQTT end to end: the real app, worker and store, the fake Twilio, and a real Mosquitto broker.

Inbound messages and receipts come from the fake carrier's webhooks and are read back by an
MQTT client subscribed on the broker; sends are published to the broker as a Home Assistant
or Node-RED flow would, and reach the fake carrier's Messages API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from smsbridge.gateway.admin import store_for
from smsbridge.gateway.config import Settings, settings_from_dict
from smsbridge.gateway.runtime import Runtime
from smsbridge.testing.fake_twilio import FakeTwilio
from smsbridge.testing.server import RunningServer
from tests.conftest import FAST_WORKER, eventually
from tests.e2e.carriers import OUR_NUMBER, PEER, connection, queue
from tests.e2e.mqtt import SHARED_PORT, Listener, PrivateBroker, port_open, publish, unique_prefix
from tests.harness import GatewayHarness

OUR_LEVEL = OUR_NUMBER.removeprefix("+")  # numbers in topics: digits without '+'
SECOND_NUMBER = "+15145550101"


@pytest.fixture
def fake() -> FakeTwilio:
    """The fake carrier's state and knobs."""
    return FakeTwilio()


@pytest.fixture
def shared_broker() -> int:
    """The port of the Mosquitto broker on 127.0.0.1:1883."""
    if not port_open(SHARED_PORT):
        pytest.fail("Mosquitto is not running on 127.0.0.1:1883; run scripts/services, "
                    "which starts it")
    return SHARED_PORT


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    """A broker of this test's own, which it may stop and start again."""
    folder = tmp_path / "broker"
    folder.mkdir()
    broker = PrivateBroker(folder)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def gateway_settings(sqlite_url: str, fake_server: RunningServer, fake: FakeTwilio
                     ) -> Callable[..., Settings]:
    """``settings(port, prefix, database=None, discovery=False, **mqtt)``: Twilio, [mqtt]."""

    def settings(port: int, prefix: str, *, database: str | None = None,
                 discovery: bool = False, **mqtt: Any) -> Settings:
        twilio = connection("twilio", {"base_url": fake_server.url,
                                       "account_sid": fake.account_sid,
                                       "auth_token": fake.auth_token},
                            numbers=(OUR_NUMBER, SECOND_NUMBER))
        return settings_from_dict({
            "server": {"database": database or sqlite_url}, "worker": FAST_WORKER,
            "connections": [twilio],
            "mqtt": {"url": f"mqtt://127.0.0.1:{port}", "topic_prefix": prefix,
                     "discovery": discovery, **mqtt}})

    return settings


@pytest.fixture
def start_mqtt_gateway(start_gateway: Callable[..., GatewayHarness],
                       gateway_settings: Callable[..., Settings]
                       ) -> Callable[..., GatewayHarness]:
    """``start(port, prefix, database=None, discovery=False)``: that gateway, over HTTP."""

    def start(port: int, prefix: str, **options: Any) -> GatewayHarness:
        return start_gateway(gateway_settings(port, prefix, **options))

    return start


async def connected(gw: GatewayHarness) -> None:
    """Wait until the gateway is connected to its broker (and subscribed to sends)."""
    await eventually(lambda: gw.runtime.mqtt is not None and gw.runtime.mqtt.connected)


async def deliveries(gw: GatewayHarness, http: aiohttp.ClientSession, **params: str
                     ) -> list[dict[str, Any]]:
    """GET /v1/webhook-deliveries (MQTT publications are deliveries too)."""
    async with http.get(f"{gw.url}/v1/webhook-deliveries", params=params,
                        headers=gw.auth) as resp:
        assert resp.status == 200, await resp.text()
        return list((await resp.json())["data"])


async def fire_inbound(gw: GatewayHarness, fake: FakeTwilio, text: str,
                       from_: str = PEER) -> None:
    """The fake Twilio posts an inbound message to the gateway, which answers 200."""
    status, _, body = await fake.fire_inbound(f"{gw.url}{gw.inbound_path('twilio')}",
                                              from_=from_, to=OUR_NUMBER, body=text)
    assert status == 200, body


async def send_by_mqtt(listener: Listener, body: object, level: str = OUR_LEVEL
                       ) -> dict[str, Any]:
    """Publish a send on ``{prefix}/{level}/send``; the result published for it."""
    prefix = listener.topic_filter.split("/")[0]
    before = len(listener.heard)
    await publish(listener.port, f"{prefix}/{level}/send", body)
    heard = await listener.wait_for(lambda h: len(h) > before)
    result = heard[before]
    assert result.topic == f"{prefix}/{level}/send/result"
    return dict(result.json())


# ------------------------------------------------------------------ inbound and status


async def test_inbound_message_is_published_to_its_numbers_topic(
        database_url: str, start_mqtt_gateway, fake: FakeTwilio, shared_broker: int,
        http: aiohttp.ClientSession) -> None:
    prefix = unique_prefix()
    gw = start_mqtt_gateway(shared_broker, prefix, database=database_url)
    topic = f"{prefix}/{OUR_LEVEL}/inbound"
    async with Listener(shared_broker, f"{prefix}/#") as listener:
        await fire_inbound(gw, fake, "Garage door open")
        await listener.wait_for(lambda heard: any(h.topic == topic for h in heard))

    (published,) = listener.on(topic)
    message = published.json()
    assert (message["from"], message["to"], message["text"]) == (
        PEER, OUR_NUMBER, "Garage door open")
    assert message["direction"] == "inbound" and message["status"] == "received"
    assert published.qos == 1 and not published.retain
    # The message as the API shows it, id and all (as it was when it was stored).
    async with http.get(f"{gw.url}/v1/messages/{message['id']}", headers=gw.auth) as resp:
        stored = await resp.json()
    assert {k: v for k, v in stored.items() if k in message and k != "updated_at"} == {
        k: v for k, v in message.items() if k != "updated_at"}
    # Published from the outbox, like an app webhook: the delivery is recorded as done.
    (row,) = await eventually(lambda: deliveries(gw, http, status="delivered"))
    assert (row["event_type"], row["message_id"]) == ("message.received", message["id"])


async def test_status_changes_are_published_to_the_sending_numbers_topic(
        start_mqtt_gateway, fake: FakeTwilio, shared_broker: int,
        http: aiohttp.ClientSession) -> None:
    prefix = unique_prefix()
    gw = start_mqtt_gateway(shared_broker, prefix)
    topic = f"{prefix}/{OUR_LEVEL}/status"
    async with Listener(shared_broker, f"{prefix}/#") as listener:
        queued = await queue(gw, http, {"from": OUR_NUMBER, "to": PEER, "text": "Porch motion"})
        await gw.wait_status(http, queued["id"], {"sent"})
        answers = await fake.deliver_all()
        assert [status for status, _, _ in answers] == [200, 200]
        await listener.wait_for(
            lambda heard: any(h.topic == topic and h.json()["status"] == "delivered"
                              for h in heard))

    published = [h.json() for h in listener.on(topic)]
    # Each change is its own publication; like webhooks, they need not arrive in order.
    assert {m["status"] for m in published} >= {"sent", "delivered"}
    assert {m["id"] for m in published} == {queued["id"]}
    assert all(m["from"] == OUR_NUMBER and m["to"] == PEER for m in published)
    assert not listener.on(f"{prefix}/{OUR_LEVEL}/inbound")


# ------------------------------------------------------------------ sending


async def test_mqtt_send_reaches_the_carrier_and_its_result_is_published(
        start_mqtt_gateway, fake: FakeTwilio, shared_broker: int,
        http: aiohttp.ClientSession) -> None:
    prefix = unique_prefix()
    gw = start_mqtt_gateway(shared_broker, prefix)
    await connected(gw)
    async with Listener(shared_broker, f"{prefix}/+/send/result") as listener:
        result = await send_by_mqtt(listener, {"to": "438 555 0123", "text": "Alarm armed",
                                               "id": "req-1"})
        assert result["request_id"] == "req-1"
        assert (result["from"], result["to"], result["text"]) == (
            OUR_NUMBER, PEER, "Alarm armed")
        assert result["status"] == "queued"
        sent = await gw.wait_status(http, result["id"], {"sent", "failed"})
        assert sent["status"] == "sent", sent["error"]
        (carrier_msg,) = fake.messages
        assert (carrier_msg.to, carrier_msg.from_, carrier_msg.body) == (
            PEER, OUR_NUMBER, "Alarm armed")
        assert sent["carrier_message_id"] == carrier_msg.sid

        # QoS 1 may hand the gateway the same request twice: one id, one message.
        again = await send_by_mqtt(listener, {"to": "438 555 0123", "text": "Alarm armed",
                                              "id": "req-1"})
        assert (again["id"], again["request_id"]) == (result["id"], "req-1")
        outbound = (await gw.list_messages(http, direction="outbound"))["data"]
        assert [m["id"] for m in outbound] == [result["id"]]
        assert len(fake.messages) == 1

        # Another number's topic sends from that number.
        other = await send_by_mqtt(listener, {"to": PEER, "text": "From the shop"},
                                   level=SECOND_NUMBER.removeprefix("+"))
        assert other["from"] == SECOND_NUMBER and "request_id" not in other
        await gw.wait_status(http, other["id"], {"sent"})
        assert fake.messages[-1].from_ == SECOND_NUMBER


async def test_two_gateway_processes_take_each_mqtt_send_once(
        pg_url: str, start_mqtt_gateway, gateway_settings, fake: FakeTwilio,
        shared_broker: int, http: aiohttp.ClientSession) -> None:
    prefix = unique_prefix()
    first = start_mqtt_gateway(shared_broker, prefix, database=pg_url)
    await connected(first)
    # A second process on the same database, as `smsbridge worker` runs one.
    settings = gateway_settings(shared_broker, prefix, database=pg_url)
    worker = Runtime(settings, store_for(settings))
    await worker.start()
    try:
        assert worker.mqtt is not None
        assert await worker.mqtt.wait_connected(10)
        texts = [f"send {n}" for n in range(6)]
        async with Listener(shared_broker, f"{prefix}/+/send/result") as listener:
            results = [await send_by_mqtt(listener, {"to": PEER, "text": text})
                       for text in texts]
            for result in results:
                await first.wait_status(http, result["id"], {"sent"})
    finally:
        await worker.stop()
    # A shared subscription hands each send to one process: without it each process would
    # queue every send (no id was given), and the carrier would get each text twice.
    outbound = (await first.list_messages(http, direction="outbound"))["data"]
    assert sorted(m["text"] for m in outbound) == texts
    assert sorted(m.body for m in fake.messages) == texts
    assert len(listener.heard) == len(texts)


@pytest.mark.parametrize(("body", "level", "field"), [
    pytest.param({"text": "no recipient"}, OUR_LEVEL, "to", id="no-to"),
    pytest.param({"to": "not a number", "text": "hi"}, OUR_LEVEL, "to", id="bad-to"),
    pytest.param({"to": PEER, "text": ""}, OUR_LEVEL, "text", id="empty-text"),
    pytest.param({"to": PEER, "text": "hi", "from": OUR_NUMBER}, OUR_LEVEL, "from",
                 id="from-in-body"),
    pytest.param({"to": PEER, "text": "hi", "media": [{"url": "ftp://x/a.jpg"}]}, OUR_LEVEL,
                 "media[0].url", id="bad-media"),
    pytest.param({"to": PEER, "text": "hi", "id": ""}, OUR_LEVEL, "id", id="empty-id"),
    pytest.param(b"ARM SV", OUR_LEVEL, "body", id="not-json"),
    pytest.param(["to", PEER], OUR_LEVEL, "body", id="not-an-object"),
    pytest.param({"to": PEER, "text": "hi"}, "15559990000", "from", id="number-not-ours"),
    pytest.param({"to": PEER, "text": "hi"}, "kitchen", "from", id="level-not-digits"),
])
async def test_a_send_the_api_would_refuse_publishes_its_problem(
        start_mqtt_gateway, fake: FakeTwilio, shared_broker: int, http: aiohttp.ClientSession,
        body: object, level: str, field: str) -> None:
    prefix = unique_prefix()
    gw = start_mqtt_gateway(shared_broker, prefix)
    await connected(gw)
    async with Listener(shared_broker, f"{prefix}/+/send/result") as listener:
        problem = await send_by_mqtt(listener, body, level=level)
    assert problem["type"] == "urn:smsbridge:problem:invalid-input"
    assert problem["status"] == 422 and problem["title"] == "Invalid input"
    assert [e["field"] for e in problem["errors"]] == [field]
    assert problem["detail"].startswith(f"{field}: ")
    assert (await gw.list_messages(http, direction="outbound"))["data"] == []
    assert fake.messages == []


async def test_a_reused_id_for_another_send_is_refused_and_echoed(
        start_mqtt_gateway, fake: FakeTwilio, shared_broker: int) -> None:
    prefix = unique_prefix()
    gw = start_mqtt_gateway(shared_broker, prefix)
    await connected(gw)
    async with Listener(shared_broker, f"{prefix}/+/send/result") as listener:
        first = await send_by_mqtt(listener, {"to": PEER, "text": "one", "id": "k"})
        reused = await send_by_mqtt(listener, {"to": PEER, "text": "two", "id": "k"})
    assert first["status"] == "queued"
    assert reused["type"] == "urn:smsbridge:problem:invalid-input"
    assert reused["errors"][0]["field"] == "id" and reused["request_id"] == "k"


async def test_a_send_to_an_opted_out_recipient_publishes_the_apis_opt_out_problem(
        start_mqtt_gateway, fake: FakeTwilio, shared_broker: int,
        http: aiohttp.ClientSession) -> None:
    prefix = unique_prefix()
    gw = start_mqtt_gateway(shared_broker, prefix)
    await connected(gw)
    await fire_inbound(gw, fake, "STOP")
    status, api_problem = await gw.send(http, {"from": OUR_NUMBER, "to": PEER,
                                               "text": "Sale today"})
    assert status == 422, api_problem
    async with Listener(shared_broker, f"{prefix}/+/send/result") as listener:
        problem = await send_by_mqtt(listener, {"to": PEER, "text": "Sale today",
                                                "id": "promo-1"})
    # The very problem the API answers, plus the request's id.
    assert problem == {**api_problem, "request_id": "promo-1"}
    assert "opted-out" in problem["type"]
    assert "Sale today" not in [m.body for m in fake.messages]


# ------------------------------------------------------------------ Home Assistant discovery


async def test_discovery_announces_a_last_sms_sensor_per_number(
        start_mqtt_gateway, fake: FakeTwilio, private_broker: PrivateBroker) -> None:
    prefix = unique_prefix()
    gw = start_mqtt_gateway(private_broker.port, prefix, discovery=True)
    await connected(gw)
    # Retained: a Home Assistant that subscribes later (or restarts) still gets them.
    async with Listener(private_broker.port, "homeassistant/sensor/+/config") as ha:
        heard = await ha.wait_for(lambda h: len(h) >= 2)
    configs = {h.topic: h for h in heard}
    assert set(configs) == {f"homeassistant/sensor/smsbridge_{OUR_LEVEL}/config",
                            "homeassistant/sensor/smsbridge_15145550101/config"}
    assert all(h.retain for h in heard)
    config = configs[f"homeassistant/sensor/smsbridge_{OUR_LEVEL}/config"].json()
    state_topic = f"{prefix}/{OUR_LEVEL}/inbound"
    assert config["state_topic"] == config["json_attributes_topic"] == state_topic
    assert config["unique_id"] == f"smsbridge_{OUR_LEVEL}_last_inbound"
    assert config["device"]["identifiers"] == [f"smsbridge_{OUR_LEVEL}"]
    assert config["device"]["name"] == f"SMS {OUR_NUMBER}"
    assert config["origin"]["name"] == "smsbridge"
    other = configs["homeassistant/sensor/smsbridge_15145550101/config"].json()
    assert other["unique_id"] != config["unique_id"]

    # The sensor's state is the last inbound text, cut to the 255 characters a Home
    # Assistant state can hold (the whole text stays in the attributes).
    long_text = "Motion in the garage. " * 15
    async with Listener(private_broker.port, state_topic) as listener:
        await fire_inbound(gw, fake, long_text)
        (published,) = await listener.wait_for(lambda h: len(h) >= 1)
    state = ImmutableSandboxedEnvironment().from_string(config["value_template"]).render(
        value_json=published.json(), value=published.payload.decode())
    assert state == long_text[:255]
    assert published.json()["text"] == long_text


async def test_without_discovery_nothing_is_announced(
        start_mqtt_gateway, private_broker: PrivateBroker, fake: FakeTwilio) -> None:
    prefix = unique_prefix()
    gw = start_mqtt_gateway(private_broker.port, prefix, discovery=False)
    await connected(gw)
    async with Listener(private_broker.port, "#") as listener:
        await fire_inbound(gw, fake, "hello")
        await listener.wait_for(lambda h: any(x.topic.endswith("/inbound") for x in h))
    assert not [h for h in listener.heard if h.topic.startswith("homeassistant/")]


# ------------------------------------------------------------------ the broker


async def test_a_broker_that_wants_a_login_gets_the_configured_one(
        start_mqtt_gateway, fake: FakeTwilio, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "locked-broker"
    folder.mkdir()
    broker = PrivateBroker(folder, login=("gateway", "s3cret-broker-pass"))
    broker.start()
    try:
        monkeypatch.setenv("TEST_MQTT_PASSWORD", "s3cret-broker-pass")
        prefix = unique_prefix()
        gw = start_mqtt_gateway(broker.port, prefix, username="gateway",
                                password="${TEST_MQTT_PASSWORD}")
        await connected(gw)
        async with Listener(broker.port, f"{prefix}/#",
                            login=("gateway", "s3cret-broker-pass")) as listener:
            await fire_inbound(gw, fake, "Let me in")
            heard = await listener.wait_for(lambda h: len(h) >= 1)
        assert heard[0].json()["text"] == "Let me in"
    finally:
        broker.stop()



async def test_messages_received_while_the_broker_is_down_are_published_when_it_is_back(
        start_mqtt_gateway, fake: FakeTwilio, private_broker: PrivateBroker,
        http: aiohttp.ClientSession) -> None:
    prefix = unique_prefix()
    gw = start_mqtt_gateway(private_broker.port, prefix)
    await connected(gw)
    topic = f"{prefix}/{OUR_LEVEL}/inbound"

    def texts(heard: list[Any]) -> list[str]:
        return [h.json()["text"] for h in heard if h.topic == topic]

    async with Listener(private_broker.port, f"{prefix}/#", keep_session=True) as listener:
        await fire_inbound(gw, fake, "before the outage")
        await listener.wait_for(lambda h: texts(h) == ["before the outage"])

        private_broker.stop()
        await eventually(lambda: not gw.runtime.mqtt.connected)
        await fire_inbound(gw, fake, "during the outage 1")
        await fire_inbound(gw, fake, "during the outage 2", from_="+14385550124")

        # Stored and acknowledged to the carrier; their publications wait in the outbox,
        # and the gateway stays healthy meanwhile.
        async def waiting() -> list[dict[str, Any]]:
            rows = await deliveries(gw, http, status="pending")
            return rows if len(rows) == 2 and all(r["last_error"] for r in rows) else []

        rows = await eventually(waiting)
        assert all("broker" in r["last_error"] for r in rows)
        async with http.get(f"{gw.url}/healthz") as resp:
            assert resp.status == 200, await resp.text()
        assert texts(listener.heard) == ["before the outage"]

        private_broker.start()
        await listener.wait_for(lambda h: len(texts(h)) >= 3, timeout=30)

    assert sorted(texts(listener.heard)) == [
        "before the outage", "during the outage 1", "during the outage 2"]
    assert await deliveries(gw, http, status="pending") == []
    assert len(await deliveries(gw, http, status="delivered")) == 3

"""Server mode against a real running smsbridge gateway.

``smsbridge serve`` runs from the project's main venv (it has the server extras) on 127.0.0.1,
with SQLite, a sandbox connection and an app webhook pointing at Home Assistant's webhook URL,
signed with the entry's whsec_ secret. Home Assistant sends through the gateway's REST API
and receives the gateway's signed events.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from custom_components.smsbridge.const import PLATFORMS
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events
from tests.processes import SmsbridgeProcess, write_config

from smsbridge.dispatch.webhooks import sign_webhook
from smsbridge.testing.server import free_port

from .action_helpers import act, setup_entry, wait_for
from .conftest import DOMAIN, REPO_ROOT

MAIN_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"
NUMBER = "+15145550170"
FRIEND = "+14385550123"
WEBHOOK_ID = "server-hook-5d1c9a7e3b2f4d6c8a0e1f2a3b4c5d6e7f8091a2"
SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True)
class Gateway:
    """A running gateway: its URL and the API key it printed at its first start."""

    url: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        """What the API wants with every request."""
        return {"Authorization": f"Bearer {self.api_key}"}


@pytest.fixture
async def ha_client(hass: HomeAssistant, hass_client_no_auth: Any) -> TestClient:
    """Home Assistant's HTTP server on 127.0.0.1, where the gateway posts its events."""
    # The HTTP server's routes freeze when it starts: the components that add routes (the
    # entities' platforms, repairs with notify) are set up first, as they are at HA's start.
    for component in ("webhook", *PLATFORMS):
        assert await async_setup_component(hass, component, {})
    client: TestClient = await hass_client_no_auth()
    return client


@pytest.fixture
def gateway(tmp_path: Path, ha_client: TestClient) -> Iterator[Gateway]:
    """``smsbridge serve`` with a sandbox connection and Home Assistant as its app webhook."""
    if not MAIN_PYTHON.exists():
        pytest.skip(f"{MAIN_PYTHON} is missing: scripts/setup makes the venv the gateway runs in")
    port = free_port()
    config = write_config(
        tmp_path / "gateway.toml", database=f"sqlite:///{tmp_path}/gateway.db",
        listen=f"127.0.0.1:{port}", worker={"poll_interval": 0.05},
        connections=[{"name": "home", "carrier": "sandbox", "numbers": [NUMBER]}])
    hook = ha_client.make_url(f"/api/webhook/{WEBHOOK_ID}")
    with config.open("a", encoding="utf-8") as file:
        file.write(f'\n[[webhooks]]\nurl = "{hook}"\nsecret = "{SECRET}"\n')
    process = SmsbridgeProcess(["serve", "-c", str(config)], tmp_path, "gateway",
                               python=str(MAIN_PYTHON))
    try:
        # A fresh gateway prints its first API key on stdout.
        process.wait_for("sbk_", stream="stdout")
        key = next(word for word in process.output("stdout").split() if word.startswith("sbk_"))
        yield Gateway(f"http://127.0.0.1:{port}", key)
    finally:
        process.terminate()


def server_entry(url: str, api_key: str) -> MockConfigEntry:
    """A server-mode entry exactly as the config flow writes it (ha-common's contract)."""
    return MockConfigEntry(
        domain=DOMAIN, title=f"smsbridge gateway {url}", unique_id=f"server:{url}",
        data={"mode": "server", "url": url, "api_key": api_key, "numbers": [NUMBER],
              "webhook_id": WEBHOOK_ID, "webhook_secret": SECRET})


@pytest.fixture
async def entry(hass: HomeAssistant, gateway: Gateway) -> MockConfigEntry:
    """The server-mode entry, set up once the gateway answers."""
    http = async_get_clientsession(hass)

    async def healthy() -> bool:
        try:
            async with http.get(f"{gateway.url}/healthz") as answer:
                return answer.status == 200
        except aiohttp.ClientConnectionError:
            return False

    deadline = time.monotonic() + 30
    while not await healthy():
        assert time.monotonic() < deadline, "the gateway never answered /healthz"
    made = server_entry(gateway.url, gateway.api_key)
    await setup_entry(hass, made)
    return made


async def get(hass: HomeAssistant, gateway: Gateway, path: str) -> Any:
    """GET a resource of the gateway's API."""
    async with async_get_clientsession(hass).get(gateway.url + path,
                                                 headers=gateway.headers) as answer:
        assert answer.status == 200, await answer.text()
        return await answer.json()


async def test_send_message_is_queued_on_the_gateway_and_its_receipt_comes_back(
    hass: HomeAssistant, gateway: Gateway, entry: MockConfigEntry,
) -> None:
    statuses = async_capture_events(hass, "smsbridge_message_status")

    response = await act(hass, "send_message", {"target": FRIEND, "message": "Porch motion"})

    [message_id] = response["message_ids"]
    stored = await get(hass, gateway, f"/v1/messages/{message_id}")
    assert (stored["direction"], stored["from"], stored["to"], stored["text"]) == (
        "outbound", NUMBER, FRIEND, "Porch motion")
    # The gateway's worker sends it through the sandbox, which confirms delivery; the signed
    # message.status event reaches the number that sent it.
    delivered = await wait_for(
        lambda: [e for e in statuses if e.data["status"] == "delivered"],
        "the delivered receipt reaching Home Assistant")
    assert [(e.data["message_id"], e.data["from"]) for e in delivered] == [(message_id, NUMBER)]


async def test_call_is_queued_on_the_gateway_and_its_end_comes_back(
    hass: HomeAssistant, gateway: Gateway, entry: MockConfigEntry,
) -> None:
    statuses = async_capture_events(hass, "smsbridge_message_status")

    response = await act(hass, "call", {"target": FRIEND, "message": "The alarm went off"})

    [call_id] = response["call_ids"]
    stored = await get(hass, gateway, f"/v1/calls/{call_id}")
    assert (stored["from"], stored["to"], stored["say"]) == (NUMBER, FRIEND,
                                                             "The alarm went off")
    # The sandbox answers every call at once: the gateway's call.completed event comes back.
    [ended] = await wait_for(lambda: statuses, "the call's end reaching Home Assistant")
    assert (ended.data["message_id"], ended.data["status"], ended.data["from"]) == (
        call_id, "delivered", NUMBER)


async def test_a_text_the_gateway_receives_reaches_home_assistant(
    hass: HomeAssistant, gateway: Gateway, entry: MockConfigEntry,
) -> None:
    received = async_capture_events(hass, "smsbridge_message_received")
    [connection] = (await get(hass, gateway, "/v1/carriers"))["data"]

    # The sandbox carrier's inbound webhook, as `smsbridge sandbox receive` posts it.
    async with async_get_clientsession(hass).post(connection["inbound_url"], json={
            "id": "sbx-in-1", "from": FRIEND, "to": NUMBER, "text": "ARM SV"}) as answer:
        assert answer.status == 200, await answer.text()

    [event] = await wait_for(lambda: received, "the text reaching Home Assistant")
    assert (event.data["from"], event.data["to"], event.data["text"]) == (FRIEND, NUMBER,
                                                                         "ARM SV")
    assert event.data["message_id"].startswith("msg_")  # the gateway's id
    sensor = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"{entry.entry_id}_{NUMBER}_last_message")
    assert sensor is not None
    state = hass.states.get(sensor)
    assert state is not None
    assert (state.state, state.attributes["from"]) == ("ARM SV", FRIEND)


# ---------------------------------------------------------------- the signature


def gateway_event(text: str) -> bytes:
    """A message.received event as the gateway's events module writes it."""
    return json.dumps({"type": "message.received", "timestamp": "2026-11-26T08:00:00+00:00",
                       "data": {"id": "msg_" + secrets.token_hex(16), "direction": "inbound",
                                "connection": "home", "carrier": "sandbox", "from": FRIEND,
                                "to": NUMBER, "text": text, "media": [], "status": "received",
                                "created_at": "2026-11-26T08:00:00+00:00"}},
                      separators=(",", ":")).encode()


def signed(body: bytes, secret: str = SECRET, age_seconds: int = 0,
           delivery_id: str = "dlv_1") -> dict[str, str]:
    """The headers the gateway signs a delivery with (its own signer)."""
    stamp = int(time.time()) - age_seconds
    return {"content-type": "application/json", "webhook-id": delivery_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign_webhook(secret, delivery_id, stamp, body.decode())}


@pytest.fixture
async def offline_entry(hass: HomeAssistant, ha_client: TestClient) -> MockConfigEntry:
    """A server-mode entry whose gateway is not running: its webhook works all the same."""
    made = server_entry(f"http://127.0.0.1:{free_port()}", "sbk_unused")
    await setup_entry(hass, made)
    return made


async def test_an_event_signed_with_the_entrys_secret_is_taken(
    hass: HomeAssistant, ha_client: TestClient, offline_entry: MockConfigEntry,
) -> None:
    received = async_capture_events(hass, "smsbridge_message_received")
    body = gateway_event("DISARM JF")

    answer = await ha_client.post(f"/api/webhook/{WEBHOOK_ID}", data=body, headers=signed(body))

    assert answer.status == 204
    assert [e.data["text"] for e in received] == ["DISARM JF"]


OTHER_SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()


@pytest.mark.parametrize(("make_headers", "why"), [
    (lambda body: signed(body, OTHER_SECRET), "signed with another secret"),
    (lambda body: signed(body, age_seconds=6 * 60), "signed six minutes ago"),
    (lambda body: signed(body, age_seconds=-6 * 60), "signed six minutes ahead"),
    (lambda body: {"content-type": "application/json"}, "not signed"),
    (lambda body: {**signed(b"{}"), "content-type": "application/json"}, "signed another body"),
])
async def test_an_event_not_signed_by_the_gateway_is_refused(
    hass: HomeAssistant, ha_client: TestClient, offline_entry: MockConfigEntry,
    make_headers: Any, why: str,
) -> None:
    received = async_capture_events(hass, "smsbridge_message_received")
    body = gateway_event("DISARM JF")

    answer = await ha_client.post(f"/api/webhook/{WEBHOOK_ID}", data=body,
                                  headers=make_headers(body))

    assert answer.status == 403, why
    assert received == []

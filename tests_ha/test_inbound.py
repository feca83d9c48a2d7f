"""Texts arriving at an entry's webhook over HTTP, as the carriers send them.

VoIP.ms: its JSON webhook (POST) and its id-only URL callback (GET, text fetched with getSMS
from the fake VoIP.ms). Twilio: signed form POSTs from the fake Twilio, signature good or bad.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from unittest.mock import AsyncMock
from urllib.parse import urlencode

import homeassistant.components
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from homeassistant.components.webhook import async_handle_webhook
from homeassistant.const import STATE_UNKNOWN
from homeassistant.core import Event, HomeAssistant, State
from homeassistant.helpers import entity_registry as er
from homeassistant.util.aiohttp import MockRequest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    mock_restore_cache_with_extra_data,
)

from smsbridge.testing.fake_twilio import FakeTwilio, twilio_signature
from smsbridge.testing.fake_voipms import FakeVoipms

from .conftest import TWILIO_NUMBER, TWILIO_TOKEN, VOIPMS_DID, VOIPMS_NUMBER

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "providers" / "voipms" / "fixtures"
SENDER = "+14385550123"
ID_ONLY_TEMPLATE = "?to={TO}&from={FROM}&id={ID}&date={TIMESTAMP}&media={MEDIA}"
ID_ONLY = {"from_": "4385550123", "to": VOIPMS_DID, "message": "",
           "timestamp": "2024-05-20 11:33:00"}
# Texts Home Assistant's HTTP security filter refuses in a URL's query (a 400, the text lost).
TEXTS_A_QUERY_CANNOT_CARRY = ["ARM SV\nfrom the back door\r\nnow", "x = concat(a, b)"]

ClientFactory = Callable[[], Awaitable[TestClient]]


@dataclass
class Loaded:
    """An entry set up in Home Assistant, a client of HA's HTTP server, and the bus events."""

    hass: HomeAssistant
    entry: MockConfigEntry
    client: TestClient
    received: list[Event]
    statuses: list[Event]

    @property
    def path(self) -> str:
        """The path of the entry's webhook."""
        return f"/api/webhook/{self.entry.data['webhook_id']}"

    @property
    def url(self) -> str:
        """The full URL of the entry's webhook, for a fake carrier to call."""
        return str(self.client.make_url(self.path))

    def state(self, number: str, key: str) -> State:
        """The state of the number's ``last_message`` sensor or ``messages`` event entity."""
        domain = "sensor" if key == "last_message" else "event"
        entity_id = er.async_get(self.hass).async_get_entity_id(
            domain, "smsbridge", f"{self.entry.entry_id}_{number}_{key}")
        assert entity_id is not None
        current = self.hass.states.get(entity_id)
        assert current is not None
        return current

    async def post_fixture(self, name: str) -> ClientResponse:
        """POST one of the recorded VoIP.ms JSON webhooks."""
        return await self.client.post(self.path, data=(FIXTURES / name).read_bytes(),
                                      headers={"Content-Type": "application/json"})


async def load(hass: HomeAssistant, entry: MockConfigEntry, clients: ClientFactory) -> Loaded:
    """Add ``entry`` (unless added), set it up, and start listening."""
    if hass.config_entries.async_get_entry(entry.entry_id) is None:
        entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return Loaded(hass, entry, await clients(),
                  async_capture_events(hass, "smsbridge_message_received"),
                  async_capture_events(hass, "smsbridge_message_status"))


@pytest.fixture
async def voipms(hass: HomeAssistant, voipms_entry: MockConfigEntry,
                 hass_client_no_auth: ClientFactory) -> Loaded:
    """The VoIP.ms entry, set up."""
    return await load(hass, voipms_entry, hass_client_no_auth)


@pytest.fixture
async def twilio(hass: HomeAssistant, twilio_entry: MockConfigEntry,
                 hass_client_no_auth: ClientFactory) -> Loaded:
    """The Twilio entry, set up."""
    return await load(hass, twilio_entry, hass_client_no_auth)


async def test_voipms_json_webhook_updates_sensor_event_and_bus(voipms: Loaded) -> None:
    answer = await voipms.post_fixture("webhook_sms.json")

    assert answer.status == 200
    assert await answer.text() == "ok"  # anything else and VoIP.ms sends it again
    text = json.loads((FIXTURES / "webhook_sms.json").read_text())["data"]["payload"]["text"]
    assert [e.data for e in voipms.received] == [{
        "from": SENDER, "to": VOIPMS_NUMBER, "text": text, "media": [],
        "message_id": "123456801", "entry_id": voipms.entry.entry_id}]
    sensor = voipms.state(VOIPMS_NUMBER, "last_message")
    assert sensor.state == text
    assert sensor.attributes["from"] == SENDER
    assert sensor.attributes["message"] == text
    assert sensor.attributes["message_id"] == "123456801"
    assert sensor.attributes["last_updated"].startswith("2024-05-20T15:29:45")
    assert sensor.attributes["media"] == []
    event = voipms.state(VOIPMS_NUMBER, "messages")
    assert event.state != STATE_UNKNOWN
    assert event.attributes["event_type"] == "message_received"
    assert (event.attributes["from"], event.attributes["text"]) == (SENDER, text)


async def test_voipms_mms_webhook_carries_its_media(voipms: Loaded) -> None:
    answer = await voipms.post_fixture("webhook_mms.json")

    assert answer.status == 200
    media = ["https://voip.ms/media.php?map=XyZ789", "https://cdn.example.com/mms/clip.mp4"]
    assert [e.data["media"] for e in voipms.received] == [media]
    assert voipms.state(VOIPMS_NUMBER, "last_message").attributes["media"] == media


async def test_voipms_id_only_callback_fetches_the_text_with_getsms(
    voipms: Loaded, fake_voipms: FakeVoipms,
) -> None:
    fake_voipms.add_received(123456792, VOIPMS_DID, "4385550123", "Fetched text\r\nline two ✓")

    answer = await fake_voipms.fire_url_callback(voipms.url + ID_ONLY_TEMPLATE,
                                                 id="123456792", **ID_ONLY)

    assert answer == (200, "ok")
    assert [e.data["text"] for e in voipms.received] == ["Fetched text\r\nline two ✓"]
    fetches = [r for r in fake_voipms.requests if r.method == "getSMS"]
    assert [r.params["sms"] for r in fetches] == ["123456792"]
    assert voipms.state(VOIPMS_NUMBER, "last_message").state == "Fetched text\r\nline two ✓"


@pytest.mark.parametrize("text", TEXTS_A_QUERY_CANNOT_CARRY)
async def test_texts_a_url_cannot_carry_arrive_by_json_webhook_and_by_id(
    voipms: Loaded, fake_voipms: FakeVoipms, text: str,
) -> None:
    fake_voipms.add_received(5001, VOIPMS_DID, "4385550123", text)

    by_post = await fake_voipms.fire_webhook(voipms.url, from_=SENDER, to=VOIPMS_NUMBER,
                                             message=text, id="5000")
    by_id = await fake_voipms.fire_url_callback(voipms.url + ID_ONLY_TEMPLATE, id="5001",
                                                **ID_ONLY)

    assert by_post == by_id == (200, "ok")
    assert [(e.data["message_id"], e.data["text"]) for e in voipms.received] == [
        ("5000", text), ("5001", text)]


@pytest.mark.parametrize("text", TEXTS_A_QUERY_CANNOT_CARRY)
async def test_home_assistant_refuses_such_texts_in_a_url_callback(
    voipms: Loaded, fake_voipms: FakeVoipms, text: str,
) -> None:
    """Why the setup never offers the callback with {MESSAGE}: HA's filter answers 400."""
    status, _ = await fake_voipms.fire_url_callback(
        voipms.url + "?to={TO}&from={FROM}&message={MESSAGE}&id={ID}",
        from_="4385550123", to=VOIPMS_DID, message=text, id="5002", timestamp="")

    assert status == 400
    assert voipms.received == []


async def test_a_duplicate_is_answered_but_fires_nothing_even_after_a_restart(
    voipms: Loaded, hass: HomeAssistant,
) -> None:
    first = await voipms.post_fixture("webhook_sms.json")
    again = await voipms.post_fixture("webhook_sms.json")
    assert await hass.config_entries.async_reload(voipms.entry.entry_id)
    await hass.async_block_till_done()
    after_restart = await voipms.post_fixture("webhook_sms.json")

    answers = [(r.status, await r.text()) for r in (first, again, after_restart)]
    assert answers == [(200, "ok")] * 3
    assert len(voipms.received) == 1


async def test_allowed_senders_drop_and_log_everyone_else(
    hass: HomeAssistant, fake_voipms: FakeVoipms, voipms_entry: MockConfigEntry,
    hass_client_no_auth: ClientFactory, caplog: pytest.LogCaptureFixture,
) -> None:
    allowed = "+14385550199"
    voipms_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        voipms_entry, options={"allowed_senders": {VOIPMS_NUMBER: [allowed]}})
    voipms = await load(hass, voipms_entry, hass_client_no_auth)

    with caplog.at_level(logging.WARNING):
        refused = await fake_voipms.fire_webhook(voipms.url, from_=SENDER, to=VOIPMS_NUMBER,
                                                 message="DISARM", id="7000")
    accepted = await fake_voipms.fire_webhook(voipms.url, from_=allowed, to=VOIPMS_NUMBER,
                                              message="ARM SV", id="7001")

    # Answered ok either way: a refusal would only make VoIP.ms send it again.
    assert refused == accepted == (200, "ok")
    assert [(e.data["from"], e.data["text"]) for e in voipms.received] == [(allowed, "ARM SV")]
    assert voipms.state(VOIPMS_NUMBER, "last_message").state == "ARM SV"
    assert f"from {SENDER}: not an allowed sender" in caplog.text


async def test_malformed_webhook_is_a_400_and_fires_nothing(voipms: Loaded) -> None:
    answer = await voipms.post_fixture("webhook_no_payload.json")

    assert answer.status == 400
    assert voipms.received == []
    assert voipms.state(VOIPMS_NUMBER, "last_message").state == STATE_UNKNOWN


async def test_text_not_fetchable_yet_is_a_503_then_arrives_when_resent(
    voipms: Loaded, fake_voipms: FakeVoipms,
) -> None:
    fake_voipms.add_received(8000, VOIPMS_DID, "4385550123", "late text")
    fake_voipms.http_error_next(503, methods={"getSMS"})
    template = voipms.url + ID_ONLY_TEMPLATE

    first = await fake_voipms.fire_url_callback(template, id="8000", **ID_ONLY)
    assert first[0] == 503
    assert voipms.received == []
    resent = await fake_voipms.fire_url_callback(template, id="8000", **ID_ONLY)

    assert resent == (200, "ok")
    assert [e.data["text"] for e in voipms.received] == ["late text"]


async def test_a_long_text_is_cut_in_the_state_and_whole_in_the_attribute(
    voipms: Loaded, fake_voipms: FakeVoipms,
) -> None:
    text = "word " * 100

    await fake_voipms.fire_webhook(voipms.url, from_=SENDER, to=VOIPMS_NUMBER, message=text,
                                   id="9000")

    sensor = voipms.state(VOIPMS_NUMBER, "last_message")
    assert len(sensor.state) == 255
    assert sensor.state == text[:254] + "…"
    assert sensor.attributes["message"] == text


async def test_the_sensor_comes_back_with_the_last_text_after_a_restart(
    hass: HomeAssistant, voipms_entry: MockConfigEntry, hass_client_no_auth: ClientFactory,
) -> None:
    voipms_entry.add_to_hass(hass)
    sensor_id = "sensor.15145550100_last_message"
    er.async_get(hass).async_get_or_create(
        "sensor", "smsbridge", f"{voipms_entry.entry_id}_{VOIPMS_NUMBER}_last_message",
        config_entry=voipms_entry, suggested_object_id="15145550100_last_message")
    attributes = {"from": SENDER, "message": "ARM SV", "message_id": "42",
                  "last_updated": "2024-05-20T15:29:45+00:00", "media": []}
    mock_restore_cache_with_extra_data(hass, [(
        State(sensor_id, "ARM SV", attributes),
        {"native_value": "ARM SV", "native_unit_of_measurement": None})])

    voipms = await load(hass, voipms_entry, hass_client_no_auth)

    sensor = voipms.state(VOIPMS_NUMBER, "last_message")
    assert sensor.entity_id == sensor_id
    assert sensor.state == "ARM SV"
    assert {key: sensor.attributes[key] for key in attributes} == attributes


async def test_twilio_signed_webhook_is_received_and_answered_with_twiml(
    twilio: Loaded, fake_twilio: FakeTwilio,
) -> None:
    sid = "SM" + "1" * 32

    status, headers, body = await fake_twilio.fire_inbound(
        twilio.url, from_=SENDER, to=TWILIO_NUMBER, body="ARM SV", message_sid=sid)

    assert status == 200
    assert headers["content-type"].startswith("application/xml")
    assert body.strip().endswith(b"<Response/>")
    assert [e.data for e in twilio.received] == [{
        "from": SENDER, "to": TWILIO_NUMBER, "text": "ARM SV", "media": [],
        "message_id": sid, "entry_id": twilio.entry.entry_id}]
    assert twilio.state(TWILIO_NUMBER, "last_message").state == "ARM SV"


async def test_twilio_webhook_with_a_bad_signature_is_a_403_and_fires_nothing(
    twilio: Loaded, fake_twilio: FakeTwilio,
) -> None:
    status, _, _ = await fake_twilio.fire_inbound(
        twilio.url, from_=SENDER, to=TWILIO_NUMBER, body="DISARM", bad_signature=True)

    assert status == 403
    assert twilio.received == []
    assert twilio.state(TWILIO_NUMBER, "last_message").state == STATE_UNKNOWN
    assert twilio.state(TWILIO_NUMBER, "messages").state == STATE_UNKNOWN


async def test_twilio_signed_over_the_external_url_is_accepted_behind_a_proxy(
    hass: HomeAssistant, fake_twilio: FakeTwilio, twilio_entry: MockConfigEntry,
    hass_client_no_auth: ClientFactory,
) -> None:
    """Twilio signs the URL it called; HA behind a proxy sees its own address instead."""
    await hass.config.async_update(external_url="https://home.example.net")
    twilio = await load(hass, twilio_entry, hass_client_no_auth)

    status, _, _ = await fake_twilio.fire_inbound(
        twilio.url, from_=SENDER, to=TWILIO_NUMBER, body="ARM SV",
        signature_url=f"https://home.example.net{twilio.path}")
    forged, _, _ = await fake_twilio.fire_inbound(
        twilio.url, from_=SENDER, to=TWILIO_NUMBER, body="ARM SV",
        signature_url=f"https://elsewhere.example.org{twilio.path}")

    assert (status, forged) == (200, 403)
    assert len(twilio.received) == 1


async def test_twilio_receipt_fires_message_status_on_the_event_entity(
    twilio: Loaded, fake_twilio: FakeTwilio,
) -> None:
    sid = "SM" + "2" * 32

    status, _, _ = await fake_twilio.fire_status(twilio.url + "?kind=status", sid,
                                                 "undelivered", 30003)

    assert status == 200
    assert [(e.data["message_id"], e.data["status"], e.data["error_code"])
            for e in twilio.statuses] == [(sid, "failed", "30003")]
    event = twilio.state(TWILIO_NUMBER, "messages")
    assert event.attributes["event_type"] == "message_status"
    assert (event.attributes["message_id"], event.attributes["status"]) == (sid, "failed")
    # A receipt is not a text: the last-message sensor is untouched.
    assert twilio.state(TWILIO_NUMBER, "last_message").state == STATE_UNKNOWN


async def test_a_receipt_with_a_bad_signature_is_a_403(
    twilio: Loaded, fake_twilio: FakeTwilio,
) -> None:
    status, _, _ = await fake_twilio.fire_status(
        twilio.url + "?kind=status", "SM" + "3" * 32, "delivered", bad_signature=True)

    assert status == 403
    assert twilio.statuses == []


async def test_twilio_relayed_by_home_assistant_cloud_is_checked_against_the_cloudhook(
    hass: HomeAssistant, twilio: Loaded, fake_twilio: FakeTwilio,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Home Assistant Cloud hands the webhook a rebuilt request; Twilio signed the cloudhook."""
    cloudhook = "https://hooks.nabu.casa/gAAAAAB-smsbridge-test"
    # A logged-in cloud that knows the cloudhook; the real component needs a Nabu Casa
    # account, and on HA 2026 the requirements of half a dozen other components.
    cloud = ModuleType("homeassistant.components.cloud")
    cloud.async_active_subscription = lambda hass: True  # type: ignore[attr-defined]
    cloud.async_get_or_create_cloudhook = AsyncMock(  # type: ignore[attr-defined]
        return_value=cloudhook)
    monkeypatch.setitem(sys.modules, cloud.__name__, cloud)
    monkeypatch.setattr(homeassistant.components, "cloud", cloud, raising=False)
    hass.config.components.add("cloud")
    params = fake_twilio.inbound_params(from_=SENDER, to=TWILIO_NUMBER, body="ARM SV")

    def relayed(signed_url: str) -> MockRequest:
        return MockRequest(
            content=urlencode(params).encode(), mock_source="cloud", method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded",
                     "X-Twilio-Signature": twilio_signature(TWILIO_TOKEN, signed_url, params)})

    webhook_id = twilio.entry.data["webhook_id"]
    signed = await async_handle_webhook(hass, webhook_id, relayed(cloudhook))
    forged = await async_handle_webhook(
        hass, webhook_id, relayed(f"https://elsewhere.example.org{twilio.path}"))

    assert (signed.status, forged.status) == (200, 403)
    assert [e.data["text"] for e in twilio.received] == ["ARM SV"]


async def test_voipms_relayed_by_home_assistant_cloud_is_received(
    hass: HomeAssistant, voipms: Loaded,
) -> None:
    request = MockRequest(content=(FIXTURES / "webhook_sms.json").read_bytes(),
                          mock_source="cloud", method="POST",
                          headers={"Content-Type": "application/json"})

    answer = await async_handle_webhook(hass, voipms.entry.data["webhook_id"], request)

    assert (answer.status, answer.body) == (200, b"ok")
    assert [e.data["message_id"] for e in voipms.received] == ["123456801"]


async def test_a_receipt_reaches_the_event_entity_of_the_number_that_sent_it(
    hass: HomeAssistant, fake_twilio: FakeTwilio, twilio_entry: MockConfigEntry,
    hass_client_no_auth: ClientFactory,
) -> None:
    other = "+15145550122"
    twilio_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        twilio_entry, options={"numbers": [TWILIO_NUMBER, other]})
    twilio = await load(hass, twilio_entry, hass_client_no_auth)
    sid = "SM" + "4" * 32
    # What sending does (the notify entity and actions): note which number sent it.
    twilio.entry.runtime_data.remember_sent([sid], other)

    status, _, _ = await fake_twilio.fire_status(twilio.url + "?kind=status", sid, "delivered")

    assert status == 200
    assert [(e.data["message_id"], e.data["from"]) for e in twilio.statuses] == [(sid, other)]
    assert twilio.state(other, "messages").attributes["status"] == "delivered"
    assert twilio.state(TWILIO_NUMBER, "messages").state == STATE_UNKNOWN


async def test_a_provider_bug_is_a_500_so_the_carrier_sends_it_again(
    voipms: Loaded, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(request: object) -> None:
        raise KeyError("payload")

    monkeypatch.setattr(voipms.entry.runtime_data.provider, "parse_inbound", broken)

    answer = await voipms.post_fixture("webhook_sms.json")

    # Home Assistant's own answer to a handler that raises is a 200: the text would be lost.
    assert answer.status == 500
    assert voipms.received == []
    assert "inbound webhook failed unexpectedly" in caplog.text

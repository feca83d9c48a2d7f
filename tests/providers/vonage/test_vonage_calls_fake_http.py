"""Our Vonage provider's calls against FakeVonage over real HTTP: create, then signed events."""

from __future__ import annotations

from collections.abc import Iterator

import aiohttp
import pytest

from smsbridge.core.errors import ProviderError
from smsbridge.core.messages import MessageStatus, OutboundCall
from smsbridge.providers.vonage.provider import VonageConfig, VonageProvider
from smsbridge.testing.fake_vonage import FakeVonage, application_key_pair
from smsbridge.testing.server import RunningServer, start_server
from tests.providers.receiver import WebhookReceiver

APP_ID = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
SIG_SECRET = "ahq1Lg3Zq0yVb8pM2nRkT5sWd7fXe9hJ"
FROM, TO = "+15145550100", "+14385550123"

Servers = tuple[FakeVonage, RunningServer, WebhookReceiver, RunningServer, str]


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    private_pem, public_pem = application_key_pair()
    fake = FakeVonage(signature_secret=SIG_SECRET, application_id=APP_ID,
                      application_public_key=public_pem)
    receiver = WebhookReceiver(VonageProvider(VonageConfig(
        api_key=fake.api_key, api_secret=fake.api_secret, signature_secret=SIG_SECRET)),
        "/in", "/status")
    fake_server, receiver_server = start_server(fake.app), start_server(receiver.app)
    yield fake, fake_server, receiver, receiver_server, private_pem
    fake_server.stop()
    receiver_server.stop()


@pytest.fixture
def fake(servers: Servers) -> FakeVonage:
    servers[0].reset()
    servers[2].clear()
    return servers[0]


def provider_for(servers: Servers, private_pem: str) -> VonageProvider:
    fake, fake_server = servers[0], servers[1]
    return VonageProvider(VonageConfig(api_key=fake.api_key, api_secret=fake.api_secret,
                                       signature_secret=SIG_SECRET, application_id=APP_ID,
                                       private_key=private_pem, base_url=fake_server.url))


def alarm_call(servers: Servers) -> OutboundCall:
    return OutboundCall("call_a", FROM, TO, 'Alarm <Front> & "back"', voice="2",
                        language="en-GB", repeat=2,
                        status_callback_url=f"{servers[3].url}/status")


@pytest.mark.parametrize(("ending", "status", "answer"), [
    ("completed", MessageStatus.DELIVERED, None), ("busy", MessageStatus.FAILED, "busy"),
    ("timeout", MessageStatus.FAILED, "no-answer"),
    ("cancelled", MessageStatus.FAILED, "canceled")])
async def test_call_is_created_with_its_ncco_and_its_events_end_it(
        servers: Servers, fake: FakeVonage, http: aiohttp.ClientSession, ending: str,
        status: MessageStatus, answer: str | None) -> None:
    result = await provider_for(servers, servers[4]).place_call(alarm_call(servers), http)
    [placed] = fake.calls
    assert (placed.uuid, placed.from_, placed.to, placed.event_url) == (
        result.carrier_message_id, "15145550100", "14385550123", f"{servers[3].url}/status")
    assert placed.spoken == [{"action": "talk", "text": 'Alarm <Front> & "back"', "loop": 2,
                              "language": "en-GB", "style": 2}]

    answers = await fake.end_call(placed, ending)
    assert {code for code, _, _ in answers} == {200}
    last = servers[2].statuses[-1]
    assert (last.carrier_message_id, last.status, last.error_code) == (
        result.carrier_message_id, status, answer)


async def test_forged_or_unsigned_events_are_refused(servers: Servers, fake: FakeVonage,
                                                     http: aiohttp.ClientSession) -> None:
    await provider_for(servers, servers[4]).place_call(alarm_call(servers), http)
    placed = fake.calls[0]
    forged, _, _ = await fake.fire_call_event(placed, "completed", bad_signature=True)
    unsigned, _, _ = await fake.fire_call_event(placed, "completed", signed=False)
    assert (forged, unsigned) == (403, 403)
    assert servers[2].statuses == []


async def test_a_key_of_another_application_is_refused_permanently(
        servers: Servers, fake: FakeVonage, http: aiohttp.ClientSession) -> None:
    other_private, _ = application_key_pair()
    with pytest.raises(ProviderError) as caught:
        await provider_for(servers, other_private).place_call(alarm_call(servers), http)
    assert (caught.value.retryable, caught.value.code) == (False, "http_401")
    assert fake.calls == [] and fake.requests[0].auth_ok is False


async def test_throttling_is_retryable(servers: Servers, fake: FakeVonage,
                                       http: aiohttp.ClientSession) -> None:
    fake.fail_next_call(429, "Please wait, then retry your request", retry_after=1)
    with pytest.raises(ProviderError) as caught:
        await provider_for(servers, servers[4]).place_call(alarm_call(servers), http)
    assert (caught.value.retryable, caught.value.retry_after) == (True, 1.0)
    assert fake.calls == []

"""Our Telnyx provider against FakeTelnyx over real HTTP, and the fake's webhooks against it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import aiohttp
import pytest

from smsbridge.core.errors import ProviderError
from smsbridge.core.messages import MessageStatus, OutboundMessage
from smsbridge.providers.telnyx.provider import TelnyxConfig, TelnyxProvider
from smsbridge.testing.fake_telnyx import FakeTelnyx
from smsbridge.testing.server import RunningServer, start_server
from tests.providers.receiver import WebhookReceiver as Receiver

FROM, TO = "+15145550100", "+14385550123"


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[FakeTelnyx, RunningServer, Receiver, RunningServer]]:
    fake = FakeTelnyx()
    receiver = Receiver(TelnyxProvider(TelnyxConfig(api_key=fake.api_key,
                                                    public_key=fake.public_key)),
                        "/in", "/status")
    fake_server, receiver_server = start_server(fake.app), start_server(receiver.app)
    yield fake, fake_server, receiver, receiver_server
    fake_server.stop()
    receiver_server.stop()


@pytest.fixture
def fake(servers: tuple[FakeTelnyx, RunningServer, Receiver, RunningServer]) -> FakeTelnyx:
    servers[0].reset()
    return servers[0]


@pytest.fixture
def receiver(servers: tuple[FakeTelnyx, RunningServer, Receiver, RunningServer]) -> Receiver:
    servers[2].clear()
    return servers[2]


@pytest.fixture
def receiver_url(servers: tuple[FakeTelnyx, RunningServer, Receiver, RunningServer]) -> str:
    return servers[3].url


@pytest.fixture
def provider(servers: tuple[FakeTelnyx, RunningServer, Receiver, RunningServer]
             ) -> TelnyxProvider:
    fake, fake_server = servers[0], servers[1]
    return TelnyxProvider(TelnyxConfig(api_key=fake.api_key, public_key=fake.public_key,
                                       base_url=fake_server.url))


async def test_send_then_receipts_round_trip(fake: FakeTelnyx, provider: TelnyxProvider,
                                             receiver: Receiver, receiver_url: str,
                                             http: aiohttp.ClientSession) -> None:
    message = OutboundMessage("m1", FROM, TO, "x" * 200,
                              status_callback_url=f"{receiver_url}/status")
    result = await provider.send(message, http)
    assert result.segments == 2  # 200 GSM-7 characters: 153 + 47
    [sent] = fake.messages
    assert (sent.id, sent.to, sent.from_, sent.webhook_url) == (
        result.carrier_message_id, TO, FROM, f"{receiver_url}/status")
    assert [status for status, _, _ in await fake.deliver_all()] == [200, 200]
    assert [(u.carrier_message_id, u.status) for u in receiver.statuses] == [
        (result.carrier_message_id, MessageStatus.SENT),
        (result.carrier_message_id, MessageStatus.DELIVERED)]


async def test_wrong_api_key_is_permanent_and_not_leaked(
        fake: FakeTelnyx, servers: tuple[FakeTelnyx, RunningServer, Receiver, RunningServer],
        http: aiohttp.ClientSession) -> None:
    wrong = "KEY0WRONG" + "0" * 40
    provider = TelnyxProvider(TelnyxConfig(api_key=wrong, public_key=fake.public_key,
                                           base_url=servers[1].url))
    with pytest.raises(ProviderError) as caught:
        await provider.send(OutboundMessage("m1", FROM, TO, "x"), http)
    assert (caught.value.code, caught.value.retryable) == ("10009", False)
    assert wrong not in str(caught.value)


async def test_invalid_to_is_permanent(fake: FakeTelnyx, provider: TelnyxProvider,
                                       http: aiohttp.ClientSession) -> None:
    with pytest.raises(ProviderError) as caught:
        await provider.send(OutboundMessage("m1", FROM, "4385550123", "x"), http)
    assert (caught.value.code, caught.value.retryable) == ("40310", False)
    assert fake.messages == []


async def test_timeout_is_retryable(fake: FakeTelnyx, provider: TelnyxProvider,
                                    http: aiohttp.ClientSession) -> None:
    fake.delay_seconds = 1.0
    slow = TelnyxProvider(provider.config.model_copy(update={"timeout_seconds": 0.2}))
    with pytest.raises(ProviderError) as caught:
        await slow.send(OutboundMessage("m1", FROM, TO, "x"), http)
    assert (caught.value.code, caught.value.retryable) == ("timeout", True)


async def test_fake_serves_the_message_record(fake: FakeTelnyx, provider: TelnyxProvider,
                                              http: aiohttp.ClientSession) -> None:
    result = await provider.send(OutboundMessage("m1", FROM, TO, "hi"), http)
    url = f"{provider.base_url}/v2/messages/{result.carrier_message_id}"
    async with http.get(url, headers={"Authorization": f"Bearer {fake.api_key}"}) as resp:
        record = json.loads(await resp.read())["data"]
    assert (record["id"], record["to"][0]["phone_number"], record["to"][0]["status"]) == (
        result.carrier_message_id, TO, "queued")


async def test_fake_inbound_verifies_and_parses(fake: FakeTelnyx, receiver: Receiver,
                                                receiver_url: str) -> None:
    status, _, _ = await fake.fire_inbound(f"{receiver_url}/in", from_=TO, to=FROM,
                                           text="ARM SV", media=[("https://m/1.jpg",
                                                                  "image/jpeg")])
    assert status == 200
    [message] = receiver.inbound
    assert (message.from_number, message.to_number, message.text) == (TO, FROM, "ARM SV")
    assert [m.url for m in message.media] == ["https://m/1.jpg"]


async def test_fake_bad_signature_is_refused(fake: FakeTelnyx, receiver: Receiver,
                                             receiver_url: str) -> None:
    status, _, _ = await fake.fire_inbound(f"{receiver_url}/in", from_=TO, to=FROM,
                                           text="x", bad_signature=True)
    assert status == 403 and receiver.inbound == []

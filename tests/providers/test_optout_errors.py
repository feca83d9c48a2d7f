"""Carriers' "recipient opted out" refusals say so on the ProviderError, and nothing else does.

Each carrier's recorded error answer is replayed over HTTP to its real provider; the
gateway's outbox puts the recipient on its own list when ``recipient_opted_out`` is set.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from smsbridge.core.errors import ProviderError
from smsbridge.core.messages import OutboundMessage
from smsbridge.providers.base import Provider
from smsbridge.providers.signalwire.provider import SignalWireConfig, SignalWireProvider
from smsbridge.providers.telnyx.provider import TelnyxConfig, TelnyxProvider
from smsbridge.providers.twilio.provider import TwilioConfig, TwilioProvider
from smsbridge.testing.server import RunningServer
from tests.providers.replay import Replay

PROVIDERS = Path(__file__).parent
MESSAGE = OutboundMessage("01J5", "+15145550100", "+14385550123", "Porch motion")


def twilio(base_url: str) -> Provider[Any]:
    return TwilioProvider(TwilioConfig(account_sid="AC" + "5ca1ab1e" * 4,
                                       auth_token="fa4e70ce" * 4, base_url=base_url))


def signalwire(base_url: str) -> Provider[Any]:
    return SignalWireProvider(SignalWireConfig(
        space="example.signalwire.com", project_id="4b7ae78a-d02e-4889-a63b-08b156d5916e",
        api_token="PT" + "3c1d9e0f" * 6, signing_key="PSK_Te5tS1gn1ngKeyN0tR3al",
        base_url=base_url))


def telnyx(base_url: str) -> Provider[Any]:
    return TelnyxProvider(TelnyxConfig(api_key="KEY0188F2C1A8B94D3EA0C2D7_9bq4Xk2mZ8rT1vW5",
                                       public_key="A" * 43 + "=", base_url=base_url))


@pytest.fixture(scope="module")
def new_replay() -> Replay:
    """Answers each send with the recorded body the test loads."""
    return Replay(400, "application/json", lambda _request, _body: None)


REFUSALS = [
    pytest.param(twilio, "twilio/fixtures/error_21610.json", 400, True, id="twilio-21610"),
    pytest.param(twilio, "twilio/fixtures/error_21211.json", 400, False, id="twilio-21211"),
    pytest.param(twilio, "twilio/fixtures/error_20429.json", 429, False, id="twilio-20429"),
    pytest.param(signalwire, "signalwire/fixtures/error_21610.json", 400, True,
                 id="signalwire-21610"),
    pytest.param(signalwire, "signalwire/fixtures/error_21606.json", 400, False,
                 id="signalwire-21606"),
    pytest.param(telnyx, "telnyx/fixtures/error_40300.json", 409, True, id="telnyx-40300"),
    pytest.param(telnyx, "telnyx/fixtures/error_40310.json", 400, False, id="telnyx-40310"),
    pytest.param(telnyx, "telnyx/fixtures/error_502_gateway.html", 502, False,
                 id="telnyx-not-json"),
]


@pytest.mark.parametrize(("make", "fixture", "status", "opted_out"), REFUSALS)
async def test_only_an_opted_out_refusal_is_flagged(
        replay: Replay, replay_server: tuple[Replay, RunningServer],
        http: aiohttp.ClientSession, make: Any, fixture: str, status: int,
        opted_out: bool) -> None:
    replay.load(PROVIDERS / fixture, status)
    with pytest.raises(ProviderError) as caught:
        await make(replay_server[1].url).send(MESSAGE, http)
    assert caught.value.recipient_opted_out is opted_out
    if opted_out:
        assert caught.value.retryable is False


async def test_twilio_201_carrying_21610_is_flagged(
        replay: Replay, replay_server: tuple[Replay, RunningServer],
        http: aiohttp.ClientSession) -> None:
    resource = json.loads((PROVIDERS / "twilio/fixtures/send_201_sms.json").read_text())
    resource.update(error_code=21610, error_message="Attempt to send to unsubscribed recipient")
    replay.status, replay.body = 201, json.dumps(resource).encode()
    with pytest.raises(ProviderError) as caught:
        await twilio(replay_server[1].url).send(MESSAGE, http)
    assert (caught.value.code, caught.value.recipient_opted_out) == ("21610", True)


def test_an_error_is_no_opt_out_unless_it_says_so() -> None:
    assert ProviderError("timeout", retryable=True).recipient_opted_out is False

"""Our Plivo provider's calls against FakePlivo over real HTTP: place, answer, hang up.

The gateway's own answer URL and status URL are stood in for by a small app that does what
they are specified to do: verify with the provider, then serve ``call_answer`` or parse.
"""

from __future__ import annotations

from collections.abc import Iterator

import aiohttp
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smsbridge.core.errors import ProviderError, WebhookRejected
from smsbridge.core.messages import MessageStatus, OutboundCall
from smsbridge.providers.base import WebhookRequest
from smsbridge.providers.plivo.provider import PlivoConfig, PlivoProvider
from smsbridge.testing.fake_plivo import FakePlivo
from smsbridge.testing.server import RunningServer, start_server
from tests.providers.receiver import WebhookReceiver

FROM, TO = "+15145550100", "+14385550123"


class AnswerEndpoint:
    """Serves each known call's ``call_answer`` at /calls/{id}/answer, after ``verify``."""

    def __init__(self, provider: PlivoProvider) -> None:
        self.provider = provider
        self.calls: dict[str, OutboundCall] = {}
        self.app = Starlette(routes=[Route("/calls/{call_id}/answer", self.answer,
                                           methods=["GET", "POST"])])

    async def answer(self, request: Request) -> Response:
        webhook = WebhookRequest(request.method, str(request.url),
                                 {k.lower(): v for k, v in request.headers.items()},
                                 list(request.query_params.multi_items()), await request.body())
        try:
            self.provider.verify(webhook)
        except WebhookRejected as exc:
            return Response(exc.reason, 403)
        call = self.calls.get(request.path_params["call_id"])
        if call is None:
            return Response("no such call", 404)
        reply = self.provider.call_answer(call)
        return Response(reply.body, reply.status, media_type=reply.content_type)


Servers = tuple[FakePlivo, RunningServer, AnswerEndpoint, WebhookReceiver, RunningServer,
                RunningServer]


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    fake = FakePlivo()
    gateway_side = PlivoProvider(PlivoConfig(auth_id=fake.auth_id, auth_token=fake.auth_token))
    answers = AnswerEndpoint(gateway_side)
    receiver = WebhookReceiver(gateway_side, "/in", "/status")
    running = [start_server(app) for app in (fake.app, answers.app, receiver.app)]
    yield fake, running[0], answers, receiver, running[1], running[2]
    for server in running:
        server.stop()


@pytest.fixture
def fake(servers: Servers) -> FakePlivo:
    servers[0].reset()
    servers[3].clear()
    return servers[0]


@pytest.fixture
def provider(servers: Servers) -> PlivoProvider:
    fake, fake_server = servers[0], servers[1]
    return PlivoProvider(PlivoConfig(auth_id=fake.auth_id, auth_token=fake.auth_token,
                                     base_url=fake_server.url))


def outbound_call(servers: Servers, call_id: str, say: str, voice: str | None = None,
                  language: str | None = None, repeat: int = 1) -> OutboundCall:
    """A call whose answer and status URLs are the stand-in gateway's; it knows the call."""
    answers, answers_server, receiver_server = servers[2], servers[4], servers[5]
    call = OutboundCall(call_id, FROM, TO, say, voice, language, repeat,
                        status_callback_url=f"{receiver_server.url}/status",
                        answer_url=f"{answers_server.url}/calls/{call_id}/answer")
    answers.calls[call_id] = call
    return call


async def test_call_is_placed_answered_with_speak_and_completed(
        servers: Servers, fake: FakePlivo, provider: PlivoProvider,
        http: aiohttp.ClientSession) -> None:
    call = outbound_call(servers, "call_a", 'Alarm <Front> & "back"', voice="MAN",
                         language="en-GB", repeat=2)
    result = await provider.place_call(call, http)
    [placed] = fake.calls
    assert (placed.request_uuid, placed.from_, placed.to, placed.answer_url,
            placed.hangup_url) == (result.carrier_message_id, "15145550100", "14385550123",
                                   call.answer_url, call.status_callback_url)

    status, _, _ = await fake.answer(placed)
    assert status == 200
    assert placed.spoken == [{"voice": "MAN", "language": "en-GB", "loop": "2",
                              "text": 'Alarm <Front> & "back"'}]

    status, _, _ = await fake.hang_up(placed, "completed")
    assert status == 200
    [update] = servers[3].statuses
    assert (update.carrier_message_id, update.status, update.error_code) == (
        result.carrier_message_id, MessageStatus.DELIVERED, None)


@pytest.mark.parametrize(("ending", "answer"), [("busy", "busy"), ("no-answer", "no-answer"),
                                                ("timeout", "no-answer"), ("failed", "failed")])
async def test_unanswered_endings_fail_with_the_callees_answer(
        servers: Servers, fake: FakePlivo, provider: PlivoProvider,
        http: aiohttp.ClientSession, ending: str, answer: str) -> None:
    result = await provider.place_call(outbound_call(servers, "call_b", "Leak!"), http)
    status, _, _ = await fake.hang_up(fake.calls[0], ending)
    assert status == 200
    [update] = servers[3].statuses
    assert (update.carrier_message_id, update.status, update.error_code) == (
        result.carrier_message_id, MessageStatus.FAILED, answer)


async def test_forged_answer_fetch_and_hangup_are_refused(
        servers: Servers, fake: FakePlivo, provider: PlivoProvider,
        http: aiohttp.ClientSession) -> None:
    await provider.place_call(outbound_call(servers, "call_c", "secret words"), http)
    placed = fake.calls[0]
    status, _, body = await fake.answer(placed, bad_signature=True)
    assert status == 403 and b"secret words" not in body
    status, _, _ = await fake.hang_up(placed, "completed", signed=False)
    assert status == 403
    assert servers[3].statuses == []


async def test_refused_call_is_permanent_and_a_5xx_is_retryable(
        servers: Servers, fake: FakePlivo, provider: PlivoProvider,
        http: aiohttp.ClientSession) -> None:
    call = outbound_call(servers, "call_d", "x")
    fake.fail_next(400, "invalid 'to' parameter")
    with pytest.raises(ProviderError) as refused:
        await provider.place_call(call, http)
    fake.fail_next(503, "service unavailable")
    with pytest.raises(ProviderError) as unavailable:
        await provider.place_call(call, http)
    assert (refused.value.retryable, unavailable.value.retryable) == (False, True)
    assert fake.calls == []

"""The Twilio-compatible face end to end: twilio-python's own ``Client``, pointed at smsbridge.

Two accounts are made with the admin key. Acme sends through its VoIP.ms connection (the
fake VoIP.ms) and Globex calls through its sandbox connection, each with
``twilio.rest.Client(AccountSid, auth_token)`` and the client's base URL set to the gateway:
no Twilio account is involved. The auth token is read as ``smsbridge accounts token`` reads
it. Status callbacks and inbound webhooks are checked with twilio-python's own
``RequestValidator``.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import aiohttp
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from smsbridge.gateway.admin import open_gateway
from smsbridge.gateway.config import Settings, settings_from_dict
from smsbridge.testing.fake_voipms import FakeVoipms
from smsbridge.testing.server import RunningServer, start_server
from tests.conftest import FAST_WORKER, eventually
from tests.harness import GatewayHarness, run_sync
from tests.receiver import WebhookReceiver

T = TypeVar("T")

USERNAME = "acme@example.com"
API_PASSWORD = "acme-api-pass-7f3c9"
HOUSE_NUMBER = "+15555550100"  # the config file's sandbox connection (default account)
ACME_NUMBER = "+15145550100"  # Acme's VoIP.ms DID
GLOBEX_NUMBER = "+15145550200"  # Globex's sandbox number (it can place calls)
PEER = "+14385550123"
OTHER_PEER = "+14385550199"
UNKNOWN_NUMBER = "+15145550999"
MADE_UP_ACCOUNT = "acc_" + "0" * 32


def face_settings(database: str) -> Settings:
    """A gateway with a config-file sandbox connection; webhooks on 127.0.0.1 allowed."""
    return settings_from_dict({
        "server": {"database": database, "allow_private_webhooks": True},
        "worker": FAST_WORKER,
        "connections": [{"name": "house", "carrier": "sandbox", "numbers": [HOUSE_NUMBER]}],
        "webhooks": [],
    })


async def off_loop(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking twilio-python call on a thread, as an app's worker would."""
    return await asyncio.to_thread(call, *args, **kwargs)


@dataclass
class Tenant:
    """One account as its app sees it: its AccountSid, auth token and an API key."""

    gateway: GatewayHarness
    http: aiohttp.ClientSession
    sid: str
    token: str
    key: str
    inbound_url: str = ""

    def client(self, username: str | None = None, password: str | None = None) -> Client:
        """twilio-python's Client with these credentials (default: SID and auth token)."""
        client = Client(username or self.sid, password or self.token, self.sid)
        client.api.base_url = self.gateway.url  # instead of https://api.twilio.com
        return client

    async def v1(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        """smsbridge's own /v1 API with the account's key; the JSON of a ``status`` answer."""
        async with self.http.request(method, f"{self.gateway.url}{path}", json=body,
                                     headers={"Authorization": f"Bearer {self.key}"}) as resp:
            text = await resp.text()
            assert resp.status == status, (method, path, text)
            return json.loads(text) if text else None


@dataclass
class Face:
    """A running gateway with the two tenants."""

    gateway: GatewayHarness
    acme: Tenant
    globex: Tenant


def account_token(settings: Settings, account_id: str) -> str:
    """The account's auth token, read as `smsbridge accounts token ID` reads it."""

    async def read() -> str:
        async with open_gateway(settings, create_secret_key=True) as gateway:
            return await gateway.account_auth_token(gateway.cli_scope, account_id)

    return run_sync(read())


async def make_tenant(gw: GatewayHarness, http: aiohttp.ClientSession, name: str,
                      connection: dict[str, Any]) -> Tenant:
    """An account with a key of its own and ``connection`` added through the API."""
    admin = Tenant(gw, http, "", "", gw.api_key)
    account = await admin.v1("POST", "/v1/accounts", {"name": name}, 201)
    made = await admin.v1("POST", f"/v1/accounts/{account['id']}/keys", {"name": name}, 201)
    tenant = Tenant(gw, http, account["id"], account_token(gw.settings, account["id"]),
                    made["key"])
    added = await tenant.v1("POST", "/v1/connections", connection, 201)
    tenant.inbound_url = added["inbound_url"]
    return tenant


@pytest.fixture
def fake() -> FakeVoipms:
    """The fake VoIP.ms that Acme's connection talks to."""
    return FakeVoipms(username=USERNAME, api_password=API_PASSWORD)


@pytest.fixture
def start_face(start_gateway: Callable[..., GatewayHarness], http: aiohttp.ClientSession,
               fake_server: RunningServer) -> Callable[[str], Any]:
    """``await start(database)``: a gateway with Acme (VoIP.ms) and Globex (sandbox)."""

    async def start(database: str) -> Face:
        gw = start_gateway(face_settings(database))
        acme = await make_tenant(gw, http, "Acme", {
            "name": "acme-voipms", "carrier": "voipms", "numbers": [ACME_NUMBER],
            "settings": {"base_url": fake_server.url, "username": USERNAME,
                         "api_password": API_PASSWORD}})
        globex = await make_tenant(gw, http, "Globex", {
            "name": "globex-sandbox", "carrier": "sandbox", "numbers": [GLOBEX_NUMBER],
            "settings": {}})
        return Face(gw, acme, globex)

    return start


async def refused(call: Callable[..., Any], *args: Any, **kwargs: Any) -> TwilioRestException:
    """The TwilioRestException a twilio-python call raises."""
    with pytest.raises(TwilioRestException) as caught:
        await off_loop(call, *args, **kwargs)
    return caught.value


async def raw(tenant: Tenant, method: str, path: str, *, auth: tuple[str, str] | None,
              form: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    """A request to the face without twilio-python: status, headers and JSON body."""
    headers = {}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
    async with tenant.http.request(method, f"{tenant.gateway.url}{path}", data=form,
                                   headers=headers) as resp:
        return resp.status, dict(resp.headers), json.loads(await resp.text())


# ------------------------------------------------------------------ sending and reading


async def test_a_twilio_app_sends_through_voipms_and_reads_the_message_back(
        database_url: str, start_face, fake: FakeVoipms) -> None:
    face = await start_face(database_url)
    acme = face.acme.client()

    created = await off_loop(acme.messages.create, to="438 555 0123", from_=ACME_NUMBER,
                             body="Porch motion at 02:14")
    assert created.sid.startswith("msg_")
    assert (created.status, created.direction) == ("queued", "outbound-api")
    assert (created.to, created.from_, created.body) == (PEER, ACME_NUMBER,
                                                         "Porch motion at 02:14")
    assert created.account_sid == face.acme.sid and created.messaging_service_sid == "acme-voipms"
    assert created.num_segments == "1" and created.date_created is not None
    assert created.uri == f"/2010-04-01/Accounts/{face.acme.sid}/Messages/{created.sid}.json"

    async def settled() -> Any:
        message = await off_loop(acme.messages(created.sid).fetch)
        return message if message.status not in ("queued", "sending") else None

    fetched = await eventually(settled)
    assert fetched.status in ("sent", "delivered"), (fetched.status, fetched.error_message)
    assert fetched.sid == created.sid and fetched.date_sent is not None
    assert fetched.error_code is None
    (carrier_sms,) = fake.sent
    assert (carrier_sms.did, carrier_sms.dst, carrier_sms.message) == (
        "5145550100", "4385550123", "Porch motion at 02:14")
    # smsbridge's own API shows the same message, in the same account.
    mine = await face.acme.v1("GET", f"/v1/messages/{created.sid}")
    assert (mine["to"], mine["connection"]) == (PEER, "acme-voipms")

    # A MessagingServiceSid names a connection; its only number is then the sender.
    by_service = await off_loop(acme.messages.create, to=OTHER_PEER, body="By service",
                                messaging_service_sid="acme-voipms")
    assert (by_service.from_, by_service.messaging_service_sid) == (ACME_NUMBER, "acme-voipms")
    account = await off_loop(acme.api.v2010.accounts(face.acme.sid).fetch)
    assert (account.sid, account.friendly_name, account.status) == (face.acme.sid, "Acme",
                                                                    "active")


async def test_lists_filter_to_and_from_exactly_and_page_like_twilio(
        sqlite_url: str, start_face, fake: FakeVoipms, http: aiohttp.ClientSession) -> None:
    face = await start_face(sqlite_url)
    acme = face.acme.client()
    first = await off_loop(acme.messages.create, to=PEER, from_=ACME_NUMBER, body="one")
    other = await off_loop(acme.messages.create, to=OTHER_PEER, from_=ACME_NUMBER, body="two")
    third = await off_loop(acme.messages.create, to=PEER, from_=ACME_NUMBER, body="three")
    status, body = await fake.fire_webhook(face.acme.inbound_url, from_=PEER, to=ACME_NUMBER,
                                           message="reply", id="7001")
    assert status == 200, body

    async def sids(**filters: Any) -> list[str]:
        return [m.sid for m in await off_loop(acme.messages.list, **filters)]

    received = await eventually(lambda: sids(from_=PEER))
    assert len(received) == 1 and received[0] not in (first.sid, other.sid, third.sid)
    # To= is the recipient only: the reply from PEER is not in it.
    assert await sids(to=PEER) == [third.sid, first.sid]
    assert await sids(to="438-555-0199", from_=ACME_NUMBER) == [other.sid]
    assert await sids(to=ACME_NUMBER) == received
    assert await sids() == [*received, third.sid, other.sid, first.sid]

    # Pages of two: twilio-python follows next_page_uri back to the gateway.
    assert await sids(page_size=2) == [*received, third.sid, other.sid, first.sid]
    page = await off_loop(acme.messages.page, page_size=2)
    assert [m.sid for m in page] == [*received, third.sid]
    second = await off_loop(page.next_page)
    assert [m.sid for m in second] == [other.sid, first.sid]
    assert await off_loop(second.next_page) is None

    # The envelope itself, as Twilio writes it.
    path = f"/2010-04-01/Accounts/{face.acme.sid}/Messages.json"
    status, _, envelope = await raw(face.acme, "GET", f"{path}?To={PEER}&PageSize=1",
                                    auth=(face.acme.sid, face.acme.token))
    assert status == 200
    assert [m["sid"] for m in envelope["messages"]] == [third.sid]
    assert (envelope["page"], envelope["page_size"], envelope["start"], envelope["end"]) == (
        0, 1, 0, 0)
    assert envelope["previous_page_uri"] is None
    assert envelope["first_page_uri"].startswith(path + "?")
    assert envelope["next_page_uri"].startswith(path + "?") and (
        "PageToken=" in envelope["next_page_uri"])
    status, _, next_page = await raw(face.acme, "GET", envelope["next_page_uri"],
                                     auth=(face.acme.sid, face.acme.token))
    assert [m["sid"] for m in next_page["messages"]] == [first.sid]
    assert next_page["next_page_uri"] is None and next_page["page"] == 1


# ------------------------------------------------------------------ errors


async def test_refusals_are_twilio_shaped_with_twilios_codes(
        sqlite_url: str, start_face, fake: FakeVoipms) -> None:
    face = await start_face(sqlite_url)
    acme = face.acme.client()

    bad_to = await refused(acme.messages.create, to="not a number", from_=ACME_NUMBER, body="x")
    assert (bad_to.status, bad_to.code) == (400, 21211)
    for sender in (GLOBEX_NUMBER, UNKNOWN_NUMBER):  # someone else's, and nobody's
        not_ours = await refused(acme.messages.create, to=PEER, from_=sender, body="x")
        assert (not_ours.status, not_ours.code) == (400, 21606), sender
    empty = await refused(acme.messages.create, to=PEER, from_=ACME_NUMBER, body="")
    assert (empty.status, empty.code) == (400, 21602)
    no_service = await refused(acme.messages.create, to=PEER, body="x",
                               messaging_service_sid="globex-sandbox")
    assert (no_service.status, no_service.code) == (400, 21705)

    await face.acme.v1("POST", "/v1/optouts", {"from": ACME_NUMBER, "to": PEER}, 201)
    opted_out = await refused(acme.messages.create, to=PEER, from_=ACME_NUMBER, body="x")
    assert (opted_out.status, opted_out.code) == (400, 21610)
    assert "opted out" in opted_out.msg

    wrong_token = face.acme.client(password="0" * 32)
    bad_token = await refused(wrong_token.messages.create, to=PEER, from_=ACME_NUMBER,
                              body="x")
    assert (bad_token.status, bad_token.code) == (401, 20003)

    # The error document itself, exactly as Twilio writes one.
    status, _, body = await raw(
        face.acme, "POST", f"/2010-04-01/Accounts/{face.acme.sid}/Messages.json",
        auth=(face.acme.sid, face.acme.token),
        form={"To": "12", "From": ACME_NUMBER, "Body": "x"})
    assert status == 400
    assert set(body) == {"code", "message", "more_info", "status"}
    assert (body["code"], body["status"]) == (21211, 400)
    assert body["more_info"] == "https://www.twilio.com/docs/errors/21211"

    assert fake.sent == []
    assert (await face.acme.v1("GET", "/v1/messages"))["data"] == []


async def test_credentials_work_only_on_their_own_accounts_path(
        sqlite_url: str, start_face, fake: FakeVoipms) -> None:
    face = await start_face(sqlite_url)
    sent = await off_loop(face.acme.client().messages.create, to=PEER, from_=ACME_NUMBER,
                          body="Acme only")
    globex = face.globex.client()

    # Globex's own credentials on Acme's path answer exactly as on an account that does not
    # exist; so does Acme's message read through Globex's own path.
    others = await refused(globex.api.v2010.accounts(face.acme.sid).messages(sent.sid).fetch)
    nobodys = await refused(globex.api.v2010.accounts(MADE_UP_ACCOUNT).messages(sent.sid).fetch)
    assert (others.status, others.code) == (nobodys.status, nobodys.code) == (404, 20404)
    assert others.msg == nobodys.msg.replace(MADE_UP_ACCOUNT, face.acme.sid)
    sending = await refused(globex.api.v2010.accounts(face.acme.sid).messages.create,
                            to=PEER, from_=ACME_NUMBER, body="borrowed")
    assert (sending.status, sending.code) == (404, 20404)
    through_own = await refused(globex.messages(sent.sid).fetch)
    assert (through_own.status, through_own.code) == (404, 20404)

    # An API key of the account works with any user name, as Twilio's API keys do; on the
    # other account's path it answers like an unknown account too.
    with_key = face.acme.client(username="SKany", password=face.acme.key)
    assert (await off_loop(with_key.messages(sent.sid).fetch)).body == "Acme only"
    keyed = await refused(with_key.api.v2010.accounts(face.globex.sid).messages.create,
                          to=PEER, from_=GLOBEX_NUMBER, body="x")
    assert (keyed.status, keyed.code) == (404, 20404)
    # Acme's auth token is no key to Globex's account.
    crossed = await refused(face.globex.client(password=face.acme.token).messages(sent.sid).fetch)
    assert (crossed.status, crossed.code) == (401, 20003)

    # Without credentials: Twilio's 401, a Basic challenge, and the body left unread.
    path = f"/2010-04-01/Accounts/{face.acme.sid}/Messages.json"
    status, headers, body = await raw(face.acme, "POST", path, auth=None,
                                      form={"To": PEER, "From": ACME_NUMBER, "Body": "x"})
    assert status == 401
    assert headers["WWW-Authenticate"] == 'Basic realm="smsbridge"'
    assert headers["Connection"] == "close"
    assert body == {"code": 20003, "message": "Authenticate",
                    "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}
    assert all(m.message == "Acme only" for m in fake.sent)


# ------------------------------------------------------------------ calls


async def test_a_twiml_call_is_spoken_through_a_voice_capable_connection(
        sqlite_url: str, start_face) -> None:
    face = await start_face(sqlite_url)
    globex = face.globex.client()

    call = await off_loop(globex.calls.create, to="438 555 0123", from_=GLOBEX_NUMBER,
                          twiml='<Response><Say voice="Polly.Joanna" language="en-US" loop="2">'
                                'Alarm: garage &amp; porch</Say></Response>')
    assert call.sid.startswith("call_")
    assert (call.status, call.direction, call.to, call._from) == (
        "queued", "outbound-api", PEER, GLOBEX_NUMBER)
    assert call.uri == f"/2010-04-01/Accounts/{face.globex.sid}/Calls/{call.sid}.json"
    mine = await face.globex.v1("GET", f"/v1/calls/{call.sid}")
    assert (mine["say"], mine["voice"], mine["language"], mine["repeat"]) == (
        "Alarm: garage & porch", "Polly.Joanna", "en-US", 2)
    assert mine["connection"] == "globex-sandbox"

    async def ended() -> Any:
        fetched = await off_loop(globex.calls(call.sid).fetch)
        return fetched if fetched.status in ("completed", "failed") else None

    assert (await eventually(ended)).status == "completed"
    assert [c.sid for c in await off_loop(globex.calls.list)] == [call.sid]

    # The simplest TwiML works too; a DTD is refused unread, and so is a carrier without voice.
    simple = await off_loop(globex.calls.create, to=PEER, from_=GLOBEX_NUMBER,
                            twiml="<Response><Say>Alarm</Say></Response>")
    assert (await face.globex.v1("GET", f"/v1/calls/{simple.sid}"))["say"] == "Alarm"
    entity = await refused(globex.calls.create, to=PEER, from_=GLOBEX_NUMBER, twiml=(
        '<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">]><Response><Say>&a;&a;</Say></Response>'))
    assert (entity.status, entity.code) == (400, 12100)
    no_voice = await refused(face.acme.client().calls.create, to=PEER, from_=ACME_NUMBER,
                             twiml="<Response><Say>Alarm</Say></Response>")
    assert (no_voice.status, no_voice.code) == (400, 21210)
    assert len((await face.globex.v1("GET", "/v1/calls"))["data"]) == 2


# ------------------------------------------------------------------ callbacks and webhooks


def form_of(body: bytes) -> dict[str, str]:
    """A posted form as a dict (Twilio's callbacks repeat no field)."""
    return dict(parse_qsl(body.decode(), keep_blank_values=True))


async def test_status_callbacks_are_signed_so_the_apps_request_validator_accepts_them(
        sqlite_url: str, start_face, fake: FakeVoipms, app_server: RunningServer,
        receiver: WebhookReceiver) -> None:
    face = await start_face(sqlite_url)
    callback = f"{app_server.url}/hook"
    created = await off_loop(face.acme.client().messages.create, to=PEER, from_=ACME_NUMBER,
                             body="With a callback", status_callback=callback)

    def statuses() -> list[str]:
        return [form_of(hit.body).get("MessageStatus", "") for hit in receiver.received]

    await eventually(lambda: "sent" in statuses() or "delivered" in statuses())
    validator = RequestValidator(face.acme.token)
    for hit in receiver.received:
        params = form_of(hit.body)
        signature = hit.headers["x-twilio-signature"]
        assert validator.validate(callback, params, signature), params
        assert not RequestValidator(face.globex.token).validate(callback, params, signature)
        assert (params["MessageSid"], params["AccountSid"]) == (created.sid, face.acme.sid)
        assert (params["From"], params["To"]) == (ACME_NUMBER, PEER)
        assert params["MessageStatus"] == params["SmsStatus"]
    assert "queued" not in statuses()


@dataclass
class TwimlApp:
    """The classic Twilio auto-reply app: records each inbound POST, answers TwiML."""

    reply: str
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    @property
    def app(self) -> Starlette:
        """The ASGI app (POST /sms)."""

        async def sms(request: Request) -> Response:
            body = await request.body()
            self.received.append((str(request.url), dict(request.headers), body))
            twiml = f"<Response><Message>{self.reply}</Message></Response>"
            return Response(twiml, media_type="text/xml")

        return Starlette(routes=[Route("/sms", sms, methods=["POST"])])


@pytest.fixture
def twiml_app() -> Iterator[tuple[TwimlApp, RunningServer]]:
    """The auto-reply app served on 127.0.0.1."""
    app = TwimlApp("Got it: garage armed")
    server = start_server(app.app)
    yield app, server
    server.stop()


async def test_a_twilio_format_webhook_validates_and_its_twiml_reply_reaches_voipms(
        sqlite_url: str, start_face, fake: FakeVoipms,
        twiml_app: tuple[TwimlApp, RunningServer]) -> None:
    face = await start_face(sqlite_url)
    app, server = twiml_app
    url = f"{server.url}/sms"
    hook = await face.acme.v1("POST", "/v1/webhooks", {
        "url": url, "events": ["message.received"], "format": "twilio"}, 201)
    assert hook["format"] == "twilio"

    status, body = await fake.fire_webhook(face.acme.inbound_url, from_=PEER, to=ACME_NUMBER,
                                           message="ARM garage", id="7002")
    assert status == 200, body
    await eventually(lambda: app.received)
    ((seen_url, headers, posted),) = app.received
    params = form_of(posted)
    # As a Twilio app checks it: the URL it was called on, the form, the header.
    assert seen_url == url
    assert RequestValidator(face.acme.token).validate(seen_url, params,
                                                      headers["x-twilio-signature"])
    assert (params["From"], params["To"], params["Body"]) == (PEER, ACME_NUMBER, "ARM garage")
    assert params["AccountSid"] == face.acme.sid and params["NumMedia"] == "0"
    assert params["MessageSid"].startswith("msg_")

    # The TwiML answer goes back to the sender, from the number it came to, via VoIP.ms.
    await eventually(lambda: fake.sent)
    (reply,) = fake.sent
    assert (reply.did, reply.dst, reply.message) == ("5145550100", "4385550123",
                                                     "Got it: garage armed")
    acme = face.acme.client()
    replies = await off_loop(acme.messages.list, to=PEER)
    assert [(m.body, m.from_, m.direction) for m in replies] == [
        ("Got it: garage armed", ACME_NUMBER, "outbound-api")]


    # The carrier retrying its webhook stores nothing new: the app is not asked again and
    # the reply goes once.
    status, _ = await fake.fire_webhook(face.acme.inbound_url, from_=PEER, to=ACME_NUMBER,
                                        message="ARM garage", id="7002")
    assert status == 200
    await face.gateway.wait_outbox_polls(3)
    assert len(app.received) == 1 and len(fake.sent) == 1

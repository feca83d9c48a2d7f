"""The jambonz-compatible face over HTTP: an app written for jambonz sends and receives.

A jambonz app sends with ``POST /v1/Accounts/{sid}/Messages`` and a bearer key, and hears of
received texts at its messaging webhook as ``{"provider", "from", "to": [...], "text"}``
with numbers written as digits without ``+`` (jambonz/jambonz-docs, docs/sms.md). Here the
account is an smsbridge account with a VoIP.ms connection on the fake VoIP.ms.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from smsbridge.testing.fake_voipms import FakeVoipms
from smsbridge.testing.server import RunningServer, start_server
from tests.conftest import eventually
from tests.e2e.test_tenants_api import (
    ACME_NUMBER,
    API_PASSWORD,
    GLOBEX_SANDBOX,
    PEER,
    USERNAME,
    Api,
    make_tenant,
    tenants_gateway,  # noqa: F401  (a fixture)
    voipms_connection,
)
from tests.harness import GatewayHarness
from tests.receiver import WebhookReceiver

# The same numbers as jambonz writes them: country code and digits, no "+".
ACME_DIGITS = ACME_NUMBER.removeprefix("+")
PEER_DIGITS = PEER.removeprefix("+")
SANDBOX_NUMBER = "+15145550300"  # Acme's second connection, a sandbox one
ACME_SANDBOX = {"name": "acme-sandbox", "carrier": "sandbox", "numbers": [SANDBOX_NUMBER],
                "settings": {"delivery_receipts": False}}
PHOTO = "https://cams.example.com/snap/porch-0214.jpg"


@pytest.fixture
def fake() -> FakeVoipms:
    """The fake VoIP.ms that Acme's connection talks to."""
    return FakeVoipms(username=USERNAME, api_password=API_PASSWORD)


@pytest.fixture
def gateway(tenants_gateway: Callable[[str], tuple[GatewayHarness, Api]]  # noqa: F811
            ) -> Callable[[str], tuple[GatewayHarness, Api]]:
    """``start(database)``: a gateway and the API as its admin key sees it."""
    return tenants_gateway


@pytest.fixture
def jambonz_app() -> Iterator[tuple[WebhookReceiver, RunningServer]]:
    """A jambonz app's messaging webhook on 127.0.0.1, at ``{url}/hook``."""
    receiver = WebhookReceiver()
    server = start_server(receiver.app)
    try:
        yield receiver, server
    finally:
        server.stop()


async def acme_with_voipms(admin: Api, fake_url: str) -> tuple[Api, str]:
    """Acme's key and account id; Acme has a VoIP.ms connection and a sandbox one."""
    acme, acme_id = await make_tenant(admin, "Acme")
    await acme.ok("POST", "/v1/connections", voipms_connection(fake_url), 201)
    await acme.ok("POST", "/v1/connections", ACME_SANDBOX, 201)
    return acme, acme_id


def messages_path(account_id: str) -> str:
    """jambonz's send path for ``account_id``."""
    return f"/v1/Accounts/{account_id}/Messages"


# ------------------------------------------------------------------ sending


async def test_a_jambonz_send_reaches_the_carrier_and_answers_sid_and_provider_response(
        database_url: str, gateway, fake: FakeVoipms, fake_server: RunningServer) -> None:
    _, admin = gateway(database_url)
    acme, acme_id = await acme_with_voipms(admin, fake_server.url)

    answer = await acme("POST", messages_path(acme_id), {
        "from": ACME_DIGITS, "to": [PEER_DIGITS], "text": "Porch motion at 02:14",
        "provider": "acme-voipms", "media": [PHOTO]})
    assert answer.status == 201, answer.text
    sid = answer.body["sid"]
    assert sid.startswith("msg_") and answer.headers["Location"] == f"/v1/messages/{sid}"
    queued = answer.body["providerResponse"]
    assert (queued["id"], queued["status"], queued["connection"]) == (
        sid, "queued", "acme-voipms")
    assert (queued["from"], queued["to"]) == (ACME_NUMBER, PEER)
    assert answer.body["carrierResponse"] == queued

    # It goes out through VoIP.ms like any message of the account, with the right numbers.
    (sent,) = await eventually(lambda: fake.sent)
    assert (sent.did, sent.dst) == (ACME_DIGITS[1:], PEER_DIGITS[1:])  # VoIP.ms: ten digits
    assert (sent.message, sent.media) == ("Porch motion at 02:14", (PHOTO,))

    async def read_back() -> Any:
        message = await acme.ok("GET", f"/v1/messages/{sid}")
        return message if message["status"] == "sent" else None

    message = await eventually(read_back)
    assert message["carrier_message_id"] == str(sent.id)
    assert message["media"] == [{"content_type": "image/jpeg", "url": PHOTO}]

    # jambonz's REST example writes "to" as a string with its "+": that sends as well, and
    # an Idempotency-Key replays the same message instead of sending it twice.
    body = {"from": ACME_DIGITS, "to": PEER, "text": "once"}
    first = await acme.http.post(f"{acme.base}{messages_path(acme_id)}", json=body, headers={
        "Authorization": f"Bearer {acme.key}", "Idempotency-Key": "alarm-1"})
    again = await acme.http.post(f"{acme.base}{messages_path(acme_id)}", json=body, headers={
        "Authorization": f"Bearer {acme.key}", "Idempotency-Key": "alarm-1"})
    assert first.status == again.status == 201
    assert (await first.json())["sid"] == (await again.json())["sid"]
    assert again.headers["Idempotent-Replayed"] == "true"
    await eventually(lambda: len(fake.sent) == 2)
    assert fake.sent[1].message == "once"
    assert [m["text"] for m in (await acme.ok("GET", "/v1/messages"))["data"]] == [
        "once", "Porch motion at 02:14"]


async def test_provider_or_carrier_picks_the_connection(
        sqlite_url: str, gateway, fake: FakeVoipms, fake_server: RunningServer) -> None:
    _, admin = gateway(sqlite_url)
    acme, acme_id = await acme_with_voipms(admin, fake_server.url)
    path = messages_path(acme_id)
    sandbox_digits = SANDBOX_NUMBER.removeprefix("+")

    # Named, the connection is the one used; one that does not own the number refuses it.
    picked = await acme.ok("POST", path, {"from": sandbox_digits, "to": PEER_DIGITS,
                                          "text": "hi", "carrier": "acme-sandbox"}, 201)
    assert picked["providerResponse"]["connection"] == "acme-sandbox"
    wrong = await acme("POST", path, {"from": ACME_DIGITS, "to": PEER_DIGITS, "text": "hi",
                                      "provider": "acme-sandbox"})
    assert wrong.status == 422, wrong.text
    assert wrong.body["errors"] == [{"field": "from", "reason": (
        f"{ACME_NUMBER} is not a number of connection 'acme-sandbox'")}]
    # Unnamed, the sending number picks it.
    unnamed = await acme.ok("POST", path, {"from": ACME_DIGITS, "to": PEER_DIGITS,
                                           "text": "hi"}, 201)
    assert unnamed["providerResponse"]["connection"] == "acme-voipms"

    # Errors are the API's problem documents, naming the field as the jambonz request did.
    for body, field in (
            ({"provider": "nope"}, "provider"),
            ({"carrier": "nope"}, "carrier"),
            ({"provider": "acme-voipms", "carrier": "acme-sandbox"}, "carrier"),
            ({"to": [PEER_DIGITS, "14385550124"]}, "to"),
            ({"cc": ["14385550124"]}, "cc"),
            ({"to": "not a number"}, "to"),
            ({"media": ["ftp://example.com/a.jpg"]}, "media[0]"),
            ({"text": "", "media": []}, "text"),
            ({"message_sid": "x"}, "message_sid")):
        refused = await acme("POST", path, {"from": ACME_DIGITS, "to": PEER_DIGITS,
                                            "text": "hi", **body})
        assert refused.status == 422, (body, refused.text)
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert refused.body["type"] == "urn:smsbridge:problem:invalid-input"
        assert refused.body["errors"][0]["field"] == field, (body, refused.text)

    # An opted-out recipient is refused as by POST /v1/messages.
    await acme.ok("POST", "/v1/optouts", {"from": ACME_NUMBER, "to": PEER}, 201)
    opted = await acme("POST", path, {"from": ACME_DIGITS, "to": PEER_DIGITS, "text": "hi"})
    assert opted.status == 422 and opted.body["type"] == "urn:smsbridge:problem:opted-out"

    used = [m["connection"] for m in (await acme.ok("GET", "/v1/messages"))["data"]]
    assert sorted(used) == ["acme-sandbox", "acme-voipms"]


async def test_another_accounts_key_is_refused_on_the_path_like_an_unknown_account(
        sqlite_url: str, gateway, fake: FakeVoipms, fake_server: RunningServer) -> None:
    _, admin = gateway(sqlite_url)
    acme, acme_id = await acme_with_voipms(admin, fake_server.url)
    globex, globex_id = await make_tenant(admin, "Globex")
    await globex.ok("POST", "/v1/connections", GLOBEX_SANDBOX, 201)
    body = {"from": ACME_DIGITS, "to": PEER_DIGITS, "text": "not yours"}

    made_up = "acc_" + "0" * (len(acme_id) - 4)
    unknown = await globex("POST", messages_path(made_up), body)
    assert unknown.status == 404, unknown.text
    for api in (globex, admin):  # another tenant's key, and the default account's admin key
        refused = await api("POST", messages_path(acme_id), body)
        assert refused.status == 404, refused.text
        assert refused.body == json.loads(unknown.text.replace(made_up, acme_id))
    # Its own account's path, with Acme's number: the number is not Globex's to send from.
    borrowed = await globex("POST", messages_path(globex_id), body)
    assert borrowed.status == 422 and borrowed.body["errors"][0]["field"] == "from"
    async with gw_post(acme, messages_path(acme_id), body, key=None) as resp:
        assert resp.status == 401

    assert (await acme.ok("GET", "/v1/messages"))["data"] == []
    assert (await globex.ok("GET", "/v1/messages"))["data"] == []
    assert fake.sent == []


def gw_post(api: Api, path: str, body: Any, key: str | None) -> Any:
    """POST ``body`` to ``path`` with ``key`` (None: no Authorization header)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return api.http.post(f"{api.base}{path}", json=body, headers=headers)


# ------------------------------------------------------------------ receiving


async def test_a_jambonz_webhook_gets_the_inbound_message_in_jambonz_shape_signed(
        database_url: str, gateway, fake: FakeVoipms, fake_server: RunningServer,
        jambonz_app: tuple[WebhookReceiver, RunningServer]) -> None:
    _, admin = gateway(database_url)
    acme, acme_id = await acme_with_voipms(admin, fake_server.url)
    app, app_server = jambonz_app
    hook = await acme.ok("POST", "/v1/webhooks", {
        "url": f"{app_server.url}/hook", "events": ["message.received"],
        "format": "jambonz"}, 201)
    assert hook["format"] == "jambonz" and hook["secret"].startswith("whsec_")
    conn = await acme.ok("GET", "/v1/connections/acme-voipms")

    status, text = await fake.fire_webhook(conn["inbound_url"], from_=PEER, to=ACME_NUMBER,
                                           message="DISARM 1234", id="9001",
                                           media=[(PHOTO, "image/jpeg")])
    assert status == 200, text

    (got,) = await eventually(lambda: app.received)
    Webhook(hook["secret"]).verify(got.body, got.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 32).verify(got.body, got.headers)
    assert got.headers["content-type"] == "application/json"
    (stored,) = (await acme.ok("GET", "/v1/messages?direction=inbound"))["data"]
    assert json.loads(got.body) == {
        "messageSid": stored["id"],
        "accountSid": acme_id,
        "provider": "acme-voipms",
        "carrier": "acme-voipms",
        "from": PEER_DIGITS,
        "to": [ACME_DIGITS],
        "cc": [],
        "text": "DISARM 1234",
        "media": [PHOTO],
    }

    # A reply goes back through the face, from the number that received it.
    reply = await acme.ok("POST", messages_path(acme_id), {
        "from": json.loads(got.body)["to"][0], "to": json.loads(got.body)["from"],
        "text": "Disarmed", "provider": json.loads(got.body)["provider"]}, 201)
    (sent,) = await eventually(lambda: fake.sent)
    assert (sent.did, sent.dst, sent.message) == (ACME_DIGITS[1:], PEER_DIGITS[1:], "Disarmed")
    assert reply["providerResponse"]["to"] == PEER

"""Tenants over HTTP: accounts and their keys, connections and webhooks added by API, isolation.

Two accounts are made with the admin key (the first key of a fresh gateway), each gets its
own key and adds its own carrier connection; every key then sees and does only its own
account's things, and another account's things answer exactly like things that do not exist.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from smsbridge.api import create_app
from smsbridge.api.server import uvicorn_options
from smsbridge.gateway.admin import open_gateway, store_for
from smsbridge.gateway.config import Settings, settings_from_dict
from smsbridge.gateway.runtime import Runtime
from smsbridge.testing.fake_voipms import FakeVoipms
from smsbridge.testing.server import RunningServer, start_server
from tests.conftest import FAST_WORKER, eventually
from tests.harness import GatewayHarness, run_sync
from tests.receiver import WebhookReceiver

USERNAME = "acme@example.com"
API_PASSWORD = "acme-api-pass-7f3c9"  # must never come back in any answer
HOUSE_NUMBER = "+15555550100"  # the config file's sandbox connection (default account)
ACME_NUMBER = "+15145550100"  # Acme's VoIP.ms DID
GLOBEX_NUMBER = "+15145550200"  # Globex's sandbox number
PEER = "+14385550123"
UNKNOWN_NUMBER = "+15145550999"
HOUSE = {"name": "house", "carrier": "sandbox", "numbers": [HOUSE_NUMBER],
         "settings": {"delivery_receipts": False}}


def tenant_settings(database: str) -> Settings:
    """A gateway with the config file's sandbox connection; webhooks on 127.0.0.1 allowed."""
    return settings_from_dict({
        "server": {"database": database, "allow_private_webhooks": True},
        "worker": FAST_WORKER,
        "connections": [HOUSE],
        "webhooks": [],
    })


@dataclass
class Answer:
    """One HTTP answer: status, parsed JSON body (None when empty) and the raw text."""

    status: int
    body: Any
    text: str
    headers: dict[str, str]


@dataclass
class Api:
    """The REST API as one key sees it."""

    http: aiohttp.ClientSession
    base: str
    key: str

    async def __call__(self, method: str, path: str, body: Any = None) -> Answer:
        async with self.http.request(method, f"{self.base}{path}", json=body, headers={
                "Authorization": f"Bearer {self.key}"}) as resp:
            text = await resp.text()
            return Answer(resp.status, json.loads(text) if text else None, text,
                          dict(resp.headers))

    async def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        """The body of an answer that must have ``status``."""
        answer = await self(method, path, body)
        assert answer.status == status, (method, path, answer.text)
        return answer.body


async def make_tenant(admin: Api, name: str) -> tuple[Api, str]:
    """An account made with the admin key, and the API as a new key of that account sees it."""
    account = await admin.ok("POST", "/v1/accounts", {"name": name}, 201)
    assert account["id"].startswith("acc_") and account["name"] == name
    made = await admin.ok("POST", f"/v1/accounts/{account['id']}/keys", {"name": f"{name} app"},
                          201)
    assert made["key"].startswith("sbk_") and made["key"].startswith(made["prefix"])
    assert (made["account_id"], made["admin"]) == (account["id"], False)
    return Api(admin.http, admin.base, made["key"]), account["id"]


def voipms_connection(fake_url: str, name: str = "acme-voipms",
                      numbers: tuple[str, ...] = (ACME_NUMBER,)) -> dict[str, Any]:
    """A POST /v1/connections body for VoIP.ms, pointed at the fake."""
    return {"name": name, "carrier": "voipms", "numbers": list(numbers), "settings": {
        "base_url": fake_url, "username": USERNAME, "api_password": API_PASSWORD}}


GLOBEX_SANDBOX = {"name": "globex-sandbox", "carrier": "sandbox", "numbers": [GLOBEX_NUMBER],
                  "settings": {"delivery_receipts": False}}


@pytest.fixture
def fake() -> FakeVoipms:
    """The fake VoIP.ms that Acme's connection talks to."""
    return FakeVoipms(username=USERNAME, api_password=API_PASSWORD)


@pytest.fixture
def tenants_gateway(start_gateway: Callable[..., GatewayHarness], http: aiohttp.ClientSession
                    ) -> Callable[[str], tuple[GatewayHarness, Api]]:
    """``start(database)``: a gateway and the API as its admin key sees it."""

    def start(database: str) -> tuple[GatewayHarness, Api]:
        gw = start_gateway(tenant_settings(database))
        return gw, Api(http, gw.url, gw.api_key)

    return start


@pytest.fixture
def receivers() -> Iterator[list[tuple[WebhookReceiver, RunningServer]]]:
    """Two apps on 127.0.0.1 recording the webhooks they get, at ``{url}/hook``."""
    pairs: list[tuple[WebhookReceiver, RunningServer]] = []
    try:
        for _ in range(2):
            receiver = WebhookReceiver()
            pairs.append((receiver, start_server(receiver.app)))
        yield pairs
    finally:
        for _, server in pairs:
            server.stop()


def _swap(problem: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """``problem`` with ``old`` written as ``new`` in its text (to compare two refusals)."""
    return json.loads(json.dumps(problem).replace(old, new))


# ------------------------------------------------------------------ isolation


async def test_each_key_sees_and_does_only_its_own_accounts_things(
        database_url: str, tenants_gateway, fake_server: RunningServer) -> None:
    _, admin = tenants_gateway(database_url)
    acme, acme_id = await make_tenant(admin, "Acme")
    globex, globex_id = await make_tenant(admin, "Globex")
    assert acme_id != globex_id

    added = await acme.ok("POST", "/v1/connections", voipms_connection(fake_server.url), 201)
    assert added["source"] == "api" and added["numbers"] == [ACME_NUMBER]
    await globex.ok("POST", "/v1/connections", GLOBEX_SANDBOX, 201)

    # Connections: each account lists only its own, and the other's answers 404.
    for api, own in ((acme, "acme-voipms"), (globex, "globex-sandbox")):
        assert [c["name"] for c in (await api.ok("GET", "/v1/connections"))["data"]] == [own]
        assert [c["name"] for c in (await api.ok("GET", "/v1/carriers"))["data"]] == [own]
    assert [c["name"] for c in (await admin.ok("GET", "/v1/connections"))["data"]] == ["house"]
    made_up = await globex("GET", "/v1/connections/no-such-connection")
    for method in ("GET", "PATCH", "DELETE"):
        other = await globex(method, "/v1/connections/acme-voipms",
                             {"numbers": []} if method == "PATCH" else None)
        assert other.status == made_up.status == 404, other.text
        assert other.body == _swap(made_up.body, "no-such-connection", "acme-voipms")
    assert (await globex("POST", "/v1/connections/acme-voipms/rotate-token")).status == 404
    assert (await acme.ok("GET", "/v1/connections/acme-voipms"))["numbers"] == [ACME_NUMBER]

    # Messages: sent within the key's account, listed and read only there.
    acme_msg = await acme.ok("POST", "/v1/messages",
                             {"from": ACME_NUMBER, "to": PEER, "text": "Acme here"}, 202)
    globex_msg = await globex.ok("POST", "/v1/messages",
                                 {"from": GLOBEX_NUMBER, "to": PEER, "text": "Globex here"}, 202)
    assert [m["id"] for m in (await acme.ok("GET", "/v1/messages"))["data"]] == [acme_msg["id"]]
    assert [m["id"] for m in (await globex.ok("GET", "/v1/messages"))["data"]] == [
        globex_msg["id"]]
    assert (await acme.ok("GET", f"/v1/messages/{acme_msg['id']}"))["text"] == "Acme here"
    made_up_id = "msg_" + "0" * (len(acme_msg["id"]) - 4)
    unknown = await globex("GET", f"/v1/messages/{made_up_id}")
    others = await globex("GET", f"/v1/messages/{acme_msg['id']}")
    assert others.status == unknown.status == 404
    assert others.body == _swap(unknown.body, made_up_id, acme_msg["id"])
    assert others.headers["Content-Type"] == unknown.headers["Content-Type"]

    # Sending from the other account's number is refused like sending from nobody's.
    stranger = await globex("POST", "/v1/messages", {"from": UNKNOWN_NUMBER, "to": PEER,
                                                     "text": "x"})
    borrowed = await globex("POST", "/v1/messages", {"from": ACME_NUMBER, "to": PEER,
                                                     "text": "x"})
    assert borrowed.status == stranger.status == 422
    assert borrowed.body == _swap(stranger.body, UNKNOWN_NUMBER, ACME_NUMBER)
    named = await globex("POST", "/v1/messages", {"from": ACME_NUMBER, "to": PEER, "text": "x",
                                                  "connection": "acme-voipms"})
    nameless = await globex("POST", "/v1/messages", {"from": ACME_NUMBER, "to": PEER,
                                                     "text": "x", "connection": "nope"})
    assert named.status == nameless.status == 422
    assert named.body == _swap(nameless.body, "nope", "acme-voipms")
    assert [m["id"] for m in (await globex.ok("GET", "/v1/messages"))["data"]] == [
        globex_msg["id"]]

    # Calls, the same way.
    call = await globex.ok("POST", "/v1/calls", {"from": GLOBEX_NUMBER, "to": PEER,
                                                  "say": "Alarm"}, 202)
    assert (await globex.ok("GET", f"/v1/calls/{call['id']}"))["say"] == "Alarm"
    assert (await acme("GET", f"/v1/calls/{call['id']}")).status == 404
    assert (await acme.ok("GET", "/v1/calls"))["data"] == []
    assert [c["id"] for c in (await globex.ok("GET", "/v1/calls"))["data"]] == [call["id"]]

    # Webhooks: each sees only its own; the other's id is not found, and stays.
    hook = await acme.ok("POST", "/v1/webhooks", {"url": "http://127.0.0.1:9/acme",
                                                  "events": ["message.queued"]}, 201)
    assert (await globex.ok("GET", "/v1/webhooks"))["data"] == []
    assert (await globex("GET", f"/v1/webhooks/{hook['id']}")).status == 404
    assert (await globex("DELETE", f"/v1/webhooks/{hook['id']}")).status == 404
    assert [h["id"] for h in (await acme.ok("GET", "/v1/webhooks"))["data"]] == [hook["id"]]

    # Deliveries: Acme's webhook hears of Acme's next message; Globex sees none of it.
    await acme.ok("POST", "/v1/messages", {"from": ACME_NUMBER, "to": PEER, "text": "2"}, 202)
    async def deliveries(api: Api) -> list[dict[str, Any]]:
        return list((await api.ok("GET", "/v1/webhook-deliveries"))["data"])

    (row,) = await eventually(lambda: deliveries(acme))
    assert row["event_type"] == "message.queued" and row["url"] == "http://127.0.0.1:9/acme"
    assert await deliveries(globex) == []

    # Opt-outs: kept per account; Globex cannot list or add on Acme's number.
    await acme.ok("POST", "/v1/optouts", {"from": ACME_NUMBER, "to": PEER}, 201)
    assert (await globex.ok("GET", "/v1/optouts"))["data"] == []
    assert (await globex("POST", "/v1/optouts", {"from": ACME_NUMBER, "to": PEER})).status == 422
    assert (await globex("DELETE", f"/v1/optouts/{PEER}?from=%2B15145550100")).status == 404
    listed = (await acme.ok("GET", "/v1/optouts"))["data"]
    assert [(o["from"], o["to"]) for o in listed] == [(ACME_NUMBER, PEER)]

    # Accounts: only an admin key manages them; a key reads its own account.
    for method, path, body in (("GET", "/v1/accounts", None),
                               ("POST", "/v1/accounts", {"name": "Initech"}),
                               ("POST", f"/v1/accounts/{globex_id}/keys", {"name": "more"}),
                               ("POST", f"/v1/accounts/{acme_id}/keys", {"name": "steal"})):
        refused = await globex(method, path, body)
        assert refused.status == 403, (method, path, refused.text)
        assert refused.body["type"] == "urn:smsbridge:problem:forbidden"
    assert (await globex.ok("GET", f"/v1/accounts/{globex_id}"))["name"] == "Globex"
    assert (await globex("GET", f"/v1/accounts/{acme_id}")).status == 404
    names = {a["name"] for a in (await admin.ok("GET", "/v1/accounts"))["data"]}
    assert {"Acme", "Globex"} <= names and "Initech" not in names
    assert (await admin.ok("GET", f"/v1/accounts/{acme_id}"))["name"] == "Acme"
    assert (await admin("POST", "/v1/accounts/acc_nope/keys", {"name": "x"})).status == 404


async def test_inbound_at_the_printed_url_reaches_only_that_accounts_webhook(
        database_url: str, tenants_gateway, fake: FakeVoipms, fake_server: RunningServer,
        receivers: list[tuple[WebhookReceiver, RunningServer]]) -> None:
    _, admin = tenants_gateway(database_url)
    acme, _ = await make_tenant(admin, "Acme")
    globex, _ = await make_tenant(admin, "Globex")
    (acme_app, acme_server), (globex_app, globex_server) = receivers
    acme_hook = await acme.ok("POST", "/v1/webhooks", {
        "url": f"{acme_server.url}/hook", "events": ["message.received"]}, 201)
    globex_hook = await globex.ok("POST", "/v1/webhooks", {
        "url": f"{globex_server.url}/hook", "events": ["message.received"]}, 201)
    assert acme_hook["secret"].startswith("whsec_") and acme_hook["source"] == "api"
    assert acme_hook["secret"] != globex_hook["secret"]
    # The secret is shown once: no later answer holds it.
    for path in ("/v1/webhooks", f"/v1/webhooks/{acme_hook['id']}"):
        answer = await acme("GET", path)
        assert answer.status == 200 and acme_hook["secret"] not in answer.text
        assert "secret" not in answer.text

    acme_conn = await acme.ok("POST", "/v1/connections", voipms_connection(fake_server.url), 201)
    globex_conn = await globex.ok("POST", "/v1/connections", GLOBEX_SANDBOX, 201)
    assert acme_conn["inbound_url"].startswith("http://127.0.0.1:")

    status, body = await fake.fire_webhook(acme_conn["inbound_url"], from_=PEER,
                                           to=ACME_NUMBER, message="DISARM", id="9001")
    assert status == 200, body
    async with acme.http.post(globex_conn["inbound_url"], json={
            "id": "g-1", "from": PEER, "to": GLOBEX_NUMBER, "text": "hello globex"}) as resp:
        assert resp.status == 200, await resp.text()

    await eventually(lambda: acme_app.received and globex_app.received)
    (acme_got,) = acme_app.received
    Webhook(acme_hook["secret"]).verify(acme_got.body, acme_got.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(globex_hook["secret"]).verify(acme_got.body, acme_got.headers)
    event = json.loads(acme_got.body)
    assert event["type"] == "message.received" and event["data"]["text"] == "DISARM"
    (globex_got,) = globex_app.received
    Webhook(globex_hook["secret"]).verify(globex_got.body, globex_got.headers)
    assert json.loads(globex_got.body)["data"]["text"] == "hello globex"

    # Stored in its own account only; and each account's deliveries are just its own one.
    (stored,) = (await acme.ok("GET", "/v1/messages?direction=inbound"))["data"]
    assert (stored["text"], stored["connection"], stored["to"]) == (
        "DISARM", "acme-voipms", ACME_NUMBER)
    assert [m["text"] for m in (await globex.ok("GET", "/v1/messages"))["data"]] == [
        "hello globex"]
    assert (await admin.ok("GET", "/v1/messages"))["data"] == []

    async def delivered(api: Api) -> list[dict[str, Any]]:
        rows = (await api.ok("GET", "/v1/webhook-deliveries"))["data"]
        return rows if rows and all(r["status"] == "delivered" for r in rows) else []

    (acme_row,) = await eventually(lambda: delivered(acme))
    (globex_row,) = await eventually(lambda: delivered(globex))
    assert acme_row["message_id"] == stored["id"] and acme_row["url"] == f"{acme_server.url}/hook"
    assert globex_row["url"] == f"{globex_server.url}/hook"
    assert len(acme_app.received) == len(globex_app.received) == 1


# ------------------------------------------------------------------ connections by API


async def test_bad_settings_are_422_taken_names_and_numbers_409_and_no_secret_is_shown(
        sqlite_url: str, tenants_gateway, fake_server: RunningServer) -> None:
    _, admin = tenants_gateway(sqlite_url)
    acme, _ = await make_tenant(admin, "Acme")
    globex, _ = await make_tenant(admin, "Globex")
    good = voipms_connection(fake_server.url)

    for body, field in (
            ({**good, "settings": {"username": USERNAME}}, "settings.api_password"),
            ({**good, "settings": {**good["settings"], "colour": "red"}}, "settings.colour"),
            ({**good, "carrier": "no-such-carrier"}, "carrier"),
            ({**good, "name": "has space"}, "name"),
            ({**good, "numbers": ["not a number"]}, "numbers[0]"),
            ({**good, "settings": "text"}, "settings"),
            ({**good, "extra": 1}, "extra")):
        refused = await acme("POST", "/v1/connections", body)
        assert refused.status == 422, (field, refused.text)
        assert refused.body["type"] == "urn:smsbridge:problem:invalid-input"
        assert refused.body["errors"][0]["field"] == field, refused.text
    assert (await acme.ok("GET", "/v1/connections"))["data"] == []

    # A number belongs to one connection gateway-wide: the config file's, or another account's.
    house = await acme("POST", "/v1/connections", {**good, "numbers": [HOUSE_NUMBER]})
    assert house.status == 409, house.text
    assert house.body["type"] == "urn:smsbridge:problem:conflict"
    assert house.body["errors"][0]["field"] == "numbers"
    added = await acme("POST", "/v1/connections", good)
    assert added.status == 201, added.text
    assert added.headers["Location"] == "/v1/connections/acme-voipms"
    taken = await globex("POST", "/v1/connections", {**GLOBEX_SANDBOX, "numbers": [ACME_NUMBER]})
    assert taken.status == 409 and taken.body["errors"][0]["field"] == "numbers", taken.text
    same_name = await globex("POST", "/v1/connections", {**GLOBEX_SANDBOX, "name": "acme-voipms"})
    assert same_name.status == 409 and same_name.body["errors"][0]["field"] == "name"
    grab = await globex.ok("POST", "/v1/connections", GLOBEX_SANDBOX, 201)
    moved = await globex("PATCH", "/v1/connections/globex-sandbox",
                         {"numbers": [GLOBEX_NUMBER, ACME_NUMBER]})
    assert moved.status == 409, moved.text
    assert (await globex.ok("GET", "/v1/connections/globex-sandbox"))["numbers"] == grab["numbers"]

    # PATCH: numbers replaced, settings merged; the password changes and is still not shown.
    changed = await acme.ok("PATCH", "/v1/connections/acme-voipms", {
        "numbers": [ACME_NUMBER, "+15145550101"], "settings": {"api_password": "new-pass-42",
                                                              "long_text": "split"}})
    assert changed["numbers"] == [ACME_NUMBER, "+15145550101"]
    assert changed["settings"]["long_text"] == "split"
    assert changed["settings"]["username"] == USERNAME
    bad_patch = await acme("PATCH", "/v1/connections/acme-voipms",
                           {"settings": {"number_format": "roman"}})
    assert bad_patch.status == 422
    assert bad_patch.body["errors"][0]["field"] == "settings.number_format"

    # No answer ever holds a password.
    for path in ("/v1/connections", "/v1/connections/acme-voipms", "/v1/carriers"):
        answer = await acme("GET", path)
        assert answer.status == 200
        assert API_PASSWORD not in answer.text and "new-pass-42" not in answer.text
    assert API_PASSWORD not in added.text and "new-pass-42" not in json.dumps(changed)
    shown = await acme.ok("GET", "/v1/connections/acme-voipms")
    assert shown["settings"]["api_password"] == "(set)"

    # The config file's connections are read-only through the API.
    config = await admin.ok("GET", "/v1/connections/house")
    assert (config["source"], config["numbers"]) == ("config", [HOUSE_NUMBER])
    for method, body in (("PATCH", {"numbers": [HOUSE_NUMBER]}), ("DELETE", None)):
        read_only = await admin(method, "/v1/connections/house", body)
        assert read_only.status == 409, read_only.text
        assert read_only.body["type"] == "urn:smsbridge:problem:conflict"
    assert (await admin.ok("GET", "/v1/connections/house"))["source"] == "config"


async def test_a_rotated_or_deleted_connections_url_is_refused_like_a_wrong_token(
        sqlite_url: str, tenants_gateway, fake: FakeVoipms, fake_server: RunningServer) -> None:
    _, admin = tenants_gateway(sqlite_url)
    acme, _ = await make_tenant(admin, "Acme")
    first = await acme.ok("POST", "/v1/connections", voipms_connection(fake_server.url), 201)
    old_url = first["inbound_url"]
    token = old_url.split("/")[-2]
    forged_url = old_url.replace(f"/{token}/", "/" + "A" * len(token) + "/")

    async def fire(url: str, carrier_id: str) -> tuple[int, str]:
        return await fake.fire_webhook(url, from_=PEER, to=ACME_NUMBER, message=carrier_id,
                                       id=carrier_id)

    async def texts() -> list[str]:
        return [m["text"] for m in (await acme.ok("GET", "/v1/messages"))["data"]]

    assert (await fire(old_url, "before"))[0] == 200
    wrong_token = await fire(forged_url, "forged")
    assert wrong_token[0] == 403

    rotated = await acme.ok("POST", "/v1/connections/acme-voipms/rotate-token")
    assert rotated["inbound_url"] != old_url and rotated["name"] == "acme-voipms"
    assert await fire(old_url, "old-url") == wrong_token
    assert (await fire(rotated["inbound_url"], "new-url"))[0] == 200
    assert (await acme.ok("GET", "/v1/connections/acme-voipms"))["inbound_url"] == (
        rotated["inbound_url"])

    removed = await acme("DELETE", "/v1/connections/acme-voipms")
    assert removed.status == 204 and removed.text == ""
    assert await fire(rotated["inbound_url"], "deleted") == wrong_token
    assert (await acme("GET", "/v1/connections/acme-voipms")).status == 404
    assert sorted(await texts()) == ["before", "new-url"]


async def test_webhooks_are_listed_read_and_deleted_within_the_account(
        sqlite_url: str, tenants_gateway) -> None:
    _, admin = tenants_gateway(sqlite_url)
    acme, _ = await make_tenant(admin, "Acme")
    made = await acme("POST", "/v1/webhooks", {"url": "http://127.0.0.1:9/acme"})
    assert made.status == 201, made.text
    hook = made.body
    assert made.headers["Location"] == f"/v1/webhooks/{hook['id']}"
    assert (hook["url"], hook["format"], hook["source"]) == (
        "http://127.0.0.1:9/acme", "standard", "api")
    assert "message.received" in hook["events"]
    shown = await acme.ok("GET", f"/v1/webhooks/{hook['id']}")
    assert shown == {k: v for k, v in hook.items() if k != "secret"}

    bad = await acme("POST", "/v1/webhooks", {"url": "http://127.0.0.1:9/x",
                                              "events": ["message.nope"]})
    assert bad.status == 422 and bad.body["errors"][0]["field"] == "events[0]"
    assert (await acme("POST", "/v1/webhooks", {"url": "ftp://x"})).body[
        "errors"][0]["field"] == "url"

    assert (await acme("DELETE", f"/v1/webhooks/{hook['id']}")).status == 204
    assert (await acme("GET", f"/v1/webhooks/{hook['id']}")).status == 404
    assert (await acme("DELETE", f"/v1/webhooks/{hook['id']}")).status == 404
    assert (await acme.ok("GET", "/v1/webhooks"))["data"] == []


async def test_without_its_secret_key_the_gateway_answers_503_and_stores_no_secret(
        sqlite_url: str, http: aiohttp.ClientSession, fake_server: RunningServer,
        tmp_path: Path) -> None:
    # A process started without making the key file (as a read-only command does) has no
    # key to encrypt with until the store holds something encrypted.
    settings = tenant_settings(sqlite_url)
    settings.config.server = settings.server.model_copy(
        update={"secret_key_file": str(tmp_path / "no-key-here" / "secret.key")})
    server = start_server(create_app(Runtime(settings, store_for(settings),
                                             create_secret_key=False)), **uvicorn_options())
    try:
        async def admin_key() -> str:
            async with open_gateway(settings) as gateway:
                return (await gateway.create_api_key("admin", admin=True))[1]

        admin = Api(http, server.url, run_sync(admin_key()))
        for path, body in (("/v1/connections", voipms_connection(fake_server.url)),
                           ("/v1/webhooks", {"url": "http://127.0.0.1:9/hook"})):
            refused = await admin("POST", path, body)
            assert refused.status == 503, refused.text
            assert refused.body["type"] == "urn:smsbridge:problem:secret-key"
            assert "secret key" in refused.body["detail"]
            assert API_PASSWORD not in refused.text
        assert [c["name"] for c in (await admin.ok("GET", "/v1/connections"))["data"]] == [
            "house"]
        assert (await admin.ok("GET", "/v1/webhooks"))["data"] == []
    finally:
        server.stop()

"""VoIP.ms end to end: the real app, worker and store against the fake VoIP.ms over HTTP.

Sends go POST /v1/messages -> outbox -> worker -> fake REST API; inbound comes from the
fake firing the URL callback (GET) or the JSON webhook at the URL the gateway hands out.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa

from smsbridge.store.schema import messages
from smsbridge.testing.fake_voipms import FakeVoipms
from smsbridge.testing.server import RunningServer
from tests.conftest import eventually, make_settings
from tests.harness import GatewayHarness

DID = "+15145550100"  # the account's DID
PEER = "+14385550123"  # the other phone
USERNAME = "me@example.com"
API_PASSWORD = "s3cret-api-pass"
WHEN = "2024-05-01 12:00:00"


@pytest.fixture
def fake() -> FakeVoipms:
    """The fake carrier's state and knobs."""
    return FakeVoipms(username=USERNAME, api_password=API_PASSWORD)


@pytest.fixture
def voipms_gateway(sqlite_url: str, start_gateway: Callable[..., GatewayHarness],
                   fake_server: RunningServer) -> Callable[..., GatewayHarness]:
    """Start a gateway (SQLite unless told) with one VoIP.ms connection pointed at the fake."""

    def start(database: str | None = None, **settings: Any) -> GatewayHarness:
        return start_gateway(make_settings(database or sqlite_url, [
            voipms_connection(fake_server.url, **settings)]))

    return start


def voipms_connection(base_url: str, **settings: Any) -> dict[str, Any]:
    """A [[connections]] table for VoIP.ms with the fake's credentials."""
    return {"name": "voipms", "carrier": "voipms", "numbers": [DID], "settings": {
        "base_url": base_url, "username": USERNAME, "api_password": API_PASSWORD, **settings}}


async def callback_templates(gw: GatewayHarness, http: aiohttp.ClientSession
                             ) -> tuple[str, str]:
    """The full and the id-only URL-callback templates the gateway tells the user to paste."""
    async with http.get(f"{gw.url}/v1/carriers", headers=gw.auth) as resp:
        assert resp.status == 200, await resp.text()
        (row,) = (await resp.json())["data"]
    urls = re.findall(r"https?://\S+", row["setup"])
    full = next(u for u in urls if "{MESSAGE}" in u)
    id_only = next(u for u in urls if "{ID}" in u and "{MESSAGE}" not in u)
    assert full.startswith(row["inbound_url"]) and id_only.startswith(row["inbound_url"])
    return full, id_only


async def inbound(gw: GatewayHarness, http: aiohttp.ClientSession) -> list[dict[str, Any]]:
    """Every inbound message, as GET /v1/messages?direction=inbound shows it."""
    return list((await gw.list_messages(http, direction="inbound"))["data"])


# ------------------------------------------------------------------------ sending


async def test_send_sms_is_sent_with_the_carriers_id(
        database_url: str, voipms_gateway, fake: FakeVoipms,
        http: aiohttp.ClientSession) -> None:
    gw = voipms_gateway(database_url)
    status, queued = await gw.send(http, {"from": DID, "to": "438 555 0123",
                                          "text": "Porch motion at 02:14"})
    assert status == 202 and queued["status"] == "queued"
    assert queued["to"] == PEER

    sent = await gw.wait_status(http, queued["id"], {"sent", "failed"})
    assert sent["status"] == "sent", sent["error"]
    assert sent["attempts"] == 1
    (carrier_sms,) = fake.sent
    assert sent["carrier_message_id"] == str(carrier_sms.id)
    assert (carrier_sms.kind, carrier_sms.did, carrier_sms.dst, carrier_sms.message) == (
        "sms", "5145550100", "4385550123", "Porch motion at 02:14")
    (request,) = fake.requests
    assert request.method == "sendSMS" and request.http_method == "POST"


# 117 characters but 174 UTF-8 bytes: over sendSMS's byte limit, not over 160 characters.
LONG_TEXT = ("🚨🚨🚨 Alarme déclenchée à l'entrée — caméra 2 📷📷📷. Vérifiez la porte arrière, "
             "fenêtre élève, garage ✅✅✅ fin 🔒🔒🔒 éèà 🏠🏠🏠")


async def test_long_text_goes_as_one_mms_by_default(
        voipms_gateway, fake: FakeVoipms, http: aiohttp.ClientSession) -> None:
    assert len(LONG_TEXT) <= 160 < len(LONG_TEXT.encode("utf-8"))
    gw = voipms_gateway()
    _, queued = await gw.send(http, {"from": DID, "to": PEER, "text": LONG_TEXT})
    sent = await gw.wait_status(http, queued["id"], {"sent", "failed"})
    assert sent["status"] == "sent", sent["error"]
    assert [r.method for r in fake.requests] == ["sendMMS"]
    (mms,) = fake.sent
    assert (mms.kind, mms.message, mms.media) == ("mms", LONG_TEXT, ())
    assert sent["carrier_message_id"] == str(mms.id)


async def test_long_text_with_split_goes_as_sms_parts_that_join_back(
        voipms_gateway, fake: FakeVoipms, http: aiohttp.ClientSession) -> None:
    gw = voipms_gateway(long_text="split")
    _, queued = await gw.send(http, {"from": DID, "to": PEER, "text": LONG_TEXT})
    sent = await gw.wait_status(http, queued["id"], {"sent", "failed"})
    assert sent["status"] == "sent", sent["error"]
    assert {r.method for r in fake.requests} == {"sendSMS"}
    assert len(fake.sent) >= 2
    assert all(p.kind == "sms" and len(p.message.encode("utf-8")) <= 160 for p in fake.sent)
    assert "".join(p.message for p in fake.sent) == LONG_TEXT
    assert sent["carrier_message_id"] == str(fake.sent[0].id)
    assert sent["segments"] == len(fake.sent)


async def test_mms_with_a_media_url_sends_the_url_as_media1(
        voipms_gateway, fake: FakeVoipms, http: aiohttp.ClientSession) -> None:
    gw = voipms_gateway()
    photo = "https://cams.example.com/snap/porch-0214.jpg"
    status, queued = await gw.send(http, {"from": DID, "to": PEER, "text": "Porch",
                                          "media": [{"url": photo}]})
    assert status == 202, queued
    sent = await gw.wait_status(http, queued["id"], {"sent", "failed"})
    assert sent["status"] == "sent", sent["error"]
    (request,) = fake.requests
    assert request.method == "sendMMS"
    assert request.params["media1"] == photo and request.params["message"] == "Porch"
    assert fake.sent[0].media == (photo,)
    assert sent["media"] == [{"content_type": "image/jpeg", "url": photo}]


async def test_refused_destination_fails_at_once_with_the_carriers_word(
        voipms_gateway, fake: FakeVoipms, http: aiohttp.ClientSession) -> None:
    gw = voipms_gateway()
    fake.fail_next("invalid_dst")
    _, queued = await gw.send(http, {"from": DID, "to": PEER, "text": "hello"})
    failed = await gw.wait_status(http, queued["id"], {"failed", "sent"})
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "invalid_dst"
    assert failed["attempts"] == 1
    assert fake.sent == []
    assert API_PASSWORD not in json.dumps(failed)


async def test_api_limit_is_retried_after_a_minute_then_sent(
        sqlite_url: str, voipms_gateway, fake: FakeVoipms,
        http: aiohttp.ClientSession) -> None:
    gw = voipms_gateway()
    fake.fail_next("api_limit_exceeded")
    _, queued = await gw.send(http, {"from": DID, "to": PEER, "text": "hello again"})
    msg_id = queued["id"]

    async def first_attempt_done() -> dict[str, Any]:
        current = await gw.get_message(http, msg_id)
        return current if current["attempts"] == 1 and current["error"] else {}

    waiting = await eventually(first_attempt_done)
    assert waiting["status"] == "queued"
    assert waiting["error"]["code"] == "api_limit_exceeded"
    engine = sa.create_engine(sqlite_url)
    try:
        with engine.begin() as conn:
            due = conn.execute(sa.select(messages.c.next_attempt_at)
                               .where(messages.c.id == msg_id)).scalar_one()
            # VoIP.ms counts requests per minute: the retry waits for the next minute.
            assert due >= time.time() + 50
            # Let the minute pass.
            conn.execute(sa.update(messages).where(messages.c.id == msg_id)
                         .values(next_attempt_at=time.time()))
    finally:
        engine.dispose()

    sent = await gw.wait_status(http, msg_id, {"sent", "failed"})
    assert sent["status"] == "sent" and sent["attempts"] == 2
    assert sent["error"] is None
    assert [r.method for r in fake.requests] == ["sendSMS", "sendSMS"]
    assert sent["carrier_message_id"] == str(fake.sent[0].id)


# ------------------------------------------------------------------------ receiving


async def test_url_callback_is_answered_ok_and_stored_in_e164(
        voipms_gateway, fake: FakeVoipms, http: aiohttp.ClientSession) -> None:
    gw = voipms_gateway()
    full, _ = await callback_templates(gw, http)
    text = "ARM SV\nLigne deux: été 🚨\nA&B=C; 100% ?#"
    status, body = await fake.fire_url_callback(
        full, from_="4385550123", to="5145550100", message=text, id="7001", timestamp=WHEN)
    assert (status, body) == (200, "ok")
    (got,) = await inbound(gw, http)
    assert (got["from"], got["to"], got["text"]) == (PEER, DID, text)
    assert got["carrier_message_id"] == "7001"
    assert got["connection"] == "voipms" and got["status"] == "received"


async def test_json_webhook_is_stored_with_its_media(
        voipms_gateway, fake: FakeVoipms, http: aiohttp.ClientSession) -> None:
    gw = voipms_gateway()
    picture = "https://voip.ms/media/mms/7002.jpg"
    status, body = await fake.fire_webhook(
        f"{gw.url}{gw.inbound_path('voipms')}", from_="+14385550123", to="+15145550100",
        message="Look 👀", id="7002", media=[(picture, "image/jpeg")])
    assert status == 200, body
    (got,) = await inbound(gw, http)
    assert (got["from"], got["to"], got["text"]) == (PEER, DID, "Look 👀")
    assert got["carrier_message_id"] == "7002"
    assert got["media"] == [{"content_type": "image/jpeg", "url": picture}]


async def test_duplicate_callback_is_acknowledged_twice_and_stored_once(
        voipms_gateway, fake: FakeVoipms, http: aiohttp.ClientSession) -> None:
    gw = voipms_gateway()
    full, _ = await callback_templates(gw, http)
    for _ in range(2):
        answer = await fake.fire_url_callback(
            full, from_="4385550123", to="5145550100", message="DISARM JF", id="7003",
            timestamp=WHEN)
        assert answer == (200, "ok")
    assert [m["text"] for m in await inbound(gw, http)] == ["DISARM JF"]


async def test_id_only_callback_fetches_the_text_by_getsms(
        voipms_gateway, fake: FakeVoipms, http: aiohttp.ClientSession) -> None:
    gw = voipms_gateway()
    _, id_only = await callback_templates(gw, http)
    fake.add_received(7004, did="5145550100", contact="4385550123", message="Status?\nAll 👍")
    answer = await fake.fire_url_callback(
        id_only, from_="4385550123", to="5145550100", message="", id="7004", timestamp=WHEN)
    assert answer == (200, "ok")
    (got,) = await inbound(gw, http)
    assert (got["from"], got["to"], got["text"]) == (PEER, DID, "Status?\nAll 👍")
    (lookup,) = fake.requests
    assert lookup.method == "getSMS" and lookup.params["sms"] == "7004"


async def test_id_only_callback_without_a_row_is_refused_until_getsms_has_it(
        voipms_gateway, fake: FakeVoipms, http: aiohttp.ClientSession) -> None:
    gw = voipms_gateway()
    _, id_only = await callback_templates(gw, http)

    async def fire() -> tuple[int, str]:
        return await fake.fire_url_callback(
            id_only, from_="4385550123", to="5145550100", message="", id="7005",
            timestamp=WHEN)

    status, body = await fire()
    # Anything but "ok" makes VoIP.ms (with URL Callback Retry on) send it again later.
    assert status == 503 and body != "ok"
    assert await inbound(gw, http) == []
    assert API_PASSWORD not in body

    fake.add_received(7005, did="5145550100", contact="4385550123", message="late text")
    assert await fire() == (200, "ok")
    assert await fire() == (200, "ok")
    assert [m["text"] for m in await inbound(gw, http)] == ["late text"]


async def test_wrong_token_is_forbidden_and_nothing_stored(
        voipms_gateway, fake: FakeVoipms, http: aiohttp.ClientSession) -> None:
    gw = voipms_gateway()
    full, _ = await callback_templates(gw, http)
    token = gw.tokens["voipms"]
    forged = full.replace(f"/{token}/", "/" + "A" * len(token) + "/")
    assert forged != full
    status, _ = await fake.fire_url_callback(
        forged, from_="4385550123", to="5145550100", message="DISARM", id="7006",
        timestamp=WHEN)
    assert status == 403
    assert await inbound(gw, http) == []


async def test_callback_without_from_is_a_bad_request_and_nothing_stored(
        voipms_gateway, fake: FakeVoipms, http: aiohttp.ClientSession) -> None:
    gw = voipms_gateway()
    full, _ = await callback_templates(gw, http)
    no_from = full.replace("&from={FROM}", "")
    assert "{FROM}" not in no_from
    status, body = await fake.fire_url_callback(
        no_from, from_="4385550123", to="5145550100", message="hi", id="7007",
        timestamp=WHEN)
    assert status == 400
    assert "from" in body
    assert await inbound(gw, http) == []


# ------------------------------------------------------------------------ CLI


async def test_carriers_cli_prints_the_callback_template_that_works(
        sqlite_url: str, voipms_gateway, fake: FakeVoipms, fake_server: RunningServer,
        tmp_path: Path, http: aiohttp.ClientSession) -> None:
    gw = voipms_gateway()
    token = gw.tokens["voipms"]
    config = tmp_path / "smsbridge.toml"
    config.write_text(
        f'[server]\nlisten = "127.0.0.1:{gw.server.port}"\ndatabase = "{sqlite_url}"\n\n'
        f'[[connections]]\nname = "voipms"\ncarrier = "voipms"\nnumbers = ["{DID}"]\n\n'
        f'[connections.settings]\nbase_url = "{fake_server.url}"\nusername = "{USERNAME}"\n'
        f'api_password = "{API_PASSWORD}"\n', encoding="utf-8")

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "smsbridge.cli.main", "carriers", "--config", str(config),
             *args], capture_output=True, text=True, timeout=60, cwd=tmp_path,
            env={**os.environ, "COLUMNS": "80", "NO_COLOR": "1"})
        assert done.returncode == 0, done.stderr
        return done.stdout

    printed = cli()
    inbound_url = f"{gw.url}/v1/carriers/voipms/{token}/inbound"
    assert f"inbound: {inbound_url}" in printed
    template = next(line.strip() for line in printed.splitlines()
                    if line.strip().startswith(inbound_url + "?"))
    for placeholder in ("{FROM}", "{TO}", "{MESSAGE}", "{ID}"):
        assert placeholder in template
    assert API_PASSWORD not in printed

    # The printed template, pasted into the DID's settings, reaches the running gateway.
    answer = await fake.fire_url_callback(template, from_="4385550123", to="5145550100",
                                          message="from the CLI", id="7008", timestamp=WHEN)
    assert answer == (200, "ok")
    assert [m["text"] for m in await inbound(gw, http)] == ["from the CLI"]

    (row,) = json.loads(cli("--json"))["data"]
    assert row["inbound_url"] == inbound_url
    assert row["carrier"] == "voipms" and row["numbers"] == [DID]
    assert "{MESSAGE}" in row["setup"]


async def test_a_number_outside_us_and_canada_is_refused_before_queuing(
        voipms_gateway, fake: FakeVoipms, http: aiohttp.ClientSession) -> None:
    gw = voipms_gateway()
    status, problem = await gw.send(http, {"from": DID, "to": "+447700900123", "text": "hi"})
    assert status == 422
    assert problem["errors"][0]["field"] == "to"
    assert "sends only to numbers of US, CA" in problem["errors"][0]["reason"]
    assert (await gw.list_messages(http))["data"] == []
    assert fake.requests == []

"""Losing nothing: kill the gateway mid-send, restart it, and every message is sent exactly once
(unless the carrier took it but never answered); on PostgreSQL two workers share one outbox."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from smsbridge.testing.fake_twilio import FakeTwilio
from smsbridge.testing.server import free_port, start_server
from tests.conftest import eventually, make_settings
from tests.processes import SmsbridgeProcess, write_config

SID = "AC" + "1" * 32
TOKEN = "d" * 32
NUMBER = "+15145550100"


def _twilio(fake_url: str, **settings: object) -> dict:
    return {"name": "tw", "carrier": "twilio", "numbers": [NUMBER],
            "settings": {"base_url": fake_url, "account_sid": SID, "auth_token": TOKEN,
                         **settings}}


async def _post(http: aiohttp.ClientSession, base: str, key: str, text: str) -> str:
    async with http.post(f"{base}/v1/messages", headers={"Authorization": f"Bearer {key}"},
                         json={"from": NUMBER, "to": "+15145550111", "text": text}) as resp:
        assert resp.status == 202, await resp.text()
        return str((await resp.json())["id"])


async def test_kill_mid_send_then_restart_sends_everything_once(tmp_path: Path) -> None:
    fake = FakeTwilio(SID, TOKEN)
    fake.delay_seconds = 0.4  # keeps sends in flight when the kill lands
    carrier = start_server(fake.app)
    db = tmp_path / "gw.db"
    port = free_port()
    config = write_config(tmp_path / "smsbridge.toml", database=f"sqlite:///{db}",
                          listen=f"127.0.0.1:{port}",
                          # The lease outlasts a send's timeout (1 s + 5 s), so the cut-off
                          # sends are taken over about 6 s after the kill.
                          connections=[_twilio(carrier.url, timeout_seconds=1.0)],
                          worker={"concurrency": 4, "lease_seconds": 2.0, "poll_interval": 0.1})
    base = f"http://127.0.0.1:{port}"
    first = SmsbridgeProcess(["serve", "--config", str(config)], tmp_path, "first")
    second: SmsbridgeProcess | None = None
    try:
        first.wait_for("sbk_", stream="stdout")
        key = first.output("stdout").split()[0]
        async with aiohttp.ClientSession() as http:
            await eventually(lambda: _healthy(http, base), timeout=20)
            texts = [f"alarm {i}" for i in range(20)]
            for text in texts:
                await _post(http, base, key, text)
            # Some sends answered, some in flight: pull the plug.
            await eventually(lambda: len(fake.messages) >= 4
                             and len(fake.requests) > len(fake.messages), timeout=20)
            first.kill()
            answered_before_kill = {
                row[0] for row in sqlite3.connect(db).execute(
                    "SELECT text FROM messages WHERE status = 'sent'")}
            seen_before_kill = Counter(r.get("Body") for r in fake.requests)
            assert answered_before_kill and len(answered_before_kill) < len(texts)

            second = SmsbridgeProcess(["serve", "--config", str(config)], tmp_path, "second")
            await eventually(lambda: _healthy(http, base), timeout=20)
            await eventually(lambda: _all_sent(db, len(texts)), timeout=30)

        sent = Counter(m.body for m in fake.messages)
        assert set(sent) == set(texts)  # nothing lost
        # The sends cut off by the kill were taken over once their lease ran out.
        retaken = sqlite3.connect(db).execute(
            "SELECT count(*) FROM messages WHERE attempts > 1").fetchone()[0]
        assert retaken >= 1
        for text in answered_before_kill:
            assert sent[text] == 1, f"{text} was recorded as sent and still sent again"
        for text, count in sent.items():
            if count > 1:  # only what the carrier had taken without answering may repeat
                assert seen_before_kill[text] >= 1 and text not in answered_before_kill
        assert "API key" not in second.output()  # the key was made once, on first start
    finally:
        first.terminate()
        if second is not None:
            second.terminate()
        carrier.stop()


async def test_two_workers_on_postgres_share_one_outbox(
        pg_url: str, tmp_path: Path, start_gateway) -> None:
    fake = FakeTwilio(SID, TOKEN)
    fake.delay_seconds = 0.02
    carrier = start_server(fake.app)
    config = write_config(tmp_path / "smsbridge.toml", database=pg_url,
                          listen=f"127.0.0.1:{free_port()}", connections=[_twilio(carrier.url)],
                          # Polling is slower than the test: only NOTIFY wake-ups can pass it.
                          worker={"concurrency": 8, "poll_interval": 60.0})
    workers = [SmsbridgeProcess(["worker", "--config", str(config)], tmp_path, f"w{i}")
               for i in range(2)]
    try:
        for w in workers:
            w.wait_for("worker running")
        # The API alone (no worker in it) queues; only the two worker processes send,
        # woken across processes by LISTEN/NOTIFY.
        gw = start_gateway(make_settings(pg_url, [_twilio(carrier.url)]), run_workers=False)
        texts = [f"pg {i}" for i in range(200)]
        async with aiohttp.ClientSession() as http:
            for chunk in range(0, len(texts), 25):
                await asyncio.gather(*(_post(http, gw.url, gw.api_key, t)
                                       for t in texts[chunk:chunk + 25]))
            await eventually(lambda: len(fake.messages) >= len(texts), timeout=40)

            async def all_recorded() -> dict[str, Any] | None:
                page = await gw.list_messages(http, status="sent", limit=500)
                return page if len(page["data"]) == len(texts) else None

            page = await eventually(all_recorded, timeout=20)
            # A sent row is never claimed again, so every send there will be came from one of
            # these claims (one attempt each); once each claim's outcome is logged, none is
            # in flight, and a double send would be among the fake's messages.
            claims = sum(m["attempts"] for m in page["data"])
            await eventually(lambda: _outcomes(workers) >= claims, timeout=20)
        sent = Counter(m.body for m in fake.messages)
        assert sent == Counter(texts)  # each exactly once
        assert claims == len(texts)
        per_worker = [w.output().count(" sent msg_") for w in workers]
        assert all(n > 0 for n in per_worker), per_worker
        assert sum(per_worker) == len(texts)
    finally:
        for w in workers:
            w.terminate()
        carrier.stop()


def _outcomes(workers: list[SmsbridgeProcess]) -> int:
    """How many claimed sends the worker processes have logged the outcome of."""
    logs = "".join(w.output() for w in workers)
    return sum(logs.count(f"{word} msg_") for word in (" sent", "retry", "failed"))


async def _healthy(http: aiohttp.ClientSession, base: str) -> bool:
    try:
        async with http.get(f"{base}/healthz") as resp:
            return resp.status == 200
    except aiohttp.ClientError:
        return False


def _all_sent(db: Path, count: int) -> bool:
    rows = sqlite3.connect(db).execute(
        "SELECT count(*) FROM messages WHERE status = 'sent'").fetchone()
    return bool(rows[0] == count)

"""The REST API's contract: auth, idempotency, listing, and precise problem documents."""

from __future__ import annotations

import base64

import aiohttp
import pytest

from tests.conftest import make_settings

SANDBOX = {"name": "sandbox", "carrier": "sandbox", "numbers": ["+15555550100"],
           "settings": {"delivery_receipts": False}}
OK = {"from": "+15555550100", "to": "+15145550111", "text": "hello"}


@pytest.fixture
def gw(sqlite_url, start_gateway):
    return start_gateway(make_settings(sqlite_url, [SANDBOX]))


async def test_idempotency_key_returns_the_first_result(gw, http: aiohttp.ClientSession) -> None:
    key = {"Idempotency-Key": "order-42"}
    first_status, first = await gw.send(http, OK, key)
    second_status, second = await gw.send(http, OK, key)
    assert first_status == second_status == 202
    assert second["id"] == first["id"] and second["text"] == "hello"
    listed = await gw.list_messages(http, direction="outbound")
    assert len(listed["data"]) == 1
    await gw.wait_status(http, first["id"], {"sent"})


async def test_list_filters_and_pagination(gw, http: aiohttp.ClientSession) -> None:
    ids = []
    for i in range(5):
        _, m = await gw.send(http, {**OK, "to": f"+1514555011{i}", "text": f"n{i}"})
        ids.append(m["id"])
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await gw.list_messages(http, **params)
        seen += [m["id"] for m in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))
    only = await gw.list_messages(http, number="5145550113")
    assert [m["text"] for m in only["data"]] == ["n3"]


@pytest.mark.parametrize(
    ("body", "field", "reason_part"),
    [
        ({**OK, "to": "not a number"}, "to", "not a phone number"),
        ({**OK, "from": "+15145550999"}, "from", "no connection owns"),
        ({**OK, "text": "   "}, "text", "must not be empty"),
        ({**OK, "connection": "nope"}, "connection", "no connection named"),
        ({"to": "+15145550111", "text": "x"}, "from", "is required"),
        ({**OK, "colour": "red"}, "colour", "not a known field"),
        ({**OK, "media": [{"url": "https://x.example/a.exe"}]}, "media[0].content_type",
         "not an image, audio, video or PDF"),
        ({**OK, "media": [{"data": base64.b64encode(b"x" * 5_000_001).decode(),
                           "content_type": "image/png"}]}, "media[0].data", "the limit is"),
        ({**OK, "media": [{"data": "!!!", "content_type": "image/png"}]}, "media[0].data",
         "not valid base64"),
        ({**OK, "text": "x" * 1601}, "text", "at most 1600"),
    ],
)
async def test_bad_input_is_a_problem_naming_the_field(
        gw, http: aiohttp.ClientSession, body, field, reason_part) -> None:
    async with http.post(f"{gw.url}/v1/messages", json=body, headers=gw.auth) as resp:
        assert resp.status == 422
        assert resp.content_type == "application/problem+json"
        problem = await resp.json(content_type=None)
    assert problem["status"] == 422 and problem["title"] == "Invalid input"
    assert problem["errors"][0]["field"] == field
    assert reason_part in problem["errors"][0]["reason"]
    assert (await gw.list_messages(http))["data"] == []  # nothing half-saved


@pytest.mark.parametrize("auth", [None, "Bearer sbk_wrong", "Basic abc"])
async def test_missing_or_wrong_api_key_is_401(gw, http: aiohttp.ClientSession, auth) -> None:
    headers = {"Authorization": auth} if auth else {}
    async with http.post(f"{gw.url}/v1/messages", json=OK, headers=headers) as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await resp.json(content_type=None))["type"] == "urn:smsbridge:problem:unauthorized"


async def test_body_over_the_limit_is_413(gw, http: aiohttp.ClientSession) -> None:
    async with http.post(f"{gw.url}/v1/messages", data=b"x" * 10_000_001, headers={
            **gw.auth, "content-type": "application/json"}) as resp:
        assert resp.status == 413
        assert (await resp.json(content_type=None))["status"] == 413
    # Carrier webhooks get the smaller limit, chunked bodies included.
    async def chunks():
        for _ in range(11):
            yield b"y" * 100_000

    async with http.post(f"{gw.url}{gw.inbound_path('sandbox')}", data=chunks()) as resp:
        assert resp.status == 413
    assert (await gw.list_messages(http))["data"] == []


async def test_bad_webhook_token_is_403_and_stores_nothing(gw, http: aiohttp.ClientSession
                                                          ) -> None:
    async with http.post(f"{gw.url}/v1/carriers/sandbox/not-the-token/inbound", json={
            "id": "x", "from": "+15145550111", "to": "+15555550100", "text": "hi"}) as resp:
        assert resp.status == 403
        body = await resp.json(content_type=None)
    assert body["title"] == "Webhook rejected"
    assert gw.tokens["sandbox"] not in str(body)
    assert (await gw.list_messages(http))["data"] == []


async def test_malformed_webhook_is_400_and_stores_nothing(gw, http: aiohttp.ClientSession
                                                          ) -> None:
    async with http.post(f"{gw.url}{gw.inbound_path('sandbox')}", data=b"{not json",
                         headers={"content-type": "application/json"}) as resp:
        assert resp.status == 400
    async with http.post(f"{gw.url}{gw.inbound_path('sandbox')}", json={"text": "no numbers"}
                         ) as resp:
        assert resp.status == 400
        assert "missing from, to" in (await resp.json(content_type=None))["detail"]
    assert (await gw.list_messages(http))["data"] == []


async def test_health_and_openapi(gw, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{gw.url}/healthz") as resp:
        assert resp.status == 200
        assert (await resp.json()) == {"status": "ok", "store": "ok", "worker": True}
    async with http.get(f"{gw.url}/openapi.json") as resp:
        spec = await resp.json()
    assert "/v1/messages" in spec["paths"]
    assert not any("/v1/carriers/{connection}/{token}" in p for p in spec["paths"])
    async with http.get(f"{gw.url}/docs") as resp:
        assert resp.status == 200

"""/openapi.json says what the API does: checked by hand, and by schemathesis over HTTP."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import make_settings
from tests.harness import GatewayHarness

SANDBOX = {"name": "sandbox", "carrier": "sandbox", "numbers": ["+15555550100"],
           "settings": {"delivery_receipts": False}}
PROBLEM = {"$ref": "#/components/schemas/Problem"}
# Each operation gets this many generated cases per phase; the whole run stays under ~30 s.
MAX_EXAMPLES = 25
SCHEMATHESIS_TIMEOUT = 120


@pytest.fixture
def gw(sqlite_url: str, start_gateway: Any) -> GatewayHarness:
    return start_gateway(make_settings(sqlite_url, [SANDBOX]))


async def spec_of(gw: GatewayHarness, http: aiohttp.ClientSession) -> dict[str, Any]:
    async with http.get(f"{gw.url}/openapi.json") as resp:
        assert resp.status == 200
        return await resp.json()  # type: ignore[no-any-return]


async def test_lists_are_documented_as_the_data_envelope_they_return(
        gw: GatewayHarness, http: aiohttp.ClientSession) -> None:
    spec = await spec_of(gw, http)
    schemas = spec["components"]["schemas"]
    for path, item in [("/v1/carriers", "ConnectionOut"), ("/v1/webhook-deliveries",
                                                           "DeliveryOut")]:
        ref = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"][
            "schema"]["$ref"]
        envelope = schemas[ref.rsplit("/", 1)[1]]
        assert envelope["properties"]["data"]["items"] == {
            "$ref": f"#/components/schemas/{item}"}
        async with http.get(f"{gw.url}{path}", headers=gw.auth) as resp:
            assert list(await resp.json()) == ["data"]


async def test_every_error_is_documented_as_a_problem_document(
        gw: GatewayHarness, http: aiohttp.ClientSession) -> None:
    spec = await spec_of(gw, http)
    expected = {("/v1/messages", "post"): {"401", "413", "422"},
                ("/v1/messages", "get"): {"401", "422"},
                ("/v1/messages/{message_id}", "get"): {"401", "404", "422"},
                ("/v1/webhook-deliveries", "get"): {"401", "422"},
                ("/v1/carriers", "get"): {"401", "422"}}
    for (path, method), codes in expected.items():
        responses = spec["paths"][path][method]["responses"]
        errors = {code for code in responses if code[0] == "4"}
        assert errors == codes, (path, method)
        for code in codes:
            assert responses[code]["content"] == {"application/problem+json": {
                "schema": PROBLEM}}, (path, method, code)


async def test_v1_routes_declare_the_bearer_scheme_and_the_send_body(
        gw: GatewayHarness, http: aiohttp.ClientSession) -> None:
    spec = await spec_of(gw, http)
    schemes = spec["components"]["securitySchemes"]
    ((name, scheme),) = schemes.items()
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            assert (operation.get("security") == [{name: []}]) == path.startswith("/v1/")
    body = spec["paths"]["/v1/messages"]["post"]["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SendIn"}
    send_in = spec["components"]["schemas"]["SendIn"]
    assert send_in["required"] == ["from", "to"] and send_in["additionalProperties"] is False


# ------------------------------------------------------------------ /docs offline


class _Assets(HTMLParser):
    """Every URL a page loads (scripts, styles, icons, images) and every absolute URL in it."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


async def test_docs_load_nothing_from_another_host(gw: GatewayHarness,
                                                   http: aiohttp.ClientSession) -> None:
    async with http.get(f"{gw.url}/docs") as resp:
        assert resp.status == 200
        page = await resp.text()
    assert not re.findall(r"(?:https?:)?//[A-Za-z0-9.-]+", page), "an outside host is named"
    parser = _Assets()
    parser.feed(page)
    assert parser.urls, page
    kinds = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
    seen = set()
    for url in parser.urls:
        assert url.startswith("/"), url
        async with http.get(f"{gw.url}{url}") as resp:
            assert resp.status == 200, url
            suffix = Path(url).suffix
            assert resp.content_type == kinds[suffix], (url, resp.content_type)
            assert len(await resp.read()) > 100
            seen.add(suffix)
    assert seen == set(kinds)
    # The page's script fetches the spec from this gateway too.
    assert "url: '/openapi.json'" in page or 'url: "/openapi.json"' in page


# ------------------------------------------------------------------ schemathesis


def _schemathesis() -> str:
    found = shutil.which("st", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("schemathesis is not installed: pip install -e '.[test]'")
    return found


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_schemathesis_finds_no_5xx_and_no_response_off_the_schema(
        store: str, request: pytest.FixtureRequest, start_gateway: Any, tmp_path: Path) -> None:
    database = request.getfixturevalue("sqlite_url" if store == "sqlite" else "pg_url")
    gw = start_gateway(make_settings(database, [SANDBOX]))
    argv = [
        _schemathesis(), "run", f"{gw.url}/openapi.json",
        "--header", f"Authorization: Bearer {gw.api_key}",
        "--checks", ",".join([
            "not_a_server_error", "status_code_conformance", "content_type_conformance",
            "response_schema_conformance", "response_headers_conformance", "ignored_auth"]),
        "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", str(MAX_EXAMPLES), "--seed", "20261126",
        "--generation-deterministic",
        "--workers", "1", "--request-timeout", "10", "--no-color",
        # NUL is exactly the input that broke PostgreSQL: keep generating it.
        "--generation-allow-x00", "true",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=SCHEMATHESIS_TIMEOUT,
                          cwd=tmp_path, env={**os.environ, "NO_COLOR": "1"}, check=False)
    report = done.stdout[-12_000:] + done.stderr[-4_000:]
    assert done.returncode == 0, report
    assert re.search(r"\b[1-9]\d* passed\b|No issues found", report), report

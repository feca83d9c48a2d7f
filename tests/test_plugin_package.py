"""The example plug-in as a user gets it: built and installed by pip, then served end to end.

tests/plugin_example/ (the package docs/plugins.md shows) is pip-installed into a virtual
environment of its own, once for this module. smsbridge there finds the carrier through its
entry point alone; a real `smsbridge serve` sends through it to a fake of the carrier's API
and takes its signed webhooks. Run just these with `pytest tests/test_plugin_package.py`.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import venv
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from packaging.version import Version

from smsbridge.testing.server import free_port
from tests.cli.test_first_hour import one_line_error
from tests.conftest import FAST_WORKER, eventually
from tests.processes import SmsbridgeProcess, write_config
from tests.providers.test_plugin_example import (
    API_KEY,
    PACKAGE,
    SECRET,
    AcmeApi,
    acme_headers,
    running_acme_api,
)

OUR_NUMBER, PEER = "+15145550100", "+15145550111"


def build_options() -> list[str]:
    """pip options that build the package offline when this environment has what it takes.

    setuptools builds a wheel by itself from 70.1 on, and with the wheel package from 61 on.
    Without either, pip fetches setuptools for an isolated build from the indexes it is
    configured with (a local one on the project's machines).
    """
    try:
        setuptools = Version(version("setuptools"))
    except PackageNotFoundError:
        return []
    try:
        version("wheel")
        has_wheel = True
    except PackageNotFoundError:
        has_wheel = False
    if setuptools >= Version("70.1") or (has_wheel and setuptools >= Version("61")):
        return ["--no-index", "--no-build-isolation"]
    return []


@pytest.fixture(scope="module")
def plugin_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a new virtual environment into which pip installed the example plug-in."""
    root = tmp_path_factory.mktemp("plugin")
    # Built from a copy: a build writes build/ and *.egg-info beside the sources.
    source = shutil.copytree(PACKAGE, root / "acme-smsbridge",
                             ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    venv.EnvBuilder(with_pip=False).create(root / "venv")
    python = root / "venv" / "bin" / "python"
    # smsbridge and its dependencies come from this test run's environment, the way a
    # system site would; the plug-in is the only package installed in the new one.
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                              "['purelib'])"], capture_output=True, text=True, check=True)
    lines = [f"import site; site.addsitedir({path!r})" for path in site.getsitepackages()]
    (Path(purelib.stdout.strip()) / "smsbridge_under_test.pth").write_text("\n".join(lines))
    installed = subprocess.run(
        [python, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check",
         *build_options(), str(source)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    return python


def smsbridge_in(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`smsbridge ARGS` run by ``python``."""
    return subprocess.run([python, "-m", "smsbridge.cli.main", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60,
                          env={**_env(), "SMSBRIDGE_DATA_DIR": str(cwd / "data")})


def _env() -> dict[str, str]:
    # A PYTHONPATH of the caller's would put other packages beside the plug-in.
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def test_the_installed_plugin_is_listed_as_a_plugin(plugin_python: Path,
                                                   tmp_path: Path) -> None:
    result = smsbridge_in(plugin_python, "carriers", "--available", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    carriers = {entry["key"]: entry for entry in json.loads(result.stdout)["data"]}
    acme = carriers["acme"]
    assert (acme["name"], acme["origin"], acme["distribution"], acme["version"]) == (
        "Acme Messaging", "plug-in", "acme-smsbridge", "1.0.0")
    assert acme["entry_point"] == "acme_smsbridge:AcmeProvider" and acme["error"] is None
    assert acme["capabilities"]["signature"] == "acme-hmac-sha256"
    assert acme["capabilities"]["max_media"] == 5
    assert [s["key"] for s in acme["settings"]] == ["api_key", "webhook_secret", "base_url",
                                                    "timeout_seconds"]
    assert carriers["twilio"]["origin"] == "built-in"  # beside the built-in ones


def test_describe_shows_the_plugins_settings(plugin_python: Path, tmp_path: Path) -> None:
    result = smsbridge_in(plugin_python, "carriers", "describe", "acme", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [line.rstrip() for line in result.stdout.splitlines()]
    assert lines[0] == "acme  Acme Messaging (plug-in from acme-smsbridge 1.0.0)"
    assert "  api_key  string; required; secret" in lines
    assert "      API key from the Acme dashboard" in lines
    assert "  webhook_secret  string; required; secret" in lines
    assert "  base_url  string; default https://api.acme.example" in lines
    # Without the package, the same command does not know the carrier.
    bare = one_line_error(subprocess.run(
        [sys.executable, "-m", "smsbridge.cli.main", "carriers", "describe", "acme"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, env=_env()))
    assert bare.startswith("invalid carrier: unknown carrier 'acme'")


def serve_in(python: Path, config: Path, workdir: Path) -> SmsbridgeProcess:
    """`smsbridge serve` run by ``python``."""
    # The plug-in is installed for ``python`` only.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return SmsbridgeProcess(["serve", "-c", str(config)], workdir, "serve", env=env,
                            python=str(python))


async def post_signed(http: aiohttp.ClientSession, url: str, event: dict[str, Any],
                      secret: str = SECRET) -> int:
    """Post an Acme webhook signed with ``secret``; the gateway's answer status."""
    body = json.dumps(event).encode()
    async with http.post(url, data=body, headers=acme_headers(body, secret=secret)) as resp:
        return resp.status


async def test_a_real_gateway_sends_and_receives_through_the_plugin(
        plugin_python: Path, tmp_path: Path) -> None:
    async with running_acme_api() as (fake, acme_url):
        port = free_port()
        config = write_config(
            tmp_path / "c.toml", listen=f"127.0.0.1:{port}",
            database=f"sqlite:///{tmp_path}/db.sqlite", worker=FAST_WORKER,
            connections=[{"name": "acme", "carrier": "acme", "numbers": [OUR_NUMBER],
                          "settings": {"api_key": API_KEY, "webhook_secret": SECRET,
                                       "base_url": acme_url, "timeout_seconds": 5}}])
        server = serve_in(plugin_python, config, tmp_path)
        try:
            server.wait_for("sbk_", stream="stdout")
            await _send_and_receive(plugin_python, fake, config, tmp_path, port,
                                    server.output("stdout").split()[0])
        finally:
            server.terminate()


async def _send_and_receive(python: Path, fake: AcmeApi, config: Path, workdir: Path,
                            port: int, key: str) -> None:
    base, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {key}"}
    listed = smsbridge_in(python, "carriers", "--json", "-c", str(config), cwd=workdir)
    assert listed.returncode == 0, listed.stderr
    (connection,) = json.loads(listed.stdout)["data"]
    async with aiohttp.ClientSession() as http:
        async def message(message_id: str) -> dict[str, Any]:
            async with http.get(f"{base}/v1/messages/{message_id}", headers=auth) as resp:
                return dict(await resp.json())

        async with http.post(f"{base}/v1/messages", headers=auth, json={
                "from": OUR_NUMBER, "to": PEER, "text": "Alarm: front door"}) as resp:
            assert resp.status == 202, await resp.text()
            queued = await resp.json()

        async def sent() -> bool:
            return (await message(queued["id"]))["status"] == "sent"

        await eventually(sent, timeout=20)
        (headers, body), = fake.requests  # the worker called Acme's API, as Acme documents it
        assert headers["Authorization"] == f"Bearer {API_KEY}"
        assert body == {"from": OUR_NUMBER, "to": PEER, "text": "Alarm: front door",
                        "status_callback": connection["status_url"]}
        assert (await message(queued["id"]))["carrier_message_id"] == "acme-msg-1"

        receipt = {"type": "message.status", "data": {"id": "acme-msg-1", "status": "delivered"}}
        assert await post_signed(http, connection["status_url"], receipt) == 200
        inbound = {"type": "message.received", "data": {
            "id": "acme-in-1", "from": PEER, "to": OUR_NUMBER, "text": "DISARM JF"}}
        # The plug-in's own signature check guards its URL in the real gateway.
        assert await post_signed(http, connection["inbound_url"], inbound, "forged") == 403
        assert await post_signed(http, connection["inbound_url"], inbound) == 200

        async def both() -> list[tuple[str, str, str]] | None:
            async with http.get(f"{base}/v1/messages", headers=auth) as resp:
                rows = [(m["direction"], m["text"], m["status"])
                        for m in (await resp.json())["data"]]
            return rows if len(rows) == 2 and rows[1][2] == "delivered" else None

        assert await eventually(both, timeout=20) == [
            ("inbound", "DISARM JF", "received"), ("outbound", "Alarm: front door", "delivered")]

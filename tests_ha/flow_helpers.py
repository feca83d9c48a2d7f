"""What the config-flow, options and diagnostics tests share: starting and answering a flow as
this Home Assistant's frontend does, reading its form, checking that everything it shows is
translated, a carrier plug-in, and a running smsbridge gateway.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any, ClassVar, Literal, cast

import aiohttp
import pytest
from homeassistant.config_entries import SOURCE_RECONFIGURE, ConfigEntry, ConfigFlowContext
from homeassistant.const import MAJOR_VERSION, MINOR_VERSION
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, section
from pydantic import Field, SecretStr

from smsbridge.providers import (
    UNSIGNED,
    Capabilities,
    InboundMessage,
    OutboundMessage,
    Provider,
    ProviderConfig,
    ProviderError,
    SendResult,
    WebhookRequest,
    registry,
)
from smsbridge.testing.server import free_port

from .conftest import REPO_ROOT

EN = json.loads((REPO_ROOT / "custom_components/smsbridge/translations/en.json")
                .read_text(encoding="utf-8"))
PLACEHOLDER = re.compile(r"\{(\w+)\}")
# Home Assistant 2026.6 removed the user's advanced mode: its frontend no longer puts
# show_advanced_options in a flow's context, and the settings it hid come in a collapsed section.
ADVANCED_MODE_REMOVED = (MAJOR_VERSION, MINOR_VERSION) >= (2026, 6)


# ---------------------------------------------------------------- starting and answering a flow


def flow_context(source: str, *, advanced: bool, entry_id: str | None = None
                 ) -> ConfigFlowContext:
    """A flow's context as this Home Assistant's frontend sends it, advanced mode on or off
    (ignored from 2026.6, which has no such mode).
    """
    context: dict[str, Any] = {"source": source}
    if entry_id is not None:
        context["entry_id"] = entry_id
    if not ADVANCED_MODE_REMOVED:
        context["show_advanced_options"] = advanced
    # A cast: the key is in ConfigFlowContext before 2026.6 and not after.
    return cast(ConfigFlowContext, context)


async def start_reconfigure(hass: HomeAssistant, entry: ConfigEntry, *, advanced: bool
                            ) -> Mapping[str, Any]:
    """The reconfigure flow of ``entry``, as its menu in the frontend starts it."""
    # Not MockConfigEntry.start_reconfigure_flow: it lost its show_advanced_options in 2026.6.
    return await hass.config_entries.flow.async_init(entry.domain, context=flow_context(
        SOURCE_RECONFIGURE, advanced=advanced, entry_id=entry.entry_id))


async def submit(hass: HomeAssistant, result: Mapping[str, Any], answer: Mapping[str, Any]
                 ) -> Mapping[str, Any]:
    """Answer the current form of a config flow as the frontend sends it: the fields of a
    section inside the section's own value (there even when none of them is given).
    """
    sent = dict(answer)
    for name, held in sections(result).items():
        inside = {str(marker) for marker in held.schema.schema}
        sent[name] = {key: sent.pop(key) for key in list(sent) if key in inside}
    return await hass.config_entries.flow.async_configure(result["flow_id"], sent)


# ---------------------------------------------------------------- reading a form


@dataclass(frozen=True)
class FormField:
    """A field of a form: its selector, and the section holding it (None: the form itself)."""

    selector: Any
    section: str | None = None


def sections(result: Mapping[str, Any]) -> dict[str, section]:
    """A form's sections by name (none for a flow in progress, which carries no form)."""
    schema = result.get("data_schema")
    if schema is None:
        return {}
    return {str(marker): value for marker, value in schema.schema.items()
            if isinstance(value, section)}


def fields(result: Mapping[str, Any]) -> dict[str, FormField]:
    """A form's fields by name, those in its sections too, marked with the section's name."""
    found: dict[str, FormField] = {}
    for marker, value in result["data_schema"].schema.items():
        if isinstance(value, section):
            found.update({str(inner): FormField(selector, str(marker))
                          for inner, selector in value.schema.schema.items()})
        else:
            found[str(marker)] = FormField(value)
    return found


def selector_config(result: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The config of the selector of field ``name`` (its options, its type...)."""
    return dict(fields(result)[name].selector.config)


def suggested_values(result: Mapping[str, Any]) -> dict[str, Any]:
    """What the form shows filled in, by field name (None: empty), in its sections too."""
    shown: dict[str, Any] = {}
    schemas = [result["data_schema"]]
    while schemas:
        for marker, value in schemas.pop().schema.items():
            if isinstance(value, section):
                schemas.append(value.schema)
            else:
                shown[str(marker)] = (marker.description or {}).get("suggested_value")
    return shown


def assert_translated(result: Mapping[str, Any], flow: str = "config", *,
                      unlabelled: frozenset[str] = frozenset()) -> None:
    """Everything ``result`` shows has an English text, and each text's placeholders a value.

    ``unlabelled``: fields with no label of their own (a plug-in's setting, a phone number).
    """
    strings = EN[flow]
    texts: list[str] = []
    if result["type"] is FlowResultType.FORM:
        step = strings["step"][result["step_id"]]
        texts += [step.get("title", ""), step.get("description", "")]
        for name in sections(result):
            # The frontend names a section, and labels its fields, from the section's texts.
            texts_of = step.get("sections", {}).get(name, {})
            assert texts_of.get("name"), f"no name for section {name} in {result['step_id']}"
            texts.append(texts_of.get("description", ""))
        for name, field in fields(result).items():
            where = step if field.section is None else step["sections"][field.section]
            if name not in unlabelled:
                assert name in where.get("data", {}), (
                    f"no label for {name} in {result['step_id']} (section {field.section})")
            texts.append(where.get("data_description", {}).get(name, ""))
        for error in (result.get("errors") or {}).values():
            assert error in strings["error"], f"error {error} has no text"
            texts.append(strings["error"][error])
    elif result["type"] is FlowResultType.ABORT:
        assert result["reason"] in strings["abort"], f"abort {result['reason']} has no text"
        texts.append(strings["abort"][result["reason"]])
    elif result["type"] is FlowResultType.CREATE_ENTRY and result.get("description"):
        texts.append(strings["create_entry"][result["description"]])
    given = set(result.get("description_placeholders") or {})
    missing = {name for text in texts for name in PLACEHOLDER.findall(text)} - given
    assert not missing, f"placeholders without a value: {sorted(missing)}"


# ---------------------------------------------------------------- a carrier plug-in


class AcmeConfig(ProviderConfig):
    """A plug-in's settings: one no built-in carrier has, so no translation labels it."""

    tenant: str = Field(min_length=1, description="the Acme tenant, as in acme-42")
    signing_token: SecretStr = Field(description="the token Acme shows under Developers")
    region: Literal["eu", "us"] = Field("eu", description="where the Acme tenant lives")


class AcmeProvider(Provider[AcmeConfig]):
    """A carrier shipped as a plug-in, with no credentials check and no number list."""

    key: ClassVar[str] = "acme"
    name: ClassVar[str] = "Acme Telecom"
    Config = AcmeConfig
    capabilities = Capabilities(signature=UNSIGNED)

    async def send(self, message: OutboundMessage, http: aiohttp.ClientSession) -> SendResult:
        """Never called by the flow tests."""
        raise ProviderError("the Acme test carrier sends nothing", retryable=False)

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        """Never called by the flow tests."""
        return []


@pytest.fixture(name="acme_plugin")
def acme_plugin_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    """Install AcmeProvider as a plug-in under the entry-point group, as a package would."""
    entry = EntryPoint("acme", f"{__name__}:AcmeProvider", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "plugin_entry_points", lambda: {"acme": entry})


# ---------------------------------------------------------------- a running gateway


@dataclass(frozen=True)
class Gateway:
    """A running smsbridge gateway: its URL, an API key, and the numbers of its connection."""

    url: str
    api_key: str
    numbers: tuple[str, ...]


GATEWAY_NUMBERS = ("+15145550170", "+15145550171")
SMSBRIDGE = REPO_ROOT / ".venv" / "bin" / "smsbridge"


@pytest.fixture(name="gateway")
def gateway_fixture(tmp_path: Path, socket_enabled: None) -> Iterator[Gateway]:
    """``smsbridge serve`` from the project's main venv (which has the server extras), on
    127.0.0.1 with SQLite and a sandbox connection, and an API key made for it.
    """
    if not SMSBRIDGE.exists():
        pytest.skip(f"{SMSBRIDGE} is missing: scripts/setup makes the venv the gateway runs in")
    config = tmp_path / "gateway.toml"
    api_key = ""
    for attempt in range(3):
        port = free_port()
        config.write_text(
            f'[server]\nlisten = "127.0.0.1:{port}"\ndatabase = "sqlite:///{tmp_path}/gw.db"\n'
            'log_level = "warning"\n\n[[connections]]\nname = "home"\ncarrier = "sandbox"\n'
            f"numbers = {json.dumps(list(GATEWAY_NUMBERS))}\n", encoding="utf-8")
        if not api_key:
            api_key = _make_api_key(config)
        server = subprocess.Popen([str(SMSBRIDGE), "serve", "--no-worker", "-c", str(config)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            if _listening(port, server):
                break
        except BaseException:
            _stop(server)
            raise
        # Another process took the free port first (the machine is shared): try another.
        error = server.communicate()[1].decode(errors="replace")
        if attempt == 2:
            raise RuntimeError(f"smsbridge serve did not start: {error}")
    try:
        yield Gateway(f"http://127.0.0.1:{port}", api_key, GATEWAY_NUMBERS)
    finally:
        _stop(server)


def _make_api_key(config: Path) -> str:
    """Create the database and an API key, as a user does with the CLI."""
    subprocess.run([str(SMSBRIDGE), "migrate", "-c", str(config)], check=True,
                   capture_output=True)
    made = subprocess.run([str(SMSBRIDGE), "keys", "create", "--name", "home-assistant",
                           "--json", "-c", str(config)], check=True, capture_output=True,
                          text=True)
    return str(json.loads(made.stdout)["key"])


def _listening(port: int, server: subprocess.Popen[bytes]) -> bool:
    """Wait until ``server`` accepts on ``port``: True, or False if it exited first."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return False
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    raise TimeoutError(f"smsbridge serve did not listen on port {port} within 60 s")


def _stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.communicate()

"""`smsbridge carriers --available` and `carriers describe KEY`, run as a user runs them."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from smsbridge.providers import UNSIGNED, provider_keys
from tests.cli.test_cli import smsbridge
from tests.cli.test_first_hour import one_line_error

CAPABILITIES = {"sms", "mms", "max_text_length", "max_media", "inline_media", "number_format",
                "signature", "delivery_receipts", "voice", "regions"}


def available(cwd: Path, env: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """`carriers --available --json`, by carrier key."""
    result = smsbridge("carriers", "--available", "--json", cwd=cwd, env=env)
    assert result.returncode == 0, result.stderr
    return {entry["key"]: entry for entry in json.loads(result.stdout)["data"]}


def settings_of(entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A catalogue entry's settings, by key, in the order listed."""
    return {setting["key"]: setting for setting in entry["settings"]}


def test_available_lists_every_carrier_of_the_registry_with_its_facts(tmp_path: Path) -> None:
    carriers = available(tmp_path)
    assert list(carriers) == provider_keys()  # whatever the registry has, sorted
    for key, entry in carriers.items():
        assert entry["error"] is None, (key, entry["error"])
        assert set(entry["capabilities"]) >= CAPABILITIES, key
        assert list(settings_of(entry))[-2:] == ["base_url", "timeout_seconds"], key
    twilio = carriers["twilio"]
    assert (twilio["name"], twilio["origin"], twilio["distribution"]) == (
        "Twilio", "built-in", None)
    assert twilio["capabilities"]["signature"] == "twilio-hmac-sha1"
    assert twilio["capabilities"]["mms"] is True
    voipms = carriers["voipms"]
    assert {"username", "api_password", "number_format", "long_text"} <= set(settings_of(voipms))
    assert voipms["capabilities"]["signature"] == UNSIGNED
    assert voipms["capabilities"]["number_format"] == "nanpa"
    sandbox = carriers["sandbox"]
    assert sandbox["name"] == "Sandbox" and sandbox["capabilities"]["inline_media"] is True
    assert not any(s["required"] for s in sandbox["settings"])  # works with no settings


def test_available_in_a_terminal_names_capabilities_and_keys(tmp_path: Path) -> None:
    result = smsbridge("carriers", "--available", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "twilio  Twilio (built-in)" in text
    assert "webhooks signed: twilio-hmac-sha1; delivery receipts: yes" in text
    assert "settings: account_sid, auth_token, [messaging_service_sid], [base_url]" in text
    assert "voipms  VoIP.ms (built-in)" in text
    assert "settings: username, api_password, [number_format], [long_text]" in text
    assert "webhooks unsigned (the webhook URL's token guards it)" in text


def test_available_needs_no_config_and_touches_no_database(tmp_path: Path) -> None:
    (tmp_path / "broken.toml").write_text("[server\n")
    carriers = available(tmp_path, env={"SMSBRIDGE_CONFIG": "broken.toml"})
    assert "sandbox" in carriers
    assert not (tmp_path / "data").exists()


def test_describe_shows_types_required_defaults_and_secrets(tmp_path: Path) -> None:
    result = smsbridge("carriers", "describe", "twilio", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    entry = json.loads(result.stdout)
    assert entry["key"] == "twilio" and entry["origin"] == "built-in"
    settings = settings_of(entry)
    assert list(settings) == ["account_sid", "auth_token", "messaging_service_sid",
                              "base_url", "timeout_seconds"]
    # The auth token signs Twilio's webhooks: secret, and nothing works without it.
    token = settings["auth_token"]
    assert (token["type"], token["required"], token["secret"]) == ("string", True, True)
    assert "signs webhooks" in token["description"]
    sid = settings["account_sid"]
    assert (sid["required"], sid["secret"]) == (True, False)
    service = settings["messaging_service_sid"]
    assert (service["required"], service["default"]) == (False, None)
    assert settings["base_url"]["default"] == "https://api.twilio.com"
    timeout = settings["timeout_seconds"]
    assert (timeout["type"], timeout["required"], timeout["default"]) == ("number", False, 15.0)


def test_describe_in_a_terminal(tmp_path: Path) -> None:
    result = smsbridge("carriers", "describe", "voipms", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [line.rstrip() for line in result.stdout.splitlines()]
    assert lines[0] == "voipms  VoIP.ms (built-in)"
    assert '[connections.settings] of a connection with carrier = "voipms"' in lines[1]
    assert "  username  string; required" in lines
    assert "  api_password  string; required; secret" in lines
    assert "  number_format  string; one of nanpa, e164; default nanpa" in lines
    assert "  base_url  string; default https://voip.ms" in lines
    assert "      the API password set under Main Menu > SOAP and REST/JSON API" in lines


def test_describe_an_unknown_carrier_names_the_known_ones(tmp_path: Path) -> None:
    line = one_line_error(smsbridge("carriers", "describe", "carrier-pigeon", cwd=tmp_path))
    assert line == ("invalid carrier: unknown carrier 'carrier-pigeon'; known: "
                    + ", ".join(provider_keys()))


CARELESS = '''
from typing import ClassVar

from smsbridge.providers import Capabilities, Provider, ProviderConfig, SendResult


class CarelessProvider(Provider[ProviderConfig]):
    key: ClassVar[str] = "careless"
    name: ClassVar[str] = "Careless"
    Config = ProviderConfig
    capabilities = Capabilities()  # neither a signature scheme nor UNSIGNED

    async def send(self, message, http):
        return SendResult("x")

    def parse_inbound(self, request):
        return []
'''


def broken_plugins(site: Path) -> dict[str, str]:
    """An installed distribution with two broken carriers; the env that puts it on the path."""
    dist = site / "broken_carriers-0.3.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-carriers\nVersion: 0.3\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent("""\
        [smsbridge.providers]
        pigeon = pigeon_smsbridge:PigeonProvider
        careless = careless_smsbridge:CarelessProvider
        """))
    (site / "pigeon_smsbridge.py").write_text("import coop_client  # not installed\n")
    (site / "careless_smsbridge.py").write_text(CARELESS)
    return {"PYTHONPATH": str(site)}


def test_a_plugin_that_cannot_load_is_listed_with_its_error(tmp_path: Path) -> None:
    env = broken_plugins(tmp_path / "site")
    carriers = available(tmp_path, env)
    assert list(carriers) == sorted([*provider_keys(), "careless", "pigeon"])
    pigeon = carriers["pigeon"]
    assert (pigeon["origin"], pigeon["distribution"], pigeon["version"]) == (
        "plug-in", "broken-carriers", "0.3")
    assert pigeon["error"] == "ModuleNotFoundError: No module named 'coop_client'"
    assert pigeon["capabilities"] is None and pigeon["settings"] == []
    assert "declares no capabilities.signature" in carriers["careless"]["error"]
    assert carriers["twilio"]["error"] is None  # the others are still described

    text = smsbridge("carriers", "--available", cwd=tmp_path, env=env)
    assert text.returncode == 0, text.stderr
    assert ("pigeon  (plug-in from broken-carriers 0.3)\n  cannot be loaded: "
            "ModuleNotFoundError: No module named 'coop_client'") in text.stdout

    described = smsbridge("carriers", "describe", "pigeon", cwd=tmp_path, env=env)
    assert described.returncode == 1
    assert described.stderr.strip() == ("error: carrier 'pigeon' cannot be loaded: "
                                        "ModuleNotFoundError: No module named 'coop_client'")

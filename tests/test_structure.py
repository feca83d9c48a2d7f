"""Tests that keep the structure honest: layers, registry, public surfaces, light installs."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

import smsbridge.core
import smsbridge.providers
from smsbridge.core.errors import WebhookRejected
from smsbridge.core.messages import InboundMessage, OutboundMessage
from smsbridge.providers import (
    UNSIGNED,
    Capabilities,
    Provider,
    ProviderConfig,
    SendResult,
    UnknownProvider,
    WebhookRequest,
    provider_keys,
)
from smsbridge.providers.registry import BUILTIN, get_provider_class

ROOT = Path(__file__).resolve().parents[1]
PROVIDERS = ROOT / "src" / "smsbridge" / "providers"


def test_import_contracts_hold() -> None:
    """Imports point down the layers of DESIGN.md; providers never see store, web or server."""
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


def carrier_folder(key: str) -> str:
    """The package folder of a built-in carrier: its key, or a Python name for it (382com)."""
    module = BUILTIN[key].partition(":")[0]
    assert module.startswith("smsbridge.providers.") and module.endswith(".provider"), module
    folder = module.split(".")[2]
    assert folder == key or (not key.isidentifier() and folder.isidentifier()), (key, folder)
    return folder


def test_registry_matches_the_carrier_folders() -> None:
    folders = {p.parent.name for p in PROVIDERS.glob("*/provider.py")}
    assert folders == {carrier_folder(key) for key in BUILTIN}
    for key in BUILTIN:
        cls = get_provider_class(key)
        assert cls.key == key
        folder = carrier_folder(key)
        assert (ROOT / "tests" / "providers" / folder / "fixtures").is_dir(), key
        assert (ROOT / "docs" / "carriers" / f"{key}.md").is_file(), key


@pytest.mark.parametrize("module", [smsbridge.core, smsbridge.providers])
def test_public_surface_is_declared(module: object) -> None:
    names = module.__all__  # type: ignore[attr-defined]
    # ruff's order (RUF022): CONSTANTS, then Classes, then functions, each alphabetical.
    assert names == sorted(names, key=lambda n: (not n.isupper(), not n[:1].isupper(), n))
    for name in names:
        assert getattr(module, name) is not None


def test_providers_load_without_the_server_stack() -> None:
    """What Home Assistant imports (core + providers) pulls in no web framework or database."""
    code = (
        "import sys\n"
        "from smsbridge.providers.registry import BUILTIN, get_provider_class\n"
        "[get_provider_class(k) for k in BUILTIN]\n"
        "heavy = {'fastapi', 'starlette', 'sqlalchemy', 'uvicorn', 'alembic', 'typer'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    assert fresh_python(code).strip() == "[]"


def fresh_python(code: str) -> str:
    """What ``code`` prints in a new interpreter, where nothing is imported yet."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


# What docs/plugins.md promises a carrier plug-in can import from smsbridge.providers.
PLUGIN_INTERFACE = {
    "Provider", "ProviderConfig", "Capabilities", "SendResult", "Reply", "WebhookRequest",
    "OutboundMessage", "InboundMessage", "StatusUpdate", "Media", "MessageStatus",
    "ProviderError", "WebhookRejected", "MalformedWebhook",
}
# Added on purpose: the unsigned declaration, the number formats a Capabilities names,
# the shared HTTP and number mechanics every carrier uses, and the registry's lookups.
PLUGIN_EXTRAS = {
    "UNSIGNED", "NumberFormat", "CarrierResponse", "carrier_request", "parse_retry_after",
    "redact", "retryable_status", "basic_auth", "inbound_number", "UnknownProvider",
    "get_provider_class", "provider_keys",
    # Voice alerts: the call a provider places and the words a call's outcome is told in.
    "OutboundCall", "CALL_ANSWERED", "CALL_FAILURE_ANSWERS",
    # Setup helpers (Home Assistant's config flow): the credentials check and number list.
    "AccountInfo", "CredentialsRejected", "read_account", "linked_pages", "e164_numbers",
}


def test_the_plugin_interface_is_exactly_what_the_docs_promise() -> None:
    assert set(smsbridge.providers.__all__) == PLUGIN_INTERFACE | PLUGIN_EXTRAS
    assert len(smsbridge.providers.__all__) == len(set(smsbridge.providers.__all__))
    fresh_python("from smsbridge.providers import " + ", ".join(smsbridge.providers.__all__))
    # A plug-in's messages and errors are the gateway's own classes, not look-alikes.
    assert smsbridge.providers.OutboundMessage is OutboundMessage
    assert smsbridge.providers.WebhookRejected is WebhookRejected


def test_importing_the_interface_loads_no_carrier() -> None:
    """A plug-in imports smsbridge.providers; that must not import every built-in carrier."""
    loaded = set(ast.literal_eval(fresh_python(
        "import sys\n"
        "import smsbridge.providers\n"
        "print(sorted(m for m in sys.modules if m.startswith('smsbridge.providers.')))\n"
    )))
    carriers = {f"smsbridge.providers.{key}" for key in BUILTIN}
    assert not {m for m in loaded for c in carriers if m == c or m.startswith(c + ".")}
    assert "smsbridge.providers.base" in loaded  # the check itself can see modules load


def signature_contract_failures(classes: list[type[Provider]]) -> list[str]:  # type: ignore[type-arg]
    """Providers that neither check a signature nor declare their carrier unsigned."""
    failures: list[str] = []
    for cls in classes:
        checks = cls.verify is not Provider.verify
        unsigned = cls.capabilities.signature == UNSIGNED
        if checks == unsigned:  # both or neither
            failures.append(cls.__name__)
    return failures


class ForgetfulConfig(ProviderConfig):
    """Config of the throwaway provider below."""


class ForgetfulProvider(Provider[ForgetfulConfig]):
    """A carrier whose author forgot verify() and did not say the carrier signs nothing."""

    key = "forgetful"
    name = "Forgetful"
    Config = ForgetfulConfig
    capabilities = Capabilities()

    async def send(self, message: OutboundMessage, http: aiohttp.ClientSession) -> SendResult:
        return SendResult("x")

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        return []


class ClaimsASignatureProvider(ForgetfulProvider):
    """Declares a scheme but never checks it."""

    key = "claims"
    capabilities = Capabilities(signature="hmac-sha256")


SIGNED_BY_CONTRACT = {"twilio", "telnyx", "plivo", "vonage", "bandwidth", "signalwire"}
UNSIGNED_BY_CONTRACT = {"sandbox", "voipms", "voipnumber", "peerless", "382com", "simwood",
                        "flowroute"}
EITHER_BY_CONTRACT = {"sinch"}  # none, or its HMAC where it can be confirmed


def test_every_registered_provider_verifies_or_declares_itself_unsigned() -> None:
    registered = [get_provider_class(key) for key in provider_keys()]
    assert signature_contract_failures(registered) == []
    # Issue 6's table says which carriers sign their webhooks; each built-in keeps to it.
    for key in BUILTIN:
        signature = get_provider_class(key).capabilities.signature
        if key in SIGNED_BY_CONTRACT:
            assert signature not in (None, UNSIGNED), key
        elif key in UNSIGNED_BY_CONTRACT:
            assert signature == UNSIGNED, key
        else:
            assert key in EITHER_BY_CONTRACT, f"{key}: add it to the signature table here"
    # The check above is not vacuous: it catches both ways of forgetting.
    assert signature_contract_failures([ForgetfulProvider, ClaimsASignatureProvider]) == [
        "ForgetfulProvider", "ClaimsASignatureProvider"]


@pytest.mark.parametrize("cls", [ForgetfulProvider, ClaimsASignatureProvider])
def test_the_registry_refuses_a_provider_that_does_not_choose(
    cls: type[Provider], monkeypatch: pytest.MonkeyPatch  # type: ignore[type-arg]
) -> None:
    monkeypatch.setitem(BUILTIN, cls.key, f"{__name__}:{cls.__name__}")
    with pytest.raises(UnknownProvider, match="verify"):
        get_provider_class(cls.key)


def test_a_provider_that_does_not_choose_rejects_every_webhook() -> None:
    """Built around the registry anyway, it fails closed: nothing unverified gets stored."""
    request = WebhookRequest("POST", "https://gw.example/in", {}, [], b"{}")
    with pytest.raises(WebhookRejected, match="neither checks a signature"):
        ForgetfulProvider(ForgetfulConfig()).verify(request)

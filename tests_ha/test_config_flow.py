"""The config flow, carrier and server mode, against fake carriers and a real gateway."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from importlib.metadata import EntryPoint
from typing import Any
from unittest.mock import AsyncMock, patch

import pytest
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from smsbridge.providers import get_provider_class, provider_keys, registry
from smsbridge.providers.registry import ENTRY_POINT_GROUP
from smsbridge.testing.fake_twilio import FakeTwilio
from smsbridge.testing.fake_voipms import FakeVoipms
from smsbridge.testing.server import free_port

from .conftest import (
    DOMAIN,
    TWILIO_NUMBER,
    TWILIO_SID,
    TWILIO_TOKEN,
    VOIPMS_DID,
    VOIPMS_NUMBER,
    VOIPMS_PASSWORD,
    VOIPMS_USER,
)
from .flow_helpers import (
    ADVANCED_MODE_REMOVED,
    Gateway,
    acme_plugin_fixture,  # noqa: F401 (the acme_plugin fixture)
    assert_translated,
    fields,
    flow_context,
    gateway_fixture,  # noqa: F401 (the gateway fixture)
    sections,
    selector_config,
    submit,
)

SECOND_DID = "4385550150"  # on the account, SMS enabled
NO_SMS_DID = "4385550151"  # on the account, SMS turned off
VOIPNUMBER_SETTINGS = {"account_id": "acct-7731", "api_token": "vn-token-1"}


@pytest.fixture
def mock_setup() -> Iterator[AsyncMock]:
    """Entries the flow creates are not set up: these tests are about the flow."""
    with patch("custom_components.smsbridge.async_setup_entry", return_value=True) as setup:
        yield setup


async def start(hass: HomeAssistant, *, advanced: bool = True) -> Mapping[str, Any]:
    """A new flow, as the UI starts it (base_url needs advanced mode before 2026.6, and the
    fakes need base_url).
    """
    return await hass.config_entries.flow.async_init(
        DOMAIN, context=flow_context(SOURCE_USER, advanced=advanced))


async def credentials_form(hass: HomeAssistant, carrier: str, *, advanced: bool = True
                           ) -> Mapping[str, Any]:
    """The credentials form of ``carrier``."""
    result = await submit(hass, await start(hass, advanced=advanced), {"carrier": carrier})
    assert result["type"] is FlowResultType.FORM and result["step_id"] == "credentials"
    assert_translated(result)
    return result


def voipms_answer(fake: FakeVoipms, **changes: Any) -> dict[str, Any]:
    """The credentials form filled in for the fake VoIP.ms account."""
    return {"username": VOIPMS_USER, "api_password": VOIPMS_PASSWORD,
            "base_url": fake.url, **changes}  # type: ignore[attr-defined]


async def test_user_step_offers_every_carrier_plugins_included_and_server_mode(
        hass: HomeAssistant, acme_plugin: None) -> None:
    result = await start(hass)

    assert result["type"] is FlowResultType.FORM and result["step_id"] == "user"
    assert_translated(result)
    options = selector_config(result, "carrier")["options"]
    values = [option["value"] for option in options]
    assert "acme" in provider_keys()
    assert values == [*provider_keys(), "server"]
    labels = {option["value"]: option["label"] for option in options}
    assert labels["acme"] == "Acme Telecom"
    assert labels["voipms"] == get_provider_class("voipms").name == "VoIP.ms"


async def test_a_broken_plugin_is_left_out_not_fatal(hass: HomeAssistant,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    broken = EntryPoint("broken", "no_such_package.provider:Provider", ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "plugin_entry_points", lambda: {"broken": broken})

    result = await start(hass)

    values = [option["value"] for option in selector_config(result, "carrier")["options"]]
    assert "broken" not in values
    assert values == [*sorted(registry.BUILTIN), "server"]


async def test_voipms_from_start_to_a_loaded_entry(
        hass: HomeAssistant, fake_voipms: FakeVoipms) -> None:
    fake_voipms.dids = frozenset({VOIPMS_DID, SECOND_DID, NO_SMS_DID})
    fake_voipms.sms_disabled_dids = [NO_SMS_DID]
    form = await credentials_form(hass, "voipms")
    assert {"username", "api_password", "number_format", "long_text",
            "base_url"} <= set(fields(form))
    assert selector_config(form, "api_password")["type"] == "password"
    assert selector_config(form, "username")["type"] == "text"
    assert selector_config(form, "number_format")["options"] == ["nanpa", "e164"]

    numbers_form = await submit(hass, form, voipms_answer(fake_voipms))

    assert numbers_form["type"] is FlowResultType.FORM
    assert numbers_form["step_id"] == "numbers"
    assert_translated(numbers_form)
    # The account's SMS-enabled DIDs, read by getDIDsInfo with the credentials given.
    offered = selector_config(numbers_form, "numbers")
    assert offered["multiple"] is True
    assert sorted(offered["options"]) == ["+14385550150", VOIPMS_NUMBER]
    check = next(r for r in fake_voipms.requests if r.method == "getDIDsInfo")
    assert (check.params["api_username"], check.params["api_password"]) == (
        VOIPMS_USER, VOIPMS_PASSWORD)

    done = await submit(hass, numbers_form, {"numbers": [VOIPMS_NUMBER]})
    await hass.async_block_till_done()

    assert done["type"] is FlowResultType.CREATE_ENTRY
    assert_translated(done)
    assert done["description"] == "carrier"
    entry = done["result"]
    assert entry.unique_id == f"voipms:{VOIPMS_USER}"
    assert entry.data["mode"] == "carrier" and entry.data["carrier"] == "voipms"
    assert entry.data["numbers"] == [VOIPMS_NUMBER]
    assert entry.data["settings"]["username"] == VOIPMS_USER
    assert entry.data["settings"]["api_password"] == VOIPMS_PASSWORD
    assert entry.data["settings"]["base_url"] == fake_voipms.url  # type: ignore[attr-defined]
    webhook_id = entry.data["webhook_id"]
    assert len(webhook_id) >= 32
    assert done["description_placeholders"]["webhook_url"].endswith(f"/api/webhook/{webhook_id}")
    # What the flow wrote is what the integration sets up from.
    assert entry.state is ConfigEntryState.LOADED
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(("knobs", "answer", "error"), [
    ({}, {"api_password": "not-the-password"}, "invalid_auth"),
    ({"api_enabled": False}, {}, "api_disabled"),
    ({"refused_ip": "203.0.113.42"}, {}, "ip_not_allowed"),
])
async def test_voipms_refusals_are_explained_and_can_be_corrected(
        hass: HomeAssistant, fake_voipms: FakeVoipms, mock_setup: AsyncMock,
        knobs: dict[str, Any], answer: dict[str, Any], error: str) -> None:
    for name, value in knobs.items():
        setattr(fake_voipms, name, value)
    form = await credentials_form(hass, "voipms")

    refused = await submit(hass, form, voipms_answer(fake_voipms, **answer))

    assert refused["type"] is FlowResultType.FORM and refused["step_id"] == "credentials"
    assert refused["errors"] == {"base": error}
    assert_translated(refused)
    if error == "ip_not_allowed":
        assert refused["description_placeholders"]["seen_ip"] == "203.0.113.42"
    # The user fixes it at the carrier (or types the right password) and submits again.
    fake_voipms.api_enabled, fake_voipms.refused_ip = True, None
    accepted = await submit(hass, refused, voipms_answer(fake_voipms))
    assert accepted["step_id"] == "numbers"


async def test_unreachable_carrier_is_cannot_connect(hass: HomeAssistant, socket_enabled: None,
                                                     mock_setup: AsyncMock) -> None:
    form = await credentials_form(hass, "voipms")

    result = await submit(hass, form, {"username": VOIPMS_USER, "api_password": "x",
                                       "base_url": f"http://127.0.0.1:{free_port()}"})

    assert result["errors"] == {"base": "cannot_connect"}
    assert_translated(result)


async def test_twilio_wrong_token_is_invalid_auth(hass: HomeAssistant, fake_twilio: FakeTwilio,
                                                  mock_setup: AsyncMock) -> None:
    form = await credentials_form(hass, "twilio")

    result = await submit(hass, form, {"account_sid": TWILIO_SID, "auth_token": "0" * 32,
                                       "base_url": fake_twilio.url})  # type: ignore[attr-defined]

    assert result["errors"] == {"base": "invalid_auth"}
    assert_translated(result)


async def test_twilio_offers_its_sms_numbers(hass: HomeAssistant, fake_twilio: FakeTwilio,
                                             mock_setup: AsyncMock) -> None:
    fake_twilio.add_number(TWILIO_NUMBER)
    fake_twilio.add_number("+15145550112", sms=False, mms=False)
    form = await credentials_form(hass, "twilio")

    numbers_form = await submit(hass, form, {
        "account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN,
        "base_url": fake_twilio.url})  # type: ignore[attr-defined]

    assert selector_config(numbers_form, "numbers")["options"] == [TWILIO_NUMBER]
    done = await submit(hass, numbers_form, {"numbers": [TWILIO_NUMBER]})
    assert done["type"] is FlowResultType.CREATE_ENTRY
    assert done["result"].unique_id == f"twilio:{TWILIO_SID}"
    assert done["data"]["settings"]["auth_token"] == TWILIO_TOKEN
    mock_setup.assert_awaited_once()


async def test_a_setting_the_schema_refuses_is_named(hass: HomeAssistant,
                                                     fake_twilio: FakeTwilio,
                                                     mock_setup: AsyncMock) -> None:
    form = await credentials_form(hass, "twilio")

    result = await submit(hass, form, {"account_sid": "AC-not-a-sid", "auth_token": "t",
                                       "base_url": fake_twilio.url})  # type: ignore[attr-defined]

    assert result["errors"] == {"account_sid": "invalid_setting", "base": "invalid_settings"}
    assert "account_sid" in result["description_placeholders"]["problems"]
    assert_translated(result)
    assert fake_twilio.requests == []  # refused before anything was asked of the carrier


async def test_the_same_account_twice_is_refused(hass: HomeAssistant, fake_voipms: FakeVoipms,
                                                 mock_setup: AsyncMock) -> None:
    MockConfigEntry(domain=DOMAIN, unique_id=f"voipms:{VOIPMS_USER}",
                    data={"mode": "carrier", "carrier": "voipms"}).add_to_hass(hass)
    form = await credentials_form(hass, "voipms")

    result = await submit(hass, form, voipms_answer(fake_voipms))

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert_translated(result)
    mock_setup.assert_not_awaited()


async def test_carrier_that_cannot_list_numbers_gets_a_text_field(
        hass: HomeAssistant, mock_setup: AsyncMock) -> None:
    form = await credentials_form(hass, "voipnumber")
    numbers_form = await submit(hass, form, VOIPNUMBER_SETTINGS)
    assert numbers_form["step_id"] == "numbers"
    assert selector_config(numbers_form, "numbers")["type"] == "text"

    wrong = await submit(hass, numbers_form, {"numbers": "+15145550100, 12"})
    assert wrong["errors"] == {"numbers": "invalid_number"}
    assert wrong["description_placeholders"]["number"] == "12"
    assert_translated(wrong)

    done = await submit(hass, wrong, {"numbers": "514-555-0100; +1 438 555 0123"})

    assert done["type"] is FlowResultType.CREATE_ENTRY
    assert done["data"]["numbers"] == ["+15145550100", "+14385550123"]
    assert done["result"].unique_id == "voipnumber:acct-7731"
    # No check was possible, and the user is told so.
    assert done["description"] == "carrier_unchecked"
    assert_translated(done)


async def test_no_numbers_is_refused(hass: HomeAssistant, mock_setup: AsyncMock) -> None:
    numbers_form = await submit(hass, await credentials_form(hass, "voipnumber"),
                                VOIPNUMBER_SETTINGS)

    result = await submit(hass, numbers_form, {"numbers": " , "})

    assert result["errors"] == {"numbers": "no_numbers"}


async def test_base_url_is_set_apart_in_a_collapsed_section_or_advanced_mode(
        hass: HomeAssistant, caplog: pytest.LogCaptureFixture) -> None:
    plain = await credentials_form(hass, "twilio", advanced=False)

    usual = {"account_sid", "auth_token", "messaging_service_sid"}
    assert usual <= set(fields(plain))
    assert all(fields(plain)[name].section is None for name in usual)
    if ADVANCED_MODE_REMOVED:
        # No advanced mode any more: everyone is offered base_url, folded away.
        assert fields(plain)["base_url"].section == "advanced"
        assert sections(plain)["advanced"].options["collapsed"] is True
        # Reading the deprecated FlowHandler.show_advanced_options logs this warning.
        assert "show_advanced_options" not in caplog.text
    else:
        assert "base_url" not in fields(plain)
        advanced = await credentials_form(hass, "twilio", advanced=True)
        assert fields(advanced)["base_url"].section is None
        assert sections(advanced) == {}


async def test_a_plugins_settings_get_their_help_from_its_schema(
        hass: HomeAssistant, acme_plugin: None, mock_setup: AsyncMock) -> None:
    result = await submit(hass, await start(hass, advanced=False), {"carrier": "acme"})

    plugin_settings = {"tenant", "signing_token", "region", "timeout_seconds"}
    # From 2026.6 the base URL every provider has is offered too, in the collapsed section.
    assert set(fields(result)) == (
        plugin_settings | {"base_url"} if ADVANCED_MODE_REMOVED else plugin_settings)
    assert selector_config(result, "signing_token")["type"] == "password"
    assert selector_config(result, "region")["options"] == ["eu", "us"]
    # No translation labels signing_token (no built-in carrier has it): its help is listed in
    # the description; region's comes through the translated field's help placeholder.
    placeholders = result["description_placeholders"]
    assert "**signing_token**: the token Acme shows under Developers" in placeholders[
        "plugin_fields"]
    assert "region" not in placeholders["plugin_fields"]
    assert "base_url" not in placeholders["plugin_fields"]  # labelled where the form shows it
    assert placeholders["help_region"] == "where the Acme tenant lives"
    assert_translated(result, unlabelled=frozenset({"tenant", "signing_token"}))

    numbers_form = await submit(hass, result, {"tenant": "acme-42", "signing_token": "tok",
                                               "region": "us"})
    done = await submit(hass, numbers_form, {"numbers": "+15145550100"})

    assert done["data"]["settings"] == {"tenant": "acme-42", "signing_token": "tok",
                                        "region": "us", "timeout_seconds": 15.0}
    assert done["result"].unique_id == "acme:acme-42"


# ---------------------------------------------------------------- server mode


async def server_form(hass: HomeAssistant) -> Mapping[str, Any]:
    """The server step, reached by choosing server mode."""
    result = await submit(hass, await start(hass), {"carrier": "server"})
    assert result["type"] is FlowResultType.FORM and result["step_id"] == "server"
    assert_translated(result)
    return result


async def test_server_mode_reads_the_gateways_numbers_and_makes_a_webhook_secret(
        hass: HomeAssistant, gateway: Gateway, mock_setup: AsyncMock) -> None:
    numbers_form = await submit(hass, await server_form(hass),
                                {"url": gateway.url + "/", "api_key": gateway.api_key})

    assert numbers_form["step_id"] == "numbers"
    assert selector_config(numbers_form, "numbers")["options"] == list(gateway.numbers)
    done = await submit(hass, numbers_form, {"numbers": [gateway.numbers[1]]})

    assert done["type"] is FlowResultType.CREATE_ENTRY
    assert_translated(done)
    data = done["data"]
    assert data["mode"] == "server" and data["url"] == gateway.url
    assert data["api_key"] == gateway.api_key and data["numbers"] == [gateway.numbers[1]]
    assert done["result"].unique_id == f"server:{gateway.url}"
    secret = data["webhook_secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 24
    assert len(data["webhook_id"]) >= 32
    # What to paste into the gateway's [[webhooks]]: the URL and the secret.
    shown = done["description_placeholders"]
    assert shown["webhook_secret"] == secret
    assert shown["webhook_url"].endswith(f"/api/webhook/{data['webhook_id']}")


@pytest.mark.parametrize(("answer", "errors"), [
    ({"api_key": "sbk_wrong"}, {"base": "invalid_auth"}),
    ({"url": "gw.example:8080"}, {"url": "invalid_url"}),
])
async def test_server_mode_refusals(hass: HomeAssistant, gateway: Gateway,
                                    mock_setup: AsyncMock, answer: dict[str, str],
                                    errors: dict[str, str]) -> None:
    result = await submit(hass, await server_form(hass),
                          {"url": gateway.url, "api_key": gateway.api_key, **answer})

    assert result["errors"] == errors
    assert_translated(result)


async def test_server_mode_at_an_address_that_is_no_gateway(
        hass: HomeAssistant, fake_voipms: FakeVoipms, mock_setup: AsyncMock) -> None:
    result = await submit(hass, await server_form(hass), {
        "url": fake_voipms.url, "api_key": "sbk_x"})  # type: ignore[attr-defined]

    assert result["errors"] == {"base": "not_a_gateway"}
    assert_translated(result)


async def test_server_mode_unreachable(hass: HomeAssistant, socket_enabled: None,
                                       mock_setup: AsyncMock) -> None:
    result = await submit(hass, await server_form(hass), {
        "url": f"http://127.0.0.1:{free_port()}", "api_key": "sbk_x"})

    assert result["errors"] == {"base": "cannot_connect"}
    assert_translated(result)


async def test_the_same_gateway_twice_is_refused(hass: HomeAssistant, gateway: Gateway,
                                                 mock_setup: AsyncMock) -> None:
    MockConfigEntry(domain=DOMAIN, unique_id=f"server:{gateway.url}",
                    data={"mode": "server"}).add_to_hass(hass)

    result = await submit(hass, await server_form(hass),
                          {"url": gateway.url, "api_key": gateway.api_key})

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"

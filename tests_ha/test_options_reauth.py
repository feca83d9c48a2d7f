"""Options, reauth, reconfigure and the credentials repair issue, on entries set up for real."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from unittest.mock import AsyncMock, patch

import pytest
from custom_components.smsbridge.repairs import async_credentials_rejected
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from smsbridge.providers import CredentialsRejected
from smsbridge.testing.fake_voipms import FakeVoipms
from smsbridge.testing.server import free_port

from .conftest import (
    DOMAIN,
    VOIPMS_DID,
    VOIPMS_NUMBER,
    VOIPMS_PASSWORD,
    VOIPMS_USER,
    VOIPMS_WEBHOOK_ID,
    carrier_entry,
)
from .flow_helpers import (
    EN,
    PLACEHOLDER,
    Gateway,
    assert_translated,
    fields,
    gateway_fixture,  # noqa: F401 (the gateway fixture)
    selector_config,
    start_reconfigure,
    submit,
    suggested_values,
)

SECOND_DID = "4385550150"
SECOND_NUMBER = "+14385550150"


async def set_up(hass: HomeAssistant, entry: MockConfigEntry) -> MockConfigEntry:
    """Add ``entry`` and set it up as Home Assistant does at start."""
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def unload(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Unload ``entry``: the plugin fails tests that leave its webhook or tasks behind."""
    if entry.state is ConfigEntryState.LOADED:
        assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


def reauth_flows(hass: HomeAssistant) -> list[Mapping[str, Any]]:
    """The reauth flows in progress."""
    return [flow for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
            if flow["context"]["source"] == SOURCE_REAUTH]


# ---------------------------------------------------------------- options


async def test_options_save_numbers_senders_and_long_text_and_reload(
        hass: HomeAssistant, fake_voipms: FakeVoipms, voipms_entry: MockConfigEntry) -> None:
    fake_voipms.dids = frozenset({VOIPMS_DID, SECOND_DID})
    entry = await set_up(hass, voipms_entry)
    assert entry.runtime_data.numbers == [VOIPMS_NUMBER]

    form = await hass.config_entries.options.async_init(entry.entry_id)

    assert form["step_id"] == "init"
    assert_translated(form, "options")
    # The numbers in use first, then those the account has besides (getDIDsInfo).
    assert selector_config(form, "numbers")["options"] == [VOIPMS_NUMBER, SECOND_NUMBER]
    assert selector_config(form, "long_text")["options"] == ["split", "truncate", "refuse"]
    senders_form = await hass.config_entries.options.async_configure(
        form["flow_id"], {"numbers": [VOIPMS_NUMBER, SECOND_NUMBER], "long_text": "truncate"})

    assert senders_form["step_id"] == "allowed_senders"
    assert set(fields(senders_form)) == {VOIPMS_NUMBER, SECOND_NUMBER}
    assert_translated(senders_form, "options",
                      unlabelled=frozenset({VOIPMS_NUMBER, SECOND_NUMBER}))
    done = await hass.config_entries.options.async_configure(
        senders_form["flow_id"], {VOIPMS_NUMBER: "+14385550123, 438-555-0124"})
    await hass.async_block_till_done()

    assert done["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == {
        "numbers": [VOIPMS_NUMBER, SECOND_NUMBER],
        "long_text": "truncate",
        "allowed_senders": {VOIPMS_NUMBER: ["+14385550123", "+14385550124"]},
    }
    # Reloaded with the new numbers.
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.numbers == [VOIPMS_NUMBER, SECOND_NUMBER]
    await unload(hass, entry)


async def test_options_show_what_is_saved(hass: HomeAssistant, fake_voipms: FakeVoipms,
                                          voipms_entry: MockConfigEntry) -> None:
    entry = await set_up(hass, carrier_entry(
        "voipms", dict(voipms_entry.data["settings"]), [VOIPMS_NUMBER], VOIPMS_WEBHOOK_ID,
        VOIPMS_USER, options={"numbers": [VOIPMS_NUMBER], "long_text": "refuse",
                              "allowed_senders": {VOIPMS_NUMBER: ["+14385550123"]}}))

    form = await hass.config_entries.options.async_init(entry.entry_id)
    senders = await hass.config_entries.options.async_configure(
        form["flow_id"], {"numbers": [VOIPMS_NUMBER], "long_text": "refuse"})

    assert suggested_values(form) == {"numbers": [VOIPMS_NUMBER], "long_text": "refuse"}
    assert suggested_values(senders) == {VOIPMS_NUMBER: "+14385550123"}
    hass.config_entries.options.async_abort(senders["flow_id"])
    await unload(hass, entry)


@pytest.mark.parametrize("step", ["init", "allowed_senders"])
async def test_options_refuse_what_is_not_a_phone_number(
        hass: HomeAssistant, fake_voipms: FakeVoipms, voipms_entry: MockConfigEntry,
        step: str) -> None:
    entry = await set_up(hass, voipms_entry)
    form = await hass.config_entries.options.async_init(entry.entry_id)
    if step == "init":
        answer: dict[str, Any] = {"numbers": [VOIPMS_NUMBER, "hello"], "long_text": "split"}
    else:
        form = await hass.config_entries.options.async_configure(
            form["flow_id"], {"numbers": [VOIPMS_NUMBER], "long_text": "split"})
        answer = {VOIPMS_NUMBER: "+14385550123, hello"}

    result: Mapping[str, Any] = await hass.config_entries.options.async_configure(
        form["flow_id"], answer)

    assert result["step_id"] == step
    assert list(result["errors"].values()) == ["invalid_number"]
    assert result["description_placeholders"]["number"] == "hello"
    assert_translated(result, "options", unlabelled=frozenset({VOIPMS_NUMBER}))
    assert entry.options == {}
    hass.config_entries.options.async_abort(result["flow_id"])
    await unload(hass, entry)


# ---------------------------------------------------------------- reauth


async def test_refused_credentials_at_setup_lead_to_reauth_which_fixes_the_entry(
        hass: HomeAssistant, fake_voipms: FakeVoipms, voipms_entry: MockConfigEntry) -> None:
    fake_voipms.api_password = "changed-on-the-portal"
    entry = await set_up(hass, voipms_entry)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    [flow] = reauth_flows(hass)
    form = await hass.config_entries.flow.async_configure(flow["flow_id"])

    assert form["step_id"] == "reauth_confirm"
    assert_translated(form)
    # Only the secrets are asked again.
    assert set(fields(form)) == {"api_password"}
    wrong = await submit(hass, form, {"api_password": "still-wrong"})
    assert wrong["errors"] == {"base": "invalid_auth"}
    assert_translated(wrong)

    done = await submit(hass, wrong, {"api_password": "changed-on-the-portal"})
    await hass.async_block_till_done()

    assert done["type"] is FlowResultType.ABORT and done["reason"] == "reauth_successful"
    assert_translated(done)
    assert entry.data["settings"]["api_password"] == "changed-on-the-portal"
    assert entry.data["settings"]["username"] == VOIPMS_USER
    assert entry.data["webhook_id"] == VOIPMS_WEBHOOK_ID
    assert entry.state is ConfigEntryState.LOADED
    await unload(hass, entry)


async def test_credentials_issue_is_raised_with_reauth_and_cleared_by_it(
        hass: HomeAssistant, hass_ws_client: WebSocketGenerator, fake_voipms: FakeVoipms,
        voipms_entry: MockConfigEntry) -> None:
    assert await async_setup_component(hass, "repairs", {})
    entry = await set_up(hass, voipms_entry)
    issues = ir.async_get(hass)

    async_credentials_rejected(hass, entry, CredentialsRejected(
        "VoIP.ms: ip_not_enabled", kind="ip_not_allowed", seen_ip="203.0.113.9"))
    await hass.async_block_till_done()

    # What the Repairs page lists.
    client = await hass_ws_client(hass)
    await client.send_json_auto_id({"type": "repairs/list_issues"})
    listed = (await client.receive_json())["result"]["issues"]
    [issue] = [item for item in listed if item["domain"] == DOMAIN]
    assert issue["issue_id"] == f"credentials_rejected_{entry.entry_id}"
    assert issue["translation_key"] == "credentials_ip_not_allowed"
    assert issue["translation_placeholders"] == {"title": entry.title, "seen_ip": "203.0.113.9"}
    assert issue["severity"] == "error"
    assert set(PLACEHOLDER.findall(str(EN["issues"]["credentials_ip_not_allowed"]))) <= set(
        issue["translation_placeholders"])
    [flow] = reauth_flows(hass)

    done = await submit(hass, flow, {"api_password": VOIPMS_PASSWORD})
    await hass.async_block_till_done()

    assert done["reason"] == "reauth_successful"
    assert issues.async_get_issue(DOMAIN, f"credentials_rejected_{entry.entry_id}") is None
    await unload(hass, entry)


# ---------------------------------------------------------------- reconfigure


async def test_reconfigure_changes_settings_keeps_blank_secrets_and_reloads(
        hass: HomeAssistant, fake_voipms: FakeVoipms, voipms_entry: MockConfigEntry) -> None:
    entry = await set_up(hass, voipms_entry)

    form = await start_reconfigure(hass, entry, advanced=True)

    assert form["step_id"] == "reconfigure"
    assert_translated(form)
    suggested = suggested_values(form)
    assert suggested["username"] == VOIPMS_USER
    assert suggested["base_url"] == fake_voipms.url  # type: ignore[attr-defined]
    assert suggested["api_password"] is None  # a secret is never sent back to the browser
    done = await submit(hass, form, {"username": VOIPMS_USER, "long_text": "split",
                                     "number_format": "e164",
                                     "base_url": fake_voipms.url})  # type: ignore[attr-defined]
    await hass.async_block_till_done()

    assert done["type"] is FlowResultType.ABORT and done["reason"] == "reconfigure_successful"
    settings = entry.data["settings"]
    assert settings["api_password"] == VOIPMS_PASSWORD
    assert (settings["long_text"], settings["number_format"]) == ("split", "e164")
    assert settings["base_url"] == fake_voipms.url  # type: ignore[attr-defined]
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.provider.config.long_text == "split"
    await unload(hass, entry)


async def test_reconfigure_rechecks_the_credentials(
        hass: HomeAssistant, fake_voipms: FakeVoipms, voipms_entry: MockConfigEntry) -> None:
    entry = await set_up(hass, voipms_entry)
    form = await start_reconfigure(hass, entry, advanced=True)

    result = await submit(hass, form, {"username": VOIPMS_USER, "api_password": "wrong",
                                       "base_url": fake_voipms.url})  # type: ignore[attr-defined]

    assert result["errors"] == {"base": "invalid_auth"}
    assert entry.data["settings"]["api_password"] == VOIPMS_PASSWORD
    hass.config_entries.flow.async_abort(result["flow_id"])
    await unload(hass, entry)


async def test_reconfigure_to_another_account_is_refused(hass: HomeAssistant) -> None:
    entry = carrier_entry("voipnumber", {"account_id": "acct-1", "api_token": "t"},
                          ["+15145550100"], "vn-hook-" + "0" * 40, "acct-1")
    entry.add_to_hass(hass)
    form = await entry.start_reconfigure_flow(hass)

    result = await submit(hass, form, {"account_id": "acct-2"})

    assert result["type"] is FlowResultType.ABORT and result["reason"] == "wrong_account"
    assert_translated(result)
    assert entry.data["settings"] == {"account_id": "acct-1", "api_token": "t"}


# ---------------------------------------------------------------- server mode


@pytest.fixture
def mock_setup() -> Iterator[AsyncMock]:
    """Server-mode entries are not set up here: these tests are about their flows."""
    with patch("custom_components.smsbridge.async_setup_entry", return_value=True) as setup:
        yield setup


def server_entry(running: Gateway, api_key: str, numbers: list[str] | None = None
                 ) -> MockConfigEntry:
    """A server-mode entry as the config flow writes it (all the gateway's numbers)."""
    return MockConfigEntry(
        domain=DOMAIN, title=f"smsbridge gateway {running.url}",
        unique_id=f"server:{running.url}",
        data={"mode": "server", "url": running.url, "api_key": api_key,
              "numbers": numbers or list(running.numbers), "webhook_id": "gw-hook-" + "1" * 40,
              "webhook_secret": "whsec_" + "A" * 32})


async def test_server_reauth_takes_a_key_the_gateway_accepts(
        hass: HomeAssistant, gateway: Gateway, mock_setup: AsyncMock) -> None:
    entry = server_entry(gateway, "sbk_revoked")
    entry.add_to_hass(hass)
    form = await entry.start_reauth_flow(hass)
    assert form["step_id"] == "reauth_server"
    assert_translated(form)

    wrong = await submit(hass, form, {"api_key": "sbk_still_wrong"})
    assert wrong["errors"] == {"base": "invalid_auth"}
    done = await submit(hass, wrong, {"api_key": gateway.api_key})
    await hass.async_block_till_done()

    assert done["reason"] == "reauth_successful"
    assert entry.data["api_key"] == gateway.api_key
    mock_setup.assert_awaited_once()  # the entry was reloaded with the new key


async def test_server_reconfigure_keeps_the_key_and_refuses_another_gateway(
        hass: HomeAssistant, gateway: Gateway, mock_setup: AsyncMock) -> None:
    entry = server_entry(gateway, gateway.api_key)
    entry.add_to_hass(hass)
    form = await entry.start_reconfigure_flow(hass)
    assert form["step_id"] == "reconfigure_server"
    assert_translated(form)

    # The same gateway by another spelling of its address, the key left blank: accepted.
    same = await submit(hass, form, {"url": gateway.url.replace("http:", "HTTP:") + "/"})
    await hass.async_block_till_done()
    assert same["reason"] == "reconfigure_successful"
    assert entry.data["api_key"] == gateway.api_key

    other = await entry.start_reconfigure_flow(hass)
    result = await submit(hass, other, {"url": f"http://127.0.0.1:{free_port()}"})
    assert result["type"] is FlowResultType.ABORT and result["reason"] == "wrong_account"


async def test_server_options_offer_the_gateways_numbers(
        hass: HomeAssistant, gateway: Gateway, mock_setup: AsyncMock) -> None:
    # Saved with one of the gateway's two numbers.
    entry = server_entry(gateway, gateway.api_key, [gateway.numbers[0]])
    entry.add_to_hass(hass)

    form = await hass.config_entries.options.async_init(entry.entry_id)

    assert selector_config(form, "numbers")["options"] == list(gateway.numbers)
    hass.config_entries.options.async_abort(form["flow_id"])

"""The config flow: a carrier account (or a running smsbridge gateway), checked, and its numbers.

Carrier mode: ``user`` (field ``carrier``) -> ``credentials`` (the provider's own settings,
checked against the carrier) -> ``numbers``. Server mode, chosen in the same ``carrier``
field: ``user`` -> ``server`` (URL and API key, checked by the gateway's API) -> ``numbers``.
Also reauth (the secrets again) and reconfigure (every setting), both for the same account.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import voluptuous as vol
from homeassistant.components import webhook
from homeassistant.config_entries import ConfigEntry, ConfigFlow, ConfigFlowResult
from homeassistant.const import MAJOR_VERSION, MINOR_VERSION
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.network import NoURLAvailableError
from homeassistant.helpers.selector import (
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
from homeassistant.helpers.translation import async_get_translations

from smsbridge.providers import AccountInfo, Provider, UnknownProvider

from .account_check import (
    CheckFailed,
    build_provider,
    carrier_choices,
    carrier_numbers,
    check_carrier,
    gateway_numbers,
    gateway_url,
    provider_class,
)
from .const import (
    ADVANCED_FIELDS,
    ADVANCED_SECTION,
    CONF_API_KEY,
    CONF_CARRIER,
    CONF_MODE,
    CONF_NUMBERS,
    CONF_SETTINGS,
    CONF_URL,
    CONF_WEBHOOK_ID,
    CONF_WEBHOOK_SECRET,
    DOMAIN,
    MODE_CARRIER,
    MODE_SERVER,
)
from .options_flow import SmsbridgeOptionsFlow
from .phone_input import InvalidNumber, read_numbers
from .repairs import async_clear_credentials_issue
from .settings_form import (
    InvalidSettings,
    field_help,
    flatten_answer,
    form_fields,
    parse_settings,
    secret_fields,
    sectioned_values,
    settings_schema,
)

# Standard Webhooks secrets: "whsec_" and base64 of random bytes; 24 bytes is well over the
# 16 the gateway's [[webhooks]] requires.
WEBHOOK_SECRET_BYTES = 24
# Home Assistant 2026.6 removed the user's advanced mode: its frontend no longer says whether
# it is on, and FlowHandler.show_advanced_options is deprecated (always True, warns when read).
# From then on ADVANCED_FIELDS are offered to everyone, in a collapsed section.
ADVANCED_IN_SECTION = (MAJOR_VERSION, MINOR_VERSION) >= (2026, 6)


# Without Home Assistant installed (the main venv's mypy) ConfigFlow is Any, and object
# takes no domain keyword; with it (mypy --python-executable .venv-ha/bin/python) it is fine.
class SmsbridgeConfigFlow(ConfigFlow, domain=DOMAIN):  # type: ignore[call-arg,unused-ignore]
    """Set up a carrier account or an smsbridge gateway, with the numbers to use."""

    VERSION = 1

    def __init__(self) -> None:
        """Start with nothing chosen."""
        self._carrier = ""
        self._carrier_name = ""
        self._settings: dict[str, Any] = {}
        self._account: AccountInfo | None = None
        self._server: dict[str, str] = {}
        self._offered_numbers: list[str] | None = None

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> SmsbridgeOptionsFlow:
        """Numbers, allowed senders and long-text handling."""
        return SmsbridgeOptionsFlow()

    # ------------------------------------------------------------ carrier mode

    async def async_step_user(self, user_input: dict[str, Any] | None = None
                              ) -> ConfigFlowResult:
        """Pick a carrier, or server mode."""
        if user_input is not None:
            choice = user_input[CONF_CARRIER]
            if choice == MODE_SERVER:
                return await self.async_step_server()
            self._carrier = choice
            return await self.async_step_credentials()
        choices = await carrier_choices(self.hass)
        options = [SelectOptionDict(value=key, label=name) for key, name in choices.items()]
        options.append(SelectOptionDict(value=MODE_SERVER, label="smsbridge gateway"))
        schema = vol.Schema({vol.Required(CONF_CARRIER): SelectSelector(SelectSelectorConfig(
            options=options, mode=SelectSelectorMode.DROPDOWN, translation_key=CONF_CARRIER))})
        return self.async_show_form(step_id="user", data_schema=schema)

    async def async_step_credentials(self, user_input: dict[str, Any] | None = None
                                     ) -> ConfigFlowResult:
        """The carrier's settings, checked against the carrier."""
        cls = await provider_class(self.hass, self._carrier)
        self._carrier_name = cls.name
        names = form_fields(cls.Config, advanced=self._offers_advanced())
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            checked, errors, placeholders = await _check_settings(
                self.hass, cls, flatten_answer(user_input), shown=names)
            if checked is not None:
                await self.async_set_unique_id(f"{self._carrier}:{checked.account.identity}")
                self._abort_if_unique_id_configured()
                self._settings, self._account = checked.settings, checked.account
                self._offered_numbers = await carrier_numbers(self.hass, checked.provider)
                return await self.async_step_numbers()
        schema = self.add_suggested_values_to_schema(
            settings_schema(cls.Config, names, advanced_section=ADVANCED_IN_SECTION), user_input)
        return self.async_show_form(
            step_id="credentials", data_schema=schema, errors=errors,
            description_placeholders={**await self._form_help(cls, names, "credentials"),
                                      **placeholders})

    async def async_step_numbers(self, user_input: dict[str, Any] | None = None
                                 ) -> ConfigFlowResult:
        """The numbers this entry sends from and receives on."""
        errors: dict[str, str] = {}
        placeholders = {"account": self._account_label()}
        if user_input is not None:
            try:
                numbers = read_numbers(user_input[CONF_NUMBERS], self.hass.config.country)
            except InvalidNumber as exc:
                errors[CONF_NUMBERS], placeholders["number"] = "invalid_number", exc.value
            else:
                if numbers:
                    return self._create_entry(numbers)
                errors[CONF_NUMBERS] = "no_numbers"
        if self._offered_numbers:
            field: Any = SelectSelector(SelectSelectorConfig(
                options=self._offered_numbers, multiple=True, custom_value=True,
                mode=SelectSelectorMode.LIST))
        else:
            field = TextSelector(TextSelectorConfig(type=TextSelectorType.TEXT))
        schema = vol.Schema({vol.Required(CONF_NUMBERS): field})
        return self.async_show_form(step_id="numbers", data_schema=schema, errors=errors,
                                    description_placeholders=placeholders)

    def _create_entry(self, numbers: list[str]) -> ConfigFlowResult:
        webhook_id = webhook.async_generate_id()
        url = _webhook_url(self.hass, webhook_id)
        if self._server:
            secret = "whsec_" + base64.b64encode(secrets.token_bytes(WEBHOOK_SECRET_BYTES)
                                                 ).decode()
            return self.async_create_entry(
                title=f"smsbridge gateway {self._server[CONF_URL]}",
                data={CONF_MODE: MODE_SERVER, **self._server, CONF_NUMBERS: numbers,
                      CONF_WEBHOOK_ID: webhook_id, CONF_WEBHOOK_SECRET: secret},
                description="server",
                description_placeholders={"webhook_url": url, "webhook_secret": secret},
            )
        account = self._account
        assert account is not None  # set by the credentials step, the only way here
        return self.async_create_entry(
            title=f"{self._carrier_name} {account.label or account.identity}",
            data={CONF_MODE: MODE_CARRIER, CONF_CARRIER: self._carrier,
                  CONF_SETTINGS: self._settings, CONF_NUMBERS: numbers,
                  CONF_WEBHOOK_ID: webhook_id},
            description="carrier" if account.checked else "carrier_unchecked",
            description_placeholders={"webhook_url": url, "carrier": self._carrier_name},
        )

    # ------------------------------------------------------------ server mode

    async def async_step_server(self, user_input: dict[str, Any] | None = None
                                ) -> ConfigFlowResult:
        """A running smsbridge gateway: its URL and an API key, checked by its API."""
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            url = gateway_url(user_input[CONF_URL])
            api_key = user_input[CONF_API_KEY].strip()
            if url is None:
                errors[CONF_URL] = "invalid_url"
            else:
                # A gateway is known by its address: the same one twice is refused at once.
                await self.async_set_unique_id(f"{MODE_SERVER}:{url}")
                self._abort_if_unique_id_configured()
                try:
                    numbers = await gateway_numbers(self.hass, url, api_key)
                except CheckFailed as exc:
                    errors["base"], placeholders = exc.error, exc.placeholders
                else:
                    self._server = {CONF_URL: url, CONF_API_KEY: api_key}
                    self._offered_numbers = numbers
                    return await self.async_step_numbers()
        schema = self.add_suggested_values_to_schema(_server_schema(), user_input)
        return self.async_show_form(step_id="server", data_schema=schema, errors=errors,
                                    description_placeholders=placeholders)

    # ------------------------------------------------------------ reauth, reconfigure

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """The carrier (or gateway) refused the saved credentials: ask for them again."""
        if entry_data.get(CONF_MODE) == MODE_SERVER:
            return await self.async_step_reauth_server()
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(self, user_input: dict[str, Any] | None = None
                                        ) -> ConfigFlowResult:
        """The carrier's secret settings again, checked, for the same account."""
        entry = self._get_reauth_entry()
        return await self._update_settings(entry, "reauth_confirm", user_input)

    async def async_step_reconfigure(self, user_input: dict[str, Any] | None = None
                                     ) -> ConfigFlowResult:
        """Every setting of the entry again, checked, for the same account."""
        entry = self._get_reconfigure_entry()
        if entry.data.get(CONF_MODE) == MODE_SERVER:
            return await self.async_step_reconfigure_server()
        return await self._update_settings(entry, "reconfigure", user_input)

    async def _update_settings(self, entry: ConfigEntry, step_id: str,
                               user_input: dict[str, Any] | None) -> ConfigFlowResult:
        self._carrier = entry.data[CONF_CARRIER]
        try:
            cls = await provider_class(self.hass, self._carrier)
        except UnknownProvider:
            return self.async_abort(reason="carrier_missing",
                                    description_placeholders={"carrier": self._carrier})
        reauth = step_id == "reauth_confirm"
        if reauth:
            names = secret_fields(cls.Config)
        else:
            names = form_fields(cls.Config, advanced=self._offers_advanced())
        current = dict(entry.data.get(CONF_SETTINGS, {}))
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            checked, errors, placeholders = await _check_settings(
                self.hass, cls, flatten_answer(user_input), shown=names, kept=current)
            if checked is not None:
                await self.async_set_unique_id(f"{self._carrier}:{checked.account.identity}")
                self._abort_if_unique_id_mismatch(reason="wrong_account")
                async_clear_credentials_issue(self.hass, entry)
                return self.async_update_reload_and_abort(
                    entry, data_updates={CONF_SETTINGS: checked.settings})
        schema = settings_schema(cls.Config, names, keep_secrets=not reauth,
                                 advanced_section=ADVANCED_IN_SECTION)
        secret_names = set(secret_fields(cls.Config))
        suggested = {name: value for name, value in current.items() if name not in secret_names}
        if ADVANCED_IN_SECTION:
            suggested = sectioned_values(suggested)
        schema = self.add_suggested_values_to_schema(schema, {**suggested, **(user_input or {})})
        return self.async_show_form(
            step_id=step_id, data_schema=schema, errors=errors,
            description_placeholders={**await self._form_help(cls, names, step_id),
                                      **placeholders})

    async def async_step_reauth_server(self, user_input: dict[str, Any] | None = None
                                       ) -> ConfigFlowResult:
        """The gateway refused the API key: ask for another."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        placeholders = {"url": entry.data[CONF_URL]}
        if user_input is not None:
            api_key = user_input[CONF_API_KEY].strip()
            try:
                await gateway_numbers(self.hass, entry.data[CONF_URL], api_key)
            except CheckFailed as exc:
                errors["base"] = exc.error
                placeholders.update(exc.placeholders)
            else:
                async_clear_credentials_issue(self.hass, entry)
                return self.async_update_reload_and_abort(
                    entry, data_updates={CONF_API_KEY: api_key})
        schema = vol.Schema({vol.Required(CONF_API_KEY): _password()})
        return self.async_show_form(step_id="reauth_server", data_schema=schema, errors=errors,
                                    description_placeholders=placeholders)

    async def async_step_reconfigure_server(self, user_input: dict[str, Any] | None = None
                                            ) -> ConfigFlowResult:
        """The gateway's URL and API key again, checked; the same gateway."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            url = gateway_url(user_input[CONF_URL])
            api_key = (user_input.get(CONF_API_KEY) or "").strip() or entry.data[CONF_API_KEY]
            if url is None:
                errors[CONF_URL] = "invalid_url"
            else:
                # A gateway is known by its address: another one is refused before any call.
                await self.async_set_unique_id(f"{MODE_SERVER}:{url}")
                self._abort_if_unique_id_mismatch(reason="wrong_account")
                try:
                    await gateway_numbers(self.hass, url, api_key)
                except CheckFailed as exc:
                    errors["base"], placeholders = exc.error, exc.placeholders
                else:
                    return self.async_update_reload_and_abort(
                        entry, data_updates={CONF_URL: url, CONF_API_KEY: api_key})
        schema = vol.Schema({vol.Required(CONF_URL): _url(),
                             vol.Optional(CONF_API_KEY): _password()})
        schema = self.add_suggested_values_to_schema(
            schema, {CONF_URL: entry.data[CONF_URL], **(user_input or {})})
        return self.async_show_form(step_id="reconfigure_server", data_schema=schema,
                                    errors=errors, description_placeholders=placeholders)

    # ------------------------------------------------------------ helpers

    def _offers_advanced(self) -> bool:
        """Whether the credentials and reconfigure forms offer ADVANCED_FIELDS."""
        # Never self.show_advanced_options: from 2026.6 it is deprecated and always True.
        return ADVANCED_IN_SECTION or bool(self.context.get("show_advanced_options"))

    async def _form_help(self, cls: type[Provider[Any]], names: list[str], step_id: str
                         ) -> dict[str, str]:
        """Placeholders of a settings form: the carrier, each field's help from the schema,
        and, for fields translations do not know (a plug-in's), their help in the description.
        """
        helps = field_help(cls.Config, names)
        known = await async_get_translations(self.hass, self.hass.config.language, "config",
                                             {DOMAIN})
        step = f"component.{DOMAIN}.config.step.{step_id}"
        unknown = [name for name in names if _label_key(step, name) not in known]
        listed = "".join(f"\n- **{name}**: {helps[name]}" for name in unknown)
        return {"carrier": cls.name, "plugin_fields": f"\n{listed}" if listed else "",
                **{f"help_{name}": text for name, text in helps.items()}}

    def _account_label(self) -> str:
        if self._server:
            return self._server[CONF_URL]
        account = self._account
        return "" if account is None else account.label or account.identity


@dataclass(frozen=True, slots=True)
class CheckedSettings:
    """Settings the schema took and the carrier accepted, and whose account they open."""

    settings: dict[str, Any]
    provider: Provider[Any]
    account: AccountInfo


async def _check_settings(
    hass: HomeAssistant, cls: type[Provider[Any]], answer: Mapping[str, Any], *,
    shown: list[str], kept: Mapping[str, Any] | None = None,
) -> tuple[CheckedSettings | None, dict[str, str], dict[str, str]]:
    """A settings form's answer checked by the schema, then by the carrier.

    Returns the checked settings, or None with the form's errors and their placeholders.
    """
    try:
        settings = parse_settings(cls.Config, answer, kept=kept, shown=shown)
        provider = build_provider(cls, settings)
        account = await check_carrier(hass, provider)
    except InvalidSettings as exc:
        errors = {name: "invalid_setting" for name in exc.errors}
        problems = "; ".join(f"{name}: {reason}" for name, reason in exc.errors.items())
        return None, {**errors, "base": "invalid_settings"}, {"problems": problems}
    except CheckFailed as exc:
        return None, {"base": exc.error}, exc.placeholders
    return CheckedSettings(settings, provider, account), {}, {}


def _label_key(step: str, name: str) -> str:
    """The translation key of the label of setting ``name`` on the form of ``step``."""
    if ADVANCED_IN_SECTION and name in ADVANCED_FIELDS:
        return f"{step}.sections.{ADVANCED_SECTION}.data.{name}"
    return f"{step}.data.{name}"


def _server_schema() -> vol.Schema:
    return vol.Schema({vol.Required(CONF_URL): _url(), vol.Required(CONF_API_KEY): _password()})


def _url() -> TextSelector:
    return TextSelector(TextSelectorConfig(type=TextSelectorType.URL))


def _password() -> TextSelector:
    return TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))


def _webhook_url(hass: HomeAssistant, webhook_id: str) -> str:
    """The URL to give the carrier or gateway; only the path when Home Assistant has no URL."""
    try:
        return webhook.async_generate_url(hass, webhook_id)
    except NoURLAvailableError:
        return webhook.async_generate_path(webhook_id)


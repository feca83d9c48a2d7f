"""The options flow: the entry's numbers, who may text each of them, and long-text handling."""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigFlowResult, OptionsFlow
from homeassistant.helpers.selector import (
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
from pydantic import ValidationError

from smsbridge.providers import UnknownProvider

from . import entry_numbers
from .account_check import (
    CheckFailed,
    build_provider,
    carrier_numbers,
    gateway_numbers,
    provider_class,
)
from .const import (
    CONF_ALLOWED_SENDERS,
    CONF_API_KEY,
    CONF_CARRIER,
    CONF_LONG_TEXT,
    CONF_MODE,
    CONF_NUMBERS,
    CONF_SETTINGS,
    CONF_URL,
    DEFAULT_LONG_TEXT,
    LONG_TEXT_CHOICES,
    MODE_SERVER,
)
from .phone_input import InvalidNumber, read_numbers


class SmsbridgeOptionsFlow(OptionsFlow):
    """Step ``init`` (numbers, long text), then ``allowed_senders`` (per number)."""

    def __init__(self) -> None:
        """Nothing chosen yet."""
        self._chosen: dict[str, Any] = {}

    async def async_step_init(self, user_input: dict[str, Any] | None = None
                              ) -> ConfigFlowResult:
        """The numbers to use and what to do with a text too long for one message."""
        entry = self.config_entry
        current = entry_numbers(entry)
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            try:
                numbers = read_numbers(user_input[CONF_NUMBERS], self.hass.config.country)
            except InvalidNumber as exc:
                errors[CONF_NUMBERS], placeholders["number"] = "invalid_number", exc.value
            else:
                if numbers:
                    self._chosen = {CONF_NUMBERS: numbers,
                                    CONF_LONG_TEXT: user_input[CONF_LONG_TEXT]}
                    return await self.async_step_allowed_senders()
                errors[CONF_NUMBERS] = "no_numbers"
        offered = [*current, *(n for n in await self._account_numbers() if n not in current)]
        schema = vol.Schema({
            vol.Required(CONF_NUMBERS): SelectSelector(SelectSelectorConfig(
                options=offered, multiple=True, custom_value=True,
                mode=SelectSelectorMode.LIST)),
            vol.Required(CONF_LONG_TEXT): SelectSelector(SelectSelectorConfig(
                options=list(LONG_TEXT_CHOICES), translation_key=CONF_LONG_TEXT,
                mode=SelectSelectorMode.LIST)),
        })
        suggested = {CONF_NUMBERS: current,
                     CONF_LONG_TEXT: entry.options.get(CONF_LONG_TEXT, DEFAULT_LONG_TEXT),
                     **(user_input or {})}
        return self.async_show_form(
            step_id="init", data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors, description_placeholders=placeholders)

    async def async_step_allowed_senders(self, user_input: dict[str, Any] | None = None
                                         ) -> ConfigFlowResult:
        """For each number, the senders whose texts are taken (none given: anyone's)."""
        numbers: list[str] = self._chosen[CONF_NUMBERS]
        saved: dict[str, list[str]] = self.config_entry.options.get(CONF_ALLOWED_SENDERS) or {}
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            allowed: dict[str, list[str]] = {}
            for number in numbers:
                try:
                    senders = read_numbers(user_input.get(number, ""), self.hass.config.country)
                except InvalidNumber as exc:
                    errors[number], placeholders["number"] = "invalid_number", exc.value
                    continue
                if senders:
                    allowed[number] = senders
            if not errors:
                # Options other helpers may add are kept as they are.
                return self.async_create_entry(data={
                    **self.config_entry.options, **self._chosen, CONF_ALLOWED_SENDERS: allowed})
        text = TextSelector(TextSelectorConfig(type=TextSelectorType.TEXT))
        schema = vol.Schema({vol.Optional(number): text for number in numbers})
        suggested = {number: ", ".join(saved[number]) for number in numbers if saved.get(number)}
        return self.async_show_form(
            step_id="allowed_senders",
            data_schema=self.add_suggested_values_to_schema(
                schema, {**suggested, **(user_input or {})}),
            errors=errors, description_placeholders=placeholders)

    async def _account_numbers(self) -> list[str]:
        """The numbers the carrier (or gateway) lists for the account now; none if it cannot."""
        data = self.config_entry.data
        if data.get(CONF_MODE) == MODE_SERVER:
            try:
                return await gateway_numbers(self.hass, data[CONF_URL], data[CONF_API_KEY])
            except CheckFailed:
                return []
        try:
            cls = await provider_class(self.hass, data[CONF_CARRIER])
            provider = build_provider(cls, data.get(CONF_SETTINGS, {}))
        except (UnknownProvider, ValidationError):
            return []
        return await carrier_numbers(self.hass, provider) or []

"""Asking a carrier, or a running smsbridge gateway, what a set of credentials opens.

The config flow and the options flow use it: the credentials check, the account's
numbers, and the same for a gateway (server mode). A failure is a ``CheckFailed`` whose
``error`` is a key of the flows' translated errors.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from smsbridge.providers import (
    AccountInfo,
    CredentialsRejected,
    Provider,
    ProviderError,
    UnknownProvider,
    get_provider_class,
    provider_keys,
)

from .const import MODE_SERVER

_LOGGER = logging.getLogger(__name__)

GATEWAY_TIMEOUT = aiohttp.ClientTimeout(total=15)


class CheckFailed(Exception):
    """A check did not pass; ``error`` names the translated error, with its placeholders."""

    def __init__(self, error: str, **placeholders: str) -> None:
        super().__init__(error)
        self.error = error
        self.placeholders = placeholders


async def carrier_choices(hass: HomeAssistant) -> dict[str, str]:
    """Every usable provider key (plug-ins included) and the carrier's name, sorted by key."""
    return await hass.async_add_executor_job(_carrier_choices)


def _carrier_choices() -> dict[str, str]:
    choices: dict[str, str] = {}
    for key in provider_keys():
        if key == MODE_SERVER:
            # The choice of server mode goes by this name, and so do its entries' unique ids.
            _LOGGER.warning("A carrier plug-in is registered as %r, which smsbridge's Home "
                            "Assistant integration keeps for server mode; it is not offered", key)
            continue
        try:
            choices[key] = get_provider_class(key).name
        except UnknownProvider as exc:
            _LOGGER.warning("Carrier %r is not offered: %s", key, exc)
        except Exception:
            # A broken plug-in must not keep the user from setting up any other carrier.
            _LOGGER.exception("Carrier %r is not offered: its package failed to load", key)
    return choices


async def provider_class(hass: HomeAssistant, key: str) -> type[Provider[Any]]:
    """The provider class of ``key``, imported in the executor (a first import reads files)."""
    return await hass.async_add_executor_job(get_provider_class, key)


def build_provider(cls: type[Provider[Any]], settings: Mapping[str, Any]) -> Provider[Any]:
    """A provider configured with an entry's settings."""
    return cls(cls.Config(**settings))


async def check_carrier(hass: HomeAssistant, provider: Provider[Any]) -> AccountInfo:
    """Ask the carrier whose account the provider's credentials open; CheckFailed if none."""
    carrier = {"carrier": provider.name}
    try:
        return await provider.check_credentials(async_get_clientsession(hass))
    except CredentialsRejected as exc:
        raise CheckFailed(exc.kind, seen_ip=exc.seen_ip or "-", reason=exc.reason,
                          **carrier) from None
    except ProviderError as exc:
        error = "cannot_connect" if exc.retryable else "carrier_refused"
        raise CheckFailed(error, reason=exc.reason, **carrier) from None
    except Exception:
        # A plug-in's check may fail in ways no one foresaw; the form must still answer.
        _LOGGER.exception("Checking the %s credentials failed unexpectedly", provider.name)
        raise CheckFailed("unknown", **carrier) from None


async def carrier_numbers(hass: HomeAssistant, provider: Provider[Any]) -> list[str] | None:
    """The account's SMS-capable numbers, or None where they cannot be listed now."""
    try:
        return await provider.list_numbers(async_get_clientsession(hass))
    except ProviderError as exc:
        _LOGGER.warning("Could not list the %s account's numbers (%s); they can be typed in",
                        provider.name, exc.reason)
    except Exception:
        _LOGGER.exception("Listing the %s account's numbers failed unexpectedly", provider.name)
    return None


def gateway_url(text: str) -> str | None:
    """A gateway's base URL as entries keep it (no trailing slash), or None if not http(s)."""
    parts = urlsplit(text.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"),
                       "", ""))


async def gateway_numbers(hass: HomeAssistant, url: str, api_key: str) -> list[str]:
    """The numbers of every carrier connection of the gateway at ``url``; CheckFailed if none.

    ``GET /v1/carriers`` with the API key: the cheapest authenticated read of the API.
    """
    http = async_get_clientsession(hass)
    headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
    try:
        async with http.get(f"{url}/v1/carriers", headers=headers,
                            timeout=GATEWAY_TIMEOUT) as response:
            if response.status in (401, 403):
                raise CheckFailed("invalid_auth", carrier="smsbridge")
            if response.status >= 500 or response.status == 429:
                raise CheckFailed("cannot_connect", reason=f"HTTP {response.status}")
            if response.status != 200:
                raise CheckFailed("not_a_gateway", url=url)
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise CheckFailed("cannot_connect", reason=str(exc) or type(exc).__name__) from None
    except ValueError:
        raise CheckFailed("not_a_gateway", url=url) from None
    return _connection_numbers(body, url)


def _connection_numbers(body: Any, url: str) -> list[str]:
    connections = body.get("data") if isinstance(body, dict) else None
    if not isinstance(connections, list):
        raise CheckFailed("not_a_gateway", url=url)
    numbers: list[str] = []
    for connection in connections:
        listed = connection.get("numbers") if isinstance(connection, dict) else None
        for number in listed if isinstance(listed, list) else ():
            if isinstance(number, str) and number not in numbers:
                numbers.append(number)
    return numbers

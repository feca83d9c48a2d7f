"""Vonage's account reads for setup: the balance (the check) and the owned numbers.

Both live on the SMS API's host and take the key and secret as query parameters::

    GET {base}/account/get-balance?api_key=...&api_secret=...
    -> 200 {"value": 10.28, "autoReload": false}
    -> 401
    GET {base}/account/numbers?api_key=...&api_secret=...&size=100&index=1
    -> 200 {"count": 1, "numbers": [{"country": "GB", "msisdn": "447700900000",
            "type": "mobile-lvn", "features": ["VOICE", "SMS"], ...}]}

Facts: Vonage's Developer API reference ("Get Balance"; Numbers API "List owned numbers":
``index`` from 1, ``size`` at most 100) and its OpenAPI ``Ownednumber`` (features are
``SMS``, ``VOICE``, ``MMS``). The answers are JSON; the balance's sample also in two SDKs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp

from ..base import e164_numbers, read_account

if TYPE_CHECKING:
    from .provider import VonageProvider

PAGE_SIZE = 100
MAX_PAGES = 100  # a loop guard: 10 000 numbers


async def read_balance(provider: VonageProvider, http: aiohttp.ClientSession) -> None:
    """Ask for the balance: the cheapest read that needs the key and secret to hold."""
    await _get(provider, http, "/account/get-balance", {})


async def sms_numbers(provider: VonageProvider, http: aiohttp.ClientSession) -> list[str]:
    """The owned numbers whose features include SMS, page (``index``) after page."""
    found: list[object] = []
    for index in range(1, MAX_PAGES + 1):
        page = await _get(provider, http, "/account/numbers",
                          {"size": str(PAGE_SIZE), "index": str(index)})
        rows = page.get("numbers") if isinstance(page, dict) else None
        rows = rows if isinstance(rows, list) else []
        found += [row.get("msisdn") for row in rows if isinstance(row, dict)
                  and isinstance(row.get("features"), list) and "SMS" in row["features"]]
        count = page.get("count") if isinstance(page, dict) else None
        if not rows or not isinstance(count, int) or index * PAGE_SIZE >= count:
            break
    # msisdn is country code and number without the plus.
    return e164_numbers(found, international_digits=True)


async def _get(provider: VonageProvider, http: aiohttp.ClientSession, path: str,
               params: dict[str, str]) -> Any:
    secret = provider.config.api_secret.get_secret_value()
    return await read_account(
        http, f"{provider.base_url}{path}", carrier=provider.name,
        timeout=provider.config.timeout_seconds, secrets=[secret],
        params={"api_key": provider.config.api_key, "api_secret": secret, **params},
        headers={"Accept": "application/json"},
    )

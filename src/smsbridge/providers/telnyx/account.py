"""Telnyx's account read for setup: the numbers with messaging settings, page by page.

One list serves both the credentials check and the number list::

    GET {base}/v2/phone_numbers/messaging?page[number]=1&page[size]=250
        Authorization: Bearer <api_key>
    -> 200 {"data": [{"record_type": "messaging_settings", "phone_number": "+1...",
                      "messaging_profile_id": "...", "features": {"sms": {...}, "mms": null}}],
            "meta": {"total_pages": 3, "total_results": 55, "page_number": 1, "page_size": 25}}
    -> 401 {"errors": [{"code": "10009", "title": "Authentication failed", ...}]}

Facts: Telnyx's API reference "List phone numbers with messaging settings" (its OpenAPI
and example answer; a feature the number lacks is null). 403 is read as a refused key
too: code 10010, "authorization failed", is a key without the right to read numbers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp

from ..base import e164_numbers, read_account

if TYPE_CHECKING:
    from .provider import TelnyxProvider

PAGE_SIZE = 250
MAX_PAGES = 400  # a loop guard: 100 000 numbers
REFUSALS = {401: "invalid_auth", 403: "invalid_auth"}


async def messaging_numbers(provider: TelnyxProvider, http: aiohttp.ClientSession, *,
                            pages: int = MAX_PAGES) -> list[str]:
    """The numbers whose messaging features include SMS, from at most ``pages`` pages."""
    found: list[object] = []
    for number in range(1, pages + 1):
        page = await _page(provider, http, number)
        rows = page.get("data") if isinstance(page, dict) else None
        for row in rows if isinstance(rows, list) else []:
            features = row.get("features") if isinstance(row, dict) else None
            if isinstance(features, dict) and isinstance(features.get("sms"), dict):
                found.append(row.get("phone_number"))
        meta = page.get("meta") if isinstance(page, dict) else None
        total = meta.get("total_pages") if isinstance(meta, dict) else None
        if not isinstance(total, int) or number >= total:
            break
    return e164_numbers(found)


async def _page(provider: TelnyxProvider, http: aiohttp.ClientSession, number: int) -> Any:
    key = provider.config.api_key.get_secret_value()
    return await read_account(
        http, f"{provider.base_url}/v2/phone_numbers/messaging", carrier=provider.name,
        timeout=provider.config.timeout_seconds, secrets=[key], refusals=REFUSALS,
        params={"page[number]": str(number), "page[size]": str(PAGE_SIZE)},
        headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
    )

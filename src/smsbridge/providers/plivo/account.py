"""Plivo's account reads for setup: the Account resource, and the rented numbers.

::

    GET {base}/v1/Account/{auth_id}/          (Basic auth: auth_id, auth_token)
    -> 200 {"api_id": "...", "auth_id": "MA...", "name": "Jane Doe", "account_type": ...}
    -> 401
    GET {base}/v1/Account/{auth_id}/Number/?limit=20&offset=0
    -> 200 {"api_id": "...", "meta": {"limit": 20, "next": "/v1/Account/MA.../Number/?limit=20
            &offset=20", "offset": 0, "previous": null, "total_count": 42},
            "objects": [{"number": "14155551234", "sms_enabled": true, "voice_enabled": true,
                         "number_type": "local", ...}]}

Facts: Plivo's own SDK examples (plivo-examples-ruby, -dotnet, -php: the Number list's
``meta`` and ``objects`` with ``number`` and ``sms_enabled``). Unconfirmed: that 20 is the
largest page (``limit``) the Number list takes; that ``meta.next`` is relative to the host
(it is followed either way).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp

from ..base import AccountInfo, e164_numbers, linked_pages, read_account
from ..http import basic_auth

if TYPE_CHECKING:
    from .provider import PlivoProvider

PAGE_SIZE = 20
MAX_PAGES = 500  # a loop guard: 10 000 numbers


async def check_account(provider: PlivoProvider, http: aiohttp.ClientSession) -> AccountInfo:
    """Fetch the Account resource; its ``name`` is the label."""
    account = await _get(provider, http, f"{_account_url(provider)}/")
    name = account.get("name") if isinstance(account, dict) else None
    return AccountInfo(provider.config.auth_id, name if isinstance(name, str) and name else None)


async def sms_numbers(provider: PlivoProvider, http: aiohttp.ClientSession) -> list[str]:
    """The rented numbers with ``sms_enabled``, following ``meta.next`` page after page."""
    found: list[object] = []
    async for page in linked_pages(
            f"{_account_url(provider)}/Number/?limit={PAGE_SIZE}&offset=0",
            lambda url: _get(provider, http, url), _meta_next, max_pages=MAX_PAGES):
        rows = page.get("objects") if isinstance(page, dict) else None
        found += [row.get("number") for row in rows if isinstance(row, dict)
                  and row.get("sms_enabled") is True] if isinstance(rows, list) else []
    # Plivo writes numbers as country code and number, without the plus.
    return e164_numbers(found, international_digits=True)


def _meta_next(page: Any) -> object:
    meta = page.get("meta") if isinstance(page, dict) else None
    return meta.get("next") if isinstance(meta, dict) else None


def _account_url(provider: PlivoProvider) -> str:
    return f"{provider.base_url}/v1/Account/{provider.config.auth_id}"


async def _get(provider: PlivoProvider, http: aiohttp.ClientSession, url: str) -> Any:
    token = provider.config.auth_token.get_secret_value()
    return await read_account(
        http, url, carrier=provider.name, timeout=provider.config.timeout_seconds,
        secrets=[token], headers={"Accept": "application/json",
                                  "Authorization": basic_auth(provider.config.auth_id, token)},
    )

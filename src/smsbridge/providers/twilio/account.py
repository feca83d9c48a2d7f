"""The account reads of Twilio's API shape (and SignalWire's copy of it), for setup.

The credentials check fetches the Account resource; the number list pages through the
IncomingPhoneNumbers list resource and keeps the numbers whose ``capabilities.sms`` is true::

    GET {account_url}.json
    -> 200 {"sid": "AC...", "friendly_name": "My account", "status": "active", ...}
    -> 401 {"code": 20003, "message": "Authenticate", ...}
    GET {account_url}/IncomingPhoneNumbers.json?PageSize=1000
    -> 200 {"incoming_phone_numbers": [{"phone_number": "+1...",
            "capabilities": {"voice": true, "sms": true, "mms": true, "fax": false}}, ...],
            "next_page_uri": "/2010-04-01/Accounts/AC.../IncomingPhoneNumbers.json?...&Page=1"}

Facts: Twilio's IncomingPhoneNumber resource reference and its OpenAPI list responses
(``next_page_uri`` is relative to the API's host); SignalWire documents the same resource
under ``/api/laml``. Unconfirmed: that a suspended or closed account's own resource still
answers 200 with its ``status`` (so it is refused here as "API disabled").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp

from ...core.errors import CredentialsRejected
from ..base import AccountInfo, e164_numbers, linked_pages, read_account
from ..http import basic_auth

if TYPE_CHECKING:
    from .compat import TwilioCompatibleProvider

PAGE_SIZE = 1000  # the largest PageSize the list resources take
MAX_PAGES = 100  # a loop guard: 100 000 numbers is far beyond any account set up by hand
USABLE_STATUSES = frozenset({"active"})


async def check_account(provider: TwilioCompatibleProvider[Any],
                        http: aiohttp.ClientSession) -> AccountInfo:
    """Fetch the Account resource; its sid and friendly name, or the refusal."""
    account = await _get(provider, http, f"{provider.account_url()}.json")
    status = account.get("status") if isinstance(account, dict) else None
    if isinstance(status, str) and status not in USABLE_STATUSES:
        raise CredentialsRejected(f"{provider.name} account is {status}", kind="api_disabled")
    name = account.get("friendly_name") if isinstance(account, dict) else None
    return AccountInfo(provider.account_identity(), name if isinstance(name, str) else None)


async def sms_numbers(provider: TwilioCompatibleProvider[Any],
                      http: aiohttp.ClientSession) -> list[str]:
    """Every IncomingPhoneNumber whose capabilities include SMS, page after page."""
    found: list[object] = []
    async for page in linked_pages(
            f"{provider.account_url()}/IncomingPhoneNumbers.json?PageSize={PAGE_SIZE}",
            lambda url: _get(provider, http, url), _next_page_uri, max_pages=MAX_PAGES):
        rows = page.get("incoming_phone_numbers") if isinstance(page, dict) else None
        for row in rows if isinstance(rows, list) else []:
            capabilities = row.get("capabilities") if isinstance(row, dict) else None
            if isinstance(capabilities, dict) and capabilities.get("sms") is True:
                found.append(row.get("phone_number"))
    return e164_numbers(found)


def _next_page_uri(page: Any) -> object:
    return page.get("next_page_uri") if isinstance(page, dict) else None


async def _get(provider: TwilioCompatibleProvider[Any], http: aiohttp.ClientSession,
               url: str) -> Any:
    return await read_account(
        http, url, carrier=provider.name, timeout=provider.config.timeout_seconds,
        secrets=provider.secrets(), headers={
            "Accept": "application/json",
            "Authorization": basic_auth(*provider.api_credentials()),
        },
    )

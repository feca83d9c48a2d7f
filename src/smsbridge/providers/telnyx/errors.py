"""Telnyx error codes: which send failures a retry can fix, and what delivery errors mean.

Codes from shared/providers/telnyx.md §2 and Telnyx's "API error codes" and
"Messaging Error Code Reference" pages. 1xxxx and 403xx codes come back at once
from POST /v2/messages as ``{"errors": [{"code", "title", "detail"}]}``; 400xx
codes arrive later in ``message.finalized`` webhooks.
"""

from __future__ import annotations

from typing import Any

from ...core.errors import ProviderError
from ..http import CarrierResponse

# Refusals that will be the same on every attempt.
PERMANENT_SEND_CODES: frozenset[str] = frozenset({
    "10001",  # inactive phone number
    "10002",  # invalid phone number
    "10004",  # missing required parameter
    "10009",  # authentication failed (API key)
    "10010",  # authorization failed
    "10016",  # phone number must be in +E.164 format
    "40300",  # recipient sent STOP: never message someone who opted out
    "40305",  # invalid 'from' address
    "40310",  # invalid 'to' address
})

# The recipient texted STOP to this sender (Telnyx docs, "Advanced Opt-In/Out": 40300
# "Blocked due to STOP message"): it goes on the gateway's list too.
OPTED_OUT_CODES: frozenset[str] = frozenset({"40300"})

# Telnyx asked us to slow down or failed on its side: the same request can pass later.
TRANSIENT_SEND_CODES: frozenset[str] = frozenset({
    "10007",  # unexpected error
    "10008",  # request timeout
    "10011",  # too many requests
})

DELIVERY_ERROR_REASONS: dict[str, str] = {
    "40001": "not routable (landline or non-routable number)",
    "40002": "blocked as spam (temporary)",
    "40003": "blocked as spam (permanent)",
    "40004": "rejected by the destination",
    "40005": "message expired during transmission",
    "40006": "recipient server unavailable",
    "40008": "undeliverable",
    "40009": "invalid message body",
    "40011": "too many requests (upstream rate limit)",
    "40012": "invalid destination number",
    "40013": "invalid source number",
    "40300": "recipient has opted out (sent STOP)",
}


def first_error(document: Any) -> dict[str, Any] | None:
    """The first object of a Telnyx ``errors`` array, if the document has one."""
    if not isinstance(document, dict):
        return None
    errors = document.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return errors[0]
    return None


def error_code(error: dict[str, Any]) -> str | None:
    """An error's code as a string (Telnyx sends strings; numbers are accepted too)."""
    code = error.get("code")
    if isinstance(code, bool) or code is None or code == "":
        return None
    return str(code).strip() if isinstance(code, (str, int)) else None


def send_error(response: CarrierResponse) -> ProviderError:
    """The ProviderError for a POST /v2/messages answer that was not a success."""
    error = first_error(response.json())
    if error is None:
        # Not Telnyx's JSON (a proxy's page): the HTTP status decides.
        return response.error(f"Telnyx answered HTTP {response.status} without a JSON error")
    code = error_code(error)
    title = error.get("title") if isinstance(error.get("title"), str) else None
    detail = error.get("detail") if isinstance(error.get("detail"), str) else None
    reason = ": ".join(part for part in (title, detail) if part) or (
        f"Telnyx answered HTTP {response.status}")
    retryable: bool | None = None  # None: the HTTP status decides
    if code in PERMANENT_SEND_CODES:
        retryable = False
    elif code in TRANSIENT_SEND_CODES:
        retryable = True
    refusal = response.error(f"Telnyx: {reason}", code=code, retryable=retryable)
    refusal.recipient_opted_out = code in OPTED_OUT_CODES
    return refusal


def delivery_error(errors: Any) -> tuple[str | None, str | None]:
    """The code and a readable reason of a webhook payload's ``errors`` array."""
    error = first_error({"errors": errors})
    if error is None:
        return None, None
    code = error_code(error)
    if code is not None and code in DELIVERY_ERROR_REASONS:
        return code, DELIVERY_ERROR_REASONS[code]
    title = error.get("title") or error.get("detail")
    if isinstance(title, str) and title:
        return code, title
    return code, f"Telnyx error {code}" if code else None

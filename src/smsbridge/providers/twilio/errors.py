"""Twilio error codes: which send failures a retry can fix, and what delivery errors mean.

Codes and meanings from shared/providers/twilio.md §2 ("Common error codes").
21xxx codes come back synchronously from the Messages API; 30xxx codes arrive
later as ``ErrorCode`` in status callbacks.
"""

from __future__ import annotations

from ...core.errors import ProviderError
from ..http import CarrierResponse, retryable_status

# Refusals that will be the same on every attempt: fix the account or the number first.
PERMANENT_SEND_CODES: frozenset[int] = frozenset({
    20003,  # authentication failed
    21211,  # invalid 'To' number
    21408,  # geo permissions: sending to that region is not enabled
    21606,  # 'From' is not an SMS-capable number of this account
    21608,  # trial account, 'To' is not verified
    21610,  # recipient replied STOP; retrying would message someone who opted out
    21612,  # 'To' is not reachable from this 'From'
    21614,  # 'To' is not a mobile number
    21617,  # body longer than 1600 characters
})

# Twilio asked us to slow down; the same request will pass later.
TRANSIENT_SEND_CODES: frozenset[int] = frozenset({20429})

# The recipient replied STOP to this sender (twilio.md §2): it goes on the gateway's list too.
OPTED_OUT_CODES: frozenset[int] = frozenset({21610})

DELIVERY_ERROR_REASONS: dict[int, str] = {
    21610: "recipient has opted out (replied STOP)",
    21614: "destination is not a mobile number",
    30003: "unreachable destination handset",
    30004: "message blocked by the recipient or their carrier",
    30005: "unknown destination handset",
    30006: "landline or unreachable carrier",
    30007: "message filtered by the carrier (spam or content violation)",
    30008: "unknown carrier error",
    30034: "sender number is not registered to an A2P 10DLC campaign",
}


def _twilio_code(value: object) -> int | None:
    """Twilio's numeric error code from a JSON value, if it is one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def is_retryable(code: int | None, http_status: int) -> bool:
    """Whether a later attempt can succeed: Twilio's code decides first, then the HTTP status."""
    if code in PERMANENT_SEND_CODES:
        return False
    if code in TRANSIENT_SEND_CODES:
        return True
    return retryable_status(http_status)


def recipient_opted_out(code: int | None) -> bool:
    """Whether Twilio's code says the recipient opted out of this sender."""
    return code in OPTED_OUT_CODES


def send_error(response: CarrierResponse, label: str = "Twilio") -> ProviderError:
    """The ProviderError for a Messages API answer that was not a success."""
    data = response.json()
    if not isinstance(data, dict):
        # A proxy or load balancer answered, not the API: say so and let a retry decide.
        return response.error(
            f"{label} answered HTTP {response.status} without a JSON error", retryable=True
        )
    code = _twilio_code(data.get("code"))
    message = data.get("message")
    if not (isinstance(message, str) and message):
        message = f"{label} answered HTTP {response.status}"
    error = response.error(
        message,
        retryable=is_retryable(code, response.status),
        code=str(code) if code is not None else None,
    )
    error.recipient_opted_out = recipient_opted_out(code)
    return error


def delivery_error_reason(
    code: str | None, message: str | None, label: str = "Twilio"
) -> str | None:
    """A readable reason for a status callback's ErrorCode, or the carrier's ErrorMessage."""
    number = _twilio_code(code)
    if number is not None and number in DELIVERY_ERROR_REASONS:
        return DELIVERY_ERROR_REASONS[number]
    if message:
        return message
    if code:
        return f"{label} error {code}"
    return None

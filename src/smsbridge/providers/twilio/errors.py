"""Twilio error codes: which send failures a retry can fix, and what delivery errors mean.

Codes and meanings from shared/providers/twilio.md §2 ("Common error codes").
21xxx codes come back synchronously from the Messages API; 30xxx codes arrive
later as ``ErrorCode`` in status callbacks.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from ...core.errors import ProviderError

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


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def scrub(text: str, secret: str) -> str:
    """``text`` with every occurrence of ``secret`` masked."""
    return text.replace(secret, "***") if secret else text


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
    return http_status == 429 or http_status >= 500


def send_error(
    http_status: int, body: bytes, retry_after: str | None, *, secret: str
) -> ProviderError:
    """The ProviderError for a Messages API answer that was not a success."""
    delay = parse_retry_after(retry_after)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        # A proxy or load balancer answered, not the API: say so and let a retry decide.
        return ProviderError(
            f"Twilio answered HTTP {http_status} without a JSON error",
            retryable=True, code=f"http_{http_status}", retry_after=delay,
        )
    code = _twilio_code(data.get("code"))
    message = data.get("message")
    if not (isinstance(message, str) and message):
        message = f"Twilio answered HTTP {http_status}"
    return ProviderError(
        scrub(message, secret),
        retryable=is_retryable(code, http_status),
        code=str(code) if code is not None else f"http_{http_status}",
        retry_after=delay,
    )


def delivery_error_reason(code: str | None, message: str | None) -> str | None:
    """A readable reason for a status callback's ErrorCode, or Twilio's ErrorMessage."""
    number = _twilio_code(code)
    if number is not None and number in DELIVERY_ERROR_REASONS:
        return DELIVERY_ERROR_REASONS[number]
    if message:
        return message
    if code:
        return f"Twilio error {code}"
    return None

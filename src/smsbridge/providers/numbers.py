"""Numbers as carriers write them in webhooks, read into E.164 once for every carrier.

Carriers disagree on the plus, but agree on what else may text a number: a short code
(a bank's 2FA sender) or an alphanumeric sender id; those are kept as sent, since they
have no E.164 form, and anything else that is no phone number is a malformed webhook.
"""

from __future__ import annotations

import re

from ..core.errors import InvalidPhoneNumber, MalformedWebhook
from ..core.phone import to_e164

SHORT_CODE = re.compile(r"[0-9]{3,8}")
# GSM alphanumeric originators: at most 11 characters, at least one letter.
SENDER_ID = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 .\-]{1,11}")


def inbound_number(value: object, *, carrier: str, field: str, region: str = "US",
                   international_digits: bool = False) -> str:
    """``value`` from ``carrier``'s webhook in E.164; short codes and sender ids kept as sent.

    ``region`` reads national numbers (a British 07...); ``international_digits`` says the
    carrier always writes country code and number without the plus, so nine or ten digits
    are not taken for a national number. A missing or unreadable value is MalformedWebhook
    naming ``field``.
    """
    if not isinstance(value, str) or not value.strip():
        raise MalformedWebhook(f"{carrier} webhook is missing '{field}'")
    raw = value.strip()
    if SHORT_CODE.fullmatch(raw):
        return raw
    candidate = "+" + raw if international_digits and raw.isdigit() else raw
    try:
        return to_e164(candidate, region, field=field)
    except InvalidPhoneNumber as exc:
        if SENDER_ID.fullmatch(raw):
            return raw
        raise MalformedWebhook(f"{carrier} '{field}' {exc.reason}") from None

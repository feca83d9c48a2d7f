"""Phone numbers typed or picked in a form, read as E.164."""

from __future__ import annotations

import re
from collections.abc import Iterable

from smsbridge.core.errors import InvalidPhoneNumber
from smsbridge.core.phone import to_e164

# Commas, semicolons and line breaks separate numbers; spaces may sit inside one.
_SEPARATORS = re.compile(r"[,;\n]+")


class InvalidNumber(ValueError):
    """``value`` is not a phone number."""

    def __init__(self, value: str) -> None:
        super().__init__(f"{value!r} is not a phone number")
        self.value = value


def read_numbers(answer: str | Iterable[str], region: str | None) -> list[str]:
    """The numbers of a form answer (a list, or text separated by commas), in E.164, once each.

    A national number is read in ``region`` (Home Assistant's country; US when unset).
    Raises ``InvalidNumber`` naming the first value that is not a phone number.
    """
    values = _SEPARATORS.split(answer) if isinstance(answer, str) else list(answer)
    numbers: list[str] = []
    for value in (v.strip() for v in values):
        if not value:
            continue
        try:
            number = to_e164(value, region or "US")
        except InvalidPhoneNumber:
            raise InvalidNumber(value) from None
        if number not in numbers:
            numbers.append(number)
    return numbers

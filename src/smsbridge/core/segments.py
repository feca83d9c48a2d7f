"""GSM-7 / UCS-2 segment counting and splitting (3GPP TS 23.038 / 23.040)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

_NON_GSM7 = re.compile("[^" + re.escape("".join(sorted(GSM7_BASIC | GSM7_EXTENSION))) + "]")
_GSM7_EXT_RE = re.compile("[" + re.escape("".join(sorted(GSM7_EXTENSION))) + "]")
_SURROGATE = re.compile("[\ud800-\udfff]")

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# 140 octets of user data: 160 septets or 70 UTF-16 units alone; a concatenated
# part loses 6 octets to the UDH (8-bit reference), leaving 153 septets / 67 units.
_SINGLE_LIMIT = {GSM7: 160, UCS2: 70}
_PART_LIMIT = {GSM7: 153, UCS2: 67}


@dataclass(frozen=True, slots=True)
class SegmentCount:
    """How a text travels as SMS: its encoding, its size in that encoding, its parts."""

    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int


def _is_gsm7(text: str) -> bool:
    """True when every character of ``text`` has a GSM-7 default or extension code."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def _septets(ch: str) -> int:
    """Septets one GSM-7 character takes: ESC + code for the extension table."""
    return 2 if ch in GSM7_EXTENSION else 1


def _utf16_units(ch: str) -> int:
    """UTF-16 code units one character takes: a surrogate pair above the BMP."""
    return 2 if ord(ch) > 0xFFFF else 1


def _encoding_and_cost(text: str) -> tuple[str, Callable[[str], int]]:
    """One non-GSM character anywhere sends the whole text as UCS-2."""
    if _is_gsm7(text):
        return GSM7, _septets
    return UCS2, _utf16_units


def split_segments(text: str) -> list[str]:
    """Split ``text`` into the SMS parts it is sent as; the parts join back to ``text``."""
    encoding, cost = _encoding_and_cost(text)
    if sum(cost(ch) for ch in text) <= _SINGLE_LIMIT[encoding]:
        return [text]
    limit = _PART_LIMIT[encoding]
    parts: list[str] = []
    start = 0
    used = 0
    for index, ch in enumerate(text):
        size = cost(ch)
        # A character never straddles two parts: an escape pair or a surrogate
        # pair that would not fit moves whole to the next part (152 / 66 left).
        if used + size > limit:
            parts.append(text[start:index])
            start = index
            used = 0
        used += size
    parts.append(text[start:])
    return parts


def replace_lone_surrogates(text: str) -> str:
    """``text`` with each unpaired UTF-16 surrogate replaced by U+FFFD.

    A carrier that splits an emoji at a segment boundary sends half of its
    surrogate pair; no database driver can encode that half as UTF-8. Two halves
    that do pair up (decoded separately) are joined back into their character.
    """
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def count_segments(text: str) -> SegmentCount:
    """Count the encoding, size and number of SMS parts ``text`` needs; never raises."""
    # Regexes scan in C: this runs for every message on the webhook hot path.
    if _NON_GSM7.search(text) is None:
        encoding, units = GSM7, len(text) + len(_GSM7_EXT_RE.findall(text))
    else:
        # surrogatepass: a lone surrogate is one UTF-16 unit, as a carrier counts it.
        encoding, units = UCS2, len(text.encode("utf-16-le", "surrogatepass")) // 2
    if units <= _SINGLE_LIMIT[encoding]:
        return SegmentCount(encoding, units, 1)
    return SegmentCount(encoding, units, len(split_segments(text)))

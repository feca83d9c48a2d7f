"""Phone numbers: parsing to E.164 and writing them per carrier format."""

from __future__ import annotations

import pytest

from smsbridge.core.errors import InvalidPhoneNumber
from smsbridge.core.phone import NumberFormat, calling_code_allowed, format_number, to_e164


@pytest.mark.parametrize(
    ("value", "region", "expected"),
    [
        pytest.param("5145550100", "US", "+15145550100", id="nanpa-10-digits"),
        pytest.param("15145550100", "US", "+15145550100", id="nanp-11-digits"),
        pytest.param("+1 (514) 555-0100", "US", "+15145550100", id="punctuated"),
        pytest.param("  +15145550100 ", "US", "+15145550100", id="surrounding-space"),
        pytest.param("+447700900123", "US", "+447700900123", id="foreign-e164"),
        pytest.param("447700900123", "US", "+447700900123", id="country-code-no-plus"),
        pytest.param("07700 900123", "GB", "+447700900123", id="gb-national"),
    ],
)
def test_to_e164(value: str, region: str, expected: str) -> None:
    assert to_e164(value, region) == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("garbage", id="letters"),
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param("555", id="too-short"),
        pytest.param("+1 514", id="too-short-with-country-code"),
    ],
)
def test_to_e164_rejects_with_field_name(value: str) -> None:
    with pytest.raises(InvalidPhoneNumber) as caught:
        to_e164(value, "US", field="to")
    assert caught.value.field == "to"
    assert str(caught.value).startswith("to: ")


def test_to_e164_eleven_digit_national_number_keeps_its_region() -> None:
    assert to_e164("13800138000", "CN") == "+8613800138000"


@pytest.mark.parametrize(
    ("e164", "fmt", "expected"),
    [
        pytest.param("+15145550100", NumberFormat.NANPA, "5145550100", id="nanpa"),
        pytest.param("+15145550100", NumberFormat.DIGITS, "15145550100", id="digits"),
        pytest.param("+15145550100", NumberFormat.E164, "+15145550100", id="e164"),
        pytest.param("+447700900123", NumberFormat.DIGITS, "447700900123", id="digits-gb"),
        pytest.param("+447700900123", NumberFormat.E164, "+447700900123", id="e164-gb"),
    ],
)
def test_format_number(e164: str, fmt: NumberFormat, expected: str) -> None:
    assert format_number(e164, fmt) == expected


@pytest.mark.parametrize("e164", ["+447700900123", "+12345"])
def test_format_number_nanpa_of_non_nanp_number_raises(e164: str) -> None:
    with pytest.raises(InvalidPhoneNumber, match="not a NANP"):
        format_number(e164, NumberFormat.NANPA)


@pytest.mark.parametrize(
    ("e164", "regions", "allowed"),
    [
        ("+15145550100", ("US", "CA"), True),
        ("+12125550100", ("US", "CA"), True),
        ("+447700900123", ("US", "CA"), False),
        ("+447700900123", (), True),
        ("+447700900123", ("GB",), True),
    ],
)
def test_calling_code_allowed(e164: str, regions: tuple[str, ...], allowed: bool) -> None:
    assert calling_code_allowed(e164, regions) is allowed
